"""OpenCLIP models: ``build_model("open_clip:<architecture>/<pretrained tag>")`` (needs the ``zoo``
extra: ``pip install neuroprobe[zoo]``).

* **Name**: ``"open_clip:ViT-B-32/laion2b_s34b_b79k"``: an architecture of
  ``open_clip.list_models()`` and a pretrained tag of ``open_clip.list_pretrained_tags_by_model``;
  or OpenCLIP's own schemas ``"open_clip:hf-hub:<repo id>"`` (config and weights from the hub
  cache) and ``"open_clip:local-dir:<folder>"`` (``open_clip_config.json`` + a checkpoint);
  options after ``?``: ``tower=image`` (default) or ``tower=text``, and ``token_pooling=``
  (``"cls"``, ``"mean"``, ``"last"``, ``"none"``; see **Aliases**).
* **Network**: one tower of ``open_clip.create_model(name, pretrained=...)`` in ``eval()`` mode,
  as a :class:`CLIPTower`: its forward is the library's own ``encode_image`` (image tower) or
  ``encode_text`` (text tower), unnormalised, followed by an identity module ``embedding`` so the
  embedding is a layer (the default layer). The tower keeps the library's module names
  (``visual.transformer.resblocks.0`` for the image tower; ``transformer.resblocks.0``,
  ``token_embedding``, ``ln_final`` for the text tower, or ``text.*`` for models with a custom text
  tower), so hooks on them see exactly what OpenCLIP computes.
* **Preprocessing**: image tower: OpenCLIP's evaluation transform,
  ``open_clip.image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)``
  (the tag's resize mode, interpolation, mean and std); text tower: OpenCLIP's tokenizer
  (``open_clip.get_tokenizer(name)``): one string -> ``context_length`` token ids (int64).
* **Weights**: ``weights="DEFAULT"``: the tag's weights, read *only* from the local caches (the
  Hugging Face hub cache with ``HF_HUB_OFFLINE=1`` for the call, and OpenCLIP's URL cache
  ``~/.cache/clip``); when missing, :class:`~neuroprobe.exceptions.WeightsUnavailableError` names
  the model, both folders and how to fill them. A path: an OpenCLIP checkpoint file
  (``create_model(name, pretrained=path)``). ``weights=None``: random weights
  (``create_model(name, pretrained=None)`` under ``random_state``, default seed 0), with the tag's
  preprocessing when a tag is named.
* **Aliases**: image tower: ``embed`` (``visual.ln_pre``: the tokens entering the first block),
  ``block0`` ... ``blockN`` (``visual.transformer.resblocks.I``), ``norm`` (``visual.ln_post``),
  ``head`` (``embedding``); text tower: ``embed`` (``token_embedding``), ``blockI``, ``norm``
  (``ln_final``), ``head``. The ``embed`` / ``blockI`` / ``norm`` aliases of both towers point at
  token taps (:mod:`neuroprobe.models.tokens`: ``token_pooling``); the library's module names give
  the raw ``(B, T, C)``. Image tower: ``"none"`` gives every token channel first, as for timm.
  Text tower: the taps are attention-mask aware, the mask being ``token ids != pad id`` (OpenCLIP
  pads with 0 after the end-of-text token): ``"cls"`` is the start-of-text token, ``"mean"`` the
  mean over the real tokens, ``"last"`` the end-of-text token (where ``encode_text`` pools: the
  argmax of the ids for the default tokenizer), ``"none"`` every token of a batch cut to the
  longest text of the stimulus set (padding zeroed; the mask is the layer ``token_mask``, stored
  beside each layer in ``.act.h5`` files). The network always runs on the full
  ``context_length``, so ``embedding`` equals ``encode_text``. A text tower that appends a class
  token (CoCa) has no taps (``token_pooling="none"`` only; read ``embedding``).

Text input: :class:`CLIPTextPreprocess` turns a string into token ids;
:class:`~neuroprobe.transformers.DNNFeatureExtractor` takes a text stimulus set, and the
multimodal :class:`~neuroprobe.transformers.CLIPEmbedder` feeds lists of strings or a text column
of a :class:`~neuroprobe.stimuli.StimulusSet`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from torch import nn

from neuroprobe._utils import seed_from
from neuroprobe.exceptions import ModelError, WeightsUnavailableError
from neuroprobe.models.registry import ModelSpec, register_source
from neuroprobe.models.tokens import TOKEN_POOLINGS, TokenMask, add_token_taps
from neuroprobe.models.weights import (
    DEFAULT_WEIGHTS_SEED,
    file_sha256,
    hub_cache_dir,
    hub_offline,
    is_random_weights,
    looks_like_path,
    seeded,
)

__all__ = [
    "CLIPImagePreprocess",
    "CLIPTextPreprocess",
    "CLIPTower",
    "build_open_clip",
    "build_open_clip_towers",
    "clip_cache_dir",
    "parse_name",
]

TOWERS = ("image", "text")
#: OpenCLIP's name schemas: the config and weights of a Hugging Face hub repo, or of a folder
#: holding ``open_clip_config.json`` and a checkpoint.
SCHEMAS = ("hf-hub:", "local-dir:")


def _import_open_clip():
    try:
        import open_clip
    except ImportError as exc:
        raise ModelError(
            "model source 'open_clip:' needs the open_clip_torch package: "
            "pip install 'neuroprobe[zoo]'"
        ) from exc
    return open_clip


def clip_cache_dir():
    """OpenCLIP's cache of URL checkpoints (``~/.cache/clip``)."""
    return os.path.expanduser("~/.cache/clip")


