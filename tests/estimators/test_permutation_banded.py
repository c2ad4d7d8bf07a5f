"""PermutationTest over BandedRidgeEncoder: the fast path (nested choice, fixed per fold) equals
refits, its observed statistic is cross_val_score_targets', time-series nulls are calibrated,
per-band p-values of the split scores."""

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import explained_variance_score
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from neuroprobe.estimators.banded import BandedRidgeEncoder
from neuroprobe.estimators.permutation import PermutationTest
from neuroprobe.model_selection import cross_val_score_targets
from neuroprobe.solvers.permutation import chunk_seeds, draw_permutations
from tests.estimators.test_permutation import _ar1, _SplitRidge

BANDS = [slice(0, 3), slice(3, 7)]


def _runs_data(seed=0, n_runs=3, length=16, t=4):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_runs), length)
    X = rng.standard_normal((n_runs * length, 7)) + 2.0
    Y = X[:, :3] @ rng.standard_normal((3, t)) + 1.5 * rng.standard_normal((len(X), t))
    return X, Y, groups


def _encoder(**kw):
    kw = {"bands": BANDS, "candidates": 4, "alphas": [0.1, 10.0, 1000.0], "dtype": "float64",
          "cv": "leave-one-run-out", **kw}
    return BandedRidgeEncoder(**kw)


def _split_shares(model, X, y):
    """Each band's share of the explained variance of a fitted encoder's held-out prediction:
    band predictions from its coef_, centred on these rows; they sum to sklearn's
    explained_variance_score."""
    bands = np.stack([X[:, cols] @ model.coef_[cols] for cols in model.bands_.values()])
    bands -= bands.mean(axis=1, keepdims=True)
    y_c = y - y.mean(axis=0)
    shares = ((2 * y_c - bands.sum(axis=0)) * bands).sum(axis=1) / (y_c * y_c).sum(axis=0)
    np.testing.assert_allclose(
        shares.sum(axis=0),
        explained_variance_score(y, model.predict(X), multioutput="raw_values"), atol=1e-10)
    return shares


def _fixed_refit(X, Y, outer, fitted, split):
    """One BandedRidgeEncoder per outer fold and target, at that fold's chosen (gamma, alpha)
    (a single candidate and alpha: no search), scored on the held-out rows."""
    per_fold = []
    for (train, test), model in zip(outer, fitted):
        cols = []
        for t in range(Y.shape[1]):
            one = _encoder(candidates=model.best_gammas_[:, t][None], cv=3,
                           alphas=[model.best_alphas_[t]]).fit(X[train], Y[train, t][:, None])
            y_te = Y[test, t][:, None]
            cols.append(_split_shares(one, X[test], y_te) if split
                        else one.score_targets(X[test], y_te))
        per_fold.append(np.concatenate(cols, axis=-1))
    return np.mean(per_fold, axis=0)


@pytest.mark.parametrize("split", [False, True])
def test_fast_path_equals_refits_at_the_fold_hyperparameters(split):
    """Observed: the mean over outer folds of score_targets (split or not) of the encoder fitted
    on the training runs, i.e. cross_val_score_targets; null: encoders refitted on every
    circularly shifted Y at each fold's hyperparameters chosen on the observed data."""
    X, Y, groups = _runs_data()
    enc = _encoder()
    outer = list(LeaveOneGroupOut().split(X, None, groups))
    test = PermutationTest(enc, n_permutations=6, cv=LeaveOneGroupOut(), scheme="circular",
                           random_state=2, statistic="split" if split else "score")
    test.fit(X, Y, groups=groups)
    assert test.fast_path_
    fitted = [_encoder().fit(X[tr], Y[tr], groups=groups[tr]) for tr, _ in outer]
    np.testing.assert_allclose(test.score_, _fixed_refit(X, Y, outer, fitted, split),
                               atol=1e-9)
    if not split:
        cvs = cross_val_score_targets(enc, X, Y, cv=LeaveOneGroupOut(), groups=groups)
        np.testing.assert_allclose(test.score_, cvs.mean(axis=0), atol=1e-9)
    else:
        assert test.score_.shape == (2, 4) and test.pvalue_fwe_.shape == (2, 4)
    perms = draw_permutations(len(X), 6, groups, chunk_seeds(2, 1)[0], scheme="circular")
    expected = [_fixed_refit(X, Y[p], outer, fitted, split) for p in perms]
    np.testing.assert_allclose(test.null_distribution_, expected, atol=1e-9)
    np.testing.assert_allclose(test._null_from_permutations(X, Y, perms, groups),
                               test.null_distribution_, atol=1e-12)


