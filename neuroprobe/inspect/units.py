"""DNN units of the inspection tools: which channel or position of which layer, and its value.

A *unit* names what is looked at inside a network:

- ``(layer, channel)``: the channel's map summarised over space by the *metric* (its value per
  image): ``metric="mean"`` (the default of every inspection function and command: top stimuli,
  saliency, optimal stimuli, occlusion maps, minimal stimuli) averages the map, ``metric="max"``
  takes its largest activation;
- ``(layer, channel, row, col)``: one position of the channel's map (the metric does not apply);
- the same as a feature-name string of :class:`~neuroprobe.transformers.DNNFeatureExtractor`:
  ``"conv5:c3"`` or ``"conv5:c3:y2:x4"``; for a layer with 1-D output (``fc6``) ``"fc6:u7"``.

Naming: "unit" is a DNN unit (this module, :class:`Unit`, :class:`~neuroprobe.exceptions.
UnitError`); "target" is what an encoder predicts (voxels, :mod:`neuroprobe.io.targets`). The
old names ``Target``, ``parse_target``, ``parse_targets`` and ``target_values`` stay as aliases,
and the inspection functions keep their ``target=`` keyword.

The network comes from :func:`neuroprobe.models.resolve.resolve_model` and its inputs from
:func:`neuroprobe.models.inputs.load_images`; layer names and aliases are resolved by
:func:`neuroprobe.models.resolve_layer`, so the errors (valid names, closest match) are those of
the rest of neuroprobe. :class:`LayerProbe` runs a network up to the layers of the units.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from neuroprobe._utils import seed_from
from neuroprobe.exceptions import UnitError  # noqa: F401 (re-exported)

__all__ = [
    "METRICS",
    "Inspection",
    "LayerProbe",
    "Target",
    "Unit",
    "UnitError",
    "check_metric",
    "fill_doc",
    "parse_target",
    "parse_targets",
    "parse_unit",
    "parse_units",
    "prepare_inspection",
    "require_differentiable",
    "target_values",
    "torch_generator",
    "unit_values",
]


@dataclass(frozen=True)
class Unit:
    """One inspected DNN unit: a channel (``row``/``col`` None) or one position of its map.

    ``Target`` is the old name of this class (kept as an alias): in neuroprobe "target" now
    means what an encoder predicts (voxels), "unit" what is inspected in a network.
    """

    layer: str
    channel: int
    row: int | None = None
    col: int | None = None

    @property
    def is_unit(self):
        """Whether this is one spatial position of the map rather than a whole channel."""
        return self.row is not None

    @property
    def label(self):
        """Feature-name style label (``conv5:c3`` or ``conv5:c3:y2:x4``)."""
        if self.is_unit:
            return f"{self.layer}:c{self.channel}:y{self.row}:x{self.col}"
        return f"{self.layer}:c{self.channel}"


Target = Unit  # the old name (kept importable)

_NAME = re.compile(r"^(?P<layer>.+?):(?:c|u)(?P<c>\d+)(?::y(?P<y>\d+):x(?P<x>\d+))?$")


def parse_units(target):
    """Normalise one unit or a list of units; return ``(list of Unit, is_single)``.

    A single unit (a tuple, a string or a :class:`Unit`) gives a one-element list and
    ``True``; a list gives every unit parsed and ``False`` (results then gain a leading
    unit axis).
    """
    if isinstance(target, list):
        if not target:
            raise UnitError("no targets given (an empty list)")
        return [parse_unit(t) for t in target], False
    return [parse_unit(target)], True


METRICS = ("mean", "max")


def check_metric(metric):
    """Raise a clear ``ValueError`` unless ``metric`` is one of :data:`METRICS`."""
    if metric not in METRICS:
        raise ValueError(
            f"metric must be one of {METRICS} (how a channel's map becomes one value per image: "
            f"its spatial mean or its spatial max), got {metric!r}"
        )
    return metric


def parse_unit(target, layer=None):
    """Return a :class:`Unit` from a tuple, a feature name or a :class:`Unit`.

    Parameters
    ----------
    target : Unit, tuple, str or int
        ``(layer, channel)``, ``(layer, channel, row, col)``, ``"layer:c3"``, ``"layer:c3:y1:x2"``;
        an int (the channel) when ``layer`` is given.
    layer : str, optional
        Layer used when ``target`` is only a channel.

    Returns
    -------
    Unit
    """
    if isinstance(target, Unit):
        return target
    if isinstance(target, (int, np.integer)) and layer is not None:
        return Unit(str(layer), int(target))
    if isinstance(target, str):
        match = _NAME.match(target)
        if match is None:
            raise UnitError(
                f"target {target!r} is not a unit name; expected 'layer:c<channel>' or "
                "'layer:c<channel>:y<row>:x<col>' (or a tuple (layer, channel[, row, col]))"
            )
        y, x = match.group("y"), match.group("x")
        return Unit(
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
        return Unit(name, *idx)
    raise UnitError(
        f"cannot read target {target!r}; expected (layer, channel), (layer, channel, row, col) "
        "or a feature name such as 'conv5:c3'"
    )


parse_target = parse_unit  # the old names (kept importable)
parse_targets = parse_units


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


def unit_values(out, target, module_name=None, metric="mean"):
    """Return the unit's value per image (shape ``(n,)``) from a layer output.

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
    info : neuroprobe.models.resolve.InspectedModel
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
        from neuroprobe.exceptions import RepeatedCallError
        from neuroprobe.models.hooks import StopForward, add_forward_hook, first_tensor

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
                    handles.append(add_forward_hook(self.modules[name], make_hook(module_name)))
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
        """Unit values: ``(n,)`` for one unit, ``(n, n_units)`` for a list of units.

        One forward pass serves every target, whatever their layers.
        """
        if isinstance(target, (list, tuple)) and target and isinstance(target[0], Unit):
            return self.multi_values(x, list(target), metric)
        return unit_values(self(x), target, self.module_name, metric)

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
                        [unit_values(tensor, targets[k], self.module_names[name], metric)
                         for k in by_layer.get(name, [])], dim=1
                    ) if by_layer.get(name) else tensor[:0]

                reduced = self.outputs(x, reduce=reduce)
                cols = [None] * len(targets)
                for name, ks in by_layer.items():
                    for j, k in enumerate(ks):
                        cols[k] = reduced[name][:, j]
                return torch.stack(cols, dim=1)
        cols = [unit_values(outputs[t.layer], t, self.module_names[t.layer], metric)
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


target_values = unit_values  # the old name (kept importable)


def torch_generator(random_state=None):
    """A CPU ``torch.Generator`` seeded from ``random_state`` (int, RandomState or None)."""
    return torch.Generator().manual_seed(seed_from(random_state))


# --------------------------------------------------------------------------------------------------
# the common opening of the inspection functions, and its parameter documentation

DOCS = {
    "model": """model : str, torch.nn.Module, ModelSpec or fitted DNNFeatureExtractor
    An image model; a name is built by :func:`neuroprobe.models.build_model`.""",
    "images": """images : paths, StimulusSet, PIL images, uint8 array or float tensor (n, C, H, W)
    Pictures are preprocessed by the model's preprocessing; a float tensor is used as is.""",
    "weights": """weights, random_state :
    Passed to :func:`neuroprobe.models.build_model` when ``model`` is a name.""",
    "device": """device : str or torch.device
    Where to compute (read by :func:`neuroprobe._utils.resolve_device`).""",
}
"""Parameter text shared by the inspection functions (placeholders of :func:`fill_doc`)."""

_PLACEHOLDER = re.compile(r"^(?P<indent> *)%\((?P<key>\w+)\)s$", re.MULTILINE)


def fill_doc(func):
    """Replace each ``%(name)s`` line of ``func``'s docstring by ``DOCS[name]`` (indented alike).

    Only whole-line placeholders are read, so any other ``%`` in the docstring is left alone;
    an unknown name raises ``KeyError`` at import.
    """

    def entry(match):
        indent = match.group("indent")
        return "\n".join(indent + line for line in DOCS[match.group("key")].splitlines())

    if func.__doc__:  # None under python -OO
        func.__doc__ = _PLACEHOLDER.sub(entry, func.__doc__)
    return func


@dataclass
class Inspection:
    """What an inspection function works on, from :func:`prepare_inspection`.

    Attributes
    ----------
    info : neuroprobe.models.resolve.InspectedModel
        The resolved image model.
    device : torch.device
        Where to compute.
    units : list of Unit
        The parsed units (one element for a single unit).
    single : bool
        Whether one unit (not a list) was given: results then have no leading unit axis.
    probe : LayerProbe
        Runs the network up to the layers of ``units``.
    x : torch.Tensor or None
        The preprocessed images ``(n, C, H, W)`` on the CPU (None when no images were given).
    generator : torch.Generator or None
        A CPU generator seeded from ``random_state`` (None unless asked for).
    """

    info: object
    device: object
    units: list
    single: bool
    probe: LayerProbe
    x: object = None
    generator: object = None


def prepare_inspection(model, images, target, *, caller, weights="DEFAULT", random_state=None,
                       device="cpu", check_units=None, generator=False):
    """Resolve the model, the units, the probe and the images of an inspection function.

    The steps (and so the errors) are, in this order: the device
    (:func:`neuroprobe._utils.resolve_device`), the model
    (:func:`neuroprobe.models.resolve.resolve_model`, then
    :func:`~neuroprobe.models.resolve.require_image_model`), the units (:func:`parse_units`,
    then ``check_units``), the :class:`LayerProbe` (unknown layers), the images
    (:func:`neuroprobe.models.inputs.load_images`) and the generator.

    Parameters
    ----------
    model : str, torch.nn.Module, ModelSpec or fitted DNNFeatureExtractor
        An image model.
    images : paths, StimulusSet, PIL images, uint8 array, float tensor (n, C, H, W) or None
        Pictures are preprocessed by the model's preprocessing; a float tensor is used as is.
        None: no images (``Inspection.x`` is None).
    target : Unit, tuple or str, or list of those
        ``(layer, channel)``, ``(layer, channel, row, col)`` or a feature name.
    caller : str
        Name of the inspection function (in the error of a non-image model).
    weights, random_state :
        Passed to :func:`neuroprobe.models.build_model` when ``model`` is a name.
    device : str or torch.device
        Where to compute.
    check_units : callable, optional
        ``check_units(units)``, called before the probe is built (to raise on units the caller
        does not take).
    generator : bool
        Also seed a CPU ``torch.Generator`` from ``random_state`` (:func:`torch_generator`),
        after everything else (a ``RandomState`` is advanced only then).

    Returns
    -------
    Inspection
    """
    from neuroprobe._utils import resolve_device
    from neuroprobe.models.inputs import load_images
    from neuroprobe.models.resolve import require_image_model, resolve_model

    dev = resolve_device(device)
    info = resolve_model(model, weights=weights, random_state=random_state, device=dev)
    require_image_model(info, caller)
    units, single = parse_units(target)
    if check_units is not None:
        check_units(units)
    probe = LayerProbe(info, [t.layer for t in units])
    x = None if images is None else load_images(images, info)
    gen = torch_generator(random_state) if generator else None
    return Inspection(info=info, device=dev, units=units, single=single, probe=probe, x=x,
                      generator=gen)
