"""Token pooling for layers with sequence outputs ``(B, T, C)`` (vision transformers, language and
audio models).

A model source (:mod:`~neuroprobe.models.timm_source`, :mod:`~neuroprobe.models.hf_source`,
:mod:`~neuroprobe.models.open_clip_source`) adds
one *tap* module per sequence layer with :func:`add_token_taps`: a forward hook of the layer calls
the tap with the layer's output (the network itself is unchanged), and the tap returns the pooled
tokens, channel first, so :class:`~neuroprobe.transformers.DNNFeatureExtractor` treats them like
any other layer. The short aliases (``block0`` ...) point at the taps; the library's own module
names still give the raw ``(B, T, C)`` output.

``token_pooling``:

* ``"cls"``: the first token (the class token), ``(B, C)``;
* ``"mean"``: the mean over the patch tokens, prefix tokens (class / register / distillation
  tokens) excluded, as timm's ``global_pool="avg"``; ``(B, C)``;
* ``"last"``: the last token, ``(B, C)``;
* ``"none"`` (default): every token, channel first ``(B, C, T)``, so the extractor's
  ``pooling=`` (``"mean"``, ``"max"`` ...) pools over all tokens, prefix tokens included (for
  texts the zeroed padding too: ``token_pooling="mean"`` is the mean over the real tokens).

Images in one batch have the same number of tokens, so no padding mask is involved there (for
vision transformers ``"none"`` is the fixed number of patches, prefix tokens included). Texts are
padded, and the language-model sources (:mod:`hf_source`, the OpenCLIP text tower of
:mod:`open_clip_source`) give each tap the batch's attention mask (:meth:`TokenPool.set_mask`)
and the pooling respects it, so a text's features never depend on the other texts of its batch:

* ``"cls"``: the first non-padding token (``[CLS]`` of BERT, OpenCLIP's start-of-text; with left
  padding too);
* ``"mean"``: the mean over the non-padding tokens (special tokens included, padding never
  counted);
* ``"last"``: the last non-padding token (right or left padding; OpenCLIP's end-of-text token,
  where ``encode_text`` pools);
* ``"none"``: every token, padding positions set to 0. Every text is padded to the **longest
  tokenised text of the stimulus set** (:func:`set_length`, computed over the whole set before
  the first batch runs: :class:`~neuroprobe.transformers.DNNFeatureExtractor` fixes it in ``fit``
  as ``n_tokens_``, and :meth:`~neuroprobe.transformers.DNNFeatureExtractor.extract_to_file`
  over the file's stimuli), so every batch has the same token axis and a text's features and
  mask do not depend on its batch nor on the batch size. The token axis of these layers therefore
  depends on the set (``list_layers`` shows it for a dummy input of ``input_shape`` tokens). The
  mask itself is the layer ``token_mask`` of the model (:class:`TokenMask`; ``(T,)`` per text,
  1 = token, 0 = padding), which ``extract_to_file`` stores as a dataset
  ``<layer>.token_mask`` beside each such layer.

A text preprocessing that pads to its set has ``n_tokens(texts)`` (each text's tokenised length
after truncation, padding excluded) and ``collate(items, length=None)`` (pad a batch to
``length`` tokens instead of to its longest text); :func:`pads_to_set` tells whether a model is one.

The option is given in the model name: ``"timm:vit_tiny_patch16_224?token_pooling=cls"``.
"""

from __future__ import annotations

from torch import nn

from neuroprobe.exceptions import ModelError
from neuroprobe.models.hooks import add_forward_hook, first_tensor

__all__ = [
    "TOKEN_POOLINGS",
    "TokenMask",
    "TokenPool",
    "add_token_taps",
    "mask_layers",
    "pads_to_set",
    "pool_tokens",
    "set_length",
    "split_options",
]

#: Accepted values of ``token_pooling``.
TOKEN_POOLINGS = ("cls", "mean", "last", "none")


