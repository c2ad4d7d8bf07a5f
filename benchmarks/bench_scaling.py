"""Scaling benchmark: curves vs himalaya and scipy, out-of-core peak memory, dask vs serial.

Usage (from the repository root)::

    python benchmarks/bench_scaling.py            # a few minutes
    python benchmarks/bench_scaling.py --quick    # a few seconds, tiny sizes

Measures, in one run:

1. scaling curves: ``VoxelwiseEncoder`` (numpy backend, 10 alphas, 5-fold CV, per-target alphas)
   against himalaya's ``RidgeCV`` (``KernelRidgeCV`` with a linear kernel when features outnumber
   stimuli, as himalaya advises; numpy backend, same alphas and folds) as the number of targets,
   stimuli and features grows; ``compute_rdm`` (correlation) against scipy ``pdist`` as the number
   of stimuli grows. Curves go to ``benchmarks/scaling.json`` and PNG plots
   ``benchmarks/scaling_*.png``;
2. out-of-core: peak resident-memory increase of ``VoxelwiseEncoder.fit`` on targets read from an
   HDF5 dataset (streamed) vs the same targets loaded whole first, and of
   :func:`neuroprobe.outofcore.fit_to_hdf5` (``coef_`` written block by block), each in a fresh
   subprocess;
3. distributed: ``PermutationTest(VoxelwiseEncoder)`` and a batched ``VoxelwiseEncoder.fit`` run
   serially and through ``joblib.parallel_config(backend="dask")`` on a local dask cluster of 2
   worker processes, with the results compared.

Writes the ``scale`` section of ``benchmarks/RESULTS.md`` (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HERE = Path(__file__).resolve().parent
CURVES = HERE / "scaling.json"
ALPHAS = np.logspace(-2, 7, 10)

SIZES = {
    "quick": dict(
        targets=dict(n=100, p=20, values=[200, 800]),
        stimuli=dict(p=20, t=200, values=[100, 300]),
        features=dict(n=100, t=200, values=[10, 200]),
        rdm=dict(p=50, values=[100, 400], pdist_max=400),
        ooc=dict(n=200, t=5000, p=8), dask=dict(n=60, p=10, t=40, perms=64),
    ),
    "full": dict(
        targets=dict(n=1000, p=200, values=[1000, 4000, 16000]),
        stimuli=dict(p=200, t=2000, values=[500, 1000, 2000, 4000]),
        features=dict(n=1000, t=2000, values=[100, 400, 1600, 3200]),
        rdm=dict(p=1000, values=[250, 500, 1000, 2000, 4000], pdist_max=1000),
        ooc=dict(n=400, t=50000, p=8), dask=dict(n=200, p=50, t=500, perms=512),
    ),
}


def log(msg):
    print(msg, flush=True)


def timeit(fn, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def data(n, p, t, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p), dtype=np.float32)
    Y = X @ (rng.standard_normal((p, t), dtype=np.float32) / np.float32(np.sqrt(p)))
    Y += rng.standard_normal((n, t), dtype=np.float32)
    return X, Y


# --------------------------------------------------------------------------- 1. curves
def fit_ours(X, Y):
    from sklearn.model_selection import KFold

    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    return VoxelwiseEncoder(alphas=ALPHAS, cv=KFold(5)).fit(X, Y)


def fit_himalaya(X, Y):
    """himalaya's best CPU solver for the shape: RidgeCV, or KernelRidgeCV when p > n."""
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV
    from sklearn.model_selection import KFold

    set_backend("numpy")
    if X.shape[1] > X.shape[0]:
        return KernelRidgeCV(alphas=ALPHAS, kernel="linear", cv=KFold(5),
                             fit_intercept=True).fit(X, Y)
    return RidgeCV(alphas=ALPHAS, cv=KFold(5), fit_intercept=True).fit(X, Y)


def curve(axis, sizes):
    spec = dict(sizes)
    values = spec.pop("values")
    rows = []
    try:
        import himalaya  # noqa: F401

        have_himalaya = True
    except ImportError:
        have_himalaya = False
    for v in values:
        shape = dict(spec, **{axis[0]: v})
        X, Y = data(shape["n"], shape["p"], shape["t"])
        t_ours, _ = timeit(lambda X=X, Y=Y: fit_ours(X, Y), repeat=2)
        t_him = (timeit(lambda X=X, Y=Y: fit_himalaya(X, Y), repeat=2)[0] if have_himalaya
                 else None)
        rows.append({"value": v, "neuroprobe": t_ours, "himalaya": t_him, **shape})
        log(f"  {axis}={v}: neuroprobe {t_ours:.2f}s, himalaya "
            f"{'-' if t_him is None else f'{t_him:.2f}s'}")
    return rows


