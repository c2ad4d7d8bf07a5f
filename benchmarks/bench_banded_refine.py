"""Benchmark: gradient refinement of banded ridge vs the search and himalaya's hyper-gradient.

Default size: n = 600 scans in 5 runs (leave-one-run-out: 5 folds of 480 training scans), 3
bands of 150, 250 and 350 features (p = 750 > 480: kernel systems), 500 voxels with planted
per-voxel band shares (Dirichlet) and noise; a sixth run (120 scans) is held out. Data centred,
no intercept (himalaya's hyper-gradient has none), R^2 scoring, float64 for the refinement.

Methods, in one process, repeats interleaved (min time of each):

* ``search``: ``banded_ridge_cv`` with 20 candidates (corners, centre, Dirichlet draws) x 20
  alphas, float32 (the estimator's default).
* ``refine_k``: ``refine_deltas`` from the search's best, ``k`` evaluations (each: per voxel
  5 Cholesky factorisations of 480 x 480 and the gradient).
* ``himalaya_k``: ``solve_multiple_kernel_ridge_hyper_gradient`` from the same start (zero
  weights raised to 1e-3, as ours), ``max_iter=k`` (its defaults: gradient-descent inner
  solver, conjugate-gradient hyper-gradient), numpy backend, float64.

Every result is scored by the same exact mean CV R^2 (``cv_score_gradient``) and by the held-out
R^2 of its refit on the 600 scans.

    OMP_NUM_THREADS=1 python benchmarks/bench_banded_refine.py   # default size, writes RESULTS.md
    OMP_NUM_THREADS=1 python benchmarks/bench_banded_refine.py --voxels 100 --no-write  # print only

One BLAS thread: on the shared 2-core machine a threaded BLAS made the per-voxel Cholesky
factorisations ~20x slower (thread synchronisation under oversubscription).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_data(n, sizes, t, runs, seed=0):
    rng = np.random.default_rng(seed)
    run_len = n // runs
    n_all = n + run_len
    X = rng.standard_normal((n_all, sum(sizes)))
    edges = np.cumsum([0, *sizes])
    share = rng.dirichlet(np.full(len(sizes), 0.7), t)
    W = np.zeros((sum(sizes), t))
    for b in range(len(sizes)):
        W[edges[b]:edges[b + 1]] = rng.standard_normal((sizes[b], t)) * np.sqrt(
            share[:, b] / sizes[b])
    Y = X @ W + 1.5 * rng.standard_normal((n_all, t))
    groups = np.repeat(np.arange(runs), run_len)
    X_tr, Y_tr = X[:n] - X[:n].mean(axis=0), Y[:n] - Y[:n].mean(axis=0)
    X_te = X[n:] - X[:n].mean(axis=0)
    Y_te = Y[n:] - Y[:n].mean(axis=0)
    bands = [np.arange(a, b) for a, b in zip(edges[:-1], edges[1:])]
    return X_tr, Y_tr, groups, X_te, Y_te, bands


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--sizes", type=int, nargs="+", default=[150, 250, 350])
    ap.add_argument("--voxels", type=int, default=500)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--iters", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    from sklearn.model_selection import LeaveOneGroupOut

    from benchmarks._results import machine, write_section
    from neuroprobe.solvers import banded
    from neuroprobe.solvers import banded_refine as refine
    from neuroprobe.solvers.backend import get_backend

    X, Y, groups, X_te, Y_te, bands = make_data(args.n, args.sizes, args.voxels, args.runs)
    folds = list(LeaveOneGroupOut().split(X, groups=groups))
    be = get_backend("numpy")
    alphas = np.logspace(-2, 7, 20)
    cands = banded.simplex_candidates(len(bands), 20, random_state=0)
    load_before = open("/proc/loadavg").read().split()[:3]

    def run_search():
        plan = banded.make_banded_plan(X, bands, folds, backend=be, dtype=np.float32,
                                       fit_intercept=False)
        res = banded.banded_ridge_cv(plan, Y, cands, alphas)
        return cands[res["best_candidate"]], res["best_alpha"]

    g0, a0 = run_search()
    rplan = refine.make_refine_plan(X, bands, folds, backend=be, fit_intercept=False)
    start = refine.deltas_from(g0, a0)

    def run_refine(k):
        plan = refine.make_refine_plan(X, bands, folds, backend=be, fit_intercept=False)
        return refine.refine_deltas(plan, Y, g0, a0, scoring="r2", n_iter=k)["deltas"]

    def run_himalaya(k):
        from himalaya.backend import set_backend
        from himalaya.kernel_ridge import solve_multiple_kernel_ridge_hyper_gradient

        set_backend("numpy", on_error="raise")
        Ks = np.stack([X[:, b] @ X[:, b].T for b in bands])
        init = refine.deltas_from(np.maximum(g0, 1e-3), a0).T
        out = solve_multiple_kernel_ridge_hyper_gradient(
            Ks, Y, cv=folds, initial_deltas=init, max_iter=k, tol=None, progress_bar=False)
        return np.asarray(out[0]).T

    methods = {"search": lambda: start}
    for k in args.iters:
        methods[f"refine_{k}"] = (lambda k=k: run_refine(k))
        methods[f"himalaya_{k}"] = (lambda k=k: run_himalaya(k))
    times = {m: [] for m in methods}
    results = {}
    t_search = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        run_search()
        t_search.append(time.perf_counter() - t)
        for name, fn in methods.items():
            if name == "search":
                continue
            t = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t)
            print(f"# {name}: {times[name][-1]:.1f} s", file=sys.stderr, flush=True)
    times["search"] = t_search
    results["search"] = start
    load_after = open("/proc/loadavg").read().split()[:3]

    def heldout(deltas):
        full = refine.make_refine_plan(X, bands, backend=be, fit_intercept=False)
        coef, _ = refine.refit_deltas(full, Y, deltas)
        res = Y_te - X_te @ coef
        yc = Y_te - Y_te.mean(axis=0)
        return 1 - (res ** 2).sum(axis=0) / (yc ** 2).sum(axis=0)

    base_cv = refine.cv_score_gradient(rplan, Y, start, "r2", gradient=False)[0]
    base_te = heldout(start)
    rows = []
    for name in methods:
        d = np.where(np.isfinite(results[name]), results[name], -50.0)
        cv = refine.cv_score_gradient(rplan, Y, d, "r2", gradient=False)[0]
        te = heldout(d)
        rows.append((name, min(times[name]), cv.mean(), (cv - base_cv).mean(),
                     np.mean(cv < base_cv - 1e-9), te.mean(), (te - base_te).mean()))
    n_tr = len(folds[0][0])
    header = (f"n = {args.n} ({args.runs} runs, leave-one-run-out: {len(folds)} folds of {n_tr}),"
              f" bands {args.sizes} (p = {sum(args.sizes)}, kernel systems), {args.voxels} "
              f"voxels, planted Dirichlet(0.7) band shares; held-out run of {args.n // args.runs}"
              f" scans. Load average {' / '.join(load_before)} before, "
              f"{' / '.join(load_after)} after; min of {args.repeats} interleaved repeats.")
    table = ["| method | time (s) | mean CV R^2 | CV gain vs search | voxels worse than "
             "search | held-out R^2 | held-out gain |", "|---|---|---|---|---|---|---|"]
    for name, t, cv, gain, worse, te, te_gain in rows:
        what = "search time" if name == "search" else "time after the search"
        table.append(f"| {name} | {t:.2f} ({what}) | {cv:.5f} | {gain:+.5f} | {worse:.1%} | "
                     f"{te:.5f} | {te_gain:+.5f} |")
    text = "\n".join([
        "### Banded ridge: gradient refinement of the search's best (CPU)", "",
        f"Machine: {machine()}; 2 shared cores ({os.cpu_count()} visible). Script: "
        f"`OMP_NUM_THREADS=1 python benchmarks/bench_banded_refine.py`.", "", header, "",
        "`search`: 20 candidates x 20 alphas, float32. `refine_k`: k evaluations of "
        "`refine_deltas` (monotone quasi-Newton, float64). `himalaya_k`: "
        "`solve_multiple_kernel_ridge_hyper_gradient(max_iter=k)` from the same start, its "
        "default solvers, float64. Every row is scored by the same exact mean CV R^2; times of "
        "the refinements exclude the search.", "", *table])
    print(text)
    if not args.no_write:
        write_section("banded_refine", text)


if __name__ == "__main__":
    main()
