"""Neighbourhoods over the columns of masked data: volumes, GIFTI surfaces, CIFTI dense files.

:func:`masker_neighbourhoods` turns a fitted :class:`~neuroprobe.transformers.BrainMasker`
into searchlights over its columns (the columns of ``masker.transform``): spheres in a volume,
geodesic discs on the mesh of each hemisphere, and for a CIFTI dense file geodesic discs on the
surface of each cortical structure plus spheres in its volume part (subcortical voxels).
:func:`line_neighbourhoods` treats plain columns as points on a line (e.g. sensors in order,
time points).
"""

from __future__ import annotations

import os

import numpy as np

from neuroprobe.searchlight.neighbourhoods import Neighbourhoods
from neuroprobe.searchlight.surface import surface_neighbourhoods
from neuroprobe.searchlight.volume import volume_neighbourhoods

__all__ = ["masker_neighbourhoods", "line_neighbourhoods", "load_mesh", "concat_neighbourhoods",
           "cifti_neighbourhoods"]


def load_mesh(mesh, name="mesh"):
    """``(coordinates, faces)`` of a mesh: a GIFTI ``.surf.gii`` path or image, a FreeSurfer
    surface file, a pair of arrays, or an object with ``coordinates`` and ``faces``
    (nilearn's ``InMemoryMesh``)."""
    import nibabel as nib

    if hasattr(mesh, "coordinates") and hasattr(mesh, "faces"):
        return np.asarray(mesh.coordinates, float), np.asarray(mesh.faces)
    if isinstance(mesh, (tuple, list)) and len(mesh) == 2 and not isinstance(
            mesh[0], (str, os.PathLike)):
        return np.asarray(mesh[0], float), np.asarray(mesh[1])
    if isinstance(mesh, (str, os.PathLike)):
        path = str(mesh)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{name}: no such mesh file {path!r}")
        if not path.endswith(".gii"):
            coords, faces = nib.freesurfer.read_geometry(path)
            return np.asarray(coords, float), np.asarray(faces)
        mesh = nib.load(path)
    if isinstance(mesh, nib.gifti.GiftiImage):
        codes = nib.nifti1.intent_codes
        pts = [d.data for d in mesh.darrays if d.intent == codes["NIFTI_INTENT_POINTSET"]]
        tri = [d.data for d in mesh.darrays if d.intent == codes["NIFTI_INTENT_TRIANGLE"]]
        if not pts or not tri:
            raise ValueError(f"{name}: the GIFTI image has no POINTSET and TRIANGLE arrays "
                             "(expected a surface mesh, e.g. lh.pial.surf.gii)")
        return np.asarray(pts[0], float), np.asarray(tri[0])
    raise TypeError(f"{name}: expected a .surf.gii / FreeSurfer surface path, a GIFTI image, a "
                    f"(coordinates, faces) pair or a mesh object; got {type(mesh).__name__}")


def concat_neighbourhoods(parts, size):
    """One table from ``(neighbourhoods, index_map)`` parts: each part's indices (centres and
    members) are mapped through its ``index_map`` into a common space of ``size`` columns."""
    centers, sizes, indices = [], [], []
    for nb, index_map in parts:
        index_map = np.asarray(index_map)
        centers.append(index_map[nb.centers])
        sizes.append(nb.sizes)
        indices.append(index_map[nb.indices])
    centers, sizes, members = (np.concatenate(centers), np.concatenate(sizes),
                               np.concatenate(indices))
    owner = np.repeat(centers, sizes)  # the centre of every entry
    order = np.argsort(centers, kind="stable")
    members = members[np.lexsort((members, owner))]
    return Neighbourhoods(centers[order], np.r_[0, np.cumsum(sizes[order])], members, (size,))


def line_neighbourhoods(n_columns, radius):
    """Columns as points on a line: members of column ``c`` are the ``c'`` with
    ``|c - c'| < radius`` (as the volume spheres: strict)."""
    if not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"radius must be > 0; got {radius!r}")
    r = int(np.ceil(radius)) - 1
    c = np.arange(n_columns)
    lo, hi = np.maximum(c - r, 0), np.minimum(c + r, n_columns - 1)
    sizes = hi - lo + 1
    indptr = np.r_[0, np.cumsum(sizes)]
    indices = np.repeat(lo - indptr[:-1], sizes) + np.arange(indptr[-1])
    return Neighbourhoods(c, indptr, indices, (n_columns,))


def _check_mesh_size(coords, n_vertices, what):
    if coords.shape[0] != n_vertices:
        raise ValueError(f"{what}: the mesh has {coords.shape[0]} vertices but the data have "
                         f"{n_vertices}; use the mesh the data were sampled on")


def _volume(mask, radius, affine, radius_unit, stride, threshold):
    return volume_neighbourhoods(mask, radius, affine=affine if radius_unit == "mm" else None,
                                 stride=stride, threshold=threshold)


_CIFTI_HEMI = {"CIFTI_STRUCTURE_CORTEX_LEFT": 0, "CIFTI_STRUCTURE_CORTEX_RIGHT": 1}


def _structure_mesh(mesh, name):
    """The mesh of CIFTI structure ``name``: ``mesh`` is a dict by structure (full or short
    name) or a pair ``(left, right)`` for the two cortices."""
    if isinstance(mesh, dict):
        for key in (name, name.replace("CIFTI_STRUCTURE_", "")):
            if key in mesh:
                return mesh[key]
    elif isinstance(mesh, (tuple, list)) and len(mesh) == 2 and name in _CIFTI_HEMI:
        return mesh[_CIFTI_HEMI[name]]
    raise ValueError(f"mesh: the CIFTI file has surface structure {name} but no mesh was given "
                     "for it (mesh=(left, right) for the cortices, or a dict by structure)")


