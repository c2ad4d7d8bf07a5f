"""Permutation nulls of banded ridge at fixed hyperparameters, reusing the fold decompositions.

Pure array functions over a :class:`~neuroprobe.solvers.banded.BandedPlan`; the estimator entry
point is ``BandedRidgeEncoder._permutation_scores`` (used by
:class:`neuroprobe.estimators.PermutationTest`).

Convention
----------
The plan's folds are the (outer) CV folds of the statistic. Every fold ``f`` and target keeps
fixed hyperparameters, band weights ``gamma`` and alpha (in the estimator: chosen by the inner
search on that fold's training rows of the observed data, as ``cross_val_score_targets`` refits
would choose them; or one choice for every fold). The statistic of a target is the mean over
the folds of the held-out score of the fold model at those hyperparameters (``scoring``), or,
with ``split=True``, each band's share of the held-out explained variance: the product measure
of :func:`~neuroprobe.solvers.banded.split_r2` (St-Yves & Naselaris 2018) of the fold model's
band predictions centred on the held-out rows, summing over bands to the explained variance of
the joint prediction. Unlike ``score_targets(split=True)``, which shares the fold's mean error
(intercept minus held-out mean, driven by the predictive bands) equally among the bands, a band
of weight 0 has share 0 here: the mean error would tie a band's p-value to the others' signal.

A permutation replaces ``Y`` by ``Y[perm]`` (rows, i.e. scans, permuted within runs by the
caller's scheme); X, the folds and the hyperparameters stay as they are, so the held-out
prediction of every fold is a fixed linear operator of the permuted training targets:

* primal (scaled features ``Xs``, fold eigenpairs ``(s, V)`` of the training cross-product):
  ``w = diag(1 / (s + alpha)) (Xs_tr V)^T (y_tr - mean)``; band ``b`` predicts
  ``(Xs_te - mean_tr)[:, b] V[b] w``;
* kernel (fold eigenpairs ``(s, U)`` of ``sum_b gamma_b K_b``):
  ``w = diag(1 / (s + alpha)) U^T (y_tr - mean)``; band ``b`` predicts ``gamma_b K_b,te U w``.

One eigendecomposition per fold and candidate, only for the (fold, candidate) pairs some target
chose, shared by the observed statistic and every permutation; permutations are stacked as
extra columns of the targets (each column with its target's alpha), so the null costs a few
matrix products per fold, never a refit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from neuroprobe.solvers import banded as _banded
from neuroprobe.solvers.scoring import score_predictions

__all__ = ["FoldOperator", "fold_operators", "fixed_scores", "banded_permutation_scores"]


@dataclass
class FoldOperator:
    """One fold of one candidate: held-out predictions are linear in the training targets.

    ``w = (B^T (y_tr - my)) / (s + alpha)``; joint prediction ``A w + my``; band ``b``:
    ``bands[b] @ w`` (up to a constant).
    """

    train: np.ndarray
    test: np.ndarray
    eigvals: object  # (r,)
    left: object  # B (n_train, r)
    proj: object  # A (n_test, r)
    bands: list | None = None  # (n_test, r) per band (split only)


def fold_operators(plan, gamma, *, split=False, folds=None):
    """The :class:`FoldOperator` of the folds of one candidate.

    Parameters
    ----------
    plan : BandedPlan with folds
    gamma : array (n_bands,)
    split : bool
        Also the per-band operators (for split scores).
    folds : int array, optional
        Only these folds (default: all): only they are decomposed.

    Returns
    -------
    list of FoldOperator (one per fold of ``folds``)
    """
    if folds is not None:  # a shallow copy holding only these folds' parts
        plan = replace(plan, folds=[plan.folds[f] for f in folds],
                       fold_parts=[plan.fold_parts[f] for f in folds])
    be = plan.backend
    rp = _banded.candidate_plan(plan, gamma)  # one eigendecomposition per fold
    gamma = np.asarray(gamma, dtype=np.float64)
    out = []
    if plan.kind == "primal":
        d = _banded._scales(plan, gamma)
        xs = plan.X * d[None, :]  # centred on all samples, scaled
        for (train, test), fold in zip(plan.folds, rp.folds):
            v = fold.eigvecs
            tr, te = be.asarray(train), be.asarray(test)
            x_tr = xs[tr]
            mx = x_tr.mean(axis=0) if plan.fit_intercept else 0 * xs[0]
            x_te = xs[te] - mx
            op = FoldOperator(train, test, fold.eigvals, x_tr @ v, x_te @ v)
            if split:
                op.bands = [x_te[:, c] @ v[c] for c in map(be.asarray, plan.bands)]
            out.append(op)
        return out
    for (train, test), (_, k_te), fold in zip(plan.folds, plan.fold_parts, rp.folds):
        u = fold.eigvecs
        op = FoldOperator(train, test, fold.eigvals, u, fold.proj_test)
        if split:
            op.bands = [(k_te[b] @ u) * float(gamma[b]) for b in range(plan.n_bands)]
        out.append(op)
    return out


def _inverse(s, alphas):
    """(r, m) weights ``1 / (s + alpha_j)``; 0 where ``s + alpha ~ 0`` (ridge's rule)."""
    eps = np.finfo(np.float32 if str(s.dtype).endswith("float32") else np.float64).eps
    tol = float(s.max()) * eps * max(s.shape[0], 1) * 10 if s.shape[0] else 0.0
    den = s[:, None] + alphas[None, :]
    ok = den > tol
    inv = 1.0 / (den + ~ok)
    inv[~ok] = 0.0
    return inv


def fixed_scores(plan, op, y, alphas, *, scoring="r2", split=False):
    """Held-out score of one fold for every column of ``y``, each at its own alpha.

    Parameters
    ----------
    plan : BandedPlan
    op : FoldOperator (:func:`fold_operators`)
    y : backend array (n_samples, m)
    alphas : backend array (m,)
    scoring : {"r2", "correlation", "explained_variance"}
        Ignored with ``split`` (always R^2 shares).
    split : bool

    Returns
    -------
    numpy array (1, m), or (n_bands, m) with ``split``; NaN where held-out targets are
    constant.
    """
    be = plan.backend
    y_tr = y[be.asarray(op.train)]
    y_te = y[be.asarray(op.test)]
    if plan.fit_intercept:
        my = y_tr.mean(axis=0)
        y_tr = y_tr - my
    else:
        my = None
    w = (op.left.T @ y_tr) * _inverse(op.eigvals, alphas)
    if split:
        return _split_scores(be, op, w, y_te)
    pred = op.proj @ w
    if my is not None:
        pred += my
    return be.to_numpy(score_predictions(y_te, pred, scoring)).astype(np.float64)[None]


def _split_scores(be, op, w, y_te):
    """Each band's share of the held-out explained variance: the product measure
    ``r2_b = sum_i (2 y_c,i - P_i) p_b,i / sum_i y_c,i^2`` of the band predictions ``p_b``
    centred on the held-out rows (``P = sum_b p_b``, ``y_c`` the centred targets)."""
    q = [a @ w for a in op.bands]
    q = [qb - qb.mean(axis=0) for qb in q]
    total = q[0]
    for qb in q[1:]:
        total = total + qb
    y_c = y_te - y_te.mean(axis=0)
    sst = (y_c * y_c).sum(axis=0)
    resid = 2 * y_c - total
    res = np.stack([be.to_numpy((resid * qb).sum(axis=0)).astype(np.float64) for qb in q])
    sst = be.to_numpy(sst).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        res = res / sst
    res[:, ~(sst > 0)] = np.nan
    return res


def banded_permutation_scores(plan, Y, permutations, candidates, best_candidate, best_alpha, *,
                              scoring="r2", split=False, batch_bytes=2**27):
    """Observed statistics and their permutation null at fixed hyperparameters.

    Parameters
    ----------
    plan : BandedPlan with folds (the folds of the statistic)
    Y : ndarray (n_samples, n_targets), or callable ``cols -> ndarray`` with a ``shape``
        (``cols`` a sorted int array, as :func:`~neuroprobe.solvers.banded.banded_refit`).
        Never modified.
    permutations : int array (n_permutations, n_samples)
        Permutation ``k`` scores ``Y[permutations[k]]``.
    candidates : array (n_candidates, n_bands)
    best_candidate : int array (n_folds, n_targets) or (n_targets,)
        Each fold's (or every fold's) candidate of every target.
    best_alpha : array (n_folds, n_targets) or (n_targets,)
    scoring : {"r2", "correlation", "explained_variance"}
    split : bool
        Per-band shares of the held-out R^2 instead of the score.
    batch_bytes : int
        Memory of one stacked batch of permuted targets (and its fold working arrays).

    Returns
    -------
    observed : ndarray (n_targets,), or (n_bands, n_targets) with ``split``
        Mean over folds (NaN-aware) of the held-out statistic.
    null : ndarray (n_permutations, n_targets), or (n_permutations, n_bands, n_targets)
    """
    be = plan.backend
    read, n_targets = _banded._reader(Y)
    permutations = np.asarray(permutations, dtype=np.intp)
    n = plan.n_samples
    if permutations.ndim != 2 or permutations.shape[1] != n:
        raise ValueError(f"permutations must have shape (n_permutations, {n}); got "
                         f"{permutations.shape}")
    perms = np.vstack([np.arange(n, dtype=np.intp)[None], permutations])  # row 0: observed
    n_rows, n_folds = perms.shape[0], len(plan.folds)
    candidates = np.asarray(candidates, dtype=np.float64)
    best_candidate = np.broadcast_to(np.asarray(best_candidate), (n_folds, n_targets))
    best_alpha = np.broadcast_to(np.asarray(best_alpha, dtype=np.float64), (n_folds, n_targets))
    k = plan.n_bands if split else 1
    total = np.zeros((n_rows, k, n_targets))
    count = np.zeros((n_rows, k, n_targets), dtype=np.int32)
    itemsize = np.dtype(plan.dtype).itemsize
    per_column = n * itemsize * (3 + 2 * k)  # permuted y, training part, predictions
    m_max = max(1, int(batch_bytes // per_column))
    for c in np.unique(best_candidate):
        used = [f for f in range(n_folds) if np.any(best_candidate[f] == c)]
        ops = fold_operators(plan, candidates[c], split=split, folds=used)
        for f, op in zip(used, ops):
            targets = np.flatnonzero(best_candidate[f] == c)
            tb = min(len(targets), m_max)
            kp = max(1, m_max // tb)
            for start in range(0, len(targets), tb):
                cols = targets[start:start + tb]
                y = np.asarray(read(cols), dtype=plan.dtype)
                if plan.fit_intercept:
                    y = y - y.mean(axis=0)  # a new array; also keeps float32 accurate
                a = np.tile(best_alpha[f, cols].astype(plan.dtype), kp)
                for p0 in range(0, n_rows, kp):
                    block = perms[p0:p0 + kp]
                    m = len(block) * len(cols)
                    yp = np.ascontiguousarray(y[block].transpose(1, 0, 2).reshape(n, m))
                    s = fixed_scores(plan, op, be.asarray(yp), be.asarray(a[:m]),
                                     scoring=scoring, split=split)
                    s = s.reshape(k, len(block), len(cols)).transpose(1, 0, 2)
                    ok = ~np.isnan(s)
                    total[p0:p0 + len(block), :, cols] += np.where(ok, s, 0.0)
                    count[p0:p0 + len(block), :, cols] += ok
        del ops
    with np.errstate(invalid="ignore"):
        stats = total / np.maximum(count, 1)
    stats[count == 0] = np.nan
    if not split:
        stats = stats[:, 0]
    return stats[0], stats[1:]
