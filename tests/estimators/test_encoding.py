"""VoxelwiseEncoder and PLSEncoder against scikit-learn references."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import Lasso, Ridge, RidgeCV
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroprobe.estimators.encoding import PLSEncoder, VoxelwiseEncoder
from neuroprobe.metrics import correlation_score

ALPHAS = np.logspace(-2, 4, 7)


def _data(n=60, p=8, t=6, seed=0, noise=3.0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p) + 1.0
    W = rng.randn(p, t)
    Y = X @ W + noise * rng.randn(n, t) + 10.0
    return X.astype(dtype), Y.astype(dtype), W


@parametrize_with_checks(
    [
        # defaults (float32 coefficients: predictions are float64 for float64 X, computed in
        # float64, so check_regressor_multioutput and the 1e-7 sample-order check hold)
        VoxelwiseEncoder(),
        PLSEncoder(),
        # the parametrisations the tests use
        VoxelwiseEncoder(alphas=[0.1, 1.0, 10.0], dtype="float64"),
        VoxelwiseEncoder(penalty=None, dtype="float64"),
        VoxelwiseEncoder(penalty=None),
        VoxelwiseEncoder(penalty="l1"),
        VoxelwiseEncoder(cv=None),
        VoxelwiseEncoder(alphas=ALPHAS, cv=3, scoring="r2", alpha_per_target=False),
        PLSEncoder(n_components=1),
        PLSEncoder(n_components=1, dtype="float32", scale=False),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("make", [lambda: VoxelwiseEncoder(alphas=ALPHAS), PLSEncoder])
def test_predict_dtype_follows_input(make):
    """float64 X: float64 predictions, equal to the float64 product of the (float32) model."""
    X, Y, _ = _data(t=5)
    enc = make().set_params(dtype="float32").fit(X, Y)
    assert enc.coef_.dtype == np.float32
    pred64 = enc.predict(X)
    assert pred64.dtype == np.float64
    ref = X @ enc.coef_.astype(np.float64) + enc.intercept_.astype(np.float64)
    np.testing.assert_allclose(pred64, ref, rtol=1e-12, atol=1e-12)
    pred32 = enc.predict(X.astype(np.float32))
    assert pred32.dtype == np.float32
    np.testing.assert_allclose(pred32, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    one = make().set_params(dtype="float32").fit(X, Y[:, 0])  # 1-D y: 1-D float64 predictions
    assert one.predict(X).shape == (X.shape[0],) and one.predict(X).dtype == np.float64
    np.testing.assert_allclose(one.predict(X), X @ one.coef_.astype(np.float64) + one.intercept_,
                               rtol=1e-12)


def test_Y_keyword_deprecated_but_working():
    from neuroprobe.estimators.permutation import PermutationTest
    from neuroprobe.model_selection import cross_val_score_targets

    X, Y, _ = _data(t=4)
    ref = VoxelwiseEncoder(alphas=ALPHAS).fit(X, y=Y)
    with pytest.warns(FutureWarning, match="Y= is deprecated"):
        old = VoxelwiseEncoder(alphas=ALPHAS).fit(X, Y=Y)
    np.testing.assert_array_equal(old.coef_, ref.coef_)
    with pytest.warns(FutureWarning, match="Y= is deprecated"):
        np.testing.assert_array_equal(old.score_targets(X, Y=Y), ref.score_targets(X, y=Y))
    with pytest.warns(FutureWarning, match="Y= is deprecated"):
        assert old.score(X, Y=Y) == ref.score(X, y=Y)
    with pytest.warns(FutureWarning, match="Y= is deprecated"):
        pls = PLSEncoder().fit(X, Y=Y)
    np.testing.assert_array_equal(pls.coef_, PLSEncoder().fit(X, y=Y).coef_)
    with pytest.warns(FutureWarning, match="Y= is deprecated"):
        cvs = cross_val_score_targets(VoxelwiseEncoder(alphas=ALPHAS), X, Y=Y, cv=3)
    np.testing.assert_array_equal(cvs, cross_val_score_targets(VoxelwiseEncoder(alphas=ALPHAS),
                                                               X, y=Y, cv=3))
    test = PermutationTest(VoxelwiseEncoder(alphas=ALPHAS), n_permutations=9, random_state=0)
    with pytest.warns(FutureWarning, match="Y= is deprecated"):
        a = clone(test).fit(X, Y=Y)
    np.testing.assert_array_equal(a.null_distribution_, clone(test).fit(X, y=Y).null_distribution_)
    with pytest.raises(TypeError, match="both y and Y"):
        VoxelwiseEncoder().fit(X, Y, Y=Y)


@pytest.mark.parametrize("p", [8, 90])  # primal (eigh of X^T X) and kernel (eigh of X X^T)
def test_coef_equal_sklearn_ridge_at_chosen_alpha(p):
    X, Y, _ = _data(p=p)
    enc = VoxelwiseEncoder(alphas=ALPHAS, dtype="float64").fit(X, Y)
    assert enc.coef_.shape == (p, Y.shape[1]) and enc.cv_scores_.shape == (len(ALPHAS), Y.shape[1])
    for j in range(Y.shape[1]):
        ref = Ridge(alpha=enc.best_alphas_[j]).fit(X, Y[:, j])
        np.testing.assert_allclose(enc.coef_[:, j], ref.coef_, atol=1e-8)
        np.testing.assert_allclose(enc.intercept_[j], ref.intercept_, atol=1e-8)
    np.testing.assert_allclose(enc.predict(X), X @ enc.coef_ + enc.intercept_)


def _pearson(y, pred):
    return correlation_score(y, pred)


@pytest.mark.parametrize("scoring", ["r2", "correlation"])
@pytest.mark.parametrize("p", [8, 90])
def test_alphas_equal_grid_search(scoring, p):
    X, Y, _ = _data(p=p, t=4, noise=6.0)
    enc = VoxelwiseEncoder(alphas=ALPHAS, cv=KFold(5), scoring=scoring, dtype="float64").fit(X, Y)
    sk_scoring = "r2" if scoring == "r2" else make_scorer(_pearson)
    for j in range(Y.shape[1]):
        gs = GridSearchCV(Ridge(), {"alpha": ALPHAS}, cv=KFold(5), scoring=sk_scoring).fit(
            X, Y[:, j]
        )
        np.testing.assert_allclose(
            enc.cv_scores_[:, j], gs.cv_results_["mean_test_score"], atol=1e-8
        )
        assert enc.best_alphas_[j] == gs.best_params_["alpha"]


def test_grouped_cv_equals_grid_search_with_groups():
    X, Y, _ = _data(n=48, t=3, noise=6.0)
    groups = np.repeat(np.arange(6), 8)
    enc = VoxelwiseEncoder(alphas=ALPHAS, cv=3, scoring="r2", dtype="float64").fit(
        X, Y, groups=groups
    )
    for j in range(Y.shape[1]):
        gs = GridSearchCV(Ridge(), {"alpha": ALPHAS}, cv=GroupKFold(3), scoring="r2")
        gs.fit(X, Y[:, j], groups=groups)
        np.testing.assert_allclose(
            enc.cv_scores_[:, j], gs.cv_results_["mean_test_score"], atol=1e-8
        )


@pytest.mark.parametrize("p", [8, 90])
def test_cv_none_equals_sklearn_ridgecv_alpha_per_target(p):
    X, Y, _ = _data(p=p, noise=6.0)
    enc = VoxelwiseEncoder(alphas=ALPHAS, cv=None, scoring="r2", dtype="float64").fit(X, Y)
    ref = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(X, Y)
    np.testing.assert_array_equal(enc.best_alphas_, ref.alpha_)
    np.testing.assert_allclose(enc.coef_, ref.coef_.T, atol=1e-8)
    np.testing.assert_allclose(enc.intercept_, ref.intercept_, atol=1e-8)


def test_ols_equals_lstsq():
    X, Y, _ = _data(n=40, p=7)
    enc = VoxelwiseEncoder(penalty=None, dtype="float64").fit(X, Y)
    sol = np.linalg.lstsq(np.c_[X, np.ones(len(X))], Y, rcond=None)[0]
    np.testing.assert_allclose(enc.coef_, sol[:-1], atol=1e-9)
    np.testing.assert_allclose(enc.intercept_, sol[-1], atol=1e-9)
    # underdetermined, no intercept: the minimum-norm solution
    X, Y, _ = _data(n=20, p=30)
    enc = VoxelwiseEncoder(penalty=None, fit_intercept=False, dtype="float64").fit(X, Y)
    np.testing.assert_allclose(enc.coef_, np.linalg.lstsq(X, Y, rcond=None)[0], atol=1e-9)


def test_lasso_equals_sklearn_lasso_and_brute_force_cv():
    X, Y, _ = _data(n=50, p=5, t=2, noise=4.0)
    alphas = np.array([0.01, 0.3, 3.0])
    enc = VoxelwiseEncoder(
        penalty="l1", alphas=alphas, cv=KFold(3), scoring="r2", dtype="float64"
    ).fit(X, Y)
    for j in range(Y.shape[1]):
        gs = GridSearchCV(Lasso(tol=1e-4), {"alpha": alphas}, cv=KFold(3), scoring="r2")
        gs.fit(X, Y[:, j])
        np.testing.assert_allclose(
            enc.cv_scores_[:, j], gs.cv_results_["mean_test_score"], atol=1e-4
        )
        assert enc.best_alphas_[j] == gs.best_params_["alpha"]
        ref = Lasso(alpha=enc.best_alphas_[j], tol=1e-4).fit(X, Y[:, j])
        np.testing.assert_allclose(enc.coef_[:, j], ref.coef_, atol=1e-6)


@pytest.mark.parametrize("cv", [5, None])
def test_target_batching_and_n_jobs_do_not_change_results(cv):
    X, Y, _ = _data(p=8, t=11, dtype=np.float32)
    ref = VoxelwiseEncoder(alphas=ALPHAS, cv=cv).fit(X, Y)
    for kw in ({"n_targets_batch": 3}, {"n_targets_batch": 4, "n_jobs": 2}):
        with joblib.parallel_config(backend="threading"):  # processes: same code, slower start
            enc = VoxelwiseEncoder(alphas=ALPHAS, cv=cv, **kw).fit(X, Y)
        np.testing.assert_allclose(enc.coef_, ref.coef_, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(enc.best_alphas_, ref.best_alphas_)
        np.testing.assert_allclose(enc.cv_scores_, ref.cv_scores_, atol=1e-6)


@pytest.mark.parametrize("p", [20, 300])
def test_planted_truth_recovered_float32(p):
    rng = np.random.RandomState(1)
    n, t = 200, 30
    X = rng.randn(n, p).astype(np.float32)
    W = rng.randn(p, t).astype(np.float32)
    signal = X @ W
    Y = signal + 0.3 * signal.std() * rng.randn(n, t).astype(np.float32)
    enc = VoxelwiseEncoder().fit(X, Y)
    assert enc.coef_.dtype == np.float32
    Xn = rng.randn(100, p).astype(np.float32)
    Yn = Xn @ W
    scores = enc.score_targets(Xn, Yn)
    if p < n:  # well determined: weights recovered
        assert np.corrcoef(enc.coef_.ravel(), W.ravel())[0, 1] > 0.99
        assert scores.min() > 0.95
    else:  # underdetermined: still predictive
        assert scores.mean() > 0.5


def test_float32_close_to_float64_and_y_never_cast_whole():
    X, Y, _ = _data(p=8, t=5)
    e64 = VoxelwiseEncoder(alphas=ALPHAS, dtype="float64").fit(X, Y)
    e32 = VoxelwiseEncoder(alphas=ALPHAS, dtype="float32").fit(
        X.astype(np.float32), Y.astype(np.float32)
    )
    assert e32.coef_.dtype == np.float32 and e64.coef_.dtype == np.float64
    np.testing.assert_allclose(e32.cv_scores_, e64.cv_scores_, atol=1e-4)
    np.testing.assert_allclose(e32.coef_, e64.coef_, rtol=1e-3, atol=1e-3)
    # integer targets are cast per batch
    Yi = np.round(Y).astype(np.int64)
    ei = VoxelwiseEncoder(alphas=ALPHAS, dtype="float64").fit(X, Yi)
    ef = VoxelwiseEncoder(alphas=ALPHAS, dtype="float64").fit(X, Yi.astype(float))
    np.testing.assert_allclose(ei.coef_, ef.coef_)


@pytest.mark.parametrize("cv", [4, None])
@pytest.mark.parametrize("p", [8, 90])
def test_torch_cpu_backend_equals_numpy(cv, p):
    pytest.importorskip("torch")
    X, Y, _ = _data(p=p, t=5, dtype=np.float32)
    a = VoxelwiseEncoder(alphas=ALPHAS, cv=cv).fit(X, Y)
    b = VoxelwiseEncoder(alphas=ALPHAS, cv=cv, backend="torch", device="cpu").fit(X, Y)
    np.testing.assert_allclose(b.cv_scores_, a.cv_scores_, atol=2e-4)
    # alphas may differ only where two alphas tie within float32 precision
    same = b.best_alphas_ == a.best_alphas_
    np.testing.assert_allclose(b.coef_[:, same], a.coef_[:, same], rtol=1e-3, atol=1e-4)
    b64 = VoxelwiseEncoder(alphas=ALPHAS, cv=cv, backend="torch", dtype="float64").fit(X, Y)
    a64 = VoxelwiseEncoder(alphas=ALPHAS, cv=cv, dtype="float64").fit(X, Y)
    np.testing.assert_array_equal(b64.best_alphas_, a64.best_alphas_)
    np.testing.assert_allclose(b64.coef_, a64.coef_, atol=1e-9)


def test_hdf5_targets_equal_in_memory(tmp_path):
    h5py = pytest.importorskip("h5py")
    X, Y, _ = _data(p=8, t=9, dtype=np.float32)
    with h5py.File(tmp_path / "y.h5", "w") as fh:
        ds = fh.create_dataset("Y", data=Y, chunks=(Y.shape[0], 2))
        enc_h5 = VoxelwiseEncoder(alphas=ALPHAS, n_targets_batch=4).fit(X, ds)
        scores_h5 = enc_h5.score_targets(X, ds)
        pls_h5 = PLSEncoder(n_components=2, n_targets_batch=4).fit(X, ds)
    enc = VoxelwiseEncoder(alphas=ALPHAS).fit(X, Y)
    np.testing.assert_allclose(enc_h5.coef_, enc.coef_, atol=1e-6)
    np.testing.assert_allclose(scores_h5, enc.score_targets(X, Y), atol=1e-6)
    np.testing.assert_allclose(pls_h5.coef_, PLSEncoder(n_components=2).fit(X, Y).coef_, atol=1e-5)


def test_one_d_targets():
    X, Y, _ = _data(t=1)
    enc = VoxelwiseEncoder(alphas=ALPHAS, dtype="float64").fit(X, Y[:, 0])
    assert enc.coef_.shape == (X.shape[1],) and enc.predict(X).shape == (X.shape[0],)
    ref = Ridge(alpha=enc.best_alphas_[0]).fit(X, Y[:, 0])
    np.testing.assert_allclose(enc.predict(X), ref.predict(X), atol=1e-8)
    assert isinstance(enc.score(X, Y[:, 0]), float)


def test_score_is_mean_of_score_targets():
    X, Y, _ = _data(t=5)
    enc = VoxelwiseEncoder(alphas=ALPHAS, scoring="r2", dtype="float64").fit(X[:40], Y[:40])
    per = enc.score_targets(X[40:], Y[40:])
    from sklearn.metrics import r2_score

    np.testing.assert_allclose(per, r2_score(Y[40:], enc.predict(X[40:]), multioutput="raw_values"))
    assert enc.score(X[40:], Y[40:]) == pytest.approx(per.mean())


def test_zero_variance_targets_nan_and_one_warning():
    X, Y, _ = _data(t=6)
    Y[:, [1, 4]] = 3.0
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        enc = VoxelwiseEncoder(alphas=ALPHAS, n_targets_batch=2).fit(X, Y)
    msgs = [str(w.message) for w in rec if "zero variance" in str(w.message)]
    assert msgs == [
        "2 of 6 target(s) have zero variance in the fitted samples; their scores there are NaN "
        "(undefined)."
    ]
    assert np.isnan(enc.cv_scores_[:, [1, 4]]).all() and not np.isnan(enc.cv_scores_[:, 0]).any()
    np.testing.assert_allclose(enc.coef_[:, [1, 4]], 0, atol=1e-6)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        scores = enc.score_targets(X, Y)
    # the constant targets are NaN (undefined), not blamed on constant predictions (their
    # coefficients are 0 too): one warning, with the right cause
    assert [str(w.message) for w in rec] == [
        "2 of 6 target(s) have zero variance in the scored samples; their scores there are NaN "
        "(undefined)."
    ]
    assert np.isnan(scores[[1, 4]]).all() and not np.isnan(scores[[0, 2, 3, 5]]).any()


def test_constant_predictions_score_zero_with_their_own_warning():
    from neuroprobe.metrics import ZeroVarianceWarning

    X, Y, _ = _data(t=6)
    enc = VoxelwiseEncoder(alphas=ALPHAS, dtype="float64").fit(X, Y)
    enc.coef_[:, [0, 3]] = 0.0  # these two predict a constant
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        scores = enc.score_targets(X, Y)
    assert len(rec) == 1 and issubclass(rec[0].category, ZeroVarianceWarning)
    assert str(rec[0].message).startswith(
        "predictions are constant for 2 of 6 target(s) in the scored samples (alpha = "
    )
    assert rec[0].message.kind == "predictions"
    np.testing.assert_array_equal(rec[0].message.mask, [1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(scores[[0, 3]], 0.0)
    from himalaya.scoring import correlation_score as himalaya_r

    np.testing.assert_allclose(scores, himalaya_r(Y, enc.predict(X)), atol=1e-10)


def test_non_finite_inputs_raise_with_count_and_location():
    X, Y, _ = _data(t=6)
    Y[3, 4] = np.nan
    Y[7, 5] = np.inf
    with pytest.raises(ValueError, match=r"y contains 2 NaN or infinite.*\(3, 4\)"):
        VoxelwiseEncoder(n_targets_batch=2).fit(X, Y)
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 NaN.*\(2, 1\)"):
        VoxelwiseEncoder().fit(X, Y)


def test_alpha_per_target_false_uses_one_alpha():
    X, Y, _ = _data(t=5)
    enc = VoxelwiseEncoder(alphas=ALPHAS, alpha_per_target=False, dtype="float64").fit(X, Y)
    best = ALPHAS[np.argmax(np.nanmean(enc.cv_scores_, axis=1))]
    assert np.all(enc.best_alphas_ == best)
    np.testing.assert_allclose(enc.coef_, Ridge(alpha=best).fit(X, Y).coef_.T, atol=1e-8)


def test_pickle_and_clone():
    X, Y, _ = _data()
    enc = VoxelwiseEncoder(alphas=ALPHAS).fit(X, Y)
    again = pickle.loads(pickle.dumps(enc))
    np.testing.assert_array_equal(again.predict(X), enc.predict(X))
    fresh = clone(enc)
    assert not hasattr(fresh, "coef_")
    np.testing.assert_array_equal(fresh.alphas, enc.alphas)
    pls = PLSEncoder(n_components=2).fit(X, Y)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(pls)).predict(X), pls.predict(X))


def test_bad_parameters_raise():
    X, Y, _ = _data()
    with pytest.raises(ValueError, match="The 'penalty' parameter of VoxelwiseEncoder must be"):
        VoxelwiseEncoder(penalty="svm").fit(X, Y)
    with pytest.raises(ValueError, match="The 'model' parameter of VoxelwiseEncoder must be"):
        VoxelwiseEncoder(model="svm").fit(X, Y)
    with pytest.raises(ValueError, match="The 'scoring' parameter of VoxelwiseEncoder must be"):
        VoxelwiseEncoder(scoring="mse").fit(X, Y)
    with pytest.raises(ValueError, match="The 'n_targets_batch' parameter"):
        VoxelwiseEncoder(n_targets_batch=0).fit(X, Y)
    with pytest.raises(ValueError, match="The 'dtype' parameter"):
        VoxelwiseEncoder(dtype="float16").fit(X, Y)
    with pytest.raises(ValueError, match="The 'alphas' parameter of VoxelwiseEncoder"):
        VoxelwiseEncoder(alphas=[1.0, -1.0]).fit(X, Y)
    with pytest.raises(ValueError, match="The 'alphas' parameter of VoxelwiseEncoder"):
        VoxelwiseEncoder(alphas=[]).fit(X, Y)
    with pytest.raises(ValueError, match="The 'n_components' parameter of PLSEncoder must be"):
        PLSEncoder(n_components=0).fit(X, Y)
    with pytest.raises(ValueError, match=r"n_components must be an int in \[1, "):
        PLSEncoder(n_components=10**6).fit(X, Y)
    with pytest.raises(ValueError, match="The 'scoring' parameter of PLSEncoder must be"):
        PLSEncoder(scoring="mse").fit(X, Y)
    with pytest.raises(ValueError, match="needs k-fold cv"):
        VoxelwiseEncoder(penalty="l1", cv=None).fit(X, Y)
    with pytest.raises(ValueError, match="pass penalty= only"), pytest.warns(FutureWarning):
        VoxelwiseEncoder(penalty="l1", model="ridge").fit(X, Y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        VoxelwiseEncoder().fit(X, Y[:-1])
    with pytest.raises(ValueError, match="groups were given but cv=None"):
        VoxelwiseEncoder(cv=None).fit(X, Y, groups=np.arange(len(X)) % 3)


@pytest.mark.parametrize("cv", [KFold(4), None])
def test_permutation_scores_match_refits(cv):
    X, Y, _ = _data(n=40, t=3, noise=5.0)
    enc = VoxelwiseEncoder(alphas=ALPHAS, cv=cv, scoring="r2", dtype="float64")
    rng = np.random.RandomState(0)
    perms = np.stack([rng.permutation(len(X)) for _ in range(3)])
    observed, null = enc._permutation_scores(X, Y, perms)
    assert null.shape == (3, 3)
    np.testing.assert_allclose(observed, clone(enc).fit(X, Y).cv_scores_.max(axis=0), atol=1e-10)
    for k, perm in enumerate(perms):
        ref = clone(enc).fit(X, Y[perm]).cv_scores_.max(axis=0)
        np.testing.assert_allclose(null[k], ref, atol=1e-10)
    assert not hasattr(VoxelwiseEncoder(penalty="l1"), "_permutation_scores")


@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("shape", [(50, 8, 6), (30, 40, 4), (40, 6, 1)])
def test_pls_equals_sklearn(scale, shape):
    n, p, t = shape
    X, Y, _ = _data(n=n, p=p, t=t)
    y = Y[:, 0] if t == 1 else Y
    ours = PLSEncoder(n_components=3, scale=scale).fit(X, y)
    ref = PLSRegression(n_components=3, scale=scale).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_.T.reshape(ours.coef_.shape), atol=1e-10)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-9)
    np.testing.assert_allclose(np.abs(ours.x_weights_), np.abs(ref.x_weights_), atol=1e-10)
    np.testing.assert_allclose(ours.x_loadings_, ref.x_loadings_, atol=1e-10)
    assert ours.n_iter_ == ref.n_iter_


def test_pls_torch_backend_equals_numpy():
    pytest.importorskip("torch")
    X, Y, _ = _data(p=10, t=7)
    a = PLSEncoder(n_components=3).fit(X, Y)
    b = PLSEncoder(n_components=3, backend="torch").fit(X, Y)
    np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-10)


@pytest.mark.parametrize("model, penalty", [("ridge", "l2"), ("ols", None), ("lasso", "l1")])
def test_model_is_deprecated_for_penalty(model, penalty):
    X, Y, _ = _data(n=40, t=3)
    kw = dict(alphas=[0.01, 0.1, 1.0], cv=KFold(3), dtype="float64")
    new = VoxelwiseEncoder(penalty=penalty, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        new.fit(X, Y)  # penalty=: no warning
    old = VoxelwiseEncoder(model=model, **kw)
    with pytest.warns(FutureWarning, match=f"use penalty={penalty!r} instead of model={model!r}"):
        old.fit(X, Y)
    np.testing.assert_array_equal(old.coef_, new.coef_)
    np.testing.assert_array_equal(old.best_alphas_, new.best_alphas_)
    assert hasattr(old, "_permutation_scores") == (penalty != "l1")
    assert "model" in VoxelwiseEncoder().get_params()
    assert VoxelwiseEncoder().get_params()["penalty"] == "l2"


def test_solver_table_drives_the_encoder():
    from neuroprobe.estimators.encoding import _SOLVERS
    from neuroprobe.estimators.encoding import VoxelwiseEncoder as V

    assert set(_SOLVERS) == {"l2", None, "l1"}
    for key, row in _SOLVERS.items():
        assert hasattr(V, row.fit)
        assert hasattr(V(penalty=key), "_permutation_scores") == row.permutation
    np.testing.assert_array_equal(V(penalty=None)._alpha_grid(), [0.0])
    np.testing.assert_array_equal(V(penalty="l1")._alpha_grid(), _SOLVERS["l1"].default_alphas)


def test_explained_variance_scoring_matches_sklearn():
    from sklearn.metrics import explained_variance_score

    X, Y, _ = _data(n=60, t=4)
    for cv in (KFold(3), None):
        enc = VoxelwiseEncoder(alphas=[0.1, 10.0], cv=cv, scoring="explained_variance",
                               dtype="float64").fit(X[:40], Y[:40])
        ref = explained_variance_score(Y[40:], enc.predict(X[40:]), multioutput="raw_values")
        np.testing.assert_allclose(enc.score_targets(X[40:], Y[40:]), ref, atol=1e-10)
    # CV scores of explained variance (moments path) equal brute-force refits
    enc = VoxelwiseEncoder(alphas=[0.1, 10.0], cv=KFold(3), scoring="explained_variance",
                           dtype="float64").fit(X, Y)
    for a, alpha in enumerate([0.1, 10.0]):
        ref = np.mean([explained_variance_score(
            Y[te], Ridge(alpha=alpha).fit(X[tr], Y[tr]).predict(X[te]), multioutput="raw_values")
            for tr, te in KFold(3).split(X)], axis=0)
        np.testing.assert_allclose(enc.cv_scores_[a], ref, atol=1e-8)


@pytest.mark.parametrize("model, penalty, expected", [
    ("ridge", None, "l2"), ("ols", None, None), ("lasso", None, "l1"),
    ("ridge", "l1", "l1"), ("ridge", "none", None), ("ols", "l2", "l2"),
])
def test_cli_model_and_penalty_flags(model, penalty, expected):
    """``neuroprobe encode --model`` keeps working; ``--penalty`` sets penalty= (no warning)."""
    from argparse import Namespace

    from neuroprobe.cli.encoding import _encoder

    args = Namespace(model=model, penalty=penalty, alphas=None, backend=None, inner_cv=5,
                     scoring="r2", device="cpu", n_components=2)
    enc = _encoder(args)
    assert enc.penalty == expected and enc.model == "deprecated"
