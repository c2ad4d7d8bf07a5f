"""Variance partitioning: cost for k = 2..5 bands (2^k - 1 models), neuroprobe vs himalaya loop.

n = 1,200 scans in 4 runs, k bands of 50 features, 2,000 voxels, 10 alphas; outer folds
leave-one-run-out (4), alphas chosen per voxel by leave-one-run-out inside the training runs.
neuroprobe: ``variance_partitioning(None, X, Y, bands, groups=runs)`` (VoxelwiseEncoder,
scoring r2). Reference: the voxelwise tutorials' way, a loop over unions and folds of himalaya
``RidgeCV(alphas, cv=inner leave-one-run-out splits)`` (same folds, same alphas), held-out R2 by
``sklearn.metrics.r2_score(multioutput="raw_values")``, then the same Möbius inversion.
``python3 benchmarks/bench_partition.py [--write] [--quick] [--voxels N]``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._results import machine, write_section  # noqa: E402
from neuroprobe.partition import variance_partitioning  # noqa: E402
from neuroprobe.solvers.partition import mask_bands, partition_components, subset_masks  # noqa: E402


def _data(k, n, per_band, n_voxels, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k * per_band)).astype(np.float32)
    W = rng.standard_normal((k * per_band, n_voxels)).astype(np.float32) / np.sqrt(k * per_band)
    Y = X @ W + rng.standard_normal((n, n_voxels)).astype(np.float32)
    bands = {f"b{i}": slice(i * per_band, (i + 1) * per_band) for i in range(k)}
    return X, Y, bands


def himalaya_partition(X, Y, bands, groups, alphas):
    from himalaya.ridge import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import LeaveOneGroupOut

    names = list(bands)
    masks = subset_masks(len(names))
    outer = list(LeaveOneGroupOut().split(X, None, groups))
    r2 = np.zeros((len(outer), masks.size, Y.shape[1]))
    for f, (train, test) in enumerate(outer):
        inner = list(LeaveOneGroupOut().split(train, None, groups[train]))
        for j, m in enumerate(masks):
            cols = np.concatenate([np.arange(X.shape[1])[bands[names[i]]]
                                   for i in mask_bands(m, len(names))])
            model = RidgeCV(alphas=alphas, cv=inner, fit_intercept=True)
            model.fit(X[train][:, cols], Y[train])
            pred = model.predict(X[test][:, cols])
            r2[f, j] = r2_score(Y[test], pred, multioutput="raw_values")
    r2 = r2.mean(axis=0)
    return r2, partition_components(r2)


def main(ks=(2, 3, 4, 5), n=1200, per_band=50, n_voxels=2000, write=False, reference=True):
    import os

    groups = np.repeat(np.arange(4), n // 4)
    alphas = np.logspace(-2, 7, 10)
    rows = []
    for k in ks:
        X, Y, bands = _data(k, n, per_band, n_voxels)
        from sklearn.model_selection import LeaveOneGroupOut

        from neuroprobe.estimators.encoding import VoxelwiseEncoder

        est = VoxelwiseEncoder(alphas=alphas, scoring="r2", cv=LeaveOneGroupOut())
        t0 = time.perf_counter()
        vp = variance_partitioning(est, X, Y, bands, groups=groups)
        t_ours = time.perf_counter() - t0
        t_ref = diff = float("nan")
        if reference:
            t0 = time.perf_counter()
            r2_ref, comp_ref = himalaya_partition(X, Y, bands, groups, alphas)
            t_ref = time.perf_counter() - t0
            diff = float(np.nanmean(np.abs(vp.components - comp_ref)))
        rows.append((k, 2**k - 1, t_ours, t_ref, diff))
        print(rows[-1], flush=True)
    load = os.getloadavg()[0]
    lines = [
        "### Variance partitioning, k = 2..5 bands (`python benchmarks/bench_partition.py`)",
        "",
        f"{machine()}; shared machine, load average {load:.1f} at the end (absolute times are "
        "noisy; the ratio is from the same run); OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}.",
        f"n = {n} scans (4 runs), k bands x {per_band} features, {n_voxels} voxels (script "
        "default 2000, `--voxels`), 10 alphas; "
        "outer leave-one-run-out (4 folds), alphas per voxel by leave-one-run-out inside the "
        "training runs: (2^k - 1) x 4 fits per call.",
        "Reference: loop over unions and folds of himalaya `RidgeCV` (same folds and alphas, "
        "numpy backend) + sklearn `r2_score`, same Möbius inversion.",
        "",
        "| k | models (2^k - 1) | neuroprobe | himalaya loop | speed-up | mean abs diff of "
        "components |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for k, models, t_ours, t_ref, diff in rows:
        lines.append(f"| {k} | {models} | {t_ours:.2f} s | {t_ref:.2f} s | "
                     f"**{t_ref / t_ours:.1f}x** | {diff:.1e} |")
    lines += [
        "",
        "The cost grows as the number of models times the fit cost of each union: a union of b "
        "bands fits b x 50 features, so the total is sum_b C(k, b) cost(b x 50), about "
        "2^(k-1) times the full model's fit. Each (fold, union) fit is done once; the folds are "
        "split once and sliced per union.",
    ]
    text = "\n".join(lines)
    print(text)
    if write:
        write_section("partition", text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="tiny sizes; writes nothing")
    parser.add_argument("--voxels", type=int, default=2000)
    args = parser.parse_args()
    if args.quick:
        main(ks=(2, 3), n=200, per_band=5, n_voxels=50)
    else:
        main(n_voxels=args.voxels, write=args.write)