@contextlib.contextmanager
def offline():
    """Inside: ``HF_HUB_OFFLINE=1`` (environment and ``huggingface_hub``'s constant), and
    OpenCLIP's URL checkpoints are read from its cache folder only (never downloaded)."""
    import open_clip.pretrained as pretrained

    def local_only(url, cache_dir=None):
        path = os.path.join(cache_dir or clip_cache_dir(), os.path.basename(url))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} (for {url})")
        return path

    with hub_offline(pretrained, "download_pretrained_from_url", local_only):
        yield


def parse_name(text):
    """``"ViT-B-32/tag?tower=text&token_pooling=cls"`` -> ``(arch, tag, tower, token_pooling)``.

    ``tag`` is ``None`` when not given; unknown options raise :class:`ModelError`.
    """
    spec, _, query = text.partition("?")
    if spec.startswith(SCHEMAS):  # config (and weights) from a hub repo or a local folder
        arch, tag = spec, None
    else:
        arch, _, tag = spec.partition("/")
    options = {"tower": "image", "token_pooling": "none"}
    allowed = {"tower": TOWERS, "token_pooling": TOKEN_POOLINGS}
    for item in filter(None, query.split("&")):
        key, sep, value = item.partition("=")
        if key not in allowed or not sep:
            raise ModelError(
                f"unknown option {item!r} in model 'open_clip:{text}'; expected '?tower=' one of "
                f"{', '.join(TOWERS)} and/or '&token_pooling=' one of {', '.join(TOKEN_POOLINGS)}"
            )
        if value not in allowed[key]:
            raise ModelError(
                f"{key}={value!r} in model 'open_clip:{text}'; expected one of "
                f"{', '.join(allowed[key])}"
            )
        options[key] = value
    if not arch:
        raise ModelError(f"model 'open_clip:{text}' names no architecture after 'open_clip:'")
    return arch, tag or None, options["tower"], options["token_pooling"]


