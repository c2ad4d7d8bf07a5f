"""Time-resolved RSA kernels vs mne-rsa and mne.stats (equality), nulls calibrated."""

import numpy as np
import pytest
from scipy import stats

from neuroprobe.solvers.temporal import (
    cluster_pvalues,
    compare_rdms,
    max_stat_fwe,
    permutation_cluster_1samp,
    permutation_null,
    window_rdms,
)

mne = pytest.importorskip("mne")
mne_rsa = pytest.importorskip("mne_rsa")


def _epochs(n_stim=12, n_rep=3, n_ch=6, n_times=40, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n_stim * n_rep, n_ch, n_times))
    y = np.tile(np.arange(n_stim), n_rep)
    info = mne.create_info(n_ch, 100.0, "eeg")
    events = np.column_stack([np.arange(len(y)), np.zeros(len(y), int), y + 1])
    ep = mne.EpochsArray(data, info, events=events, tmin=-0.1, verbose=False)
    return ep, data, y


@pytest.mark.parametrize("metric", ["correlation", "sqeuclidean", "euclidean"])
@pytest.mark.parametrize("comparison", ["spearman", "pearson"])
@pytest.mark.parametrize("radius_s", [0.0, 0.03])
def test_equals_mne_rsa_epochs(metric, comparison, radius_s):
    ep, data, y = _epochs()
    rng = np.random.default_rng(1)
    models = [rng.random(66) for _ in range(3)]
    ref = mne_rsa.rsa_epochs(ep, models, temporal_radius=radius_s, epochs_rdm_metric=metric,
                             rsa_metric=comparison, y=y, verbose=False)
    avg = np.stack([data[y == k].mean(0) for k in range(12)])
    r = round(100 * radius_s)
    ours = compare_rdms(np.stack(models), window_rdms(avg, r, metric), comparison)
    np.testing.assert_allclose(ours, np.stack([e.data[0] for e in ref]), atol=1e-6)


def test_equals_mne_rsa_evokeds():
    ep, data, y = _epochs(seed=3)
    evokeds = [ep[y == k].average() for k in range(12)]
    model = np.random.default_rng(2).random(66)
    ref = mne_rsa.rsa_evokeds(evokeds, model, temporal_radius=0.02, verbose=False)
    avg = np.stack([e.data for e in evokeds])
    ours = compare_rdms(model[None], window_rdms(avg, 2, "correlation"))[0]
    np.testing.assert_allclose(ours, ref.data[0], atol=1e-6)


def test_radius_wider_than_epoch():
    with pytest.raises(ValueError, match="temporal_radius"):
        window_rdms(np.zeros((4, 2, 5)), 3)


def test_permutation_null_equals_brute_force():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 4, 8))
    brain = window_rdms(X, 1)
    models = rng.random((2, 45))
    null = permutation_null(models, brain, 5, random_state=7)
    perms = np.argsort(np.random.default_rng(7).random((5, 10)), axis=1)
    from scipy.spatial.distance import squareform
    for k, p in enumerate(perms):
        pm = np.stack([squareform(squareform(m)[np.ix_(p, p)]) for m in models])
        np.testing.assert_allclose(null[k], compare_rdms(pm, brain), atol=1e-10)


def test_null_pvalues_calibrated():
    rng = np.random.default_rng(5)
    pvals = []
    for seed in range(60):
        X = rng.standard_normal((10, 3, 3))
        brain = window_rdms(X, 0)
        model = rng.random((1, 45))
        obs = compare_rdms(model, brain)
        null = permutation_null(model, brain, 200, random_state=seed)
        pvals.append((1 + (null[:, 0, 0] >= obs[0, 0]).sum()) / 201)
    assert stats.kstest(pvals, "uniform").pvalue > 0.01


def test_max_stat_fwe_brute_force():
    rng = np.random.default_rng(0)
    obs, null = rng.standard_normal((3, 5)), rng.standard_normal((50, 3, 5))
    p = max_stat_fwe(obs, null)
    mx = null.max(axis=(1, 2))
    np.testing.assert_allclose(p, (1 + (mx[:, None, None] >= obs).sum(0)) / 51)


