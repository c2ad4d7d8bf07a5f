"""Public RSA functions: compute_rdm, compare_rdms, noise_ceiling, square/condensed helpers."""

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import pdist, squareform

from neuroprobe.rsa import compare_rdms, compute_rdm, noise_ceiling, to_condensed, to_square


@pytest.fixture
def X():
    return np.random.default_rng(0).standard_normal((12, 7))


def test_compute_rdm_conditions_average_patterns(X):
    conditions = np.array(list("bacbacbacbac"))
    means = np.stack([X[conditions == c].mean(0) for c in "abc"])
    np.testing.assert_allclose(compute_rdm(X, "euclidean", conditions=conditions),
                               pdist(means, "euclidean"), atol=1e-12)


def test_compute_rdm_zscore(X):
    X = X * np.arange(1, 8) + 3
    np.testing.assert_allclose(compute_rdm(X, "euclidean", zscore=True),
                               pdist(scipy.stats.zscore(X, axis=0), "euclidean"), atol=1e-12)


def test_compute_rdm_stacks_lists_and_dicts(X):
    rng = np.random.default_rng(1)
    stack = rng.standard_normal((3, 12, 5))
    out = compute_rdm(stack)
    assert out.shape == (3, 66)
    np.testing.assert_allclose(out[1], pdist(stack[1], "correlation"), atol=1e-12)
    layers = {"conv": rng.standard_normal((12, 2, 3, 3)), "fc": X}
    out = compute_rdm(layers, "cosine")
    np.testing.assert_allclose(out[0], pdist(layers["conv"].reshape(12, -1), "cosine"),
                               atol=1e-12)
    np.testing.assert_allclose(out[1], pdist(X, "cosine"), atol=1e-12)
    with pytest.raises(ValueError, match="same number of stimuli"):
        compute_rdm([X, X[:5]])


def test_compute_rdm_errors(X):
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compute_rdm(bad)
    with pytest.raises(ValueError, match="at least 2 stimuli"):
        compute_rdm(X[:1])
    with pytest.raises(ValueError, match="2-D"):
        compute_rdm(X[0])


def test_constant_patterns_warn_naming_rows_and_are_nan(X):
    """A constant pattern has no correlation distance: NaN (not rounding noise), with a warning."""
    from neuroprobe.rsa import ConstantPatternError, ConstantPatternWarning

    bad = X.copy()
    bad[4] = 0.1  # constant but not exactly zero after centring: used to give rounding noise
    bad[9] = 0.0
    with pytest.warns(ConstantPatternWarning, match=r"X: 2 of 12 patterns are constant over "
                                                    r"features \(rows 4, 9\)") as rec:
        got = compute_rdm(bad, "correlation")
    assert rec[0].message.rows == [4, 9]
    keep = np.r_[0:4, 5:9, 10:12]
    square = squareform(got)
    assert np.isnan(square[[4, 9]][:, keep]).all() and np.isnan(square[4, 9])
    assert np.isnan(got).sum() == 66 - 45  # every pair with row 4 or 9, nothing else
    np.testing.assert_allclose(squareform(square[np.ix_(keep, keep)], checks=False),
                               pdist(bad[keep], "correlation"), atol=1e-12)
    # cosine: only the all-zero pattern is undefined; labels of averaged conditions are named
    with pytest.warns(ConstantPatternWarning, match=r"1 of 12 patterns are all zero \(rows 9\)"):
        cos = compute_rdm(bad, "cosine")
    assert np.isnan(squareform(cos)[9, :9]).all() and np.isfinite(squareform(cos)[4, :4]).all()
    conditions = np.array(list("aabbccddeeff"))
    zero = X.copy()
    zero[6:8] = 0.0
    with pytest.warns(ConstantPatternWarning, match=r"conditions d\)"):
        compute_rdm(zero, "correlation", conditions=conditions)
    # nothing left to compare: refuse instead of an all-NaN RDM
    with pytest.raises(ConstantPatternError, match=r"fc: 12 of 12 patterns .* every entry"):
        compute_rdm({"fc": np.zeros((12, 5))})
    with pytest.raises(ValueError, match="11 of 12 patterns"):
        compute_rdm(np.c_[np.ones((12, 4))].astype(float) + np.eye(12)[0][:, None] * [0, 1, 2, 3])
    # euclidean has no such problem
    np.testing.assert_allclose(compute_rdm(bad, "euclidean"), pdist(bad), atol=1e-12)


