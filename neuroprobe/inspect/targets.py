"""Targets of the inspection tools: which unit, in which model, on which images.

A *target* names what is looked at inside a network:

- ``(layer, channel)``: the channel's map summarised over space by the *metric* (its value per
  image): ``metric="mean"`` (the default of every inspection function and command: top stimuli,
  saliency, optimal stimuli, occlusion maps, minimal stimuli) averages the map, ``metric="max"``
  takes its largest activation;
- ``(layer, channel, row, col)``: one unit of the channel's map (the metric does not apply);
- the same as a feature-name string of :class:`~neuroprobe.transformers.DNNFeatureExtractor`:
  ``"conv5:c3"`` or ``"conv5:c3:y2:x4"``; for a layer with 1-D output (``fc6``) ``"fc6:u7"``.

``model`` may be a registered model name, a ``torch.nn.Module``, a ``ModelSpec`` or a fitted
``DNNFeatureExtractor``; images may be file paths, a ``StimulusSet``, PIL images, uint8 arrays or an
already preprocessed float tensor ``(n, C, H, W)``. Layer names and aliases are resolved by
:func:`neuroprobe.models.resolve_layer`, so the errors (valid names, closest match) are those of the
rest of neuroprobe.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from neuroprobe._utils import seed_from  # noqa: F401 (re-exported; one rule for every seed)
from neuroprobe.exceptions import UnitError  # noqa: F401 (re-exported)

__all__ = [
    "Target",
    "UnitError",
    "InspectedModel",
    "parse_target",
    "resolve_model",
    "load_images",
    "target_values",
    "LayerProbe",
    "METRICS",
    "check_metric",
    "parse_targets",
    "require_image_model",
    "to_display",
    "torch_generator",
]


@dataclass(frozen=True)
class Target:
    """One inspected unit: a channel (``row``/``col`` None) or one position of its map."""

    layer: str
    channel: int
    row: int | None = None
    col: int | None = None

    @property
    def is_unit(self):
        """Whether the target is one spatial position rather than a whole channel."""
        return self.row is not None

    @property
    def label(self):
        """Feature-name style label (``conv5:c3`` or ``conv5:c3:y2:x4``)."""
        if self.is_unit:
            return f"{self.layer}:c{self.channel}:y{self.row}:x{self.col}"
        return f"{self.layer}:c{self.channel}"


_NAME = re.compile(r"^(?P<layer>.+?):(?:c|u)(?P<c>\d+)(?::y(?P<y>\d+):x(?P<x>\d+))?$")


def parse_targets(target):
    """Normalise one target or a list of targets; return ``(list of Target, is_single)``.

    A single target (a tuple, a string or a :class:`Target`) gives a one-element list and
    ``True``; a list gives every target parsed and ``False`` (results then gain a leading
    target axis).
    """
    if isinstance(target, list):
        if not target:
            raise UnitError("no targets given (an empty list)")
        return [parse_target(t) for t in target], False
    return [parse_target(target)], True


METRICS = ("mean", "max")


def check_metric(metric):
    """Raise a clear ``ValueError`` unless ``metric`` is one of :data:`METRICS`."""
    if metric not in METRICS:
        raise ValueError(
            f"metric must be one of {METRICS} (how a channel's map becomes one value per image: "
            f"its spatial mean or its spatial max), got {metric!r}"
        )
    return metric


def parse_target(target, layer=None):
    """Return a :class:`Target` from a tuple, a feature name or a :class:`Target`.

    Parameters
    ----------
    target : Target, tuple, str or int
        ``(layer, channel)``, ``(layer, channel, row, col)``, ``"layer:c3"``, ``"layer:c3:y1:x2"``;
        an int (the channel) when ``layer`` is given.
    layer : str, optional
        Layer used when ``target`` is only a channel.

    Returns
    -------
    Target
    """
    if isinstance(target, Target):
        return target
    if isinstance(target, (int, np.integer)) and layer is not None:
        return Target(str(layer), int(target))
    if isinstance(target, str):
        match = _NAME.match(target)
        if match is None:
            raise UnitError(
                f"target {target!r} is not a unit name; expected 'layer:c<channel>' or "
                "'layer:c<channel>:y<row>:x<col>' (or a tuple (layer, channel[, row, col]))"
            )
        y, x = match.group("y"), match.group("x")
        return Target(
            match.group("layer"),
            int(match.group("c")),
            None if y is None else int(y),
            None if x is None else int(x),
        )
    if isinstance(target, (tuple, list)) and len(target) in (2, 4):
        name, *idx = target
        if not isinstance(name, str):
            raise UnitError(f"the first element of target {target!r} must be a layer name (str)")
        try:
            idx = [int(i) for i in idx]
        except (TypeError, ValueError):
            raise UnitError(f"target {target!r}: channel, row and col must be integers") from None
        if any(i < 0 for i in idx):
            raise UnitError(f"target {target!r}: indices must be non-negative")
        return Target(name, *idx)
    raise UnitError(
        f"cannot read target {target!r}; expected (layer, channel), (layer, channel, row, col) "
        "or a feature name such as 'conv5:c3'"
    )


# --------------------------------------------------------------------------------------------------
# models


@dataclass
class InspectedModel:
    """A model ready for inspection: the module plus how to feed it images."""

    module: torch.nn.Module
    preprocess: object = None
    modality: str = "image"
    name: str = "model"
    spec: object = None
    preprocess_info: dict = field(default_factory=dict)

    def layer(self, name):
        """Return ``(module_name, module)`` for a layer name or alias (shared registry rules)."""
        resolved = _resolve_layer_name(self, name)
        return resolved, dict(self.module.named_modules())[resolved]

    @property
    def device(self):
        """Device of the module's first parameter (cpu when it has none)."""
        for p in self.module.parameters():
            return p.device
        return torch.device("cpu")


