"""Time-resolved encoding statistics: the ridge fast-path null of TimeResolved(VoxelwiseEncoder)
equals a brute-force loop of sklearn Ridge refits per permutation, alpha and fold; cluster-mass
FWE equals a brute-force cluster loop on the same null; a planted latency window is detected and
null data keep the FWE rate."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, KFold

from neuroprobe import PermutationTest, TimeResolved, VoxelwiseEncoder
from neuroprobe.estimators.temporal import permutation_test_time_resolved
from neuroprobe.io.epochs import EpochData
from neuroprobe.solvers.permutation import draw_permutations

ALPHAS = [0.1, 10.0, 1000.0]


def _data(n=24, p=4, n_ch=3, n_times=10, window=(4, 7), gain=1.5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    Y = rng.standard_normal((n, n_ch, n_times))
    if gain:
        Y[:, :, window[0]:window[1]] += gain * (X @ rng.standard_normal((p, n_ch)))[:, :, None]
    return X, Y


def _corr(a, b):
    a = a - a.mean(0)
    b = b - b.mean(0)
    den = np.sqrt((a * a).sum(0) * (b * b).sum(0))
    return np.where(den > 0, (a * b).sum(0) / np.where(den > 0, den, 1), 0.0)


def _brute_statistic(X, Y, folds, radius=0):
    """Max over alphas of the mean over folds of the held-out correlation, per channel x lag
    and window: one sklearn Ridge fit per alpha and fold (all windows as targets)."""
    n, c, t = Y.shape
    w = 2 * radius + 1
    cols = np.stack([Y[:, :, k - radius:k + radius + 1].reshape(n, -1)
                     for k in range(radius, t - radius)], axis=2)   # (n, c * w, windows)
    flat = cols.reshape(n, -1)
    per_alpha = []
    for a in ALPHAS:
        s = [_corr(Ridge(alpha=a).fit(X[tr], flat[tr]).predict(X[te]), flat[te])
             for tr, te in folds]
        per_alpha.append(np.mean(s, axis=0))
    return np.max(per_alpha, axis=0).reshape(c * w, -1)             # (targets, windows)


@pytest.mark.parametrize("radius", [0, 1])
def test_fast_null_equals_sklearn_refits(radius):
    X, Y = _data()
    cv = KFold(4, shuffle=True, random_state=0)
    folds = list(cv.split(X))
    perms = draw_permutations(len(X), 5, seed=1)
    est = TimeResolved(VoxelwiseEncoder(alphas=ALPHAS, dtype="float64"), temporal_radius=radius)
    obs, null = est._permutation_scores(X, Y, perms, cv=cv)
    ref_obs = _brute_statistic(X, Y, folds, radius)
    np.testing.assert_allclose(obs, ref_obs.ravel(), atol=1e-8)
    for k, p in enumerate(perms):
        np.testing.assert_allclose(null[k], _brute_statistic(X, Y[p], folds, radius).ravel(),
                                   atol=1e-8)
    # the same through PermutationTest (explicit permutations) and the channel-mean function
    pt = PermutationTest(est, cv=cv)
    np.testing.assert_allclose(pt._null_from_permutations(X, Y, perms), null, atol=1e-12)


def test_function_matches_permutation_test_and_brute_clusters():
    X, Y = _data(seed=3)
    X2 = np.random.default_rng(9).standard_normal(X.shape)
    est = TimeResolved(VoxelwiseEncoder(alphas=ALPHAS, dtype="float64"))
    cv = KFold(3, shuffle=True, random_state=0)
    res = permutation_test_time_resolved(est, {"a": X, "b": X2}, Y, n_permutations=40, cv=cv,
                                         random_state=5, average=False)
    # the same permutations as PermutationTest(random_state=5): per-target nulls equal
    pt = PermutationTest(est, n_permutations=40, cv=cv, random_state=5).fit(X, Y)
    np.testing.assert_allclose(res.null[:, 0].reshape(40, -1), pt.null_distribution_, atol=1e-12)
    np.testing.assert_allclose(res.pvalue[0].ravel(), pt.pvalue_, atol=1e-12)
    # channel means: one curve per layer
    mean = permutation_test_time_resolved(est, {"a": X, "b": X2}, Y, n_permutations=40, cv=cv,
                                          random_state=5)
    np.testing.assert_allclose(mean.null, res.null.mean(axis=2), atol=1e-12)
    np.testing.assert_allclose(mean.observed, res.observed.mean(axis=1), atol=1e-12)
    # max-statistic FWE: family = layers x times
    mx = mean.null.max(axis=(1, 2))
    np.testing.assert_allclose(mean.pvalue_fwe,
                               (1 + (mx[:, None, None] >= mean.observed).sum(0)) / 41)
    # cluster-mass FWE = a brute-force loop over permutations, layers and runs
    thr = mean.cluster_threshold
    assert thr == pytest.approx(np.quantile(mean.null, 0.95))

    def runs(curve):
        out, cur = [], []
        for i, v in enumerate(curve):
            if v > thr:
                cur.append(i)
            elif cur:
                out.append(cur)
                cur = []
        return out + ([cur] if cur else [])

    h0 = [max([curve[r].sum() for curve in perm for r in runs(curve)] or [0.0])
          for perm in mean.null]                           # max mass over layers and time
    assert len(runs(mean.observed[0])) > 0                 # the planted window is a cluster
    for layer in range(2):
        for r in runs(mean.observed[layer]):
            k = mean.cluster_labels[layer, r[0]]
            assert k > 0 and np.all(mean.cluster_labels[layer, r] == k)
            expect = (1 + np.sum(np.array(h0) >= mean.observed[layer, r].sum() - 1e-12)) / 41
            assert mean.cluster_pvalue[k - 1] == pytest.approx(expect)


def test_cluster_fwe_equals_mne_on_the_same_null():
    """One layer: the cluster p-values equal mne's cluster-level inference from the same H0."""
    pytest.importorskip("mne")
    from mne.stats.cluster_level import _find_clusters

    X, Y = _data(seed=4)
    res = permutation_test_time_resolved(TimeResolved(VoxelwiseEncoder(alphas=ALPHAS)), X, Y,
                                         n_permutations=30, random_state=0)
    thr = res.cluster_threshold
    # mne: clusters of the observed curve and their masses
    clusters, sums = _find_clusters(res.observed[0], thr, tail=1)
    h0 = np.array([max([s for s in _find_clusters(c[0], thr, tail=1)[1]]
                       or [0.0]) for c in res.null])
    p_mne = (1 + (h0[None] >= np.asarray(sums)[:, None] - 1e-12).sum(1)) / 31
    ours = [res.cluster_pvalue[res.cluster_labels[0][c][0] - 1] for c in clusters]
    np.testing.assert_allclose(ours, p_mne)


