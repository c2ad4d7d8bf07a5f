"""Saliency maps: the gradient of a unit's value with respect to the input image."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from neuroprobe.inspect.targets import (
    LayerProbe,
    load_images,
    parse_target,
    require_differentiable,
    require_image_model,
    resolve_model,
    target_values,
    torch_generator,
)

__all__ = ["saliency", "guided_relus"]

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


def _gradients(probe, x, target):
    """Gradient of the summed target values with respect to the batch ``x`` (a fresh leaf)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = probe(x)
        require_differentiable(out, x, target, probe.module_name)
        values = target_values(out, target, probe.module_name)
        (grad,) = torch.autograd.grad(values.sum(), x, allow_unused=True)
    if grad is None:
        raise ValueError(
            f"layer {target.layer!r} ({probe.module_name}) is not differentiable with respect to "
            "the input: no gradient reaches the image (an argmax, a detach or torch.no_grad "
            "between the input and the layer). Choose an earlier layer."
        )
    return grad


def saliency(
    model,
    images,
    target,
    method="vanilla",
    *,
    n_samples=25,
    noise_level=0.15,
    batch_size=32,
    weights="DEFAULT",
    random_state=None,
    device="cpu",
):
    """Gradient of a unit's value with respect to the input images.

    Parameters
    ----------
    model : str, torch.nn.Module, ModelSpec or fitted DNNFeatureExtractor
        An image model.
    images : paths, StimulusSet, PIL images, uint8 array or float tensor (n, C, H, W)
        Pictures are preprocessed by the model's preprocessing; a float tensor is used as is.
    target : tuple or str
        ``(layer, channel)`` (spatial mean of the channel) or ``(layer, channel, row, col)``.
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
    weights, random_state :
        Passed to :func:`neuroprobe.models.build_model` when ``model`` is a name.
    device : str
        Where to compute.

    Returns
    -------
    ndarray of float32, shape (n, C, H, W)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if batch_size < 1 or n_samples < 1:
        raise ValueError("batch_size and n_samples must be >= 1")
    info = resolve_model(model, weights=weights, random_state=random_state, device=device)
    require_image_model(info, "saliency")
    target = parse_target(target)
    probe = LayerProbe(info, target.layer)
    x_all = load_images(images, info)
    dev = torch.device(device)
    out = np.empty(tuple(x_all.shape), dtype=np.float32)
    guide = guided_relus(info.module) if method == "guided" else contextlib.nullcontext(None)
    gen = torch_generator(random_state)
    with guide as n_relus:
        if method == "guided" and n_relus == 0:
            import warnings

            warnings.warn(
                f"{info.name} has no nn.ReLU modules; guided backprop equals vanilla gradients",
                stacklevel=2,
            )
        if method == "smoothgrad":
            per = max(1, batch_size // n_samples)
            for start in range(0, len(x_all), per):
                xb = x_all[start : start + per]
                span = (xb.amax(dim=(1, 2, 3)) - xb.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1, 1)
                noise = torch.randn((len(xb), n_samples, *xb.shape[1:]), generator=gen)
                noisy = xb[:, None] + noise * (noise_level * span)
                grads = []
                flat = noisy.reshape(-1, *xb.shape[1:])
                for s in range(0, len(flat), batch_size):
                    grads.append(_gradients(probe, flat[s : s + batch_size].to(dev), target).cpu())
                g = torch.cat(grads).view(len(xb), n_samples, *xb.shape[1:]).mean(dim=1)
                out[start : start + len(xb)] = g.numpy()
        else:
            for start in range(0, len(x_all), batch_size):
                xb = x_all[start : start + batch_size].to(dev)
                g = _gradients(probe, xb, target)
                if method == "gradient_x_input":
                    g = g * xb
                out[start : start + len(xb)] = g.detach().cpu().numpy()
    return out
