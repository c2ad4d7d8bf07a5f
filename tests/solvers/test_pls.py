"""Covariance-form NIPALS against sklearn's PLSRegression internals."""

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression

from neuroprobe.estimators.encoding import _bad_summary, read_batch
from neuroprobe.solvers import pls
from neuroprobe.solvers.backend import get_backend


@pytest.mark.parametrize("batch", [2, 100])
def test_nipals_cov_equals_sklearn(batch):
    rng = np.random.RandomState(0)
    X = rng.randn(30, 7)
    Y = X @ rng.randn(7, 5) + rng.randn(30, 5)
    be = get_backend("numpy")
    stats = pls.cross_products(
        X,
        Y,
        scale=True,
        backend=be,
        dtype=np.float64,
        batch=batch,
        read=read_batch,
        check=_bad_summary,
    )
    Xs = (X - X.mean(0)) / X.std(0, ddof=1)
    Ys = (Y - Y.mean(0)) / Y.std(0, ddof=1)
    np.testing.assert_allclose(stats["C"], Xs.T @ Ys, atol=1e-10)
    res = pls.nipals_cov(stats, 4, backend=be)
    ref = PLSRegression(n_components=4).fit(X, Y)
    for name in ("x_weights_", "y_weights_", "x_loadings_", "y_loadings_", "x_rotations_"):
        np.testing.assert_allclose(res[name], getattr(ref, name), atol=1e-10, err_msg=name)
    np.testing.assert_allclose(res["coef_"], ref.coef_.T, atol=1e-10)
    assert res["n_iter_"] == ref.n_iter_