def _resolve_layer_name(info, name):
    from neuroprobe.models import resolve_layer

    return resolve_layer(info.spec if info.spec is not None else info.module, name)


def _spec_to_info(spec):
    return InspectedModel(
        module=spec.module,
        preprocess=spec.preprocess,
        modality=spec.modality or "image",
        name=spec.name or type(spec.module).__name__,
        spec=spec,
        preprocess_info=dict(spec.preprocess_info or {}),
    )


def resolve_model(model, weights="DEFAULT", random_state=None, device="cpu"):
    """Return an :class:`InspectedModel` from a name, a module, a ModelSpec or a fitted extractor.

    Parameters
    ----------
    model : str, torch.nn.Module, ModelSpec, DNNFeatureExtractor or InspectedModel
        Names, modules and factories go through :func:`neuroprobe.models.build_model`; a fitted
        ``DNNFeatureExtractor`` contributes its ``model_``.
    weights : str, path or None, default="DEFAULT"
        Weights for ``build_model`` (pretrained by default, as on the CLI; None: seeded random
        weights, warned once per model name).
    random_state : int or None
        Seed of random weights (None: seed 0).
    device : str, torch.device or None
        Where the module runs (None: leave it where it is).

    Returns
    -------
    InspectedModel
    """
    from neuroprobe.models import build_model

    if isinstance(model, InspectedModel):
        info = model
    elif hasattr(model, "transform") and hasattr(model, "get_params"):  # an extractor
        if not hasattr(model, "model_"):
            raise ValueError(
                f"the {type(model).__name__} is not fitted; call fit() first or pass the model"
            )
        return resolve_model(model.model_, device=device)
    else:
        info = _spec_to_info(build_model(model, weights=weights, random_state=random_state))
    if device is not None and info.device != torch.device(device):
        info.module.to(torch.device(device))
    info.module.eval()
    return info


def require_image_model(info, method):
    """Raise a clear ``ValueError`` when ``info`` is not an image model."""
    if info.modality != "image":
        raise ValueError(
            f"{method} works on image models; {info.name!r} is a {info.modality} model "
            "(its inputs are not images with rows and columns)"
        )


# --------------------------------------------------------------------------------------------------
# images


def _first_conv_channels(module):
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            return m.in_channels
    return None


def _pil_to_rgb(img):
    from neuroprobe.media.image import to_rgb

    return img if img.mode == "RGB" else to_rgb(img)