def _check_arch(open_clip, arch):
    if arch.startswith("local-dir:"):
        folder = Path(os.path.expanduser(arch[len("local-dir:"):]))
        if not (folder / "open_clip_config.json").is_file():
            raise ModelError(
                f"folder {str(folder)!r} (model 'open_clip:{arch}') holds no open_clip_config.json"
            )
        return
    if arch.startswith("hf-hub:"):
        return
    if arch not in open_clip.list_models():
        import difflib

        close = difflib.get_close_matches(arch, open_clip.list_models(), n=3)
        raise ModelError(
            f"unknown OpenCLIP architecture {arch!r}; expected a name of open_clip.list_models()"
            + (f", e.g. {', '.join(repr(c) for c in close)}" if close else "")
            + " (written 'open_clip:<architecture>/<pretrained tag>')"
        )


def _unavailable(arch, tag, exc):
    from open_clip.pretrained import get_pretrained_cfg

    if arch.startswith("hf-hub:"):
        hub, repo = hub_cache_dir(), arch[len("hf-hub:"):]
        return WeightsUnavailableError(
            f"OpenCLIP model {arch!r} is not in the local Hugging Face hub cache {hub!r} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). On a "
            f"machine with internet run `hf download {repo}` and copy the folder "
            f"'models--{repo.replace('/', '--')}' of its hub cache into {hub!r} (set HF_HUB_CACHE "
            "or HF_HOME to move it), or pass 'open_clip:local-dir:<folder>' holding "
            "open_clip_config.json and the checkpoint."
        )
    cfg = get_pretrained_cfg(arch, tag) or {}
    hub, clip_dir = hub_cache_dir(), clip_cache_dir()
    where = []
    if cfg.get("hf_hub"):
        repo = cfg["hf_hub"].strip("/").split("/")
        where.append(f"the folder 'models--{repo[0]}--{repo[1]}' of its hub cache into {hub!r}")
    if cfg.get("url"):
        where.append(f"the file {os.path.basename(cfg['url'])!r} ({cfg['url']}) into {clip_dir!r}")
    return WeightsUnavailableError(
        f"pretrained weights {tag!r} of OpenCLIP model {arch!r} are not in the local caches "
        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Looked in the "
        f"Hugging Face hub cache {hub!r} (set HF_HUB_CACHE or HF_HOME to move it) and in "
        f"OpenCLIP's cache {clip_dir!r}. On a machine with internet run python -c \"import "
        f"open_clip; open_clip.create_model('{arch}', pretrained='{tag}')\" and copy "
        + (" or ".join(where) or f"the downloaded checkpoint into {clip_dir!r}")
        + ", or pass weights=<path to the checkpoint file>, or weights=None for random "
        "(untrained) weights."
    )


def _tag_preprocess(arch, tag):
    """The preprocessing overrides of a pretrained tag (mean, std, interpolation, resize mode)."""
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch, tag) if tag else {}
    return {k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if cfg.get(k)}