@pytest.mark.parametrize("tail", [0, 1, -1])
def test_cluster_equals_mne_stats(tail):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((8, 60))
    X[:, 20:30] += 1.5
    X[:, 45:50] -= 1.2
    thr = 2.0
    t, clusters, p, h0 = mne.stats.permutation_cluster_1samp_test(   # mne: a signed threshold
        X, threshold=-thr if tail == -1 else thr, n_permutations="all", tail=tail,
        out_type="mask", verbose=False)
    t2, labels, p2, h02 = permutation_cluster_1samp(X, thr, "all", tail)
    assert (tail * h02 >= 0).all() and (tail * h0 >= 0).all()      # H0 signed as mne's
    np.testing.assert_allclose(t2, t, rtol=1e-10)
    masses_ref = sorted(float(t[c].sum()) for c in clusters)
    masses = sorted(float(t2[labels == k].sum()) for k in range(1, labels.max() + 1))
    np.testing.assert_allclose(masses, masses_ref, rtol=1e-10)
    # same null distribution -> same p-values (MNE drops one flip of the exact set: compare H0)
    masses_mne = [t[c].sum() for c in clusters]
    np.testing.assert_allclose(cluster_pvalues(masses_mne, h0, tail), p, atol=1.5 / len(h0))
    mine = np.round(np.abs(h02), 8)
    assert set(np.round(np.abs(h0), 8)) <= set(mine)
    order_ref = np.argsort(masses_mne)
    order = np.argsort([t2[labels == k].sum() for k in range(1, labels.max() + 1)])
    np.testing.assert_allclose(p2[order], np.asarray(p)[order_ref], atol=2.5 / len(h0))


def test_rank_matches_scipy_with_and_without_ties():
    from neuroprobe.solvers.temporal import _rank
    rng = np.random.default_rng(0)
    V = rng.random((5, 30))
    V[2, :10] = 0.5
    V[4] = np.round(V[4], 1)
    np.testing.assert_array_equal(_rank(V)[0], stats.rankdata(V, axis=-1))


def test_cluster_fwe_brute_force():
    from neuroprobe.solvers.temporal import cluster_fwe
    rng = np.random.default_rng(3)
    obs = rng.standard_normal((3, 40))
    obs[1, 10:20] += 5.0
    null = rng.standard_normal((30, 3, 40))
    labels, p = cluster_fwe(obs, null, 1.0, tail=1)
    masses = [obs[labels == k].sum() for k in range(1, labels.max() + 1)]
    h0 = []
    for perm in null:
        best = 0.0
        for row in perm:  # brute force: run-length clusters per model, max over models
            mass = 0.0
            for v in row:
                mass = mass + v if v > 1.0 else 0.0
                best = max(best, mass)
        h0.append(best)
    ref = [(1 + sum(h >= m for h in h0)) / 31 for m in masses]
    np.testing.assert_allclose(p, ref)
    assert labels[1, 10:20].min() > 0 and p[labels[1, 15] - 1] <= 1 / 31 + 1e-12


def test_fwe_at_most_alpha_under_null():
    rng = np.random.default_rng(11)
    hits = 0
    n_sim = 40
    for seed in range(n_sim):
        X = rng.standard_normal((10, 3, 12))
        brain = window_rdms(X, 0)
        models = rng.random((2, 45))
        obs = compare_rdms(models, brain)
        null = permutation_null(models, brain, 99, random_state=seed)
        hits += max_stat_fwe(obs, null).min() <= 0.05
    assert hits / n_sim <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / n_sim)


