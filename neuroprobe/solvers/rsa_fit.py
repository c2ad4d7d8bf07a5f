"""Weighted RDM models: a non-negative combination of component RDMs fitted to data RDMs.

Pure array functions over condensed RDMs (scipy ``pdist`` order). The two fitters follow
rsatoolbox's ``ModelWeighted`` fitters:

``"nnls"`` (``fit_regress_nn``)
    Non-negative least squares of the pooled data RDM (rsatoolbox's ``pool_rdm`` for the
    method) on the components, in the method's metric: centred components for
    ``"pearson"``, raw for ``"cosine"``, whitened by the RDM covariance (Diedrichsen et al.
    2020: the double-centred square RDMs) for ``"corr_cov"`` / ``"cosine_cov"``.
``"optimize"`` (``fit_optimize_positive``)
    The non-negative weights maximising the mean comparison with the data RDMs. For the
    dot-product methods (``"pearson"``, ``"cosine"``, ``"corr_cov"``, ``"cosine_cov"``) the
    maximiser is closed-form: the mean comparison is ``<P A w, u> / |P A w|`` with ``P`` the
    method's linear transform and ``u`` the mean of the unit-transformed data RDMs, which over
    the convex cone ``{P A w : w >= 0}`` is largest at the projection of ``u`` on the cone (an
    NNLS solution). rsatoolbox reaches the same point with BFGS on ``w = theta**2`` from
    several starts (to its optimiser tolerance). Rank methods (``"spearman"``, ``"rho_a"``)
    use that BFGS search on ``theta**2``.

Weights are returned with unit norm (rsatoolbox's ``normalize=True``); the comparisons are
scale invariant, so the fitted RDM's comparisons do not depend on the norm.
"""

from __future__ import annotations

import numpy as np

from neuroprobe.solvers.rdm import compare, cov_weight, prepare, rank_rows, to_square

FITTERS = ("nnls", "optimize")
NNLS_METHODS = ("pearson", "cosine", "corr_cov", "cosine_cov")
OPTIMIZE_METHODS = NNLS_METHODS + ("spearman", "rho_a")


def _whiten(V, method):
    """Rows of ``V`` in the method's metric (unnormalised): NNLS there is the fit."""
    V = np.atleast_2d(np.asarray(V, dtype=np.float64))
    if method == "pearson":
        return V - V.mean(axis=1, keepdims=True)
    if method == "cosine":
        return V
    if method == "corr_cov":
        V = V - V.mean(axis=1, keepdims=True)
    G = -0.5 * to_square(V)
    row = G.mean(axis=2)
    G = G - row[:, :, None] - row[:, None, :] + row.mean(axis=1)[:, None, None]
    return G.reshape(G.shape[0], -1)


def pool(V, method):
    """rsatoolbox's ``pool_rdm`` of subject RDMs ``V`` (k, m) for ``method`` -> (m,).

    A constant (pearson) or all-zero (cosine) RDM carries no information and adds zeros.
    """
    V = np.atleast_2d(np.asarray(V, dtype=np.float64))
    if method in ("pearson", "corr_cov"):
        Z = V - V.mean(axis=1, keepdims=True)
        sd = Z.std(axis=1, keepdims=True)
        Z = (Z / np.where(sd > 0, sd, 1.0)).mean(axis=0)
        return Z - Z.min()
    if method in ("cosine", "cosine_cov"):
        rms = np.sqrt((V**2).mean(axis=1, keepdims=True))
        return (V / np.where(rms > 0, rms, 1.0)).mean(axis=0)
    return rank_rows(V).mean(axis=0)


def _nnls(A, y):
    """argmin_{w >= 0} |A w - y| for A (p, k)."""
    from scipy.optimize import nnls

    w, _ = nnls(A, y, maxiter=50 * A.shape[1] + 100)
    return w


def _unit(w):
    norm = np.sqrt(np.sum(w**2))
    return w / norm if norm > 0 else w