def rdm_curve(sizes):
    from scipy.spatial.distance import pdist

    from neuroprobe.rsa import compute_rdm

    rows = []
    for n in sizes["values"]:
        X, _ = data(n, sizes["p"], 1, seed=1)
        t_ours, ours = timeit(lambda X=X: compute_rdm(X), repeat=3)
        t_scipy = None
        if n <= sizes["pdist_max"]:
            t_scipy, ref = timeit(lambda X=X: pdist(X.astype(np.float64), "correlation"),
                                  repeat=2)
            assert np.allclose(ours, ref, atol=1e-4)
        rows.append({"value": n, "neuroprobe": t_ours, "scipy pdist": t_scipy, "n": n,
                     "p": sizes["p"]})
        log(f"  compute_rdm n={n}: {t_ours:.3f}s, pdist "
            f"{'-' if t_scipy is None else f'{t_scipy:.3f}s'}")
    return rows


def plot_curves(curves, outdir=HERE):
    """PNG plots of the curves in ``curves`` (as written to scaling.json); returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {
        "targets": ("n_targets", "VoxelwiseEncoder vs himalaya RidgeCV: time vs targets"),
        "stimuli": ("n_stimuli", "VoxelwiseEncoder vs himalaya RidgeCV: time vs stimuli"),
        "features": ("n_features",
                     "VoxelwiseEncoder vs himalaya (Kernel)RidgeCV: time vs features"),
        "rdm": ("n_stimuli", "compute_rdm (correlation) vs scipy pdist: time vs stimuli"),
    }
    paths = []
    for key, (xlabel, title) in titles.items():
        rows = curves.get(key)
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.6), dpi=110)
        for name in [k for k in rows[0] if k in ("neuroprobe", "himalaya", "scipy pdist")]:
            pts = [(r["value"], r[name]) for r in rows if r.get(name) is not None]
            if pts:
                ax.loglog(*zip(*pts), marker="o", label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("seconds")
        ax.set_title(title, fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = Path(outdir) / f"scaling_{key}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- 2. out of core
_WORKER = """
import json, resource, sys
import numpy as np
sys.path.insert(0, {root!r})
from neuroprobe.estimators.encoding import VoxelwiseEncoder
from neuroprobe.io.targets import open_targets
from neuroprobe.estimators.outofcore import fit_to_hdf5

def rss_kib(field):
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) for ln in fh if ln.startswith(field + ":"))

mode, path, p, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
Y = open_targets(path)
X = np.random.default_rng(0).standard_normal((Y.shape[0], p)).astype(np.float32)
VoxelwiseEncoder(alphas=[1.0], cv=3).fit(X, Y[:, :10])
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    peak = lambda: rss_kib("VmHWM")
except OSError:
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = rss_kib("VmRSS")
est = VoxelwiseEncoder(alphas=np.logspace(-2, 7, 10), cv=5)
if mode == "whole":
    est.fit(X, Y[...])
elif mode == "streamed":
    est.fit(X, Y)
else:
    fit_to_hdf5(est, X, Y, out, targets_per_block=5000)
