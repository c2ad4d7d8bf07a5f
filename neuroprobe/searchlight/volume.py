"""Volume searchlights: spheres of a radius in voxels or mm around every centre of a mask."""

from __future__ import annotations

import numpy as np

from neuroprobe.searchlight.neighbourhoods import Neighbourhoods

__all__ = ["volume_neighbourhoods", "sphere_offsets"]


def sphere_offsets(radius, affine=None):
    """Integer voxel offsets strictly closer than ``radius`` to the centre.

    Distances are in voxels, or in mm through ``affine[:3, :3]`` when ``affine`` is given.
    """
    A = np.eye(3) if affine is None else np.asarray(affine, dtype=np.float64)[:3, :3]
    step = np.min(np.linalg.svd(A, compute_uv=False))  # smallest mm per voxel step
    k = int(np.ceil(radius / step))
    g = np.arange(-k, k + 1)
    off = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    return off[np.linalg.norm(off @ A.T, axis=1) < radius]


def _check(mask, radius, threshold, stride, affine):
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"mask must be a 3-D array; got {mask.ndim}-D")
    mask = mask.astype(bool)
    if not mask.any():
        raise ValueError("mask selects no voxel")
    if not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"radius must be > 0; got {radius!r}")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be in [0, 1]; got {threshold!r}")
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be a positive integer; got {stride!r}")
    if affine is not None and np.asarray(affine).shape != (4, 4):
        raise ValueError(f"affine must be 4 x 4; got shape {np.asarray(affine).shape}")
    return mask


def volume_neighbourhoods(mask, radius, *, affine=None, threshold=0.0, stride=1,
                          truncate_at_boundary=True, chunk_size=4096):
    """Spheres around every voxel of ``mask``.

    Parameters
    ----------
    mask : array of shape (X, Y, Z)
        Brain mask; centres are its voxels.
    radius : float
        Members are strictly closer than ``radius`` (as rsatoolbox): in voxels, or in mm when
        ``affine`` is given.
    affine : array of shape (4, 4), optional
        Voxel-to-mm affine (e.g. ``img.affine``).
    threshold : float, default=0.0
        Keep a centre when at least this fraction of its in-volume sphere is inside the mask
        (rsatoolbox's ``threshold``; default 0: every mask voxel is a centre).
    stride : int, default=1
        Keep only centres whose voxel coordinates are multiples of ``stride``.
    truncate_at_boundary : bool, default=True
        Members restricted to the mask (rsatoolbox #466); False keeps the whole sphere.
    chunk_size : int
        Centres processed at once (memory ``chunk_size x sphere size``).

    Returns
    -------
    Neighbourhoods
        Flat voxel indices (``np.ravel_multi_index`` over ``mask.shape``).
    """
    mask = _check(mask, radius, threshold, stride, affine)
    off = sphere_offsets(radius, affine)
    coords = np.argwhere(mask)
    if stride > 1:
        coords = coords[np.all(coords % int(stride) == 0, axis=1)]
    shape = np.array(mask.shape)
    flat_mask = mask.ravel()
    centers, rows = [], []
    for s in range(0, len(coords), chunk_size):
        c = coords[s:s + chunk_size]
        pts = c[:, None, :] + off[None]
        inside = np.all((pts >= 0) & (pts < shape), axis=-1)
        flat = np.ravel_multi_index(tuple(np.clip(pts, 0, shape - 1).transpose(2, 0, 1)),
                                    mask.shape)
        in_mask = inside & flat_mask[flat]
        keep = in_mask.sum(1) >= threshold * inside.sum(1)
        member = (in_mask if truncate_at_boundary else inside)[keep]
        centers.append(np.ravel_multi_index(tuple(c[keep].T), mask.shape))
        rows.append((member, flat[keep]))
    centers = np.concatenate(centers)
    if centers.size == 0:
        raise ValueError(f"radius={radius!r}, threshold={threshold!r}: no centre of the mask "
                         "has a sphere that qualifies")
    sizes = np.concatenate([m.sum(1) for m, _ in rows])
    indices = np.concatenate([f[m] for m, f in rows])  # row by row (C order)
    indptr = np.r_[0, np.cumsum(sizes)]
    return _sorted_csr(Neighbourhoods(centers, indptr, indices, tuple(mask.shape)))


def _sorted_csr(nb):
    """Members of every centre in increasing order."""
    row = np.repeat(np.arange(len(nb)), nb.sizes)
    order = np.lexsort((nb.indices, row))
    return Neighbourhoods(nb.centers, nb.indptr, nb.indices[order], nb.shape)