def fit_weights(components, data, method="cosine", fitter="nnls", *, random_state=None):
    """Non-negative weights of ``components`` (k, m) that fit the data RDMs ``data`` (s, m).

    Parameters
    ----------
    components : array of shape (n_components, n_pairs)
        Component RDMs (e.g. one per layer of a network).
    data : array of shape (n_rdms, n_pairs) or (n_pairs,)
        Data RDMs (e.g. one per subject).
    method : str
        ``"pearson"``, ``"cosine"``, ``"corr_cov"``, ``"cosine_cov"`` (both fitters);
        ``"spearman"``, ``"rho_a"`` (``fitter="optimize"`` only).
    fitter : {"nnls", "optimize"}
        rsatoolbox's ``fit_regress_nn`` or ``fit_optimize_positive`` (see the module notes).
    random_state : int, RandomState or None
        Random start of the BFGS search (rank methods only).

    Returns
    -------
    weights : ndarray of shape (n_components,), unit norm (or all zero)
    """
    A = np.atleast_2d(np.asarray(components, dtype=np.float64))
    Y = np.atleast_2d(np.asarray(data, dtype=np.float64))
    if fitter not in FITTERS:
        raise ValueError(f"fitter must be one of {FITTERS}; got {fitter!r}")
    allowed = NNLS_METHODS if fitter == "nnls" else OPTIMIZE_METHODS
    if method not in allowed:
        raise ValueError(f"method {method!r} cannot be fitted with fitter={fitter!r}; "
                         f"use one of {allowed}")
    finite = np.isfinite(A).all(axis=0) & np.isfinite(Y).all(axis=0)
    if not finite.all():  # undefined entries (NaN) are left out, as rsatoolbox's fitters do
        if method in ("corr_cov", "cosine_cov"):
            raise ValueError(f"{method}: the RDMs have undefined (NaN) entries; the whitened "
                             "fit needs complete RDMs")
        A, Y = A[:, finite], Y[:, finite]
    if fitter == "nnls":
        y = pool(Y, method)
        if method == "corr_cov":
            y = y - y.mean()
        return _unit(_nnls(_whiten(A, method).T, _whiten(y, method)[0]))
    if method in NNLS_METHODS:
        with np.errstate(divide="ignore", invalid="ignore"):
            u = (cov_weight(Y, method) if method in ("corr_cov", "cosine_cov")
                 else prepare(Y, method))
        u = np.nan_to_num(u).mean(axis=0)  # a constant data RDM adds nothing
        return _unit(_nnls(_whiten(A, method).T, u))
    return _unit(_optimize_rank(A, Y, method, random_state))


def _optimize_rank(A, Y, method, random_state):
    """rsatoolbox's fit_optimize_positive search: BFGS on theta**2 from k + 2 starts."""
    from scipy.optimize import minimize
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    k = A.shape[0]
    prepared = prepare(Y, method)

    def loss(theta):
        pred = (theta**2) @ A
        if not np.any(pred != pred[0]):
            return 0.0
        return -float(np.mean(prepare(pred, method) @ prepared.T))

    starts = [rng.rand(k)] + [np.where(np.arange(k) == i, 1.0, 0.001) for i in range(k)]
    best_theta, best_loss = np.zeros(k), loss(np.zeros(k))
    for theta0 in starts:
        res = minimize(loss, theta0, method="BFGS", tol=1e-6)
        if res.fun < best_loss:
            best_theta, best_loss = res.x, res.fun
    return best_theta**2


def predict(weights, components):
    """The weighted RDM ``weights @ components`` (condensed)."""
    return np.asarray(weights, dtype=np.float64) @ np.atleast_2d(components)


def kfold_sets(n, k, rng):
    """``k`` test sets of shuffled ``range(n)`` (sizes differ by at most one)."""
    return np.array_split(rng.permutation(n), k)


def crossval_scores(components, data, method, fitter, stim_folds, subject_folds, *,
                    random_state=None):
    """Cross-validated comparisons of the fitted weighted RDM, over stimuli and subjects.

    For every pair (stimulus fold, subject fold), the weights are fitted on the RDM entries
    among the other stimuli of the other subjects and the prediction is compared with the
    held-out subjects' RDMs among the held-out stimuli (rsatoolbox's ``sets_k_fold`` design).
    With one fold along an axis, that axis is not split (train = test).

    Parameters
    ----------
    components : array of shape (n_components, n_pairs)
    data : array of shape (n_subjects, n_pairs)
    method, fitter : str
    stim_folds, subject_folds : list of int arrays
        Test sets of stimuli and of subjects.
    random_state : int, RandomState or None

    Returns
    -------
    scores : ndarray of shape (n_stim_folds, n_subject_folds)
        Mean comparison over the test subjects.
    weights : ndarray of shape (n_stim_folds, n_subject_folds, n_components)
    """
    from neuroprobe.solvers.rdm import n_from_pairs

    A = np.atleast_2d(np.asarray(components, dtype=np.float64))
    Y = np.atleast_2d(np.asarray(data, dtype=np.float64))
    n = n_from_pairs(A.shape[1])
    i, j = np.triu_indices(n, 1)
    all_stim, all_subj = np.arange(n), np.arange(Y.shape[0])
    scores = np.empty((len(stim_folds), len(subject_folds)))
    weights = np.empty((len(stim_folds), len(subject_folds), A.shape[0]))
    for a, test_stim in enumerate(stim_folds):
        train_stim = (np.setdiff1d(all_stim, test_stim) if len(stim_folds) > 1
                      else all_stim)
        train_pairs = np.isin(i, train_stim) & np.isin(j, train_stim)
        test_pairs = np.isin(i, test_stim) & np.isin(j, test_stim)
        for b, test_subj in enumerate(subject_folds):
            train_subj = (np.setdiff1d(all_subj, test_subj) if len(subject_folds) > 1
                          else all_subj)
            w = fit_weights(A[:, train_pairs], Y[np.ix_(train_subj, train_pairs)], method,
                            fitter, random_state=random_state)
            pred = predict(w, A[:, test_pairs])
            weights[a, b] = w
            scores[a, b] = float(np.mean(compare(pred, Y[np.ix_(test_subj, test_pairs)],
                                                 method)))
    return scores, weights
