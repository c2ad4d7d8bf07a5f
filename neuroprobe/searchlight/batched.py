"""Searchlight statistics for a batch of centres: one gather and batched matrix products.

The members of a batch of centres are gathered into a padded ``(batch, n, k_max)`` block
(padding masked to zero), so every centre's RDM is one slice of a batched Gram product, on numpy
or torch (GPU). Comparisons with the model RDMs are one matrix product of the prepared centre
RDMs with the prepared model RDMs; the permutation null is the same product with the prepared
model RDMs permuted (a stimulus permutation only permutes the entries of a prepared RDM), so the
brain data are never refitted.
"""

from __future__ import annotations

import numpy as np

from neuroprobe.solvers import rdm as _rdm

__all__ = ["BATCH_METRICS", "gather_index", "batch_rdms", "column_major", "prepare_rows",
           "permuted_models", "membership"]

BATCH_METRICS = ("correlation", "euclidean", "sqeuclidean", "crossnobis")


def gather_index(nb, start, stop):
    """Padded members of centres ``start..stop``: ``(index, valid, sizes)``.

    ``index`` is ``(stop - start, k_max)`` (padding points at column 0), ``valid`` the bool
    mask of real members, ``sizes`` the member counts.
    """
    sizes = np.diff(nb.indptr[start:stop + 1])
    k_max = max(int(sizes.max()), 1) if sizes.size else 1
    lo, hi = nb.indptr[start], nb.indptr[stop]
    rows = np.repeat(np.arange(stop - start), sizes)
    pos = np.arange(hi - lo) - np.repeat(nb.indptr[start:stop] - lo, sizes)
    index = np.zeros((stop - start, k_max), dtype=np.int64)
    valid = np.zeros((stop - start, k_max), dtype=bool)
    index[rows, pos] = nb.indices[lo:hi]
    valid[rows, pos] = True
    return index, valid, sizes


def membership(nb, n_columns):
    """Sparse ``(n_columns, n_centers)`` 0/1 matrix: column ``c`` marks the members of ``c``."""
    from scipy import sparse

    cols = np.repeat(np.arange(len(nb)), nb.sizes)
    return sparse.csc_matrix((np.ones(nb.indices.size), (nb.indices, cols)),
                             shape=(n_columns, len(nb)))


def _xp(be):
    return np if be.name == "numpy" else be.torch


def _mask(valid, like, be):
    """``valid`` as a 0/1 array of the dtype (and device) of ``like``."""
    if be.name == "numpy":
        return valid.astype(like.dtype)
    return be.asarray(valid).to(like.dtype)


def column_major(data):
    """The layout :func:`batch_rdms` gathers from: ``(p, n)`` patterns, or for crossnobis
    ``(p, n_runs, n)`` train and test means (C-contiguous, so a gather of columns is a block
    of contiguous rows and every centre's matrix is BLAS-ready)."""
    if isinstance(data, tuple):
        return tuple(np.ascontiguousarray(np.moveaxis(d, -1, 0)) for d in data)
    return np.ascontiguousarray(np.asarray(data).T)


def _gather(XT, index, valid, be):
    """``XT[index]`` with the padding set to 0: shape ``index.shape + XT.shape[1:]``."""
    G = XT[be.asarray(index)]
    v = _mask(valid, G, be)
    return G * v.reshape(v.shape + (1,) * (G.ndim - 2))


def batch_rdms(data, index, valid, sizes, metric, be, *, remove_mean=False):
    """Condensed RDMs of one batch of centres, ``(batch, n_pairs)``, on backend ``be``.

    Parameters
    ----------
    data : array (p, n) on ``be``, or a pair ``(train, test)`` of arrays (p, n_runs, n) for
        ``"crossnobis"`` (the test means already multiplied by the diagonal noise precision);
        see :func:`column_major`.
    index, valid, sizes : from :func:`gather_index`
    metric : {"correlation", "euclidean", "sqeuclidean", "crossnobis"}
    be : backend of :mod:`neuroprobe.solvers.backend`

    Notes
    -----
    ``"correlation"`` is 1 - Pearson r over the centre's members (NaN for a constant pattern);
    ``"euclidean"`` / ``"sqeuclidean"`` as scipy ``pdist``; ``"crossnobis"`` equals
    :func:`neuroprobe.crossnobis.crossnobis_rdm` on the centre's columns (divided by the centre's
    member count).
    """
    xp = _xp(be)
    k = be.asarray(np.maximum(sizes, 1), dtype=np.float64 if be.name == "numpy" else np.float32)
    if metric == "crossnobis":
        train, test = data
        A = _gather(train, index, valid, be)  # (B, k, F, n)
        T = _gather(test, index, valid, be)
        if remove_mean:
            v = _mask(valid, A, be)[:, :, None, None]
            A = (A - A.sum(axis=1, keepdims=True) / k[:, None, None, None]) * v
            T = (T - T.sum(axis=1, keepdims=True) / k[:, None, None, None]) * v
        A, T = xp.moveaxis(A, 1, 2), xp.moveaxis(T, 1, 2)  # (B, F, k, n)
        if be.name == "numpy":
            A, T = np.ascontiguousarray(A), np.ascontiguousarray(T)
        K = xp.swapaxes(A, -1, -2) @ T  # (B, F, n, n)
        d = xp.einsum("bfii->bfi", K)
        D = (d[..., :, None] + d[..., None, :] - K - xp.swapaxes(K, -1, -2)).mean(axis=1)
        n = D.shape[-1]
        i, j = np.triu_indices(n, 1)
        return D[:, i, j] / k[:, None]
    G = _gather(data, index, valid, be)  # (B, k, n)
    n = G.shape[2]
    i, j = np.triu_indices(n, 1)
    if metric == "correlation":
        v = _mask(valid, G, be)[:, :, None]
        Z = (G - G.sum(axis=1, keepdims=True) / k[:, None, None]) * v
        Z = Z / xp.sqrt((Z * Z).sum(axis=1, keepdims=True))
        C = xp.swapaxes(Z, -1, -2) @ Z
        return 1.0 - C[:, i, j]
    if metric in ("euclidean", "sqeuclidean"):
        Q = xp.swapaxes(G, -1, -2) @ G
        d = xp.einsum("bii->bi", Q)
        D = xp.clip(d[:, i] + d[:, j] - 2.0 * Q[:, i, j], 0, None)
        return xp.sqrt(D) if metric == "euclidean" else D
    raise ValueError(f"metric must be one of {list(BATCH_METRICS)}; got {metric!r}")


