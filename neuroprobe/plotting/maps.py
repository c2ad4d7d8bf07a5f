"""Brain maps: volumes on an anatomical background, surface maps on a mesh (inflated or flat),
CIFTI dense maps split into their surface and volume parts, thresholds from p-value maps, and a
2-D colour map for two-band comparisons.

nilearn (the ``plot`` extra) draws volumes (``plot_stat_map`` / ``plot_glass_brain``) and
surfaces (``plot_surf_stat_map``, fsaverage5 meshes with their flat patches ship inside it);
without it volumes fall back to plain matplotlib slices (:func:`plot_volume_slices`). nilearn
draws into a :class:`~matplotlib.figure.Figure` made here, and any pyplot figure it opens is
closed, so no pyplot state is left behind.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import warnings

import numpy as np

from neuroprobe.exceptions import BrainMapError, NeuroprobeWarning
from neuroprobe.plotting._style import FONT, attach_table, style

__all__ = ["BrainMap", "load_map", "plot_map", "two_band_colors", "plot_two_band_map",
           "nilearn_available"]

_HEMIS = ("left", "right")
_CIFTI_HEMI = {"CIFTI_STRUCTURE_CORTEX_LEFT": "left", "CIFTI_STRUCTURE_CORTEX_RIGHT": "right"}
_GIFTI_HEMI = {"cortexleft": "left", "cortexright": "right"}


def nilearn_available():
    """Whether nilearn (the ``plot`` extra) is installed."""
    return importlib.util.find_spec("nilearn") is not None


def _require_nilearn(what):
    if not nilearn_available():
        raise ImportError(f"{what} needs nilearn: pip install 'neuroprobe[plot]'")


# --------------------------------------------------------------------------- the map
class BrainMap:
    """One map in display form: a volume (3-D array + affine), surface parts (hemisphere ->
    1-D array), or both (a CIFTI dense map).

    Attributes
    ----------
    name : str
        The file or argument it came from (for messages).
    volume : ndarray (X, Y, Z) or None
    affine : ndarray (4, 4) or None
    surface : dict of str -> ndarray (n_vertices,)
        ``"left"`` / ``"right"`` hemisphere values.
    """

    def __init__(self, name, volume=None, affine=None, surface=None):
        self.name = name
        self.volume = None if volume is None else np.asarray(volume, dtype=float)
        self.affine = None if affine is None else np.asarray(affine, dtype=float)
        self.surface = {h: np.asarray(v, dtype=float) for h, v in (surface or {}).items()}

    @property
    def kind(self):
        """``"volume"``, ``"surface"`` or ``"cifti"`` (both parts)."""
        if self.volume is not None and self.surface:
            return "cifti"
        return "volume" if self.volume is not None else "surface"

    def shapes(self):
        """The shape of each part (for messages and checks)."""
        out = {} if self.volume is None else {"volume": self.volume.shape}
        out.update({h: v.shape for h, v in self.surface.items()})
        return out

    def _map(self, func):
        return BrainMap(self.name, None if self.volume is None else func(self.volume),
                        self.affine, {h: func(v) for h, v in self.surface.items()})

    def masked(self, keep):
        """A copy with NaN where ``keep`` (a BrainMap of booleans, same shapes) is False."""
        vol = None if self.volume is None else np.where(keep.volume, self.volume, np.nan)
        surf = {h: np.where(keep.surface[h], v, np.nan) for h, v in self.surface.items()}
        return BrainMap(self.name, vol, self.affine, surf)

    def finite_values(self):
        parts = ([] if self.volume is None else [self.volume.ravel()]) + [
            v for v in self.surface.values()]
        a = np.concatenate(parts) if parts else np.zeros(0)
        return a[np.isfinite(a)]


def _squeeze_volume(data, name):
    data = np.asarray(data, dtype=float)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise BrainMapError(f"{name}: a volume map must be one 3-D volume; got shape "
                            f"{data.shape} (pick one volume, e.g. nilearn.image.index_img)")
    return data


def _from_cifti(img, name):
    import nibabel as nib

    axes = [img.header.get_axis(i) for i in range(img.ndim)]
    bm = axes[-1]
    if not isinstance(bm, nib.cifti2.cifti2_axes.BrainModelAxis):
        raise BrainMapError(f"{name}: a CIFTI map must be dense (its last axis a brain-model "
                            f"axis, e.g. .dscalar.nii); got {type(bm).__name__}")
    data = np.asarray(img.get_fdata(), dtype=float)
    if data.ndim == 2:
        if data.shape[0] != 1:
            raise BrainMapError(f"{name}: a CIFTI map must hold one map; it holds "
                                f"{data.shape[0]} rows")
        data = data[0]
    surface, volume, affine = {}, None, None
    for struct, slc, model in bm.iter_structures():
        if model.surface_mask.any():  # a surface structure
            hemi = _CIFTI_HEMI.get(struct)
            if hemi is None:
                continue
            part = np.full(int(bm.nvertices[struct]), np.nan)
            part[model.vertex] = data[slc]
            surface[hemi] = part
    vox = bm.volume_mask
    if vox.any():
        volume = np.full(tuple(int(s) for s in bm.volume_shape), np.nan)
        ijk = bm.voxel[vox]
        volume[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = data[vox]
        affine = bm.affine
    return BrainMap(name, volume, affine, surface)


def _gifti_hemi(img, hemi):
    meta = {str(k).lower(): str(v).lower() for k, v in dict(img.meta).items()}
    found = _GIFTI_HEMI.get(meta.get("anatomicalstructureprimary", ""))
    return found or hemi or "left"


def _gifti_values(img, name):
    arrays = [np.asarray(d.data, dtype=float).ravel() for d in img.darrays]
    if len(arrays) != 1:
        raise BrainMapError(f"{name}: a GIFTI map must hold one data array; it holds "
                            f"{len(arrays)}")
    return arrays[0]


def _from_image(img, name, hemi=None):
    from neuroprobe.io import images as nio

    fmt = nio.image_format(img)
    if fmt == "cifti":
        return _from_cifti(img, name)
    if fmt == "gifti":
        return BrainMap(name, surface={_gifti_hemi(img, hemi): _gifti_values(img, name)})
    return BrainMap(name, _squeeze_volume(img.get_fdata(), name), img.affine)


def _is_path(x):
    return isinstance(x, (str, os.PathLike))


def load_map(img_or_array, masker=None, *, what="map", hemi=None):
    """A map in display form from a file, a nibabel image, a GIFTI pair, or an array.

    Parameters
    ----------
    img_or_array : path, nibabel image, tuple (lh, rh), or ndarray
        A NIfTI / MGH volume, a GIFTI hemisphere (or a pair), a CIFTI dense map; or values:
        with ``masker``, one per masker feature (put back with ``inverse_transform``); without,
        a 3-D volume (voxel grid, identity affine) or 1-D surface values (one hemisphere, or
        both hemispheres concatenated left then right).
    masker : fitted BrainMasker, optional
    what : str
        The argument's name in messages (``"map"``, ``"pvalues"``).
    hemi : {"left", "right"}, optional
        The hemisphere of a single GIFTI file without that metadata, or of 1-D values.

    Returns
    -------
    BrainMap
    """
    x = img_or_array
    if isinstance(x, BrainMap):
        return x
    if isinstance(x, tuple) and len(x) == 2 and not isinstance(x[0], (int, np.integer)):
        parts = [load_map(p, what=what) for p in x]
        if any(p.kind != "surface" or len(p.surface) != 1 for p in parts):
            raise BrainMapError(f"{what}: a pair must be two surface maps (left, right "
                                "hemisphere GIFTI files or 1-D arrays)")
        return BrainMap(f"({parts[0].name}, {parts[1].name})",
                        surface={"left": next(iter(parts[0].surface.values())),
                                 "right": next(iter(parts[1].surface.values()))})
    if _is_path(x) or hasattr(x, "dataobj") or hasattr(x, "darrays"):
        from neuroprobe.io import images as nio

        name = nio.image_name(x) if not _is_path(x) else str(x)
        try:
            img = nio.load_image(x)
        except FileNotFoundError:
            raise FileNotFoundError(f"{what} {name!r}: no such file") from None
        if masker is not None:
            _check_image_masker(img, masker, name, what)
        return _from_image(img, name, hemi)
    a = np.asarray(x, dtype=float)
    name = f"{what} (array of shape {a.shape})"
    if masker is not None:
        return _from_masker(a, masker, what, hemi)
    if a.ndim == 3 or (a.ndim == 4 and a.shape[-1] == 1):
        return BrainMap(name, _squeeze_volume(a, name), np.eye(4))
    if a.ndim == 1:
        return BrainMap(name, surface={hemi or "both": a})
    raise BrainMapError(
        f"{name} matches no masker: give the BrainMasker that produced the values (masker=), "
        "a 3-D volume, 1-D surface values, or an image file")


def _from_masker(a, masker, what, hemi):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(masker, "mask_")
    n = int(masker.n_features_out_)
    if a.ndim != 1 or a.shape[0] != n:
        raise BrainMapError(
            f"{what} of shape {a.shape} matches no masker: the masker expects {n} values "
            f"({masker.format_} space with {int(masker.n_voxels_)} voxels"
            f"{', ' + str(len(masker.regions_)) + ' regions' if masker.summary else ''}); "
            "give the masker that produced the map")
    img = masker.inverse_transform(a, fill=np.nan)
    name = f"{what} (masker {masker.format_} values)"
    if isinstance(img, tuple):
        return BrainMap(name, surface={"left": _gifti_values(img[0], name),
                                       "right": _gifti_values(img[1], name)})
    return _from_image(img, name, hemi)


def _check_image_masker(img, masker, name, what):
    shape = tuple(int(s) for s in getattr(img, "shape", ())[:3])
    expected = masker.space_.get("shape")
    if expected is not None and shape != tuple(expected):
        raise BrainMapError(f"{what} {name}: volume of shape {shape} matches no masker: the "
                            f"masker's space is {tuple(expected)}")


def _check_same(ref, other, what="pvalues", expected="a p-value per voxel / vertex of the map"):
    a, b = ref.shapes(), other.shapes()
    if a != b:
        raise BrainMapError(
            f"{what} {other.name} has shape {_fmt_shapes(b)} but the map {ref.name} has "
            f"shape {_fmt_shapes(a)}; expected {expected}")
    if ref.volume is not None and not np.allclose(ref.affine, other.affine, atol=1e-4):
        raise BrainMapError(
            f"{what} {other.name} is on another voxel grid than the map {ref.name} (affines "
            f"differ: {np.round(other.affine, 3).tolist()} vs {np.round(ref.affine, 3).tolist()});"
            f" expected {expected} in the same space")


def _fmt_shapes(shapes):
    if list(shapes) == ["volume"]:
        return str(shapes["volume"])
    return ", ".join(f"{k} {v}" for k, v in shapes.items())


def _threshold(m, pvalues, alpha):
    if pvalues is None:
        return m
    if not 0 < float(alpha) <= 1:
        raise BrainMapError(f"alpha must be in (0, 1], got {alpha}")
    _check_same(m, pvalues)
    keep = pvalues._map(lambda p: np.nan_to_num(p, nan=np.inf) < alpha)
    return m.masked(keep)


# --------------------------------------------------------------------------- meshes
def _load_mesh(mesh):
    """{"surfaces": {name: mesh}, "bg": sulcal map or None, "n": {hemi: n_vertices}, "name"}."""
    _require_nilearn("drawing a surface map")
    from nilearn import datasets, surface

    if isinstance(mesh, dict):
        parts = {h: surface.load_surf_mesh(m) for h, m in mesh.items()}
        return {"name": "the given mesh", "surfaces": {"given": parts}, "bg": None,
                "n": {h: int(p.coordinates.shape[0]) for h, p in parts.items()}}
    try:
        fs = datasets.load_fsaverage(str(mesh))
        bg = datasets.load_fsaverage_data(str(mesh), data_type="sulcal")
    except Exception as exc:  # noqa: BLE001 - nilearn fetchers raise many types offline
        raise BrainMapError(f"mesh {mesh!r} cannot be loaded ({type(exc).__name__}: {exc}); "
                            "fsaverage5 ships with nilearn (--mesh fsaverage5)") from None
    surfaces = {k: fs[k] for k in ("pial", "white_matter", "inflated", "sphere", "flat")
                if k in fs}
    return {"name": str(mesh), "surfaces": surfaces, "bg": bg,
            "n": {h: int(surfaces["pial"].parts[h].n_vertices) for h in _HEMIS}}


def _fit_surface(m, mesh_info, hemi):
    """Split a 1-D "both" part and check every hemisphere's vertex count against the mesh."""
    n = mesh_info["n"]
    surf = dict(m.surface)
    if "both" in surf:
        v = surf.pop("both")
        total = sum(n.values())
        if len(v) == total and len(n) == 2:
            surf["left"], surf["right"] = v[:n["left"]], v[n["left"]:]
        elif len(v) in n.values():
            surf[hemi or next(h for h in n if n[h] == len(v))] = v
        else:
            raise BrainMapError(
                f"{m.name} matches no masker and no mesh: {len(v)} values, but mesh "
                f"{mesh_info['name']} has {_mesh_counts(n)} vertices; give masker= (the "
                "BrainMasker of the map) or the mesh the map is on")
    for h, v in surf.items():
        if h not in n:
            raise BrainMapError(f"{m.name}: mesh {mesh_info['name']} has no {h} hemisphere")
        if len(v) != n[h]:
            raise BrainMapError(
                f"{m.name}: the {h} hemisphere has {len(v)} vertices but mesh "
                f"{mesh_info['name']} has {n[h]} ({_mesh_counts(n)}); give the mesh the map "
                "is on (mesh=, --mesh)")
    return BrainMap(m.name, m.volume, m.affine, surf)


