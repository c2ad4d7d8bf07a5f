"""Benchmark: PermutationTest over BandedRidgeEncoder, fast path vs refits (CPU).

``--permutations`` mode (the only one): n = 600 scans in 6 runs, 2 bands (50 and 100 features),
2000 voxels (a third driven by band 0, a third by band 1, a third by both), 20 band-weight
candidates, 20 alphas, leave-one-run-out outer folds (inner: leave-one-run-out within the five
training runs), R^2, float32, circular shifts within runs, 200 permutations.

* ``fast``: ``PermutationTest(BandedRidgeEncoder, statistic="score")``: the nested search once per
  outer fold on the observed data, then every permutation through the reused fold operators.
* ``fast split``: the same with ``statistic="split"`` (per-band p-values).
* ``refit``: the whole nested CV of the map (``cross_val_score_targets``, groups passed to
  every fit) on each permuted Y, what a permutation test without the fast path costs; timed on
  ``--refits`` permutations and extrapolated (``per permutation x n_permutations + observed``).
  (PermutationTest's own refit path fits without ``groups``, so it cannot run the encoder's
  ``cv="leave-one-run-out"``.)

Fast and refit runs are interleaved ``--repeats`` times; the minimum of each is reported.

    python benchmarks/bench_banded_permutation.py --permutations 200
    python benchmarks/bench_banded_permutation.py --permutations 200 --write   # RESULTS.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_data(n, band_sizes, t, n_runs, seed=0):
    rng = np.random.default_rng(seed)
    runs = np.repeat(np.arange(n_runs), n // n_runs)
    X = rng.standard_normal((len(runs), sum(band_sizes)), dtype=np.float32)
    edges = np.cumsum([0] + list(band_sizes))
    W = np.zeros((X.shape[1], t), dtype=np.float32)
    kind = np.arange(t) % 3
    for b in range(len(band_sizes)):
        use = (kind == b) | (kind == 2)
        rows = slice(edges[b], edges[b + 1])
        W[rows, use] = rng.standard_normal((band_sizes[b], int(use.sum())),
                                           dtype=np.float32) / np.sqrt(band_sizes[b])
    Y = X @ W + 1.5 * rng.standard_normal((len(runs), t), dtype=np.float32)
    bands = [slice(int(edges[b]), int(edges[b + 1])) for b in range(len(band_sizes))]
    return X, Y, runs, bands


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--bands", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--voxels", type=int, default=2000)
    parser.add_argument("--refits", type=int, default=2, help="permutations actually refitted")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="write the RESULTS.md section")
    args = parser.parse_args(argv)

    from sklearn.model_selection import LeaveOneGroupOut

    from benchmarks._results import machine, write_section
    from neuroprobe.estimators.banded import BandedRidgeEncoder
    from neuroprobe.estimators.permutation import PermutationTest
    from neuroprobe.model_selection import cross_val_score_targets
    from neuroprobe.solvers.permutation import draw_permutations

    X, Y, runs, bands = make_data(args.n, args.bands, args.voxels, args.runs)
    enc = BandedRidgeEncoder(bands=bands, cv="leave-one-run-out", scoring="r2",
                             random_state=0)
    cv = LeaveOneGroupOut()
    kw = dict(n_permutations=args.permutations, cv=cv, scheme="circular", random_state=0)
    perms = draw_permutations(len(X), args.refits, runs, 0, scheme="circular")
    load0 = Path("/proc/loadavg").read_text().split()[:3]
    times = {"fast": [], "fast split": [], "observed": [], "refit / perm": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fast = PermutationTest(enc, **kw).fit(X, Y, groups=runs)
        times["fast"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        split = PermutationTest(enc, statistic="split", **kw).fit(X, Y, groups=runs)
        times["fast split"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        observed = cross_val_score_targets(enc, X, Y, cv=cv, groups=runs).mean(axis=0)
        times["observed"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for perm in perms:  # the whole nested CV of the map on each permuted Y
            cross_val_score_targets(enc, X, Y[perm], cv=cv, groups=runs)
        times["refit / perm"].append((time.perf_counter() - t0) / args.refits)
    load1 = Path("/proc/loadavg").read_text().split()[:3]
    best = {k: min(v) for k, v in times.items()}
    refit_total = best["refit / perm"] * args.permutations + best["observed"]
    assert np.allclose(fast.score_, observed, atol=1e-4), "observed statistic != cross_val"
    n_sig = int(np.sum(fast.pvalue_fwe_ <= 0.05))
    kind = np.arange(args.voxels) % 3  # make_data: 0 band 0 only, 1 band 1 only, 2 both
    driven = [(kind == b) | (kind == 2) for b in range(len(args.bands))]
    n_sig_band = [f"band {b}: {int(np.sum(p[d] <= 0.05))} of {int(d.sum())} driven, "
                  f"{int(np.sum(p[~d] <= 0.05))} of {int((~d).sum())} not"
                  for b, (p, d) in enumerate(zip(split.pvalue_fwe_, driven))]
    rows = [
        ("fast (score)", best["fast"], best["fast"] - best["observed"]),
        ("fast (split, per band)", best["fast split"], best["fast split"] - best["observed"]),
        (f"refit (x{args.permutations}, extrapolated from {args.refits})", refit_total,
         refit_total - best["observed"]),
    ]
    lines = [
        "### PermutationTest over BandedRidgeEncoder: fast path vs refits (CPU)",
        "",
        f"Machine: {machine()}; shared with other engineers' jobs, load average "
        f"{' / '.join(load0)} before, {' / '.join(load1)} after. Script: "
        f"`python benchmarks/bench_banded_permutation.py --permutations {args.permutations}`. "
        f"n = {args.n} scans ({args.runs} runs), bands {' + '.join(map(str, args.bands))} "
        f"features (primal), {args.voxels} voxels, 20 candidates x 20 alphas, "
        "leave-one-run-out outer and inner folds, R^2, float32, circular shifts within runs. "
        f"Minimum of {args.repeats} interleaved repeats. \"observed\" = the nested CV of the "
        f"map (cross_val_score_targets), {best['observed']:.1f} s, paid by every row; \"null "
        "part\" = wall - observed.",
        "",
        "| method | wall (s) | null part (s) | time / fast |",
        "|---|---|---|---|",
    ]
    for name, total, null in rows:
        lines.append(f"| {name} | {total:.1f} | {null:.1f} | {total / best['fast']:.1f} |")
    lines += [
        "",
        f"Speed-up of the fast path over refits: **{refit_total / best['fast']:.0f}x** "
        f"({best['refit / perm']:.1f} s per refitted permutation vs "
        f"{(best['fast'] - best['observed']) / args.permutations * 1e3:.0f} ms per permutation "
        f"through the reused fold operators). FWE p <= 0.05: {n_sig} of {args.voxels} voxels "
        f"(score); per band (split shares, FWE per band): {'; '.join(n_sig_band)}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("banded_permutation", text)


if __name__ == "__main__":
    main()
