"""timm models: ``build_model("timm:<name>")`` (needs the ``zoo`` extra: ``pip install
neuroprobe[zoo]``).

* **Network**: ``timm.create_model(name, pretrained=...)`` in ``eval()`` mode.
* **Preprocessing**: timm's own data config, ``timm.data.resolve_data_config({}, model=model)``
  and ``timm.data.create_transform(**config)`` (resize, centre crop, normalisation of the
  weights), applied to each decoded stimulus; the config is the ``preprocess_info``.
* **Weights**: ``weights="DEFAULT"``: the pretrained weights of timm's default tag, read *only*
  from the local caches (the Hugging Face hub cache, ``HF_HUB_OFFLINE=1`` during the call, and
  torch.hub's ``checkpoints`` folder for URL weights); when they are missing,
  :class:`~neuroprobe.exceptions.WeightsUnavailableError` names the model, the cache folders and
  how to fill them. ``weights=None``: the architecture with seeded random weights
  (``pretrained=False`` under ``random_state``, default seed 0). A path: a ``state_dict`` file.
* **Layers**: timm's module names, plus the aliases ``embed`` (stem / patch embedding),
  ``block0`` ... ``blockN`` (ViT blocks, or the stages / ResNet layers), ``norm`` (ViT final
  norm: the output of ``forward_features``) and ``head`` (the classifier).
* **Tokens**: for vision transformers the aliases of ``embed``, ``blockI`` and ``norm`` point at
  token taps (:mod:`neuroprobe.models.tokens`) that apply ``token_pooling``, given in the name:
  ``"timm:vit_tiny_patch16_224?token_pooling=cls"`` (``"cls"``, ``"mean"``, ``"last"`` or
  ``"none"``: all tokens channel first, the default).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from neuroprobe._utils import seed_from
from neuroprobe.exceptions import ModelError, WeightsUnavailableError
from neuroprobe.models.registry import ModelSpec, register_source
from neuroprobe.models.tokens import add_token_taps, split_options
from neuroprobe.models.weights import (
    DEFAULT_WEIGHTS_SEED,
    file_sha256,
    hub_cache_dir,
    hub_offline,
    is_random_weights,
    load_state_dict_file,
    looks_like_path,
    seeded,
)

__all__ = ["build_timm", "timm_aliases", "TimmPreprocess", "hub_cache_dir", "offline"]


def _import_timm():
    try:
        import timm
    except ImportError as exc:
        raise ModelError(
            "model source 'timm:' needs the timm package: pip install 'neuroprobe[zoo]'"
        ) from exc
    return timm


@contextlib.contextmanager
def offline():
    """Inside: ``HF_HUB_OFFLINE=1`` (environment and ``huggingface_hub``'s constant) and timm's URL
    downloads read torch.hub's ``checkpoints`` folder only."""
    import timm.models._builder as builder
    import torch

    def local_only(url, *args, **kwargs):
        path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} (for {url})")
        return torch.load(path, map_location="cpu", weights_only=True)

    with hub_offline(builder, "load_state_dict_from_url", local_only):
        yield


def _unavailable(name, exc):
    import torch

    hub = hub_cache_dir()
    torch_dir = os.path.join(torch.hub.get_dir(), "checkpoints")
    return WeightsUnavailableError(
        f"pretrained weights of timm model {name!r} are not in the local caches "
        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Looked in the "
        f"Hugging Face hub cache {hub!r} (set HF_HUB_CACHE or HF_HOME to move it) and in "
        f"{torch_dir!r}. On a machine with internet run python -c \"import timm; "
        f"timm.create_model('{name}', pretrained=True)\" and copy the new "
        f"'models--timm--...' folder of its hub cache into {hub!r}, or pass weights=<path to a "
        "state_dict file>, or weights=None for random (untrained) weights."
    )


