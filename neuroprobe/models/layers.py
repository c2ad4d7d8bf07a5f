"""Layer lookup: a layer name (a module name or a DNNBrain-style alias) -> the module name.

:func:`resolve_layer` is the one rule, and :func:`unknown_layer` the one error
(:class:`~neuroprobe.exceptions.LayerError` listing the valid names and the closest match), for
every place that names a layer: extraction, :func:`~neuroprobe.models.hooks.capture`, probing,
inspection. This module imports nothing else from :mod:`neuroprobe.models`, so
:mod:`~neuroprobe.models.hooks` can use it. :func:`~neuroprobe.models.list_layers` (which builds
and runs the network) lives in :mod:`neuroprobe.models.registry`.
"""

from __future__ import annotations

import difflib

from neuroprobe.exceptions import LayerError

__all__ = ["layer_names", "resolve_layer", "unknown_layer"]


def layer_names(module):
    """Module names of ``module.named_modules()``, without the root ``""``."""
    return [name for name, _ in module.named_modules() if name]


def unknown_layer(name, valid, owner):
    """The :class:`LayerError` for layer ``name``, which is not among ``valid``.

    Parameters
    ----------
    name : object
        The layer asked for.
    valid : iterable of str
        The names that would have been accepted (listed in the message, with the closest match).
    owner : str
        What the layers belong to, e.g. ``"model 'alexnet'"`` or ``"the probed features"``.

    Returns
    -------
    LayerError
    """
    valid = [str(v) for v in dict.fromkeys(valid)]
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.0)
    return LayerError(
        f"unknown layer {name!r} for {owner}; closest match: "
        f"{close[0] if close else None!r}. Valid names: {', '.join(valid)}"
    )


def resolve_layer(spec, name):
    """Module name of layer ``name`` (a module name or an alias) of ``spec``.

    Parameters
    ----------
    spec : ModelSpec or torch.nn.Module
        The network (a module has no aliases).
    name : str
        A module name of ``named_modules()`` or an alias of ``spec.aliases``.

    Returns
    -------
    str

    Raises
    ------
    LayerError
        Unknown name; the message lists the valid names and the closest match.
    """
    import torch

    is_module = isinstance(spec, torch.nn.Module)
    module = spec if is_module else spec.module
    aliases = {} if is_module else dict(spec.aliases or {})
    names = layer_names(module)
    if name in aliases:
        return aliases[name]
    if name in set(names):
        return name
    model_name = type(module).__name__ if is_module else spec.name
    raise unknown_layer(name, list(aliases) + names, f"model {model_name!r}")
