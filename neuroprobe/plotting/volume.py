"""Brain volumes as slices (plain matplotlib)."""

from __future__ import annotations

import numpy as np

from neuroprobe.plotting._style import style

__all__ = ["plot_volume_slices"]


def plot_volume_slices(image, *, axis=2, slices=None, outline=None, cmap="hot", vmin=None,
                       vmax=None, title=None, colorbar_label=None, ncols=None):
    """Slices of a 3-D map, e.g. per-voxel encoding accuracy from ``BrainMasker.inverse_transform``.

    Parameters
    ----------
    image : nibabel image or ndarray (X, Y, Z)
    axis : int
        Slicing axis (2: axial for RAS volumes).
    slices : list of int, optional
        Slice indices (default: every slice with a non-zero value, at most 6, evenly spaced).
    outline : ndarray of bool (X, Y, Z), optional
        A region drawn as a contour (e.g. the significant voxels).
    cmap : str
    vmin, vmax : float, optional
    title, colorbar_label : str, optional
    ncols : int, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    data = np.asarray(image.get_fdata() if hasattr(image, "get_fdata") else image, dtype=float)
    if data.ndim != 3:
        raise ValueError(f"image must be 3-D, got shape {data.shape}")
    if slices is None:
        other = tuple(a for a in range(3) if a != axis)
        nonzero = np.flatnonzero(np.any(data != 0, axis=other))
        pool = nonzero if nonzero.size else np.arange(data.shape[axis])
        slices = sorted(set(pool[np.linspace(0, len(pool) - 1, min(6, len(pool))).round()
                                 .astype(int)].tolist()))
    slices = [int(s) for s in slices]
    vmin = np.nanmin(data) if vmin is None else vmin
    vmax = np.nanmax(data) if vmax is None else vmax
    ncols = ncols or len(slices)
    nrows = int(np.ceil(len(slices) / ncols))
    with style():
        fig = Figure(figsize=(2.2 * ncols + 0.8, 2.3 * nrows + 0.3), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
    im = None
    for ax in axes.ravel()[len(slices):]:
        ax.axis("off")
    for ax, s in zip(axes.ravel(), slices):
        plane = np.take(data, s, axis=axis).T
        im = ax.imshow(plane, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax,
                       interpolation="nearest")
        if outline is not None:
            contour = np.take(np.asarray(outline, dtype=float), s, axis=axis).T
            if contour.any() and not contour.all():
                ax.contour(contour, levels=[0.5], colors="cyan", linewidths=1.0)
        ax.set_title(f"slice {s}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    if im is not None:
        bar = fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8)
        if colorbar_label:
            bar.set_label(colorbar_label)
    if title:
        fig.suptitle(title)
    return fig
