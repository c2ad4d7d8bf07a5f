"""PermutationTest: sklearn equivalence, fast paths, determinism, validity (uniform p, FWE)."""

import joblib
import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import pdist
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold, KFold, permutation_test_score

from neuroprobe.estimators.permutation import PermutationTest
from neuroprobe.estimators.rsa import RSAScorer
from neuroprobe.solvers.permutation import chunk_seeds, chunk_sizes, draw_permutations
from tests._tolerance import assert_allclose_dtype


def _sklearn_permutations(n, n_permutations, seed, groups=None):
    """The permutations permutation_test_score draws (sklearn's _shuffle, in order)."""
    rs = np.random.RandomState(seed)
    out = []
    for _ in range(n_permutations):
        if groups is None:
            out.append(rs.permutation(n))
        else:
            idx = np.arange(n)
            for g in np.unique(groups):
                mask = groups == g
                idx[mask] = rs.permutation(idx[mask])
            out.append(idx)
    return np.array(out)


def test_generic_path_equals_permutation_test_score():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    y = X[:, 0] + rng.standard_normal(30)
    score, null, pvalue = permutation_test_score(Ridge(), X, y, n_permutations=20,
                                                 random_state=np.random.RandomState(7))
    # permutation_test_score's cv=None is unshuffled KFold(5); neuroprobe's default is shuffled
    test = PermutationTest(Ridge(), n_permutations=20, cv=KFold(5))
    ours = test._null_from_permutations(X, y, _sklearn_permutations(30, 20, 7))
    np.testing.assert_allclose(ours.ravel(), null, rtol=1e-12)
    test.fit(X, y)
    assert test.score_ == pytest.approx(score)
    assert not test.fast_path_
    assert test.null_distribution_.shape == (20,)
    expected_p = (np.sum(test.null_distribution_ >= test.score_) + 1) / 21
    assert test.pvalue_ == pytest.approx(expected_p)
    assert test.pvalue_fwe_ == test.pvalue_


@pytest.mark.filterwarnings("ignore:The groups parameter is ignored")
def test_generic_path_groups_classifier_and_scoring():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((24, 3))
    y = (X[:, 0] + 0.5 * rng.standard_normal(24) > 0).astype(int)
    groups = np.repeat(np.arange(4), 6)
    kwargs = dict(n_permutations=5, cv=KFold(3), scoring="accuracy")
    score, null, _ = permutation_test_score(LogisticRegression(), X, y, groups=groups,
                                            random_state=np.random.RandomState(3), **kwargs)
    test = PermutationTest(LogisticRegression(), **kwargs)
    ours = test._null_from_permutations(X, y, _sklearn_permutations(24, 5, 3, groups), groups)
    np.testing.assert_allclose(ours.ravel(), null)
    test.fit(X, y, groups=groups)
    assert test.score_ == pytest.approx(score)


def test_multi_target_generic_and_n_jobs_invariance():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 3))
    Y = np.c_[X[:, 0] * 3 + rng.standard_normal(30), rng.standard_normal((30, 2))]

    class PerTargetRidge(Ridge):
        def score_targets(self, X, Y):
            return 1 - ((Y - self.predict(X)) ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)

    kw = dict(n_permutations=70, cv=2)
    a = PermutationTest(PerTargetRidge(), random_state=0, **kw).fit(X, Y)
    assert a.score_.shape == (3,) and a.null_distribution_.shape == (70, 3)
    assert a.pvalue_[0] == pytest.approx(1 / 71)  # planted effect
    assert np.all(a.pvalue_fwe_ >= a.pvalue_)
    with joblib.parallel_config(backend="threading"):  # any joblib backend: same chunks
        b = PermutationTest(PerTargetRidge(), random_state=0, n_jobs=2, **kw).fit(X, Y)
    assert_allclose_dtype(a.null_distribution_, b.null_distribution_, n_terms=30)
    c = PermutationTest(PerTargetRidge(), random_state=1, **kw).fit(X, Y)
    assert not np.array_equal(a.null_distribution_, c.null_distribution_)


class _MockFast(RegressorMixin, BaseEstimator):
    """Records the permutations it is given; statistic = per-column correlation with X[:, 0]."""

    calls = []

    def fit(self, X, Y):
        return self

    def _permutation_scores(self, X, Y, permutations, *, cv=None, groups=None):
        type(self).calls.append((np.array(permutations), cv, groups))

        def stat(Yp):
            return np.array([np.corrcoef(X[:, 0], y)[0, 1] for y in Yp.T])

        return stat(Y), np.array([stat(Y[p]) for p in permutations])


