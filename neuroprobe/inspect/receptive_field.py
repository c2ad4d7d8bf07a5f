"""Empirical receptive fields: occlusion maps and upsampled activation maps."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neuroprobe.inspect.targets import (
    LayerProbe,
    UnitError,
    load_images,
    parse_target,
    require_image_model,
    resolve_model,
    target_values,
)

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


def occlusion_map(
    model,
    images,
    target,
    *,
    window=8,
    stride=4,
    fill=0.0,
    batch_size=64,
    weights="DEFAULT",
    random_state=None,
    device="cpu",
):
    """How much occluding each window of the image lowers a unit's value.

    Many occluded copies of each image go through the network in one batch (``batch_size``
    copies per forward pass), instead of one forward pass per window position.

    Parameters
    ----------
    model : str, torch.nn.Module, ModelSpec or fitted DNNFeatureExtractor
    images : paths, StimulusSet, PIL images, uint8 array or float tensor (n, C, H, W)
    target : tuple or str
        ``(layer, channel)`` or ``(layer, channel, row, col)``.
    window : int or (int, int)
        Occluder size in pixels (of the preprocessed input).
    stride : int or (int, int)
        Step between window positions.
    fill : float or "mean"
        Value written into the occluded window (0 is the dataset mean after normalisation;
        "mean" uses each image's per-channel mean).
    batch_size : int
        Occluded copies per forward pass.
    weights, random_state, device :
        Model arguments.

    Returns
    -------
    ndarray of float32, shape (n, n_rows, n_cols)
        ``value(image) - value(image occluded at window (i, j))``; positions from
        :func:`occlusion_positions`.
    """
    info = resolve_model(model, weights=weights, random_state=random_state, device=device)
    require_image_model(info, "occlusion_map")
    target = parse_target(target)
    probe = LayerProbe(info, target.layer)
    x_all = load_images(images, info)
    n, c, h, w = x_all.shape
    wy, wx = _pair(window, "window")
    rows, cols = occlusion_positions(h, w, window, stride)
    positions = [(r, q) for r in rows for q in cols]
    dev = torch.device(device)
    result = np.empty((n, len(rows), len(cols)), dtype=np.float32)
    # masks of all positions are built per chunk: (p, 1, H, W)
    with torch.no_grad():
        for i in range(n):
            x = x_all[i : i + 1].to(dev)
            base = target_values(probe(x), target, probe.module_name)[0]
            value = (
                x.mean(dim=(2, 3), keepdim=True) if isinstance(fill, str) and fill == "mean"
                else torch.as_tensor(float(fill), device=dev)
            )
            drops = []
            for start in range(0, len(positions), batch_size):
                chunk = positions[start : start + batch_size]
                mask = torch.zeros((len(chunk), 1, h, w), dtype=torch.bool, device=dev)
                for k, (r, q) in enumerate(chunk):
                    mask[k, 0, r : r + wy, q : q + wx] = True
                occluded = torch.where(mask, value, x)
                vals = target_values(probe(occluded), target, probe.module_name)
                drops.append((base - vals).cpu())
            result[i] = torch.cat(drops).view(len(rows), len(cols)).numpy()
    return result


def upsampling_map(
    model,
    images,
    target,
    *,
    mode="bilinear",
    weights="DEFAULT",
    random_state=None,
    device="cpu",
):
    """A channel's activation map upsampled to the input size (an empirical receptive field).

    Parameters
    ----------
    model : str, torch.nn.Module, ModelSpec or fitted DNNFeatureExtractor
    images : paths, StimulusSet, PIL images, uint8 array or float tensor (n, C, H, W)
    target : tuple or str
        ``(layer, channel)`` of a convolutional layer (output ``(C, rows, cols)``).
    mode : {"bilinear", "nearest", "bicubic"}
        Interpolation.

    Returns
    -------
    ndarray of float32, shape (n, H, W)
    """
    info = resolve_model(model, weights=weights, random_state=random_state, device=device)
    require_image_model(info, "upsampling_map")
    target = parse_target(target)
    if target.is_unit:
        raise UnitError(
            f"upsampling_map maps a whole channel; give (layer, channel), not {target.label}"
        )
    probe = LayerProbe(info, target.layer)
    x_all = load_images(images, info)
    h, w = x_all.shape[-2:]
    maps = []
    with torch.no_grad():
        for start in range(0, len(x_all), 32):
            out = probe(x_all[start : start + 32].to(torch.device(device)))
            target_values(out, target, probe.module_name)  # validates the channel
            if out.ndim != 4:
                raise UnitError(
                    f"layer {target.layer!r} has output shape {tuple(out.shape[1:])}; an "
                    "upsampling map needs a (channels, rows, cols) map"
                )
            fmap = out[:, target.channel : target.channel + 1].float()
            kwargs = {} if mode == "nearest" else {"align_corners": False}
            maps.append(F.interpolate(fmap, size=(h, w), mode=mode, **kwargs)[:, 0].cpu())
    return torch.cat(maps).numpy().astype(np.float32)
