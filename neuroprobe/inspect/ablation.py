"""Ablation: silence channels with forward hooks (weights untouched) and lesion studies."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from neuroprobe._utils import resolve_device
from neuroprobe.exceptions import UnitError
from neuroprobe.models.hooks import forward_hook
from neuroprobe.models.inputs import load_images
from neuroprobe.models.resolve import resolve_model

__all__ = ["ablate", "LesionResult", "lesion_study"]


def _channels(value, layer):
    if isinstance(value, (int, np.integer)):
        value = [int(value)]
    try:
        chans = sorted({int(c) for c in value})
    except (TypeError, ValueError):
        raise UnitError(f"channels of layer {layer!r} must be integers, got {value!r}") from None
    if any(c < 0 for c in chans):
        raise UnitError(f"channels of layer {layer!r} must be >= 0, got {chans}")
    return chans


@contextlib.contextmanager
def ablate(model, layers, value=0.0):
    """Context manager setting chosen channels of chosen layers to ``value`` (default 0).

    Forward hooks replace the layer outputs; weights are never modified and the hooks are removed
    on exit, even after an error.

    Parameters
    ----------
    model : torch.nn.Module, ModelSpec, fitted DNNFeatureExtractor or model name
        With an extractor, ``extractor.transform`` inside the block returns ablated features.
    layers : dict of str -> int or list of int
        Layer name or alias -> channels (dimension 1 of the output) to silence.
    value : float
        Value written into the ablated channels.

    Yields
    ------
    torch.nn.Module
        The (hooked) module.

    Examples
    --------
    >>> with ablate(net, {"conv3": [0, 5]}) as hooked:  # doctest: +SKIP
    ...     out = hooked(x)
    """
    if not isinstance(layers, dict) or not layers:
        raise TypeError("layers must be a non-empty dict {layer: channels}")
    info = resolve_model(model, device=None)
    plan = []
    for layer, chans in layers.items():
        module_name, module = info.layer(layer)
        plan.append((layer, module_name, module, _channels(chans, layer)))

    def make_hook(layer, chans):
        index = torch.tensor(chans)

        def hook(_module, _inputs, output):
            if not isinstance(output, torch.Tensor) or output.ndim < 2:
                raise UnitError(f"layer {layer!r} output cannot be ablated by channel")
            if chans[-1] >= output.shape[1]:
                raise UnitError(
                    f"channel {chans[-1]} is out of range for layer {layer!r}: its output has "
                    f"shape {tuple(output.shape[1:])} (channels, ...)"
                )
            out = output.clone()
            out[:, index.to(out.device)] = value
            return out

        return hook

    with contextlib.ExitStack() as stack:
        for layer, _, module, chans in plan:
            stack.enter_context(forward_hook(module, make_hook(layer, chans)))
        yield info.module


@dataclass
class LesionResult:
    """Result of :func:`lesion_study`.

    Attributes
    ----------
    layer : str
    channels : ndarray of int
        Ablated channels, one at a time.
    baseline : float
        Score of the intact model (or 0 for the output change).
    scores : ndarray
        Score with each channel ablated (or the relative output change).
    delta : ndarray
        ``baseline - scores`` for a score (the drop caused by the lesion); the relative output
        change otherwise.
    """

    layer: str
    channels: np.ndarray
    baseline: float
    scores: np.ndarray
    delta: np.ndarray

    def to_rows(self):
        """List of dicts (layer, channel, score, delta), e.g. for ``csv.DictWriter``."""
        return [
            {"layer": self.layer, "channel": int(c), "score": float(s), "delta": float(d)}
            for c, s, d in zip(self.channels, self.scores, self.delta)
        ]

    def save(self, folder):
        """Write ``lesion.csv`` (the rows of :meth:`to_rows`) into ``folder``.

        Returns
        -------
        list of Path
            The files written.
        """
        from pathlib import Path

        from neuroprobe.io.arrays import write_table

        fields = ["layer", "channel", "score", "delta"]
        return [write_table(Path(folder) / "lesion.csv", self.to_rows(), fields)]


def _module_outputs(info, x, output_layer, batch_size, device):
    dev = resolve_device(device)
    store = {}
    watch = contextlib.nullcontext()
    if output_layer is not None:
        _, module = info.layer(output_layer)

        def hook(_m, _i, out):
            store["out"] = out

        watch = forward_hook(module, hook)
    outs = []
    with watch, torch.no_grad():
        for s in range(0, len(x), batch_size):
            y = info.module(x[s : s + batch_size].to(dev))
            y = store["out"] if output_layer is not None else y
            outs.append(y.detach().float().reshape(len(y), -1).cpu())
    return torch.cat(outs).numpy()


def lesion_study(
    model,
    stimuli,
    layer,
    channels=None,
    *,
    score=None,
    output_layer=None,
    batch_size=32,
    weights="DEFAULT",
    random_state=None,
    device="cpu",
    verbose=0,
):
    """Ablate each channel of a layer in turn and measure what changes.

    Parameters
    ----------
    model : str, torch.nn.Module, ModelSpec or fitted DNNFeatureExtractor
        With a fitted extractor the measured outputs are its features
        (``extractor.transform(stimuli)``); otherwise the network's output (or ``output_layer``'s).
    stimuli : paths, StimulusSet, PIL images, uint8 array or float tensor
    layer : str
        Layer whose channels are ablated.
    channels : list of int, optional
        Channels to ablate (default: all channels of the layer).
    score : callable, optional
        ``score(outputs) -> float`` on the ``(n_stimuli, n_outputs)`` outputs, e.g. a
        cross-validated decoding or encoding score. Without it, the result is the relative change
        of the outputs ``||Y_lesioned - Y|| / ||Y||``.
    output_layer : str, optional
        Layer whose output is measured (modules only; default: the network's output).
    batch_size : int
    weights, random_state, device :
        Model arguments.
    verbose : int
        Show a progress bar.

    Returns
    -------
    LesionResult
    """
    extractor = model if hasattr(model, "model_") and hasattr(model, "transform") else None
    info = resolve_model(model, weights=weights, random_state=random_state,
                         device=None if extractor is not None else resolve_device(device))
    _, module = info.layer(layer)
    x = None
    if extractor is not None:
        def outputs():
            return np.asarray(extractor.transform(stimuli), dtype=np.float32)
    else:
        x = load_images(stimuli, info)

        def outputs():
            return _module_outputs(info, x, output_layer, batch_size, device)

    if channels is None:
        shape = {}

        def probe(_m, _i, out):
            shape["c"] = out.shape[1]

        with forward_hook(module, probe), torch.no_grad():
            sample = x[:1] if x is not None else load_images(stimuli[:1], info)
            info.module(sample.to(info.device))
        channels = list(range(shape["c"]))
    channels = _channels(channels, layer)
    base_out = outputs()
    baseline = float(score(base_out)) if score is not None else 0.0
    norm = float(np.linalg.norm(base_out)) or 1.0
    scores = np.empty(len(channels))
    iterator = channels
    if verbose:
        from tqdm.auto import tqdm

        iterator = tqdm(channels, desc=f"lesion {layer}")
    for k, c in enumerate(iterator):
        with ablate(info, {layer: [c]}):
            out = outputs()
        if score is not None:
            scores[k] = float(score(out))
        else:
            scores[k] = float(np.linalg.norm(out - base_out)) / norm
    delta = baseline - scores if score is not None else scores.copy()
    return LesionResult(layer=layer, channels=np.asarray(channels), baseline=baseline,
                        scores=scores, delta=delta)