def test_default_cv_is_the_encoders_own_and_kernel_route():
    """cv=None: the encoder's cv gives the outer folds (and the inner ones inside them); the
    kernel solver gives the same statistics as the primal one."""
    X, Y, groups = _runs_data(seed=1, n_runs=4, length=10)
    kw = dict(n_permutations=5, scheme="circular", random_state=0)
    primal = PermutationTest(_encoder(solver="primal"), **kw).fit(X, Y, groups=groups)
    kernel = PermutationTest(_encoder(solver="kernel"), **kw).fit(X, Y, groups=groups)
    np.testing.assert_allclose(kernel.null_distribution_, primal.null_distribution_, atol=1e-8)
    cvs = cross_val_score_targets(_encoder(), X, Y, cv=LeaveOneGroupOut(), groups=groups)
    np.testing.assert_allclose(primal.score_, cvs.mean(axis=0), atol=1e-9)


def _null_series(seed, n_voxels, n_runs=4, length=40, phi=0.9):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_runs), length)
    X = np.concatenate([_ar1(rng, (length, 4), phi) for _ in range(n_runs)])
    Y = np.concatenate([_ar1(rng, (length, n_voxels), phi) for _ in range(n_runs)])
    return X, Y, groups


def _null_encoder(scoring):
    return BandedRidgeEncoder(bands=[slice(0, 2), slice(2, 4)], candidates=3,
                              alphas=[1.0, 100.0], cv="leave-one-run-out", scoring=scoring,
                              dtype="float64")


def test_circular_shift_null_is_calibrated_on_null_voxels():
    """AR(1) noise and features (phi = 0.9), circular shifts within runs: the p-values of null
    voxels are never smaller than uniform (one-sided KS test) and about uniform for
    correlation. The nested choice of (gamma, alpha) makes the test somewhat conservative
    (null voxels keep hyperparameters that fit their training runs, which pays on no held-out
    run), most for r2, whose p-values pile up near 1; the nominal rate holds at 0.05, for the
    score and for each band's split share. An iid shuffle of the scans is anti-conservative."""
    X, Y, groups = _null_series(0, 300, length=50)
    kw = dict(n_permutations=199, scheme="circular", random_state=0)
    corr = PermutationTest(_null_encoder("correlation"), **kw).fit(X, Y, groups=groups)
    assert corr.fast_path_
    assert scipy.stats.kstest(corr.pvalue_, "uniform", alternative="greater").pvalue > 0.01
    assert 0.02 < np.mean(corr.pvalue_ <= 0.05) < 0.09
    assert 0.07 < np.mean(corr.pvalue_ <= 0.1) < 0.15
    r2 = PermutationTest(_null_encoder("r2"), statistic="split", **kw).fit(X, Y, groups=groups)
    assert r2.pvalue_.shape == (2, 300)
    for p in r2.pvalue_:
        assert scipy.stats.kstest(p, "uniform", alternative="greater").pvalue > 0.01
        assert np.mean(p <= 0.05) < 0.08
    shuffle = PermutationTest(_null_encoder("correlation"), n_permutations=199, random_state=0,
                              scheme="shuffle").fit(X, Y, groups=groups)
    assert scipy.stats.kstest(shuffle.pvalue_, "uniform", alternative="greater").pvalue < 1e-6
    assert np.mean(shuffle.pvalue_ <= 0.05) > 0.15


