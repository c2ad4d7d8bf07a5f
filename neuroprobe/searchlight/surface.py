"""Surface searchlights: geodesic discs on a triangle mesh (edge-length graph distances)."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from neuroprobe.searchlight.neighbourhoods import Neighbourhoods

__all__ = ["surface_neighbourhoods", "mesh_graph"]


def mesh_graph(coordinates, faces):
    """Sparse symmetric graph of the mesh edges weighted by their Euclidean length."""
    coords = np.asarray(coordinates, dtype=np.float64)
    faces = np.asarray(faces)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise ValueError(f"coordinates must have shape (n_vertices, 3); got {coords.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (n_faces, 3); got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(coords)):
        raise ValueError(f"faces index vertices outside 0..{len(coords) - 1}")
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    w = np.linalg.norm(coords[e[:, 0]] - coords[e[:, 1]], axis=1)
    n = len(coords)
    g = sparse.coo_matrix((w, (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    return g + g.T


def surface_neighbourhoods(coordinates, faces, radius, *, mask=None, n_vertices=None,
                           chunk_size=512):
    """Geodesic discs: vertices within ``radius`` (mesh units, mm) along the mesh edges.

    Parameters
    ----------
    coordinates : array of shape (n_vertices, 3)
    faces : array of shape (n_faces, 3)
    radius : float
        Members have a shortest-path distance ``<= radius`` over the edge graph.
    mask : bool array of shape (n_vertices,), optional
        Centres and members restricted to these vertices (paths may cross the rest).
    n_vertices : int, optional
        Vertex count of the data to map (checked against the mesh).
    chunk_size : int
        Centres per Dijkstra call (memory ``chunk_size x n_vertices``).

    Returns
    -------
    Neighbourhoods
        Vertex indices.
    """
    g = mesh_graph(coordinates, faces)
    n = g.shape[0]
    if n_vertices is not None and n_vertices != n:
        raise ValueError(f"n_vertices: the data have {n_vertices} vertices but the mesh has "
                         f"{n}; use the mesh the data were sampled on")
    if not np.isfinite(radius) or radius < 0:
        raise ValueError(f"radius must be >= 0; got {radius!r}")
    keep = np.ones(n, bool) if mask is None else np.asarray(mask, dtype=bool)
    if keep.shape != (n,):
        raise ValueError(f"mask must have one entry per mesh vertex ({n}); got {keep.shape}")
    centers = np.flatnonzero(keep)
    if centers.size == 0:
        raise ValueError("mask selects no vertex")
    sizes, indices = [], []
    for s in range(0, centers.size, chunk_size):
        d = dijkstra(g, directed=False, indices=centers[s:s + chunk_size],
                     limit=radius * (1 + 1e-12))
        member = (d <= radius) & keep[None]
        sizes.append(member.sum(1))
        indices.append(np.nonzero(member)[1])
    sizes = np.concatenate(sizes)
    return Neighbourhoods(centers, np.r_[0, np.cumsum(sizes)], np.concatenate(indices), (n,))
