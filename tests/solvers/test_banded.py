"""Banded ridge solver against a brute-force per-target search with sklearn Ridge, and himalaya."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold, KFold

from neuroprobe.solvers import banded, ridge
from neuroprobe.solvers.backend import get_backend

ALPHAS = np.array([1e-1, 3.0, 1e2, 3e3])


def _bands(sizes):
    edges = np.cumsum([0, *sizes])
    return [np.arange(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _data(n, sizes, t=6, seed=0):
    """Targets driven by one band, or by a mixture, with noise."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, sum(sizes)) + 1.0
    bands = _bands(sizes)
    Y = np.empty((n, t))
    for j in range(t):
        w = np.zeros(sum(sizes))
        b = j % len(sizes)
        w[bands[b]] = rng.randn(len(bands[b]))
        if j >= len(sizes):  # mixtures of two bands at different strengths
            other = bands[(b + 1) % len(sizes)]
            w[other] = 0.3 * rng.randn(len(other))
        Y[:, j] = X @ w / np.sqrt(len(bands[b])) + (0.5 + 0.3 * j) * rng.randn(n) + 3.0
    return X, Y, bands


def _brute_force(X, Y, bands, folds, candidates, alphas):
    """Per target: mean held-out R2 of sklearn Ridge on the scaled features, then the best."""
    cv = np.zeros((len(candidates), len(alphas), Y.shape[1]))
    for c, gamma in enumerate(candidates):
        Xs = X.copy()
        for b, cols in enumerate(bands):
            Xs[:, cols] *= np.sqrt(gamma[b])
        for a, alpha in enumerate(alphas):
            for tr, te in folds:
                pred = Ridge(alpha=alpha).fit(Xs[tr], Y[tr]).predict(Xs[te])
                cv[c, a] += r2_score(Y[te], pred, multioutput="raw_values") / len(folds)
    flat = cv.reshape(-1, Y.shape[1])
    best = flat.argmax(axis=0)
    best_c, best_a = np.unravel_index(best, cv.shape[:2])
    coef = np.zeros((X.shape[1], Y.shape[1]))
    for j in range(Y.shape[1]):
        gamma = candidates[best_c[j]]
        d = np.concatenate([np.full(len(cols), np.sqrt(gamma[b])) for b, cols in enumerate(bands)])
        ridge = Ridge(alpha=alphas[best_a[j]]).fit(X * d, Y[:, j])
        coef[:, j] = ridge.coef_ * d
    return cv.max(axis=1), best_c, alphas[best_a], coef