def _create(arch, tag, weights, random_state):
    """``(open_clip model, weights_id)``."""
    open_clip = _import_open_clip()
    _check_arch(open_clip, arch)
    if tag and not is_random_weights(weights) and not looks_like_path(weights):
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if tag not in tags:
            raise ModelError(
                f"unknown pretrained tag {tag!r} for OpenCLIP model {arch!r}; expected one of "
                f"{', '.join(tags) or '(none: this architecture has no pretrained tags)'}"
            )
    schema = arch.startswith(SCHEMAS)
    if is_random_weights(weights):
        seed = seed_from(random_state, DEFAULT_WEIGHTS_SEED)
        force = _tag_preprocess(arch, tag) if tag in open_clip.list_pretrained_tags_by_model(
            arch) else {}
        try:
            with seeded(seed), offline():  # a schema's config is read from its cache / folder
                model = open_clip.create_model(arch, pretrained=None, load_weights=False,
                                               pretrained_text=False,
                                               force_preprocess_cfg=force or None)
        except RuntimeError as exc:
            if not schema:
                raise
            raise _unavailable(arch, tag, exc) from exc
        return model, f"random(seed={seed},open_clip={open_clip.__version__})"
    if schema and looks_like_path(weights):
        raise ModelError(
            f"weights={weights!r} for OpenCLIP model {arch!r}: a '{arch.split(':')[0]}:' name "
            "brings its own weights; pass weights='DEFAULT' or None"
        )
    if looks_like_path(weights):
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"weights file not found: {path}")
        try:
            model = open_clip.create_model(arch, pretrained=str(path),
                                           force_preprocess_cfg=_tag_preprocess(arch, tag) or None)
        except (RuntimeError, KeyError) as exc:
            raise ModelError(
                f"weights file {path} does not match OpenCLIP model {arch!r}: "
                f"{str(exc).splitlines()[0]}"
            ) from exc
        return model, f"sha256:{file_sha256(path)}"
    if not (isinstance(weights, str) and weights.upper() == "DEFAULT"):
        raise ModelError(
            f"weights={weights!r} for OpenCLIP model {arch!r}; expected 'DEFAULT' (the tag's "
            "pretrained weights, from the local cache), None (random) or the path of a checkpoint"
        )
    if schema:
        try:
            with offline():
                model = open_clip.create_model(arch, require_pretrained=True)
        except Exception as exc:  # noqa: BLE001 - hub and file errors vary
            if arch.startswith("local-dir:"):
                raise ModelError(f"cannot load OpenCLIP model {arch!r}: {exc}") from exc
            raise _unavailable(arch, tag, exc) from exc
        if arch.startswith("local-dir:"):
            from open_clip.factory import _find_checkpoint_in_dir

            ckpt = _find_checkpoint_in_dir(Path(os.path.expanduser(arch[len("local-dir:"):])))
            return model, f"sha256:{file_sha256(ckpt)}"
        return model, f"open_clip:{arch}"
    if not tag:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise ModelError(
            f"OpenCLIP model {arch!r} names no pretrained tag; write 'open_clip:{arch}/<tag>' with "
            f"a tag of {', '.join(tags) or '(none)'}, or pass weights=None for random weights"
        )
    try:
        with offline():
            model = open_clip.create_model(arch, pretrained=tag)
    except Exception as exc:  # noqa: BLE001 - hub and file errors vary (RuntimeError, OSError, ...)
        raise _unavailable(arch, tag, exc) from exc
    return model, f"open_clip:{arch}/{tag}"


class CLIPTower(nn.Module):
    """One tower of an OpenCLIP model, with the library's module names.

    ``forward(x)`` is the library's ``encode_image(x)`` (``tower="image"``) or
    ``encode_text(x)`` (``tower="text"``, ``x`` the token ids), unnormalised, passed through the
    identity module ``embedding`` so the embedding can be captured like any layer.

    Text tower: ``x`` may be narrower than the model's ``context_length`` (a batch cut to the
    longest text of its stimulus set, :meth:`CLIPTextPreprocess.collate`); it is padded back with
    ``pad_id`` before ``encode_text``, so the network computes exactly what OpenCLIP computes.
    The layer ``token_mask`` is ``x != pad_id`` (first ``x.shape[1]`` positions) and the token
    taps get that mask (:mod:`neuroprobe.models.tokens`: ``"mean"`` over the real tokens, ``"last"``
    the end-of-text token, ``"none"`` the first ``x.shape[1]`` tokens, padding zeroed).

    Parameters
    ----------
    clip : open_clip.CLIP or open_clip.CustomTextCLIP
        The model; the tower takes over its modules (``visual``, or every other one), its
        parameters and buffers (text tower) and its plain attributes, so the library's method runs
        unchanged on them.
    tower : {"image", "text"}
    pad_id : int, default=0
        Text tower: the token id of padding (OpenCLIP's default tokenizer pads with 0).
    """

    def __init__(self, clip, tower, pad_id=0):
        super().__init__()
        if tower not in TOWERS:
            raise ModelError(f"tower must be one of {TOWERS}, got {tower!r}")
        self.tower = tower
        image = tower == "image"
        self._encode = type(clip).encode_image if image else type(clip).encode_text
        self.pad_id = int(pad_id)
        self.taps = []
        if not image:
            self.token_mask = TokenMask()
        for name, child in clip.named_children():
            if (name == "visual") == image:
                self.add_module(name, child)
        if not image:
            for name, param in clip.named_parameters(recurse=False):
                if not name.startswith("logit_"):
                    self.register_parameter(name, param)
            for name, buf in clip.named_buffers(recurse=False):
                self.register_buffer(name, buf, persistent=name in clip.state_dict())
            for key, value in vars(clip).items():
                if not key.startswith("_") and key != "training" and not hasattr(self, key):
                    object.__setattr__(self, key, value)
        self.embedding = nn.Identity()

    def forward(self, x):
        """The unnormalised embedding of a batch (images, or token ids for the text tower; float
        token ids, as a float batch of the extractor carries them, are cast back to int64)."""
        if self.tower == "image":
            return self.embedding(self._encode(self, x))
        import torch

        if x.is_floating_point():
            x = x.long()
        width = x.shape[1]
        context = int(getattr(self, "context_length", None) or getattr(
            getattr(self, "text", None), "context_length", width))
        if width < context:  # a batch cut to its set's longest text: padding back
            x = torch.nn.functional.pad(x, (0, context - width), value=self.pad_id)
        mask = x != self.pad_id
        for tap in self.taps:
            tap.set_mask(mask, length=width)
        try:
            self.token_mask(mask[:, :width])
            return self.embedding(self._encode(self, x))
        finally:
            for tap in self.taps:
                tap.set_mask(None)


