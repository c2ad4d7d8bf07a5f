"""Hugging Face vision models: ``build_model("hf:<repo id or local folder>")`` (needs the ``zoo``
extra: ``pip install neuroprobe[zoo]``).

* **Network**: ``transformers.AutoModel`` (ViT, DINOv2, ... : models whose ``forward`` takes
  ``pixel_values``) in ``eval()`` mode. Text and audio models are not supported yet.
* **Preprocessing**: the model's ``AutoImageProcessor`` (resize, rescale, normalise), applied to
  each decoded image; its settings are the ``preprocess_info``.
* **Weights**, always from local files (``local_files_only=True``: nothing is downloaded):

  - ``weights="DEFAULT"``: ``AutoModel.from_pretrained`` of a local folder (``save_pretrained``
    output) or of a repo id found in the Hugging Face hub cache;
  - ``weights=None``: random weights: the architecture of the folder's / cached repo's
    ``config.json`` (``AutoConfig.from_pretrained`` + ``AutoModel.from_config``), seeded by
    ``random_state`` (default seed 0). To build a random network from a config object, save it
    first: ``config.save_pretrained(folder)`` and ``image_processor.save_pretrained(folder)``,
    then ``build_model(f"hf:{folder}", weights=None)``.

  A repo id that is not cached raises :class:`~neuroprobe.exceptions.WeightsUnavailableError`
  naming the hub cache folder and how to fill it.
* **Layers**: the library's module names plus the aliases ``embed`` (``embeddings``),
  ``block0`` ... ``blockN`` (the encoder layers: ``hidden_states[i + 1]`` of
  ``output_hidden_states=True``), ``norm`` (the final layer norm: ``last_hidden_state``) and
  ``head`` (``classifier`` or ``pooler``). ``embed``, ``blockI`` and ``norm`` are token taps
  applying ``token_pooling`` (:mod:`neuroprobe.models.tokens`), given in the name:
  ``"hf:facebook/dinov2-small?token_pooling=cls"``.
"""

from __future__ import annotations

import inspect
import json
import os

from neuroprobe._utils import seed_from
from neuroprobe.exceptions import ModelError, WeightsUnavailableError
from neuroprobe.models.registry import ModelSpec, register_source
from neuroprobe.models.tokens import add_token_taps, split_options
from neuroprobe.models.weights import DEFAULT_WEIGHTS_SEED, is_random_weights, module_digest, seeded

__all__ = ["build_hf", "hf_aliases", "HFImagePreprocess"]


def _import_transformers():
    try:
        import transformers
    except ImportError as exc:
        raise ModelError(
            "model source 'hf:' needs the transformers package: pip install 'neuroprobe[zoo]'"
        ) from exc
    return transformers


def _cache_dir():
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _location(text):
    """``(where, is_folder)``; a missing folder raises :class:`ModelError`."""
    if os.path.isdir(os.path.expanduser(text)):
        return os.path.expanduser(text), True
    if text.startswith(("/", ".", "~")) or os.sep + os.sep in text:
        raise ModelError(f"model folder not found: {text!r} (given as 'hf:{text}')")
    return text, False


def _unavailable(text, what, exc):
    cache = _cache_dir()
    return WeightsUnavailableError(
        f"the {what} of Hugging Face model {text!r} is not in the local hub cache {cache!r} "
        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). On a machine "
        f"with internet run `hf download {text}` (or huggingface_hub.snapshot_download) and copy "
        f"the folder 'models--{text.replace('/', '--')}' of its hub cache into {cache!r} (set "
        "HF_HUB_CACHE or HF_HOME to move it), or pass 'hf:<local folder>' holding the "
        "save_pretrained() files."
    )