def test_planted_window_detected_and_null_fwe_rate():
    X, Y = _data(n=30, n_ch=4, n_times=16, window=(6, 10), gain=1.0, seed=1)
    est = TimeResolved(VoxelwiseEncoder(alphas=ALPHAS))
    times = np.arange(16) / 100.0
    res = permutation_test_time_resolved(
        est, {"l": X}, EpochData(Y, times, np.arange(30).astype(str), 100.0),
        n_permutations=99, random_state=0)
    sig = {k for k, p in enumerate(res.cluster_pvalue, 1) if p < 0.05}
    hit = np.isin(res.cluster_labels[0], list(sig))
    assert hit[6:10].all() and not hit[:4].any() and not hit[12:].any()
    assert (res.pvalue_fwe[0, 6:10] < 0.05).all()
    np.testing.assert_allclose(res.times, times)
    # null data: the family-wise rate of any FWE-significant window stays near alpha
    false = 0
    for seed in range(12):
        Xn, Yn = _data(n=20, n_ch=2, n_times=8, gain=0, seed=100 + seed)
        r = permutation_test_time_resolved(est, {"a": Xn, "b": Xn[:, ::-1] ** 2}, Yn,
                                           n_permutations=39, random_state=seed)
        false += bool((r.pvalue_fwe < 0.05).any() or (r.cluster_pvalue < 0.05).any())
    assert false <= 3         # P(Binomial(12, 0.1) > 3) < 3 %: both tests at 5 %


