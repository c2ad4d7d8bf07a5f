"""Benchmark: BandedRidgeEncoder vs himalaya MultipleKernelRidgeCV and BandedRidgeCV.

The issue's size by default: n = 1200 scans in 4 runs, 2 bands of 200 and 400 features x 4
delays (2400 columns), 5000 voxels, 20 band-weight candidates (the corners, the centre and 17
Dirichlet draws, the same array for every method), 20 alphas, leave-one-run-out folds, R^2 with
an intercept, float32. Held-out R^2 on a fifth run (300 scans) compares the fitted models voxel
by voxel. Every method runs in its own subprocess (fresh data from the same seed), so its peak
resident memory is its own.

    python benchmarks/bench_banded.py                   # the issue's size, 2 interleaved repeats
    python benchmarks/bench_banded.py --scaling         # + bands / features / voxels scaling
    python benchmarks/bench_banded.py --voxels 1000     # smaller
    python benchmarks/bench_banded.py --methods ours himalaya_mkr himalaya_banded

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


def kernel_flops(n, p, t, n_cand, n_alphas, k=None, n_folds=N_RUNS):
    """2 x multiply-adds of the products of a kernel-path search (eigendecompositions not
    counted). ``k`` (ours, solvers/banded.py): per candidate and fold the held-out projection
    ``K_te U``, the ``k`` alpha factors' resolvent ``A diag(r) U^T`` (or ``U^T y_train`` when
    there are fewer targets than ``k n_test``) and the factor predictions of every target
    (``k n_test n_train`` each) with their per-target Gram matrices. ``k=None`` (himalaya's
    random search): the resolvent and the predictions of every alpha. Both: the band Grams
    and the refit (dual, then X^T dual)."""
    n_te = n / n_folds
    n_tr = n - n_te
    grams = n * n * p
    if k is None:
        per_fold = n_te * n_tr * n_tr * (1 + n_alphas) + n_alphas * n_te * n_tr * t
    else:
        head = k * n_te * n_tr * n_tr if t >= k * n_te else n_tr * n_tr * t
        per_fold = n_te * n_tr * n_tr + head + k * n_te * n_tr * t + k * k * n_te * t
    refit = 2 * n * n * t + n * p * t
    return 2 * (grams + n_cand * n_folds * per_fold + refit)


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
    base = _reset_peak(peak_rss_mb)
    info = {}
    t0, c0 = time.perf_counter(), time.process_time()
    if method in ("ours", "ours_primal"):
        from neuroprobe.estimators.banded import BandedRidgeEncoder

        est = BandedRidgeEncoder(bands=[slice(int(b[0]), int(b[-1]) + 1) for b in bands],
                                 alphas=alphas, candidates=cands, cv="leave-one-run-out",
                                 solver="primal" if method == "ours_primal" else "auto")
        est.fit(X, Y, groups=runs)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        info["peak_mb"] = _peak(peak_rss_mb)
        pred = est.predict(Xt)
        info["solver"] = est.solver_
        gammas = est.best_gammas_
        if est.solver_ == "kernel":  # alpha factors kept (corners and centre, first fold)
            info["k"] = _mean_factors(X, bands, folds[:1], cands[:len(bands) + 1], alphas)
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

    info.setdefault("peak_mb", _peak(peak_rss_mb))
    info.update(seconds=elapsed, cpu_seconds=cpu, data_mb=base,
                r2=sk_r2(Yt, pred, multioutput="raw_values").tolist(),
                gamma0=np.asarray(gammas)[0].tolist())
    return info


def _status_mb(key):
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) / 1024 for ln in fh if ln.startswith(key + ":"))


def _reset_peak(fallback):
    """Reset this process's peak RSS (Linux ``clear_refs``) so that the fit's own peak is
    measured, not the data generation's; returns the current RSS in MiB."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _status_mb("VmRSS")
    except OSError:
        return fallback()


def _peak(fallback):
    try:
        return _status_mb("VmHWM")
    except OSError:
        return fallback()


