"""Time-resolved encoding statistics: 1,000 stimulus permutations of the encoding time courses
(ridge fast path: fold decompositions reused, no refit) with max-statistic and cluster-mass FWE
over 8 layers x 301 times, vs one sklearn ``Ridge`` refit per permutation, alpha and fold.

Size of issue 18: 92 stimuli x 306 channels x 301 times, 8 layers of 100 features, 5-fold CV,
the default 10 alphas. The fast path is timed on ``--measured`` permutations (one chunk, default
64) of ``--measured-layers`` layers and extrapolated linearly to 1,000 x 8 (every permutation
and layer costs the same); the refits are timed on one permutation of one layer and
extrapolated the same way. ``--full`` runs the real 1,000 x 8 (about 40 min on one core).

``python3 benchmarks/bench_temporal_encode.py [--small] [--full] [--write]``
"""

from __future__ import annotations

import argparse
import datetime
import os
import time

import numpy as np


def _data(n_stim, n_ch, n_times, n_layers, n_feat, seed=0):
    rng = np.random.default_rng(seed)
    layers = {f"layer{i}": rng.standard_normal((n_stim, n_feat)).astype(np.float32)
              for i in range(n_layers)}
    Y = rng.standard_normal((n_stim, n_ch, n_times)).astype(np.float32)
    Y[:, :, n_times // 3:n_times // 2] += 0.3 * (
        layers["layer0"] @ rng.standard_normal((n_feat, n_ch)).astype(np.float32)
        / np.sqrt(n_feat))[:, :, None]
    return layers, Y


def _fast(layers, Y, n_perm):
    from neuroprobe import TimeResolved, VoxelwiseEncoder
    from neuroprobe.estimators.temporal import permutation_test_time_resolved

    t0 = time.perf_counter()
    res = permutation_test_time_resolved(TimeResolved(VoxelwiseEncoder()), layers, Y,
                                         n_permutations=n_perm, cv=5, random_state=0)
    return time.perf_counter() - t0, res


def _fwe_only(n_perm, n_layers, n_times, seed=1):
    """The inference step on a full-size null: p, max-stat FWE, threshold, cluster FWE."""
    from neuroprobe.solvers.permutation import fwe_pvalues, pvalues
    from neuroprobe.solvers.temporal import cluster_fwe

    rng = np.random.default_rng(seed)
    null = rng.standard_normal((n_perm, n_layers, n_times)).cumsum(axis=2) * 0.01
    obs = rng.standard_normal((n_layers, n_times)).cumsum(axis=1) * 0.01
    t0 = time.perf_counter()
    pvalues(obs, null)
    fwe_pvalues(obs, null)
    cluster_fwe(obs, null, float(np.quantile(null, 0.95)), tail=1)
    return time.perf_counter() - t0


def _refits(X, Y, n_perm=1, seed=0):
    """One sklearn Ridge fit per permutation, alpha and fold (all channels x times as targets
    of each fit), the brute-force reference of the tests."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold

    from neuroprobe.solvers.ridge import DEFAULT_ALPHAS

    n = Y.shape[0]
    flat = Y.reshape(n, -1)
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(n_perm):
        yp = flat[rng.permutation(n)]
        best = None
        for a in DEFAULT_ALPHAS:
            s = 0.0
            for tr, te in folds:
                pred = Ridge(alpha=a).fit(X[tr], yp[tr]).predict(X[te])
                pc, yc = pred - pred.mean(0), yp[te] - yp[te].mean(0)
                s = s + (pc * yc).sum(0) / np.sqrt((pc * pc).sum(0) * (yc * yc).sum(0) + 1e-30)
            best = s / len(folds) if best is None else np.maximum(best, s / len(folds))
    return (time.perf_counter() - t0) / n_perm


def _fmt(seconds):
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="a quick run (30 stimuli)")
    parser.add_argument("--full", action="store_true", help="time all 1,000 x 8 directly")
    parser.add_argument("--measured", type=int, default=64)
    parser.add_argument("--measured-layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="write the RESULTS.md section")
    args = parser.parse_args(argv)
    n_stim, n_ch, n_times, n_layers, n_feat, n_perm = 92, 306, 301, 8, 100, 1000
    if args.small:
        n_stim, n_ch, n_times = 30, 20, 50
    layers, Y = _data(n_stim, n_ch, n_times, n_layers, n_feat)
    load0 = open("/proc/loadavg").read().split()[:3]
    t_start = time.perf_counter()
    measured = n_perm if args.full else args.measured
    n_meas_layers = n_layers if args.full else args.measured_layers
    sub = dict(list(layers.items())[:n_meas_layers])
    fast, refit, fwe = [], [], []
    for _ in range(args.repeats):                      # interleaved A / B, min of each
        fast.append(_fast(sub, Y, measured)[0])
        refit.append(_refits(layers["layer0"], Y))
        fwe.append(_fwe_only(n_perm, n_layers, n_times))
    scale = (n_perm / measured) * (n_layers / n_meas_layers)
    t_fast = min(fast) * scale + min(fwe)
    t_refit = min(refit) * n_perm * n_layers + min(fwe)
    load1 = open("/proc/loadavg").read().split()[:3]
    size = (f"{n_stim} stimuli x {n_ch} channels x {n_times} times x {n_layers} layers of "
            f"{n_feat} features, 5-fold CV, 10 alphas, {n_perm:,} permutations")
    how = ("measured" if args.full else
           f"extrapolated from {measured} permutations x {n_meas_layers} layers "
           f"({_fmt(min(fast))})")
    table = "\n".join([
        "| what | time | how |",
        "|---|---|---|",
        f"| fast path: `permutation_test_time_resolved` (ridge folds reused, stimuli rows "
        f"permuted) + FWE | **{_fmt(t_fast)}** | {how} |",
        f"| refits: sklearn `Ridge` per permutation x alpha x fold (all channels x times per "
        f"fit) + FWE | {_fmt(t_refit)} | extrapolated from 1 permutation x 1 layer "
        f"({_fmt(min(refit))}) |",
        f"| ratio | **{t_refit / t_fast:.0f}x** | |",
        f"| inference step alone: p, max-stat FWE, 95th-percentile threshold, cluster-mass FWE "
        f"on the ({n_perm}, {n_layers}, {n_times}) null | {min(fwe) * 1e3:.0f} ms | measured |",
    ])
    text = (
        "### Time-resolved encoding statistics (`python3 benchmarks/bench_temporal_encode.py"
        f"{' --small' if args.small else ''}`, {_fmt(time.perf_counter() - t_start)})\n\n"
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} shared cores "
        f"(load average {' '.join(load0)} before, {' '.join(load1)} after), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; min of "
        f"{args.repeats} interleaved runs. {size}.\n\n" + table + "\n"
    )
    print(text)
    if args.write:
        from benchmarks._results import write_section

        write_section("temporal_encode", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