def test_groups_and_bad_input():
    X, Y = _data()
    groups = np.repeat(np.arange(4), 6)
    est = TimeResolved(VoxelwiseEncoder(alphas=ALPHAS, dtype="float64"))
    res = permutation_test_time_resolved(est, X, Y, n_permutations=10, cv=4, groups=groups,
                                         random_state=0)
    perms = draw_permutations(24, 1, groups=groups, seed=0)
    assert (groups[perms[0]] == groups).all()
    folds = list(GroupKFold(4).split(X, None, groups))
    np.testing.assert_allclose(res.observed[0], _brute_statistic(X, Y, folds).mean(0), atol=1e-8)
    with pytest.raises(ValueError, match="estimator"):
        permutation_test_time_resolved(TimeResolved(Ridge()), X, Y, n_permutations=5)
    with pytest.raises(ValueError, match="groups"):
        permutation_test_time_resolved(est, X, Y, n_permutations=5, groups=groups[:5])
    with pytest.raises(ValueError, match="rows"):
        permutation_test_time_resolved(est, X[:5], Y, n_permutations=5)


def test_sensor_units_give_the_same_statistics():
    """MEG data in tesla (1e-13): float32 products would underflow without the global scale."""
    X, Y = _data(seed=6)
    est = TimeResolved(VoxelwiseEncoder(alphas=ALPHAS))           # float32
    a = permutation_test_time_resolved(est, X, Y, n_permutations=20, random_state=0)
    b = permutation_test_time_resolved(est, X, Y * 1e-13, n_permutations=20, random_state=0)
    assert np.isfinite(b.observed).all()
    np.testing.assert_allclose(b.observed, a.observed, atol=1e-5)
    np.testing.assert_allclose(b.null, a.null, atol=1e-5)
    fa = est.fit(X[:18], Y[:18]).score_targets(X[18:], Y[18:])
    fb = est.fit(X[:18], Y[:18] * 1e-13).score_targets(X[18:], Y[18:] * 1e-13)
    np.testing.assert_allclose(fb, fa, atol=1e-5)


def test_results_do_not_depend_on_n_jobs():
    X, Y = _data(seed=7)
    est = TimeResolved(VoxelwiseEncoder(alphas=ALPHAS, dtype="float64"))
    a = permutation_test_time_resolved(est, X, Y, n_permutations=130, random_state=3)
    from joblib import parallel_config

    with parallel_config(backend="threading"):      # chunks split over 2 workers, no spawn
        b = permutation_test_time_resolved(est, X, Y, n_permutations=130, random_state=3,
                                           n_jobs=2)
    np.testing.assert_allclose(a.null, b.null, rtol=1e-12, atol=1e-14)  # the same chunks
    np.testing.assert_array_equal(a.cluster_labels, b.cluster_labels)


# ------------------------------------------------------------------ tails, TFCE and the RSA side
def _composition(obs, null, tail, tfce=None):
    """The inference from the solver functions, step by step."""
    from neuroprobe.solvers.temporal import cluster_fwe, max_stat_fwe, tfce_fwe

    o, n = (np.abs(obs), np.abs(null)) if tail == 0 else (tail * obs, tail * null)
    p = (1 + (n >= o[None]).sum(0)) / (1 + len(null))
    thr = float(np.quantile(n, 0.95))
    labels, cluster_p = cluster_fwe(obs, null, thr, tail=tail)
    out = dict(pvalue=p, pvalue_fwe=max_stat_fwe(obs, null, tail=tail), cluster_labels=labels,
               cluster_pvalue=cluster_p, cluster_threshold=thr)
    if tfce is not None:
        out["tfce_scores"], out["tfce_pvalue"] = tfce_fwe(obs, null, **tfce, tail=tail)
    return out


def _assert_result(res, ref):
    for key, value in ref.items():
        np.testing.assert_allclose(getattr(res, key), value, rtol=1e-12, atol=1e-15,
                                   err_msg=key)


@pytest.mark.parametrize("tail", [0, -1])
def test_encoding_tails_and_tfce_equal_the_solver_composition(tail):
    X, Y = _data(seed=3)
    X2 = np.random.default_rng(9).standard_normal(X.shape)
    est = TimeResolved(VoxelwiseEncoder(alphas=ALPHAS, dtype="float64"))
    kw = dict(n_permutations=30, cv=KFold(3, shuffle=True, random_state=0), random_state=5)
    one = permutation_test_time_resolved(est, {"a": X, "b": X2}, Y, **kw)
    step = 0.01 if tail == 0 else -0.01
    res = permutation_test_time_resolved(est, {"a": X, "b": X2}, Y, tail=tail,
                                         tfce=dict(step=step), **kw)
    np.testing.assert_array_equal(res.null, one.null)      # the tail changes only the tests
    assert one.tfce_pvalue is None and res.tail == tail
    _assert_result(res, _composition(res.observed, res.null, tail,
                                     dict(start=0.0, step=step)))
    assert res.tfce == dict(start=0.0, step=step, h_power=2.0, e_power=0.5)


