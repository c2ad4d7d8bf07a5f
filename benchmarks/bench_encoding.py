"""Benchmark: VoxelwiseEncoder vs himalaya RidgeCV vs sklearn; PLSEncoder vs sklearn PLSRegression.

Every method runs in its own subprocess (fresh data from the same seed) so that its peak resident
memory is its own. Writes the ``encoding`` section of ``benchmarks/RESULTS.md``.

    python benchmarks/bench_encoding.py            # n=2000, p=100/1000, t=10,000 (+ ours at 50,000)
    python benchmarks/bench_encoding.py --quick    # a few seconds
    python benchmarks/bench_encoding.py --targets 10000 50000 --ours-targets   # the full grid
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_ALPHAS = 10
N_FOLDS = 5


def make_data(n, p, t, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p), dtype=np.float32)
    W = rng.standard_normal((p, 64), dtype=np.float32) / np.sqrt(p)
    Y = np.empty((n, t), dtype=np.float32)
    step = 4096
    for s in range(0, t, step):  # planted low-rank signal + noise, built in column blocks
        k = min(step, t - s)
        mix = rng.standard_normal((64, k), dtype=np.float32)
        Y[:, s : s + k] = (X @ W) @ mix / 8 + rng.standard_normal((n, k), dtype=np.float32)
    return X, Y


def sgemm_gflops(size=2000, repeat=3):
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    a @ a
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def our_flops(n, p, t, n_alphas=N_ALPHAS, k=N_FOLDS):
    """Multiply-adds x 2 of VoxelwiseEncoder's dominant products (see solvers/ridge.py)."""
    n_te = n / k
    if p <= n:
        if p <= n_te:  # moments path
            per_fold = n_te * p + 2 * p * p + n_alphas * p * p
        else:  # explicit held-out predictions
            per_fold = n_te * p + p * p + n_alphas * n_te * p
        cv = n * p + k * per_fold
        refit = 2 * n * p + p * p
    else:
        n_tr = n - n_te
        cv = k * (n_tr * n_tr + n_alphas * n_te * n_tr)
        refit = 2 * n * n + n * p
    return 2 * t * (cv + refit)


# --------------------------------------------------------------------------- workers
def run_worker(method, n, p, t):
    import himalaya.ridge  # noqa: F401 - imports outside the timed region
    import sklearn.cross_decomposition  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    import neuroprobe.estimators.encoding  # noqa: F401
    from benchmarks._results import peak_rss_mb

    X, Y = make_data(n, p, t)
    base = peak_rss_mb()
    alphas = np.logspace(-2, 7, N_ALPHAS)
    info = {}
    t0 = time.perf_counter()
    if method == "ours":
        from neuroprobe.estimators.encoding import VoxelwiseEncoder

        est = VoxelwiseEncoder(alphas=alphas, cv=N_FOLDS).fit(X, Y)
        info["best_alphas"] = est.best_alphas_[:2000].tolist()
    elif method == "himalaya":
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV

        set_backend("numpy", on_error="raise")
        est = RidgeCV(alphas=alphas, cv=N_FOLDS).fit(X, Y)
        info["best_alphas"] = np.asarray(est.best_alphas_)[:2000].tolist()
    elif method == "ours_r2":
        from neuroprobe.estimators.encoding import VoxelwiseEncoder

        est = VoxelwiseEncoder(alphas=alphas, cv=N_FOLDS, scoring="r2").fit(X, Y)
        info["best_alphas"] = est.best_alphas_[:2000].tolist()
    elif method == "sklearn_loo":
        from sklearn.linear_model import RidgeCV

        RidgeCV(alphas=alphas, alpha_per_target=True).fit(X, Y)
    elif method == "sklearn_loop":
        from sklearn.linear_model import Ridge
        from sklearn.model_selection import GridSearchCV

        n_vox = 5
        for j in range(n_vox):
            GridSearchCV(Ridge(), {"alpha": alphas}, cv=N_FOLDS).fit(X, Y[:, j])
        info["extrapolated_from"] = n_vox
    elif method == "pls_ours":
        from neuroprobe.estimators.encoding import PLSEncoder

        est = PLSEncoder(n_components=10).fit(X, Y)
        info["pred"] = est.predict(X[:5]).ravel()[:200].tolist()
    elif method == "pls_sklearn":
        from sklearn.cross_decomposition import PLSRegression

        est = PLSRegression(n_components=10).fit(X, Y)
        info["pred"] = est.predict(X[:5]).ravel()[:200].tolist()
    else:  # pragma: no cover
        raise ValueError(method)
    elapsed = time.perf_counter() - t0
    if method == "sklearn_loop":
        elapsed = elapsed / info["extrapolated_from"] * t
    info.update(seconds=elapsed, peak_mb=peak_rss_mb(), data_mb=base)
    return info