def test_family_wise_error_is_controlled_over_null_simulations():
    """Max-statistic FWE over voxels (per band for the split shares): over 12 null data sets,
    a voxel reaches p_FWE <= 0.05 in at most the binomial bound of 12 x 0.05."""
    hits = np.zeros(3)
    for seed in range(12):
        X, Y, groups = _null_series(seed + 10, 40, length=30)
        kw = dict(n_permutations=59, scheme="circular", random_state=seed)
        score = PermutationTest(_null_encoder("correlation"), **kw).fit(X, Y, groups=groups)
        split = PermutationTest(_null_encoder("r2"), statistic="split", **kw).fit(
            X, Y, groups=groups)
        hits += np.r_[np.nanmin(score.pvalue_fwe_), np.nanmin(split.pvalue_fwe_, axis=1)] <= 0.05
        assert np.all(split.pvalue_fwe_ >= split.pvalue_ - 1e-12)
    assert np.all(hits <= 3)  # P(Binomial(12, 0.05) > 3) < 0.003


def test_planted_band_only_voxel_gets_a_small_pvalue_for_its_band_only():
    """Voxels driven by band A alone (plus AR(1) noise): small per-band p for A, never small for
    band B (often exactly 1: folds that gave B weight 0, share 0 under every permutation)."""
    rng = np.random.default_rng(5)
    n_runs, length, n_voxels = 4, 40, 30
    groups = np.repeat(np.arange(n_runs), length)
    X = np.concatenate([_ar1(rng, (length, 6), 0.5) for _ in range(n_runs)])
    noise = np.concatenate([_ar1(rng, (length, n_voxels), 0.5) for _ in range(n_runs)])
    Y = X[:, :3] @ rng.standard_normal((3, n_voxels)) * 0.6 + noise
    enc = BandedRidgeEncoder(bands=[slice(0, 3), slice(3, 6)], candidates=6,
                             alphas=np.logspace(-1, 3, 5), cv="leave-one-run-out",
                             dtype="float64")
    test = PermutationTest(enc, n_permutations=99, scheme="circular", random_state=0,
                           statistic="split").fit(X, Y, groups=groups)
    p_a, p_b = test.pvalue_
    assert np.all(p_a <= 0.02)
    assert np.median(test.pvalue_fwe_[0]) <= 0.05
    assert np.mean(p_b <= 0.05) <= 0.1 and np.median(p_b) > 0.3
    assert np.all(test.pvalue_fwe_[1] > 0.05)


def test_split_statistic_errors_and_the_generic_path():
    from sklearn.linear_model import Ridge

    X, Y, groups = _runs_data()
    with pytest.raises(ValueError, match="needs a banded model"):
        PermutationTest(Ridge(), statistic="split", n_permutations=3).fit(X, Y)
    with pytest.raises(ValueError, match="scoring='r2' cannot be given"):
        PermutationTest(_encoder(), statistic="split", scoring="r2", n_permutations=3).fit(X, Y)
    with pytest.raises(ValueError, match="statistic"):
        PermutationTest(_encoder(), statistic="bands", n_permutations=3).fit(X, Y)

    # the generic path refits an estimator whose score_targets takes split=True
    test = PermutationTest(_SplitRidge(1.0), statistic="split", n_permutations=19,
                           cv=GroupKFold(3), scheme="circular", random_state=0)
    test.fit(X[:, :4], Y, groups=groups)
    assert not test.fast_path_ and test.pvalue_.shape == (2, 4)
    assert np.all(test.pvalue_[0] <= 0.1)  # X[:, :3] drives every target
    max_null = test.null_distribution_[:, 1].max(axis=1)  # one family: band 1's targets
    np.testing.assert_allclose(test.pvalue_fwe_[1],
                               [(np.sum(max_null >= s) + 1) / 20 for s in test.score_[1]])