def _rsa_data(n=14, n_ch=5, n_times=24, window=(8, 14), gain=1.5, sign=1, seed=0):
    from neuroprobe.rsa import compute_rdm

    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((n, 4))
    Y = rng.standard_normal((n, n_ch, n_times))
    if gain:
        Y[:, :, window[0]:window[1]] += gain * (feats @ rng.standard_normal((4, n_ch)))[:, :, None]
    M = compute_rdm(feats, "correlation")
    models = {"planted": M if sign > 0 else M.max() - M,   # sign -1: an anti-correlated model
              "other": compute_rdm(rng.standard_normal((n, 3)), "correlation")}
    return models, Y


@pytest.mark.parametrize("tail", [1, 0, -1])
def test_rsa_function_equals_the_solver_composition(tail):
    from neuroprobe.estimators.temporal import permutation_test_time_resolved_rsa
    from neuroprobe.solvers.temporal import compare_rdms, permutation_null, window_rdms

    models, Y = _rsa_data()
    M = np.vstack(list(models.values()))
    res = permutation_test_time_resolved_rsa(models, Y, temporal_radius=1, n_permutations=40,
                                             tfce={"start": 0.0}, tail=tail, random_state=2)
    brain_rdms = window_rdms(Y, 1)
    np.testing.assert_allclose(res.observed, compare_rdms(M, brain_rdms), rtol=1e-10,
                               atol=1e-12)
    null = permutation_null(M, brain_rdms, 40, random_state=2)
    np.testing.assert_allclose(res.null, null, rtol=1e-12, atol=1e-14)
    extreme = (np.abs(res.observed) if tail == 0 else tail * res.observed).max()
    step = extreme / 50 * (-1 if tail == -1 else 1)
    _assert_result(res, _composition(res.observed, res.null, tail, dict(start=0.0, step=step)))
    assert res.tfce["step"] == pytest.approx(step)
    assert res.layers == ["planted", "other"] and res.times is None
    np.testing.assert_array_equal(res.centres, np.arange(1, 23))