def _mesh_counts(n):
    return ", ".join(f"{h} {k}" for h, k in n.items())


# --------------------------------------------------------------------------- drawing
@contextlib.contextmanager
def _no_pyplot_leftovers():
    """Close any pyplot figure opened inside the block (nilearn may open one)."""
    import sys

    before = set()
    if "matplotlib.pyplot" in sys.modules:
        before = set(sys.modules["matplotlib.pyplot"].get_fignums())
    try:
        yield
    finally:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)


def _peak(volume):
    finite = np.where(np.isfinite(volume), np.abs(volume), -np.inf)
    if not np.isfinite(finite).any() or finite.max() <= 0:
        return None
    return np.unravel_index(int(np.argmax(finite)), volume.shape)


def _volume_table(m):
    data = m.volume
    ijk = np.argwhere(np.isfinite(data) & (data != 0))
    xyz = ijk @ m.affine[:3, :3].T + m.affine[:3, 3] if len(ijk) else np.zeros((0, 3))
    return {"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2], "x": xyz[:, 0], "y": xyz[:, 1],
            "z": xyz[:, 2], "value": data[tuple(ijk.T)]}


def _surface_table(m):
    hemis, verts, vals = [], [], []
    for h, v in m.surface.items():
        idx = np.flatnonzero(np.isfinite(v) & (v != 0))
        hemis += [h] * len(idx)
        verts.append(idx)
        vals.append(v[idx])
    return {"hemi": np.asarray(hemis, dtype=str),
            "vertex": np.concatenate(verts) if verts else np.zeros(0, int),
            "value": np.concatenate(vals) if vals else np.zeros(0)}


