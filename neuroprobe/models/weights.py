"""Weights of the networks: random weights, weight files, torchvision's cache.

``DEFAULT_WEIGHTS_SEED`` and :func:`seeded` make random weights reproducible, and
:func:`warn_random_weights` says once per model that a network is untrained;
:func:`load_state_dict_file` reads a ``state_dict`` (or a checkpoint dict) from a file;
:func:`weights_file_location` says where torchvision caches a weights enum's file and
:func:`weights_unavailable` is the error raised offline when that file is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path

from neuroprobe.exceptions import ModelError, WeightsUnavailableError

__all__ = [
    "DEFAULT_WEIGHTS_SEED",
    "checkpoint_head",
    "file_sha256",
    "is_random_weights",
    "load_state_dict_file",
    "looks_like_path",
    "module_digest",
    "quiet_random_weights",
    "resolve_enum",
    "seeded",
    "warn_random_weights",
    "weights_file_location",
    "weights_unavailable",
]

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


def file_sha256(path, n=16):
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


def resolve_enum(name, weights):
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


def checkpoint_head(path):
    """``{"num_classes": k}`` for a checkpoint of :func:`neuroprobe.finetune`, else ``{}``."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not a zip checkpoint: no head information
        return {}
    if isinstance(obj, dict) and isinstance(obj.get("num_classes"), int):
        return {"num_classes": obj["num_classes"]}
    return {}


def load_state_dict_file(path):
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


def looks_like_path(weights):
    return isinstance(weights, Path) or (
        isinstance(weights, str)
        and (os.sep in weights or weights.endswith((".pth", ".pt", ".ckpt")))
    )


def weights_unavailable(enum, name, exc):
    """The :class:`WeightsUnavailableError` for pretrained weights ``enum`` of model ``name`` that
    are not cached and could not be downloaded (``exc``): it names the URL, the file and the
    directory to put it in."""
    file_name, directory = weights_file_location(enum)
    return WeightsUnavailableError(
        f"pretrained weights {enum} for {name!r} are not cached and could not be "
        "downloaded "
        f"({type(exc).__name__}: {exc}). Download {enum.url} and place the file "
        f"{file_name!r} in the directory {directory!r} (torch.hub.get_dir()/checkpoints; "
        "set TORCH_HOME to move it), pass weights=<path to the .pth file>, or "
        "weights=None for random (untrained) weights."
    )



@contextlib.contextmanager
def hub_offline(owner=None, name=None, replacement=None):
    """Inside: ``HF_HUB_OFFLINE=1`` (the environment and ``huggingface_hub``'s constant) and, when
    given, ``owner.<name>`` replaced by ``replacement`` (a library's URL download, pointed at its
    local cache); everything restored on exit. The one offline switch of the model sources."""
    from huggingface_hub import constants

    saved_env, saved_const = os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE
    saved_attr = getattr(owner, name) if owner is not None else None
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    if owner is not None:
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env
        constants.HF_HUB_OFFLINE = saved_const
        if owner is not None:
            setattr(owner, name, saved_attr)


def hub_cache_dir():
    """The Hugging Face hub cache folder (``HF_HUB_CACHE``; default
    ``~/.cache/huggingface/hub``)."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)