def test_rsa_function_takes_group_window_rdms():
    """Window RDMs given directly (the mean of two subjects' RDMs, the usual group RDM) = the
    solver composition on that mean; one subject's RDMs = that subject's data."""
    from neuroprobe.estimators.temporal import permutation_test_time_resolved_rsa
    from neuroprobe.solvers.temporal import compare_rdms, permutation_null, window_rdms

    models, Y1 = _rsa_data(seed=3)
    _, Y2 = _rsa_data(seed=4)
    M = np.vstack(list(models.values()))
    group = (window_rdms(Y1, 1) + window_rdms(Y2, 1)) / 2
    res = permutation_test_time_resolved_rsa(models, group, temporal_radius=1,
                                             n_permutations=30, random_state=5)
    np.testing.assert_allclose(res.observed, compare_rdms(M, group), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.null, permutation_null(M, group, 30, random_state=5),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(res.centres, np.arange(1, 23))
    one = permutation_test_time_resolved_rsa(models, window_rdms(Y1, 1), temporal_radius=1,
                                             n_permutations=30, random_state=5)
    data = permutation_test_time_resolved_rsa(models, Y1, temporal_radius=1, n_permutations=30,
                                              random_state=5)
    np.testing.assert_allclose(one.observed, data.observed, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(one.pvalue_fwe, data.pvalue_fwe)
    with pytest.raises(ValueError, match="condensed window RDMs"):
        permutation_test_time_resolved_rsa(models, group[:, :-1], n_permutations=5)
    bad = group.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        permutation_test_time_resolved_rsa(models, bad, n_permutations=5)


def test_rsa_planted_effect_found_and_null_within_alpha():
    from neuroprobe.estimators.temporal import permutation_test_time_resolved_rsa

    models, Y = _rsa_data(sign=-1)
    ep = EpochData(Y, np.arange(24) / 100.0, np.arange(14).astype(str), 100.0)
    res = {tail: permutation_test_time_resolved_rsa(models, ep, n_permutations=99, tfce=True,
                                                    tail=tail, random_state=0)
           for tail in (1, 0, -1)}
    np.testing.assert_allclose(res[0].times, np.arange(24) / 100.0)
    for tail in (0, -1):            # the anti-correlated model: below chance, not above
        r = res[tail]
        assert (r.tfce_pvalue[0, 9:12] < 0.05).all() and r.pvalue_fwe[0, 10] < 0.05
        assert (r.tfce_scores[0, 8:14] < 0).all() and (r.tfce_pvalue[0, :6] > 0.5).all()
        sig = [k for k, p in enumerate(r.cluster_pvalue, 1) if p < 0.05]
        assert np.isin(r.cluster_labels[0, 9:13], sig).all()
    assert (res[1].tfce_pvalue[0, 8:14] > 0.5).all() and (res[1].pvalue_fwe[0] > 0.5).all()
    false = 0
    for seed in range(20):          # null data: any FWE-significant sample, any test
        models, Y = _rsa_data(n=10, n_ch=3, n_times=12, gain=0, seed=50 + seed)
        r = permutation_test_time_resolved_rsa(models, Y, n_permutations=39, tfce=True, tail=0,
                                               random_state=seed)
        false += bool((r.tfce_pvalue < 0.05).any())
    assert false <= 4               # P(Binomial(20, 0.05) > 4) < 0.3 %


def test_rsa_function_bad_input():
    from neuroprobe.estimators.temporal import permutation_test_time_resolved_rsa

    models, Y = _rsa_data()
    f = permutation_test_time_resolved_rsa
    for kw, match in ((dict(tail=2), "tail"), (dict(tfce="yes"), "tfce"),
                      (dict(tfce={"stp": 0.1}), "unknown"), (dict(n_permutations=0), "n_perm"),
                      (dict(tfce={"step": "x"}), "tfce: expected numbers"),
                      (dict(comparison="kendall"), "comparison"),
                      (dict(temporal_radius=-1), "temporal_radius"),
                      (dict(tail=-1, tfce={"step": 0.1}), "tail=-1")):
        with pytest.raises(ValueError, match=match):
            f(models, Y, **{"n_permutations": 5, **kw})
    with pytest.raises(ValueError, match="model_rdms"):
        f(models["planted"][:-1], Y, n_permutations=5)
    with pytest.raises(ValueError, match="brain"):
        f(models, Y[:, :, 0], n_permutations=5)
    with pytest.raises(ValueError, match="tail"):
        permutation_test_time_resolved(TimeResolved(VoxelwiseEncoder()), _data()[0], _data()[1],
                                       n_permutations=5, tail="both")


# ------------------------------------------------------------------ the null reduced as it is drawn
_FIELDS = ("observed", "pvalue", "pvalue_fwe", "cluster_labels", "cluster_pvalue",
           "cluster_threshold", "tfce_scores", "tfce_pvalue", "h0_max", "h0_cluster", "h0_tfce")


@pytest.mark.parametrize("average, tail", [(False, 1), (False, 0), (True, -1)])
def test_streamed_null_equals_the_kept_null(average, tail):
    # 200 permutations are 4 chunks (64, 64, 64, 8): the reduction adds counts and concatenates
    # per-permutation maxima; every p-value must be the kept null's, bit for bit
    from neuroprobe.solvers.permutation import chunk_sizes
    from neuroprobe.solvers.temporal import cluster_h0, tfce_h0

    X, Y = _data(n=30, n_ch=4, n_times=14, seed=11)
    X2 = np.random.default_rng(2).standard_normal(X.shape)
    est = TimeResolved(VoxelwiseEncoder(alphas=ALPHAS, dtype="float64"))
    step = {1: 0.01, 0: 0.01, -1: -0.01}[tail]
    kw = dict(n_permutations=200, cv=KFold(3, shuffle=True, random_state=0), random_state=3,
              average=average, tail=tail, tfce=dict(step=step), n_jobs=1)
    kept = permutation_test_time_resolved(est, {"a": X, "b": X2}, Y, cluster_threshold=0.05,
                                          **kw)
    streamed = permutation_test_time_resolved(est, {"a": X, "b": X2}, Y, keep_null=False,
                                              cluster_threshold=0.05, **kw)
    assert streamed.null is None and kept.null.shape == (200,) + kept.observed.shape
    for key in _FIELDS:
        np.testing.assert_array_equal(getattr(streamed, key), getattr(kept, key), err_msg=key)
    # the maxima are those of the kept null (an independent composition)
    o = {1: kept.null, 0: np.abs(kept.null), -1: -kept.null}[tail]
    np.testing.assert_array_equal(kept.h0_max, o.reshape(200, -1).max(axis=1))
    nw = kept.observed.shape[-1]
    np.testing.assert_array_equal(kept.h0_cluster,
                                  cluster_h0(kept.null.reshape(200, -1, nw), 0.05, tail))
    np.testing.assert_allclose(kept.h0_tfce, tfce_h0(kept.null.reshape(200, -1, nw),
                                                     step=step, tail=tail), rtol=1e-12)
    # the default threshold: the 95th percentile of the first chunk's null
    first = chunk_sizes(200)[0]
    default = permutation_test_time_resolved(est, {"a": X, "b": X2}, Y, keep_null=False, **kw)
    assert default.cluster_threshold == float(np.nanquantile(o[:first], 0.95))
    again = permutation_test_time_resolved(est, {"a": X, "b": X2}, Y,
                                           cluster_threshold=default.cluster_threshold, **kw)
    for key in _FIELDS:
        np.testing.assert_array_equal(getattr(default, key), getattr(again, key), err_msg=key)


def test_streamed_null_does_not_depend_on_n_jobs():
    X, Y = _data(n=30, n_ch=4, n_times=14, seed=12)
    est = TimeResolved(VoxelwiseEncoder(alphas=ALPHAS, dtype="float64"))
    kw = dict(n_permutations=300, cv=KFold(3, shuffle=True, random_state=0), random_state=4,
              average=False, keep_null=False, tfce=True)
    one = permutation_test_time_resolved(est, {"a": X}, Y, n_jobs=1, **kw)
    two = permutation_test_time_resolved(est, {"a": X}, Y, n_jobs=2, **kw)
    for key in ("pvalue", "pvalue_fwe", "cluster_labels", "cluster_pvalue", "tfce_pvalue"):
        np.testing.assert_array_equal(getattr(two, key), getattr(one, key), err_msg=key)
    for key in ("h0_max", "h0_cluster", "h0_tfce", "tfce_scores"):
        np.testing.assert_allclose(getattr(two, key), getattr(one, key), rtol=1e-10,
                                   atol=1e-14, err_msg=key)


def test_streamed_null_memory_is_one_chunk():
    # 1,280 permutations x 6,000 targets x windows: the kept null is 61 MB (and its stacked
    # copy); the reduction holds one chunk of one layer (64 permutations, 3 MB) at a time
    import tracemalloc

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    Y = rng.standard_normal((40, 60, 100))
    est = TimeResolved(VoxelwiseEncoder(alphas=[1.0, 100.0]))
    kw = dict(n_permutations=1280, cv=KFold(3, shuffle=True, random_state=0), random_state=0,
              average=False, cluster_threshold=0.2, n_jobs=1)
    peaks = {}
    for keep in (True, False):
        tracemalloc.start()
        res = permutation_test_time_resolved(est, {"a": X}, Y, keep_null=keep, **kw)
        peaks[keep] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del res
    full = 1280 * 60 * 100 * 8
    assert peaks[True] > full
    assert peaks[False] < full / 4, peaks


def test_rsa_function_takes_a_random_state_instance():
    from neuroprobe.estimators.temporal import permutation_test_time_resolved_rsa
    from neuroprobe.rsa import compute_rdm

    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 3))
    Y = rng.standard_normal((12, 5, 8))
    models = {"m": compute_rdm(X, "correlation")}
    a = permutation_test_time_resolved_rsa(models, Y, n_permutations=50,
                                           random_state=np.random.RandomState(7))
    seed = np.random.RandomState(7).randint(0, 2**31 - 1, size=4)
    b = permutation_test_time_resolved_rsa(models, Y, n_permutations=50, random_state=seed)
    np.testing.assert_array_equal(a.null, b.null)         # the seed drawn from the instance
    state = np.random.RandomState(7)
    c = permutation_test_time_resolved_rsa(models, Y, n_permutations=50, random_state=state)
    d = permutation_test_time_resolved_rsa(models, Y, n_permutations=50, random_state=state)
    assert not np.array_equal(c.null, d.null)             # the instance advances, as sklearn's


