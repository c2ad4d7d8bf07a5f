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

Lazy registration
-----------------
Modules that register models (``neuroprobe.models.audio``, ``neuroprobe.models.video``) are imported
on first need: a name found in :data:`LAZY_MODULES` imports its module; any other unknown name
imports every module of :data:`PLUGIN_MODULES` once before giving up.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import inspect
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neuroprobe.exceptions import LayerError, ModelError, WeightsUnavailableError  # noqa: F401 (re-exported)

__all__ = [
    "ModelSpec",
    "LayerError",
    "ModelError",
    "WeightsUnavailableError",
    "register_model",
    "build_model",
    "list_layers",
    "resolve_layer",
    "available_models",
    "weights_file_location",
]

#: ImageNet normalisation used by torchvision's classification weights and by the default
#: preprocessing of user modules.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: name -> module that registers it (imported on first use). Audio/video engineers add entries here.
LAZY_MODULES: dict[str, str] = {"shapes-cnn": "neuroprobe.models.shapes_cnn"}

#: Modules imported once when a name is not found anywhere else.
PLUGIN_MODULES: tuple[str, ...] = ("neuroprobe.models.audio", "neuroprobe.models.video")

_REGISTRY: dict[str, tuple[Callable, str]] = {}
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
        return [name for name, _ in self.module.named_modules() if name]


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------
class ImageToTensor:
    """Default image preprocessing for user modules: RGB float tensor in [0, 1],
    ImageNet-normalised.

    The image keeps its native size (no resize or crop). Tensors are returned unchanged (they are
    taken as already preprocessed).
    """

    info = {
        "kind": "to_tensor+normalize",
        "resize": None,
        "crop": None,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
    }

    def __call__(self, image):
        import torch

        if isinstance(image, torch.Tensor):
            return image.float()
        array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=2)
        tensor = torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).float() / 255.0
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        return (tensor - mean) / std


class _Identity:
    info = {"kind": "identity"}

    def __call__(self, x):
        import torch

        return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def default_preprocess(modality="image"):
    """Preprocessing used for user modules given without ``preprocess``.

    image: :class:`ImageToTensor` (native size, ImageNet normalisation); other modalities: the
    decoded array as a tensor (identity).
    """
    return ImageToTensor() if modality == "image" else _Identity()


class TorchvisionPreprocess:
    """Wrap a torchvision weights transform (resize, centre crop, normalise) for one stimulus."""

    def __init__(self, transform):
        self.transform = transform
        self.info = {
            "kind": "torchvision.ImageClassification",
            "resize": list(transform.resize_size),
            "crop": list(transform.crop_size),
            "mean": list(transform.mean),
            "std": list(transform.std),
            "interpolation": str(transform.interpolation.value),
            "antialias": bool(transform.antialias),
        }

    def __call__(self, image):
        import torch

        if isinstance(image, torch.Tensor) and image.is_floating_point():
            return image  # already preprocessed
        if hasattr(image, "convert"):
            image = image.convert("RGB")
        return self.transform(image)


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


#: Seed of random weights when ``random_state=None``: every clone, worker and rerun builds the
#: same network, so caches and grid searches compare like with like.
DEFAULT_WEIGHTS_SEED = 0

_RANDOM_WARNED: set = set()
_QUIET_RANDOM = [0]


def is_random_weights(weights):
    """True when ``weights`` asks for random initialisation (``None``, ``"none"``, ``"random"``)."""
    return weights is None or (isinstance(weights, str) and weights.lower() in ("none", "random"))


def warn_random_weights(name, weights_id):
    """Warn once per process and model name that a network has random (untrained) weights."""
    key = str(name).lower()
    if _QUIET_RANDOM[0] or key in _RANDOM_WARNED:
        return
    _RANDOM_WARNED.add(key)
    warnings.warn(
        f"model {name!r} is built with RANDOM, untrained weights ({weights_id}), as asked by "
        "weights=None; pass weights='DEFAULT' (the default) for pretrained weights. This warning "
        "is shown once per model.",
        UserWarning,
        stacklevel=3,
    )