def _create(name, weights, random_state):
    """``(module, weights_id)`` of timm model ``name``."""
    timm = _import_timm()
    if not timm.is_model(name):
        import difflib

        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise ModelError(
            f"unknown timm model {name!r}; expected a name of timm.list_models()"
            + (f", e.g. {', '.join(repr(c) for c in close)}" if close else "")
            + " (written 'timm:<name>')"
        )
    if is_random_weights(weights):
        seed = seed_from(random_state, DEFAULT_WEIGHTS_SEED)
        with seeded(seed):
            module = timm.create_model(name, pretrained=False)
        return module, f"random(seed={seed},timm={timm.__version__})"
    if looks_like_path(weights):
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"weights file not found: {path}")
        module = timm.create_model(name, pretrained=False)
        try:
            module.load_state_dict(load_state_dict_file(path), strict=True)
        except RuntimeError as exc:
            raise ModelError(
                f"weights file {path} does not match timm model {name!r}: "
                f"{str(exc).splitlines()[0]}"
            ) from exc
        return module, f"sha256:{file_sha256(path)}"
    if not (isinstance(weights, str) and weights.upper() == "DEFAULT"):
        raise ModelError(
            f"weights={weights!r} for timm model {name!r}; expected 'DEFAULT' (pretrained, from "
            "the local cache), None (random) or the path of a state_dict file"
        )
    try:
        with offline():
            module = timm.create_model(name, pretrained=True)
    except Exception as exc:  # noqa: BLE001 - hub errors vary (LocalEntryNotFound, OSError, ...)
        raise _unavailable(name, exc) from exc
    cfg = module.pretrained_cfg or {}
    ident = cfg.get("hf_hub_id") or f"{cfg.get('architecture', name)}.{cfg.get('tag', '')}"
    return module, f"timm:{ident}"


class TimmPreprocess:
    """timm's evaluation transform (from the model's data config) for one decoded image."""

    def __init__(self, config):
        from timm.data import create_transform

        self.config = dict(config)
        self.transform = create_transform(**self.config)
        self.info = {"kind": "timm.data.create_transform", **{
            k: list(v) if isinstance(v, tuple) else v for k, v in self.config.items()
        }}
        self.info["input_shape"] = list(self.config["input_size"])

    def __call__(self, image):
        import torch

        if isinstance(image, torch.Tensor) and image.is_floating_point():
            return image  # already preprocessed
        if hasattr(image, "convert"):
            image = image.convert("RGB")
        else:
            from PIL import Image

            image = Image.fromarray(image).convert("RGB")
        return self.transform(image)


def _first(module, candidates):
    names = {n for n, _ in module.named_modules()}
    return next((c for c in candidates if c in names), None)


def _block_names(module):
    for attr in ("blocks", "stages", "layers"):
        seq = getattr(module, attr, None)
        if seq is not None and hasattr(seq, "__len__") and len(seq):
            return [f"{attr}.{i}" for i in range(len(seq))]
    layers = [f"layer{i}" for i in range(1, 9) if hasattr(module, f"layer{i}")]
    if layers:
        return layers
    return [f["module"] for f in getattr(module, "feature_info", [])[1:]]


def _head_name(module):
    try:
        head = module.get_classifier()
    except (AttributeError, NotImplementedError):
        return None
    return next((n for n, m in module.named_modules() if m is head and n), None)


def timm_aliases(module):
    """``(aliases, token_layers)``: ``embed`` / ``blockI`` / ``norm`` / ``head`` -> module names,
    and the module names with ``(B, T, C)`` outputs (vision transformers)."""
    tokens = getattr(module, "num_prefix_tokens", None) is not None and hasattr(module, "blocks")
    aliases = {}
    embed = _first(module, ["pos_drop", "patch_embed"] if tokens else ["stem", "act1", "conv1"])
    if embed:
        aliases["embed"] = embed
    for i, name in enumerate(_block_names(module)):
        aliases[f"block{i}"] = name
    if tokens and _first(module, ["norm"]):
        aliases["norm"] = "norm"
    head = _head_name(module)
    if head:
        aliases["head"] = head
    token_layers = [v for k, v in aliases.items() if k != "head"] if tokens else []
    return aliases, token_layers


def build_timm(text, weights="DEFAULT", random_state=None):
    """The :class:`ModelSpec` of ``"timm:<text>"`` (``text`` = name and options, see above)."""
    name, options = split_options(text, "timm")
    module, weights_id = _create(name, weights, random_state)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    from timm.data import resolve_data_config

    preprocess = TimmPreprocess(resolve_data_config({}, model=module))
    aliases, token_layers = timm_aliases(module)
    pooling = options["token_pooling"]
    if token_layers:
        taps = add_token_taps(module, token_layers, pooling, module.num_prefix_tokens)
        aliases = {k: taps.get(v, v) for k, v in aliases.items()}
    info = dict(preprocess.info, token_pooling=pooling if token_layers else None)
    return ModelSpec(
        module=module,
        preprocess=preprocess,
        modality="image",
        name=f"timm:{name}" + (f"?token_pooling={pooling}" if token_layers else ""),
        weights_id=weights_id,
        aliases=aliases,
        preprocess_info=info,
    )


register_source("timm", build_timm)
