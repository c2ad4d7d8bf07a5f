"""Searchlight RDMs and RSA maps, batched over centres with sparse membership products.

Every statistic a centre's RDM needs (per-row sums, sums of squares, pairwise products or
squared differences over its members) is a product of a per-voxel table with the sparse
(voxels x centres) membership matrix, so no Python loop runs over voxels of a centre.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from neuroprobe.solvers import rdm as _rdm

__all__ = ["searchlight_rdms", "searchlight_rsa", "SEARCHLIGHT_METRICS"]

SEARCHLIGHT_METRICS = ("correlation", "euclidean", "sqeuclidean")


def _membership(nb, start, stop, n_columns):
    """Sparse (n_columns, stop - start) 0/1 matrix of the members of centres start..stop."""
    lo, hi = nb.indptr[start], nb.indptr[stop]
    cols = np.repeat(np.arange(stop - start), np.diff(nb.indptr[start:stop + 1]))
    return sparse.csc_matrix((np.ones(hi - lo), (nb.indices[lo:hi], cols)),
                             shape=(n_columns, stop - start))


def _chunk_rdms(X, S, k, metric, i, j):
    if metric in ("euclidean", "sqeuclidean"):
        D = (S.T @ ((X[i] - X[j]) ** 2).T).T  # (n_pairs, chunk)
        return np.sqrt(D) if metric == "euclidean" else D
    s1 = (S.T @ X.T).T / k  # means (n, chunk)
    s2 = (S.T @ (X * X).T).T / k
    cross = (S.T @ (X[i] * X[j]).T).T / k
    var = s2 - s1 * s1
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (cross - s1[i] * s1[j]) / np.sqrt(var[i] * var[j])
    return 1 - r


def searchlight_rdms(X, neighbourhoods, metric="correlation", *, chunk_size=256):
    """The RDM of every searchlight (condensed, pdist order).

    Parameters
    ----------
    X : array of shape (n_conditions, n_columns)
        Patterns over the data's columns (voxels / vertices).
    neighbourhoods : Neighbourhoods
        Members as columns of ``X`` (see :meth:`Neighbourhoods.to_columns`).
    metric : {"correlation", "euclidean", "sqeuclidean"}
    chunk_size : int
        Centres per batch (memory ``n_pairs x n_columns`` per batch).

    Returns
    -------
    ndarray of shape (n_centers, n_pairs)
    """
    if metric not in SEARCHLIGHT_METRICS:
        raise ValueError(f"metric must be one of {list(SEARCHLIGHT_METRICS)}; got {metric!r}")
    X = np.asarray(X, dtype=np.float64)
    nb = neighbourhoods
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"X must be 2-D (n_conditions >= 2, n_columns); got shape {X.shape}")
    if nb.indices.size and nb.indices.max() >= X.shape[1]:
        raise ValueError(f"neighbourhoods index column {nb.indices.max()} but X has "
                         f"{X.shape[1]} columns (map members to columns with to_columns)")
    if np.any(nb.sizes == 0):
        raise ValueError(f"neighbourhoods: {int(np.sum(nb.sizes == 0))} centres have no "
                         "member (radius too small?)")
    i, j = _rdm.pair_indices(X.shape[0])
    out = np.empty((len(nb), i.size))
    for s in range(0, len(nb), chunk_size):
        e = min(s + chunk_size, len(nb))
        S = _membership(nb, s, e, X.shape[1])
        out[s:e] = _chunk_rdms(X, S, nb.sizes[s:e], metric, i, j).T
    return out


def searchlight_rsa(X, neighbourhoods, model_rdms, metric="correlation",
                    comparison="spearman", *, chunk_size=256):
    """Comparison of every searchlight RDM with every model RDM.

    Returns
    -------
    ndarray of shape (n_centers, n_models)
    """
    from neuroprobe.rsa import check_method, to_condensed

    M = np.atleast_2d(to_condensed(np.asarray(model_rdms, dtype=np.float64), "model_rdms"))
    n = np.asarray(X).shape[0]
    if M.shape[1] != n * (n - 1) // 2:
        raise ValueError(f"model_rdms must be RDMs of the {n} conditions of X "
                         f"({n * (n - 1) // 2} pairs); got {M.shape[1]} pairs")
    R = searchlight_rdms(X, neighbourhoods, metric, chunk_size=chunk_size)
    return _rdm.compare(R, M, check_method(comparison))
