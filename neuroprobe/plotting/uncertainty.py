"""Figures with uncertainty: layer profiles with bootstrap intervals and the noise-ceiling band,
model comparisons with pairwise significance, RDM panels with category boundaries, MDS plots,
per-voxel score histograms.

Each function takes the numbers it plots, returns a :class:`matplotlib.figure.Figure` built
without pyplot, and stores those numbers on the figure (:func:`figure_table`), so
:func:`save_figure_with_data` writes them as CSV beside the image.
"""

from __future__ import annotations

import numpy as np

from neuroprobe.plotting._style import COLORS, FONT, PALETTE, attach_table, style

__all__ = [
    "layer_ci",
    "rdm_layer_ci",
    "plot_layer_ci",
    "plot_model_comparison",
    "significance_marker",
    "plot_rdm",
    "plot_mds",
    "mds_embedding",
    "plot_score_histogram",
]


def _axes(ax, figsize):
    from matplotlib.figure import Figure

    if ax is not None:
        return ax.figure, ax
    with style():
        fig = Figure(figsize=figsize, layout="constrained")
        ax = fig.subplots()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _rows(name, a, n, what):
    """``a`` as a float array (k, n) (one row per series); ValueError naming ``name``."""
    a = np.asarray(a, dtype=float)
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    if a2.ndim != 2 or a2.shape[1] != n:
        raise ValueError(f"{name} must have one value per {what} ({n}), as (n_{what}s,) or "
                         f"(n_series, n_{what}s); got shape {a.shape}")
    return a2


def layer_ci(samples, *, n_boot=1000, ci=0.95, indices=None, random_state=0):
    """Mean per layer over subjects (or stimuli) with its percentile bootstrap interval.

    Parameters
    ----------
    samples : array (n_samples, n_layers)
        One row per subject (or stimulus), one column per layer.
    n_boot, ci, indices, random_state
        As :func:`neuroprobe.solvers.bootstrap.percentile_ci` (the same resamples for every
        layer).

    Returns
    -------
    mean, lower, upper : ndarray (n_layers,)
    """
    from neuroprobe.solvers.bootstrap import percentile_ci

    samples = np.asarray(samples, dtype=float)
    if samples.ndim != 2:
        raise ValueError(f"samples must be (n_samples, n_layers), got shape {samples.shape}")
    return percentile_ci(samples, n_boot=n_boot, ci=ci, indices=indices,
                         random_state=random_state)


def rdm_layer_ci(layer_rdms, target_rdm, *, n_boot=1000, ci=0.95, method="pearson",
                 indices=None, random_state=0):
    """RDM similarity per layer with a percentile bootstrap interval over stimuli.

    Parameters
    ----------
    layer_rdms : dict of str -> RDM, or array (n_layers, n_pairs) / (n_layers, n, n)
    target_rdm : RDM (condensed or square) of the same stimuli
    n_boot : int, default=1000
    ci : float, default=0.95
    method : {"pearson", "cosine"}
    indices : array of int (n_boot, n), optional
        Stimulus resamples (default: drawn from ``random_state``).
    random_state : int, RandomState or None

    Returns
    -------
    values, lower, upper : ndarray (n_layers,)
        The similarity on all stimuli and the ``ci`` interval of the resampled similarities
        (:func:`neuroprobe.solvers.bootstrap.bootstrap_rdm_similarity`; resamples with fewer
        than two distinct stimuli are ignored).
    """
    from neuroprobe.solvers.bootstrap import bootstrap_indices, bootstrap_rdm_similarity

    if not 0 < float(ci) < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    rdms = np.stack([np.asarray(r, dtype=float) for r in (
        layer_rdms.values() if isinstance(layer_rdms, dict) else layer_rdms)])
    square = _square(target_rdm, "target_rdm")
    n = len(square)
    values = bootstrap_rdm_similarity(rdms, square, np.arange(n)[None], method=method)[0]
    if indices is None:
        indices = bootstrap_indices(n, n_boot, random_state)
    boot = bootstrap_rdm_similarity(rdms, square, indices, method=method)
    tail = (1.0 - float(ci)) / 2.0
    lower, upper = np.nanquantile(boot, [tail, 1.0 - tail], axis=0)
    return values, lower, upper


