"""Benchmark: VoxelwiseEncoder vs himalaya RidgeCV vs sklearn; PLSEncoder vs sklearn PLSRegression.

Every method runs in its own subprocess (fresh data from the same seed) so that its peak resident
memory is its own. Writes the ``encoding`` section of ``benchmarks/RESULTS.md``.

    python benchmarks/bench_encoding.py            # n=2000, p=100/1000, t=10,000 (+ ours at 50,000)
    python benchmarks/bench_encoding.py --quick    # a few seconds
    python benchmarks/bench_encoding.py --targets 10000 50000 --ours-targets   # the full grid
    python benchmarks/bench_encoding.py --kernel   # n << p: n 92/500/1000 x p 10k/65k/500k

``--kernel`` writes its own ``encoding_kernel`` section: VoxelwiseEncoder's kernel path against
himalaya ``KernelRidgeCV`` (and ``RidgeCV`` at p = 10,000) on the same data and the same
``KFold(5)`` folds, both scoring R^2 with an intercept, CV scores compared target by target.
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


KERNEL_N = (92, 500, 1000)
KERNEL_P = (10_000, 64_896, 500_000)


def run_kernel_worker(method, n, p, t):
    """Time one n << p fit (best of up to 3 within ~20 s) after a warm-up on a tiny problem."""
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV
    from himalaya.scoring import r2_score
    from sklearn.model_selection import KFold

    from benchmarks._results import peak_rss_mb
    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    set_backend("numpy", on_error="raise")
    alphas = np.logspace(-2, 7, N_ALPHAS)
    cv = KFold(N_FOLDS)
    params = dict(alphas=alphas, cv=cv)
    him = dict(params, fit_intercept=True, solver_params={"score_func": r2_score})
    if method == "kernel_ours":
        make = lambda: VoxelwiseEncoder(scoring="r2", **params)  # noqa: E731
    elif method == "kernel_himalaya":
        make = lambda: KernelRidgeCV(warn=False, **him)  # noqa: E731
    elif method == "ridge_himalaya":
        import warnings

        warnings.simplefilter("ignore", UserWarning)  # "kernel ridge would be faster"
        make = lambda: RidgeCV(**him)  # noqa: E731
    else:  # pragma: no cover
        raise ValueError(method)
    Xw, Yw = make_data(30, 200, 20, seed=1)
    make().fit(Xw, Yw)  # warm-up: first-call costs (imports, BLAS init) outside the timing
    X, Y = make_data(n, p, t)
    base = peak_rss_mb()
    times, cpu = [], []
    while len(times) < 3 and (not times or sum(times) < 20):
        c0, t0 = time.process_time(), time.perf_counter()
        est = make().fit(X, Y)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    info = {"seconds": min(times), "cpu_seconds": min(cpu), "repeats": len(times)}
    info["peak_mb"] = peak_rss_mb()  # of the fits (before coef_ below)
    if method == "kernel_ours":
        info["cv"] = est.cv_scores_.max(axis=0).tolist()
        info["alphas"] = est.best_alphas_.tolist()
        info["pred"] = est.predict(X[:3]).ravel()[:3000].tolist()
        if p * t * 4 <= 3 * 2**30:  # forming coef_ (p, t) on access, when it fits
            t0 = time.perf_counter()
            _ = est.coef_
            info["coef_seconds"] = time.perf_counter() - t0
            info["coef_peak_mb"] = peak_rss_mb()
    else:
        info["cv"] = np.asarray(est.cv_scores_).ravel().tolist()
        info["alphas"] = np.asarray(est.best_alphas_).tolist()
    info["data_mb"] = base
    return info


def kernel_table(args):
    """The n << p table: VoxelwiseEncoder (kernel path) vs himalaya on the same folds."""
    rows, notes = [], []
    for n in args.kernel_n:
        for p in args.kernel_p:
            t = args.kernel_targets
            methods = ["kernel_ours", "kernel_himalaya"]
            if p <= args.ridgecv_max_p:
                methods.append("ridge_himalaya")
            res = {m: spawn(m, n, p, t, args.timeout, worker="kernel") for m in methods}
            ours, kr = res["kernel_ours"], res["kernel_himalaya"]
            for m, r in res.items():
                if "error" in r:
                    notes.append(f"- {m} at n={n}, p={p}: {r['error']}")
            if "cv" in ours and "cv" in kr:
                dcv = float(np.nanmax(np.abs(np.subtract(ours["cv"], kr["cv"]))))
                same = float(np.mean(np.isclose(ours["alphas"], kr["alphas"], rtol=1e-5)))
            else:
                dcv = same = float("nan")
            rc = res.get("ridge_himalaya", {})
            rc_cell = (
                f"{rc['seconds']:.2f} ({rc['seconds'] / ours['seconds']:.1f}x)"
                if rc and rc.get("seconds") == rc.get("seconds")
                else ("not run" if not rc else rc.get("error", "failed"))
            )
            coef_s = ours.get("coef_seconds")
            coef_gb = p * t * 4 / 2**30
            coef_cell = (
                f"{coef_s:.2f} ({ours['coef_peak_mb']:.0f} MB)"
                if coef_s is not None
                else f"not formed ({coef_gb:.0f} GB)"
            )
            nan = float("nan")
            cpu_ratio = kr.get("cpu_seconds", nan) / ours.get("cpu_seconds", nan)
            rows.append(
                f"| {n} | {p} | {t} | {ours['seconds']:.2f} | {kr['seconds']:.2f} "
                f"| **{kr['seconds'] / ours['seconds']:.1f}x** | {cpu_ratio:.1f}x "
                f"| {rc_cell} | {dcv:.1e} | {same:.1%} | {coef_cell} "
                f"| {ours.get('peak_mb', nan):.0f} / {kr.get('peak_mb', nan):.0f} "
                f"| {ours.get('data_mb', nan):.0f} |"
            )
            print(rows[-1], flush=True)
    return rows, notes


def spawn(method, n, p, t, timeout, in_process=False, worker="main"):
    if in_process:  # --quick: no process start-up; peak memory is then the whole run's
        return run_worker(method, n, p, t)
    flag = "--kernel-worker" if worker == "kernel" else "--worker"
    cmd = [sys.executable, __file__, flag, method, str(n), str(p), str(t)]
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
    parser.add_argument("--kernel-worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--kernel", action="store_true", help="the n << p table only")
    parser.add_argument("--kernel-n", type=int, nargs="+", default=list(KERNEL_N))
    parser.add_argument("--kernel-p", type=int, nargs="+", default=list(KERNEL_P))
    parser.add_argument("--kernel-targets", type=int, default=10_000)
    parser.add_argument(
        "--ridgecv-max-p", type=int, default=10_000, help="himalaya RidgeCV up to this p"
    )
    args = parser.parse_args(argv)
    if args.kernel_worker:
        method, n, p, t = args.kernel_worker
        print(json.dumps(run_kernel_worker(method, int(n), int(p), int(t))))
        return 0
    if args.kernel:
        return _kernel_main(args)
    if args.worker:
        method, n, p, t = args.worker
        print(json.dumps(run_worker(method, int(n), int(p), int(t))))
        return 0
    if args.quick:  # in-process: tiny problems are fastest with single-threaded BLAS
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return _main(args)
    return _main(args)


def _kernel_main(args):
    from benchmarks._results import machine, write_section

    gflops = sgemm_gflops(2000)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    rows, notes = kernel_table(args)
    total = time.perf_counter() - t0
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    md = "\n".join(
        [
            "### Encoding, n << p (`python benchmarks/bench_encoding.py --kernel`)",
            "",
            f"Machine: {machine()}. Measured sgemm: {gflops:.1f} GFLOP/s (float32, 2000^3). "
            f"Load average at start: {load:.1f} on {os.cpu_count()} cores (shared machine: "
            f"timings are noisy; ratios are from the same run). BLAS threads: {threads}. "
            f"Total {total:.0f} s.",
            "",
            f"{N_ALPHAS} alphas (1e-2..1e7), the same `KFold({N_FOLDS})` folds, R^2 scoring, "
            "intercept fitted, float32, for `VoxelwiseEncoder` (kernel path) and himalaya "
            "`KernelRidgeCV` (numpy backend, `solver_params={'score_func': r2_score}`); himalaya "
            "`RidgeCV` only at p = 10,000 (it is far slower when n << p). Each tool in its own "
            "process on the same seeded data, warmed up on a tiny problem, best of up to 3 fits "
            "within 20 s. `fit` of neither tool forms the (p, t) primal coefficients; the "
            "`coef_` column times our first access to `coef_` (one GEMM, float32), which "
            "himalaya would need `get_primal_coef` for (peak RSS after it in brackets; the peak "
            "MB column is the fits' alone). Delta CV: max over targets of "
            "|best-alpha CV score ours - himalaya|; same alpha: fraction of targets with the "
            "same alpha (the others are float32 ties: himalaya diagonalises in float32, ours "
            "in float64).",
            "",
            "| n | p | targets | ours (s) | himalaya KernelRidgeCV (s) | speed-up | CPU-time "
            "speed-up | himalaya RidgeCV (s) | delta CV | same alpha | coef_ on access (s, peak) "
            "| peak MB ours / KernelRidgeCV | MB after data |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            *([""] + notes if notes else []),
        ]
    )
    if not args.no_write:
        write_section("encoding_kernel", md)
    print(md)
    return 0


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
