"""Hugging Face models: ``build_model("hf:<repo id or local folder>")`` (needs the ``zoo`` extra:
``pip install neuroprobe[zoo]``).

* **Network**: ``transformers.AutoModel`` in ``eval()`` mode; the first argument of its
  ``forward`` gives the stimulus modality:

  - ``pixel_values``: vision (ViT, DINOv2, CLIP vision ...), modality ``"image"``;
  - ``input_ids``: language (GPT-2, BERT, Llama-style decoders: the base model without its LM
    head), modality ``"text"``, wrapped in :class:`HFTextModel` (same layer names);
  - ``input_values`` / ``input_features``: audio (wav2vec2; Whisper: the encoder only,
    ``get_encoder()``), modality ``"audio"``.

  Stimuli of another modality raise :class:`~neuroprobe.exceptions.ModelError` saying what the
  model takes.
* **Preprocessing**: the model's ``AutoImageProcessor`` (resize, rescale, normalise, per image),
  ``AutoTokenizer`` (:class:`HFTextPreprocess`: one text at a time, then a batch padded on the
  tokenizer's ``padding_side`` to its longest text, or, with ``token_pooling="none"``, to the
  longest text of the whole stimulus set; longer texts than the model takes are cut with a
  :class:`~neuroprobe.exceptions.TruncationWarning` naming the stimulus and its length) or
  ``AutoFeatureExtractor`` (:class:`HFAudioPreprocess`: resampled to its rate first). Its
  settings are the ``preprocess_info``.
* **Weights**, always from local files (``local_files_only=True``: nothing is downloaded):

  - ``weights="DEFAULT"``: ``AutoModel.from_pretrained`` of a local folder (``save_pretrained``
    output) or of a repo id found in the Hugging Face hub cache;
  - ``weights=None``: random weights: the architecture of the folder's / cached repo's
    ``config.json`` (``AutoConfig.from_pretrained`` + ``AutoModel.from_config``), seeded by
    ``random_state`` (default seed 0). To build a random network from a config object, save it
    first: ``config.save_pretrained(folder)`` and the processor / tokenizer / feature extractor
    ``.save_pretrained(folder)``, then ``build_model(f"hf:{folder}", weights=None)``.

  A repo id that is not cached raises :class:`~neuroprobe.exceptions.WeightsUnavailableError`
  naming the hub cache folder and how to fill it; a folder without its tokenizer (or image
  processor, feature extractor) raises :class:`ModelError` naming the folder.
* **Layers**: the library's module names plus the aliases ``embed`` (``embeddings``; GPT-2
  ``drop``; Llama ``embed_tokens``: ``hidden_states[0]``), ``block0`` ... ``blockN`` (the layers:
  ``hidden_states[i + 1]`` of ``output_hidden_states=True``, except that GPT-2, Llama and Whisper
  apply their final norm to the last hidden state), ``norm`` (that final norm) and ``head``
  (``classifier`` or ``pooler``). ``embed``, ``blockI`` and ``norm`` are token taps applying
  ``token_pooling`` (:mod:`neuroprobe.models.tokens`; attention-mask aware for texts), given in
  the name: ``"hf:facebook/dinov2-small?token_pooling=cls"``. Language models also have the layer
  ``token_mask`` (the batch's attention mask); with ``token_pooling="none"`` their token axis is
  the longest text of the stimulus set.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
import warnings

from torch import nn

from neuroprobe._utils import seed_from
from neuroprobe.exceptions import ModelError, WeightsUnavailableError
from neuroprobe.models.registry import ModelSpec, register_source
from neuroprobe.models.tokens import TokenMask, add_token_taps, split_options
from neuroprobe.models.weights import (
    DEFAULT_WEIGHTS_SEED,
    hub_cache_dir,
    is_random_weights,
    module_digest,
    seeded,
)

__all__ = ["build_hf", "hf_aliases", "HFImagePreprocess"]


def _import_transformers():
    try:
        import transformers
    except ImportError as exc:
        raise ModelError(
            "model source 'hf:' needs the transformers package: pip install 'neuroprobe[zoo]'"
        ) from exc
    return transformers


def _location(text):
    """``(where, is_folder)``; a missing folder raises :class:`ModelError`."""
    if os.path.isdir(os.path.expanduser(text)):
        return os.path.expanduser(text), True
    if text.startswith(("/", ".", "~")) or os.sep + os.sep in text:
        raise ModelError(f"model folder not found: {text!r} (given as 'hf:{text}')")
    return text, False


def _unavailable(text, what, exc):
    cache = hub_cache_dir()
    return WeightsUnavailableError(
        f"the {what} of Hugging Face model {text!r} is not in the local hub cache {cache!r} "
        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). On a machine "
        f"with internet run `hf download {text}` (or huggingface_hub.snapshot_download) and copy "
        f"the folder 'models--{text.replace('/', '--')}' of its hub cache into {cache!r} (set "
        "HF_HUB_CACHE or HF_HOME to move it), or pass 'hf:<local folder>' holding the "
        "save_pretrained() files."
    )


def _processor(transformers, kind, text, where, is_folder):
    """The preprocessing object of a model of ``kind`` (image processor, tokenizer, feature
    extractor), from the folder or the hub cache only."""
    loader, what, file_hint, call = {
        "image": (transformers.AutoImageProcessor, "image processor",
                  "preprocessor_config.json", "image_processor.save_pretrained(folder)"),
        "text": (transformers.AutoTokenizer, "tokenizer",
                 "tokenizer.json / tokenizer_config.json", "tokenizer.save_pretrained(folder)"),
        "audio": (transformers.AutoFeatureExtractor, "feature extractor",
                  "preprocessor_config.json", "feature_extractor.save_pretrained(folder)"),
    }[kind]
    try:
        processor = loader.from_pretrained(where, local_files_only=True)
        if kind == "text" and len(processor) <= 1:  # transformers 5 builds an empty one
            raise OSError("no tokenizer files (the tokenizer it built has no vocabulary)")
        return processor
    except (OSError, ValueError, TypeError, KeyError) as exc:
        if not is_folder:
            raise _unavailable(text, what, exc) from exc
        raise ModelError(
            f"folder {where!r} holds no {what} ({file_hint}) for Hugging Face model {text!r}; "
            f"save one there with {call}"
        ) from exc


def _load(text, weights, random_state):
    """``(model, processor, weights_id, kind)`` of ``text`` (a repo id or a folder)."""
    transformers = _import_transformers()
    where, is_folder = _location(text)
    try:
        config = transformers.AutoConfig.from_pretrained(where, local_files_only=True)
    except OSError as exc:
        if is_folder:
            raise ModelError(f"folder {where!r} holds no Hugging Face config.json: {exc}") from exc
        raise _unavailable(text, "config", exc) from exc
    if is_random_weights(weights):
        seed = seed_from(random_state, DEFAULT_WEIGHTS_SEED)
        with seeded(seed):
            model = transformers.AutoModel.from_config(config)
        ident = f"random(seed={seed},transformers={transformers.__version__})"
    elif isinstance(weights, str) and weights.upper() == "DEFAULT":
        try:
            model = transformers.AutoModel.from_pretrained(where, local_files_only=True)
        except OSError as exc:
            if is_folder:
                raise ModelError(f"folder {where!r} holds no model weights: {exc}") from exc
            raise _unavailable(text, "weights", exc) from exc
        commit = getattr(model.config, "_commit_hash", None)
        ident = (
            f"hf:{text}@{commit}" if commit and not is_folder
            else f"sha256:{module_digest(model)}"
        )
    else:
        raise ModelError(
            f"weights={weights!r} for Hugging Face model {text!r}; expected 'DEFAULT' "
            "(pretrained, from the folder or the local hub cache) or None (random)"
        )
    if hasattr(model, "get_encoder") and _first_input(model) == "input_features":
        model = model.get_encoder()  # Whisper: the encoder only
    kind = _INPUT_KINDS.get(_first_input(model))
    if kind is None:
        raise ModelError(
            f"Hugging Face model {text!r} ({type(model).__name__}) takes "
            f"{_first_input(model)!r} first; expected a vision (pixel_values), language "
            "(input_ids) or audio (input_values / input_features) model"
        )
    processor = _processor(transformers, kind, text, where, is_folder)
    return model, processor, ident, kind


#: First ``forward`` argument -> the stimulus modality of the model.
_INPUT_KINDS = {
    "pixel_values": "image",
    "input_ids": "text",
    "input_values": "audio",
    "input_features": "audio",
}


def _first_input(model):
    params = list(inspect.signature(model.forward).parameters)
    return params[0] if params else None


def _wrong_modality(kind, stimulus):
    got = "text" if isinstance(stimulus, str) else type(stimulus).__name__
    hint = {
        "text": "pass a text StimulusSet (StimulusSet.from_texts, a CSV 'text' column or .txt "
                "files)",
        "image": "pass image stimuli",
        "audio": "pass audio stimuli (decoded as (waveform, sample_rate))",
    }[kind]
    return ModelError(f"this Hugging Face model takes {kind} stimuli but got {got}; {hint}")


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
        if isinstance(image, (str, tuple)):
            raise _wrong_modality("image", image)
        if hasattr(image, "convert"):
            image = image.convert("RGB")
        else:
            image = np.asarray(image)
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]


class HFTextPreprocess:
    """A Hugging Face tokenizer for one text -> its token ids (``collate`` pads a batch).

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
    max_length : int
        The model's maximum number of tokens; longer texts are truncated (on the tokenizer's
        ``truncation_side``) with a :class:`~neuroprobe.exceptions.TruncationWarning` naming the
        stimulus and its length.
    pad_to_set : bool
        ``token_pooling="none"``: batches are padded to the length the extractor gives
        :meth:`collate` (the longest text of the stimulus set, from :meth:`n_tokens`), so every
        batch has the same width; otherwise to the longest text of each batch.
    """

    def __init__(self, tokenizer, max_length, pad_to_set=False):
        self._lock = threading.Lock()  # the extractor's decode threads share the tokenizer
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.pad_to_set = bool(pad_to_set)
        if tokenizer.pad_token is None:  # GPT-2 style: any id works, padding is masked out
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        if tokenizer.pad_token is None:
            raise ModelError(
                f"tokenizer {type(tokenizer).__name__} has no pad, eos or unk token to pad with"
            )
        self.info = {
            "kind": "transformers.AutoTokenizer",
            "class": type(tokenizer).__name__,
            "vocab_size": len(tokenizer),
            "padding_side": tokenizer.padding_side,
            "truncation_side": tokenizer.truncation_side,
            "max_length": self.max_length,
            "padding": "longest of the stimulus set" if self.pad_to_set else "longest",
            "vocab_sha1": _tokenizer_digest(tokenizer),
            "input_shape": [min(8, self.max_length)],
        }

    def __call__(self, text):
        if not isinstance(text, str):
            raise _wrong_modality("text", text)
        from neuroprobe.exceptions import TruncationWarning

        with self._lock:  # a fast tokenizer's truncation setting is shared state
            full = self.tokenizer(str(text), truncation=False)
        n = len(full["input_ids"])
        if n <= self.max_length:
            return dict(full)
        who = text.describe() if hasattr(text, "describe") else f"text {str(text)[:40]!r}"
        message = (
            f"{who} has {n} tokens; the model takes at most {self.max_length}: truncated to "
            f"{self.max_length} (the {self.tokenizer.truncation_side} {n - self.max_length} "
            "tokens dropped)"
        )
        item = (getattr(text, "stim_id", None) or str(text)[:40], n)
        warnings.warn(TruncationWarning(message, [item], self.max_length), stacklevel=2)
        with self._lock:
            return dict(self.tokenizer(str(text), truncation=True, max_length=self.max_length))

    def n_tokens(self, texts):
        """Number of tokens of each text as :meth:`__call__` gives it (special tokens included,
        truncated to ``max_length``; no warning here)."""
        if not texts:
            return []
        with self._lock:
            ids = self.tokenizer([str(t) for t in texts], truncation=False)["input_ids"]
        return [min(len(row), self.max_length) for row in ids]

    def collate(self, items, length=None):
        """Pad token-id dicts into one batch (``input_ids``, ``attention_mask`` tensors), on the
        tokenizer's ``padding_side``: to ``length`` tokens when given (at least the longest
        item), else to the longest item."""
        if length is not None:
            longest = max(len(item["input_ids"]) for item in items)
            if longest > length:
                raise ValueError(
                    f"a text of {longest} tokens in a batch padded to {length} tokens (the "
                    "longest text of the stimulus set)"
                )
        with self._lock:
            return self.tokenizer.pad(
                items,
                padding="longest" if length is None else "max_length",
                max_length=None if length is None else int(length),
                return_tensors="pt",
            )

    def __getstate__(self):  # copies (the build cache, joblib) get their own lock
        state = dict(self.__dict__)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _tokenizer_digest(tokenizer):
    import hashlib

    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(
        sorted(tokenizer.get_vocab().items())
    )
    return hashlib.sha1(text.encode()).hexdigest()


class HFAudioPreprocess:
    """A Hugging Face feature extractor for one decoded audio ``(waveform, sample_rate)`` ->
    ``input_values`` ``(n_samples,)`` (wav2vec2) or ``input_features`` ``(n_mels, n_frames)``
    (Whisper); the waveform is first resampled to the extractor's ``sampling_rate``."""

    def __init__(self, extractor, input_shape=None):
        self.extractor = extractor
        self.sampling_rate = int(extractor.sampling_rate)
        info = json.loads(extractor.to_json_string())
        self.info = {"kind": "transformers.AutoFeatureExtractor", **info}
        if input_shape is not None:
            self.info["input_shape"] = list(input_shape)

    def __call__(self, decoded):
        import torch

        if isinstance(decoded, torch.Tensor) and decoded.is_floating_point():
            return decoded  # already preprocessed
        if not (isinstance(decoded, tuple) and len(decoded) == 2) or isinstance(decoded, str):
            raise _wrong_modality("audio", decoded)
        from neuroprobe.media.audio import resample

        waveform, rate = decoded
        waveform = resample(waveform, int(rate), self.sampling_rate)
        out = self.extractor(waveform, sampling_rate=self.sampling_rate, return_tensors="pt")
        key = "input_values" if "input_values" in out else "input_features"
        return out[key][0]


