"""Ridge solver functions against brute-force sklearn fits."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from neuroprobe.metrics import correlation_score, r2_score
from neuroprobe.solvers import ridge
from neuroprobe.solvers.backend import get_backend

ALPHAS = np.array([1e-2, 1.0, 30.0, 1e3])


def _data(n=40, p=6, t=5, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p) + 2.0
    Y = X @ rng.randn(p, t) + 2 * rng.randn(n, t) + 5.0
    return X, Y


def _brute_cv(X, Y, folds, alphas, metric):
    out = np.zeros((len(folds), len(alphas), Y.shape[1]))
    for f, (tr, te) in enumerate(folds):
        for a, alpha in enumerate(alphas):
            pred = Ridge(alpha=alpha).fit(X[tr], Y[tr]).predict(X[te])
            out[f, a] = metric(Y[te], pred)
    return out


@pytest.mark.parametrize("p", [6, 30, 60])  # moments path, explicit primal path, kernel
@pytest.mark.parametrize("scoring", ["correlation", "r2"])
def test_cv_scores_equal_brute_force(p, scoring):
    X, Y = _data(p=p)
    folds = list(KFold(4).split(X))
    be = get_backend("numpy")
    plan = ridge.make_plan(X, folds, backend=be, dtype=np.float64)
    expected_kind = "primal" if p <= X.shape[0] else "kernel"
    assert plan.kind == expected_kind
    yc = Y - Y.mean(axis=0)
    got = ridge.cv_scores(plan, yc, ALPHAS, scoring, reduce=False)
    metric = correlation_score if scoring == "correlation" else r2_score
    np.testing.assert_allclose(got, _brute_cv(X, Y, folds, ALPHAS, metric), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("p", [5, 60])
def test_loo_scores_equal_brute_force(p):
    X, Y = _data(n=25, p=p, t=3)
    be = get_backend("numpy")
    plan = ridge.make_plan(X, None, backend=be, dtype=np.float64)
    got = ridge.loo_scores(plan, Y - Y.mean(axis=0), ALPHAS, "r2")
    n = X.shape[0]
    for a, alpha in enumerate(ALPHAS):
        loo = np.empty_like(Y)
        for i in range(n):
            keep = np.arange(n) != i
            loo[i] = Ridge(alpha=alpha).fit(X[keep], Y[keep]).predict(X[i : i + 1])[0]
        np.testing.assert_allclose(got[a], r2_score(Y, loo), rtol=1e-6)


@pytest.mark.parametrize("p", [6, 60])
def test_refit_per_target_alphas_equals_sklearn(p):
    X, Y = _data(p=p)
    be = get_backend("numpy")
    plan = ridge.make_plan(X, None, backend=be, dtype=np.float64)
    alphas = np.array([0.1, 1.0, 10.0, 100.0, 1000.0])
    coef = ridge.refit(plan, Y - Y.mean(axis=0), alphas)
    for j, alpha in enumerate(alphas):
        np.testing.assert_allclose(coef[:, j], Ridge(alpha=alpha).fit(X, Y[:, j]).coef_, atol=1e-8)


def test_ols_solver_equals_lstsq():
    X, Y = _data(n=30, p=8)
    pinv, x_mean = ridge.ols_solver(
        X, fit_intercept=False, backend=get_backend("numpy"), dtype=np.float64
    )
    np.testing.assert_allclose(pinv @ Y, np.linalg.lstsq(X, Y, rcond=None)[0], atol=1e-10)


def test_torch_backend_equals_numpy():
    pytest.importorskip("torch")
    X, Y = _data(p=8)
    folds = list(KFold(3).split(X))
    out = []
    for name in ("numpy", "torch"):
        be = get_backend(name, "cpu")
        plan = ridge.make_plan(X, folds, backend=be, dtype=np.float64)
        y = be.asarray(Y - Y.mean(axis=0))
        out.append(ridge.cv_scores(plan, y, be.asarray(ALPHAS), "r2"))
    np.testing.assert_allclose(out[0], out[1], rtol=1e-8)


def test_score_predictions_marks_constant_targets_nan():
    y = np.c_[np.arange(5.0), np.ones(5)]
    pred = np.stack([y + 0.1, y * 2])
    pred[..., 1] = np.arange(5.0)  # varying predictions of a constant target: still undefined
    out = ridge.score_predictions(y, pred.copy(), "correlation")
    assert np.isnan(out[:, 1]).all() and np.allclose(out[:, 0], 1.0)
    out = ridge.score_predictions(y, pred.copy(), "r2")
    assert np.isnan(out[:, 1]).all()
    np.testing.assert_allclose(out[:, 0], [r2_score(y[:, 0], pr) for pr in pred[:, :, 0]])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_predictions_correlate_zero_as_himalaya(backend, dtype):
    from himalaya.scoring import correlation_score as himalaya_r

    rng = np.random.RandomState(0)
    y = rng.randn(20, 4).astype(dtype)
    pred = np.stack([y + rng.randn(20, 4).astype(dtype), np.zeros_like(y)])
    pred[0, :, 1] = 3.0  # exactly constant
    # constant up to float rounding: the spread is rounding noise, not a prediction
    pred[0, :, 2] = dtype(0.7) + (rng.rand(20) < 0.5) * np.finfo(dtype).eps * dtype(0.7)
    be = get_backend(backend, "cpu")
    out, const = ridge.score_predictions(be.asarray(y), be.asarray(pred.copy()), "correlation",
                                         return_constant=True)
    out, const = be.to_numpy(out), be.to_numpy(const)
    np.testing.assert_array_equal(const, [[0, 1, 1, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_array_equal(out[0, [1, 2]], 0.0)
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out[0, [0, 3]], himalaya_r(y, pred[0])[[0, 3]], rtol=rtol)
    ref = [np.corrcoef(y[:, j], pred[0, :, j])[0, 1] for j in (0, 3)]
    np.testing.assert_allclose(out[0, [0, 3]], ref, rtol=rtol)
    # a tiny but real spread is a prediction: scale does not matter to a correlation
    small = (pred[:1] * dtype(1e-20)).astype(dtype)
    got = be.to_numpy(ridge.score_predictions(be.asarray(y), be.asarray(small), "correlation"))
    np.testing.assert_allclose(got[0, [0, 3]], ref, rtol=100 * rtol)


def test_moment_path_scores_constant_predictions_zero():
    """The (r x r) moment path of the primal solver follows the same convention."""
    X, Y = _data(n=60, p=3, t=4)
    X[:, :] = 1.0  # no feature varies: every prediction is the training mean
    folds = list(KFold(4).split(X))
    be = get_backend("numpy")
    plan = ridge.make_plan(X, folds, backend=be, dtype=np.float64)
    assert all(f.moments for f in plan.folds)
    s = ridge.cv_scores(plan, be.asarray(Y - Y.mean(axis=0)), be.asarray(ALPHAS), "correlation",
                        reduce=False)
    np.testing.assert_array_equal(s, 0.0)