def _default_cmap(values):
    return "RdBu_r" if values.size and values.min() < 0 else "hot"


@functools.lru_cache(maxsize=1)
def _mni_template():
    from nilearn.datasets import load_mni152_template

    return load_mni152_template(resolution=2)


def _bg_volume(bg_img):
    if bg_img is None or bg_img is False:
        return None
    if isinstance(bg_img, str) and bg_img.upper() in ("MNI152", "MNI"):
        return _mni_template()
    return bg_img


def _draw_volume_nilearn(fig, m, *, kind, bg_img, threshold, cmap, vmax, cut_coords, title,
                         axes=None, colorbar=True):
    import nibabel as nib
    from nilearn import plotting as nplot

    data = np.nan_to_num(m.volume, nan=0.0).astype(np.float32)
    img = nib.Nifti1Image(data, m.affine)
    peak = _peak(m.volume)
    if cut_coords is None and peak is not None:
        cut_coords = tuple(float(c) for c in nib.affines.apply_affine(m.affine, peak))
    thr = 1e-6 if threshold is None else float(threshold)
    common = dict(figure=fig, axes=axes, threshold=thr, cmap=cmap, vmax=vmax, title=title,
                  colorbar=colorbar)
    empty = peak is None
    with _no_pyplot_leftovers(), warnings.catch_warnings():
        if empty:  # already said once by plot_map; nilearn repeats it in its own words
            warnings.simplefilter("ignore", UserWarning)
        if kind == "glass":
            display = nplot.plot_glass_brain(img, plot_abs=False, **common)
        else:
            display = nplot.plot_stat_map(img, bg_img=_bg_volume(bg_img), cut_coords=cut_coords,
                                          display_mode="ortho", **common)
    return {"cut_coords": None if cut_coords is None else tuple(cut_coords),
            "peak_index": None if peak is None else tuple(int(i) for i in peak),
            "display": display}


