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
   max statistic, max cluster mass, max TFCE), and its share of the chunk's null computation,
   also with spatio-temporal clusters (``adjacency``: 306 sensors on a sphere, ~7 neighbours);
3. the sign-flip spatio-temporal cluster test of 20 subjects x 306 channels x 301 times
   (``permutation_cluster_1samp(..., adjacency=)``) against mne.stats'
   ``spatio_temporal_cluster_1samp_test`` on the same data, adjacency and threshold (the
   observed cluster masses asserted equal), ``--flips`` sign flips each, and with
   spatio-temporal TFCE (``--tfce-flips``, the scores asserted equal to mne's).

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


def _reduction(n_perm, n_ch, n_times, repeats, seed=1, with_tfce=True):
    """The reduction of one chunk of one layer (counts, maxima of statistic, cluster, TFCE)."""
    from neuroprobe.estimators.temporal import _options, _reduce

    rng = np.random.default_rng(seed)
    null = rng.standard_normal((n_perm, n_ch, n_times)).cumsum(axis=2) * 0.02
    obs = rng.standard_normal((n_ch, n_times)).cumsum(axis=1) * 0.02
    threshold, opts = _options(obs, null, 1, None, {} if with_tfce else None)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        _reduce(obs, null, 1, threshold, opts)
        best = min(best, time.perf_counter() - t0)
    return best


def _sensors(n_ch, seed=0):
    """A synthetic sensor adjacency: points on a sphere, neighbours closer than 0.3 radii."""
    from neuroprobe.solvers.temporal import channel_neighbourhoods

    pos = np.random.default_rng(seed).standard_normal((n_ch, 3))
    pos /= np.linalg.norm(pos, axis=1, keepdims=True)
    A = channel_neighbourhoods(pos, 0.3)
    np.fill_diagonal(A, False)
    return A


def _st_reduction(n_perm, n_ch, n_times, A, repeats, seed=1, with_tfce=False):
    from neuroprobe.estimators.temporal import _options, _reduce
    from neuroprobe.solvers.adjacency import check_adjacency

    rng = np.random.default_rng(seed)
    null = rng.standard_normal((n_perm, n_ch, n_times)).cumsum(axis=2) * 0.02
    obs = rng.standard_normal((n_ch, n_times)).cumsum(axis=1) * 0.02
    threshold, opts = _options(obs, null, 1, None, {} if with_tfce else None)
    A = check_adjacency(A, n_ch)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        _reduce(obs, null, 1, threshold, opts, A)
        best = min(best, time.perf_counter() - t0)
    return best


def _vs_mne(n_sub, n_ch, n_times, A, n_flips, repeats, seed=2, tfce=None):
    """Wall time of ours and of mne's spatio-temporal sign-flip cluster test (min of
    ``repeats``, interleaved); the observed clusters' masses (TFCE: scores) must agree."""
    import mne
    from scipy import sparse

    from neuroprobe.solvers.temporal import permutation_cluster_1samp

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_sub, n_ch, n_times))
    X[:, : n_ch // 8, n_times // 3:n_times // 2] += 0.8
    ours, theirs = np.inf, np.inf
    threshold = 2.5 if tfce is None else tfce
    for _ in range(repeats):
        t0 = time.perf_counter()
        t_obs, labels, p, _ = permutation_cluster_1samp(X, threshold, n_flips, tail=1,
                                                        random_state=0, adjacency=A)
        ours = min(ours, time.perf_counter() - t0)
        t0 = time.perf_counter()
        t_mne, clusters, p_mne, _ = mne.stats.spatio_temporal_cluster_1samp_test(
            X.transpose(0, 2, 1), threshold=threshold, n_permutations=n_flips, tail=1,
            adjacency=sparse.coo_matrix(A), n_jobs=1, seed=0, out_type="mask", verbose=False)
        theirs = min(theirs, time.perf_counter() - t0)
    if tfce is not None:
        from neuroprobe.solvers.temporal import tfce as enhance

        scores = enhance(t_obs, **tfce, tail=1, adjacency=A)
        np.testing.assert_allclose(scores, t_mne.T, rtol=1e-8, atol=1e-8)
        return ours, theirs, t_obs.size, float(p.min()), float(np.min(p_mne))
    mine = np.sort([t_obs[labels == k].sum() for k in range(1, labels.max() + 1)])
    ref = np.sort([t_mne[m].sum() for m in clusters])
    np.testing.assert_allclose(mine, ref, rtol=1e-9)
    return ours, theirs, len(ref), float(min(p)), float(min(p_mne))


def main(argv=None):
    from benchmarks._results import machine

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="a quick run (30 stimuli)")
    parser.add_argument("--permutations", type=int, nargs="+", default=[64, 192])
    parser.add_argument("--flips", type=int, default=1000)
    parser.add_argument("--tfce-flips", type=int, default=32)
    parser.add_argument("--subjects", type=int, default=20)
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
    t_cluster = _reduction(chunk, n_ch, n_times, repeats=3, with_tfce=False)
    A = _sensors(n_ch)
    t_st = _st_reduction(chunk, n_ch, n_times, A, repeats=3)
    t_st_tfce = _st_reduction(chunk, n_ch, n_times, A, repeats=1, with_tfce=True)
    ours, theirs, n_clusters, p_ours, p_mne = _vs_mne(args.subjects, n_ch, n_times, A,
                                                      args.flips, repeats=2)
    step = 0.2
    tf_ours, tf_theirs, _, tf_p, tf_p_mne = _vs_mne(
        args.subjects, n_ch, n_times, A, args.tfce_flips, repeats=1,
        tfce=dict(start=0.0, step=step))
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
        f"{per_perm * chunk:.1f} s to draw and score the chunk "
        f"({100 * t_red / (per_perm * chunk):.1f} %). "
        f"A kept null of {n_full:,} permutations x {n_layers} layers at this size: "
        f"{kept_full / 1e9:.1f} GB; reduced: the peak above, whatever the permutations. "
        f"Without TFCE (counts, max statistic, max cluster mass) it takes "
        f"{t_cluster * 1e3:.0f} ms; with spatio-temporal clusters (`adjacency`, {n_ch} sensors "
        f"on a sphere, {A.sum(1).mean():.1f} neighbours each) {t_st * 1e3:.0f} ms, "
        f"{t_st_tfce:.1f} s with spatio-temporal TFCE (50 thresholds, every one labelled "
        "over channels x time).",
        "",
        f"Sign-flip spatio-temporal cluster test, {args.subjects} subjects x {n_ch} channels x "
        f"{n_times} times, t threshold 2.5, {args.flips:,} flips, the same adjacency, one "
        f"thread each, min of 2 interleaved runs; {n_clusters} observed clusters, masses equal "
        f"to mne's (rtol 1e-9), smallest p {p_ours:.4f} (mne {p_mne:.4f}):",
        "",
        "| | wall | ratio |",
        "|---|---|---|",
        f"| `permutation_cluster_1samp(..., adjacency=A)` | {ours:.2f} s | "
        f"**{theirs / ours:.1f}x** |",
        f"| mne `spatio_temporal_cluster_1samp_test` | {theirs:.2f} s | 1 |",
        "",
        f"The same with spatio-temporal TFCE (start 0, step {step}, the thresholds up to the "
        f"max t; {args.tfce_flips} flips, one run each; scores equal to mne's TFCE `t_obs` "
        f"within 1e-8; smallest p {tf_p:.4f}, mne {tf_p_mne:.4f}):",
        "",
        "| | wall | ratio |",
        "|---|---|---|",
        f"| `permutation_cluster_1samp(..., dict(start=0, step={step}), adjacency=A)` | "
        f"{tf_ours:.1f} s | **{tf_theirs / tf_ours:.1f}x** |",
        f"| mne `spatio_temporal_cluster_1samp_test(threshold=dict(...))` | {tf_theirs:.1f} s | "
        "1 |",
        "",
    ])
    print(text)
    if args.write:
        from benchmarks._results import write_section

        write_section("temporal_channels", text)


if __name__ == "__main__":
    main()