# ------------------------------------------------------------------ spatio-temporal clusters
def _chain(c):
    """Channels on a line: k ~ k + 1."""
    return np.eye(c, k=1, dtype=bool) | np.eye(c, k=-1, dtype=bool)


@pytest.mark.parametrize("radius, tail", [(0, 1), (0, 0), (1, 1)])
def test_adjacency_clusters_equal_the_solver_composition(radius, tail):
    from scipy import sparse

    from neuroprobe.solvers.temporal import cluster_fwe, tfce_fwe

    X, Y = _data(n=30, n_ch=6, n_times=16, window=(5, 10), seed=21)
    est = TimeResolved(VoxelwiseEncoder(alphas=ALPHAS, dtype="float64"), temporal_radius=radius)
    A = _chain(6)
    kw = dict(n_permutations=150, cv=KFold(3, shuffle=True, random_state=0), random_state=2,
              average=False, tail=tail, cluster_threshold=0.1, n_jobs=1)
    tfce = dict(step=0.02)
    kept = permutation_test_time_resolved(est, {"a": X, "b": X[::-1]}, Y, adjacency=A,
                                          tfce=tfce, **kw)
    streamed = permutation_test_time_resolved(est, {"a": X, "b": X[::-1]}, Y, adjacency=A,
                                              tfce=tfce, keep_null=False, **kw)
    for key in ("cluster_labels", "cluster_pvalue", "h0_cluster", "pvalue_fwe", "tfce_scores",
                "tfce_pvalue", "h0_tfce"):
        np.testing.assert_array_equal(getattr(streamed, key), getattr(kept, key), err_msg=key)
    w = 2 * radius + 1                                   # targets: channel x lag
    target_adj = sparse.csr_array(np.kron(A | np.eye(6, dtype=bool), np.ones((w, w), bool)))
    labels, p = cluster_fwe(kept.observed, kept.null, 0.1, tail, adjacency=target_adj)
    np.testing.assert_array_equal(kept.cluster_labels, labels)
    np.testing.assert_allclose(kept.cluster_pvalue, p, rtol=1e-12)
    scores, p_tfce = tfce_fwe(kept.observed, kept.null, start=0.0, step=0.02, tail=tail,
                              adjacency=target_adj)
    np.testing.assert_allclose(kept.tfce_scores, scores, rtol=1e-12)
    np.testing.assert_allclose(kept.tfce_pvalue, p_tfce, rtol=1e-12)
    time_only = tfce_fwe(kept.observed, kept.null, start=0.0, step=0.02, tail=tail)[0]
    assert not np.allclose(scores, time_only)          # the spatial extents count
    # spatial neighbours merge the channels' time clusters: fewer, larger clusters
    alone = permutation_test_time_resolved(est, {"a": X, "b": X[::-1]}, Y, **kw)
    assert kept.cluster_labels.max() < alone.cluster_labels.max()
    np.testing.assert_array_equal(kept.cluster_labels > 0, alone.cluster_labels > 0)