@pytest.mark.filterwarnings("ignore:The groups parameter is ignored")
def test_fast_path_protocol_with_groups_and_chunks():
    _MockFast.calls = []
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 2))
    Y = np.c_[X[:, 0] + 0.1 * rng.standard_normal(12), rng.standard_normal(12)]
    groups = np.repeat([0, 1, 2], 4)
    test = PermutationTest(_MockFast(), n_permutations=150, random_state=5, cv=3)
    test.fit(X, Y, groups=groups)
    assert test.fast_path_
    perms = np.concatenate([c[0] for c in _MockFast.calls])
    assert perms.shape == (150, 12)
    # cv=3 with groups: the default grouped splitter (neuroprobe.model_selection.default_cv)
    assert all(type(c[1]) is GroupKFold and c[1].n_splits == 3 and c[2] is groups
               for c in _MockFast.calls)
    assert np.all(groups[perms] == groups)  # permuted within groups only
    # permutations come from the per-chunk seeds of the master seed
    sizes = chunk_sizes(150)
    expected = np.concatenate([draw_permutations(12, s, groups, seed) for s, seed in
                               zip(sizes, chunk_seeds(5, len(sizes)))])
    np.testing.assert_array_equal(perms, expected)
    assert test.pvalue_[0] < 0.02 and test.pvalue_[1] > 0.02


def test_integer_cv_is_the_shuffled_default_splitter_seeded_by_random_state():
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(6)
    X = rng.standard_normal((30, 3))
    y = X[:, 0] + 0.5 * rng.standard_normal(30)
    test = PermutationTest(Ridge(), n_permutations=5, cv=4, random_state=2).fit(X, y)
    ref = cross_val_score(Ridge(), X, y, cv=KFold(4, shuffle=True, random_state=2)).mean()
    assert test.score_ == pytest.approx(ref, rel=1e-12)
    plain = cross_val_score(Ridge(), X, y, cv=KFold(4)).mean()
    assert test.score_ != pytest.approx(plain, rel=1e-6)


def test_rsa_fast_path_equals_brute_force_and_is_deterministic():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((10, 5)), rng.standard_normal((10, 6))
    test = PermutationTest(RSAScorer(), n_permutations=40, random_state=0).fit(X, Y)
    perms = draw_permutations(10, 40, seed=chunk_seeds(0, 1)[0])
    model = pdist(X, "correlation")
    brute = [scipy.stats.spearmanr(model, pdist(Y[p], "correlation"))[0] for p in perms]
    np.testing.assert_allclose(test.null_distribution_, brute, atol=1e-12)
    assert test.score_ == pytest.approx(scipy.stats.spearmanr(model, pdist(Y, "correlation"))[0])
    with joblib.parallel_config(backend="threading"):
        again = PermutationTest(RSAScorer(), n_permutations=40, random_state=0,
                                n_jobs=2).fit(X, Y)
    assert_allclose_dtype(again.null_distribution_, test.null_distribution_, n_terms=45)


def test_rsa_pvalues_uniform_under_null():
    pvals = []
    for seed in range(150):
        rng = np.random.default_rng(seed)
        X, Y = rng.standard_normal((8, 3)), rng.standard_normal((8, 3))
        pvals.append(PermutationTest(RSAScorer(), n_permutations=99,
                                     random_state=seed).fit(X, Y).pvalue_)
    assert scipy.stats.kstest(pvals, "uniform").pvalue > 0.01
    assert np.mean(np.array(pvals) <= 0.05) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 150)


def test_rsa_family_wise_error_controlled():
    n_sim, alpha = 120, 0.05
    any_fwe = any_raw = 0
    for seed in range(n_sim):
        rng = np.random.default_rng(1000 + seed)
        X, Y = rng.standard_normal((9, 12)), rng.standard_normal((9, 4))
        layers = {f"l{i}": slice(3 * i, 3 * i + 3) for i in range(4)}
        test = PermutationTest(RSAScorer(feature_groups=layers), n_permutations=99,
                               random_state=seed).fit(X, Y)
        any_fwe += np.any(test.pvalue_fwe_ <= alpha)
        any_raw += np.any(test.pvalue_ <= alpha)
    assert any_fwe / n_sim <= alpha + 2.5 * np.sqrt(alpha * (1 - alpha) / n_sim)
    assert any_raw > any_fwe  # without correction the family-wise rate is inflated


