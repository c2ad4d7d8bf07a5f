"""Figures of brains in time: layer x time curves, peak latencies, temporal generalisation.

Each function takes the numbers it plots (e.g. the outputs of
:mod:`neuroprobe.solvers.temporal`) and returns a Figure built without pyplot (save it with
:func:`~neuroprobe.plotting.save_figure`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_time_courses", "plot_peak_latencies", "plot_temporal_generalization",
           "significant_spans"]

_COLORS = ("#3b6ea5", "#d1495b", "#2e933c", "#edae49", "#7b4b94", "#00798c", "#8c564b",
           "#30343f", "#e377c2", "#6c757d")


def _axes(ax, figsize):
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.subplots()
    return ax.figure, ax


def significant_spans(labels, cluster_p, times, alpha=0.05):
    """Time spans of the significant clusters of every curve.

    Parameters
    ----------
    labels : ndarray of int of shape (n_curves, n_times)
        Cluster labels (0: none), e.g. from :func:`neuroprobe.solvers.temporal.cluster_fwe`.
    cluster_p : ndarray of shape (n_clusters,)
        p-value of cluster ``k + 1``.
    times : ndarray of shape (n_times,)
    alpha : float

    Returns
    -------
    list of list of (float, float)
        Per curve, ``(first time, last time)`` of each cluster with ``p < alpha``.
    """
    labels = np.atleast_2d(np.asarray(labels))
    cluster_p = np.asarray(cluster_p, dtype=float)
    times = np.asarray(times, dtype=float)
    if labels.shape[-1] != times.size:
        raise ValueError(f"labels: {labels.shape[-1]} time points but times has {times.size}")
    spans = []
    for row in labels:
        out = []
        for k in np.unique(row[row > 0]):
            if cluster_p[k - 1] < alpha:
                idx = np.flatnonzero(row == k)
                out.append((float(times[idx[0]]), float(times[idx[-1]])))
        spans.append(out)
    return spans


def plot_time_courses(times, curves, layers=None, *, labels=None, cluster_p=None, alpha=0.05,
                      ceiling=None, errors=None, ylabel="RDM correlation", xlabel="time (s)",
                      title=None, ax=None):
    """One curve per layer over time, significant clusters shaded, the noise ceiling as a band.

    Parameters
    ----------
    times : array-like of shape (n_times,)
    curves : array-like of shape (n_layers, n_times)
    layers : list of str, optional
        Legend names (default ``layer 0``, ``layer 1``, ...).
    labels, cluster_p : optional
        Cluster labels (n_layers, n_times) and their p-values (see :func:`significant_spans`);
        each significant cluster is shaded in its layer's colour.
    alpha : float
    ceiling : (lower, upper), optional
        Scalars or arrays of shape (n_times,): a grey band.
    errors : array-like of shape (n_layers, n_times), optional
        A lighter band ``curve +- errors`` (e.g. the SEM over subjects).
    ylabel, xlabel, title : str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        Lines have ``gid`` ``"curve:<layer>"``, cluster spans ``"cluster:<layer>:<k>"``, the
        ceiling band ``"ceiling"``.
    """
    times = np.asarray(times, dtype=float)
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    if curves.shape[1] != times.size:
        raise ValueError(f"curves: expected (n_layers, {times.size}); got {curves.shape}")
    layers = [f"layer {i}" for i in range(len(curves))] if layers is None else list(layers)
    if len(layers) != len(curves):
        raise ValueError(f"layers: {len(layers)} names for {len(curves)} curves")
    fig, ax = _axes(ax, (6.0, 3.4))
    if ceiling is not None:
        lower, upper = (np.broadcast_to(np.asarray(c, float), times.shape) for c in ceiling)
        band = ax.fill_between(times, lower, upper, color="0.6", alpha=0.35, lw=0,
                               label="noise ceiling")
        band.set_gid("ceiling")
    spans = (significant_spans(labels, cluster_p, times, alpha)
             if labels is not None and cluster_p is not None else [[] for _ in layers])
    for i, (name, y) in enumerate(zip(layers, curves)):
        color = _COLORS[i % len(_COLORS)]
        (line,) = ax.plot(times, y, color=color, lw=1.6, label=str(name))
        line.set_gid(f"curve:{name}")
        if errors is not None:
            e = np.asarray(errors, dtype=float)[i]
            ax.fill_between(times, y - e, y + e, color=color, alpha=0.15, lw=0)
        for k, (a, b) in enumerate(spans[i]):
            ax.axvspan(a, b, color=color, alpha=0.12, lw=0).set_gid(f"cluster:{name}:{k}")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return fig


def plot_peak_latencies(layers, peak, low=None, high=None, *, ylabel="peak latency (s)",
                        title=None, ax=None, color="#3b6ea5"):
    """Peak latency per layer with its confidence interval (e.g. a bootstrap over subjects).

    Parameters
    ----------
    layers : list of str
    peak : array-like of shape (n_layers,)
    low, high : array-like of shape (n_layers,), optional
        Interval bounds (from :func:`neuroprobe.solvers.temporal.peak_latency`).
    ylabel, title : str
    ax : matplotlib Axes, optional
    color : str

    Returns
    -------
    matplotlib.figure.Figure
        The markers' line has ``gid`` ``"peaks"``.
    """
    layers = [str(x) for x in layers]
    peak = np.asarray(peak, dtype=float)
    if peak.shape != (len(layers),):
        raise ValueError(f"peak: expected one latency per layer ({len(layers)}); "
                         f"got shape {peak.shape}")
    fig, ax = _axes(ax, (max(4.0, 0.8 * len(layers) + 2), 3.2))
    x = np.arange(len(layers))
    yerr = None
    if low is not None and high is not None:
        yerr = np.vstack([peak - np.asarray(low, float), np.asarray(high, float) - peak])
    cont = ax.errorbar(x, peak, yerr=yerr, marker="o", color=color, capsize=3, lw=1.6)
    cont.lines[0].set_gid("peaks")
    ax.set_xticks(x)
    ax.set_xticklabels(layers, rotation=30 if max(map(len, layers)) > 6 else 0)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


def plot_temporal_generalization(scores, train_times, test_times=None, *, chance=None,
                                 label="score", title=None, ax=None, cmap="RdBu_r"):
    """Train-time x test-time matrix (decoding or encoding, or model time x brain time).

    Parameters
    ----------
    scores : array-like of shape (n_train_times, n_test_times)
    train_times : array-like of shape (n_train_times,)
    test_times : array-like of shape (n_test_times,), optional
        Default: ``train_times``.
    chance : float, optional
        Centre of the colour scale (default: the scores' mean).
    label, title : str
    ax : matplotlib Axes, optional
    cmap : str

    Returns
    -------
    matplotlib.figure.Figure
        The image (``gid`` ``"generalization"``) holds ``scores`` with train time on the y axis.
    """
    scores = np.asarray(scores, dtype=float)
    train_times = np.asarray(train_times, dtype=float)
    test_times = train_times if test_times is None else np.asarray(test_times, dtype=float)
    if scores.shape != (train_times.size, test_times.size):
        raise ValueError(f"scores: expected ({train_times.size}, {test_times.size}); "
                         f"got {scores.shape}")
    fig, ax = _axes(ax, (4.4, 3.8))
    centre = float(np.nanmean(scores)) if chance is None else float(chance)
    span = float(np.nanmax(np.abs(scores - centre))) or 1.0
    im = ax.imshow(scores, origin="lower", aspect="auto", cmap=cmap, vmin=centre - span,
                   vmax=centre + span, interpolation="nearest",
                   extent=(test_times[0], test_times[-1], train_times[0], train_times[-1]))
    im.set_gid("generalization")
    lo, hi = max(train_times[0], test_times[0]), min(train_times[-1], test_times[-1])
    if lo < hi:
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.6, ls="--")
    fig.colorbar(im, ax=ax, label=label)
    ax.set_xlabel("test time (s)")
    ax.set_ylabel("train time (s)")
    if title:
        ax.set_title(title)
    return fig