def plot_layer_ci(layers, values, lower=None, upper=None, *, ceiling=None, chance=None,
                  labels=None, highlight=None, ylabel="score", title=None, ax=None,
                  band=True):
    """Layer profile(s) with interval bars (e.g. bootstrap CIs) and the noise-ceiling band.

    Parameters
    ----------
    layers : list of str
        Layer names, input to output.
    values : array (n_layers,) or (n_series, n_layers)
        The profile(s) (e.g. mean over subjects; :func:`layer_ci`).
    lower, upper : arrays of the shape of ``values``, optional
        Interval bounds, drawn as asymmetric error bars (and a light band when ``band``).
    ceiling : (lower, upper) of floats or of arrays (n_layers,), optional
        The noise ceiling, drawn as a grey band (per layer when arrays; an object with
        ``lower`` / ``upper`` attributes works too).
    chance : float, optional
        Dashed horizontal line.
    labels : list of str, optional
        One per series (legend).
    highlight : str, optional
        A layer to mark.
    ylabel, title : str
    ax : matplotlib Axes, optional
    band : bool, default=True

    Returns
    -------
    matplotlib.figure.Figure
    """
    layers = [str(layer) for layer in layers]
    n = len(layers)
    vals = _rows("values", values, n, "layer")
    if (lower is None) != (upper is None):
        raise ValueError("give both lower and upper, or neither")
    lo = None if lower is None else _rows("lower", lower, n, "layer")
    hi = None if upper is None else _rows("upper", upper, n, "layer")
    for name, b in (("lower", lo), ("upper", hi)):
        if b is not None and b.shape != vals.shape:
            raise ValueError(f"{name} has shape {b.shape}; expected that of values {vals.shape}")
    if labels is not None and len(labels) != len(vals):
        raise ValueError(f"labels: {len(labels)} names for {len(vals)} series")
    fig, ax = _axes(ax, (max(4.0, 0.8 * n + 2), 3.2))
    x = np.arange(n, dtype=float)
    table = {"layer": layers}
    if ceiling is not None:
        c_lo, c_hi = (ceiling.lower, ceiling.upper) if hasattr(ceiling, "lower") else ceiling
        c_lo = np.broadcast_to(np.asarray(c_lo, float), (n,))
        c_hi = np.broadcast_to(np.asarray(c_hi, float), (n,))
        ax.fill_between(np.r_[x[0] - 0.5, x, x[-1] + 0.5], np.r_[c_lo[0], c_lo, c_lo[-1]],
                        np.r_[c_hi[0], c_hi, c_hi[-1]], color=COLORS["ceiling"], alpha=0.35,
                        lw=0, label="noise ceiling", gid="noise-ceiling")
        table["ceiling_lower"], table["ceiling_upper"] = c_lo, c_hi
    for k, v in enumerate(vals):
        color = PALETTE[k % len(PALETTE)] if len(vals) > 1 else COLORS["main"]
        label = labels[k] if labels is not None else None
        yerr = None if lo is None else np.vstack([v - lo[k], hi[k] - v])
        ax.errorbar(x, v, yerr=yerr, marker="o", color=color, capsize=3, lw=1.8, label=label,
                    gid=f"series-{k}")
        if lo is not None and band:
            ax.fill_between(x, lo[k], hi[k], color=color, alpha=0.15, lw=0)
        key = labels[k] if labels is not None else (f"series{k}" if len(vals) > 1 else "")
        sep = "_" if key else ""
        table[f"{key}{sep}value"] = v
        if lo is not None:
            table[f"{key}{sep}lower"], table[f"{key}{sep}upper"] = lo[k], hi[k]
    if chance is not None:
        ax.axhline(chance, ls="--", color=COLORS["chance"], lw=1, label=f"chance ({chance:.2g})")
    if highlight is not None and highlight in layers:
        i = layers.index(highlight)
        ax.axvspan(i - 0.4, i + 0.4, color=COLORS["accent"], alpha=0.35, lw=0)
    if labels is not None or ceiling is not None or chance is not None:
        ax.legend(loc="best", fontsize=FONT["legend"], frameon=False)
    ax.set_xticks(x)
    ax.set_xticklabels(layers, rotation=30 if max(map(len, layers), default=0) > 6 else 0)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return attach_table(fig, table)