class CLIPImagePreprocess:
    """OpenCLIP's evaluation transform (``image_transform_v2``) for one decoded image."""

    def __init__(self, preprocess_cfg):
        from open_clip.transform import PreprocessCfg, image_transform_v2

        cfg = PreprocessCfg(**preprocess_cfg)
        self.transform = image_transform_v2(cfg, is_train=False)
        size = cfg.size if isinstance(cfg.size, (tuple, list)) else (cfg.size, cfg.size)
        self.info = {"kind": "open_clip.image_transform_v2",
                     **{k: list(v) if isinstance(v, tuple) else v
                        for k, v in dict(preprocess_cfg).items()},
                     "input_shape": [cfg.num_channels, *size]}

    def __call__(self, image):
        import torch

        if isinstance(image, torch.Tensor) and image.is_floating_point():
            return image  # already preprocessed
        if isinstance(image, str):
            raise ModelError(
                "the OpenCLIP image tower takes images, got a string; for captions use the text "
                "tower ('open_clip:<architecture>/<tag>?tower=text') or CLIPEmbedder"
            )
        if not hasattr(image, "convert"):
            from PIL import Image

            image = Image.fromarray(image)
        return self.transform(image.convert("RGB"))


class CLIPTextPreprocess:
    """OpenCLIP's tokenizer for one string -> ``(context_length,)`` int64 token ids.

    Call :meth:`batch` for many strings at once (the tokenizer's own batching).

    Parameters
    ----------
    tokenizer : open_clip tokenizer
    arch : str
    pad_id : int, default=0
        The token id of padding.
    pad_to_set : bool, default=False
        ``token_pooling="none"``: :meth:`collate` cuts a batch to the length the extractor gives
        it (the longest text of the stimulus set, from :meth:`n_tokens`).
    """

    def __init__(self, tokenizer, arch, pad_id=0, pad_to_set=False):
        self.tokenizer = tokenizer
        self.context_length = int(getattr(tokenizer, "context_length", 77))
        self.pad_id = int(pad_id)
        self.info = {"kind": "open_clip.get_tokenizer", "model": arch,
                     "tokenizer": type(tokenizer).__name__, "context_length": self.context_length,
                     "input_shape": [self.context_length]}
        if pad_to_set:
            self.info.update(padding="longest of the stimulus set", pad_id=self.pad_id)

    def batch(self, texts):
        """Token ids ``(n, context_length)`` of a list of strings."""
        texts = [str(t) for t in texts]
        return self.tokenizer(texts)

    def n_tokens(self, texts):
        """Each text's number of tokens: one past its last non-padding token (start- and
        end-of-text included; OpenCLIP truncates to ``context_length``)."""
        import torch

        if not texts:
            return []
        real = self.batch(texts) != self.pad_id
        positions = torch.arange(1, real.shape[1] + 1).expand_as(real)
        return torch.where(real, positions, 0).amax(1).tolist()

    def collate(self, items, length=None):
        """Stack token ids into a batch; with ``length``, keep the first ``length`` positions
        (the rest must be padding: the :class:`CLIPTower` pads them back)."""
        import torch

        batch = torch.stack([torch.as_tensor(item) for item in items])
        if length is None or length >= batch.shape[1]:
            return batch
        if (batch[:, length:] != self.pad_id).any():
            raise ValueError(
                f"a text of more than {length} tokens in a batch cut to {length} tokens (the "
                "longest text of the stimulus set)"
            )
        return batch[:, :length]

    def __call__(self, text):
        if not isinstance(text, str):
            raise ModelError(
                f"the OpenCLIP text tower takes strings (captions), got {type(text).__name__}; "
                "for images use the image tower ('?tower=image', the default)"
            )
        return self.batch([text])[0]