def test_square_condensed_roundtrip(X):
    v = pdist(X)
    np.testing.assert_array_equal(to_square(v), squareform(v))
    stack = np.stack([v, 2 * v])
    sq = to_square(stack)
    assert sq.shape == (2, 12, 12)
    np.testing.assert_array_equal(to_condensed(sq), stack)
    np.testing.assert_array_equal(to_condensed(squareform(v)), v)
    with pytest.raises(ValueError, match="n\\*\\(n-1\\)/2"):
        to_condensed(np.ones(7))


def test_compare_rdms_forms_and_aliases(X):
    rng = np.random.default_rng(2)
    a, b = pdist(X), pdist(rng.standard_normal((12, 3)))
    expected = scipy.stats.spearmanr(a, b)[0]
    assert compare_rdms(a, b) == pytest.approx(expected)
    assert compare_rdms(squareform(a), squareform(b)) == pytest.approx(expected)
    assert compare_rdms(a, b, "corr") == pytest.approx(scipy.stats.pearsonr(a, b)[0])
    assert compare_rdms(a, b, "tau-b") == pytest.approx(scipy.stats.kendalltau(a, b)[0])
    M = compare_rdms(np.stack([a, b]), b, "pearson")
    assert M.shape == (2, 1)
    assert M[1, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same number of stimuli"):
        compare_rdms(a, pdist(X[:5]))
    with pytest.raises(ValueError, match="method must be one of"):
        compare_rdms(a, b, "manhattan")


def _subject_rdms(rng, n_subjects=5, n=14, noise=1.0):
    signal = rng.standard_normal((n, 6))
    return np.stack([pdist(signal + noise * rng.standard_normal((n, 6))) for _ in
                     range(n_subjects)])


@pytest.mark.parametrize("method,theirs", [("spearman", "spearman"), ("pearson", "corr"),
                                           ("cosine", "cosine"), ("rho_a", "rho-a"),
                                           ("kendall_tau_a", "tau-a"),
                                           ("corr_cov", "corr_cov"),
                                           ("cosine_cov", "cosine_cov")])
def test_noise_ceiling_equals_rsatoolbox(method, theirs):
    pytest.importorskip("rsatoolbox")
    import warnings

    from rsatoolbox.inference import boot_noise_ceiling
    from rsatoolbox.rdm import RDMs

    V = _subject_rdms(np.random.default_rng(0))
    nc = noise_ceiling(V, method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lower, upper = boot_noise_ceiling(RDMs(V), method=theirs)
    assert nc.lower == pytest.approx(lower, rel=1e-9)
    assert nc.upper == pytest.approx(upper, rel=1e-9)
    assert nc.lower <= nc.upper


def test_noise_ceiling_leave_one_out_by_hand():
    V = _subject_rdms(np.random.default_rng(1), n_subjects=4)
    ranks = scipy.stats.rankdata(V, axis=1)
    lower = np.mean([scipy.stats.spearmanr(np.delete(ranks, s, 0).mean(0), V[s])[0]
                     for s in range(4)])
    upper = np.mean([scipy.stats.spearmanr(ranks.mean(0), V[s])[0] for s in range(4)])
    nc = noise_ceiling(squareform_stack(V), "spearman")
    assert nc.lower == pytest.approx(lower)
    assert nc.upper == pytest.approx(upper)


def squareform_stack(V):
    return np.stack([squareform(v) for v in V])


def test_noise_ceiling_sessions_and_bootstrap():
    rng = np.random.default_rng(2)
    V = _subject_rdms(rng, n_subjects=6, n=12, noise=0.5)
    sessions = np.stack([squareform_stack(V), squareform_stack(V)], axis=1)  # (subj, sess, n, n)
    nc = noise_ceiling(sessions, n_bootstrap=60, random_state=0)
    assert nc.lower == pytest.approx(noise_ceiling(V).lower)
    assert nc.lower_ci[0] <= nc.lower <= nc.lower_ci[1]
    assert nc.upper_ci[0] <= nc.upper <= nc.upper_ci[1]
    assert nc == noise_ceiling(sessions, n_bootstrap=60, random_state=0)
    # less noise -> higher ceiling (planted)
    assert noise_ceiling(_subject_rdms(rng, noise=0.2)).lower > noise_ceiling(
        _subject_rdms(rng, noise=3.0)).lower
    with pytest.raises(ValueError, match="at least 2 subject"):
        noise_ceiling(V[:1])


# -- stimulus identity --------------------------------------------------------------------------
def test_compare_rdms_aligns_by_ids():
    """Reversed stimulus order scored Spearman -0.23 instead of 1.0 when IDs were ignored."""
    from scipy.spatial.distance import pdist, squareform

    from neuroprobe.io.rdm import RDMData
    from neuroprobe.rsa import compare_rdms, permutation_test_rdms, select_rdms

    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 5))
    ids = np.array([f"im{i}" for i in range(12)])
    a = pdist(X, "correlation")
    rev = pdist(X[::-1], "correlation")
    assert compare_rdms(a, rev) < 0.5  # the wrong join, without IDs
    assert compare_rdms(a, rev, ids=(ids, ids[::-1])) == pytest.approx(1.0)
    assert compare_rdms(RDMData(a[None], ["a"], ids), RDMData(rev[None], ["b"], ids[::-1]))[
        0, 0] == pytest.approx(1.0)
    res = permutation_test_rdms(a, rev, n_permutations=20, random_state=0, ids=(ids, ids[::-1]))
    assert res["score"][0, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="stimuli of a are not in b.*'im0'"):
        compare_rdms(a, rev, ids=(ids, np.r_[ids[1:], ["other"]]))
    order = rng.permutation(12)[:7]
    np.testing.assert_allclose(select_rdms(a, order),
                               squareform(squareform(a)[np.ix_(order, order)], checks=False))



