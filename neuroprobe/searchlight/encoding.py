"""Cross-validated ridge encoding scores of every searchlight, sharing all work across centres.

With a fixed penalty, the cross-validated ridge predictions of the features ``F`` for brain
data ``Y`` are linear in ``Y``: ``Y_hat = H @ Y`` with one ``(n, n)`` matrix ``H`` built from the
folds (kernel form, with an intercept). Every voxel's prediction is thus shared by all the centres
containing it, and a centre's score is a sum of per-voxel statistics over its members: one
product with the sparse membership matrix. A stimulus permutation ``p`` gives ``H @ Y[p]``
against ``Y[p]``: no refit, one ``(n, n) x (n, n_voxels)`` product per permutation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cv_hat_matrix", "voxel_statistics", "centre_scores", "ENCODING_SCORINGS"]

ENCODING_SCORINGS = ("r2", "correlation")


def cv_hat_matrix(F, folds, alpha):
    """``H`` (n, n) with ``H @ Y`` = the cross-validated ridge predictions of ``Y`` from ``F``.

    Parameters
    ----------
    F : ndarray of shape (n, n_features)
        Features (predictors).
    folds : iterable of (train, test) index arrays
        Every row must be in exactly one test set.
    alpha : float
        Ridge penalty (scikit-learn's ``Ridge(alpha, fit_intercept=True)``).
    """
    F = np.asarray(F, dtype=np.float64)
    n = F.shape[0]
    H = np.zeros((n, n))
    seen = np.zeros(n, dtype=int)
    for train, test in folds:
        train, test = np.asarray(train), np.asarray(test)
        mu = F[train].mean(0)
        Ftr, Fte = F[train] - mu, F[test] - mu
        K = Ftr @ Ftr.T
        W = np.linalg.solve(K + alpha * np.eye(train.size), np.eye(train.size)
                            - 1.0 / train.size)  # (K + aI)^-1 C
        H[np.ix_(test, train)] = 1.0 / train.size + (Fte @ Ftr.T) @ W
        seen[test] += 1
    if np.any(seen != 1):
        raise ValueError("cv: every stimulus must be in exactly one test fold (a partition, "
                         "e.g. KFold); got a splitter whose test sets do not cover the rows once")
    return H


def voxel_statistics(H, Y, scoring, be):
    """Per-voxel statistics of the predictions ``H @ Y``, as ``(stats, n_stats)``.

    ``Y`` may be a batch ``(b, n, p)`` of permuted data. ``"r2"``: the residual and total sums
    of squares; ``"correlation"``: Pearson r of prediction and data.
    """
    P = H @ Y
    Yc = Y - Y.mean(axis=-2, keepdims=True)
    if scoring == "r2":
        sse = ((Y - P) ** 2).sum(axis=-2)
        sst = (Yc**2).sum(axis=-2)
        return sse, sst
    Pc = P - P.mean(axis=-2, keepdims=True)
    xp = np if be.name == "numpy" else be.torch
    r = (Pc * Yc).sum(axis=-2) / xp.sqrt((Pc**2).sum(axis=-2) * (Yc**2).sum(axis=-2))
    return r, None


def centre_scores(stats, S, sizes, scoring):
    """Scores of every centre from per-voxel statistics and the membership matrix ``S``.

    ``"r2"``: ``1 - sum(SSE) / sum(SST)`` over the members (scikit-learn's
    ``r2_score(..., multioutput="variance_weighted")``); ``"correlation"``: the mean of the
    members' r.
    """
    a, b = stats
    a = np.atleast_2d(a)
    if scoring == "r2":
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1.0 - (S.T @ a.T).T / (S.T @ np.atleast_2d(b).T).T
    return (S.T @ a.T).T / sizes
