"""The old home of the inspected units and the model adapter (kept importable).

Units are in :mod:`neuroprobe.inspect.units` (``Target`` is now ``Unit``), the model adapter in
:mod:`neuroprobe.models.resolve` (``resolve_model``, ``InspectedModel``) and the model inputs in
:mod:`neuroprobe.models.inputs` (``load_images``, ``to_display``).
"""

from neuroprobe.exceptions import UnitError
from neuroprobe.inspect.units import (
    METRICS,
    LayerProbe,
    Target,
    Unit,
    check_metric,
    parse_target,
    parse_targets,
    require_differentiable,
    target_values,
    torch_generator,
)
from neuroprobe.models.inputs import load_images, to_display
from neuroprobe.models.resolve import (
    InspectedModel,
    require_image_model,
    resolve_model,
    seed_from,
)

__all__ = [
    "METRICS",
    "InspectedModel",
    "LayerProbe",
    "Target",
    "Unit",
    "UnitError",
    "check_metric",
    "load_images",
    "parse_target",
    "parse_targets",
    "require_differentiable",
    "require_image_model",
    "resolve_model",
    "seed_from",
    "target_values",
    "to_display",
    "torch_generator",
]