def test_subject_level_test_equals_scipy():
    from neuroprobe.rsa import subject_level_test

    rng = np.random.default_rng(3)
    signal = rng.standard_normal((10, 3))
    subj = np.stack([[squareform(pdist(signal + rng.standard_normal((10, 3)), "correlation"))
                      for _ in range(2)] for _ in range(6)])
    models = np.stack([pdist(signal, "correlation"), pdist(rng.standard_normal((10, 3)))])
    nc = noise_ceiling(subj)
    res = subject_level_test(models, subj, lower_ceiling=nc.lower)
    for i in range(2):
        ref = np.array([scipy.stats.spearmanr(models[i], squareform(s.mean(0), checks=False))[0]
                        for s in subj])
        np.testing.assert_allclose(res["scores"][i], ref, rtol=1e-10)
        t = scipy.stats.ttest_1samp(ref, 0, alternative="greater")
        assert res["t"][i] == pytest.approx(t.statistic, rel=1e-10)
        assert res["pvalue_t"][i] == pytest.approx(t.pvalue, rel=1e-10)
        assert res["sem"][i] == pytest.approx(scipy.stats.sem(ref), rel=1e-10)
        assert res["pvalue_wilcoxon"][i] == pytest.approx(
            scipy.stats.wilcoxon(ref, alternative="greater").pvalue)
        assert res["pvalue_vs_ceiling"][i] == pytest.approx(
            scipy.stats.ttest_1samp(ref, nc.lower, alternative="less").pvalue, rel=1e-10)
    assert res["pvalue_t"][0] < 0.01 < res["pvalue_t"][1]