def test_rsa_planted_effect_detected_across_layers_and_rois():
    rng = np.random.default_rng(5)
    latent = rng.standard_normal((30, 3))
    X = np.hstack([latent @ rng.standard_normal((3, 8)), rng.standard_normal((30, 8))])
    Y = np.hstack([latent @ rng.standard_normal((3, 10)), rng.standard_normal((30, 10))])
    est = RSAScorer(feature_groups=[slice(0, 8), slice(8, 16)],
                    target_groups=[slice(0, 10), slice(10, 20)])
    test = PermutationTest(est, n_permutations=199, random_state=0).fit(X, Y)
    # (layer, ROI) pairs, model-major: only (0, 0) carries the planted geometry
    assert test.pvalue_fwe_[0] == pytest.approx(1 / 200)
    assert np.all(test.pvalue_fwe_[1:] > 0.05)


def test_rsa_fixed_target_rdm_without_y():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((15, 4))
    target = pdist(X[:, :2] + 0.1 * rng.standard_normal((15, 2)))
    test = PermutationTest(RSAScorer(target_rdm=target), n_permutations=99,
                           random_state=0).fit(X)
    assert test.pvalue_ == pytest.approx(0.01)


def test_encoder_fast_path_matches_statistic_definition():
    encoding = pytest.importorskip("neuroprobe.estimators.encoding")
    rng = np.random.default_rng(7)
    X = rng.standard_normal((24, 3))
    Y = np.c_[X @ [1.0, -1.0, 0.5] + rng.standard_normal(24), rng.standard_normal(24)]
    alphas = [0.1, 10.0]
    est = encoding.VoxelwiseEncoder(alphas=alphas, cv=3, dtype="float64")
    test = PermutationTest(est, n_permutations=12, random_state=0).fit(X, Y)
    assert test.fast_path_

    def statistic(Yp):  # max over alphas of the mean over folds of the held-out correlation
        per_alpha = []
        for a in alphas:
            folds = []
            for train, held in KFold(3).split(X):
                pred = Ridge(alpha=a).fit(X[train], Yp[train]).predict(X[held])
                folds.append([np.corrcoef(pred[:, t], Yp[held, t])[0, 1] for t in range(2)])
            per_alpha.append(np.mean(folds, axis=0))
        return np.max(per_alpha, axis=0)

    perms = draw_permutations(24, 12, seed=chunk_seeds(0, 1)[0])
    np.testing.assert_allclose(test.score_, statistic(Y), atol=1e-6)
    np.testing.assert_allclose(test.null_distribution_, [statistic(Y[p]) for p in perms],
                               atol=1e-6)
    assert test.pvalue_[0] == pytest.approx(1 / 13)


def test_errors():
    X = np.zeros((5, 2))
    with pytest.raises(ValueError, match="The 'n_permutations' parameter of PermutationTest must"):
        PermutationTest(Ridge(), n_permutations=0).fit(X, np.zeros(5))
    with pytest.raises(ValueError, match="The 'estimator' parameter of PermutationTest must"):
        PermutationTest(object()).fit(X, np.zeros(5))
    with pytest.raises(ValueError, match="The 'n_jobs' parameter of PermutationTest must"):
        PermutationTest(Ridge(), n_jobs="many").fit(X, np.zeros(5))
    with pytest.raises(ValueError, match="groups must have one label per sample"):
        PermutationTest(Ridge()).fit(X, np.zeros(5), groups=[0, 1])
    with pytest.raises(ValueError, match="X has 5 rows but Y has 4"):
        PermutationTest(Ridge()).fit(X, np.zeros(4))


def _permutation_test_instances():
    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    return [
        PermutationTest(Ridge(), n_permutations=5, cv=3, random_state=0),
        PermutationTest(VoxelwiseEncoder(alphas=[1.0, 10.0], cv=3, dtype="float64"),
                        n_permutations=5, random_state=0),
        PermutationTest(VoxelwiseEncoder(), n_permutations=5),  # the encoder's defaults
    ]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("estimator", _permutation_test_instances(),
                         ids=["generic", "fast", "fast_default_encoder"])
def test_sklearn_conformance(estimator):
    _assert_conforms(estimator)


@pytest.mark.slow  # n_permutations=1000 (the default) in every check: ~30 s here
@pytest.mark.filterwarnings("ignore")
def test_sklearn_conformance_defaults():
    """All defaults, inner estimator's too (the generic path at its default 1000 permutations
    refits Ridge 5000 times per check: minutes, so it runs at n_permutations=5 above)."""
    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    _assert_conforms(PermutationTest(VoxelwiseEncoder()))


def _assert_conforms(estimator):
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(estimator, on_fail=None)
    failed = {r["check_name"]: str(r["exception"]) for r in results if r["status"] == "failed"}
    assert not failed, failed