def test_tfce_equals_mne_stats():
    from neuroprobe.solvers.temporal import _tstat, tfce
    rng = np.random.default_rng(8)
    X = rng.standard_normal((7, 50))
    X[:, 10:25] += 1.2
    thr = dict(start=0, step=0.2)
    t, _, p, h0 = mne.stats.permutation_cluster_1samp_test(
        X, threshold=thr, n_permutations="all", tail=1, verbose=False)
    scores = tfce(_tstat(X), 0.0, 0.2)
    # same null -> same per-sample p-values iff the TFCE scores are MNE's
    np.testing.assert_allclose(cluster_pvalues(scores, h0, 1), p, atol=1e-12)
    codes = np.arange(2 ** 7)
    flips = 1 - 2 * ((codes[:, None] >> np.arange(7)) & 1).astype(float)
    mine = tfce(_tstat(flips[:, :, None] * X[None]), 0.0, 0.2).max(axis=1)
    assert set(np.round(h0, 8)) <= set(np.round(mine, 8))
    _, _, p2, h02 = permutation_cluster_1samp(X, thr, "all", tail=1)
    np.testing.assert_allclose(h02, mine)
    np.testing.assert_allclose(p2, p, atol=1.5 / len(h0))


def test_peak_latency_planted_and_brute_force():
    from neuroprobe.solvers.temporal import peak_latency
    rng = np.random.default_rng(0)
    times = np.arange(100) / 100.0
    planted = [20, 45, 70]
    curves = 0.3 * rng.standard_normal((12, 3, 100))
    for layer, t0 in enumerate(planted):
        curves[:, layer] += np.exp(-0.5 * ((np.arange(100) - t0) / 4.0) ** 2)
    peak, low, high, boot = peak_latency(curves, times, 200, random_state=1)
    assert np.all(np.abs(peak - times[planted]) <= 0.04)
    assert np.all(np.diff(peak) > 0) and np.all(low <= peak) and np.all(peak <= high)
    assert np.all(high[:-1] < low[1:])  # deeper layers peak later, CIs apart
    rs = np.random.default_rng(1)
    idx = rs.integers(0, 12, (200, 12))
    ref = np.stack([times[curves[i].mean(0).argmax(1)] for i in idx])
    np.testing.assert_allclose(boot, ref)


