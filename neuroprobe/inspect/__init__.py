"""Looking inside a network: top stimuli, saliency, optimal stimuli, receptive fields, minimal
stimuli and ablation.

A *unit* (:class:`~neuroprobe.inspect.units.Unit`, the functions' ``target=`` argument) is
``(layer, channel)`` (the channel's map summarised over space) or ``(layer, channel, row, col)``
(one position of the map), in any model that
:class:`~neuroprobe.transformers.DNNFeatureExtractor` accepts.

**Unit value.** Every function (``top_stimuli``, ``saliency``, ``optimal_stimulus``,
``occlusion_map``, ``minimal_stimulus``) and every command (``--metric``) summarises a channel's
map the same way: ``metric="mean"`` (the default: the spatial mean) or ``metric="max"`` (the
spatial max). Single units ``(layer, channel, row, col)`` are not summarised.

**Many units at once.** Give a list of targets (in any layers) and one forward pass serves all of
them: the occluded copies of ``occlusion_map``, the noisy copies of SmoothGrad, the candidate
parcel sets of ``minimal_stimulus`` and the batches of ``upsampling_map`` go through the network
once, stopping after the deepest target layer; results gain a leading target axis (a list of
results for ``minimal_stimulus``). Each target's result equals the one computed alone.
"""

from neuroprobe.inspect.ablation import LesionResult, ablate, lesion_study
from neuroprobe.inspect.minimal_stimulus import MinimalStimulus, minimal_stimulus, parcellate
from neuroprobe.inspect.receptive_field import occlusion_map, occlusion_positions, upsampling_map
from neuroprobe.inspect.saliency import SaliencyMaps, guided_relus, saliency
from neuroprobe.inspect.synthesis import OptimalStimulus, optimal_stimulus, total_variation
from neuroprobe.inspect.top_stimuli import TopStimuli, top_stimuli
from neuroprobe.inspect.units import Target, Unit, UnitError, parse_target, parse_unit
from neuroprobe.models.resolve import resolve_model

__all__ = [
    "LesionResult",
    "MinimalStimulus",
    "OptimalStimulus",
    "SaliencyMaps",
    "Target",
    "TopStimuli",
    "Unit",
    "UnitError",
    "ablate",
    "guided_relus",
    "lesion_study",
    "minimal_stimulus",
    "occlusion_map",
    "occlusion_positions",
    "optimal_stimulus",
    "parcellate",
    "parse_target",
    "parse_unit",
    "resolve_model",
    "saliency",
    "top_stimuli",
    "total_variation",
    "upsampling_map",
]