def spawn(method, n, p, t, timeout, in_process=False):
    if in_process:  # --quick: no process start-up; peak memory is then the whole run's
        return run_worker(method, n, p, t)
    cmd = [sys.executable, __file__, "--worker", method, str(n), str(p), str(t)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"seconds": float("nan"), "error": f"timeout > {timeout}s"}
    except subprocess.CalledProcessError as exc:
        return {"seconds": float("nan"), "error": exc.stderr.strip().splitlines()[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--features", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--targets", type=int, nargs="+", default=[10000])
    parser.add_argument(
        "--ours-targets",
        type=int,
        nargs="*",
        default=[50000],
        help="extra target counts timed for VoxelwiseEncoder only",
    )
    parser.add_argument("--pls-targets", type=int, default=2000)
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        method, n, p, t = args.worker
        print(json.dumps(run_worker(method, int(n), int(p), int(t))))
        return 0
    if args.quick:  # in-process: tiny problems are fastest with single-threaded BLAS
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return _main(args)
    return _main(args)


def _main(args):
    if args.quick:
        args.samples, args.features, args.targets = 200, [20, 100], [200]
        args.ours_targets, args.pls_targets = [], 100

    from benchmarks._results import machine, write_section

    gflops = sgemm_gflops(1000 if args.quick else 2000)
    load = os.getloadavg()[0]
    n = args.samples
    rows, notes = [], []
    for p in args.features:
        for t in args.targets:
            res = {
                m: spawn(m, n, p, t, args.timeout, args.quick)
                for m in ("ours", "himalaya", "sklearn_loo", "sklearn_loop")
            }
            ours = res["ours"]["seconds"]
            fl = our_flops(n, p, t)
            rows.append(
                f"| {n} | {p} | {t} | {ours:.2f} | {res['himalaya']['seconds']:.2f} "
                f"| {res['himalaya']['seconds'] / ours:.1f}x "
                f"| {res['sklearn_loo']['seconds']:.2f} "
                f"| {res['sklearn_loo']['seconds'] / ours:.1f}x "
                f"| {res['sklearn_loop']['seconds']:.0f} (extrap.) "
                f"| {fl / ours / 1e9:.1f} ({fl / ours / 1e9 / gflops:.0%}) "
                f"| {res['ours']['peak_mb']:.0f} "
                f"/ {res['himalaya'].get('peak_mb', float('nan')):.0f} "
                f"| {res['ours']['data_mb']:.0f} |"
            )
            for m, r in res.items():
                if "error" in r:
                    notes.append(f"- {m} at p={p}, t={t}: {r['error']}")
            print(rows[-1], flush=True)
        for t in args.ours_targets:
            r = spawn("ours", n, p, t, args.timeout, args.quick)
            fl = our_flops(n, p, t)
            rows.append(
                f"| {n} | {p} | {t} | {r['seconds']:.2f} | not run | | not run | | | "
                f"{fl / r['seconds'] / 1e9:.1f} ({fl / r['seconds'] / 1e9 / gflops:.0%}) "
                f"| {r['peak_mb']:.0f} / - | {r['data_mb']:.0f} |"
            )
            print(rows[-1], flush=True)
    # PLS
    pls_p = args.features[0]
    pls_row = "| (not run: --pls-targets 0) |"
    if args.pls_targets > 0:
        pls = {
            m: spawn(m, n, pls_p, args.pls_targets, args.timeout, args.quick)
            for m in ("pls_ours", "pls_sklearn")
        }
        same = np.allclose(
            pls["pls_ours"]["pred"], pls["pls_sklearn"]["pred"], rtol=1e-3, atol=1e-3
        )
        pls_row = (
            f"| {n} | {pls_p} | {args.pls_targets} | 10 | {pls['pls_ours']['seconds']:.2f} "
            f"| {pls['pls_sklearn']['seconds']:.2f} "
            f"| {pls['pls_sklearn']['seconds'] / pls['pls_ours']['seconds']:.1f}x | {same} |"
        )
        print(pls_row, flush=True)
    md = "\n".join(
        [
            "### Encoding (`python benchmarks/bench_encoding.py"
            + (" --quick" if args.quick else "")
            + "`)",
            "",
            f"Machine: {machine()}. Measured sgemm: {gflops:.1f} GFLOP/s (float32, "
            f"{1000 if args.quick else 2000}^3). Load average at start: {load:.1f} on "
            f"{os.cpu_count()} cores (shared machine: timings are noisy, ratios are from the "
            "same run).",
            "",
            f"{N_ALPHAS} alphas (1e-2..1e7), {N_FOLDS}-fold CV for VoxelwiseEncoder, himalaya "
            "`RidgeCV` (numpy backend, its own target batching) and the per-voxel sklearn "
            "`GridSearchCV(Ridge)` loop (5 voxels timed, extrapolated linearly); sklearn "
            "`RidgeCV(alpha_per_target=True)` can only do leave-one-out. Each method in its own "
            "process; peak RSS includes the data (X, Y float32).",
            "",
            "| n | p | targets | ours (s) | himalaya (s) | speed-up | sklearn RidgeCV LOO (s) "
            "| speed-up | sklearn loop (s) | our GFLOP/s (of sgemm) | peak MB ours / himalaya "
            "| MB after data |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "PLS (`PLSEncoder` vs sklearn `PLSRegression`, same n_components, scale, max_iter, "
            "tol):",
            "",
            "| n | p | targets | components | ours (s) | sklearn (s) | speed-up "
            "| same predictions |",
            "|---|---|---|---|---|---|---|---|",
            pls_row,
            *([""] + notes if notes else []),
        ]
    )
    if not args.no_write:
        write_section("encoding", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