@pytest.mark.parametrize("metric", ["correlation", "sqeuclidean", "euclidean"])
@pytest.mark.parametrize("radius", [0, 2])
def test_float32_gram_keeps_precision_in_sensor_units(metric, radius):
    """MEG-like units (1e-13 T) with channel offsets 20x the signal: float32 Gram = scipy pdist
    in float64 (correlation distances near 0 to 1e-6 absolute, float32's limit on 1 - r)."""
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(5)
    X = 1e-13 * (rng.standard_normal((12, 7, 9)) + 20 * rng.standard_normal((1, 7, 1)))
    got = window_rdms(X, radius, metric, dtype=np.float32)
    assert got.dtype == np.float64
    for w in range(got.shape[0]):
        ref = pdist(X[:, :, w:w + 2 * radius + 1].reshape(12, -1), metric)
        atol = 1e-6 if metric == "correlation" else 2e-5 * np.abs(ref).max()
        np.testing.assert_allclose(got[w], ref, rtol=2e-5, atol=atol)
        np.testing.assert_allclose(window_rdms(X, radius, metric, dtype=np.float64)[w], ref,
                                   rtol=1e-10, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("comparison", ["spearman", "pearson"])
def test_cross_temporal_rsa_equals_double_loop(comparison):
    from scipy.spatial.distance import pdist

    from neuroprobe.solvers.temporal import cross_temporal_rsa

    rng = np.random.default_rng(7)
    brain = rng.standard_normal((10, 6, 12))
    layers = [rng.standard_normal((10, 4, 7)), rng.standard_normal((10, 9, 5))]
    got = cross_temporal_rsa(layers, brain, model_radius=1, brain_radius=2,
                             model_metric="euclidean", comparison=comparison)
    corr = stats.spearmanr if comparison == "spearman" else stats.pearsonr
    for m, r in zip(layers, got):
        assert r.shape == (m.shape[2] - 2, 12 - 4)
        for i in range(r.shape[0]):
            a = pdist(m[:, :, i:i + 3].reshape(10, -1), "euclidean")
            for j in range(r.shape[1]):
                b = pdist(brain[:, :, j:j + 5].reshape(10, -1), "correlation")
                assert r[i, j] == pytest.approx(corr(a, b)[0], abs=1e-10)
    single = cross_temporal_rsa(layers[0], brain, model_radius=1, brain_radius=2,
                                model_metric="euclidean", comparison=comparison)
    np.testing.assert_allclose(single, got[0], atol=1e-12)
    with pytest.raises(ValueError, match=r"model\[0\]: 9 stimuli"):
        cross_temporal_rsa([layers[0][:9]], brain)


@pytest.mark.parametrize("n_groups", [2, 3])
def test_permutation_cluster_test_equals_mne_stats(n_groups):
    from neuroprobe.solvers.temporal import permutation_cluster_test

    rng = np.random.default_rng(11)
    groups = [rng.standard_normal((n, 50)) for n in (9, 7, 8)[:n_groups]]
    groups[0][:, 10:20] += 1.2
    groups[1][:, 30:36] -= 1.5
    F, clusters, p, h0 = mne.stats.permutation_cluster_test(
        groups, threshold=None, n_permutations=200, tail=1, seed=3, out_type="mask",
        verbose=False)
    F2, labels, p2, h02 = permutation_cluster_test(groups, None, 200, 1, random_state=3)
    np.testing.assert_allclose(F2, F, rtol=1e-10)
    if n_groups == 2:   # F = t ** 2 of the two-sample t test
        t = stats.ttest_ind(groups[0], groups[1]).statistic
        np.testing.assert_allclose(F2, t ** 2, rtol=1e-10)
    assert len(clusters) == labels.max() >= 1
    for c, pc in zip(clusters, p):          # same clusters (time order), masses and p-values
        mask = np.zeros(50, bool)
        mask[tuple(c)] = True                 # MNE gives 1-D clusters as slices
        k = labels[mask][0]
        np.testing.assert_array_equal(labels == k, mask)
        np.testing.assert_allclose(p2[k - 1], pc)
    np.testing.assert_allclose(h02, h0, rtol=1e-10)


@pytest.mark.parametrize("metric,comparison,radius", [("correlation", "spearman", 1),
                                                      ("sqeuclidean", "pearson", 0),
                                                      ("euclidean", "spearman", 2)])
def test_searchlight_rsa_equals_mne_rsa(metric, comparison, radius):
    from scipy.spatial.distance import pdist

    from neuroprobe.solvers.temporal import channel_neighbourhoods, searchlight_rsa

    rng = np.random.default_rng(12)
    names = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "Fz", "Cz", "Pz"]
    info = mne.create_info(names, 100.0, "eeg")
    X = rng.standard_normal((9, len(names), 10))
    ep = mne.EpochsArray(X, info, verbose=False)
    ep.set_montage(mne.channels.make_standard_montage("standard_1020"), verbose=False)
    models = [pdist(rng.standard_normal((9, 3))) for _ in range(2)]
    ref = mne_rsa.rsa_epochs(ep, models, spatial_radius=0.06, temporal_radius=radius / 100.0,
                             epochs_rdm_metric=metric, rsa_metric=comparison,
                             y=np.arange(9), verbose=False)
    pos = np.array([ch["loc"][:3] for ch in ep.info["chs"]])
    A = channel_neighbourhoods(pos, 0.06)
    assert 1 < A.sum(axis=1).mean() < len(names)          # real neighbourhoods
    got = searchlight_rsa(X, np.stack(models), A, radius, metric, comparison, chunk=3,
                          n_jobs=1 if radius else 2)
    for m in range(2):
        np.testing.assert_allclose(got[m], ref[m].data, atol=1e-6)
    if metric == "correlation":     # a lone sensor and one sample: no correlation
        with pytest.raises(ValueError, match="neighbours"):
            searchlight_rsa(X, np.stack(models), np.eye(len(names), dtype=bool), 0)


