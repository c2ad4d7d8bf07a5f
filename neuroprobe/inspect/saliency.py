"""Saliency maps: the gradient of a unit's value with respect to the input image."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from neuroprobe._progress import progress
from neuroprobe.inspect.units import (
    check_metric,
    fill_doc,
    prepare_inspection,
    require_differentiable,
)
from neuroprobe.models.inputs import to_display

__all__ = ["SaliencyMaps", "saliency", "guided_relus"]

METHODS = ("vanilla", "guided", "smoothgrad", "gradient_x_input")


@contextlib.contextmanager
def guided_relus(module):
    """Make every ``nn.ReLU`` of ``module`` pass only positive gradients back (guided backprop).

    Full backward hooks (``register_full_backward_hook``) clamp the gradient each ReLU sends to its
    input at zero; in-place ReLUs are made out-of-place for the duration (full backward hooks
    cannot wrap in-place operations). Everything is restored on exit. ReLUs written as
    ``torch.nn.functional.relu`` inside ``forward`` are not modules and are not affected.

    Yields
    ------
    int
        The number of ReLU modules hooked.
    """
    relus = [m for m in module.modules() if isinstance(m, torch.nn.ReLU)]
    handles, inplace = [], []

    def hook(_module, grad_input, _grad_output):
        return tuple(None if g is None else g.clamp(min=0) for g in grad_input)

    try:
        for m in relus:
            inplace.append(m.inplace)
            m.inplace = False
            handles.append(m.register_full_backward_hook(hook))
        yield len(relus)
    finally:
        for h in handles:
            h.remove()
        for m, flag in zip(relus, inplace):
            m.inplace = flag


class SaliencyMaps(np.ndarray):
    """Saliency maps (an ndarray) that carry the images they belong to.

    The array holds the gradients, shape ``(n, C, H, W)`` for one target or
    ``(n_targets, n, C, H, W)`` for a list. Only the array returned by :func:`saliency` carries the
    attributes below; arrays derived from it (slices, arithmetic) are plain maps without them.

    Attributes
    ----------
    maps : ndarray
        The gradients as a plain ndarray.
    images : ndarray (n, H, W, C) in [0, 1]
        The images in the **preprocessed frame** (the model's resizing and cropping, with its
        normalisation undone for display): the maps' pixels are these pixels. Overlay the maps on
        these, not on the original pictures (:func:`neuroprobe.plotting.plot_saliency` does when
        given this object).
    targets : list of Target
    method : str
    metric : str
    """

    def __new__(cls, maps, images=None, targets=None, method=None, metric=None):
        obj = np.asarray(maps).view(cls)
        obj.images = images
        obj.targets = targets
        obj.method = method
        obj.metric = metric
        return obj

    def __array_finalize__(self, obj):
        # derived arrays (slices, results of arithmetic) are maps without their images
        self.images = None
        self.targets = None
        self.method = None
        self.metric = None

    def __reduce__(self):  # pickle as a plain ndarray
        return np.asarray(self).__reduce__()

    @property
    def maps(self):
        """The gradients as a plain ndarray."""
        return np.asarray(self)

    def save(self, folder, stim_ids=None, attrs=None):
        """Write ``saliency.h5`` into ``folder``: one dataset ``c<channel>`` per target (its
        ``(n, C, H, W)`` maps), ``stim_ids`` when given, and ``method`` / ``metric`` plus
        ``attrs`` as file attributes.

        Returns
        -------
        list of Path
            The files written.
        """
        from pathlib import Path

        from neuroprobe.io.arrays import write_h5

        maps = self.maps if self.maps.ndim == 5 else self.maps[None]
        targets = self.targets if isinstance(self.targets, (list, tuple)) else [self.targets]
        datasets = {} if stim_ids is None else {"stim_ids": np.asarray(stim_ids)}
        for t, m in zip(targets, maps):
            datasets[f"c{t.channel}"] = m
        meta = {"method": self.method, "metric": self.metric, **(attrs or {})}
        return [write_h5(Path(folder) / "saliency.h5", datasets,
                         {k: v for k, v in meta.items() if v is not None})]


def _gradients(probe, x, targets, metric="mean"):
    """Gradients of each target's summed values with respect to the batch ``x``.

    One forward pass serves every target (in any layers); each target's gradient is its own
    exact backward pass through the retained graph. Returns a list of ``(n, C, H, W)`` tensors.
    """
    x = x.detach().clone().requires_grad_(True)
    grads = []
    with torch.enable_grad():
        outs = probe.outputs(x)
        for t in targets:
            require_differentiable(outs[t.layer], x, t, probe.module_names[t.layer])
        values = probe.multi_values(x, targets, metric, outputs=outs)
        for k, t in enumerate(targets):
            (grad,) = torch.autograd.grad(values[:, k].sum(), x, allow_unused=True,
                                          retain_graph=k < len(targets) - 1)
            if grad is None:
                raise ValueError(
                    f"layer {t.layer!r} ({probe.module_names[t.layer]}) is not differentiable "
                    "with respect to the input: no gradient reaches the image (an argmax, a "
                    "detach or torch.no_grad between the input and the layer). Choose an earlier "
                    "layer."
                )
            grads.append(grad)
    return grads


@fill_doc
def saliency(
    model,
    images,
    target,
    method="vanilla",
    *,
    n_samples=25,
    noise_level=0.15,
    batch_size=32,
    metric="mean",
    weights="DEFAULT",
    random_state=None,
    device="cpu",
):
    """Gradient of a unit's value with respect to the input images.

    A list of targets is served by one forward pass per batch (one backward pass per target
    through the retained graph): every target's gradient equals the one computed alone, and
    SmoothGrad uses the same noisy copies for every target.

    Parameters
    ----------
    %(model)s
    %(images)s
    target : tuple or str, or list of those
        ``(layer, channel)`` (the channel's map summarised by ``metric``) or
        ``(layer, channel, row, col)``.
    method : {"vanilla", "guided", "smoothgrad", "gradient_x_input"}
        ``vanilla``: d value / d input. ``guided``: guided backpropagation (ReLUs pass only
        positive gradients). ``smoothgrad``: the mean gradient over ``n_samples`` noisy copies of
        each image (noise standard deviation ``noise_level`` times the image's value range).
        ``gradient_x_input``: gradient times input.
    n_samples : int
        Noisy copies per image (smoothgrad).
    noise_level : float
        Noise standard deviation relative to each image's max - min (smoothgrad).
    batch_size : int
        Images (or noisy copies) per forward/backward pass.
    metric : {"mean", "max"}
        A channel target's value: the spatial mean (default) or max of its map (the gradient of
        the max flows through the maximal position).
    %(weights)s
    %(device)s

    Returns
    -------
    SaliencyMaps
        An ndarray of float32, shape (n, C, H, W) (or (n_targets, n, C, H, W) for a list of
        targets), with ``.images``: the images in the preprocessed frame of the maps.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if batch_size < 1 or n_samples < 1:
        raise ValueError("batch_size and n_samples must be >= 1")
    check_metric(metric)
    job = prepare_inspection(model, images, target, caller="saliency", weights=weights,
                             random_state=random_state, device=device, generator=True)
    info, dev, targets, probe, x_all, gen = (job.info, job.device, job.units, job.probe, job.x,
                                             job.generator)
    out = np.empty((len(targets), *x_all.shape), dtype=np.float32)
    guide = guided_relus(info.module) if method == "guided" else contextlib.nullcontext(None)
    with guide as n_relus:
        if method == "guided" and n_relus == 0:
            import warnings

            warnings.warn(
                f"{info.name} has no nn.ReLU modules; guided backprop equals vanilla gradients",
                stacklevel=2,
            )
        if method == "smoothgrad":
            per = max(1, batch_size // n_samples)
            for start in progress(range(0, len(x_all), per), desc="smoothgrad",
                                  unit="batch"):
                xb = x_all[start : start + per]
                span = (xb.amax(dim=(1, 2, 3)) - xb.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1, 1)
                noise = torch.randn((len(xb), n_samples, *xb.shape[1:]), generator=gen)
                noisy = xb[:, None] + noise * (noise_level * span)
                grads = [[] for _ in targets]
                flat = noisy.reshape(-1, *xb.shape[1:])
                for s in range(0, len(flat), batch_size):
                    for k, g in enumerate(_gradients(probe, flat[s : s + batch_size].to(dev),
                                                     targets, metric)):
                        grads[k].append(g.cpu())
                for k in range(len(targets)):
                    g = torch.cat(grads[k]).view(len(xb), n_samples, *xb.shape[1:]).mean(dim=1)
                    out[k, start : start + len(xb)] = g.numpy()
        else:
            for start in range(0, len(x_all), batch_size):
                xb = x_all[start : start + batch_size].to(dev)
                for k, g in enumerate(_gradients(probe, xb, targets, metric)):
                    if method == "gradient_x_input":
                        g = g * xb
                    out[k, start : start + len(xb)] = g.detach().cpu().numpy()
    return SaliencyMaps(out[0] if job.single else out, images=to_display(x_all, info),
                        targets=targets, method=method, metric=metric)
