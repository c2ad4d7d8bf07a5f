"""Deprecated: moved to :mod:`neuroprobe.model_selection` (``probe_layers``, ``layer_features``)."""

import warnings

from neuroprobe.model_selection import layer_features, probe_layers

__all__ = ["layer_features", "probe_layers"]

warnings.warn(
    "neuroprobe.probing is deprecated and will be removed in the next release; import "
    "probe_layers and layer_features from neuroprobe.model_selection (or neuroprobe)",
    DeprecationWarning,
    stacklevel=2,
)