def pool_tokens(tokens, how, num_prefix_tokens=1, mask=None):
    """Pool a ``(B, T, C)`` tensor over its tokens (see the module docstring for ``how``).

    Parameters
    ----------
    tokens : torch.Tensor, shape (B, T, C)
    how : {"cls", "mean", "last", "none"}
    num_prefix_tokens : int
        Class / register tokens excluded from ``"mean"`` (without ``mask``).
    mask : torch.Tensor of shape (B, T), optional
        1 for tokens, 0 for padding (an attention mask). With a mask, ``"cls"`` is the first
        token, ``"mean"`` averages the tokens (prefix tokens included), ``"last"`` is the last
        token, ``"none"`` zeroes the padding; padding never enters the result.
    """
    if mask is not None:
        return _pool_masked(tokens, how, mask)
    if how == "cls":
        if num_prefix_tokens < 1:
            raise ModelError("token_pooling='cls' needs a class token; this model has none")
        return tokens[:, 0]
    if how == "mean":
        return tokens[:, num_prefix_tokens:].mean(1)
    if how == "last":
        return tokens[:, -1]
    if how == "none":
        return tokens.transpose(1, 2)
    raise ModelError(f"token_pooling must be one of {TOKEN_POOLINGS}, got {how!r}")


def _pool_masked(tokens, how, mask):
    import torch

    mask = mask.to(tokens.device)
    if mask.shape != tokens.shape[:2]:
        raise ModelError(
            f"attention mask of shape {tuple(mask.shape)} does not match tokens "
            f"{tuple(tokens.shape)}"
        )
    keep = mask > 0
    positions = torch.arange(tokens.shape[1], device=tokens.device).expand_as(keep)
    rows = torch.arange(tokens.shape[0], device=tokens.device)
    if how == "cls":
        first = torch.where(keep, positions, tokens.shape[1]).amin(1).clamp(max=tokens.shape[1] - 1)
        return tokens[rows, first]
    if how == "last":
        last = torch.where(keep, positions, -1).amax(1).clamp(min=0)
        return tokens[rows, last]
    weights = keep.to(tokens.dtype)[..., None]
    # torch.where, not a product: padding rows of some models hold NaN (fully masked attention)
    masked = torch.where(keep[..., None], tokens, torch.zeros((), dtype=tokens.dtype,
                                                              device=tokens.device))
    if how == "mean":
        return masked.sum(1) / weights.sum(1).clamp(min=1)
    if how == "none":
        return masked.transpose(1, 2)
    raise ModelError(f"token_pooling must be one of {TOKEN_POOLINGS}, got {how!r}")


class TokenPool(nn.Module):
    """Tap module: a layer's ``(B, T, C)`` output (or a tuple holding it) -> pooled tokens."""

    def __init__(self, how="none", num_prefix_tokens=1):
        super().__init__()
        self.how = how
        self.num_prefix_tokens = int(num_prefix_tokens)
        self.mask = None
        self.length = None

    def set_mask(self, mask, length=None):
        """The attention mask ``(B, T)`` of the batch about to run (``None`` after it).

        ``length``: ``"none"`` keeps only the first ``length`` tokens (a source that runs its
        network on a fixed context, right padded, and was given a batch of ``length`` tokens:
        OpenCLIP's text tower); the tokens cut are padding."""
        self.mask = mask
        self.length = None if length is None else int(length)

    def forward(self, output):
        pooled = pool_tokens(first_tensor(output), self.how, self.num_prefix_tokens, self.mask)
        if self.how == "none" and self.length is not None:
            pooled = pooled[..., : self.length]
        return pooled

    def extra_repr(self):
        return f"how={self.how!r}, num_prefix_tokens={self.num_prefix_tokens}"


class TokenMask(nn.Module):
    """The layer ``token_mask`` of a language model: the batch's attention mask ``(B, T)`` as
    float (1 = token, 0 = padding); the source calls it with the mask of each batch."""

    def forward(self, mask):
        return mask.float()


def _tap_hook(module, inputs, output):
    tap = module.__dict__.get("_neuroprobe_token_tap")
    if tap is not None:
        tap(output)