def test_given_ids_contradicting_stored_ids_are_refused():
    from neuroprobe.io.rdm import RDMData
    from neuroprobe.rsa import compare_rdms

    rng = np.random.default_rng(11)
    ids = np.array(["a", "b", "c", "d"])
    a = RDMData(rng.random((2, 6)), names=["x", "y"], stim_ids=ids)
    b = RDMData(rng.random((1, 6)), names=["z"], stim_ids=ids[[1, 0, 2, 3]])
    # stored IDs: b is reordered into a's order (same set, other order)
    p = [1, 0, 2, 3]
    expected = compare_rdms(a.rdms, to_square(b.rdms[0])[np.ix_(p, p)], "pearson")
    np.testing.assert_allclose(compare_rdms(a, b, "pearson"), expected)
    # a different stimulus set of the same size: refused, naming the IDs
    c = RDMData(rng.random((1, 6)), names=["z"], stim_ids=np.array(["a", "b", "c", "e"]))
    with pytest.raises(ValueError, match="'d'.*'e'"):
        compare_rdms(a, c)
    # IDs given that contradict the stored ones: refused (not silently preferred)
    with pytest.raises(ValueError, match="contradict"):
        compare_rdms(a, b, ids=(["a", "b", "c", "q"], None))
    # the same IDs given again are fine
    compare_rdms(a, b, ids=(ids, None))


def test_rsascorer_stim_ids_contradicting_target_rdmdata_refused():
    from neuroprobe.estimators.rsa import RSAScorer
    from neuroprobe.io.rdm import RDMData

    rng = np.random.default_rng(12)
    target = RDMData(rng.random((1, 10)), names=["t"], stim_ids=np.array(list("abcde")))
    X = rng.random((5, 4))
    with pytest.raises(ValueError, match="contradict"):
        RSAScorer(target_rdm=target, stim_ids=list("abcdz")).fit(X, np.array(list("abcde")))
    RSAScorer(target_rdm=target).fit(X, np.array(list("edcba")))


# -- time-resolved noise ceiling ----------------------------------------------------------------
def _window_rdms(seed=0, n_subjects=4, n=9, n_windows=5):
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n_windows, n, 5))
    return np.stack([[pdist(signal[w] * w + rng.standard_normal((n, 5))) for w in
                      range(n_windows)] for _ in range(n_subjects)])


@pytest.mark.parametrize("method,theirs", [("spearman", "spearman"), ("pearson", "corr"),
                                           ("cosine", "cosine")])
def test_window_noise_ceiling_equals_rsatoolbox_per_window(method, theirs):
    pytest.importorskip("rsatoolbox")
    import warnings

    from rsatoolbox.inference import boot_noise_ceiling
    from rsatoolbox.rdm import RDMs

    from neuroprobe.rsa import window_noise_ceiling

    R = _window_rdms()
    lower, upper = window_noise_ceiling(R, method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = np.array([boot_noise_ceiling(RDMs(R[:, w]), method=theirs)
                        for w in range(R.shape[1])])
    np.testing.assert_allclose(lower, ref[:, 0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(upper, ref[:, 1], rtol=0, atol=1e-10)
    square = np.stack([squareform_stack(r) for r in R])          # (subjects, windows, n, n)
    np.testing.assert_allclose(window_noise_ceiling(square, method), (lower, upper),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(window_noise_ceiling(list(R), method), (lower, upper),
                               rtol=0, atol=1e-12)


def test_window_noise_ceiling_bad_input():
    from neuroprobe.rsa import window_noise_ceiling

    R = _window_rdms()
    with pytest.raises(ValueError, match="at least 2 subjects; got 1"):
        window_noise_ceiling(R[:1])
    with pytest.raises(ValueError, match=r"subject 2 has window RDMs of shape \(4, 36\)"):
        window_noise_ceiling([R[0], R[1], R[2, :4]])
    with pytest.raises(ValueError, match="subject_rdms: expected shape"):
        window_noise_ceiling(R[0])
    with pytest.raises(ValueError, match="subject_rdms: a condensed RDM"):
        window_noise_ceiling(R[:, :, :30])
    bad = R.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="subject_rdms"):
        window_noise_ceiling(bad)
    with pytest.raises(ValueError, match="method must be one of"):
        window_noise_ceiling(R, "nope")