def significance_marker(p, alpha=0.05):
    """``"***"``, ``"**"``, ``"*"`` for ``p`` below ``alpha / 50``, ``alpha / 5``, ``alpha``;
    ``""`` otherwise (0.001 / 0.01 / 0.05 at the default)."""
    p = float(p)
    for stars, level in (("***", alpha / 50), ("**", alpha / 5), ("*", alpha)):
        if p < level:
            return stars
    return ""


def plot_model_comparison(names, values, *, lower=None, upper=None, pvalues=None, alpha=0.05,
                          ceiling=None, ylabel="score", title=None, ax=None):
    """Bars of one score per model with intervals and pairwise significance brackets.

    Parameters
    ----------
    names : list of str
        Models (or layers).
    values : array (n_models,)
    lower, upper : array (n_models,), optional
        Interval bounds (error bars).
    pvalues : array (n_models, n_models), optional
        Pairwise p-values (symmetric; only the upper triangle is read). A bracket with
        :func:`significance_marker` is drawn over each pair with ``p < alpha``.
    alpha : float, default=0.05
    ceiling : (lower, upper), optional
        The noise ceiling as a grey band.
    ylabel, title : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        Bars are the axes' patches in model order; each bracket is a line with
        ``gid="pair-i-j"``.
    """
    names = [str(n) for n in names]
    n = len(names)
    v = _rows("values", values, n, "model")[0]
    fig, ax = _axes(ax, (max(3.5, 0.7 * n + 2), 3.4))
    x = np.arange(n, dtype=float)
    yerr = None
    top = v.copy()
    if (lower is None) != (upper is None):
        raise ValueError("give both lower and upper, or neither")
    table = {"model": names, "value": v}
    if lower is not None:
        lo, hi = _rows("lower", lower, n, "model")[0], _rows("upper", upper, n, "model")[0]
        yerr = np.vstack([v - lo, hi - v])
        top = np.maximum(top, hi)
        table["lower"], table["upper"] = lo, hi
    ax.bar(x, v, yerr=yerr, capsize=3, width=0.7, color=[PALETTE[i % len(PALETTE)]
                                                        for i in range(n)])
    if ceiling is not None:
        c_lo, c_hi = (ceiling.lower, ceiling.upper) if hasattr(ceiling, "lower") else ceiling
        ax.axhspan(c_lo, c_hi, color=COLORS["ceiling"], alpha=0.35, lw=0, label="noise ceiling")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=FONT["legend"],
                  frameon=False)  # beside the axes: the brackets go on top
        top = np.maximum(top, c_hi)
    if pvalues is not None:
        p = np.asarray(pvalues, dtype=float)
        if p.shape != (n, n):
            raise ValueError(f"pvalues must be a ({n}, {n}) matrix of pairwise p-values "
                             f"(one row and column per model); got shape {p.shape}")
        span = float(np.nanmax(top) - min(0.0, np.nanmin(v))) or 1.0
        step, level = 0.08 * span, float(np.nanmax(top)) + 0.05 * span
        i_up, j_up = np.triu_indices(n, 1)
        order = np.argsort(j_up - i_up, kind="stable")  # short brackets low
        for i, j in zip(i_up[order], j_up[order]):
            if not p[i, j] < alpha:
                continue
            ax.plot([x[i], x[i], x[j], x[j]], [level - step / 3, level, level, level - step / 3],
                    color=COLORS["text"], lw=0.9, gid=f"pair-{i}-{j}")
            ax.text((x[i] + x[j]) / 2, level, significance_marker(p[i, j], alpha), ha="center",
                    va="bottom", fontsize=FONT["label"], gid=f"pair-{i}-{j}-text")
            level += step
        table.update({f"p_vs_{names[j]}": p[:, j] for j in range(n)})
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30 if max(map(len, names), default=0) > 6 else 0)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return attach_table(fig, table)


def _square(rdm, name="rdm"):
    from scipy.spatial.distance import squareform

    rdm = np.asarray(rdm, dtype=float)
    if rdm.ndim == 1:
        rdm = squareform(rdm, checks=False)
    if rdm.ndim != 2 or rdm.shape[0] != rdm.shape[1]:
        raise ValueError(f"{name} must be condensed (pdist order) or square; got shape "
                         f"{rdm.shape}")
    return rdm


