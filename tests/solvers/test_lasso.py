"""solvers/lasso: the pure lasso CV worker against scikit-learn's Lasso and a brute-force CV."""

import numpy as np
import pytest
from sklearn.linear_model import Lasso
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold

from neuroprobe.solvers import lasso


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_cv_batch_equals_sklearn_lasso(fit_intercept):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    y = X @ rng.standard_normal((5, 3)) + 0.5 * rng.standard_normal((40, 3)) + 2.0
    alphas = np.array([0.01, 0.1, 1.0])
    folds = list(KFold(4).split(X))
    X_before, y_before = X.copy(), y.copy()
    res = lasso.cv_batch(y, X, folds, alphas, "r2", fit_intercept)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    for j in range(3):
        brute = [np.mean([r2_score(y[te, j], Lasso(alpha=a, fit_intercept=fit_intercept)
                                   .fit(X[tr], y[tr, j]).predict(X[te])) for tr, te in folds])
                 for a in alphas]
        # per-fold fits run lasso_path (Gram precomputed when n > p) vs Lasso (not): the same
        # coordinate descent, converged to its tol=1e-4 duality gap either way
        np.testing.assert_allclose(res["scores"][:, j], brute, atol=1e-5)
        assert res["best"][j] == alphas[int(np.argmax(brute))]
        ref = Lasso(alpha=res["best"][j], fit_intercept=fit_intercept).fit(X, y[:, j])
        np.testing.assert_allclose(res["coef"][:, j], ref.coef_, atol=1e-8)
        np.testing.assert_allclose(res["intercept"][j], ref.intercept_, atol=1e-8)


def test_constant_target_scores_nan():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 3))
    y = np.column_stack([X[:, 0], np.full(20, 3.0)])
    res = lasso.cv_batch(y, X, list(KFold(2).split(X)), np.array([0.1]), "correlation", True)
    assert res["const"].tolist() == [False, True]
    assert np.isnan(res["scores"][0, 1]) and not np.isnan(res["scores"][0, 0])
