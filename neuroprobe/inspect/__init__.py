"""Looking inside a network: top stimuli, saliency, optimal stimuli, receptive fields, minimal
stimuli and ablation.

A *target* is ``(layer, channel)`` (the channel's activation averaged over space) or
``(layer, channel, row, col)`` (one unit), in any model that
:class:`~neuroprobe.transformers.DNNFeatureExtractor` accepts.
"""

from neuroprobe.inspect.ablation import LesionResult, ablate, lesion_study
from neuroprobe.inspect.minimal_stimulus import MinimalStimulus, minimal_stimulus, parcellate
from neuroprobe.inspect.receptive_field import occlusion_map, occlusion_positions, upsampling_map
from neuroprobe.inspect.saliency import guided_relus, saliency
from neuroprobe.inspect.synthesis import OptimalStimulus, optimal_stimulus, total_variation
from neuroprobe.inspect.targets import Target, UnitError, parse_target, resolve_model
from neuroprobe.inspect.top_stimuli import TopStimuli, top_stimuli

__all__ = [
    "LesionResult",
    "MinimalStimulus",
    "OptimalStimulus",
    "Target",
    "TopStimuli",
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
    "resolve_model",
    "saliency",
    "top_stimuli",
    "total_variation",
    "upsampling_map",
]