class quiet_random_weights:
    """Context manager: no random-weights warning inside (shapes, layer lists)."""

    def __enter__(self):
        _QUIET_RANDOM[0] += 1
        return self

    def __exit__(self, *exc):
        _QUIET_RANDOM[0] -= 1
        return False


def _seed_from(random_state):
    """Integer seed for torch from an sklearn-style ``random_state``.

    ``None`` gives :data:`DEFAULT_WEIGHTS_SEED` (a fixed seed, not a fresh random one), so clones
    of an estimator build identical networks.
    """
    if random_state is None:
        return DEFAULT_WEIGHTS_SEED
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int or a RandomState, got {random_state!r}")


def seeded(seed):
    """Context manager: ``torch.manual_seed(seed)`` inside a forked RNG (global state untouched)."""
    import torch

    class _Ctx:
        def __enter__(self):
            self._fork = torch.random.fork_rng(devices=[])
            self._fork.__enter__()
            torch.manual_seed(seed)

        def __exit__(self, *exc):
            return self._fork.__exit__(*exc)

    return _Ctx()


def _file_sha256(path, n=16):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:n]


def module_digest(module, n=16):
    """``sha256`` of a module's parameters and buffers (identity of user modules)."""
    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        digest.update(key.encode())
        arr = value.detach().cpu().contiguous()
        digest.update(str(arr.dtype).encode())
        digest.update(str(tuple(arr.shape)).encode())
        digest.update(arr.reshape(-1).view(dtype=_byte_dtype()).numpy().tobytes())
    return digest.hexdigest()[:n]


def _byte_dtype():
    import torch

    return torch.uint8


def weights_file_location(weights_enum):
    """``(file_name, directory)`` where torchvision caches the file of a weights enum."""
    import torch

    return os.path.basename(weights_enum.url), os.path.join(torch.hub.get_dir(), "checkpoints")


def _resolve_enum(name, weights):
    from torchvision import models

    enum_cls = models.get_model_weights(name)
    if isinstance(weights, enum_cls):
        return weights
    text = str(weights)
    if text.upper() == "DEFAULT":
        return enum_cls.DEFAULT
    short = text.split(".", 1)[1] if text.startswith(enum_cls.__name__ + ".") else text
    try:
        return enum_cls[short]
    except KeyError:
        valid = ["DEFAULT", *[m.name for m in enum_cls]]
        raise ModelError(
            f"unknown weights {text!r} for model {name!r}; valid: {', '.join(valid)}, a checkpoint "
            "path, or None for random weights"
        ) from None