def _tokenizer(arch):
    open_clip = _import_open_clip()
    try:
        with offline():
            return open_clip.get_tokenizer(arch)
    except Exception as exc:  # noqa: BLE001 - HF tokenizer files missing offline
        raise WeightsUnavailableError(
            f"the tokenizer of OpenCLIP model {arch!r} is not in the local Hugging Face hub cache "
            f"{hub_cache_dir()!r} ({type(exc).__name__}: {exc}); on a machine with internet run "
            f"python -c \"import open_clip; open_clip.get_tokenizer('{arch}')\" and copy the new "
            "folder of its hub cache there"
        ) from exc


def _aliases(tower_module, tower):
    names = {n for n, _ in tower_module.named_modules()}
    prefix = "visual." if tower == "image" else ("text." if "text" in names else "")
    aliases = {}
    embed = ["ln_pre", "patch_dropout"] if tower == "image" else ["token_embedding"]
    found = next((prefix + e for e in embed if prefix + e in names), None)
    if found:
        aliases["embed"] = found
    blocks = prefix + "transformer.resblocks"
    i = 0
    while f"{blocks}.{i}" in names:
        aliases[f"block{i}"] = f"{blocks}.{i}"
        i += 1
    norm = prefix + ("ln_post" if tower == "image" else "ln_final")
    if norm in names:
        aliases["norm"] = norm
    aliases["head"] = "embedding"
    return aliases


def _pad_id(clip, tokenizer):
    """The padding token id: the custom text tower's ``pad_id``, else the tokenizer's (a Hugging
    Face tokenizer inside OpenCLIP's), else 0 (OpenCLIP's default tokenizer)."""
    text = getattr(clip, "text", None)
    if isinstance(getattr(text, "pad_id", None), int):
        return int(text.pad_id)
    pad = getattr(getattr(tokenizer, "tokenizer", None), "pad_token_id", None)
    return int(pad) if isinstance(pad, int) else 0


def _text_token_layers(module, aliases):
    """Module names of the text tower's ``(B, T, C)`` outputs: token embedding, residual blocks,
    the final norm; none for a tower whose blocks are not batch first or that appends a class
    token (CoCa: its blocks have one token more than the ids, its norm sees the pooled token)."""
    text = getattr(module, "text", module)
    transformer = getattr(text, "transformer", None)
    if transformer is None or not getattr(transformer, "batch_first", True):
        return []
    if getattr(text, "cls_emb", None) is not None:
        return []
    return [v for k, v in aliases.items() if k != "head"]