def _array_to_pils(array, name):
    from PIL import Image

    a = np.asarray(array)
    if a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4) and a.shape[0] not in (1,)):
        a = a[None]
    if a.ndim == 3:  # (n, H, W) grayscale
        return [Image.fromarray(np.ascontiguousarray(x)) for x in a]
    if a.ndim == 4 and a.shape[-1] in (1, 3, 4):
        return [Image.fromarray(np.ascontiguousarray(x[..., 0] if a.shape[-1] == 1 else x))
                for x in a]
    raise ValueError(
        f"{name}: uint8 images must be (H, W), (H, W, 3|4), (n, H, W) or (n, H, W, 1|3|4); "
        f"got shape {a.shape}"
    )


def _check_tensor(x, info, name):
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(
            f"{name}: a preprocessed image tensor must be (n, C, H, W) or (C, H, W); got shape "
            f"{tuple(x.shape)}"
        )
    expected = _first_conv_channels(info.module)
    if expected is not None and x.shape[1] != expected:
        raise ValueError(
            f"{name}: the tensor has {x.shape[1]} channel(s) but {info.name} expects {expected}; "
            "pass grayscale/RGBA pictures as files, PIL images or uint8 arrays so that they are "
            "converted to RGB by the model's preprocessing"
        )
    return x.float()


def load_images(images, info, name="images"):
    """Preprocess ``images`` for ``info``'s module; return a float tensor ``(n, C, H, W)`` on CPU.

    Parameters
    ----------
    images : str, Path, list of paths, StimulusSet, PIL.Image, list of PIL images, uint8 array or
        float tensor/array
        Pictures (grayscale, RGBA, palette and 16-bit ones are converted to RGB before the model's
        preprocessing) or an already preprocessed float batch ``(n, C, H, W)``.
    info : InspectedModel
    name : str
        Argument name used in error messages.
    """
    from PIL import Image

    preprocess = info.preprocess

    def prep(img):
        out = preprocess(_pil_to_rgb(img))
        return out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))

    if isinstance(images, torch.Tensor):
        return _check_tensor(images.detach().cpu(), info, name)
    if isinstance(images, np.ndarray):
        if np.issubdtype(images.dtype, np.floating):
            return _check_tensor(torch.from_numpy(np.array(images, dtype=np.float32)), info, name)
        if images.dtype != np.uint8:
            raise ValueError(f"{name}: arrays must be uint8 pictures or float tensors, not "
                             f"{images.dtype}")
        return torch.stack([prep(im) for im in _array_to_pils(images, name)]).float()
    if isinstance(images, Image.Image):
        return prep(images)[None].float()
    if isinstance(images, (str, Path)) or (
        isinstance(images, (list, tuple)) and images
        and all(isinstance(i, (str, Path)) for i in images)
    ):
        from neuroprobe.stimuli import as_stimulus_set

        images = as_stimulus_set(images if isinstance(images, (str, Path)) else list(images))
    if hasattr(images, "load") and hasattr(images, "modality"):  # StimulusSet
        if images.modality not in (None, "image"):
            raise ValueError(f"{name}: the stimulus set holds {images.modality}, not images")
        tensors = []
        for i in range(len(images)):
            item = images.load(i)
            if isinstance(item, torch.Tensor):
                tensors.append(item.float())
            else:
                tensors.append(prep(item).float())
        if not tensors:
            raise ValueError(f"{name}: the stimulus set is empty")
        return _check_tensor(torch.stack(tensors), info, name)
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError(f"{name}: no images given")
        tensors = []
        for item in images:
            if isinstance(item, Image.Image):
                tensors.append(prep(item))
            else:
                raise TypeError(f"{name}: list items must be PIL images (or all paths), not "
                                f"{type(item).__name__}")
        return torch.stack(tensors).float()
    raise TypeError(
        f"{name} must be paths, a StimulusSet, PIL images, a uint8 array or a float tensor "
        f"(n, C, H, W); got {type(images).__name__}"
    )


def to_display(x, info=None):
    """Undo the model's normalisation for display: ``(n, C, H, W)`` -> ``(n, H, W, C)`` in [0, 1].

    Uses ``mean``/``std`` from the model's ``preprocess_info`` when given, else rescales each
    image to [0, 1].
    """
    x = x.detach().cpu().float() if isinstance(x, torch.Tensor) else torch.as_tensor(x).float()
    if x.ndim == 3:
        x = x[None]
    pinfo = (info.preprocess_info if info is not None else None) or {}
    mean, std = pinfo.get("mean"), pinfo.get("std")
    if mean is not None and std is not None and len(mean) == x.shape[1]:
        x = x * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
        out = x.clamp(0, 1)
    else:
        lo = x.amin(dim=(1, 2, 3), keepdim=True)
        hi = x.amax(dim=(1, 2, 3), keepdim=True)
        out = (x - lo) / (hi - lo).clamp_min(1e-12)
    return out.permute(0, 2, 3, 1).numpy()