def _checkpoint_head(path):
    """``{"num_classes": k}`` for a checkpoint of :func:`neuroprobe.finetune`, else ``{}``."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not a zip checkpoint: no head information
        return {}
    if isinstance(obj, dict) and isinstance(obj.get("num_classes"), int):
        return {"num_classes": obj["num_classes"]}
    return {}


def _load_state_dict_file(path):
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name
        raise ModelError(f"cannot read weights file {path}: {exc}") from exc
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise ModelError(f"weights file {path} holds a {type(obj).__name__}, expected a state_dict")
    prefix = "module."
    if obj and all(k.startswith(prefix) for k in obj):  # saved from DataParallel
        obj = {k[len(prefix) :]: v for k, v in obj.items()}
    return obj


def _looks_like_path(weights):
    return isinstance(weights, Path) or (
        isinstance(weights, str)
        and (os.sep in weights or weights.endswith((".pth", ".pt", ".ckpt")))
    )


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
        seed = _seed_from(random_state)
        with seeded(seed), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            module = models.get_model(name, weights=None, **kwargs)
        weights_id = f"random(seed={seed},torchvision={_tv_version()})"
    elif _looks_like_path(weights):
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"weights file not found: {path}")
        state = _load_state_dict_file(path)
        kwargs.update(_checkpoint_head(path))  # a head replaced by neuroprobe.finetune
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            module = models.get_model(name, weights=None, **kwargs)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(
                f"weights file {path} does not match model {name!r}: {str(exc).splitlines()[0]}"
            ) from exc
        weights_id = f"sha256:{_file_sha256(path)}"
    else:
        enum = _resolve_enum(name, weights)
        file_name, directory = weights_file_location(enum)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                module = models.get_model(name, weights=enum)
        except Exception as exc:  # noqa: BLE001 - network errors vary (URLError, OSError, ...)
            if os.path.exists(os.path.join(directory, file_name)):
                raise
            raise WeightsUnavailableError(
                f"pretrained weights {enum} for {name!r} are not cached and could not be "
                "downloaded "
                f"({type(exc).__name__}: {exc}). Download {enum.url} and place the file "
                f"{file_name!r} in the directory {directory!r} (torch.hub.get_dir()/checkpoints; "
                "set TORCH_HOME to move it), pass weights=<path to the .pth file>, or "
                "weights=None for random (untrained) weights."
            ) from exc
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
        f"unknown model {name!r}.{hint} Known models: {', '.join(names)}; or pass a "
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
    with seeded(_seed_from(random_state)):
        return factory()


def build_model(model, weights="DEFAULT", random_state=None, preprocess=None):
    """Build a network and its preprocessing.

    Parameters
    ----------
    model : str, torch.nn.Module, callable or ModelSpec
        A registered name (``"vggish"``), any torchvision classification model name (``"alexnet"``,
        ``"resnet50"``, ...), a module, or a factory: ``factory(weights, random_state)`` returning a
        :class:`ModelSpec` or a module, or ``factory()`` returning a module (called under
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
            spec = _module_spec(obj, weights if _looks_like_path(weights) else None)
            if not _looks_like_path(weights):
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
        spec.preprocess_info = dict(
            getattr(preprocess, "info", None) or {"kind": "user", "repr": _describe(preprocess)}
        )
    spec.module.eval()
    return spec


def _describe(obj):
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{module}.{name}"


def _module_spec(module, weights=None):
    if weights is not None and not (isinstance(weights, str) and weights.upper() == "DEFAULT"):
        if not _looks_like_path(weights) or not Path(weights).is_file():
            raise ModelError(
                f"weights={weights!r} for a torch.nn.Module must be 'DEFAULT' or None (keep its "
                "weights) or the path of a state_dict file"
            )
        state = _load_state_dict_file(weights)
        module.load_state_dict(state, strict=True)
    module.eval()
    return ModelSpec(
        module=module,
        modality="image",
        name=type(module).__name__,
        weights_id=f"sha256:{module_digest(module)}",
    )


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
def resolve_layer(spec, name):
    """Module name of layer ``name`` (a module name or an alias) of ``spec``.

    Raises
    ------
    LayerError
        Unknown name; the message lists the valid names and the closest match.
    """
    module = spec.module if isinstance(spec, ModelSpec) else spec
    aliases = spec.aliases if isinstance(spec, ModelSpec) else {}
    names = [n for n, _ in module.named_modules() if n]
    if name in aliases:
        return aliases[name]
    if name in set(names):
        return name
    valid = list(dict.fromkeys(list(aliases) + names))
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.0)
    model_name = spec.name if isinstance(spec, ModelSpec) else type(module).__name__
    raise LayerError(
        f"unknown layer {name!r} for model {model_name!r}; closest match: "
        f"{close[0] if close else None!r}. Valid names: {', '.join(valid)}"
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


def list_layers(model, weights=None, input_shape=None):
    """Layers that can be captured, with their output shapes.

    Parameters
    ----------
    model : str, torch.nn.Module, callable or ModelSpec
        As in :func:`build_model`.
    weights : optional
        As in :func:`build_model` (shapes do not depend on the weights; ``None`` is fastest).
    input_shape : tuple, optional
        Input shape without the batch dimension; default from the preprocessing (crop size).

    Returns
    -------
    list of (str, tuple or None)
        ``(module name, output shape without the batch dimension)`` in ``named_modules()`` order;
        the shape is ``None`` for modules not called in the forward pass. Aliases are in
        ``build_model(model).aliases``.
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