class HFTextModel(nn.Module):
    """A Hugging Face language model called with one tokenised batch.

    It is a view of the model: it shares the model's sub-modules, parameters and buffers, so its
    layer names are the library's (``h.0``, ``encoder.layer.0`` ...), plus ``token_mask`` and the
    token taps. ``forward(batch)`` takes the ``input_ids`` / ``attention_mask`` of
    :meth:`HFTextPreprocess.collate` (or a tensor of token ids), gives the mask to the token taps,
    and passes ``position_ids`` counted over the non-padding tokens, so left padding does not
    shift positions (a text's features do not depend on its batch).
    """

    def __init__(self, model, taps=()):
        super().__init__()
        object.__setattr__(self, "hf_model", model)
        object.__setattr__(self, "_parameters", model._parameters)
        object.__setattr__(self, "_buffers", model._buffers)
        object.__setattr__(self, "_non_persistent_buffers_set", model._non_persistent_buffers_set)
        modules = model._modules
        items = list(modules.items())
        modules.clear()  # in place: the model and this view keep one dict
        modules["token_mask"] = TokenMask()
        modules.update(items)
        object.__setattr__(self, "_modules", modules)
        self.taps = list(taps)
        self.accepts = set(inspect.signature(model.forward).parameters)

    def forward(self, batch):
        import torch

        if isinstance(batch, torch.Tensor):  # token ids (the zero input of list_layers)
            batch = {"input_ids": batch.long()}
        device = next(self.parameters()).device
        ids = batch["input_ids"].to(device)
        mask = batch.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else mask.to(device)
        kwargs = {"input_ids": ids, "attention_mask": mask}
        if "position_ids" in self.accepts:
            kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
        if "token_type_ids" in batch and "token_type_ids" in self.accepts:
            kwargs["token_type_ids"] = batch["token_type_ids"].to(device)
        if "use_cache" in self.accepts:
            kwargs["use_cache"] = False
        for tap in self.taps:
            tap.set_mask(mask)
        try:
            self.token_mask(mask)
            return self.hf_model(**kwargs)
        finally:
            for tap in self.taps:
                tap.set_mask(None)