def _tower_spec(clip, tower, arch, tag, weights_id, pooling):
    tokenizer = None if tower == "image" else _tokenizer(arch)
    pad_id = 0 if tokenizer is None else _pad_id(clip, tokenizer)
    module = CLIPTower(clip, tower, pad_id=pad_id).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    aliases = _aliases(module, tower)
    label = f"open_clip:{arch}" + (f"/{tag}" if tag else "")
    collate = None
    if tower == "image":
        preprocess = CLIPImagePreprocess(clip.visual.preprocess_cfg)
        visual = clip.visual
        token_layers = []
        if getattr(visual, "transformer", None) is not None:  # a ViT: (B, T, C) token layers
            token_layers = [v for k, v in aliases.items() if k not in ("head", "norm")]
            if "norm" in aliases and not getattr(visual, "final_ln_after_pool", False):
                token_layers.append(aliases["norm"])
        if pooling != "none" and not token_layers:
            raise ModelError(
                f"token_pooling={pooling!r} for OpenCLIP model {arch!r}, whose image tower has "
                "no token layers (not a vision transformer); use token_pooling='none'"
            )
        if token_layers:  # "none": every token, channel first (as timm / hf)
            prefix = 1 if getattr(visual, "class_embedding", None) is not None else 0
            taps = add_token_taps(module, token_layers, pooling, prefix)
            aliases = {k: taps.get(v, v) for k, v in aliases.items()}
        info = dict(preprocess.info, token_pooling=pooling)
        name = label + (f"?token_pooling={pooling}" if pooling != "none" else "")
        modality = "image"
    else:
        token_layers = _text_token_layers(module, aliases)
        if pooling != "none" and not token_layers:
            raise ModelError(
                f"token_pooling={pooling!r} for the text tower of OpenCLIP model {arch!r}, whose "
                "blocks give no (batch, token, channel) outputs with one position per token id "
                "(a CoCa-style class token, or not batch first); use token_pooling='none' and "
                "read its 'embedding' layer (OpenCLIP's end-of-text pooling)"
            )
        preprocess = CLIPTextPreprocess(tokenizer, arch, pad_id, pad_to_set=bool(token_layers)
                                        and pooling == "none")
        if token_layers:  # the attention mask is ids != pad_id; "cls": the start-of-text token
            taps = add_token_taps(module, token_layers, pooling, 1)
            tap_modules = dict(module.named_modules())
            module.taps = [tap_modules[t] for t in taps.values()]
            aliases = {k: taps.get(v, v) for k, v in aliases.items()}
            collate = preprocess.collate
        info = dict(preprocess.info, token_pooling=pooling if token_layers else None)
        name = label + "?tower=text" + (f"&token_pooling={pooling}" if pooling != "none" else "")
        modality = "text"
    return ModelSpec(module=module, preprocess=preprocess, modality=modality, name=name,
                     weights_id=weights_id, aliases=aliases, collate=collate,
                     preprocess_info=info)


def build_open_clip_towers(text, weights="DEFAULT", random_state=None, token_pooling="none"):
    """``(image_spec, text_spec)``: both towers of one OpenCLIP model (same weights, one build).

    Parameters
    ----------
    text : str
        ``"<architecture>/<tag>"`` (the name without ``"open_clip:"`` and without options).
    weights, random_state
        As in :func:`neuroprobe.models.build_model`.
    token_pooling : str
        Token pooling of the image tower's token layers.

    Returns
    -------
    tuple of ModelSpec
    """
    arch, tag, _, _ = parse_name(text.partition("?")[0])
    clip, weights_id = _create(arch, tag, weights, random_state)
    clip.eval()
    return (_tower_spec(clip, "image", arch, tag, weights_id, token_pooling),
            _tower_spec(clip, "text", arch, tag, weights_id, "none"))


def build_open_clip(text, weights="DEFAULT", random_state=None):
    """The :class:`ModelSpec` of ``"open_clip:<text>"`` (see the module docstring)."""
    arch, tag, tower, pooling = parse_name(text)
    clip, weights_id = _create(arch, tag, weights, random_state)
    clip.eval()
    return _tower_spec(clip, tower, arch, tag, weights_id, pooling)


register_source("open_clip", build_open_clip)
