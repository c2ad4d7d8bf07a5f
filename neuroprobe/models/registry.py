"""Model registry: a name (or a module) -> a ready-to-run :class:`ModelSpec`.

INTERFACE (stable; other modules build on it):

``ModelSpec``
    module : torch.nn.Module   -- the network, in eval() mode, weights loaded
    preprocess : callable      -- one *decoded* stimulus -> input tensor without batch dimension
                                  (image: PIL.Image RGB -> float tensor (3, H, W);
                                   audio: (waveform float32 1-D numpy, sample_rate) -> tensor;
                                   video: (frames uint8 (T, H, W, 3), fps) -> tensor)
    modality : str             -- "image", "audio" or "video"
    name : str
    weights_id : str           -- identity of the weights (enum name, file sha256, "random(seed=0)")
    aliases : dict             -- DNNBrain-style alias -> module name (e.g. "conv5" ->
    "features.10")
    collate : callable         -- list of preprocessed tensors -> batch (default: torch.stack)
    preprocess_info : dict     -- JSON-able description of the preprocessing (stored in .act.h5)

``register_model(name, factory, modality="image")``
    ``factory(weights, random_state) -> ModelSpec``. Audio and video models (VGGish, r3d_18, x3d_xs
    ...) register here, so :class:`~neuroprobe.transformers.DNNFeatureExtractor` treats them like
    images.

``build_model(model, weights="DEFAULT", random_state=None, preprocess=None) -> ModelSpec``
    ``model`` is a registered name, any torchvision model name, an ``nn.Module`` or a factory.
    Pretrained weights by default (as on the CLI); ``weights=None`` asks for random weights
    (warned once per model name), seeded by ``random_state`` (``None``: seed 0).

Around the registry: :mod:`neuroprobe.models.preprocess` (preprocessing transforms),
:mod:`neuroprobe.models.weights` (seeds, weight files, torchvision's cache, the offline error) and
:mod:`neuroprobe.models.layers` (:func:`resolve_layer`); their names stay importable from here.

Model sources
-------------
Names ``"prefix:rest"`` go to the builder registered with :func:`register_source`:
``"timm:<name>"`` (:mod:`neuroprobe.models.timm_source`), ``"hf:<repo id or folder>"``
(:mod:`neuroprobe.models.hf_source`) and ``"open_clip:<architecture>/<tag>"``
(:mod:`neuroprobe.models.open_clip_source`), imported on first use through :data:`SOURCE_MODULES`;
an unknown prefix raises :class:`ModelError` listing the known ones.

Lazy registration
-----------------
Modules that register models (``neuroprobe.models.audio``, ``neuroprobe.models.video``) are imported
on first need: a name found in :data:`LAZY_MODULES` imports its module; any other unknown name
imports every module of :data:`PLUGIN_MODULES` once before giving up.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuroprobe._utils import seed_from
from neuroprobe.exceptions import LayerError, ModelError, WeightsUnavailableError
from neuroprobe.models.layers import layer_names, resolve_layer
from neuroprobe.models.preprocess import (
    IMAGENET_MEAN,  # noqa: F401 (re-exported)
    IMAGENET_STD,  # noqa: F401 (re-exported)
    ImageToTensor,  # noqa: F401 (re-exported)
    TorchvisionPreprocess,
    default_preprocess,
    describe_callable,
)
from neuroprobe.models.weights import (
    DEFAULT_WEIGHTS_SEED,
    checkpoint_head,
    file_sha256,
    is_random_weights,
    load_state_dict_file,
    looks_like_path,
    module_digest,  # noqa: F401 (re-exported)
    quiet_random_weights,
    resolve_enum,
    seeded,
    warn_random_weights,
    weights_file_location,
    weights_unavailable,
)

__all__ = [
    "ModelSpec",
    "LayerError",
    "ModelError",
    "WeightsUnavailableError",
    "register_model",
    "register_source",
    "build_model",
    "list_layers",
    "resolve_layer",
    "available_models",
    "weights_file_location",
]

#: name -> module that registers it (imported on first use). Audio/video engineers add entries here.
LAZY_MODULES: dict[str, str] = {"shapes-cnn": "neuroprobe.models.shapes_cnn"}

#: Modules imported once when a name is not found anywhere else.
PLUGIN_MODULES: tuple[str, ...] = ("neuroprobe.models.audio", "neuroprobe.models.video")

#: Source prefix -> module that registers it with :func:`register_source` (``"timm:resnet10t"``).
SOURCE_MODULES: dict[str, str] = {
    "timm": "neuroprobe.models.timm_source",
    "hf": "neuroprobe.models.hf_source",
    "open_clip": "neuroprobe.models.open_clip_source",
}

_REGISTRY: dict[str, tuple[Callable, str]] = {}
_SOURCES: dict[str, Callable] = {}
_PLUGINS_LOADED = False


def _stack(tensors):
    import torch

    return torch.stack(list(tensors))


@dataclasses.dataclass
class ModelSpec:
    """A network ready to run, with everything needed to feed it and to name its results.

    Attributes
    ----------
    module : torch.nn.Module
        The network in ``eval()`` mode with its weights loaded.
    preprocess : callable
        One decoded stimulus -> input tensor without the batch dimension.
    modality : str
        ``"image"``, ``"audio"`` or ``"video"``.
    name : str
        Model name (torchvision name, registered name or class name of a user module).
    weights_id : str
        Identity of the weights: enum name, ``sha256:...`` of a file or the parameters, or
        ``random(seed=S)``.
    aliases : dict of str -> str
        DNNBrain-style alias -> module name.
    collate : callable
        List of preprocessed tensors -> batch tensor (default :func:`torch.stack`).
    preprocess_info : dict
        JSON-able description of the preprocessing (stored in ``.act.h5`` files and cache keys).
    """

    module: Any
    preprocess: Callable | None = None
    modality: str = "image"
    name: str = ""
    weights_id: str = ""
    aliases: dict = dataclasses.field(default_factory=dict)
    collate: Callable | None = None
    preprocess_info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.collate is None:
            self.collate = _stack
        if self.preprocess is None:
            self.preprocess = default_preprocess(self.modality)
            self.preprocess_info = dict(self.preprocess_info) or dict(
                getattr(self.preprocess, "info", {})
            )

    def layer_names(self):
        """Module names of ``named_modules()`` (without the root ``""``)."""
        return layer_names(self.module)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------
def register_model(name, factory, modality="image"):
    """Register ``factory(weights, random_state) -> ModelSpec`` under ``name`` (case-insensitive).

    Parameters
    ----------
    name : str
    factory : callable
        ``factory(weights, random_state)`` returning a :class:`ModelSpec`.
    modality : str
        ``"image"``, ``"audio"`` or ``"video"``.
    """
    if not callable(factory):
        raise TypeError(
            f"factory for model {name!r} must be callable, got {type(factory).__name__}"
        )
    _REGISTRY[name.lower()] = (factory, modality)


def register_source(prefix, builder):
    """Register ``builder(name, weights, random_state) -> ModelSpec`` for names ``"prefix:name"``.

    ``name`` is the text after the first ``:``, case kept (Hugging Face repo ids and folders).
    """
    _SOURCES[prefix.lower()] = builder


def _source_entry(name):
    """``(factory, modality)`` for ``"prefix:rest"``; ``None`` when ``name`` has no prefix."""
    prefix, sep, rest = name.partition(":")
    if not sep or len(prefix) < 2 or "/" in prefix or "\\" in prefix:  # "C:\\..." is a path
        return None
    key = prefix.lower()
    if key not in _SOURCES and key in SOURCE_MODULES:
        importlib.import_module(SOURCE_MODULES[key])
    if key not in _SOURCES:
        known = sorted(set(_SOURCES) | set(SOURCE_MODULES))
        raise ModelError(
            f"unknown model source {prefix!r} in {name!r}; expected one of "
            f"{', '.join(p + ':<name>' for p in known)}, a registered or torchvision model name"
        )
    builder = _SOURCES[key]
    return (lambda weights, random_state: builder(rest, weights, random_state)), "image"


def _torchvision_names():
    from torchvision import models

    return sorted(models.list_models(module=models))


def available_models():
    """Names accepted by :func:`build_model`: registered models and torchvision classifiers."""
    _load_plugins()
    return sorted(set(_REGISTRY) | set(LAZY_MODULES) | set(_torchvision_names()))


def _load_plugins():
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for module in PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            if exc.name != module:  # the plugin exists but a dependency is missing: say so
                warnings.warn(f"could not import {module}: {exc}", stacklevel=3)


def _lookup(name):
    if ":" in name:
        entry = _source_entry(name)
        if entry is not None:
            return entry
    key = name.lower()
    if key in _REGISTRY:
        return _REGISTRY[key]
    if key in LAZY_MODULES:
        importlib.import_module(LAZY_MODULES[key])
        if key in _REGISTRY:
            return _REGISTRY[key]
    if key not in _torchvision_names():
        _load_plugins()
        if key in _REGISTRY:
            return _REGISTRY[key]
    return None


def _torchvision_spec(name, weights="DEFAULT", random_state=None):
    """Build a torchvision classification model with the preprocessing of its weights."""
    from torchvision import models

    enum_cls = models.get_model_weights(name)
    transform = enum_cls.DEFAULT.transforms()  # preprocessing metadata; loads no weights
    kwargs = {}
    if name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = True
        kwargs["aux_logits"] = False
    from neuroprobe.models.aliases import aliases_for

    if is_random_weights(weights):
        seed = seed_from(random_state, DEFAULT_WEIGHTS_SEED)
        with seeded(seed), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            module = models.get_model(name, weights=None, **kwargs)
        weights_id = f"random(seed={seed},torchvision={_tv_version()})"
    elif looks_like_path(weights):
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"weights file not found: {path}")
        state = load_state_dict_file(path)
        kwargs.update(checkpoint_head(path))  # a head replaced by neuroprobe.finetune
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            module = models.get_model(name, weights=None, **kwargs)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(
                f"weights file {path} does not match model {name!r}: {str(exc).splitlines()[0]}"
            ) from exc
        weights_id = f"sha256:{file_sha256(path)}"
    else:
        enum = resolve_enum(name, weights)
        file_name, directory = weights_file_location(enum)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                module = models.get_model(name, weights=enum)
        except Exception as exc:  # noqa: BLE001 - network errors vary (URLError, OSError, ...)
            if os.path.exists(os.path.join(directory, file_name)):
                raise
            raise weights_unavailable(enum, name, exc) from exc
        weights_id = f"{type(enum).__name__}.{enum.name}"
        transform = enum.transforms()
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    preprocess = TorchvisionPreprocess(transform)
    return ModelSpec(
        module=module,
        preprocess=preprocess,
        modality="image",
        name=name,
        weights_id=weights_id,
        aliases=aliases_for(name, module),
        preprocess_info=preprocess.info,
    )


def _tv_version():
    import torchvision

    return torchvision.__version__.split("+")[0]


def _unknown_model(name):
    names = available_models()
    close = difflib.get_close_matches(name.lower(), names, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ModelError(
        f"unknown model {name!r}.{hint} Known models: {', '.join(names)}; or a source name "
        f"({', '.join(p + ':<name>' for p in sorted(SOURCE_MODULES))}); or pass a "
        "torch.nn.Module "
        "or a factory."
    )


def _call_factory(factory, weights, random_state):
    try:
        n_params = len(
            [
                p
                for p in inspect.signature(factory).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        )
    except (TypeError, ValueError):
        n_params = 0
    if n_params >= 2:
        return factory(weights, random_state)
    with seeded(seed_from(random_state, DEFAULT_WEIGHTS_SEED)):
        return factory()


def build_model(model, weights="DEFAULT", random_state=None, preprocess=None):
    """Build a network and its preprocessing.

    Parameters
    ----------
    model : str, torch.nn.Module, callable or ModelSpec
        A registered name (``"vggish"``), any torchvision classification model name
        (``"alexnet"``, ``"resnet50"``, ...), a source name (``"timm:convnext_tiny"``,
        ``"hf:facebook/dinov2-small"``, optionally with ``"?token_pooling=cls"``; see
        :mod:`neuroprobe.models.timm_source` and :mod:`neuroprobe.models.hf_source`), a module,
        or a factory: ``factory(weights, random_state)`` returning a :class:`ModelSpec` or a
        module, or ``factory()`` returning a module (called under
        ``torch.manual_seed`` derived from ``random_state``).
    weights : str, path or None, default="DEFAULT"
        For names: ``"DEFAULT"`` (the default, as on the CLI) or a weights enum name
        (``"IMAGENET1K_V1"``) = pretrained weights through torchvision's cache (offline without the
        file: :class:`WeightsUnavailableError` naming the file and the directory; random weights
        are never substituted); a path = a local ``state_dict`` or a checkpoint dict with
        ``"state_dict"`` or ``"model"``; ``None`` (or ``"none"`` / ``"random"``) = random
        initialisation seeded by ``random_state``, with a warning once per model name. For
        modules: ``"DEFAULT"`` or ``None`` keeps the module's weights, a path loads a state_dict.
        Factories ``factory(weights, random_state)`` receive ``weights`` as given.
    random_state : int, RandomState or None
        Seed of the random initialisation (``None``: the fixed seed
        :data:`DEFAULT_WEIGHTS_SEED` = 0, so clones and reruns build the same network; the seed is
        recorded in ``weights_id``).
    preprocess : callable, optional
        Replace the preprocessing (one decoded stimulus -> tensor). Torchvision models default to
        the resize / centre crop / normalisation of their weights (of the default weights when
        ``weights=None``); user modules default to :class:`ImageToTensor` (RGB in [0, 1],
        ImageNet-normalised, native size).

    Returns
    -------
    ModelSpec
    """
    import torch

    if isinstance(model, ModelSpec):
        spec = model
    elif isinstance(model, str):
        entry = _lookup(model)
        if entry is not None:
            factory, modality = entry
            spec = factory(weights, random_state)
            if not isinstance(spec, ModelSpec):
                spec = ModelSpec(module=spec, modality=modality, name=model)
            if not spec.name:
                spec.name = model.lower()
        elif model.lower() in _torchvision_names():
            spec = _torchvision_spec(model.lower(), weights, random_state)
        else:
            raise _unknown_model(model)
        if is_random_weights(weights):
            warn_random_weights(model, spec.weights_id)
    elif isinstance(model, torch.nn.Module):
        spec = _module_spec(model, weights)
    elif callable(model):
        obj = _call_factory(model, weights, random_state)
        if isinstance(obj, ModelSpec):
            spec = obj
        elif isinstance(obj, torch.nn.Module):
            spec = _module_spec(obj, weights if looks_like_path(weights) else None)
            if not looks_like_path(weights):
                spec.weights_id = f"factory:{spec.weights_id}"
        else:
            raise ModelError(
                f"model factory {model!r} returned {type(obj).__name__}, expected a "
                "torch.nn.Module "
                "or a ModelSpec"
            )
    else:
        raise ModelError(
            f"model must be a name, a torch.nn.Module, a factory or a ModelSpec, got "
            f"{type(model).__name__}"
        )
    if preprocess is not None:
        spec = dataclasses.replace(spec, preprocess=preprocess)
        info = getattr(preprocess, "info", None)
        spec.preprocess_info = dict(info or {"kind": "user", "repr": describe_callable(preprocess)})
    spec.module.eval()
    return spec


def _module_spec(module, weights=None):
    if weights is not None and not (isinstance(weights, str) and weights.upper() == "DEFAULT"):
        if not looks_like_path(weights) or not Path(weights).is_file():
            raise ModelError(
                f"weights={weights!r} for a torch.nn.Module must be 'DEFAULT' or None (keep its "
                "weights) or the path of a state_dict file"
            )
        state = load_state_dict_file(weights)
        module.load_state_dict(state, strict=True)
    module.eval()
    return ModelSpec(
        module=module,
        modality="image",
        name=type(module).__name__,
        weights_id=f"sha256:{module_digest(module)}",
    )


def _dummy_input(spec, input_shape):
    import torch

    if input_shape is None:
        info = spec.preprocess_info or {}
        if "input_shape" in info:
            input_shape = tuple(info["input_shape"])
        elif info.get("crop"):
            crop = info["crop"]
            crop = crop * 2 if len(crop) == 1 else crop
            input_shape = (3, *crop)
        elif spec.modality == "image":
            input_shape = (3, 224, 224)
        else:
            raise ValueError(
                f"cannot guess the input shape of model {spec.name!r}; pass input_shape=(C, ...)"
            )
    return torch.zeros((1, *input_shape))


def list_layers(model, weights=None, input_shape=None, nodes=False):
    """Layers that can be captured, with their output shapes.

    Parameters
    ----------
    model : str, torch.nn.Module, callable or ModelSpec
        As in :func:`build_model`.
    weights : optional
        As in :func:`build_model` (shapes do not depend on the weights; ``None`` is fastest).
    input_shape : tuple, optional
        Input shape without the batch dimension; default from the preprocessing (crop size).
    nodes : bool, default=False
        Also list the torch.fx graph nodes as ``"fx:<node>"`` (after the modules, in execution
        order; shape ``None`` for non-tensor nodes); :class:`~neuroprobe.exceptions.TraceError`
        if the network does not trace (:mod:`neuroprobe.models.fx`).

    Returns
    -------
    list of (str, tuple or None)
        ``(module name, output shape without the batch dimension)`` in ``named_modules()`` order;
        the shape is ``None`` for modules not called in the forward pass. Aliases are in
        ``build_model(model).aliases``. Text models with ``token_pooling="none"``
        (:func:`neuroprobe.models.tokens.pads_to_set`): the token axis of the token layers and
        of ``token_mask`` is the longest text of the stimulus set they will run on; here it is
        the dummy input's length (``input_shape``).
    """
    import torch

    from neuroprobe.models.hooks import capture

    with quiet_random_weights():  # shapes only: random weights are what was asked for
        spec = build_model(model, weights=weights, random_state=0)
    names = spec.layer_names()
    x = _dummy_input(spec, input_shape)
    with torch.no_grad(), capture(spec.module, names, clone=False, repeat="last") as out:
        spec.module(x)
    result = []
    for name in names:
        value = out.get(name)
        result.append((name, tuple(value.shape[1:]) if value is not None else None))
    if nodes:
        from neuroprobe.models.fx import FX_PREFIX, node_shapes

        result.extend((FX_PREFIX + name, shape) for name, shape in node_shapes(spec.module, x))
    return result


def spec_identity(spec):
    """JSON-able identity of a spec (model, weights, preprocessing) for cache keys and files."""
    return json.dumps(
        {
            "model": spec.name,
            "weights_id": spec.weights_id,
            "preprocess": spec.preprocess_info,
            "modality": spec.modality,
        },
        sort_keys=True,
        default=str,
    )