def _category_order(categories, n):
    """Stable order grouping equal categories (first-appearance order), and the groups."""
    cats = np.asarray(categories).astype(str)
    if cats.shape != (n,):
        raise ValueError(f"categories must have one label per stimulus ({n}); got shape "
                         f"{cats.shape}")
    _, first = np.unique(cats, return_index=True)
    names = cats[np.sort(first)]
    rank = {c: k for k, c in enumerate(names)}
    order = np.argsort([rank[c] for c in cats], kind="stable")
    return order, list(names), cats[order]


def plot_rdm(rdm, *, categories=None, rank=True, cmap="viridis", title=None, ax=None,
             colorbar=True):
    """One RDM with its category boundaries (stimuli grouped by category).

    Parameters
    ----------
    rdm : array, condensed (pdist order) or square (n, n)
    categories : array-like of str (n,), optional
        A label per stimulus: stimuli are sorted by category (stably, categories in order of
        first appearance), boundaries drawn as white lines and names written at the centres.
    rank : bool, default=True
        Show percentiles of the off-diagonal dissimilarities (the usual RSA display) instead
        of the raw values.
    cmap, title : str
    ax : matplotlib Axes, optional
    colorbar : bool

    Returns
    -------
    matplotlib.figure.Figure
        The displayed matrix is the axes' image (``ax.images[0].get_array()``).
    """
    square = _square(rdm)
    n = len(square)
    order, names, sorted_cats = (np.arange(n), [], None)
    if categories is not None:
        order, names, sorted_cats = _category_order(categories, n)
    shown = square[np.ix_(order, order)]
    if rank:
        off = np.sort(shown[~np.eye(n, dtype=bool)])
        shown = np.searchsorted(off, shown, side="left") / max(off.size, 1) if off.size else \
            np.zeros_like(shown)
        np.fill_diagonal(shown, 0.0)
    fig, ax = _axes(ax, (3.6, 3.2))
    im = ax.imshow(shown, cmap=cmap, interpolation="nearest", vmin=0 if rank else None,
                   vmax=1 if rank else None)
    ax.set_xticks([])
    ax.set_yticks([])
    if sorted_cats is not None:
        edges = np.flatnonzero(sorted_cats[1:] != sorted_cats[:-1]) + 1
        for e in edges:
            ax.axhline(e - 0.5, color="white", lw=1.0, gid="category-boundary")
            ax.axvline(e - 0.5, color="white", lw=1.0, gid="category-boundary")
        bounds = np.r_[0, edges, n]
        centres = (bounds[:-1] + bounds[1:] - 1) / 2
        ax.set_xticks(centres)
        ax.set_xticklabels(names, rotation=90, fontsize=FONT["small"])
        ax.set_yticks(centres)
        ax.set_yticklabels(names, fontsize=FONT["small"])
    if colorbar:
        bar = fig.colorbar(im, ax=ax, shrink=0.8)
        bar.set_label("dissimilarity (percentile)" if rank else "dissimilarity")
    if title:
        ax.set_title(title)
    i, j = np.triu_indices(n, 1)
    table = {"row": order[i], "column": order[j], "dissimilarity": square[order[i], order[j]]}
    if sorted_cats is not None:
        table["row_category"], table["column_category"] = sorted_cats[i], sorted_cats[j]
    return attach_table(fig, table)


def mds_embedding(rdm, *, n_components=2, random_state=0):
    """Metric MDS of a precomputed RDM (``sklearn.manifold.MDS``, seeded).

    Parameters
    ----------
    rdm : array, condensed or square
    n_components : int, default=2
    random_state : int, default=0

    Returns
    -------
    ndarray (n, n_components)
    """
    import inspect

    from sklearn.manifold import MDS

    square = _square(rdm)
    square = (square + square.T) / 2
    np.fill_diagonal(square, 0.0)
    params = inspect.signature(MDS).parameters
    if "metric_mds" in params:  # scikit-learn >= 1.8: metric= names the dissimilarity
        kw = {"metric": "precomputed", "init": "random", "n_init": 4}
    else:
        kw = {"dissimilarity": "precomputed", "n_init": 4}
    if "normalized_stress" in params:
        kw["normalized_stress"] = "auto"
    mds = MDS(n_components=n_components, random_state=random_state, **kw)
    return mds.fit_transform(square)