def add_token_taps(module, names, how, num_prefix_tokens=1):
    """Add a :class:`TokenPool` tap ``token_taps.<name with _>`` for each module name in ``names``.

    Returns ``{name: "token_taps.<name>"}``. The tap is kept in the layer's ``__dict__`` (not as a
    sub-module), so :func:`copy.deepcopy` of the network keeps each copy's hooks on its own taps;
    the taps come first in ``named_modules()``, so the extractor's default (last) layer stays the
    head.
    """
    if how not in TOKEN_POOLINGS:
        raise ModelError(f"token_pooling must be one of {TOKEN_POOLINGS}, got {how!r}")
    taps = nn.ModuleDict()
    modules = dict(module.named_modules())
    result = {}
    for name in names:
        key = name.replace(".", "_")
        taps[key] = TokenPool(how, num_prefix_tokens)
        modules[name].__dict__["_neuroprobe_token_tap"] = taps[key]
        add_forward_hook(modules[name], _tap_hook)
        result[name] = f"token_taps.{key}"
    module._modules = {"token_taps": taps, **module._modules}
    return result


def mask_layers(spec, layers, modules):
    """``{"<layer>.token_mask": "token_mask"}`` for each ``token_pooling="none"`` tap among
    ``layers`` (their module names ``modules``) of a model with a ``token_mask`` layer (texts
    padded to a common length): the masks an ``.act.h5`` file stores beside those layers."""
    names = set(spec.layer_names())
    if "token_mask" not in names or (spec.preprocess_info or {}).get("token_pooling") != "none":
        return {}
    return {
        f"{layer}.token_mask": "token_mask"
        for layer, module in zip(layers, modules)
        if module.startswith("token_taps.")
    }


def pads_to_set(spec):
    """Whether ``spec`` (a :class:`~neuroprobe.models.ModelSpec`) pads texts to the longest text
    of the stimulus set: a text model with ``token_pooling="none"`` whose preprocessing has
    ``n_tokens``."""
    info = spec.preprocess_info or {}
    return (spec.modality == "text" and info.get("token_pooling") == "none"
            and callable(getattr(spec.preprocess, "n_tokens", None)))


def set_length(spec, texts):
    """The token axis of ``token_pooling="none"`` for a set of texts: the longest tokenised
    length (after truncation to the model's maximum) over ``texts``, at least 1.

    Parameters
    ----------
    spec : ModelSpec
        A model for which :func:`pads_to_set` holds.
    texts : sequence of str
        Every text of the stimulus set.

    Returns
    -------
    lengths : numpy.ndarray of int
        Each text's number of tokens.
    length : int
        ``max(lengths)`` (1 for an empty set).
    """
    import numpy as np

    lengths = np.asarray(spec.preprocess.n_tokens([str(t) for t in texts]), dtype=np.int64)
    return lengths, max(int(lengths.max()) if lengths.size else 1, 1)


def split_options(text, source):
    """``"name?token_pooling=cls"`` -> ``("name", {"token_pooling": "cls"})``.

    Only ``token_pooling`` is accepted (default ``"none"``); anything else raises
    :class:`ModelError` naming the model and the accepted options.
    """
    name, _, query = text.partition("?")
    options = {"token_pooling": "none"}
    for item in filter(None, query.split("&")):
        key, sep, value = item.partition("=")
        if key != "token_pooling" or not sep:
            raise ModelError(
                f"unknown option {item!r} in model {source}:{text!r}; expected "
                f"'?token_pooling=' one of {', '.join(TOKEN_POOLINGS)}"
            )
        if value not in TOKEN_POOLINGS:
            raise ModelError(
                f"token_pooling={value!r} in model {source}:{text!r}; expected one of "
                f"{', '.join(TOKEN_POOLINGS)}"
            )
        options[key] = value
    if not name:
        raise ModelError(f"model {source}:{text!r} names no model after '{source}:'")
    return name, options
