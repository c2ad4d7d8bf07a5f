"""Networks by name or module, their preprocessing, layer names and DNNBrain aliases.

See :mod:`neuroprobe.models.registry` for the interface (:class:`ModelSpec`, :func:`build_model`,
:func:`register_model`, :func:`list_layers`, :func:`resolve_layer`) and
:mod:`neuroprobe.models.hooks` for :func:`capture`.
"""

from neuroprobe.models.hooks import capture
from neuroprobe.models.registry import (
    LayerError,
    ModelError,
    ModelSpec,
    WeightsUnavailableError,
    available_models,
    build_model,
    list_layers,
    register_model,
    resolve_layer,
)

__all__ = [
    "LayerError",
    "ModelError",
    "ModelSpec",
    "WeightsUnavailableError",
    "available_models",
    "build_model",
    "capture",
    "list_layers",
    "register_model",
    "resolve_layer",
]
