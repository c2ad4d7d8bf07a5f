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
# --------------------------------------------------------------------------- kernel path (n << p)
def _wide(n=40, p=600, t=6, seed=1, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = (rng.randn(n, p) + 1.5).astype(dtype)
    Y = (X @ rng.randn(p, t) / np.sqrt(p) + rng.randn(n, t) + 3.0).astype(dtype)
    return X, Y


def _tol(dtype, scale=1.0):
    """Relative tolerance for results of a few hundred float reductions in ``dtype``."""
    return float(np.finfo(dtype).eps) * 1e3 * scale


def test_centred_cross_gram_blocks_equal_direct():
    X, _ = _wide(n=9, p=1000)
    B = X[:4] * 2.0
    m = X.mean(axis=0)
    be = get_backend("numpy")
    k, applied = ridge.centred_cross_gram(be, X, X, m, block=97, apply=m)
    np.testing.assert_allclose(k, (X - m) @ (X - m).T, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(applied, (X - m) @ m, rtol=1e-12, atol=1e-9)
    k2 = ridge.centred_cross_gram(be, B, X, m, block=333)
    np.testing.assert_allclose(k2, (B - m) @ (X - m).T, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_encoder_equals_sklearn_ridge_at_chosen_alpha(dtype):
    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    X, Y = _wide(dtype=dtype)
    alphas = np.logspace(-1, 5, 7)
    est = VoxelwiseEncoder(alphas=alphas, cv=4, dtype=np.dtype(dtype).name).fit(X, Y)
    assert est.dual_coef_.shape == (X.shape[0], Y.shape[1])
    assert "_coef" in est.__dict__ and est.__dict__["_coef"] is None  # coef_ not formed by fit
    X_new = _wide(n=7, seed=5, dtype=dtype)[0]
    pred = est.predict(X_new)  # through the dual coefficients
    assert est.__dict__["_coef"] is None
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    for j, alpha in enumerate(est.best_alphas_):
        ref = Ridge(alpha=alpha).fit(X64, Y64[:, j])
        np.testing.assert_allclose(
            pred[:, j], ref.predict(X_new), rtol=_tol(dtype), atol=_tol(dtype)
        )
        np.testing.assert_allclose(
            est.coef_[:, j], ref.coef_, rtol=_tol(dtype), atol=_tol(dtype) * np.abs(ref.coef_).max()
        )
        np.testing.assert_allclose(est.intercept_[j], ref.intercept_, rtol=_tol(dtype))
    # coef_ (formed on access) gives the same predictions as the dual path
    np.testing.assert_allclose(
        X_new @ est.coef_ + est.intercept_, pred, rtol=_tol(dtype), atol=_tol(dtype)
    )


def test_kernel_encoder_equals_grid_search_cv():
    """Per-target alphas and CV scores equal a brute-force GridSearchCV(Ridge) per target."""
    from sklearn.model_selection import GridSearchCV

    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    X, Y = _wide(n=36, p=300, t=4)
    alphas = np.logspace(-2, 4, 7)
    cv = KFold(4, shuffle=True, random_state=0)
    est = VoxelwiseEncoder(alphas=alphas, cv=cv, scoring="r2", dtype="float64").fit(X, Y)
    for j in range(Y.shape[1]):
        gs = GridSearchCV(Ridge(), {"alpha": alphas}, cv=cv, scoring="r2").fit(X, Y[:, j])
        np.testing.assert_allclose(
            est.cv_scores_[:, j], gs.cv_results_["mean_test_score"], rtol=1e-8, atol=1e-10
        )
        assert est.best_alphas_[j] == gs.best_params_["alpha"]


@pytest.mark.parametrize("scoring", ["r2", "correlation"])
def test_kernel_encoder_equals_himalaya_kernel_ridge_cv(scoring):
    himalaya = pytest.importorskip("himalaya")  # noqa: F841
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.scoring import correlation_score as h_corr
    from himalaya.scoring import r2_score as h_r2

    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    set_backend("numpy")
    X, Y = _wide(n=60, p=2000, t=40, dtype=np.float32)
    # himalaya diagonalises in float32: keep alpha >= 1e-3 * eigenvalues so both are accurate
    alphas = np.logspace(1, 6, 6)
    cv = KFold(5)
    ours = VoxelwiseEncoder(alphas=alphas, cv=cv, scoring=scoring).fit(X, Y)
    score_func = h_r2 if scoring == "r2" else h_corr
    ref = KernelRidgeCV(
        alphas=alphas, cv=cv, fit_intercept=True, solver_params={"score_func": score_func}
    ).fit(X, Y)
    tol = _tol(np.float32, 10)
    np.testing.assert_allclose(ours.cv_scores_.max(axis=0), np.asarray(ref.cv_scores_), atol=tol)
    agree = np.isclose(ours.best_alphas_, np.asarray(ref.best_alphas_), rtol=1e-5)
    # different choices only at ties (float32 noise)
    filled = np.sort(ours.cv_scores_, axis=0)
    assert np.all(agree | (filled[-1] - filled[-2] < tol))
    assert agree.mean() > 0.8
    X_new = _wide(n=5, p=2000, seed=9, dtype=np.float32)[0]
    p_ours, p_ref = ours.predict(X_new), np.asarray(ref.predict(X_new))
    np.testing.assert_allclose(p_ours[:, agree], p_ref[:, agree], rtol=tol, atol=tol)


def test_kernel_encoder_memory_no_feature_sized_arrays():
    """fit and predict never allocate p x p, nor even the (p, t) coef_ (tracemalloc peak)."""
    import tracemalloc

    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    n, p, t = 40, 20000, 400
    X, Y = _wide(n=n, p=p, t=t, dtype=np.float32)
    est = VoxelwiseEncoder(alphas=np.logspace(0, 4, 5), cv=4)
    tracemalloc.start()
    est.fit(X, Y)
    est.predict(X[:5])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    coef_bytes = p * t * 4
    assert peak < 2 * X.nbytes + 4 * Y.nbytes + 2**21, peak
    assert peak < coef_bytes / 4 and peak < p * p * 4 / 100
    assert est.coef_.shape == (p, t)  # still available, formed on access


def test_kernel_encoder_1d_target_and_coef_setter():
    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    X, Y = _wide(t=1)
    est = VoxelwiseEncoder(alphas=[1.0, 100.0], cv=3, dtype="float64").fit(X, Y[:, 0])
    assert est.dual_coef_.shape == (X.shape[0],) and est.coef_.shape == (X.shape[1],)
    ref = Ridge(alpha=est.best_alphas_[0]).fit(X, Y[:, 0])
    np.testing.assert_allclose(est.predict(X[:4]), ref.predict(X[:4]), rtol=1e-9)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-8, atol=1e-12)
    assert isinstance(est.intercept_, float)
    est.coef_ = ref.coef_ * 0  # an explicit coef_ replaces the dual coefficients
    np.testing.assert_allclose(est.predict(X[:4]), est.intercept_, atol=1e-12)


def test_torch_kernel_plan_equals_numpy():
    pytest.importorskip("torch")
    X, Y = _wide(n=30, p=200, t=4)
    folds = list(KFold(3).split(X))
    out = []
    for name in ("numpy", "torch"):
        be = get_backend(name, "cpu")
        plan = ridge.make_plan(X, folds, backend=be, dtype=np.float64)
        assert plan.kind == "kernel"
        y = be.asarray(Y - Y.mean(axis=0))
        scores = ridge.cv_scores(plan, y, be.asarray(ALPHAS), "r2")
        dual = be.to_numpy(ridge.refit_dual(plan, y, be.asarray(ALPHAS[:4])))
        out.append((scores, dual))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-8)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("offset", [1.5, 300.0])  # one symmetric product / centred blocks
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_gram_equals_centred_product(offset, dtype):
    rng = np.random.RandomState(3)
    X = (rng.randn(20, 3000) + offset * rng.rand(3000)).astype(dtype)
    m = X.mean(axis=0)
    xc = X.astype(np.float64) - X.astype(np.float64).mean(axis=0)
    gram, proj = ridge._kernel_gram(get_backend("numpy"), X, m, True)
    scale = np.abs(xc @ xc.T).max()
    np.testing.assert_allclose(gram, xc @ xc.T, atol=_tol(dtype, 10) * scale)
    np.testing.assert_allclose(proj, xc @ m.astype(np.float64), atol=_tol(dtype, 10) * scale)
