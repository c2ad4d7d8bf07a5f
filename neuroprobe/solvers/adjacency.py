"""Spatio-temporal clusters: connected supra-threshold samples over channels x time.

Two samples of a ``(..., n_channels, n_times)`` array are neighbours when they are the same
channel at adjacent times, or adjacent channels (``adjacency``) at the same time: the
clusters of mne.stats' ``spatio_temporal_cluster_1samp_test`` (``max_step=1``). Every leading
index (a permutation, a layer) is clustered apart. Only the supra-threshold samples become graph
nodes (numbered by a cumulative count of the mask; their channel neighbours found through the
CSR rows of the adjacency's upper triangle, so each undirected edge is listed once) and one
``scipy.sparse.csgraph.connected_components`` call labels all rows at once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_adjacency", "label_clusters", "cluster_sums"]


def check_adjacency(adjacency, n_channels, what="adjacency"):
    """``adjacency`` as a symmetric CSR bool matrix without its diagonal.

    Parameters
    ----------
    adjacency : array-like or scipy sparse matrix of shape (n_channels, n_channels)
        ``True`` (non-zero) where two channels are neighbours, e.g. from
        ``mne.channels.find_ch_adjacency`` or :func:`neuroprobe.solvers.temporal.
        channel_neighbourhoods`. The diagonal is ignored; an asymmetric matrix is an error.
    n_channels : int
    what : str
        The argument named in errors.

    Returns
    -------
    scipy.sparse.csr_array of bool
    """
    from scipy import sparse

    A = sparse.coo_array(adjacency) if sparse.issparse(adjacency) else \
        sparse.coo_array(np.asarray(adjacency) != 0)
    if A.shape != (n_channels, n_channels):
        raise ValueError(f"{what}: expected a ({n_channels}, {n_channels}) channel adjacency "
                         f"(one row and column per channel); got shape {A.shape}")
    keep = (A.row != A.col) & (A.data != 0)                 # no diagonal, no stored zeros
    A = sparse.csr_array((np.ones(int(keep.sum()), bool), (A.row[keep], A.col[keep])),
                         shape=A.shape)
    if (A != A.T).nnz:
        raise ValueError(f"{what}: expected a symmetric channel adjacency (A[i, j] == A[j, i])")
    A.sort_indices()
    return A


def label_clusters(mask, adjacency, ordered=True):
    """Connected components of the ``True`` samples of ``mask``.

    Parameters
    ----------
    mask : ndarray of bool of shape (..., n_channels, n_times)
    adjacency : scipy sparse matrix (from :func:`check_adjacency`)
    ordered : bool, default=True
        Number the clusters in the order of their first sample (raster order), so the
        numbering does not depend on the graph library; False: the library's numbering
        (enough for sizes and sums, e.g. TFCE extents and permutation maxima).

    Returns
    -------
    nodes : ndarray of int64 of shape (n_nodes,)
        Flat indices of the ``True`` samples, increasing.
    labels : ndarray of shape (n_nodes,)
        Cluster of every node, ``0 .. n_clusters - 1``.
    n_clusters : int
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    c, t = mask.shape[-2:]
    flat = np.ascontiguousarray(mask).ravel()
    nodes = np.flatnonzero(flat)
    n = nodes.size
    if n == 0:
        return nodes, np.zeros(0, np.int64), 0
    # node number of every sample (valid where the mask holds): a cumulative count
    number = np.cumsum(flat, dtype=np.int32 if flat.size < 2**31 else np.int64)
    number -= 1
    row, rest = np.divmod(nodes, c * t)
    ch, time = np.divmod(rest, t)
    # time: the next sample of the same channel
    later = np.flatnonzero((time < t - 1) & flat[np.minimum(nodes + 1, flat.size - 1)])
    src, dst = [later], [number[nodes[later] + 1]]
    # space: adjacent channels at the same time (each node's CSR row of the adjacency's upper
    # triangle: every undirected edge once)
    upper = sparse.triu(adjacency, k=1, format="csr")
    deg = np.diff(upper.indptr)[ch]
    if deg.sum():
        owner = np.repeat(np.arange(n), deg)
        within = np.arange(deg.sum()) - np.repeat(np.cumsum(deg) - deg, deg)
        other = upper.indices[upper.indptr[ch][owner] + within]
        target = (row[owner] * c + other) * t + time[owner]
        hit = flat[target]
        src.append(owner[hit])
        dst.append(number[target[hit]])
    del number
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = sparse.coo_array((np.ones(src.size, bool), (src, dst)), shape=(n, n))
    k, comp = connected_components(graph, directed=False)
    if not ordered:
        return nodes, comp, int(k)
    first = np.full(k, n)
    np.minimum.at(first, comp, np.arange(n))          # each cluster's first node
    rank = np.empty(k, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(k)
    return nodes, rank[comp], int(k)


def cluster_sums(stat, mask, adjacency, ordered=True):
    """Clusters of ``mask`` and the sum of ``stat`` over each.

    Parameters
    ----------
    stat : ndarray of shape (..., n_channels, n_times)
    mask : ndarray of bool, shape of ``stat``
    adjacency : scipy sparse matrix (from :func:`check_adjacency`)
    ordered : bool, default=True
        As :func:`label_clusters`.

    Returns
    -------
    nodes, labels, n_clusters
        As :func:`label_clusters`.
    sums : ndarray of shape (n_clusters,)
        ``stat`` summed over every cluster's samples (in raster order, one ``bincount``).
    rows : ndarray of int64 of shape (n_clusters,)
        The leading (flattened) index of every cluster: clusters never span two of them.
    """
    nodes, labels, k = label_clusters(mask, adjacency, ordered)
    c, t = mask.shape[-2:]
    sums = np.bincount(labels, weights=np.asarray(stat, dtype=np.float64).ravel()[nodes],
                       minlength=k)
    rows = np.zeros(k, np.int64)
    rows[labels] = nodes // (c * t)
    return nodes, labels, k, sums, rows
