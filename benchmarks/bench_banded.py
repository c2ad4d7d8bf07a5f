"""Benchmark: BandedRidgeEncoder vs himalaya MultipleKernelRidgeCV and BandedRidgeCV.

The issue's size by default: n = 1200 scans in 4 runs, 2 bands of 200 and 400 features x 4
delays (2400 columns), 5000 voxels, 20 band-weight candidates (the corners, the centre and 17
Dirichlet draws, the same array for every method), 20 alphas, leave-one-run-out folds, R^2 with
an intercept, float32. Held-out R^2 on a fifth run (300 scans) compares the fitted models voxel
by voxel. Every method runs in its own subprocess (fresh data from the same seed), so its peak
resident memory is its own.

    python benchmarks/bench_banded.py                   # the issue's size
    python benchmarks/bench_banded.py --voxels 1000     # smaller
    python benchmarks/bench_banded.py --methods ours himalaya_mkr   # skip BandedRidgeCV

Methods: ``ours`` (``BandedRidgeEncoder``, solver chosen automatically: kernel here, p > n),
``ours_primal`` (forced primal), ``himalaya_mkr`` (``MultipleKernelRidgeCV`` on precomputed
linear kernels, random search; the kernels are computed inside the timing), ``himalaya_banded``
(``BandedRidgeCV``, random search, primal; its refit fails on exact zero weights, so its
corners are 1e-6 instead of 0). Writes the ``banded`` section of RESULTS.md.
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

N_RUNS = 4
DELAYS = (1, 2, 3, 4)


def make_data(n, band_sizes, t, seed=0):
    """Delayed random features (4 training runs + 1 test run) and voxels driven by one band or
    both. Returns ``X, Y, runs, X_test, Y_test, band_index``."""
    from neuroprobe.transformers.delays import Delayer

    rng = np.random.default_rng(seed)
    run_len = n // N_RUNS
    runs = np.repeat(np.arange(N_RUNS + 1), run_len)
    raw = [rng.standard_normal((len(runs), f), dtype=np.float32) for f in band_sizes]
    delayed = [Delayer(delays=DELAYS).fit_transform(r, runs=runs).astype(np.float32)
               for r in raw]
    X_all = np.hstack(delayed)
    edges = np.cumsum([0] + [d.shape[1] for d in delayed])
    W = np.zeros((X_all.shape[1], t), dtype=np.float32)
    kind = np.arange(t) % 3  # 0: band 0 only, 1: band 1 only, 2: both
    for b in range(len(band_sizes)):
        rows = slice(edges[b], edges[b + 1])
        use = (kind == b) | (kind == 2)
        W[rows, use] = rng.standard_normal((edges[b + 1] - edges[b], int(use.sum())),
                                           dtype=np.float32) / np.sqrt(edges[b + 1] - edges[b])
    Y_all = X_all @ W + 1.5 * rng.standard_normal((len(runs), t), dtype=np.float32)
    train = runs < N_RUNS
    bands = [np.arange(edges[b], edges[b + 1]) for b in range(len(band_sizes))]
    return (X_all[train], Y_all[train], runs[train], X_all[~train], Y_all[~train], bands)


def sgemm_gflops(size=2000, repeat=3):
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    a @ a
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def kernel_flops(n, p, t, n_cand, n_alphas, k=N_RUNS):
    """2 x multiply-adds of the kernel path's products (solvers/banded.py): the band Grams, per
    candidate and fold the held-out projection, ``U^T y_train`` or the all-alpha resolvent, every
    target's held-out predictions; the refit (dual, then X^T dual). Eigendecompositions not
    counted."""
    n_te = n / k
    n_tr = n - n_te
    grams = n * n * p
    if t < n_alphas * n_te:  # the "direct" route: U^T y_train, then every alpha's predictions
        per_fold = n_te * n_tr * n_tr + n_tr * n_tr * t + n_alphas * n_te * n_tr * t
    else:  # the all-alpha resolvent, then one product per target
        per_fold = n_te * n_tr * n_tr * (1 + n_alphas) + n_alphas * n_te * n_tr * t
    refit = 2 * n * n * t + n * p * t
    return 2 * (grams + n_cand * k * per_fold + refit)


def primal_flops(n, p, t, n_cand, n_alphas, k=N_RUNS):
    n_te = n / k
    per_fold = p * p * t + n_alphas * n_te * p * t + n_te * p * p
    return 2 * (n * p * p + n_cand * (n * p * t + k * per_fold) + 2 * n * p * t + p * p * t)


# --------------------------------------------------------------------------- worker
def run_worker(method, n, sizes, t, n_cand, n_alphas):
    import warnings

    import himalaya.kernel_ridge  # noqa: F401 - imports outside the timed region
    import himalaya.ridge  # noqa: F401
    from sklearn.model_selection import LeaveOneGroupOut

    import neuroprobe.estimators.banded  # noqa: F401
    from benchmarks._results import peak_rss_mb
    from neuroprobe.solvers.banded import simplex_candidates

    X, Y, runs, Xt, Yt, bands = make_data(n, sizes, t)
    cands = simplex_candidates(len(bands), n_cand, random_state=0)
    alphas = np.logspace(-2, 7, n_alphas)
    folds = list(LeaveOneGroupOut().split(X, groups=runs))
    base = peak_rss_mb()
    info = {}
    t0, c0 = time.perf_counter(), time.process_time()
    if method in ("ours", "ours_primal"):
        from neuroprobe.estimators.banded import BandedRidgeEncoder

        est = BandedRidgeEncoder(bands=[slice(int(b[0]), int(b[-1]) + 1) for b in bands],
                                 alphas=alphas, candidates=cands, cv="leave-one-run-out",
                                 solver="primal" if method == "ours_primal" else "auto")
        est.fit(X, Y, groups=runs)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        pred = est.predict(Xt)
        info["solver"] = est.solver_
        gammas = est.best_gammas_
    else:
        from himalaya.backend import set_backend
        from himalaya.scoring import r2_score

        set_backend("numpy", on_error="raise")
        params = dict(n_iter=cands, alphas=alphas, score_func=r2_score, progress_bar=False)
        if method == "himalaya_mkr":
            from himalaya.kernel_ridge import MultipleKernelRidgeCV

            m = X.mean(axis=0)  # linear kernels of the centred bands (ours centres too)
            Ks = np.stack([(X[:, b] - m[b]) @ (X[:, b] - m[b]).T for b in bands])
            est = MultipleKernelRidgeCV(kernels="precomputed", solver="random_search",
                                        solver_params=params, cv=folds, fit_intercept=True)
            est.fit(Ks, Y)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            Kt = np.stack([(Xt[:, b] - m[b]) @ (X[:, b] - m[b]).T for b in bands])
            pred = np.asarray(est.predict(Kt))
        elif method == "himalaya_banded":
            from himalaya.ridge import BandedRidgeCV

            groups = np.concatenate([np.full(len(b), i) for i, b in enumerate(bands)])
            # BandedRidgeCV's refit fails (NaN) on exact zero weights: the corners become 1e-6
            params["n_iter"] = np.maximum(cands, 1e-6) / np.maximum(cands, 1e-6).sum(1)[:, None]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                est = BandedRidgeCV(groups=groups, solver="random_search", solver_params=params,
                                    cv=folds, fit_intercept=True)
                est.fit(X, Y)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            pred = np.asarray(est.predict(Xt))
        else:  # pragma: no cover
            raise ValueError(method)
        deltas = np.asarray(est.deltas_)
        g = np.exp(deltas)
        gammas = g / g.sum(axis=0, keepdims=True)
    from sklearn.metrics import r2_score as sk_r2

    info.update(seconds=elapsed, cpu_seconds=cpu, peak_mb=peak_rss_mb(), data_mb=base,
                r2=sk_r2(Yt, pred, multioutput="raw_values").tolist(),
                gamma0=np.asarray(gammas)[0].tolist())
    return info


def spawn(method, args, timeout):
    cmd = [sys.executable, __file__, "--worker", method, "--samples", str(args.samples),
           "--voxels", str(args.voxels), "--candidates", str(args.candidates),
           "--alphas", str(args.alphas), "--bands", *map(str, args.bands)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"seconds": float("nan"), "error": f"timeout > {timeout}s"}
    except subprocess.CalledProcessError as exc:
        return {"seconds": float("nan"), "error": exc.stderr.strip().splitlines()[-1][:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1200, help="training scans (4 runs)")
    parser.add_argument("--bands", type=int, nargs="+", default=[200, 400],
                        help="features per band (before the 4 delays)")
    parser.add_argument("--voxels", type=int, default=5000)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--alphas", type=int, default=20)
    parser.add_argument("--methods", nargs="+",
                        default=["ours", "himalaya_mkr", "himalaya_banded"])
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        res = run_worker(args.worker, args.samples, args.bands, args.voxels, args.candidates,
                         args.alphas)
        print(json.dumps(res))
        return 0
    from benchmarks._results import machine, write_section

    gflops = sgemm_gflops()
    load = os.getloadavg()
    res = {}
    for method in args.methods:
        res[method] = spawn(method, args, args.timeout)
        r = res[method]
        print(f"{method}: {r.get('seconds', float('nan')):.1f} s, "
              f"peak {r.get('peak_mb', float('nan')):.0f} MB {r.get('error', '')}", flush=True)
    n, t = args.samples, args.voxels
    p = len(DELAYS) * sum(args.bands)
    ours = res.get("ours", {})
    rows = []
    for method, r in res.items():
        if "error" in r:
            rows.append(f"| {method} | {r['error']} | | | | | |")
            continue
        ratio = r["seconds"] / ours["seconds"] if "seconds" in ours else float("nan")
        dr2 = (np.mean(np.abs(np.array(r["r2"]) - np.array(ours["r2"])))
               if "r2" in ours else float("nan"))
        agree = (np.mean(np.abs(np.array(r["gamma0"]) - np.array(ours["gamma0"])) < 1e-3)
                 if "gamma0" in ours else float("nan"))
        kind = r.get("solver", "kernel" if method == "himalaya_mkr" else "primal")
        flops = (kernel_flops if kind == "kernel" else primal_flops)(
            n, p, t, args.candidates, args.alphas)
        rate = flops / r["seconds"] / 1e9
        rows.append(
            f"| {method} ({kind}) | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {ratio:.2f} | "
            f"{r['peak_mb'] - r['data_mb']:.0f} (total {r['peak_mb']:.0f}) | "
            f"{np.mean(r['r2']):.4f} / {dr2:.2e} / {agree:.2f} | "
            f"{rate:.1f} ({rate / gflops:.0%}) |")
    table = "\n".join(rows)
    md = (
        f"### Banded ridge: BandedRidgeEncoder vs himalaya (CPU)\n\n"
        f"Machine: {machine()}; 2 cores shared with other engineers' jobs, load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start (absolute times are noisy; "
        f"ratios are from the same run). Measured sgemm: {gflops:.1f} GFLOP/s (float32, 2000^3)."
        f"\n\nSize: n = {n} scans in {N_RUNS} runs (leave-one-run-out), bands of "
        f"{' and '.join(map(str, args.bands))} features x {len(DELAYS)} delays (p = {p}), "
        f"{t} voxels (1/3 band 0, 1/3 band 1, 1/3 both), {args.candidates} candidates (corners, "
        f"centre, Dirichlet draws; the same array for all), {args.alphas} alphas "
        f"(logspace(-2, 7)), R^2 with intercept, float32, numpy backends. Held-out R^2 on a fifth "
        f"run of {n // N_RUNS} scans. Each method in its own process; peak memory is RSS above "
        f"the data. GFLOP/s counts the dominant products of our algorithm of that form (the same "
        f"count for himalaya of the same form; eigendecompositions not counted).\n\n"
        f"| method | wall (s) | CPU (s) | time / ours | peak MB | held-out R^2 mean / mean "
        f"abs delta vs ours / same band-0 weight | GFLOP/s (of sgemm) |\n"
        f"|---|---|---|---|---|---|---|\n{table}\n"
    )
    print(md)
    if not args.no_write:
        write_section("banded", md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