# --------------------------------------------------------------------------------------------------
# values


def _check_output(out, target, module_name):
    if not isinstance(out, torch.Tensor):
        raise UnitError(
            f"layer {target.layer!r} ({module_name}) returns {type(out).__name__}, not a tensor; "
            "choose a layer whose output is one tensor"
        )
    shape = tuple(out.shape[1:])
    if out.ndim < 2:
        raise UnitError(f"layer {target.layer!r} output has shape {tuple(out.shape)}; no channels")
    if target.channel >= shape[0]:
        raise UnitError(
            f"channel {target.channel} is out of range for layer {target.layer!r}: its output has "
            f"shape {shape} (channels, ...), so channels go from 0 to {shape[0] - 1}"
        )
    if target.is_unit:
        if out.ndim != 4:
            raise UnitError(
                f"target {target.label}: layer {target.layer!r} has output shape {shape}, which "
                "has no (row, col) map; use (layer, channel)"
            )
        if target.row >= shape[1] or target.col >= shape[2]:
            raise UnitError(
                f"unit (row={target.row}, col={target.col}) is out of range for layer "
                f"{target.layer!r}: its output has shape {shape} (channels, rows, cols)"
            )


def target_values(out, target, module_name=None, metric="mean"):
    """Return the target's value per image (shape ``(n,)``) from a layer output.

    A channel's value is its activation averaged (``metric="mean"``) or maximised
    (``metric="max"``) over every non-channel dimension; a unit's is the activation at
    ``(row, col)`` whatever the metric.
    """
    _check_output(out, target, module_name or target.layer)
    if target.is_unit:
        return out[:, target.channel, target.row, target.col]
    v = out[:, target.channel]
    v = v.reshape(v.shape[0], -1)
    if check_metric(metric) == "max":
        return v.amax(dim=1)
    return v.mean(dim=1)


# module -> sets of layer (module) names whose single call per forward pass a full pass has
# checked: later probes of the same layers stop early from their first pass
_CHECKED = weakref.WeakKeyDictionary()


