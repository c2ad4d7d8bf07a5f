"""Token pooling for layers with sequence outputs ``(B, T, C)`` (vision transformers).

A model source (:mod:`~neuroprobe.models.timm_source`, :mod:`~neuroprobe.models.hf_source`) adds
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
  ``pooling=`` (``"mean"``, ``"max"`` ...) pools over all tokens, prefix tokens included.

Images in one batch have the same number of tokens, so no padding mask is involved here.

The option is given in the model name: ``"timm:vit_tiny_patch16_224?token_pooling=cls"``.
"""

from __future__ import annotations

from torch import nn

from neuroprobe.exceptions import ModelError
from neuroprobe.models.hooks import add_forward_hook, first_tensor

__all__ = ["TOKEN_POOLINGS", "TokenPool", "add_token_taps", "pool_tokens", "split_options"]

#: Accepted values of ``token_pooling``.
TOKEN_POOLINGS = ("cls", "mean", "last", "none")


def pool_tokens(tokens, how, num_prefix_tokens=1):
    """Pool a ``(B, T, C)`` tensor over its tokens (see the module docstring for ``how``)."""
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


class TokenPool(nn.Module):
    """Tap module: a layer's ``(B, T, C)`` output (or a tuple holding it) -> pooled tokens."""

    def __init__(self, how="none", num_prefix_tokens=1):
        super().__init__()
        self.how = how
        self.num_prefix_tokens = int(num_prefix_tokens)

    def forward(self, output):
        return pool_tokens(first_tensor(output), self.how, self.num_prefix_tokens)

    def extra_repr(self):
        return f"how={self.how!r}, num_prefix_tokens={self.num_prefix_tokens}"


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
