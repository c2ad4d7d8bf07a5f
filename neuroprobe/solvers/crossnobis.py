"""Cross-validated Mahalanobis (crossnobis) RDMs, defined as rsatoolbox's ``calc_rdm``.

Leave-one-run-out: for every run ``f``, the condition means of the other runs (all their
observations pooled, as rsatoolbox's ``average_dataset_by``) are crossed with the condition
means of run ``f`` through the noise precision ``P``; the distance
``d_ij = (a_i - a_j) P (b_i - b_j)^T / p`` is averaged over runs. ``P`` is applied once to all
test means (:class:`neuroprobe.solvers.noise.NoisePrecision`), never formed when it is
diagonal or low-rank plus diagonal.
"""

from __future__ import annotations

import numpy as np

from neuroprobe.solvers.noise import as_precision

__all__ = ["crossnobis_rdm", "fold_means"]


def fold_means(X, conditions, cv_groups):
    """Per-run condition sums and counts.

    Returns
    -------
    labels, runs : ndarray
        Sorted unique conditions and runs.
    sums : ndarray of shape (n_runs, n_conditions, p)
    counts : ndarray of shape (n_runs, n_conditions)
    """
    labels, ci = np.unique(conditions, return_inverse=True)
    runs, ri = np.unique(cv_groups, return_inverse=True)
    if runs.size < 2:
        raise ValueError(f"cv_groups: crossnobis needs at least 2 runs (partitions); got "
                         f"{runs.size} ({runs.tolist()})")
    counts = np.zeros((runs.size, labels.size), dtype=np.int64)
    np.add.at(counts, (ri, ci), 1)
    missing = counts == 0
    if missing.any():
        f, c = np.argwhere(missing)[0]
        raise ValueError(
            f"cv_groups: every run must contain every condition; run {runs[f].item()!r} lacks "
            f"{int(missing[f].sum())} condition(s), e.g. {labels[c].item()!r} "
            f"({int(missing.sum())} (run, condition) cells empty in all)")
    sums = np.zeros((runs.size, labels.size, X.shape[1]), dtype=np.float64)
    np.add.at(sums, (ri, ci), X)
    return labels, runs, sums, counts


def crossnobis_rdm(X, conditions, cv_groups, noise=None, remove_mean=False):
    """Crossnobis RDM of the conditions (condensed, pdist order of the sorted conditions).

    Parameters
    ----------
    X : ndarray of shape (n_observations, p)
    conditions, cv_groups : array of shape (n_observations,)
        Condition and run (partition) of every observation.
    noise : None, array (p,) or (p, p), or NoisePrecision
        Noise precision (default identity: cross-validated Euclidean).
    remove_mean : bool
        Subtract each mean pattern's mean over channels first (rsatoolbox's option).

    Returns
    -------
    rdm : ndarray of shape (n_conditions * (n_conditions - 1) / 2,)
    labels : ndarray of the sorted conditions
    """
    X = np.asarray(X, dtype=np.float64)
    p = X.shape[1]
    P = as_precision(noise, p)
    labels, runs, sums, counts = fold_means(X, conditions, cv_groups)
    test = sums / counts[..., None]
    train = (sums.sum(0) - sums) / (counts.sum(0) - counts)[..., None]
    if remove_mean:
        test = test - test.mean(-1, keepdims=True)
        train = train - train.mean(-1, keepdims=True)
    n_runs, n_cond = counts.shape
    PT = P.matmul(test.reshape(-1, p).T).T.reshape(n_runs, n_cond, p)  # test @ P (P symmetric)
    K = np.einsum("fip,fjp->fij", train, PT)
    d = np.einsum("fii->fi", K)
    D = d[:, :, None] + d[:, None, :] - K - K.transpose(0, 2, 1)
    i, j = np.triu_indices(n_cond, k=1)
    return D[:, i, j].mean(0) / p, labels