def test_permutation_cluster_test_fwe_under_null():
    """Two groups from one distribution: any cluster with p < 0.1 is a family-wise error."""
    from neuroprobe.solvers.temporal import permutation_cluster_test

    rng = np.random.default_rng(21)
    hits = 0
    for sim in range(60):
        g = rng.standard_normal((16, 40))
        _, labels, p, _ = permutation_cluster_test([g[:8], g[8:]], 4.0, 100, 1,
                                                   random_state=sim)
        hits += bool(p.size and p.min() < 0.1)
    assert hits <= 13          # FWE 0.1 -> 6 expected; 13 is the binomial 99.8% bound


@pytest.mark.parametrize("metric", ["correlation", "sqeuclidean", "euclidean"])
@pytest.mark.parametrize("comparison", ["spearman", "pearson"])
@pytest.mark.parametrize("radius_s,chunk,n_jobs", [(0.0, 3, 1), (0.0, 100, 2), (0.03, 1, 2),
                                                    (0.03, 4, 1)])
def test_time_resolved_rsa_equals_mne_rsa(metric, comparison, radius_s, chunk, n_jobs):
    """The fused chunked pass (chunks of 1, 3, 4 and one for all windows, 1 or 2 threads)."""
    from neuroprobe.solvers.temporal import time_resolved_rsa

    ep, data, y = _epochs(seed=4)
    rng = np.random.default_rng(3)
    models = [rng.random(66) for _ in range(3)]
    ref = mne_rsa.rsa_epochs(ep, models, temporal_radius=radius_s, epochs_rdm_metric=metric,
                             rsa_metric=comparison, y=y, verbose=False)
    avg = np.stack([data[y == k].mean(0) for k in range(12)])
    r = round(100 * radius_s)
    got = time_resolved_rsa(avg, np.stack(models), r, metric, comparison, chunk=chunk,
                            n_jobs=n_jobs)
    np.testing.assert_allclose(got, np.stack([e.data[0] for e in ref]), atol=1e-6)
    rdms = window_rdms(avg, r, metric, chunk=chunk, n_jobs=n_jobs)
    np.testing.assert_allclose(got, compare_rdms(np.stack(models), rdms, comparison),
                               atol=1e-12)


