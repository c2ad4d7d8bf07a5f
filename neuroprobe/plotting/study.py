"""Study figures: accuracy by layer, RSA profiles with their noise ceiling, RDM panels.

Each returns a Figure built without pyplot (save it with :func:`save_figure`); used by
:mod:`neuroprobe.demo` and study reports.
"""

from __future__ import annotations

import numpy as np

from neuroprobe.plotting._style import COLORS, style

__all__ = ["plot_layer_profile", "plot_rsa_profile", "plot_rdm_grid"]


def _study_axes(ax, figsize):
    from matplotlib.figure import Figure

    if ax is None:
        with style():
            fig = Figure(figsize=figsize, layout="constrained")
            return fig, fig.subplots()
    return ax.figure, ax


def _layer_values(layers, values):
    """Layer names as str and one float value per layer (ValueError otherwise)."""
    layers = [str(layer) for layer in layers]
    values = np.asarray(values, dtype=float)
    if values.shape != (len(layers),):
        raise ValueError(
            f"values must have one entry per layer ({len(layers)}); got {values.shape}"
        )
    return layers, values


def plot_layer_profile(layers, values, *, errors=None, chance=None, highlight=None,
                       ylabel="score", title=None, ax=None, color=COLORS["main"]):
    """One value per layer (decoding accuracy, mean encoding accuracy ...) as a line with markers.

    Parameters
    ----------
    layers : list of str
        Layer names, input to output.
    values : array-like (n_layers,)
    errors : array-like (n_layers,), optional
        Error bars (e.g. standard deviation over CV folds).
    chance : float, optional
        Drawn as a dashed horizontal line.
    highlight : str, optional
        A layer to mark (e.g. the planted layer).
    ylabel, title : str
    ax : matplotlib Axes, optional
    color : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    layers, values = _layer_values(layers, values)
    fig, ax = _study_axes(ax, (max(4.0, 0.8 * len(layers) + 2), 3.2))
    x = np.arange(len(layers))
    ax.errorbar(x, values, yerr=None if errors is None else np.asarray(errors, dtype=float),
                marker="o", color=color, capsize=3, lw=1.8)
    if chance is not None:
        ax.axhline(chance, ls="--", color="0.5", lw=1, label=f"chance ({chance:.2f})")
        ax.legend(loc="best", fontsize=8, frameon=False)
    if highlight is not None and highlight in layers:
        i = layers.index(highlight)
        ax.axvspan(i - 0.4, i + 0.4, color=COLORS["accent"], alpha=0.35, lw=0)
    ax.set_xticks(x)
    ax.set_xticklabels(layers, rotation=30 if max(map(len, layers)) > 6 else 0)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_rsa_profile(layers, values, ceiling=None, *, errors=None, pvalues=None, alpha=0.05,
                     highlight=None, ylabel="RDM correlation", title=None, ax=None):
    """RSA score per layer as bars, with the noise ceiling as a grey band.

    Parameters
    ----------
    layers : list of str
    values : array-like (n_layers,)
        E.g. mean over subjects of the layer-RDM / subject-RDM correlation.
    ceiling : (lower, upper) or object with ``lower`` and ``upper``, optional
    errors : array-like (n_layers,), optional
        Error bars (e.g. standard error over subjects).
    pvalues : array-like (n_layers,), optional
        Layers with ``p < alpha`` get a star.
    alpha : float
    highlight : str, optional
    ylabel, title : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    layers, values = _layer_values(layers, values)
    fig, ax = _study_axes(ax, (max(4.0, 0.8 * len(layers) + 2), 3.2))
    x = np.arange(len(layers))
    colors = [COLORS["highlight"] if layer == highlight else COLORS["main"] for layer in layers]
    ax.bar(x, values, color=colors, yerr=None if errors is None else np.asarray(errors, float),
           capsize=3, width=0.7)
    if ceiling is not None:
        lower, upper = (ceiling.lower, ceiling.upper) if hasattr(ceiling, "lower") else ceiling
        ax.axhspan(lower, upper, color=COLORS["ceiling"], alpha=0.35, lw=0, label="noise ceiling")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    if pvalues is not None:
        pvalues = np.asarray(pvalues, dtype=float)
        top = values + (0 if errors is None else np.asarray(errors, float))
        for i in np.flatnonzero(pvalues < alpha):
            ax.text(x[i], top[i], "*", ha="center", va="bottom", fontsize=13)
    ax.set_xticks(x)
    ax.set_xticklabels(layers, rotation=30 if max(map(len, layers)) > 6 else 0)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="k", lw=0.6)
    if title:
        ax.set_title(title)
    return fig


def plot_rdm_grid(rdms, *, order=None, title=None, ncols=4, cmap="viridis"):
    """Several RDMs side by side, each scaled to its own percentiles (rank display).

    Parameters
    ----------
    rdms : dict of str -> RDM
        Condensed (pdist order) or square RDMs of the same stimuli.
    order : array-like of int, optional
        Stimulus order for display (e.g. sorted by category).
    title : str, optional
    ncols : int
    cmap : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from scipy.spatial.distance import squareform

    if not rdms:
        raise ValueError("rdms is empty")
    items = list(rdms.items())
    n = len(items)
    ncols = max(1, min(int(ncols), n))
    nrows = int(np.ceil(n / ncols))
    with style():
        fig = Figure(figsize=(2.6 * ncols, 2.6 * nrows + 0.3), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, (name, rdm) in zip(axes.ravel(), items):
        rdm = np.asarray(rdm, dtype=float)
        square = squareform(rdm, checks=False) if rdm.ndim == 1 else rdm
        if order is not None:
            idx = np.asarray(order)
            square = square[np.ix_(idx, idx)]
        off = square[~np.eye(len(square), dtype=bool)]
        ranks = np.zeros_like(square)
        if off.size:
            ranks = np.searchsorted(np.sort(off), square) / off.size
        np.fill_diagonal(ranks, 0)
        ax.imshow(ranks, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(str(name), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return fig