def plot_mds(rdm, *, categories=None, labels=None, random_state=0, title=None, ax=None,
             embedding=None):
    """Stimuli placed by metric MDS of their RDM, coloured by category.

    Parameters
    ----------
    rdm : array, condensed or square (n, n)
    categories : array-like of str (n,), optional
        One scatter (colour, legend entry) per category, in order of first appearance.
    labels : array-like of str (n,), optional
        Text beside each point (stimulus names).
    random_state : int, default=0
        Seed of :func:`mds_embedding`.
    title : str, optional
    ax : matplotlib Axes, optional
    embedding : array (n, 2), optional
        Precomputed coordinates (then ``rdm`` only checks the size).

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(_square(rdm))
    xy = mds_embedding(rdm, random_state=random_state) if embedding is None else \
        np.asarray(embedding, dtype=float)
    if xy.shape != (n, 2):
        raise ValueError(f"embedding must be ({n}, 2); got shape {xy.shape}")
    fig, ax = _axes(ax, (3.6, 3.4))
    cats = np.full(n, "", dtype=object) if categories is None else \
        np.asarray(categories).astype(str)
    if cats.shape != (n,):
        raise ValueError(f"categories must have one label per stimulus ({n}); got shape "
                         f"{cats.shape}")
    _, first = np.unique(cats, return_index=True)
    for k, c in enumerate(cats[np.sort(first)]):
        sel = cats == c
        ax.scatter(xy[sel, 0], xy[sel, 1], s=18, color=PALETTE[k % len(PALETTE)],
                   label=str(c) if categories is not None else None, gid=f"category-{k}")
    if labels is not None:
        for (px, py), text in zip(xy, labels):
            ax.annotate(str(text), (px, py), fontsize=FONT["small"], xytext=(2, 2),
                        textcoords="offset points")
    if categories is not None:
        ax.legend(loc="best", fontsize=FONT["legend"], frameon=False)
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    table = {"mds1": xy[:, 0], "mds2": xy[:, 1]}
    if categories is not None:
        table["category"] = cats
    if labels is not None:
        table["label"] = np.asarray(labels).astype(str)
    return attach_table(fig, table)


def plot_score_histogram(scores, *, bins=40, pvalues=None, alpha=0.05, threshold=None,
                         xlabel="score", title=None, ax=None):
    """Histogram of per-voxel (per-target) scores; significant ones stacked in colour.

    Parameters
    ----------
    scores : array (n_voxels,)
        NaN values are left out.
    bins : int or array of edges
    pvalues : array (n_voxels,), optional
        Voxels with ``p < alpha`` are drawn in the highlight colour on top of the others.
    alpha : float, default=0.05
    threshold : float, optional
        A vertical dashed line (e.g. the FWE score threshold).
    xlabel, title : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        The bars are the axes' patches (left bars: not significant, then significant).
    """
    s = np.asarray(scores, dtype=float).ravel()
    finite = np.isfinite(s)
    edges = np.histogram_bin_edges(s[finite], bins=bins)
    fig, ax = _axes(ax, (4.0, 3.0))
    table = {"bin_left": edges[:-1], "bin_right": edges[1:]}
    if pvalues is None:
        counts, _ = np.histogram(s[finite], bins=edges)
        ax.hist(s[finite], bins=edges, color=COLORS["main"], label=None)
        table["count"] = counts
    else:
        p = np.asarray(pvalues, dtype=float).ravel()
        if p.shape != s.shape:
            raise ValueError(f"pvalues must have one value per score ({s.size}); got shape "
                             f"{np.shape(pvalues)}")
        sig = finite & (p < alpha)
        groups = [s[finite & ~sig], s[sig]]
        ax.hist(groups, bins=edges, stacked=True, color=[COLORS["main"], COLORS["highlight"]],
                label=["n.s.", f"p < {alpha:g}"])
        ax.legend(loc="best", fontsize=FONT["legend"], frameon=False)
        table["count_not_significant"] = np.histogram(groups[0], bins=edges)[0]
        table["count_significant"] = np.histogram(groups[1], bins=edges)[0]
    if threshold is not None:
        ax.axvline(threshold, ls="--", color=COLORS["chance"], lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("voxels")
    if title:
        ax.set_title(title)
    return attach_table(fig, table)
