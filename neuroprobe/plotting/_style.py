"""Shared figure helpers: Figure construction without pyplot, atomic saving, RGB images."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["save_figure", "to_rgb_image"]

def _figure(n_rows, n_cols, size=2.0, squeeze=False):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(2.0, n_cols * size), max(2.0, n_rows * size)), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=squeeze)
    return fig, axes


def save_figure(fig, path, dpi=100):
    """Save ``fig`` as an image (PNG unless the suffix says otherwise), atomically.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
    dpi : int

    Returns
    -------
    pathlib.Path
    """
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from neuroprobe._utils import atomic_path

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fig.canvas is None or not hasattr(fig.canvas, "print_figure"):
        FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return path


def to_rgb_image(image):
    """An image as ``(H, W, 3)`` or ``(H, W)`` floats in [0, 1] for ``imshow``.

    Accepts ``(C, H, W)`` or ``(H, W, C)`` arrays (C = 1 or 3) and uint8 arrays; values outside
    [0, 1] are min-max rescaled.
    """
    a = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    a = a.astype(np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.size and (a.min() < 0 or a.max() > 1):
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo if hi > lo else 1.0)
    return a


def _off(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def _grid_shape(n, ncols):
    ncols = max(1, min(ncols, n))
    return int(math.ceil(n / ncols)), ncols