def _block_list(model):
    """Module names of the transformer layers: the ``ModuleList`` of ``num_hidden_layers``
    modules, one named like a layer list (``layer``, ``layers``, ``h``, ``blocks``) first (so
    wav2vec2's convolutions are not taken for its layers)."""
    n = getattr(model.config, "num_hidden_layers", None)
    found = [
        name for name, module in model.named_modules()
        if type(module).__name__ == "ModuleList" and len(module) == n
    ]
    named = [f for f in found if f.rsplit(".", 1)[-1] in ("layer", "layers", "h", "blocks")]
    found = named or found
    return [f"{found[0]}.{i}" for i in range(n)] if found else []


#: Modules whose output is the embedding output (``hidden_states[0]``), first match wins.
_EMBEDS = ("embeddings", "drop", "embed_tokens")
#: Final norms whose output is the last hidden state, first match wins.
_NORMS = ("layernorm", "norm", "encoder.layernorm", "ln_f", "layer_norm", "final_layer_norm")


def hf_aliases(model):
    """``(aliases, token_layers)``: ``embed`` / ``blockI`` / ``norm`` / ``head`` -> module names,
    and the module names with ``(B, T, C)`` outputs."""
    names = {n for n, _ in model.named_modules()}
    aliases = {}
    embed = next((n for n in _EMBEDS if n in names), None)
    if embed:
        aliases["embed"] = embed
    for i, name in enumerate(_block_list(model)):
        aliases[f"block{i}"] = name
    norm = next((n for n in _NORMS if n in names), None)
    if getattr(model.config, "do_stable_layer_norm", True) is False:
        norm = None  # wav2vec2 (post-norm): encoder.layer_norm runs before the layers
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


