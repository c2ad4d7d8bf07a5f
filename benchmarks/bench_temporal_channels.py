"""Per-channel time-resolved encoding statistics: the null reduced as it is drawn
(``permutation_test_time_resolved(..., average=False, keep_null=False)``) vs kept whole.

Size of issue 18: 92 stimuli x 306 channels x 301 times, layers of 100 features, 5-fold CV,
the default 10 alphas. The test of every channel keeps, per permutation, a statistic for each
of 8 layers x 306 channels x 301 windows: a kept null of 1,000 permutations is 5.9 GB. This
script measures

1. the peak traced memory (``tracemalloc``) and the wall time of one layer's test with the null
   kept and reduced, at ``--permutations`` (default 64 and 192: 1 and 3 chunks), so the
   reduced peak is seen not to grow with the permutations while the kept one does;
2. the reduction step alone on one chunk of one layer (64 permutations x 306 x 301: counts,
   max statistic, max cluster mass, max TFCE), and its share of the chunk's null computation.

``OMP_NUM_THREADS=1 python3 benchmarks/bench_temporal_channels.py [--small] [--write]``
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np


def _data(n_stim, n_ch, n_times, n_feat, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_stim, n_feat)).astype(np.float32)
    Y = rng.standard_normal((n_stim, n_ch, n_times)).astype(np.float32)
    Y[:, :, n_times // 3:n_times // 2] += 0.3 * (
        X @ rng.standard_normal((n_feat, n_ch)).astype(np.float32) / np.sqrt(n_feat))[:, :, None]
    return X, Y


def _run(X, Y, n_perm, keep, threshold=None):
    """Wall time and peak traced memory of one layer's per-channel test."""
    from neuroprobe import TimeResolved, VoxelwiseEncoder
    from neuroprobe.estimators.temporal import permutation_test_time_resolved

    tracemalloc.start()
    t0 = time.perf_counter()
    res = permutation_test_time_resolved(
        TimeResolved(VoxelwiseEncoder()), {"layer0": X}, Y, n_permutations=n_perm, cv=5,
        average=False, keep_null=keep, cluster_threshold=threshold, tfce=True, random_state=0,
        n_jobs=1)
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return wall, peak, res


def _reduction(n_perm, n_ch, n_times, repeats, seed=1):
    """The reduction of one chunk of one layer (counts, maxima of statistic, cluster, TFCE)."""
    from neuroprobe.estimators.temporal import _options, _reduce

    rng = np.random.default_rng(seed)
    null = rng.standard_normal((n_perm, n_ch, n_times)).cumsum(axis=2) * 0.02
    obs = rng.standard_normal((n_ch, n_times)).cumsum(axis=1) * 0.02
    threshold, opts = _options(obs, null, 1, None, {})
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        _reduce(obs, null, 1, threshold, opts)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    from benchmarks._results import machine

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="a quick run (30 stimuli)")
    parser.add_argument("--permutations", type=int, nargs="+", default=[64, 192])
    parser.add_argument("--write", action="store_true", help="write the RESULTS.md section")
    args = parser.parse_args(argv)
    n_stim, n_ch, n_times, n_feat, n_layers, n_full = 92, 306, 301, 100, 8, 1000
    if args.small:
        n_stim, n_ch, n_times = 30, 20, 50
    X, Y = _data(n_stim, n_ch, n_times, n_feat)
    load0 = open("/proc/loadavg").read().split()[:3]
    t_start = time.perf_counter()
    rows, walls = [], {}
    _run(X[:, :10], Y[:, :5, :20], 8, False)             # warm-up (imports, thread pools)
    for n_perm in args.permutations:
        threshold = None
        for keep in (False, True):      # kept: at the reduced run's (first chunk's) threshold
            wall, peak, res = _run(X, Y, n_perm, keep, threshold)
            threshold = res.cluster_threshold
            walls[n_perm, keep] = (wall, res)
            rows.append(f"| {n_perm} | {'kept' if keep else 'reduced'} | {wall:.1f} s | "
                        f"{peak / 1e6:,.0f} MB |")
    for n_perm in args.permutations:                      # the two give the same p-values
        a, b = walls[n_perm, True][1], walls[n_perm, False][1]
        assert np.array_equal(a.pvalue_fwe, b.pvalue_fwe)
        assert np.array_equal(a.cluster_pvalue, b.cluster_pvalue)
        assert np.array_equal(a.tfce_pvalue, b.tfce_pvalue)
    chunk = 64
    t_red = _reduction(chunk, n_ch, n_times, repeats=3)
    per_perm = walls[args.permutations[-1], False][0] / args.permutations[-1]
    kept_full = 8 * n_full * n_layers * n_ch * n_times
    load1 = open("/proc/loadavg").read().split()[:3]
    text = "\n".join([
        "### Per-channel time-resolved encoding statistics: the null reduced as it is drawn "
        f"(`OMP_NUM_THREADS=1 python3 benchmarks/bench_temporal_channels.py"
        f"{' --small' if args.small else ''}`, {time.perf_counter() - t_start:.0f} s)",
        "",
        f"Machine: {machine()}; load average {' '.join(load0)} before, {' '.join(load1)} "
        f"after; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}. One layer of "
        f"{n_feat} features, {n_stim} stimuli x {n_ch} channels x {n_times} times, 5-fold CV, "
        "10 alphas, `average=False` (one test per channel, FWE over channels x time), TFCE on, "
        "`n_jobs=1`; peak = `tracemalloc` peak of the whole call (numpy buffers included). "
        "Kept and reduced p-values asserted equal (max-stat, cluster, TFCE).",
        "",
        "| permutations | null | wall | peak traced memory |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Reduction of one chunk of one layer ({chunk} permutations x {n_ch} x {n_times}: "
        f"counts, max statistic, max cluster mass, max TFCE): {t_red * 1e3:.0f} ms, against "
        f"{per_perm * chunk:.1f} s to draw and score the chunk ({100 * t_red / (per_perm * chunk):.1f} %). "
        f"A kept null of {n_full:,} permutations x {n_layers} layers at this size: "
        f"{kept_full / 1e9:.1f} GB; reduced: the peak above, whatever the permutations.",
        "",
    ])
    print(text)
    if args.write:
        from benchmarks._results import write_section

        write_section("temporal_channels", text)


if __name__ == "__main__":
    main()