def _load(text, weights, random_state):
    """``(model, processor, weights_id)`` of ``text`` (a repo id or a folder)."""
    transformers = _import_transformers()
    where, is_folder = _location(text)
    try:
        config = transformers.AutoConfig.from_pretrained(where, local_files_only=True)
    except OSError as exc:
        if is_folder:
            raise ModelError(f"folder {where!r} holds no Hugging Face config.json: {exc}") from exc
        raise _unavailable(text, "config", exc) from exc
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(where, local_files_only=True)
    except (OSError, ValueError) as exc:
        if not is_folder:
            raise _unavailable(text, "image processor", exc) from exc
        raise ModelError(
            f"folder {where!r} holds no image processor (preprocessor_config.json); save one "
            "there with image_processor.save_pretrained(folder)"
        ) from exc
    if is_random_weights(weights):
        seed = seed_from(random_state, DEFAULT_WEIGHTS_SEED)
        with seeded(seed):
            model = transformers.AutoModel.from_config(config)
        return model, processor, f"random(seed={seed},transformers={transformers.__version__})"
    if not (isinstance(weights, str) and weights.upper() == "DEFAULT"):
        raise ModelError(
            f"weights={weights!r} for Hugging Face model {text!r}; expected 'DEFAULT' "
            "(pretrained, from the folder or the local hub cache) or None (random)"
        )
    try:
        model = transformers.AutoModel.from_pretrained(where, local_files_only=True)
    except OSError as exc:
        if is_folder:
            raise ModelError(f"folder {where!r} holds no model weights: {exc}") from exc
        raise _unavailable(text, "weights", exc) from exc
    commit = getattr(model.config, "_commit_hash", None)
    ident = f"hf:{text}@{commit}" if commit and not is_folder else f"sha256:{module_digest(model)}"
    return model, processor, ident


class HFImagePreprocess:
    """A Hugging Face image processor for one decoded image -> ``pixel_values`` ``(3, H, W)``."""

    def __init__(self, processor, input_shape=None):
        self.processor = processor
        self.info = {"kind": "transformers.AutoImageProcessor",
                     **json.loads(processor.to_json_string())}
        if input_shape is not None:
            self.info["input_shape"] = list(input_shape)

    def __call__(self, image):
        import numpy as np
        import torch

        if isinstance(image, torch.Tensor) and image.is_floating_point():
            return image  # already preprocessed
        if hasattr(image, "convert"):
            image = image.convert("RGB")
        else:
            image = np.asarray(image)
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]


def _block_list(model):
    n = getattr(model.config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if type(module).__name__ == "ModuleList" and len(module) == n:
            return [f"{name}.{i}" for i in range(n)]
    return []


def hf_aliases(model):
    """``(aliases, token_layers)``: ``embed`` / ``blockI`` / ``norm`` / ``head`` -> module names,
    and the module names with ``(B, T, C)`` outputs."""
    names = {n for n, _ in model.named_modules()}
    aliases = {}
    if "embeddings" in names:
        aliases["embed"] = "embeddings"
    for i, name in enumerate(_block_list(model)):
        aliases[f"block{i}"] = name
    norm = next((n for n in ("layernorm", "norm", "encoder.layernorm") if n in names), None)
    if norm:
        aliases["norm"] = norm
    head = next((n for n in ("classifier", "head", "pooler") if n in names), None)
    if head:
        aliases["head"] = head
    return aliases, [v for k, v in aliases.items() if k != "head"]


def _input_shape(config):
    size = getattr(config, "image_size", None)
    if isinstance(size, int):
        return (getattr(config, "num_channels", 3), size, size)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return (getattr(config, "num_channels", 3), *size)
    return None


def build_hf(text, weights="DEFAULT", random_state=None):
    """The :class:`ModelSpec` of ``"hf:<text>"`` (``text`` = repo id or folder, and options)."""
    name, options = split_options(text, "hf")
    model, processor, weights_id = _load(name, weights, random_state)
    params = list(inspect.signature(model.forward).parameters)
    if not params or params[0] != "pixel_values":
        raise ModelError(
            f"Hugging Face model {name!r} ({type(model).__name__}) takes {params[:1]} first; "
            "expected a vision model whose forward takes pixel_values (text and audio models "
            "are not supported yet)"
        )
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    preprocess = HFImagePreprocess(processor, _input_shape(model.config))
    aliases, token_layers = hf_aliases(model)
    pooling = options["token_pooling"]
    prefix = 1 + int(getattr(model.config, "num_register_tokens", 0) or 0)
    taps = add_token_taps(model, token_layers, pooling, prefix)
    aliases = {k: taps.get(v, v) for k, v in aliases.items()}
    return ModelSpec(
        module=model,
        preprocess=preprocess,
        modality="image",
        name=f"hf:{name}?token_pooling={pooling}",
        weights_id=weights_id,
        aliases=aliases,
        preprocess_info=dict(preprocess.info, token_pooling=pooling),
    )


register_source("hf", build_hf)
