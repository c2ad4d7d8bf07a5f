"""Per-target metrics against scipy / sklearn references."""

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn import metrics as skm
from sklearn.model_selection import GridSearchCV, cross_validate

from neuroprobe import metrics
from neuroprobe.estimators.encoding import VoxelwiseEncoder


def _pair(seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randn(30, 5)
    return y, y + rng.randn(30, 5)


def test_correlation_score_equals_pearsonr():
    y, p = _pair()
    got = metrics.correlation_score(y, p)
    np.testing.assert_allclose(got, [pearsonr(y[:, j], p[:, j])[0] for j in range(5)])
    assert metrics.correlation_score(y[:, 0], p[:, 0]) == pytest.approx(got[0])


def test_r2_and_explained_variance_equal_sklearn():
    y, p = _pair(1)
    np.testing.assert_allclose(metrics.r2_score(y, p), skm.r2_score(y, p, multioutput="raw_values"))
    np.testing.assert_allclose(
        metrics.explained_variance_score(y, p),
        skm.explained_variance_score(y, p, multioutput="raw_values"),
    )


def test_constant_targets_are_nan():
    y, p = _pair()
    y[:, 2] = 1.0
    for fn in (metrics.correlation_score, metrics.r2_score, metrics.explained_variance_score):
        out = fn(y, p)
        assert np.isnan(out[2]) and not np.isnan(out[[0, 1, 3, 4]]).any()


def test_constant_predictions_correlate_zero_as_himalaya():
    from himalaya.scoring import correlation_score as himalaya_r

    y, p = _pair()
    p[:, 1] = 2.5
    p[:, 3] = np.float32(0.3)  # float32 constant cast to float64: still constant
    got = metrics.correlation_score(y, p)
    np.testing.assert_allclose(got, himalaya_r(y, p), atol=1e-12)
    assert got[1] == 0.0 and got[3] == 0.0
    assert metrics.correlation_score(y[:, 1], p[:, 1]) == 0.0
    # the NaN-aware mean over targets equals the plain mean: nothing is dropped
    assert metrics.mean_correlation_score(y, p) == pytest.approx(got.mean())


def test_scorers_in_cross_validate_and_grid_search():
    rng = np.random.RandomState(0)
    X = rng.randn(40, 4)
    Y = X @ rng.randn(4, 3) + rng.randn(40, 3)
    enc = VoxelwiseEncoder(alphas=[0.1, 10.0], scoring="r2", dtype="float64")
    res = cross_validate(enc, X, Y, cv=4, scoring=metrics.get_scorer("correlation"))
    manual = []
    for tr, te in __import__("sklearn.model_selection").model_selection.KFold(4).split(X):
        fitted = enc.fit(X[tr], Y[tr])
        manual.append(metrics.correlation_score(Y[te], fitted.predict(X[te])).mean())
    np.testing.assert_allclose(res["test_score"], manual)
    gs = GridSearchCV(enc, {"fit_intercept": [True, False]}, cv=3, scoring=metrics.r2_scorer)
    gs.fit(X, Y)
    assert np.isfinite(gs.best_score_)
    assert metrics.get_scorer("neg_mean_squared_error") is not None
    with pytest.raises(ValueError, match="unknown scoring"):
        metrics.get_scorer("nope")


def test_one_scoring_table_shared_by_metrics_and_solvers():
    from neuroprobe.solvers import ridge
    from neuroprobe.solvers.scoring import SCORINGS, score_predictions

    assert set(metrics.SCORERS) == set(SCORINGS) == set(metrics.PER_TARGET)
    assert ridge.SCORINGS == tuple(SCORINGS)
    rng = np.random.default_rng(1)
    y = rng.standard_normal((30, 4))
    pred = y + rng.standard_normal((30, 4))
    before = pred.copy()
    refs = {"r2": skm.r2_score, "explained_variance": skm.explained_variance_score}
    for name, ref in refs.items():
        got = metrics.PER_TARGET[name](y, pred)
        np.testing.assert_allclose(got, ref(y, pred, multioutput="raw_values"), atol=1e-12)
        np.testing.assert_array_equal(got, score_predictions(y, pred.copy(), name))
    r = [np.corrcoef(y[:, j], pred[:, j])[0, 1] for j in range(4)]
    np.testing.assert_allclose(metrics.correlation_score(y, pred), r, atol=1e-12)
    np.testing.assert_array_equal(pred, before)  # inputs never modified