def _draw_volume_slices(m, *, cmap, vmax, title, axis=2):
    from neuroprobe.plotting.volume import plot_volume_slices

    peak = _peak(m.volume)
    data = m.volume
    if peak is None:
        slices = [data.shape[axis] // 2]
    else:
        other = tuple(a for a in range(3) if a != axis)
        pool = np.flatnonzero(np.any(np.isfinite(data) & (data != 0), axis=other))
        picks = pool[np.linspace(0, len(pool) - 1, min(5, len(pool))).round().astype(int)]
        slices = sorted(set(picks.tolist()) | {int(peak[axis])})
    values = m.finite_values()
    vmin = -vmax if values.size and values.min() < 0 else 0.0
    fig = plot_volume_slices(data, axis=axis, slices=slices, cmap=cmap, vmin=vmin, vmax=vmax,
                             title=title)
    for ax in fig.axes:
        if ax.images and ax.get_label() != "<colorbar>":
            ax.set_facecolor("0.25")  # hidden (NaN) voxels: dark grey
            for spine in ax.spines.values():
                spine.set_visible(False)
    return fig, {"slices": slices, "axis": axis,
                 "peak_index": None if peak is None else tuple(int(i) for i in peak)}


_VIEWS = {"lateral": {"left": "lateral", "right": "lateral"},
          "medial": {"left": "medial", "right": "medial"}}


def _draw_surfaces(fig, m, mesh_info, *, surface, views, threshold, cmap, vmax, title,
                   with_volume=False):
    from nilearn import plotting as nplot

    hemis = [h for h in _HEMIS if h in m.surface]
    flat = surface == "flat"
    views = ["flat"] if flat else list(views)
    surfaces = mesh_info["surfaces"]
    name = "given" if "given" in surfaces else surface
    if name not in surfaces:
        raise BrainMapError(f"surface {surface!r} is not in mesh {mesh_info['name']}; expected "
                            f"one of {sorted(surfaces)}")
    ncols = len(hemis) * len(views)
    thr = 1e-6 if threshold is None else float(threshold)
    panels = []
    gs = fig.add_gridspec(2 if with_volume else 1, ncols,
                          height_ratios=[1.0, 1.2] if with_volume else None)
    with _no_pyplot_leftovers():
        k = 0
        for h in hemis:
            mesh = surfaces[name] if name != "given" else surfaces["given"][h]
            for view in views:
                ax = fig.add_subplot(gs[0, k], projection="3d")
                nplot.plot_surf_stat_map(
                    mesh, np.nan_to_num(m.surface[h], nan=0.0), hemi=h,
                    bg_map=mesh_info["bg"] if not flat else None,
                    view=(90.0, 270.0) if flat else view, axes=ax, figure=fig, threshold=thr,
                    cmap=cmap, vmax=vmax, colorbar=(k == ncols - 1), title=f"{h} {view}",
                    )
                panels.append((h, view))
                k += 1
    if title:
        fig.suptitle(title, fontsize=FONT["title"])
    return {"panels": panels, "gridspec": gs}


def plot_map(img_or_array, masker=None, *, pvalues=None, alpha=0.05, kind="auto",
             engine="auto", mesh="fsaverage5", surface="inflated", views=("lateral", "medial"),
             bg_img="MNI152", threshold=None, cmap=None, vmax=None, cut_coords=None, hemi=None,
             title=None):
    """Draw a brain map: a volume on an anatomical background, a surface map on a mesh, or a
    CIFTI dense map (surface and volume parts).

    Parameters
    ----------
    img_or_array : path, nibabel image, tuple (lh, rh) or ndarray
        A NIfTI / MGH volume, GIFTI hemisphere(s), CIFTI ``.dscalar.nii``; or the values of a
        :class:`~neuroprobe.transformers.BrainMasker` (``masker=``, put back into its space
        first), a 3-D array (voxel grid) or 1-D surface values (see :func:`load_map`).
    masker : fitted BrainMasker, optional
    pvalues : same kind as the map, optional
        A p-value per voxel / vertex (e.g. FWE-corrected); only voxels with ``p < alpha`` are
        shown (NaN p-values are hidden).
    alpha : float, default=0.05
    kind : {"auto", "stat", "glass", "slices", "surface", "flat"}
        Volume: ``"stat"`` (ortho cuts on the background), ``"glass"`` (glass brain),
        ``"slices"`` (plain matplotlib axial slices); surface: ``"surface"`` (``surface``
        mesh, ``views``) or ``"flat"`` (the mesh's flat patches). ``"auto"``: stat (or slices
        without nilearn) for volumes, surface for surface maps.
    engine : {"auto", "nilearn", "matplotlib"}
        ``"matplotlib"`` forces the plain fallback for volumes.
    mesh : str or dict, default="fsaverage5"
        A nilearn fsaverage name, or ``{"left": mesh, "right": mesh}`` (GIFTI surface files or
        ``(coordinates, faces)``).
    surface : str, default="inflated"
        ``"pial"``, ``"white_matter"``, ``"inflated"``, ``"sphere"`` or ``"flat"``.
    views : sequence of str, default=("lateral", "medial")
    bg_img : "MNI152", path, image or None
        Anatomical background of volume maps (nilearn).
    threshold : float, optional
        Values with ``|value| <= threshold`` are hidden (nilearn).
    cmap : str, optional
        Default: ``"hot"`` for non-negative maps, ``"RdBu_r"`` otherwise.
    vmax : float, optional
        Default: the largest absolute shown value.
    cut_coords : (x, y, z), optional
        World coordinates of the cuts; default: the peak voxel.
    hemi : {"left", "right"}, optional
        Hemisphere of a single surface map without that metadata.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        ``figure_table(fig)``: the shown voxels / vertices (indices, world coordinates, value);
        ``fig.neuroprobe_map``: where it was drawn (``cut_coords``, ``peak_index``, ``slices``).

    Raises
    ------
    BrainMapError
        A map whose shape matches no masker or mesh, a p-value map of another shape.
    """
    from matplotlib.figure import Figure

    kinds = ("auto", "stat", "glass", "slices", "surface", "flat")
    if kind not in kinds:
        raise BrainMapError(f"kind must be one of {kinds}, got {kind!r}")
    if engine not in ("auto", "nilearn", "matplotlib"):
        raise BrainMapError(f"engine must be 'auto', 'nilearn' or 'matplotlib', got {engine!r}")
    if engine == "nilearn":
        _require_nilearn("engine='nilearn'")
    m = load_map(img_or_array, masker, what="map", hemi=hemi)
    p = None if pvalues is None else load_map(pvalues, masker, what="pvalues", hemi=hemi)
    use_nilearn = engine == "nilearn" or (engine == "auto" and nilearn_available())
    mesh_info = None
    if m.surface:
        mesh_info = _load_mesh(mesh)
        m = _fit_surface(m, mesh_info, hemi)
        if p is not None:
            p = _fit_surface(p, mesh_info, hemi)
    shown = _threshold(m, p, alpha)
    values = shown.finite_values()
    if not np.any(values != 0):
        why = f"no voxel / vertex has p < {alpha:g}" if p is not None else "every value is 0"
        warnings.warn(f"{m.name}: {why}; the map is drawn empty", NeuroprobeWarning,
                      stacklevel=2)
        if cut_coords is None and shown.volume is not None:
            cut_coords = (0.0, 0.0, 0.0)
    cmap = cmap or _default_cmap(m.finite_values())
    if vmax is None:
        vmax = float(np.abs(values).max()) if values.size and np.abs(values).max() > 0 else 1.0
    info = {}
    if shown.kind == "volume":
        table = _volume_table(shown)
        if kind in ("surface", "flat"):
            raise BrainMapError(f"kind={kind!r} needs a surface map; {m.name} is a volume")
        if kind == "slices" or not use_nilearn:
            with style():
                fig, info = _draw_volume_slices(shown, cmap=cmap, vmax=vmax, title=title)
        else:
            fig = Figure(figsize=(7.5, 2.8) if kind != "glass" else (8.0, 2.8))
            info = _draw_volume_nilearn(fig, shown, kind=kind, bg_img=bg_img,
                                        threshold=threshold, cmap=cmap, vmax=vmax,
                                        cut_coords=cut_coords, title=title)
    else:
        if kind in ("stat", "glass", "slices") and shown.kind == "surface":
            raise BrainMapError(f"kind={kind!r} needs a volume map; {m.name} is a surface map")
        surf = "flat" if kind == "flat" else surface
        n_views = 1 if surf == "flat" else len(views)
        ncols = len(shown.surface) * n_views
        height = 2.8 if shown.kind == "surface" else 5.6
        fig = Figure(figsize=(max(3.5, 2.6 * ncols), height))
        info = _draw_surfaces(fig, shown, mesh_info, surface=surf, views=views,
                              threshold=threshold, cmap=cmap, vmax=vmax, title=title,
                              with_volume=shown.kind == "cifti")
        table = _surface_table(shown)
        if shown.kind == "cifti":
            ax = fig.add_subplot(info["gridspec"][1, :])
            ax.set_axis_off()
            vol = BrainMap(shown.name, shown.volume, shown.affine)
            info.update(_draw_volume_nilearn(fig, vol, kind="stat" if kind == "auto" else
                                             ("glass" if kind == "glass" else "stat"),
                                             bg_img=bg_img, threshold=threshold, cmap=cmap,
                                             vmax=vmax, cut_coords=cut_coords, title=None,
                                             axes=ax, colorbar=False))
            table = _cifti_table(shown)
    info.pop("gridspec", None)
    fig.neuroprobe_map = info
    return attach_table(fig, table)


def _cifti_table(m):
    s = _surface_table(BrainMap(m.name, surface=m.surface))
    v = _volume_table(BrainMap(m.name, m.volume, m.affine))
    ns, nv = len(s["value"]), len(v["value"])
    out = {"part": np.r_[s["hemi"], np.full(nv, "volume")],
           "vertex": np.r_[s["vertex"], np.full(nv, -1)]}
    for key in ("i", "j", "k"):
        out[key] = np.r_[np.full(ns, -1), v[key]]
    for key in ("x", "y", "z"):
        out[key] = np.r_[np.full(ns, np.nan), v[key]]
    out["value"] = np.r_[s["value"], v["value"]]
    return out


# --------------------------------------------------------------------------- two bands
def two_band_colors(score_a, score_b, *, vmax=None):
    """RGBA colours of a 2-D colour map: which of two bands (layers) explains a voxel better.

    ``a`` alone is red, ``b`` alone blue, both equally purple to white, neither black; NaN is
    transparent. Scores below 0 count as 0; both are scaled by ``vmax`` (default: the largest
    finite score of either).

    Parameters
    ----------
    score_a, score_b : arrays of the same shape
    vmax : float, optional

    Returns
    -------
    ndarray (..., 4) of float in [0, 1]
    """
    a = np.asarray(score_a, dtype=float)
    b = np.asarray(score_b, dtype=float)
    if a.shape != b.shape:
        raise BrainMapError(f"score_a has shape {a.shape} but score_b has shape {b.shape}; "
                            "expected two maps of the same voxels")
    finite = np.isfinite(a) & np.isfinite(b)
    if vmax is None:
        both = np.concatenate([a[finite], b[finite]])
        vmax = float(both.max()) if both.size and both.max() > 0 else 1.0
    na = np.clip(np.where(finite, a, 0.0) / vmax, 0.0, 1.0)
    nb = np.clip(np.where(finite, b, 0.0) / vmax, 0.0, 1.0)
    rgba = np.stack([na, 0.85 * np.minimum(na, nb), nb, finite.astype(float)], axis=-1)
    return rgba


def _legend_square(ax, labels, n=64):
    grid = np.linspace(0.0, 1.0, n)
    aa, bb = np.meshgrid(grid, grid)
    ax.imshow(two_band_colors(aa, bb, vmax=1.0), origin="lower", extent=(0, 1, 0, 1))
    ax.set_xlabel(labels[0], fontsize=FONT["small"])
    ax.set_ylabel(labels[1], fontsize=FONT["small"])
    ax.set_xticks([0, 1])
    ax.set_yticks([0, 1])
    ax.tick_params(labelsize=FONT["small"])
    ax.set_gid("two-band-legend")


def plot_two_band_map(score_a, score_b, masker=None, *, labels=("band a", "band b"), vmax=None,
                      mesh="fsaverage5", axis=2, slices=None, hemi=None, title=None):
    """Map of two scores per voxel in one 2-D colour map (:func:`two_band_colors`).

    Volumes are drawn as slices (plain matplotlib), surface maps on the flat patches of the
    mesh (nilearn's fsaverage meshes), with the colour square as legend.

    Parameters
    ----------
    score_a, score_b : maps as :func:`plot_map` takes (same space)
    masker : fitted BrainMasker, optional
    labels : (str, str)
        Names of the two bands (layers).
    vmax : float, optional
    mesh : str or dict, default="fsaverage5"
    axis : int, default=2
        Slicing axis of volumes.
    slices : list of int, optional
        Default: through the peak of ``max(a, b)`` and up to 4 other slices with values.
    hemi : {"left", "right"}, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    a = load_map(score_a, masker, what="score_a", hemi=hemi)
    b = load_map(score_b, masker, what="score_b", hemi=hemi)
    mesh_info = None
    if a.surface:
        mesh_info = _load_mesh(mesh)
        a, b = _fit_surface(a, mesh_info, hemi), _fit_surface(b, mesh_info, hemi)
    _check_same(a, b, "score_b", "a second score per voxel / vertex of score_a")
    if a.kind == "cifti":
        raise BrainMapError("plot_two_band_map: CIFTI maps are not supported; draw the surface "
                            "and volume parts separately")
    with style():
        if a.kind == "volume":
            both = np.fmax(a.volume, b.volume)
            if slices is None:
                peak = _peak(np.where(np.isfinite(both), both, 0.0))
                other = tuple(k for k in range(3) if k != axis)
                pool = np.flatnonzero(np.any(np.isfinite(both) & (both != 0), axis=other))
                picks = set() if not len(pool) else set(
                    pool[np.linspace(0, len(pool) - 1, min(4, len(pool))).round().astype(int)]
                    .tolist())
                slices = sorted(picks | ({int(peak[axis])} if peak is not None else set()))
                slices = slices or [a.volume.shape[axis] // 2]
            rgba = two_band_colors(a.volume, b.volume, vmax=vmax)
            fig = Figure(figsize=(2.2 * len(slices) + 1.6, 2.5), layout="constrained")
            axes = fig.subplots(1, len(slices) + 1, squeeze=False)[0]
            for ax, s in zip(axes, slices):
                ax.imshow(np.swapaxes(np.take(rgba, s, axis=axis), 0, 1), origin="lower",
                          interpolation="nearest")
                ax.set_facecolor("0.3")
                ax.set_title(f"slice {s}", fontsize=FONT["small"])
                ax.set_xticks([])
                ax.set_yticks([])
            _legend_square(axes[-1], labels)
            fig.neuroprobe_map = {"slices": slices, "axis": axis}
            table = _volume_table(BrainMap(a.name, np.where(np.isfinite(b.volume), a.volume,
                                                            np.nan), a.affine))
            ijk = (table["i"], table["j"], table["k"])
            table = {**{k: table[k] for k in ("i", "j", "k", "x", "y", "z")},
                     labels[0]: a.volume[ijk], labels[1]: b.volume[ijk]}
        else:
            flat = mesh_info["surfaces"].get("flat")
            if flat is None:
                raise BrainMapError(f"mesh {mesh_info['name']} has no flat patches; use a "
                                    "nilearn fsaverage mesh")
            hemis = [h for h in _HEMIS if h in a.surface]
            fig = Figure(figsize=(3.2 * len(hemis) + 1.6, 3.0), layout="constrained")
            axes = fig.subplots(1, len(hemis) + 1, squeeze=False,
                                width_ratios=[3] * len(hemis) + [1])[0]
            for ax, h in zip(axes, hemis):
                part = flat.parts[h]
                xy, faces = np.asarray(part.coordinates)[:, :2], np.asarray(part.faces)
                colors = two_band_colors(a.surface[h], b.surface[h], vmax=vmax)
                face = colors[faces].mean(axis=1)
                face[:, 3] = 1.0
                face[~np.all(colors[faces][..., 3] > 0, axis=1)] = (0.75, 0.75, 0.75, 1.0)
                ax.add_collection(PolyCollection(xy[faces], facecolors=face, edgecolors="none",
                                                 gid=f"flat-{h}"))
                ax.autoscale_view()
                ax.set_aspect("equal")
                ax.set_axis_off()
                ax.set_title(h, fontsize=FONT["small"])
            _legend_square(axes[-1], labels)
            fig.neuroprobe_map = {"panels": [(h, "flat") for h in hemis]}
            hemi_col, vert, va, vb = [], [], [], []
            for h in hemis:
                idx = np.flatnonzero(np.isfinite(a.surface[h]) & np.isfinite(b.surface[h]))
                hemi_col += [h] * len(idx)
                vert.append(idx)
                va.append(a.surface[h][idx])
                vb.append(b.surface[h][idx])
            table = {"hemi": np.asarray(hemi_col, str), "vertex": np.concatenate(vert),
                     labels[0]: np.concatenate(va), labels[1]: np.concatenate(vb)}
    if title:
        fig.suptitle(title, fontsize=FONT["title"])
    fig.set_facecolor("white")
    return attach_table(fig, table)
