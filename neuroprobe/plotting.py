"""Figures (matplotlib, saved as PNG).

Every function takes arrays and returns a :class:`matplotlib.figure.Figure`; nothing touches
pyplot's global state or the backend (figures are built with ``Figure()`` and drawn by the Agg
canvas), so they work in scripts, servers and tests alike. Save with :func:`save_figure`.

Sections: helpers; inside the network (activation maps, saliency, top stimuli, optimal stimuli,
receptive fields, minimal stimuli, lesions, training curves); studies (added by the demo).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "save_figure",
    "to_rgb_image",
    "plot_activation_maps",
    "plot_saliency",
    "plot_top_stimuli",
    "plot_optimal_stimuli",
    "plot_receptive_fields",
    "plot_minimal_stimulus",
    "plot_lesion",
    "plot_training_history",
]


# --------------------------------------------------------------------------------------------
# helpers


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


# --------------------------------------------------------------------------------------------
# inside the network


def plot_activation_maps(activations, channels=None, image=None, ncols=8, cmap="viridis",
                         title=None):
    """Channel activation maps of one stimulus (DNNBrain's ``dnn_view``).

    Parameters
    ----------
    activations : array (C, H, W)
        One layer's output for one stimulus.
    channels : list of int, optional
        Channels to show (default: all, at most 64).
    image : array, optional
        The stimulus, drawn first.
    ncols : int
    cmap : str
    title : str, optional
    """
    acts = np.asarray(activations, dtype=np.float32)
    if acts.ndim != 3:
        raise ValueError(f"activations must be (channels, rows, cols), got shape {acts.shape}")
    channels = list(range(min(64, acts.shape[0]))) if channels is None else list(channels)
    n = len(channels) + (image is not None)
    n_rows, n_cols = _grid_shape(n, ncols)
    fig, axes = _figure(n_rows, n_cols, size=1.6)
    flat = axes.ravel()
    k = 0
    if image is not None:
        flat[0].imshow(to_rgb_image(image))
        flat[0].set_title("stimulus", fontsize=8)
        k = 1
    for c in channels:
        flat[k].imshow(acts[c], cmap=cmap)
        flat[k].set_title(f"c{c}", fontsize=8)
        k += 1
    for ax in flat:
        _off(ax)
    for ax in flat[k:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


def plot_saliency(images, maps=None, titles=None, alpha=0.6, cmap="inferno", *, target=None):
    """Saliency overlays: each image beside its map (max |gradient| over colour channels).

    Parameters
    ----------
    images : SaliencyMaps, or array (n, C, H, W) or (n, H, W, C)
        The result of :func:`neuroprobe.inspect.saliency` (its ``.images`` are the images in the
        maps' preprocessed frame, and ``maps`` is then omitted), or images in that frame.
    maps : array (n, C, H, W), optional
        The maps (one target), when ``images`` are images.
    titles : list of str, optional
        One per image.
    alpha : float
        Opacity of the map over the image.
    target : str, optional
        Label of the target (e.g. ``"conv5:c3 (mean)"``), shown above the map column; default:
        taken from a :class:`~neuroprobe.inspect.saliency.SaliencyMaps` (with its metric).

    Raises
    ------
    ValueError
        When the images and the maps do not have the same number or the same height and width
        (e.g. the original pictures beside maps of the preprocessed, resized images).
    """
    if maps is None:
        if getattr(images, "images", None) is None:
            raise ValueError(
                "plot_saliency(images, maps): give the maps, or the SaliencyMaps returned by "
                "saliency() itself (slices of it carry no images: pass result.images[i] and "
                "result.maps[i])"
            )
        res = images
        maps, images = res.maps, res.images
        if target is None and res.targets and len(res.targets) == 1:
            target = f"{res.targets[0].label} ({res.method}, {res.metric})"
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 4:
        raise ValueError(
            f"plot_saliency: maps must be (n, C, H, W) for one target, got shape {maps.shape}; "
            "for several targets plot result.maps[k] with result.images"
        )
    n = len(maps)
    if len(images) != n:
        raise ValueError(f"plot_saliency: {len(images)} image(s) for {n} map(s)")
    fig, axes = _figure(n, 3, size=2.0)
    for i in range(n):
        img = to_rgb_image(images[i])
        if img.shape[:2] != maps.shape[2:]:
            raise ValueError(
                f"plot_saliency: image {i} is {img.shape[0]} x {img.shape[1]} pixels but its map "
                f"is {maps.shape[2]} x {maps.shape[3]}: the maps are in the model's preprocessed "
                "frame (resized/cropped); overlay them on saliency(...).images, the images in "
                "that frame"
            )
        heat = np.abs(maps[i]).max(axis=0)
        heat = heat / (heat.max() or 1.0)
        axes[i, 0].imshow(img, cmap="gray" if img.ndim == 2 else None)
        axes[i, 1].imshow(heat, cmap=cmap)
        axes[i, 2].imshow(img, cmap="gray" if img.ndim == 2 else None)
        axes[i, 2].imshow(heat, cmap=cmap, alpha=alpha)
        axes[i, 0].set_title(titles[i] if titles else f"image {i}", fontsize=8)
        axes[i, 1].set_title(f"saliency {target}" if target else "saliency", fontsize=8)
        axes[i, 2].set_title("overlay", fontsize=8)
        for ax in axes[i]:
            _off(ax)
    return fig


def plot_top_stimuli(images, values=None, unit_labels=None, ids=None):
    """A grid of the top stimuli: one row per unit, best first.

    Parameters
    ----------
    images : array-like (n_units, k, ...) of images
        Images as accepted by :func:`to_rgb_image`.
    values : array (n_units, k), optional
    unit_labels : list of str, optional
    ids : array (n_units, k) of str, optional
    """
    n_units = len(images)
    k = len(images[0])
    fig, axes = _figure(n_units, k, size=1.6)
    for u in range(n_units):
        for r in range(k):
            ax = axes[u, r]
            img = to_rgb_image(images[u][r])
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            parts = []
            if ids is not None:
                parts.append(str(ids[u][r]))
            if values is not None:
                parts.append(f"{float(values[u][r]):.3g}")
            ax.set_title(" ".join(parts), fontsize=7)
            _off(ax)
        if unit_labels is not None:
            axes[u, 0].set_ylabel(unit_labels[u], fontsize=8)
    return fig


def plot_optimal_stimuli(images, traces=None, titles=None):
    """Synthesised images (row 1) and their activation traces (row 2, when given).

    Parameters
    ----------
    images : array (n, C, H, W) in [0, 1]
    traces : array (n_iter + 1, n), optional
    titles : list of str, optional
    """
    n = len(images)
    rows = 2 if traces is not None else 1
    fig, axes = _figure(rows, n, size=2.2)
    for i in range(n):
        axes[0, i].imshow(to_rgb_image(images[i]))
        axes[0, i].set_title(titles[i] if titles else f"target {i}", fontsize=8)
        _off(axes[0, i])
        if traces is not None:
            axes[1, i].plot(np.asarray(traces)[:, i])
            axes[1, i].set_xlabel("step", fontsize=7)
            axes[1, i].set_ylabel("activation", fontsize=7)
            axes[1, i].tick_params(labelsize=6)
    return fig


def plot_receptive_fields(images, maps, titles=None, alpha=0.55, cmap="jet"):
    """Receptive-field maps (occlusion or upsampled activation) over their images.

    Parameters
    ----------
    images : array (n, C, H, W) or (n, H, W, C)
    maps : array (n, h, w)
        Resized to the image (bilinear) for the overlay.
    titles : list of str, optional
    """
    from PIL import Image

    maps = np.asarray(maps, dtype=np.float32)
    n = len(maps)
    fig, axes = _figure(n, 2, size=2.2)
    for i in range(n):
        img = to_rgb_image(images[i])
        h, w = img.shape[:2]
        m = np.asarray(Image.fromarray(maps[i]).resize((w, h), Image.BILINEAR))
        axes[i, 0].imshow(m, cmap=cmap)
        axes[i, 0].set_title(titles[i] if titles else f"map {i}", fontsize=8)
        axes[i, 1].imshow(img, cmap="gray" if img.ndim == 2 else None)
        axes[i, 1].imshow(m, cmap=cmap, alpha=alpha)
        axes[i, 1].set_title("overlay", fontsize=8)
        for ax in axes[i]:
            _off(ax)
    return fig


def plot_minimal_stimulus(image, minimal, segments=None, title=None):
    """The image, its parcels (when given) and the minimal stimulus side by side."""
    n = 3 if segments is not None else 2
    fig, axes = _figure(1, n, size=2.4)
    axes[0, 0].imshow(to_rgb_image(image))
    axes[0, 0].set_title("image", fontsize=8)
    if segments is not None:
        axes[0, 1].imshow(np.asarray(segments), cmap="tab20")
        axes[0, 1].set_title(f"{int(np.max(segments)) + 1} parcels", fontsize=8)
    axes[0, -1].imshow(to_rgb_image(minimal))
    axes[0, -1].set_title("minimal stimulus", fontsize=8)
    for ax in axes[0]:
        _off(ax)
    if title:
        fig.suptitle(title)
    return fig


def plot_lesion(channels, delta, ylabel="change", title=None):
    """Bar chart of the effect of ablating each channel (from ``lesion_study``)."""
    fig, axes = _figure(1, 1, size=4)
    ax = axes[0, 0]
    ax.bar(np.arange(len(delta)), np.asarray(delta, dtype=float))
    ax.set_xticks(np.arange(len(delta)))
    ax.set_xticklabels([str(c) for c in channels], fontsize=6, rotation=90)
    ax.set_xlabel("ablated channel")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig


def plot_training_history(history, title=None):
    """Loss and validation-score curves of :func:`neuroprobe.finetune`."""
    fig, axes = _figure(1, 2, size=3)
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    axes[0, 0].plot(epochs, history["train_loss"], label="train")
    axes[0, 0].plot(epochs, history["val_loss"], label="validation")
    axes[0, 0].set_xlabel("epoch")
    axes[0, 0].set_ylabel("loss")
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].plot(epochs, history["val_score"])
    axes[0, 1].set_xlabel("epoch")
    axes[0, 1].set_ylabel("validation score")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------------
# studies (accuracy by layer, RDMs, ...): added by the demo


# Each returns a Figure built without pyplot (save it with :func:`save_figure`); used by
# :mod:`neuroprobe.demo` and study reports.
__all__ += [
    "plot_layer_profile",
    "plot_rsa_profile",
    "plot_rdm_grid",
    "plot_volume_slices",
]

def _study_axes(ax, figsize):
    from matplotlib.figure import Figure

    if ax is None:
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
                       ylabel="score", title=None, ax=None, color="#3b6ea5"):
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
        ax.axvspan(layers.index(highlight) - 0.4, layers.index(highlight) + 0.4, color="#f2c14e",
                   alpha=0.35, lw=0)
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
    colors = ["#d1495b" if layer == highlight else "#3b6ea5" for layer in layers]
    ax.bar(x, values, color=colors, yerr=None if errors is None else np.asarray(errors, float),
           capsize=3, width=0.7)
    if ceiling is not None:
        lower, upper = (ceiling.lower, ceiling.upper) if hasattr(ceiling, "lower") else ceiling
        ax.axhspan(lower, upper, color="0.6", alpha=0.35, lw=0, label="noise ceiling")
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