class LayerProbe:
    """Run a module up to one or several layers and return their outputs (with autograd graph).

    All requested layers are captured in **one** forward pass, which stops right after the last
    of them to run (nothing after it is computed). Outputs are cloned in the hook (cloning keeps
    the gradient path) so that an in-place ReLU after a layer cannot change them. The first call
    of the first probe of these layers in a module runs the whole network (it checks that every
    layer runs, and runs once); later calls, and later probes of the same layers, stop early. As
    in :func:`neuroprobe.models.capture`, a layer that runs several times per forward pass (a
    shared ``ReLU``) is ambiguous and raises.

    Parameters
    ----------
    info : InspectedModel
    layer : str or list of str
        Layer name(s) or alias(es). With one name, calling the probe returns that layer's output;
        :meth:`outputs` returns a dict for any number of layers.
    """

    def __init__(self, info, layer):
        self.info = info
        names = [layer] if isinstance(layer, str) else list(dict.fromkeys(layer))
        if not names:
            raise ValueError("LayerProbe needs at least one layer")
        self.layer_names = names
        self.module_names = {}
        self.modules = {}
        for name in names:
            module_name, module = info.layer(name)
            self.module_names[name] = module_name
            self.modules[name] = module
        self.layer_name = names[0]
        self.module_name = self.module_names[names[0]]
        self.module = self.modules[names[0]]
        self.n_calls = 0  # forward passes run (for tests and benchmarks)
        self._key = tuple(sorted(set(self.module_names.values())))
        self._checked = self._key in _CHECKED.get(info.module, ())

    def outputs(self, x, reduce=None):
        """Run one forward pass of ``x``; return ``{layer name: output}`` of every layer.

        ``reduce(layer name, output) -> tensor``, when given, is applied inside the hook instead
        of the clone (under ``torch.no_grad`` a reduction such as the target values is computed
        before an in-place operation can change the output, and the full map is never copied).
        """
        from neuroprobe.models.hooks import RepeatedCallError, StopForward, first_tensor

        store = {}
        stop = self._checked
        by_module = {}
        for name in self.layer_names:
            by_module.setdefault(self.module_names[name], []).append(name)
        pending = set(by_module)
        handles = []

        def make_hook(module_name):
            def hook(_module, _inputs, output):
                names = by_module[module_name]
                if names[0] in store:
                    raise RepeatedCallError(
                        f"layer {names[0]!r} ({module_name}) is called several times in one "
                        "forward pass, so its output is ambiguous; choose its parent module or a "
                        "module that runs once"
                    )
                tensor = first_tensor(output)
                for name in names:
                    if not isinstance(tensor, torch.Tensor):
                        store[name] = output
                    elif reduce is not None:
                        store[name] = reduce(name, tensor)
                    else:
                        store[name] = tensor.clone()
                pending.discard(module_name)
                if stop and not pending:
                    raise StopForward

            return hook

        try:
            seen = set()
            for name in self.layer_names:
                module_name = self.module_names[name]
                if module_name not in seen:
                    seen.add(module_name)
                    handles.append(
                        self.modules[name].register_forward_hook(make_hook(module_name))
                    )
            self.n_calls += 1
            self.info.module(x)
        except StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()
        missing = [n for n in self.layer_names if n not in store]
        if missing:
            raise RuntimeError(
                f"layer {missing[0]!r} ({self.module_names[missing[0]]}) did not run during the "
                f"forward pass of {self.info.name}"
            )
        if not self._checked:
            self._checked = True
            _CHECKED.setdefault(self.info.module, set()).add(self._key)
        return store

    def __call__(self, x):
        """Output of the first (or only) layer for the batch ``x``."""
        return self.outputs(x)[self.layer_name]

    def values(self, x, target, metric="mean"):
        """Target values: ``(n,)`` for one target, ``(n, n_targets)`` for a list of targets.

        One forward pass serves every target, whatever their layers.
        """
        if isinstance(target, (list, tuple)) and target and isinstance(target[0], Target):
            return self.multi_values(x, list(target), metric)
        return target_values(self(x), target, self.module_name, metric)

    def multi_values(self, x, targets, metric="mean", outputs=None):
        """Values ``(n, n_targets)`` of ``targets`` from one forward pass of ``x``.

        Under ``torch.no_grad`` the values are computed inside the hooks (no copy of the maps);
        with gradients enabled the outputs are cloned first (the autograd graph needs them
        intact). ``outputs``: already computed :meth:`outputs` to use instead of a new pass.
        """
        check_metric(metric)
        by_layer = {}
        for k, t in enumerate(targets):
            by_layer.setdefault(t.layer, []).append(k)
        if outputs is None:
            if torch.is_grad_enabled():
                outputs = self.outputs(x)
            else:
                def reduce(name, tensor):
                    return torch.stack(
                        [target_values(tensor, targets[k], self.module_names[name], metric)
                         for k in by_layer.get(name, [])], dim=1
                    ) if by_layer.get(name) else tensor[:0]

                reduced = self.outputs(x, reduce=reduce)
                cols = [None] * len(targets)
                for name, ks in by_layer.items():
                    for j, k in enumerate(ks):
                        cols[k] = reduced[name][:, j]
                return torch.stack(cols, dim=1)
        cols = [target_values(outputs[t.layer], t, self.module_names[t.layer], metric)
                for t in targets]
        return torch.stack(cols, dim=1)


def require_differentiable(out, x, target, module_name):
    """Raise when the layer output does not depend differentiably on the input ``x``."""
    if not isinstance(out, torch.Tensor) or not out.is_floating_point() or out.grad_fn is None:
        raise ValueError(
            f"layer {target.layer!r} ({module_name}) is not differentiable with respect to the "
            "input: its output carries no gradient (an integer output, a detached tensor or a "
            "computation under torch.no_grad). Choose an earlier layer."
        )
    del x


def torch_generator(random_state=None):
    """A CPU ``torch.Generator`` seeded from ``random_state`` (int, RandomState or None)."""
    return torch.Generator().manual_seed(seed_from(random_state))