def test_generic_path_warns_about_a_constant_target_from_the_observed_fit_only():
    """A constant target warns in the observed CV (once per fold at most), not per permutation."""
    import warnings

    from neuroprobe.estimators.encoding import PLSEncoder
    from neuroprobe.metrics import ZeroVarianceWarning

    rng = np.random.RandomState(0)
    X = rng.randn(40, 5)
    Y = X @ rng.randn(5, 3) + rng.randn(40, 3)
    Y[:, 1] = 2.0  # a constant target
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        test = PermutationTest(PLSEncoder(n_components=2), n_permutations=30, cv=KFold(4),
                               random_state=0).fit(X, Y)
    zero_var = [w for w in rec if issubclass(w.category, ZeroVarianceWarning)]
    assert 1 <= len(zero_var) <= 2 * 4  # fit + score per fold; was that for 1 + 30 fits
    assert np.isnan(test.pvalue_[1]) and np.isfinite(test.pvalue_[[0, 2]]).all()


# --------------------------------------------------------------------------- time-series schemes
def _ar1(rng, shape, phi):
    """AR(1) series of unit variance along axis 0."""
    from scipy.signal import lfilter

    return lfilter([1.0], [1.0, -phi], rng.standard_normal(shape) * np.sqrt(1 - phi**2), axis=0)


def _null_time_series(seed=0, n_runs=4, length=50, n_voxels=300, phi=0.9):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_runs), length)
    X = np.concatenate([_ar1(rng, (length, 2), phi) for _ in range(n_runs)])
    Y = np.concatenate([_ar1(rng, (length, n_voxels), phi) for _ in range(n_runs)])
    return X, Y, groups


def test_circular_shift_null_is_calibrated_and_a_shuffle_is_not():
    """Null voxels with autocorrelated noise (AR(1), phi = 0.9) and autocorrelated features:
    circular shifts within runs give uniform p-values (KS test); an iid shuffle does not (about
    30% of the null voxels at p <= 0.05)."""
    from sklearn.model_selection import LeaveOneGroupOut

    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    X, Y, groups = _null_time_series()
    est = VoxelwiseEncoder(alphas=[1.0, 100.0], cv=LeaveOneGroupOut(), dtype="float64")
    kw = dict(n_permutations=199, random_state=0)
    circular = PermutationTest(est, scheme="circular", **kw).fit(X, Y, groups=groups)
    assert circular.fast_path_
    assert scipy.stats.kstest(circular.pvalue_, "uniform").pvalue > 0.01
    assert np.mean(circular.pvalue_ <= 0.05) < 0.09
    shuffle = PermutationTest(est, scheme="shuffle", **kw).fit(X, Y, groups=groups)
    assert scipy.stats.kstest(shuffle.pvalue_, "uniform").pvalue < 1e-6
    assert np.mean(shuffle.pvalue_ <= 0.05) > 0.15  # anti-conservative
    # blocks of 10 scans (longer than the autocorrelation): calibrated as well
    block = PermutationTest(est, scheme="block", block_size=10, **kw).fit(X, Y, groups=groups)
    assert scipy.stats.kstest(block.pvalue_, "uniform").pvalue > 0.01


@pytest.mark.parametrize("scheme", ["circular", "block"])
def test_encoder_fast_path_equals_refits_for_time_series_schemes(scheme):
    """The fast path's null (reused fold decompositions) equals refits of sklearn Ridge on
    every circularly shifted / block-permuted Y, folds leave-one-run-out, permutations within
    runs."""
    from sklearn.model_selection import LeaveOneGroupOut

    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    rng = np.random.default_rng(4)
    groups = np.repeat([0, 1, 2], 12)
    X = rng.standard_normal((36, 3))
    Y = np.c_[X @ [1.0, -1.0, 0.5] + rng.standard_normal(36), rng.standard_normal((36, 2))]
    alphas = [0.1, 10.0]
    est = VoxelwiseEncoder(alphas=alphas, cv=LeaveOneGroupOut(), dtype="float64")
    test = PermutationTest(est, n_permutations=15, random_state=3, scheme=scheme,
                           block_size=4).fit(X, Y, groups=groups)
    assert test.fast_path_

    def statistic(Yp):
        per_alpha = []
        for a in alphas:
            folds = []
            for train, held in LeaveOneGroupOut().split(X, None, groups):
                pred = Ridge(alpha=a).fit(X[train], Yp[train]).predict(X[held])
                folds.append([np.corrcoef(pred[:, t], Yp[held, t])[0, 1] for t in range(3)])
            per_alpha.append(np.mean(folds, axis=0))
        return np.max(per_alpha, axis=0)

    perms = draw_permutations(36, 15, groups, chunk_seeds(3, 1)[0], scheme=scheme, block_size=4)
    assert np.all(groups[perms] == groups)
    np.testing.assert_allclose(test.score_, statistic(Y), atol=1e-6)
    np.testing.assert_allclose(test.null_distribution_, [statistic(Y[p]) for p in perms],
                               atol=1e-6)
    np.testing.assert_allclose(test._null_from_permutations(X, Y, perms, groups),
                               test.null_distribution_, atol=1e-10)