def cifti_neighbourhoods(brain_models, radius, mesh=None, mask=None, *, radius_unit="mm",
                         stride=1, threshold=0.0):
    """Searchlights over the grayordinates of a CIFTI brain-model axis.

    Geodesic discs (``radius`` in mesh units, mm) on the mesh of each surface structure, over
    the vertices that structure holds; spheres (``radius`` in mm through the axis' affine, or in
    voxels) over the voxels of the volume part (all subcortical structures together).

    Parameters
    ----------
    brain_models : nibabel ``BrainModelAxis``
    radius : float
    mesh : pair (left, right) or dict {structure: mesh}, optional
        Meshes of the surface structures (see :func:`load_mesh`); each must have the
        structure's vertex count (``brain_models.nvertices``).
    mask : bool array of shape (n_grayordinates,), optional
        Grayordinates to use (centres and members).

    Returns
    -------
    Neighbourhoods
        Grayordinate indices.
    """
    bm = brain_models
    size = len(bm)
    keep = np.ones(size, bool) if mask is None else np.asarray(mask, bool)
    parts = []
    for name, sl, sub in bm.iter_structures():
        cols = np.arange(size)[sl]
        if not sub.surface_mask.any():
            continue
        coords, faces = load_mesh(_structure_mesh(mesh, name), f"mesh[{name}]")
        n_vert = bm.nvertices[name]
        _check_mesh_size(coords, n_vert, f"mesh[{name}]")
        vert_mask = np.zeros(n_vert, bool)
        vert_mask[sub.vertex[keep[cols]]] = True
        if not vert_mask.any():
            continue
        nb = surface_neighbourhoods(coords, faces, radius, mask=vert_mask)
        to_col = np.full(n_vert, -1, np.int64)
        to_col[sub.vertex] = cols
        parts.append((nb, to_col))
    vol = bm.volume_mask & keep
    if vol.any():
        shape = tuple(bm.volume_shape)
        flat = np.ravel_multi_index(tuple(bm.voxel[vol].T), shape)
        vmask = np.zeros(int(np.prod(shape)), bool)
        vmask[flat] = True
        nb = _volume(vmask.reshape(shape), radius, bm.affine, radius_unit, stride, threshold)
        to_col = np.full(vmask.size, -1, np.int64)
        to_col[flat] = np.flatnonzero(vol)
        parts.append((nb, to_col))
    if not parts:
        raise ValueError("mask selects no grayordinate")
    return concat_neighbourhoods(parts, size)


def masker_neighbourhoods(masker, radius, *, mesh=None, radius_unit="mm", stride=1,
                          threshold=0.0):
    """Searchlights over the columns of a fitted BrainMasker (``masker.transform``'s columns).

    Parameters
    ----------
    masker : BrainMasker
        Fitted (its ``space_`` and ``columns_`` give the geometry).
    radius : float
        mm (volumes: through the affine, or voxels with ``radius_unit="voxels"``; surfaces:
        geodesic distance in mesh units).
    mesh : optional
        GIFTI data: the mesh of the hemisphere (a pair ``(lh, rh)`` for a GIFTI pair);
        CIFTI: ``(left, right)`` cortex meshes or a dict by structure. See :func:`load_mesh`.
    radius_unit : {"mm", "voxels"}
    stride, threshold : see :func:`neuroprobe.searchlight.volume_neighbourhoods` (volumes).

    Returns
    -------
    Neighbourhoods
        Centres and members as column indices of the masked data.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(masker, "mask_")
    if getattr(masker, "summary", None):
        raise ValueError("masker: a searchlight needs voxel-wise columns; got a BrainMasker "
                         f"with summary={masker.summary!r}")
    space, columns = masker.space_, masker.columns_
    family = space["family"]
    if family == "volume":
        nb = _volume(masker.mask_, radius, space["affine"], radius_unit, stride, threshold)
        return nb.to_columns(columns)
    if family == "cifti":
        nb = cifti_neighbourhoods(space["brain_models"], radius, mesh, masker.mask_,
                                  radius_unit=radius_unit, stride=stride, threshold=threshold)
        return nb.to_columns(columns)
    if mesh is None:
        raise ValueError("mesh: surface (GIFTI) data need the mesh they were sampled on")
    sizes = space["sizes"]
    meshes = [mesh] if family == "gifti" else list(mesh) if isinstance(
        mesh, (tuple, list)) and len(mesh) == 2 and not isinstance(mesh[0], np.ndarray) else None
    if meshes is None or len(meshes) != len(sizes):
        raise ValueError(f"mesh: GIFTI data of {len(sizes)} hemisphere(s) need "
                         f"{'a pair (lh, rh) of meshes' if len(sizes) == 2 else 'one mesh'}")
    parts, offset = [], 0
    for h, (m, n) in enumerate(zip(meshes, sizes)):
        coords, faces = load_mesh(m, "mesh" if len(sizes) == 1 else f"mesh[{h}]")
        _check_mesh_size(coords, n, "mesh" if len(sizes) == 1 else f"mesh[{h}]")
        keep = masker.mask_[offset:offset + n]
        if keep.any():
            parts.append((surface_neighbourhoods(coords, faces, radius, mask=keep),
                          np.arange(offset, offset + n)))
        offset += n
    return concat_neighbourhoods(parts, space["size"]).to_columns(columns)
