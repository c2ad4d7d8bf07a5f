"""Networks by name or module, their preprocessing, layer names and DNNBrain aliases.

:mod:`neuroprobe.models.registry` builds networks (:class:`ModelSpec`, :func:`build_model`,
:func:`register_model`, :func:`list_layers`); :mod:`neuroprobe.models.layers` looks layers up
(:func:`resolve_layer`); :mod:`neuroprobe.models.hooks` captures their outputs (:func:`capture`);
:mod:`neuroprobe.models.preprocess` and :mod:`neuroprobe.models.weights` hold the preprocessing
transforms and the weight files.
"""

from neuroprobe.exceptions import LayerError, ModelError, WeightsUnavailableError
from neuroprobe.models.hooks import capture
from neuroprobe.models.layers import resolve_layer
from neuroprobe.models.registry import (
    ModelSpec,
    available_models,
    build_model,
    list_layers,
    register_model,
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
