"""Shared figure helpers: one style (colours, fonts), Figure construction without pyplot, atomic
saving (PNG at 300 dpi, SVG / PDF by suffix, the plotted numbers as CSV beside), RGB images."""

from __future__ import annotations

import contextlib
import math

import numpy as np

__all__ = [
    "COLORS",
    "PALETTE",
    "FONT",
    "STYLE",
    "apply_style",
    "style",
    "new_figure",
    "save_figure",
    "save_figure_with_data",
    "figure_table",
    "attach_table",
    "to_rgb_image",
]

#: Named colours of every figure (colour-blind safe, Okabe-Ito based).
COLORS = {
    "main": "#3b6ea5",       # the one series of a figure
    "highlight": "#d1495b",  # the planted / best layer, significant voxels
    "accent": "#f2c14e",     # highlighted spans
    "ceiling": "0.6",        # noise-ceiling band
    "chance": "0.5",         # chance lines
    "grid": "0.85",
    "text": "0.15",
}
#: Colours of several series, in order (Okabe-Ito).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
#: Font sizes (points) of every figure.
FONT = {"family": "DejaVu Sans", "size": 9, "title": 10, "label": 9, "tick": 8, "legend": 8,
        "small": 7}
#: The matplotlib rcParams of :func:`style` (plus a colour cycle of :data:`PALETTE`).
STYLE = {
    "font.family": FONT["family"],
    "font.size": FONT["size"],
    "axes.titlesize": FONT["title"],
    "axes.labelsize": FONT["label"],
    "xtick.labelsize": FONT["tick"],
    "ytick.labelsize": FONT["tick"],
    "legend.fontsize": FONT["legend"],
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",   # text stays text in SVG
    "pdf.fonttype": 42,       # TrueType in PDF (editable in Illustrator)
}

#: Default resolution of raster images.
PNG_DPI = 300


def _rc():
    from matplotlib import cycler

    rc = dict(STYLE)
    rc["axes.prop_cycle"] = cycler(color=PALETTE)
    return rc


@contextlib.contextmanager
def style():
    """Context in which new figures and axes get neuroprobe's style (``matplotlib.rc_context``).

    Examples
    --------
    >>> with style():                                    # doctest: +SKIP
    ...     fig = Figure(); ax = fig.subplots(); ax.plot([0, 1])
    """
    import matplotlib

    with matplotlib.rc_context(_rc()):
        yield


def apply_style(fig):
    """Give an existing figure neuroprobe's style: fonts of titles, labels, ticks, legends;
    top and right spines hidden. Returns ``fig``."""
    for ax in fig.axes:
        if ax.name != "rectilinear" or not ax.get_visible():
            continue
        ax.title.set_fontsize(FONT["title"])
        ax.xaxis.label.set_fontsize(FONT["label"])
        ax.yaxis.label.set_fontsize(FONT["label"])
        ax.tick_params(labelsize=FONT["tick"])
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        legend = ax.get_legend()
        if legend is not None:
            for text in legend.get_texts():
                text.set_fontsize(FONT["legend"])
            legend.set_frame_on(False)
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None:
        suptitle.set_fontsize(FONT["title"] + 1)
    return fig


def new_figure(figsize=(4.0, 3.2), *, nrows=1, ncols=1, squeeze=True, **kwargs):
    """A styled ``Figure`` (no pyplot) and its axes (``Figure.subplots`` arguments)."""
    from matplotlib.figure import Figure

    with style():
        fig = Figure(figsize=figsize, layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=squeeze, **kwargs)
    return fig, axes


def _figure(n_rows, n_cols, size=2.0, squeeze=False):
    from matplotlib.figure import Figure

    with style():
        fig = Figure(figsize=(max(2.0, n_cols * size), max(2.0, n_rows * size)),
                     layout="constrained")
        axes = fig.subplots(n_rows, n_cols, squeeze=squeeze)
    return fig, axes


_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "tif", "tiff", "eps", "ps", "webp")


def save_figure(fig, path, dpi=None):
    """Save ``fig`` atomically: PNG (300 dpi) unless the suffix says SVG, PDF, ...

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
        ``.png`` (default when there is no suffix), ``.svg``, ``.pdf`` (vector formats keep
        text as text), or another format matplotlib writes.
    dpi : int, optional
        Resolution of raster formats (default 300).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        For a suffix matplotlib cannot write.
    """
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from neuroprobe._utils import atomic_path

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in _FORMATS:
        raise ValueError(f"save_figure({str(path)!r}): unknown image format {fmt!r}; expected "
                         f"one of {', '.join('.' + f for f in _FORMATS)}")
    if fig.canvas is None or not hasattr(fig.canvas, "print_figure"):
        FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=PNG_DPI if dpi is None else dpi)
    return path


def _table_rows(table):
    """``table`` (mapping of equal-length columns, DataFrame, or list of dict rows) as
    (rows, fields) for :func:`neuroprobe.io.arrays.write_table`."""
    if hasattr(table, "to_csv"):
        return table, None
    if isinstance(table, dict):
        fields = [str(k) for k in table]
        cols = [np.atleast_1d(np.asarray(v)) for v in table.values()]
        lengths = {len(c) for c in cols}
        if len(lengths) > 1:
            sizes = {k: len(c) for k, c in zip(fields, cols)}
            raise ValueError(f"save_figure_with_data: the table's columns have different "
                             f"lengths {sizes}; expected one length")
        n = lengths.pop() if lengths else 0
        return [[c[i].item() if hasattr(c[i], "item") else c[i] for c in cols]
                for i in range(n)], fields
    return list(table), None


_TABLE_ATTR = "neuroprobe_table"


def attach_table(fig, table):
    """Store the numbers a figure function plotted on the figure (read by :func:`figure_table`
    and :func:`save_figure_with_data`). Returns ``fig``."""
    setattr(fig, _TABLE_ATTR, table)
    return fig


def figure_table(fig):
    """The numbers a neuroprobe figure function plotted (dict of columns), or None."""
    return getattr(fig, _TABLE_ATTR, None)


def save_figure_with_data(fig, path, table=None, *, dpi=None, formats=None):
    """Save ``fig`` and the numbers it plots as a CSV beside it (same stem, ``.csv``).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
        The image (``.png``, ``.svg``, ``.pdf``); the table goes to ``path.with_suffix(".csv")``.
    table : dict of str -> 1-D array, pandas DataFrame, or list of dict, optional
        The plotted numbers (columns of equal length); default: the table the neuroprobe
        figure function stored on ``fig`` (:func:`figure_table`).
    dpi : int, optional
        Raster resolution (default 300).
    formats : list of str, optional
        Extra suffixes to save too (e.g. ``[".svg", ".pdf"]``).

    Returns
    -------
    dict
        ``{"image": Path, "data": Path, ...}`` (one more key per extra format).
    """
    from pathlib import Path

    from neuroprobe.io.arrays import write_table

    path = Path(path)
    table = figure_table(fig) if table is None else table
    if table is None:
        raise ValueError(f"save_figure_with_data({str(path)!r}): no table given and the figure "
                         "carries none (only neuroprobe's figure functions attach one)")
    rows, fields = _table_rows(table)
    out = {"image": save_figure(fig, path, dpi=dpi)}
    for suffix in formats or ():
        suffix = suffix if suffix.startswith(".") else "." + suffix
        out[suffix.lstrip(".")] = save_figure(fig, path.with_suffix(suffix), dpi=dpi)
    out["data"] = Path(write_table(path.with_suffix(".csv"), rows, fields))
    return out


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