def _average_ranks(R, be):
    """Average ranks (ties share the mean rank, as ``scipy.stats.rankdata``) of each row.

    One sort per row; each run of equal sorted values gets the mean of its first and last
    position (running max / min of the run boundaries), so ties cost no extra pass.
    """
    m = R.shape[1]
    if be.name == "numpy":
        order = np.argsort(R, axis=1)
        s = np.take_along_axis(R, order, axis=1)
        neq = s[:, 1:] != s[:, :-1]
        edge = np.ones((R.shape[0], 1), bool)
        pos = np.broadcast_to(np.arange(m), R.shape)
        first = np.maximum.accumulate(np.where(np.hstack([edge, neq]), pos, 0), axis=1)
        last = np.minimum.accumulate(np.where(np.hstack([neq, edge]), pos, m)[:, ::-1],
                                     axis=1)[:, ::-1]
        ranks = np.empty(R.shape, dtype=R.dtype)
        np.put_along_axis(ranks, order, ((first + last) / 2 + 1).astype(R.dtype), axis=1)
        return ranks
    torch = be.torch
    s, order = torch.sort(R, dim=1)
    neq = s[:, 1:] != s[:, :-1]
    edge = torch.ones((R.shape[0], 1), dtype=torch.bool, device=R.device)
    pos = torch.arange(m, device=R.device).expand(R.shape[0], m)
    first = torch.cummax(torch.where(torch.cat([edge, neq], 1), pos, 0), dim=1).values
    last = torch.cummin(torch.where(torch.cat([neq, edge], 1), pos, m).flip(1), dim=1).values
    avg = ((first + last.flip(1)).to(R.dtype) / 2 + 1)
    return torch.empty_like(R).scatter_(1, order, avg)


def prepare_rows(R, method, be):
    """Rows of ``R`` transformed so that ``method(a, b) == prepare(a) @ prepare(b)``.

    As :func:`neuroprobe.solvers.rdm.prepare` (pearson, spearman, rho_a, cosine), on ``be``.
    NaN rows stay NaN.
    """
    xp = _xp(be)
    m = R.shape[1]
    nan_rows = xp.isnan(R).any(axis=1)
    if method in ("spearman", "rho_a"):
        R = _average_ranks(xp.nan_to_num(R), be)
    if method in ("pearson", "spearman", "rho_a"):
        R = R - R.mean(axis=1, keepdims=True)
    if method == "rho_a":
        R = R * float(np.sqrt(12.0 / (m**3 - m)))
    else:
        R = R / xp.sqrt((R * R).sum(axis=1, keepdims=True))
    R[nan_rows] = float("nan")
    return R


def permuted_models(prepared, permutations):
    """Prepared model RDMs under stimulus permutations, ``(n_permutations * n_models, m)``.

    Row ``k * n_models + q`` is model ``q`` with its stimuli relabelled by ``permutations[k]``
    (entry ``(i, j)`` is the original ``(p[i], p[j])``), permutation-major.
    """
    prepared = np.atleast_2d(prepared)
    n_models, m = prepared.shape
    n = _rdm.n_from_pairs(m)
    sq = np.zeros((n_models, n, n), dtype=prepared.dtype)
    i, j = np.triu_indices(n, 1)
    sq[:, i, j] = prepared
    sq[:, j, i] = prepared
    p = np.asarray(permutations, dtype=np.int64)
    out = sq[:, p[:, i], p[:, j]]  # (n_models, n_perm, m)
    return np.ascontiguousarray(np.swapaxes(out, 0, 1)).reshape(-1, m)
