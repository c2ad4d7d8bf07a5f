"""Empirical receptive fields: occlusion maps and upsampled activation maps."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neuroprobe._progress import progress
from neuroprobe.exceptions import UnitError
from neuroprobe.inspect.units import check_metric, fill_doc, prepare_inspection, target_values

__all__ = ["occlusion_map", "occlusion_positions", "upsampling_map"]


def occlusion_positions(height, width, window, stride):
    """Top-left corners ``(rows, cols)`` of the occluding windows over an image."""
    wy, wx = _pair(window, "window")
    sy, sx = _pair(stride, "stride")
    if wy > height or wx > width:
        raise ValueError(f"window {window} is larger than the image ({height} x {width})")
    rows = np.arange(0, height - wy + 1, sy)
    cols = np.arange(0, width - wx + 1, sx)
    return rows, cols


def _pair(value, name):
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value}")
    return value


def _fill_values(x_all, fill, dev):
    """Per-image fill ``(n, C, 1, 1)`` or a scalar tensor."""
    if isinstance(fill, str):
        if fill != "mean":
            raise ValueError(f"fill must be a number or 'mean', got {fill!r}")
        return x_all.mean(dim=(2, 3), keepdim=True).to(dev)
    return torch.as_tensor(float(fill), device=dev)


@fill_doc
def occlusion_map(
    model,
    images,
    target,
    *,
    window=8,
    stride=4,
    fill=0.0,
    batch_size=64,
    metric="mean",
    weights="DEFAULT",
    random_state=None,
    device="cpu",
):
    """How much occluding each window of the image lowers a unit's value.

    Every (image, window position) pair is one occluded copy; the copies go through the network
    ``batch_size`` at a time, and **one forward pass serves every requested target**, in any
    number of layers (the pass stops after the last of them): the cost is that of the bare
    forward pass of the occluded images, whatever the number of units.

    Parameters
    ----------
    %(model)s
    %(images)s
    target : tuple or str, or list of those
        ``(layer, channel)`` or ``(layer, channel, row, col)``; a list maps every target from the
        same occluded passes.
    window : int or (int, int)
        Occluder size in pixels (of the preprocessed input).
    stride : int or (int, int)
        Step between window positions.
    fill : float or "mean"
        Value written into the occluded window (0 is the dataset mean after normalisation;
        "mean" uses each image's per-channel mean).
    batch_size : int
        Occluded copies per forward pass (copies of several images share a pass).
    metric : {"mean", "max"}
        A channel target's value: the spatial mean (default) or max of its map.
    %(weights)s
    %(device)s

    Returns
    -------
    ndarray of float32, shape (n, n_rows, n_cols), or (n_targets, n, n_rows, n_cols) for a list
        ``value(image) - value(image occluded at window (i, j))``; positions from
        :func:`occlusion_positions`.
    """
    check_metric(metric)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch_size = int(batch_size)
    job = prepare_inspection(model, images, target, caller="occlusion_map", weights=weights,
                             random_state=random_state, device=device)
    dev, targets, single, probe, x_all = job.device, job.units, job.single, job.probe, job.x
    n, c, h, w = x_all.shape
    wy, wx = _pair(window, "window")
    rows, cols = occlusion_positions(h, w, window, stride)
    n_pos = len(rows) * len(cols)
    pos_r = np.repeat(rows, len(cols)).tolist()
    pos_c = np.tile(cols, len(rows)).tolist()
    drops = torch.empty((n * n_pos, len(targets)), dtype=torch.float32)
    with torch.no_grad():
        x_dev = x_all.to(dev)
        value = _fill_values(x_dev, fill, dev)
        base = torch.cat([
            probe.multi_values(x_dev[s : s + batch_size], targets, metric).float()
            for s in range(0, n, batch_size)
        ])
        for start in progress(range(0, n * n_pos, batch_size), desc="occlusion",
                              unit="batch"):
            flat = np.arange(start, min(start + batch_size, n * n_pos))
            img_np = flat // n_pos
            img = torch.as_tensor(img_np, device=dev)
            # a copy of the images whose windows are then written in place: cheaper than a
            # full-size mask and torch.where (which cost ~20% of the forward pass)
            occluded = x_dev[img]
            for k, (i, p) in enumerate(zip(img_np.tolist(), (flat % n_pos).tolist())):
                r, q = pos_r[p], pos_c[p]
                occluded[k, :, r : r + wy, q : q + wx] = value[i] if value.ndim else value
            vals = probe.multi_values(occluded, targets, metric).float()
            drops[start : start + len(flat)] = (base[img] - vals).cpu()
    result = drops.T.reshape(len(targets), n, len(rows), len(cols)).numpy()
    return np.ascontiguousarray(result[0] if single else result, dtype=np.float32)


def _whole_channels(units):
    for t in units:
        if t.is_unit:
            raise UnitError(
                f"upsampling_map maps a whole channel; give (layer, channel), not {t.label}"
            )


@fill_doc
def upsampling_map(
    model,
    images,
    target,
    *,
    mode="bilinear",
    batch_size=32,
    weights="DEFAULT",
    random_state=None,
    device="cpu",
):
    """A channel's activation map upsampled to the input size (an empirical receptive field).

    One forward pass per batch of images serves every requested channel, in any number of
    layers.

    Parameters
    ----------
    %(model)s
    %(images)s
    target : tuple or str, or list of those
        ``(layer, channel)`` of a convolutional layer (output ``(C, rows, cols)``).
    mode : {"bilinear", "nearest", "bicubic"}
        Interpolation.
    batch_size : int
        Images per forward pass.
    %(weights)s
    %(device)s

    Returns
    -------
    ndarray of float32, shape (n, H, W), or (n_targets, n, H, W) for a list of targets
    """
    job = prepare_inspection(model, images, target, caller="upsampling_map", weights=weights,
                             random_state=random_state, device=device,
                             check_units=_whole_channels)
    dev, targets, single, probe, x_all = job.device, job.units, job.single, job.probe, job.x
    h, w = x_all.shape[-2:]
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    maps = [[] for _ in targets]
    with torch.no_grad():
        for start in range(0, len(x_all), int(batch_size)):
            outs = probe.outputs(x_all[start : start + int(batch_size)].to(dev))
            for k, t in enumerate(targets):
                out = outs[t.layer]
                target_values(out, t, probe.module_names[t.layer])  # validates the channel
                if out.ndim != 4:
                    raise UnitError(
                        f"layer {t.layer!r} has output shape {tuple(out.shape[1:])}; an "
                        "upsampling map needs a (channels, rows, cols) map"
                    )
                fmap = out[:, t.channel : t.channel + 1].float()
                maps[k].append(F.interpolate(fmap, size=(h, w), mode=mode, **kwargs)[:, 0].cpu())
    result = np.stack([torch.cat(m).numpy() for m in maps]).astype(np.float32)
    return result[0] if single else result
