"""Figures of what happens inside the network: activation maps, saliency, top, optimal and
minimal stimuli, receptive fields, lesions, training curves."""

from __future__ import annotations

import numpy as np

from neuroprobe.plotting._style import _figure, _grid_shape, _off, to_rgb_image

__all__ = [
    "plot_activation_maps",
    "plot_saliency",
    "plot_top_stimuli",
    "plot_optimal_stimuli",
    "plot_receptive_fields",
    "plot_minimal_stimulus",
    "plot_lesion",
    "plot_training_history",
]



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


