"""Optimal stimuli: activation maximisation from noise with image priors."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neuroprobe._progress import progress
from neuroprobe.inspect.units import (
    check_metric,
    fill_doc,
    prepare_inspection,
    require_differentiable,
    target_values,
)
from neuroprobe.models.registry import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["OptimalStimulus", "optimal_stimulus", "total_variation"]

# Square root of the colour covariance of ImageNet (the decorrelated colour space of Lucid).
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_SQRT = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


@dataclass
class OptimalStimulus:
    """Result of :func:`optimal_stimulus`.

    Attributes
    ----------
    images : ndarray (n_targets, C, H, W)
        Optimised images in [0, 1] (RGB, before the model's normalisation).
    inputs : ndarray (n_targets, C, H, W)
        The normalised tensors fed to the model.
    trace : ndarray (n_iter + 1, n_targets)
        Target value at the start (row 0) and after every step (on the un-jittered image).
    targets : list of Target
    """

    images: np.ndarray
    inputs: np.ndarray
    trace: np.ndarray
    targets: list

    def save(self, folder, attrs=None):
        """Write ``activation_trace.csv`` and ``optimal_stimuli.h5`` into ``folder``.

        The CSV has a ``step`` column and one column per target (its label); the HDF5 file holds
        ``images``, ``inputs``, ``trace`` and ``channels``, with ``attrs`` (e.g. layer, metric)
        as file attributes.

        Returns
        -------
        list of Path
            The files written.
        """
        from pathlib import Path

        from neuroprobe.io.arrays import write_h5, write_table

        folder = Path(folder)
        labels = [t.label for t in self.targets]
        rows = [{"step": s, **{lab: float(self.trace[s, i]) for i, lab in enumerate(labels)}}
                for s in range(len(self.trace))]
        channels = np.asarray([t.channel for t in self.targets])
        return [
            write_table(folder / "activation_trace.csv", rows, ["step", *labels]),
            write_h5(folder / "optimal_stimuli.h5",
                     {"images": self.images, "inputs": self.inputs, "trace": self.trace,
                      "channels": channels}, attrs),
        ]


def total_variation(x):
    """Mean absolute difference of neighbouring pixels per image: ``(n, C, H, W)`` -> ``(n,)``."""
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
    return dx + dy


def _gaussian_blur(x, sigma):
    radius = max(1, int(math.ceil(2 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    kx = k.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kx, groups=c)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), ky, groups=c)
    return x


class _PixelImage(torch.nn.Module):
    def __init__(self, n, c, h, w, gen, init_std):
        super().__init__()
        self.param = torch.nn.Parameter(torch.randn((n, c, h, w), generator=gen) * init_std)

    def forward(self):
        return torch.sigmoid(self.param)


class _FourierImage(torch.nn.Module):
    """Image = sigmoid(colour-decorrelate(irfft2(scaled spectrum))) (Olah et al. 2017, Lucid)."""

    def __init__(self, n, c, h, w, gen, init_std, decay_power=1.0):
        super().__init__()
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        freqs = torch.sqrt(fx**2 + fy**2)
        scale = 1.0 / torch.clamp(freqs, min=1.0 / max(h, w)) ** decay_power
        self.register_buffer("scale", scale * math.sqrt(h * w))
        self.size = (h, w)
        self.param = torch.nn.Parameter(
            torch.randn((n, c, *freqs.shape, 2), generator=gen) * init_std
        )

    def forward(self):
        spectrum = torch.view_as_complex(self.param) * self.scale
        img = torch.fft.irfft2(spectrum, s=self.size) / 4.0
        if img.shape[1] == 3:
            img = torch.einsum("ij,njhw->nihw", _COLOR_SQRT.to(img), img)
        return torch.sigmoid(img)


def _jitter(x, pixels, gen):
    if pixels <= 0:
        return x
    dy, dx = torch.randint(-pixels, pixels + 1, (2,), generator=gen).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def _normaliser(info, c):
    pinfo = info.preprocess_info or {}
    mean = pinfo.get("mean", IMAGENET_MEAN if c == 3 else None)
    std = pinfo.get("std", IMAGENET_STD if c == 3 else None)
    if mean is None or std is None:
        return lambda x: x
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return lambda x: (x - mean_t.to(x.device)) / std_t.to(x.device)


def _input_shape(info, input_shape):
    if input_shape is not None:
        return tuple(int(s) for s in input_shape)
    pinfo = info.preprocess_info or {}
    for key in ("input_shape", "crop", "resize"):
        value = pinfo.get(key)
        if isinstance(value, int):
            value = [value]
        if isinstance(value, (list, tuple)) and len(value) == 3:
            return tuple(int(v) for v in value)
        if isinstance(value, (list, tuple)) and len(value) in (1, 2):
            h, w = (value[0], value[0]) if len(value) == 1 else value
            return (3, int(h), int(w))
    return (3, 224, 224)


@fill_doc
def optimal_stimulus(
    model,
    target,
    *,
    n_iter=128,
    lr=0.1,
    input_shape=None,
    parameterization="fourier",
    l2=0.0,
    tv=0.0,
    jitter=4,
    blur_every=0,
    blur_sigma=0.5,
    init_std=0.1,
    metric="mean",
    weights="DEFAULT",
    random_state=None,
    device="cpu",
):
    """Synthesise the image that maximises a unit's value (activation maximisation).

    Starting from low-amplitude noise, Adam ascends ``value(image) - l2 * mean(x**2) - tv * TV(x)``
    where ``x`` is the normalised input. The image lives in [0, 1] through a sigmoid and is
    parameterised either by its pixels or by a decorrelated Fourier spectrum (frequencies scaled by
    1/f, colours decorrelated; Olah et al. 2017), which favours natural-looking images. Each step
    shifts the image by a random jitter (transformation robustness); with pixel parameterisation
    the image can be blurred every ``blur_every`` steps (Yosinski et al. 2015).

    Parameters
    ----------
    %(model)s
    target : tuple, str or list of those
        ``(layer, channel)`` or ``(layer, channel, row, col)``; a list optimises one image per
        target in one batch (one forward pass per step serves every target, in any layers).
    n_iter : int
        Optimisation steps.
    lr : float
        Adam learning rate.
    input_shape : tuple (C, H, W), optional
        Image size; defaults to the model's preprocessing size (or 3 x 224 x 224).
    parameterization : {"fourier", "pixel"}
    l2, tv : float
        Weights of the L2 and total-variation penalties (on the normalised input).
    jitter : int
        Maximum random shift in pixels per step (0: none).
    blur_every : int
        Blur the pixel parameters every that many steps (0: never; pixel parameterisation only).
    blur_sigma : float
        Gaussian blur width in pixels.
    init_std : float
        Standard deviation of the starting noise (in parameter space).
    metric : {"mean", "max"}
        A channel target's value: the spatial mean (default) or max of its map.
    weights, random_state :
        ``build_model`` arguments; ``random_state`` also seeds the noise and the jitter.
    %(device)s

    Returns
    -------
    OptimalStimulus
    """
    _check_options(parameterization, blur_every, n_iter)
    check_metric(metric)
    job = prepare_inspection(model, None, target if isinstance(target, list) else [target],
                             caller="optimal_stimulus", weights=weights,
                             random_state=random_state, device=device, generator=True)
    info, targets, probe, gen = job.info, job.units, job.probe, job.generator
    c, h, w = _input_shape(info, input_shape)
    cls = _FourierImage if parameterization == "fourier" else _PixelImage
    image = cls(len(targets), c, h, w, gen, init_std).to(job.device)
    normalise = _normaliser(info, c)
    objective = _Objective(probe, targets, metric, jitter, gen, l2=l2, tv=tv)

    def track():
        return objective.values(probe.outputs(normalise(image()))).cpu().numpy()

    blur = (lambda p: _gaussian_blur(p, blur_sigma)) if blur_every else None
    with _frozen(info.module):
        trace = _ascend(image, normalise, objective.loss, track, n_iter=n_iter, lr=lr,
                        blur=blur, blur_every=blur_every)
    with torch.no_grad():
        img = image()
        inputs = normalise(img)
    return OptimalStimulus(
        images=img.cpu().numpy().astype(np.float32),
        inputs=inputs.cpu().numpy().astype(np.float32),
        trace=trace,
        targets=targets,
    )


class _Objective:
    """The values of the units (image i for unit i) and the loss that gradient descent lowers."""

    def __init__(self, probe, targets, metric, jitter, gen, *, l2, tv):
        self.probe, self.targets, self.metric = probe, targets, metric
        self.jitter, self.gen, self.l2, self.tv = jitter, gen, l2, tv

    def values(self, outs):
        """Value of unit i on image i, ``(n_targets,)``, from the probe's outputs."""
        names = self.probe.module_names
        vals = [target_values(outs[t.layer][i : i + 1], t, names[t.layer], self.metric)
                for i, t in enumerate(self.targets)]
        return torch.cat(vals)

    def loss(self, x):
        """``-sum of values(jittered x) + l2 * mean(x**2) + tv * TV(x)`` (summed over images)."""
        outs = self.probe.outputs(_jitter(x, self.jitter, self.gen))
        for t in self.targets:
            require_differentiable(outs[t.layer], x, t, self.probe.module_names[t.layer])
        total = -self.values(outs).sum()
        if self.l2:
            total = total + self.l2 * x.pow(2).flatten(1).mean(1).sum()
        if self.tv:
            total = total + self.tv * total_variation(x).sum()
        return total


def _check_options(parameterization, blur_every, n_iter):
    if parameterization not in ("fourier", "pixel"):
        raise ValueError(f"parameterization must be 'fourier' or 'pixel', got {parameterization!r}")
    if blur_every and parameterization != "pixel":
        raise ValueError(
            "blur_every applies to parameterization='pixel'; the Fourier parameterisation already "
            "damps high frequencies"
        )
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")


@contextlib.contextmanager
def _frozen(module):
    """Switch off ``requires_grad`` of every parameter of ``module`` (restored on exit)."""
    frozen = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)


def _ascend(image, normalise, loss, track, *, n_iter, lr, blur, blur_every):
    """Run Adam on ``image``'s parameters for ``n_iter`` steps of ``loss(normalise(image()))``.

    Returns the trace ``(n_iter + 1, n_targets)`` of ``track()`` (no gradients) at the start and
    after every step; ``blur`` is applied to the pixel parameters every ``blur_every`` steps.
    """
    with torch.no_grad():
        first = track()
    trace = np.empty((n_iter + 1, *first.shape), dtype=np.float64)
    trace[0] = first
    opt = torch.optim.Adam(image.parameters(), lr=lr)
    for step in progress(range(n_iter), desc="optimal stimulus", unit="step"):
        opt.zero_grad()
        with torch.enable_grad():
            loss(normalise(image())).backward()
        opt.step()
        if blur_every and (step + 1) % blur_every == 0:
            with torch.no_grad():
                image.param.copy_(blur(image.param))
        with torch.no_grad():
            trace[step + 1] = track()
    return trace