@pytest.mark.parametrize("radius", [0, 2])
@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_window_rdms_chunks_equal_pdist(radius, chunk):
    """Chunk boundaries (5 does not divide the windows) and 2 threads: every window = pdist of
    its flattened pattern, in sensor units with channel offsets 20x the signal."""
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(6)
    X = 1e-13 * (rng.standard_normal((11, 6, 23)) + 20 * rng.standard_normal((1, 6, 1)))
    for metric in ("correlation", "sqeuclidean", "euclidean"):
        got = window_rdms(X, radius, metric, chunk=chunk, n_jobs=2)
        assert got.shape == (23 - 2 * radius, 55)
        for w in range(got.shape[0]):
            ref = pdist(X[:, :, w:w + 2 * radius + 1].reshape(11, -1), metric)
            np.testing.assert_allclose(got[w], ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


def test_time_resolved_rsa_tied_rows_equal_spearmanr():
    """Integer counts: sqeuclidean distances tie within rows (average ranks, as scipy); models
    with ties too; brute force = scipy.stats.spearmanr of pdist per window."""
    from scipy.spatial.distance import pdist

    from neuroprobe.solvers.temporal import time_resolved_rsa

    rng = np.random.default_rng(7)
    X = rng.poisson(1.0, (10, 3, 17)).astype(float)
    X[:, :, 4] = rng.standard_normal((10, 3))                     # one tie-free time point
    models = np.stack([rng.integers(0, 4, 45).astype(float), rng.random(45)])
    for radius in (0, 1):
        got = time_resolved_rsa(X, models, radius, "sqeuclidean", chunk=4, n_jobs=2)
        for w in range(got.shape[1]):
            d = pdist(X[:, :, w:w + 2 * radius + 1].reshape(10, -1), "sqeuclidean")
            for k in range(2):
                np.testing.assert_allclose(got[k, w], stats.spearmanr(models[k], d)[0],
                                           atol=1e-12)


def test_rank_keys_signs_ties_nan_and_argsort_fallback(monkeypatch):
    """The int64 sort keys: negative values, ties, >13 column bits, a tiny scale; NaN rows are
    NaN (scipy's propagate); the argsort path for very long rows gives the same."""
    from neuroprobe.solvers import temporal

    rng = np.random.default_rng(8)
    V = rng.standard_normal((6, 9000))
    V[1, :3000] = 0.25
    V[2] = np.round(V[2], 1)
    V[3] *= 1e-200
    V[4, :2] = [1.0, 1.0 + 1e-9]                                  # close, not tied
    V[5, 7] = np.nan
    expect = stats.rankdata(V, axis=-1)
    ranks, ties = temporal._rank(V)
    np.testing.assert_array_equal(ranks[:5], expect[:5])
    assert np.isnan(ranks[5]).all()
    np.testing.assert_array_equal(ties, [False, True, True, False, False, False])
    monkeypatch.setattr(temporal, "_KEY_MAX_COLUMNS", 10)
    ranks2, ties2 = temporal._rank(V)
    np.testing.assert_array_equal(ranks2, ranks)
    np.testing.assert_array_equal(ties2, ties)


def test_time_resolved_rsa_bad_input():
    from neuroprobe.solvers.temporal import time_resolved_rsa

    with pytest.raises(ValueError, match="X: expected"):
        time_resolved_rsa(np.zeros((5, 4)), np.zeros((1, 10)))
    with pytest.raises(ValueError, match="model_rdms: 6 pairs"):
        time_resolved_rsa(np.zeros((5, 4, 3)), np.zeros((1, 6)))
    with pytest.raises(ValueError, match="metric"):
        time_resolved_rsa(np.zeros((5, 4, 3)), np.zeros((1, 10)), metric="cosine")


def test_pipeline_consumes_every_item_once_and_raises_errors():
    """The producer/consumer threads of the fused pass: every item consumed exactly once on
    the calling thread, one state per thread, and an error in a producer or in the consumer
    is raised in the caller without leaving a thread blocked (a second run still works)."""
    import threading

    from neuroprobe.solvers.temporal import _pipeline

    def run(produce, consume, n_threads=3):
        box = {}

        def target():
            callers.append(threading.get_ident())
            try:
                _pipeline(list(range(60)), produce, consume, object, n_threads)
            except Exception as exc:                             # noqa: BLE001 - re-checked
                box["error"] = exc

        th = threading.Thread(target=target)
        th.start()
        th.join(30)
        assert not th.is_alive(), "the pipeline hung"
        return box.get("error")

    seen, states, callers, consumers = [], set(), [], set()

    def produce(item, state):
        states.add(id(state))
        return item, threading.get_ident()

    def consume(result):
        seen.append(result[0])
        consumers.add(threading.get_ident())

    assert run(produce, consume) is None
    assert sorted(seen) == list(range(60)) and 1 <= len(states) <= 3
    assert consumers == {callers[-1]}                            # the calling thread only

    def bad_produce(item, state):
        if item == 17:
            raise ValueError("produce 17")
        return item, 0

    err = run(bad_produce, lambda r: None)
    assert isinstance(err, ValueError) and "produce 17" in str(err)

    def bad_consume(result):
        if result[0] == 5:
            raise KeyError("consume 5")

    assert isinstance(run(produce, bad_consume), KeyError)
    seen.clear()
    assert run(produce, consume) is None and sorted(seen) == list(range(60))


def test_time_resolved_rsa_threads_equal_one_thread():
    """1, 2 and 3 threads (one consumer, up to two producers) give identical curves on a
    realistic size (92 stimuli, 5 MB of read-only data)."""
    from neuroprobe.solvers.temporal import time_resolved_rsa

    rng = np.random.default_rng(9)
    X = rng.standard_normal((92, 30, 240))
    X.flags.writeable = False
    models = rng.random((2, 92 * 91 // 2))
    ref = time_resolved_rsa(X, models, 0, n_jobs=1)
    for n_jobs in (2, 3):
        np.testing.assert_array_equal(time_resolved_rsa(X, models, 0, n_jobs=n_jobs), ref)


def _tfce_threshold(tail, step=0.2):
    return dict(start=0.0, step=-step if tail == -1 else step)


def _signed_effects(seed=8, n=7):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 50))
    X[:, 10:22] += 1.2
    X[:, 30:40] -= 1.0
    return X


@pytest.mark.parametrize("tail", [1, 0, -1])
def test_tfce_tails_equal_mne_stats(tail):
    from mne.stats.cluster_level import _find_clusters

    from neuroprobe.solvers.temporal import _tstat, tfce
    X = _signed_effects()
    thr = _tfce_threshold(tail)
    t_mne, _, _, _ = mne.stats.permutation_cluster_1samp_test(
        X, threshold=thr, n_permutations=8, tail=tail, seed=0, verbose=False)
    t = _tstat(X)
    scores = tfce(t, **thr, tail=tail)
    np.testing.assert_allclose(scores, t_mne, rtol=1e-10, atol=1e-12)
    _, sums = _find_clusters(t, thr, tail=tail)             # mne's unsigned scores
    np.testing.assert_allclose(scores, sums * np.sign(t), rtol=1e-10, atol=1e-12)
    powers = dict(h_power=1.0, e_power=0.0)               # extent ** 0: members of runs only
    _, sums = _find_clusters(t, {**thr, **powers}, tail=tail)
    np.testing.assert_allclose(tfce(t, **thr, **powers, tail=tail), sums * np.sign(t),
                               rtol=1e-10, atol=1e-12)
    assert (scores[10:22] > 0).all() == (tail != -1) and (scores[30:40] < 0).all() == (tail != 1)
    # every row of a 3-D array is enhanced on its own
    stack = np.stack([t, -t, 0.5 * t])[None]
    ref = np.stack([tfce(row, **thr, tail=tail) for row in stack[0]])[None]
    np.testing.assert_allclose(tfce(stack, **thr, tail=tail), ref, rtol=1e-12)


def test_tfce_two_sided_sign_flip_test_equals_mne_stats():
    X = _signed_effects(n=10)
    thr = _tfce_threshold(0)
    _, _, p, h0 = mne.stats.permutation_cluster_1samp_test(
        X, threshold=thr, n_permutations="all", tail=0, verbose=False)
    _, _, p2, h02 = permutation_cluster_1samp(X, thr, "all", tail=0)
    assert set(np.round(h0, 8)) <= set(np.round(h02, 8))    # mne: half the flips (symmetry)
    np.testing.assert_allclose(p2, p, atol=1.5 / len(h0))
    # tail=-1 mirrors tail=1 of the negated data (mne 1.13's tail=-1 TFCE p-values are not
    # usable: unsigned H0 compared with <=)
    _, _, p_neg, _ = permutation_cluster_1samp(X, _tfce_threshold(-1), "all", tail=-1)
    _, _, p_pos, _ = permutation_cluster_1samp(-X, _tfce_threshold(1), "all", tail=1)
    np.testing.assert_allclose(p_neg, p_pos, rtol=1e-12)
    assert p_neg[30:40].min() < 0.05 and p_neg[10:22].min() == 1.0


def _oriented_ref(x, tail):
    return np.abs(x) if tail == 0 else tail * x


@pytest.mark.parametrize("tail", [1, 0, -1])
def test_tfce_fwe_equals_brute_force(tail):
    from neuroprobe.solvers.temporal import tfce, tfce_fwe
    rng = np.random.default_rng(5)
    obs = 0.05 * rng.standard_normal((3, 30))
    obs[1, 8:15] += 0.3
    obs[2, 18:24] -= 0.25
    null = 0.05 * rng.standard_normal((40, 3, 30))
    extreme = _oriented_ref(obs, tail).max()
    step = (extreme / 50) * (-1 if tail == -1 else 1)
    scores, p = tfce_fwe(obs, null, tail=tail)                  # default step
    h0 = []
    for perm in null:                                           # brute force: curve by curve
        h0.append(max(_oriented_ref(tfce(row, 0.0, step, tail=tail), tail).max()
                      for row in perm))
    h0 = np.array(h0)
    ref_scores = np.stack([tfce(row, 0.0, step, tail=tail) for row in obs])
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-12)
    s = _oriented_ref(ref_scores, tail)
    ref_p = (1 + (h0[:, None, None] >= s[None] - 1e-12).sum(0)) / 41
    np.testing.assert_allclose(p, ref_p)
    if tail != -1:
        assert p[1, 10:13].max() <= 1 / 41 + 1e-12
    if tail != 1:
        assert p[2, 19:23].max() <= 1 / 41 + 1e-12
    # an explicit step equals the default one, other powers pass through
    np.testing.assert_allclose(tfce_fwe(obs, null, step=step, tail=tail)[1], p)
    s2, _ = tfce_fwe(obs, null, step=step, h_power=1.0, e_power=1.0, tail=tail)
    np.testing.assert_allclose(s2, tfce(obs, 0.0, step, 1.0, 1.0, tail=tail))