def test_adjacency_finds_a_planted_spatial_cluster():
    # an effect on channels 0-3 (neighbours on a chain) in samples 6..11; channels 4-7 noise
    rng = np.random.default_rng(8)
    X = rng.standard_normal((40, 4))
    Y = rng.standard_normal((40, 8, 20))
    Y[:, :4, 6:12] += (X @ rng.standard_normal((4, 4)))[:, :, None]
    est = TimeResolved(VoxelwiseEncoder(alphas=ALPHAS, dtype="float64"))
    res = permutation_test_time_resolved(est, {"a": X}, Y, n_permutations=200, average=False,
                                         adjacency=_chain(8), keep_null=False,
                                         cv=KFold(4, shuffle=True, random_state=0),
                                         random_state=0)
    sig = np.flatnonzero(res.cluster_pvalue < 0.05) + 1
    assert sig.size >= 1
    best = sig[np.argmin(res.cluster_pvalue[sig - 1])]
    channels = np.flatnonzero((res.cluster_labels[0] == best).any(axis=1))
    np.testing.assert_array_equal(channels, [0, 1, 2, 3])   # one cluster over the 4 channels
    assert not np.isin(res.cluster_labels[0, 4:], sig).any()


def test_adjacency_bad_input():
    X, Y = _data(n=20, n_ch=4)
    est = TimeResolved(VoxelwiseEncoder(alphas=ALPHAS))
    kw = dict(n_permutations=10, cv=3, random_state=0)
    with pytest.raises(ValueError, match="average=False"):
        permutation_test_time_resolved(est, X, Y, adjacency=_chain(4), **kw)
    with pytest.raises(ValueError, match=r"adjacency: expected a \(4, 4\)"):
        permutation_test_time_resolved(est, X, Y, adjacency=_chain(5), average=False, **kw)