def test_permutations_given_to_the_estimator_stay_within_runs():
    _MockFast.calls = []
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 2))
    Y = rng.standard_normal((30, 2))
    groups = np.repeat([5, 6, 7], 10)
    PermutationTest(_MockFast(), n_permutations=80, random_state=1, scheme="circular",
                    cv=3).fit(X, Y, groups=groups)
    perms = np.concatenate([c[0] for c in _MockFast.calls])
    assert perms.shape == (80, 30)
    assert np.all(groups[perms] == groups)
    # each run is a rotation of itself: consecutive rows stay consecutive (mod the run length)
    local = perms.reshape(80, 3, 10) - np.array([0, 10, 20])[None, :, None]
    assert np.all((np.diff(local, axis=2) % 10) == 1)


def test_iid_shuffle_under_grouped_cv_warns():
    from sklearn.model_selection import LeaveOneGroupOut

    from neuroprobe.estimators.encoding import VoxelwiseEncoder
    from neuroprobe.exceptions import ExchangeabilityWarning

    X, Y, groups = _null_time_series(n_voxels=3, length=12)
    est = VoxelwiseEncoder(alphas=[1.0], cv=LeaveOneGroupOut())
    with pytest.warns(ExchangeabilityWarning, match="scheme='circular'"):
        PermutationTest(est, n_permutations=5, random_state=0).fit(X, Y, groups=groups)
    with pytest.warns(ExchangeabilityWarning):  # a group splitter as the test's cv
        PermutationTest(VoxelwiseEncoder(alphas=[1.0], cv=3), n_permutations=5,
                        cv=GroupKFold(3), random_state=0).fit(X, Y, groups=groups)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ExchangeabilityWarning)
        for scheme in ("shuffle", "circular"):  # stated explicitly: no warning
            PermutationTest(est, n_permutations=5, random_state=0, scheme=scheme).fit(
                X, Y, groups=groups)
        PermutationTest(VoxelwiseEncoder(alphas=[1.0], cv=3), n_permutations=5,
                        random_state=0).fit(X, Y)  # no groups: no warning
    with pytest.raises(ValueError, match="block_size"):
        PermutationTest(est, n_permutations=5, scheme="block").fit(X, Y, groups=groups)


class _SplitRidge(Ridge):
    """A two-band model whose ``score_targets(split=True)`` gives one score per band (the
    protocol of a banded ridge): the product measure r2_b = <y, pred_b> terms of the R2."""

    def score_targets(self, X, Y, split=False):
        Y = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
        coef = self.coef_.reshape(Y.shape[1], -1)
        yc = Y - Y.mean(0)
        parts = []
        for band in (slice(0, 2), slice(2, 4)):
            pred = (X[:, band] - X[:, band].mean(0)) @ coef[:, band].T
            parts.append((2 * yc * pred - pred**2).sum(0) / (yc**2).sum(0))
        parts = np.array(parts)
        return parts if split else parts.sum(0)


def test_per_band_pvalues_of_split_scores_through_the_generic_path():
    """A ``scoring`` callable returning every band's split score gives per-band p-values, FWE
    over bands x targets, with time-series permutations."""
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], 20)
    X = rng.standard_normal((60, 4))
    Y = np.c_[X[:, :2] @ [1.0, 1.0] + 0.5 * rng.standard_normal(60), rng.standard_normal(60)]

    def split_scoring(est, X, Y):
        return est.score_targets(X, Y, split=True).ravel()  # (band, target) flattened

    test = PermutationTest(_SplitRidge(1.0), n_permutations=49, cv=GroupKFold(3),
                           scoring=split_scoring, scheme="circular", random_state=0)
    test.fit(X, Y, groups=groups)
    p = test.pvalue_.reshape(2, 2)  # bands x targets
    assert p[0, 0] == pytest.approx(1 / 50)  # band 0 drives target 0
    assert p[1, 0] > 0.05 and p[0, 1] > 0.05
    assert test.pvalue_fwe_.reshape(2, 2)[0, 0] == pytest.approx(1 / 50)