def _mean_factors(X, bands, folds, cands, alphas):
    from neuroprobe.solvers import banded
    from neuroprobe.solvers.backend import get_backend

    plan = banded.make_banded_plan(X, bands, folds, backend=get_backend("numpy"))
    ks = [banded._kernel_folds(plan, g, alphas, False, banded.FACTOR_RTOL)[0].op_mean.shape[0]
          for g in cands]
    return float(np.mean(ks))


def spawn(method, size, timeout):
    n, sizes, t, n_cand, n_alphas = size
    cmd = [sys.executable, __file__, "--worker", method, "--samples", str(n),
           "--voxels", str(t), "--candidates", str(n_cand),
           "--alphas", str(n_alphas), "--bands", *map(str, sizes)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"seconds": float("nan"), "error": f"timeout > {timeout}s"}
    except subprocess.CalledProcessError as exc:
        return {"seconds": float("nan"), "error": exc.stderr.strip().splitlines()[-1][:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main
def run_interleaved(methods, size, repeat, timeout, log=True):
    """Every method ``repeat`` times, interleaved (A B A B ...); per method the fastest run."""
    best = {}
    for _ in range(repeat):
        for method in methods:
            r = spawn(method, size, timeout)
            if log:
                print(f"  {method}: {r.get('seconds', float('nan')):.1f} s, peak "
                      f"{r.get('peak_mb', float('nan')):.0f} MB {r.get('error', '')}", flush=True)
            old = best.get(method)
            if old is None or "error" in old or r.get("seconds", np.inf) < old["seconds"]:
                best[method] = r
    return best


def _rate(r, method, size):
    n, sizes, t, n_cand, n_alphas = size
    p = len(DELAYS) * sum(sizes)
    kind = r.get("solver", "kernel" if method == "himalaya_mkr" else "primal")
    if kind == "kernel":
        flops = kernel_flops(n, p, t, n_cand, n_alphas, k=r.get("k"))
    else:
        flops = primal_flops(n, p, t, n_cand, n_alphas)
    return kind, flops / r["seconds"] / 1e9


def main_rows(res, size, gflops):
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
        kind, rate = _rate(r, method, size)
        k = f", k = {r['k']:.1f}" if "k" in r else ""
        rows.append(
            f"| {method} ({kind}{k}) | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
            f"{ratio:.2f} | {r['peak_mb'] - r['data_mb']:.0f} (total {r['peak_mb']:.0f}) | "
            f"{np.mean(r['r2']):.4f} / {dr2:.2e} / {agree:.2f} | "
            f"{rate:.1f} ({rate / gflops:.0%}) |")
    return "\n".join(rows)


def scaling_sizes(args):
    """Modest sizes around n = 600 (4 runs), 2 bands of 100 features x 4 delays (p = 800,
    kernel path), 1000 voxels, 10 candidates: one factor varied at a time."""
    n, t, c, a = 600, 1000, 10, args.alphas
    grid = [("bands", f"{b} x 100", (n, [100] * b, t, c, a)) for b in (2, 3, 4, 5)]
    grid += [("features", f"2 x {f}", (n, [f, f], t, c, a)) for f in (200, 400)]
    grid += [("voxels", str(v), (n, [100, 100], v, c, a)) for v in (250, 4000)]
    return grid


def run_scaling(args, gflops):
    rows = []
    for what, label, size in scaling_sizes(args):
        print(f"scaling {what} = {label}", flush=True)
        res = run_interleaved(["ours", "himalaya_mkr"], size, args.scaling_repeat, args.timeout)
        o, h = res["ours"], res["himalaya_mkr"]
        if "error" in o or "error" in h:
            rows.append(f"| {what} | {label} | {o.get('error', '')} {h.get('error', '')} "
                        "| | | | | |")
            continue
        p = len(DELAYS) * sum(size[1])
        _, ro = _rate(o, "ours", size)
        _, rh = _rate(h, "himalaya_mkr", size)
        dr2 = np.mean(np.abs(np.array(o["r2"]) - np.array(h["r2"])))
        k = f", k = {o['k']:.1f}" if "k" in o else ""
        rows.append(
            f"| {what} | {label} (p = {p}, {size[2]} voxels) | {o.get('solver')}{k} | "
            f"{o['seconds']:.1f} | "
            f"{h['seconds']:.1f} | {h['seconds'] / o['seconds']:.2f} | "
            f"{o['peak_mb'] - o['data_mb']:.0f} / {h['peak_mb'] - h['data_mb']:.0f} | "
            f"{dr2:.1e} | {ro:.0f} ({ro / gflops:.0%}) / {rh:.0f} ({rh / gflops:.0%}) |")
    return (
        f"**Scaling** (ours vs MultipleKernelRidgeCV, same runs, min of "
        f"{args.scaling_repeat}): base n = 600 (4 runs), 2 bands of 100 features x 4 delays "
        f"(p = 800), 1000 voxels, 10 candidates, {args.alphas} alphas; one factor varied.\n\n"
        "| varied | value | our solver | ours (s) | himalaya (s) | himalaya / ours | "
        "peak MB ours / himalaya | mean abs delta held-out R^2 | GFLOP/s ours / himalaya "
        "(of sgemm) |\n|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1200, help="training scans (4 runs)")
    parser.add_argument("--bands", type=int, nargs="+", default=[200, 400],
                        help="features per band (before the 4 delays)")
    parser.add_argument("--voxels", type=int, default=5000)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--alphas", type=int, default=20)
    parser.add_argument("--methods", nargs="+", default=["ours", "himalaya_mkr"],
                        help="ours, ours_primal, himalaya_mkr, himalaya_banded")
    parser.add_argument("--repeat", type=int, default=2,
                        help="interleaved repeats of the main comparison (min taken)")
    parser.add_argument("--scaling", action="store_true",
                        help="also the scaling table (bands, features, voxels; about 5 min)")
    parser.add_argument("--scaling-repeat", type=int, default=1)
    parser.add_argument("--skip-main", action="store_true", help="only the scaling table")
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

    start = time.perf_counter()
    gflops = sgemm_gflops()
    load = os.getloadavg()
    size = (args.samples, args.bands, args.voxels, args.candidates, args.alphas)
    n, t = args.samples, args.voxels
    p = len(DELAYS) * sum(args.bands)
    md = (
        f"### Banded ridge: BandedRidgeEncoder vs himalaya (CPU)\n\n"
        f"Machine: {machine()}; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at "
        f"the start (2 cores shared with other jobs: absolute times are noisy, ratios are from "
        f"the same run, methods interleaved, each the fastest of {args.repeat}); "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}. Measured "
        f"sgemm: {gflops:.1f} GFLOP/s (float32, 2000^3).\n\n")
    if not args.skip_main:
        res = run_interleaved(args.methods, size, args.repeat, args.timeout)
        md += (
            f"Size: n = {n} scans in {N_RUNS} runs (leave-one-run-out), bands of "
            f"{' and '.join(map(str, args.bands))} features x {len(DELAYS)} delays (p = {p}), "
            f"{t} voxels (1/3 band 0, 1/3 band 1, 1/3 both), {args.candidates} candidates "
            f"(corners, centre, Dirichlet draws; the same array for all), {args.alphas} alphas "
            f"(logspace(-2, 7)), R^2 with intercept, float32, numpy backends. Held-out R^2 on "
            f"a fifth run of {n // N_RUNS} scans. Each method in its own process; peak memory "
            f"is RSS above the data. GFLOP/s: each method's own products (k: our alpha "
            f"factors; eigendecompositions not counted) over its wall time.\n\n"
            f"| method | wall (s) | CPU (s) | time / ours | peak MB | held-out R^2 mean / mean "
            f"abs delta vs ours / same band-0 weight | GFLOP/s (of sgemm) |\n"
            f"|---|---|---|---|---|---|---|\n{main_rows(res, size, gflops)}\n")
    if args.scaling:
        md += "\n" + run_scaling(args, gflops)
    md += f"\nScript runtime: {time.perf_counter() - start:.0f} s.\n"
    print(md)
    if not args.no_write:
        write_section("banded", md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