@pytest.mark.parametrize("sizes,n", [((4, 6), 80), ((3, 4, 5), 80),  # primal
                                     ((40, 60), 50), ((30, 20, 40), 50)])  # kernel
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_equals_brute_force_search(sizes, n, backend):
    if backend == "torch":
        pytest.importorskip("torch")
    X, Y, bands = _data(n, sizes)
    folds = list(KFold(4).split(X))
    cands = banded.simplex_candidates(len(sizes), 7, random_state=0)
    be = get_backend(backend)
    plan = banded.make_banded_plan(X, bands, folds, backend=be, dtype=np.float64)
    assert plan.kind == ("primal" if sum(sizes) <= n else "kernel")
    res = banded.banded_ridge_cv(plan, Y, cands, ALPHAS, scoring="r2", batch=4)
    cv, best_c, best_a, coef_ref = _brute_force(X, Y, bands, folds, cands, ALPHAS)
    np.testing.assert_allclose(res["cv_scores"], cv, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(res["best_candidate"], best_c)
    np.testing.assert_array_equal(res["best_alpha"], best_a)
    coef, intercept = banded.banded_refit(plan, Y, cands, res["best_candidate"],
                                          res["best_alpha"], batch=3)
    np.testing.assert_allclose(coef, coef_ref, rtol=1e-6, atol=1e-8 * np.abs(coef_ref).max())
    np.testing.assert_allclose(X @ coef + intercept, _ref_predict(X, Y, coef_ref), rtol=1e-6)


def _ref_predict(X, Y, coef):
    return X @ coef + (Y.mean(axis=0) - X.mean(axis=0) @ coef)


@pytest.mark.parametrize("sizes,n", [((4, 6), 80), ((40, 60), 50)])
def test_float32_close_to_float64(sizes, n):
    X, Y, bands = _data(n, sizes)
    folds = list(KFold(3).split(X))
    cands = banded.simplex_candidates(2, 5, random_state=1)
    be = get_backend("numpy")
    out = {}
    for dtype in (np.float32, np.float64):
        plan = banded.make_banded_plan(X, bands, folds, backend=be, dtype=dtype)
        out[dtype] = banded.banded_ridge_cv(plan, Y, cands, ALPHAS)["cv_scores"]
    np.testing.assert_allclose(out[np.float32], out[np.float64], atol=2e-4)


@pytest.mark.parametrize("route", ["direct", "resolvent"])
def test_kernel_routes_equal_brute_force(route):
    X, Y, bands = _data(50, (40, 60))
    folds = list(KFold(4).split(X))
    cands = banded.simplex_candidates(2, 5, random_state=0)
    plan = banded.make_banded_plan(X, bands, folds, backend=get_backend("numpy"),
                                   dtype=np.float64)
    res = banded.banded_ridge_cv(plan, Y, cands, ALPHAS, kernel_route=route, batch=2)
    np.testing.assert_allclose(res["cv_scores"], _brute_force(X, Y, bands, folds, cands,
                                                              ALPHAS)[0], rtol=1e-7, atol=1e-9)


def test_float32_alpha_factorisation_keeps_the_scores():
    """20 alphas over 9 decades: the direct kernel route factorises the alpha weights (k < 20);
    the scores stay those of the brute-force search to float32 accuracy."""
    X, Y, bands = _data(50, (40, 60), t=10)
    folds = list(KFold(4).split(X))
    cands = banded.simplex_candidates(2, 4, random_state=0)
    alphas = np.logspace(-2, 7, 20)
    be = get_backend("numpy")
    plan = banded.make_banded_plan(X, bands, folds, backend=be, dtype=np.float32)
    rp = banded.candidate_plan(plan, cands[2])
    w = _ridge_weights(be, rp.folds[0].eigvals, alphas)
    left, right = ridge.alpha_factors(be, w)
    assert right.shape[0] < 15
    np.testing.assert_allclose(left @ right, w, atol=1e-6 * np.abs(w).max(axis=1)[:, None].max())
    res = banded.banded_ridge_cv(plan, Y, cands, alphas, kernel_route="direct")
    ref = _brute_force(X, Y, bands, folds, cands, alphas)[0]
    np.testing.assert_allclose(res["cv_scores"], ref, atol=2e-5)


def _ridge_weights(be, s, alphas):
    from neuroprobe.solvers import ridge

    return ridge._inverse_weights(be, s, alphas.astype(np.float32))


def test_threads_give_the_same_result():
    X, Y, bands = _data(60, (10, 15), t=12)
    folds = list(KFold(3).split(X))
    cands = banded.simplex_candidates(2, 4, random_state=0)
    plan = banded.make_banded_plan(X, bands, folds, backend=get_backend("numpy"))
    one = banded.banded_ridge_cv(plan, Y, cands, ALPHAS, batch=3)
    two = banded.banded_ridge_cv(plan, Y, cands, ALPHAS, batch=3, n_jobs=2)
    np.testing.assert_array_equal(one["cv_scores"], two["cv_scores"])


def test_primal_and_kernel_paths_agree():
    X, Y, bands = _data(60, (10, 15))
    folds = list(KFold(3).split(X))
    cands = banded.simplex_grid(2, 4)
    be = get_backend("numpy")
    res = {}
    for solver in ("primal", "kernel"):
        plan = banded.make_banded_plan(X, bands, folds, backend=be, dtype=np.float64,
                                       solver=solver)
        r = banded.banded_ridge_cv(plan, Y, cands, ALPHAS)
        coef, _ = banded.banded_refit(plan, Y, cands, r["best_candidate"], r["best_alpha"])
        res[solver] = r["cv_scores"], coef
    np.testing.assert_allclose(res["primal"][0], res["kernel"][0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res["primal"][1], res["kernel"][1], rtol=1e-6, atol=1e-10)


def test_candidates_and_grid():
    c = banded.simplex_candidates(3, 10, random_state=0)
    assert c.shape == (10, 3)
    np.testing.assert_allclose(c.sum(axis=1), 1.0)
    np.testing.assert_array_equal(c[:3], np.eye(3))
    np.testing.assert_allclose(c[3], 1 / 3)
    np.testing.assert_array_equal(c, banded.simplex_candidates(3, 10, random_state=0))
    g = banded.simplex_grid(3, 4)
    assert g.shape == (15, 3)  # (steps + 1)(steps + 2) / 2
    np.testing.assert_allclose(g.sum(axis=1), 1.0)
    assert len({tuple(r) for r in np.round(g * 4).astype(int)}) == 15
    with pytest.raises(ValueError, match="n_candidates"):
        banded.simplex_candidates(3, 3)


def test_gammas_concentrate_on_planted_band():
    rng = np.random.RandomState(3)
    n, sizes = 240, (20, 30)
    X = rng.randn(n, sum(sizes))
    bands = _bands(sizes)
    t = 40
    w = np.zeros((sum(sizes), t))
    truth = np.arange(t) % 2
    for j in range(t):
        w[bands[truth[j]], j] = rng.randn(sizes[truth[j]])
    Y = X @ w + 2.0 * rng.randn(n, t)
    runs = np.repeat(np.arange(4), n // 4)
    folds = list(GroupKFold(4).split(X, groups=runs))
    plan = banded.make_banded_plan(X, bands, folds, backend=get_backend("numpy"))
    cands = banded.simplex_grid(2, 10)
    res = banded.banded_ridge_cv(plan, Y, cands, np.logspace(-1, 4, 11))
    gammas = cands[res["best_candidate"]]
    planted = gammas[np.arange(t), truth]
    assert np.all(planted >= 0.8), planted


def test_split_r2_sums_to_total_and_equals_himalaya():
    himalaya_scoring = pytest.importorskip("himalaya.scoring")
    rng = np.random.RandomState(0)
    preds = rng.randn(3, 50, 7)
    y = preds.sum(axis=0) + rng.randn(50, 7)
    y = y - y.mean(axis=0)
    split = banded.split_r2(y, preds)
    np.testing.assert_allclose(split.sum(axis=0), r2_score(y, preds.sum(0),
                                                           multioutput="raw_values"))
    ref = himalaya_scoring.r2_score_split(y, preds)
    np.testing.assert_allclose(split, np.asarray(ref), rtol=1e-10)
    # an offset (intercept minus the held-out mean) is shared, the sum stays the joint R2
    y2 = y + 1.0
    split2 = banded.split_r2(y2, preds, offset=np.full(7, 0.5 - 1.0))
    np.testing.assert_allclose(split2.sum(axis=0),
                               r2_score(y2, preds.sum(0) + 0.5, multioutput="raw_values"))


def _himalaya_kernel_search(X, Y, bands, folds, cands, alphas):
    backend = pytest.importorskip("himalaya.backend")
    backend.set_backend("numpy", on_error="raise")
    from himalaya.kernel_ridge import solve_multiple_kernel_ridge_random_search
    from himalaya.scoring import r2_score as h_r2

    Xc = X - X.mean(axis=0)
    Ks = np.stack([Xc[:, b] @ Xc[:, b].T for b in bands])
    Yc = Y - Y.mean(axis=0)
    out = solve_multiple_kernel_ridge_random_search(
        Ks, Yc, n_iter=cands, alphas=alphas, score_func=h_r2, cv=folds, fit_intercept=False,
        return_weights="dual", Xs=None, progress_bar=False, return_alphas=True)
    return out


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # himalaya: log(0) corners
def test_kernel_search_equals_himalaya():
    pytest.importorskip("himalaya")
    X, Y, bands = _data(48, (30, 40), t=8, seed=2)
    folds = list(KFold(4).split(X))
    cands = banded.simplex_candidates(2, 6, random_state=0)
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    plan = banded.make_banded_plan(Xc, bands, folds, backend=get_backend("numpy"),
                                   dtype=np.float64, fit_intercept=False)
    res = banded.banded_ridge_cv(plan, Yc, cands, ALPHAS)
    deltas, dual, cv_scores, best_alphas = _himalaya_kernel_search(Xc, Yc, bands, folds, cands,
                                                                   ALPHAS)
    np.testing.assert_allclose(res["cv_scores"], np.asarray(cv_scores), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res["best_alpha"], np.asarray(best_alphas), rtol=1e-12)
    gammas = np.exp(np.asarray(deltas)) * np.asarray(best_alphas)[None]
    np.testing.assert_allclose(cands[res["best_candidate"]].T, gammas, rtol=1e-6)
    coef, _ = banded.banded_refit(plan, Yc, cands, res["best_candidate"], res["best_alpha"])
    # himalaya's dual weights are for the kernel sum exp(deltas_b) K_b
    pred_ref = np.einsum("bnm,bt,mt->nt",
                         np.stack([Xc[:, b] @ Xc[:, b].T for b in bands]),
                         np.exp(np.asarray(deltas)), np.asarray(dual))
    np.testing.assert_allclose(Xc @ coef, pred_ref, rtol=1e-6, atol=1e-8)


def test_bands_must_cover_columns():
    X = np.zeros((10, 5))
    with pytest.raises(ValueError, match="unassigned"):
        banded.make_banded_plan(X, [np.arange(2), np.arange(2, 4)], backend=get_backend("numpy"))


def _exact_kernel_scores(X, Y, bands, folds, cands, alphas):
    """(n_candidates, n_alphas, t) mean held-out R2 of every (candidate, alpha): float64
    kernel ridge with the training-fold means, no factorisation (closed form per alpha)."""
    out = np.zeros((len(cands), len(alphas), Y.shape[1]))
    for c, gamma in enumerate(cands):
        d = np.concatenate([np.full(len(b), np.sqrt(gamma[i])) for i, b in enumerate(bands)])
        Xs = X * d
        for tr, te in folds:
            xm, ym = Xs[tr].mean(axis=0), Y[tr].mean(axis=0)
            k_tr = (Xs[tr] - xm) @ (Xs[tr] - xm).T
            k_te = (Xs[te] - xm) @ (Xs[tr] - xm).T
            for a, alpha in enumerate(alphas):
                dual = np.linalg.solve(k_tr + alpha * np.eye(len(tr)), Y[tr] - ym)
                pred = k_te @ dual + ym
                out[c, a] += r2_score(Y[te], pred, multioutput="raw_values") / len(folds)
    return out


@pytest.mark.parametrize("factor_rtol,score_atol", [(None, 2e-5), (1e-3, 5e-4), (1e-2, 5e-3)])
def test_alpha_factor_tolerance_keeps_the_selection(factor_rtol, score_atol):
    """float32 kernel folds scored through k < n_alphas alpha factors (the Gram route): every
    score stays within ~factor_rtol of the exact float64 per-alpha scores, and the selected
    (candidate, alpha) of each target scores within that of the exact best."""
    X, Y, bands = _data(64, (50, 70), t=12, seed=4)
    folds = list(KFold(4).split(X))
    cands = banded.simplex_candidates(2, 5, random_state=0)
    alphas = np.logspace(-2, 7, 20)
    plan = banded.make_banded_plan(X, bands, folds, backend=get_backend("numpy"),
                                   dtype=np.float32)
    res = banded.banded_ridge_cv(plan, Y, cands, alphas, factor_rtol=factor_rtol)
    exact = _exact_kernel_scores(X, Y, bands, folds, cands, alphas)
    ks = [f.op_mean.shape[0] for f in banded._kernel_folds(plan, cands[2], alphas, False,
                                                            factor_rtol or 1e-4)]
    assert max(ks) < 15
    np.testing.assert_allclose(res["cv_scores"], exact.max(axis=1), atol=score_atol)
    a_idx = np.searchsorted(alphas, res["best_alpha"])
    np.testing.assert_allclose(alphas[a_idx], res["best_alpha"])
    chosen = exact[res["best_candidate"], a_idx, np.arange(Y.shape[1])]
    best = exact.reshape(-1, Y.shape[1]).max(axis=0)
    assert np.all(chosen >= best - score_atol), best - chosen


@pytest.mark.parametrize("scoring", ["r2", "correlation", "explained_variance"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_kernel_gram_scores_equal_explicit_predictions(scoring, fit_intercept):
    """The closed-form scores of the factor Gram route equal score_predictions on every
    alpha's explicit held-out predictions (float64, both routes, with and without intercept)."""
    from neuroprobe.solvers.scoring import score_predictions

    X, Y, bands = _data(48, (30, 40), t=40, seed=5)
    folds = list(KFold(3).split(X))
    alphas = np.logspace(-1, 6, 12)
    be = get_backend("numpy")
    plan = banded.make_banded_plan(X, bands, folds, backend=be, dtype=np.float64,
                                   fit_intercept=fit_intercept)
    Yc = Y - Y.mean(axis=0) if fit_intercept else Y
    gamma = np.array([0.3, 0.7])
    rp = banded.candidate_plan(plan, gamma)
    ref = []
    for fold in rp.folds:
        y_tr = Yc[fold.train]
        my = y_tr.mean(axis=0) if fit_intercept else 0.0
        z = fold.eigvecs.T @ (y_tr - my)
        w = ridge._inverse_weights(be, fold.eigvals, alphas)
        pred = ridge._project(fold.proj_test, w, z) + my
        ref.append(score_predictions(Yc[fold.test], pred, scoring))
    ref = np.mean(ref, axis=0)
    for direct in (True, False):
        got = banded._kernel_gram_scores(be, banded._kernel_folds(plan, gamma, alphas, direct),
                                         Yc, scoring, chunk_bytes=2000)
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-11)