print(json.dumps({{"increase_mib": (peak() - before) / 1024}}))
"""


def out_of_core(sizes):
    import h5py

    n, t, p = sizes["n"], sizes["t"], sizes["p"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Y.h5"
        rng = np.random.default_rng(0)
        with h5py.File(path, "w") as fh:
            dset = fh.create_dataset("Y", (n, t), dtype="float32", chunks=(n, 2048))
            for a in range(0, t, 10000):
                b = min(t, a + 10000)
                dset[:, a:b] = rng.standard_normal((n, b - a), dtype=np.float32)
        script = _WORKER.format(root=str(ROOT))
        env = dict(os.environ, NEUROPROBE_MEMORY_BUDGET="32M")
        for mode, label in (("whole", "fit on Y loaded whole"),
                            ("streamed", "fit streaming Y from HDF5"),
                            ("tofile", "fit_to_hdf5 (coef_ to HDF5, blocks of 5000)")):
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", script, mode, str(path), str(p),
                                  str(Path(tmp) / "enc.h5")], env=env, capture_output=True,
                                 text=True, timeout=600)
            wall = time.perf_counter() - t0
            if res.returncode:
                rows.append((label, "error", res.stderr.strip().splitlines()[-1][:80], ""))
                continue
            inc = json.loads(res.stdout.strip().splitlines()[-1])["increase_mib"]
            rows.append((label, f"{inc:.0f}", f"{wall:.1f}", ""))
            log(f"  {label}: +{inc:.0f} MiB ({wall:.1f}s with start-up)")
    return rows, n * t * 4 / 1024**2


# --------------------------------------------------------------------------- 3. dask
def dask_vs_serial(sizes):
    import joblib
    from distributed import Client, LocalCluster

    from neuroprobe.estimators.encoding import VoxelwiseEncoder
    from neuroprobe.estimators.permutation import PermutationTest

    X, Y = data(sizes["n"], sizes["p"], sizes["t"], seed=3)
    rows = []

    def perm(n_jobs):
        enc = VoxelwiseEncoder(alphas=ALPHAS, cv=5)
        return PermutationTest(enc, n_permutations=sizes["perms"], random_state=0,
                               n_jobs=n_jobs).fit(X, Y)

    def fit(n_jobs):
        return VoxelwiseEncoder(alphas=ALPHAS, cv=5, n_targets_batch=max(1, sizes["t"] // 8),
                                n_jobs=n_jobs).fit(X, Y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, silence_logs=40)
        client = Client(cluster)
        start = time.perf_counter() - t0
    try:
        for name, fn, attr in (
            (f"PermutationTest(VoxelwiseEncoder), {sizes['perms']} perms", perm,
             "null_distribution_"),
            ("VoxelwiseEncoder.fit, 8 target batches", fit, "coef_"),
        ):
            t_serial, a = timeit(lambda fn=fn: fn(None))
            with joblib.parallel_config(backend="dask"):
                fn(2)  # warm the workers (imports)
                t_dask, b = timeit(lambda fn=fn: fn(2))
            diff = float(np.max(np.abs(getattr(a, attr) - getattr(b, attr))))
            rows.append((name, t_serial, t_dask, diff))
            log(f"  {name}: serial {t_serial:.2f}s, dask {t_dask:.2f}s, max |diff| {diff:.1e}")
    finally:
        client.close()
        cluster.close()
    return rows, start


# --------------------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a few seconds)")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--md-out", help="also write the Markdown to this file")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["curves", "ooc", "dask"], help="parts to skip")
    args = parser.parse_args(argv)
    sizes = SIZES["quick" if args.quick else "full"]
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    t_start = time.perf_counter()
    from benchmarks._results import machine, write_section

    lines = [
        "Times are the best of 2 runs (3 for compute_rdm), in seconds.",
        "",
        f"Machine: {machine()}. Shared machine under load from other jobs: absolute times are "
        "noisy, ratios measured in the same run are the figures to read.",
        "",
        f"Command: `python benchmarks/bench_scaling.py{' --quick' if args.quick else ''}`",
    ]
    curves = {}
    if "curves" not in args.skip:
        log("1. scaling curves")
        for key, axis in (("targets", "t"), ("stimuli", "n"), ("features", "p")):
            curves[key] = curve(axis, sizes[key])
        curves["rdm"] = rdm_curve(sizes["rdm"])
        CURVES.write_text(json.dumps(curves, indent=1))
        try:
            pngs = plot_curves(curves)
        except ImportError as exc:  # matplotlib missing: the table is still written
            log(f"  no plots: {exc}")
            pngs = []
        lines += ["", "### Scaling curves (seconds; himalaya / neuroprobe > 1 means we are faster)",
                  "", "| curve | size | neuroprobe | reference | reference / neuroprobe |",
                  "|---|---|---|---|---|"]
        for key, rows in curves.items():
            ref_name = "scipy pdist" if key == "rdm" else "himalaya"
            for r in rows:
                ref = r.get(ref_name)
                fixed = ", ".join(f"{k}={r[k]}" for k in ("n", "p", "t") if k in r)
                ratio = f"{ref / r['neuroprobe']:.2f}" if ref else "-"
                what = "compute_rdm" if key == "rdm" else "ridge CV"
                ref_cell = "-" if ref is None else f"{ref:.3g} ({ref_name})"
                lines.append(f"| {key} ({what}) | {fixed} | {r['neuroprobe']:.3g} | {ref_cell} | "
                             f"{ratio} |")
        if pngs:
            lines += ["", "Plots: " + ", ".join(f"`benchmarks/{p.name}`" for p in pngs)]
    if "ooc" not in args.skip:
        log("2. out-of-core peak memory")
        rows, y_mib = out_of_core(sizes["ooc"])
        o = sizes["ooc"]
        lines += ["", f"### Out of core: {o['t']} targets x {o['n']} samples (Y = {y_mib:.0f} "
                  f"MiB float32), {o['p']} features, 10 alphas, 5-fold, "
                  "NEUROPROBE_MEMORY_BUDGET=32M", "",
                  "| run | peak RSS increase (MiB) | wall time incl. start-up (s) |",
                  "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c, _ in rows]
    if "dask" not in args.skip:
        log("3. dask vs serial")
        try:
            rows, start = dask_vs_serial(sizes["dask"])
            lines += ["", f"### dask LocalCluster (2 worker processes x 1 thread; start-up "
                      f"{start:.1f}s, not included) vs serial", "",
                      "| task | serial (s) | dask (s) | serial / dask | max abs diff |",
                      "|---|---|---|---|---|"]
            lines += [f"| {a} | {b:.2f} | {c:.2f} | {b / c:.2f} | {d:.1e} |"
                      for a, b, c, d in rows]
            lines += ["", "The 2 workers share the machine's 2 cores with the calling process "
                      "(and other jobs): the point is equal results and the overhead, not a "
                      "speed-up."]
        except ImportError as exc:
            lines += ["", f"dask part skipped: {exc}"]
    lines += ["", f"Total run time {time.perf_counter() - t_start:.0f}s."]
    md = "\n".join(lines)
    print(md)
    if args.md_out:
        Path(args.md_out).write_text(md + "\n")
    if not args.no_write:
        write_section("scale", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
