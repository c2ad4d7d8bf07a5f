"""Lasso per target on arrays: alphas chosen by k-fold CV (one ``lasso_path`` per fold), refit.

Pure arrays in, arrays out (no estimator objects). The only scikit-learn import is the function
:func:`sklearn.linear_model.lasso_path` (coordinate descent, the solver behind
``sklearn.linear_model.Lasso``): the refit at the chosen alpha is ``lasso_path`` on centred data
with ``precompute=False``, which is what ``Lasso(fit_intercept=True).fit`` runs.
"""

from __future__ import annotations

import numpy as np

from neuroprobe.solvers.ridge import best_alpha_index, nanmean0
from neuroprobe.solvers.scoring import score_predictions

__all__ = ["DEFAULT_ALPHAS", "cv_batch", "fold_scores", "refit"]

DEFAULT_ALPHAS = np.logspace(-3, 1, 9)  # sklearn ``Lasso``'s alpha scale


def _centre(a, fit_intercept):
    mean = a.mean(axis=0) if fit_intercept else np.zeros(a.shape[1:])
    return a - mean, mean


def fold_scores(X, y, train, test, alphas, scoring, fit_intercept, max_iter, tol):
    """Held-out scores (n_alphas, n_targets) of one fold, one ``lasso_path`` per target."""
    from sklearn.linear_model import lasso_path

    order = np.argsort(alphas)[::-1]  # lasso_path wants decreasing alphas
    xtr, xm = _centre(X[train], fit_intercept)
    xte = X[test] - xm
    out = np.empty((len(alphas), y.shape[1]))
    for j in range(y.shape[1]):
        ym = y[train, j].mean() if fit_intercept else 0.0
        _, coefs, _ = lasso_path(xtr, y[train, j] - ym, alphas=alphas[order], max_iter=max_iter,
                                 tol=tol)
        pred = (xte @ coefs + ym).T[np.argsort(order)]  # (n_alphas, n_test)
        out[:, j] = score_predictions(y[test, j : j + 1], pred[:, :, None], scoring)[:, 0]
    return out


def refit(X, y, alphas, fit_intercept, max_iter, tol):
    """Coefficients (p, t) and intercepts (t,) of one lasso per target at ``alphas[j]``."""
    from sklearn.linear_model import lasso_path

    xc, xm = _centre(X, fit_intercept)
    coef = np.zeros((X.shape[1], y.shape[1]))
    intercept = np.zeros(y.shape[1])
    for j in range(y.shape[1]):
        yc, ym = _centre(y[:, j], fit_intercept)
        _, c, _ = lasso_path(xc, yc, alphas=[alphas[j]], precompute=False, max_iter=max_iter,
                             tol=tol)
        coef[:, j] = c[:, 0]
        intercept[j] = ym - xm @ c[:, 0] if fit_intercept else 0.0
    return coef, intercept


def cv_batch(y, X, folds, alphas, scoring, fit_intercept, max_iter=1000, tol=1e-4):
    """CV over ``alphas`` and refit at each target's best alpha, for one finite target batch.

    Returns a dict with ``scores`` (n_alphas, t) (mean over folds; NaN for constant targets),
    ``const``, ``best``, ``coef`` (p, t) and ``intercept`` (t,), all float64.
    """
    X = X.astype(np.float64)
    y = y.astype(np.float64)
    const = ~(np.ptp(y, axis=0) > 0)
    scores = nanmean0(np.stack([
        fold_scores(X, y, tr, te, alphas, scoring, fit_intercept, max_iter, tol)
        for tr, te in folds
    ]))
    scores[:, const] = np.nan
    best = alphas[best_alpha_index(scores)]
    coef, intercept = refit(X, y, best, fit_intercept, max_iter, tol)
    return {"scores": scores, "const": const, "best": best, "coef": coef, "intercept": intercept}