def test_tfce_bad_thresholds():
    from neuroprobe.solvers.temporal import tfce, tfce_fwe
    x = np.linspace(-1, 1, 10)
    with pytest.raises(ValueError, match="tail=-1"):
        tfce(x, 0.0, 0.1, tail=-1)
    with pytest.raises(ValueError, match="tail=0"):
        tfce(x, -0.5, 0.1, tail=0)
    with pytest.raises(ValueError, match="step > 0"):
        tfce(x, 0.0, 0.0)
    with pytest.raises(ValueError, match="tail"):
        tfce(x, 0.0, 0.1, tail=2)
    with pytest.raises(ValueError, match="null"):
        tfce_fwe(x[None], np.zeros((5, 2, 10)))


@pytest.mark.parametrize("tail", [0, -1])
def test_max_stat_and_cluster_fwe_tails_equal_brute_force(tail):
    from neuroprobe.solvers.temporal import cluster_fwe
    rng = np.random.default_rng(6)
    obs = rng.standard_normal((3, 40))
    obs[1, 10:20] -= 4.0
    obs[2, 25:30] += 4.0
    null = rng.standard_normal((30, 3, 40))
    # max statistic
    mx = np.array([max(_oriented_ref(v, tail) for v in perm.ravel()) for perm in null])
    ref = [(1 + sum(m >= _oriented_ref(v, tail) for m in mx)) / 31 for v in obs.ravel()]
    np.testing.assert_allclose(max_stat_fwe(obs, null, tail=tail).ravel(), ref)
    # cluster mass: run lengths per sign, |mass| (tail 0) or -mass (tail -1)
    thr = 1.0
    labels, p = cluster_fwe(obs, null, thr, tail=tail)
    signs = [1, -1] if tail == 0 else [-1]

    def best_mass(row):
        best = 0.0
        for sign in signs:
            mass = 0.0
            for v in row:
                mass = mass + v if sign * v > thr else 0.0
                best = max(best, _oriented_ref(mass, tail))
        return best

    h0 = [max(best_mass(row) for row in perm) for perm in null]
    masses = [_oriented_ref(obs[labels == k].sum(), tail) for k in range(1, labels.max() + 1)]
    np.testing.assert_allclose(p, [(1 + sum(h >= m - 1e-12 for h in h0)) / 31 for m in masses])
    assert labels[1, 10:20].min() > 0 and p[labels[1, 15] - 1] <= 1 / 31 + 1e-12
    if tail == 0:
        assert p[labels[2, 27] - 1] <= 1 / 31 + 1e-12
    else:
        assert (labels[2, 25:30] == 0).all()
        assert ((labels > 0) <= (obs < -thr)).all()