def _audio_input_shape(model, extractor):
    config = model.config
    if _first_input(model) == "input_features":  # Whisper: a fixed number of mel frames
        frames = 2 * int(getattr(config, "max_source_positions", 1500))
        return (int(getattr(config, "num_mel_bins", extractor.feature_size)), frames)
    return (int(extractor.sampling_rate),)  # one second of waveform


def _max_length(model, tokenizer):
    limits = [getattr(model.config, "max_position_embeddings", None)]
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and limit < 10**6:
        limits.append(limit)
    limits = [int(x) for x in limits if isinstance(x, int) and x > 0]
    return min(limits) if limits else 512


def _freeze(model):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)


def build_hf(text, weights="DEFAULT", random_state=None):
    """The :class:`ModelSpec` of ``"hf:<text>"`` (``text`` = repo id or folder, and options)."""
    name, options = split_options(text, "hf")
    model, processor, weights_id, kind = _load(name, weights, random_state)
    _freeze(model)
    aliases, token_layers = hf_aliases(model)
    pooling = options["token_pooling"]
    if kind == "image":
        preprocess = HFImagePreprocess(processor, _input_shape(model.config))
        prefix = 1 + int(getattr(model.config, "num_register_tokens", 0) or 0)
    elif kind == "audio":
        preprocess = HFAudioPreprocess(processor, _audio_input_shape(model, processor))
        prefix = 0  # no class token: "mean" averages every frame
    else:
        preprocess = HFTextPreprocess(processor, _max_length(model, processor), pooling == "none")
        prefix = 1
    if kind == "audio" and pooling == "cls":
        raise ModelError(
            f"token_pooling='cls' for audio model {name!r}: it has no class token; use 'mean', "
            "'last' or 'none'"
        )
    taps = add_token_taps(model, token_layers, pooling, prefix)
    aliases = {k: taps.get(v, v) for k, v in aliases.items()}
    module, collate = model, None
    if kind == "text":
        tap_modules = dict(model.named_modules())
        module = HFTextModel(model, [tap_modules[t] for t in taps.values()])
        _freeze(module)
        collate = preprocess.collate
    return ModelSpec(
        module=module,
        preprocess=preprocess,
        modality=kind,
        name=f"hf:{name}?token_pooling={pooling}",
        weights_id=weights_id,
        aliases=aliases,
        collate=collate,
        preprocess_info=dict(preprocess.info, token_pooling=pooling),
    )


register_source("hf", build_hf)
