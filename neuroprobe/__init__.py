"""neuroprobe: map the representations of deep neural networks onto brains.

Every step is a scikit-learn transformer or estimator; a study is a ``Pipeline``.
Public names are re-exported here and imported lazily (``import neuroprobe`` does not import torch).
"""

from neuroprobe._lazy import attach
from neuroprobe._version import __version__

_EXPORTS = {
    # stimuli
    "StimulusSet": ".stimuli",
    "read_dnnbrain_stim": ".stimuli",
    "as_stimulus_set": ".stimuli",
    # models
    "build_model": ".models",
    "list_layers": ".models",
    # transformers
    "DNNFeatureExtractor": ".transformers.extraction",
    "ActivationReader": ".transformers.extraction",
    "PCAReducer": ".transformers.reduction",
    "BrainMasker": ".transformers.brain",
    "HRFConvolver": ".transformers.hrf",
    "ExplainableVarianceSelector": ".transformers.selection",
    "TimeResampler": ".transformers.resample",
    "Delayer": ".transformers.delays",
    "RunScaler": ".transformers.runs",
    "WordFeatureExtractor": ".transformers.words",
    "read_transcript": ".io.transcript",
    "CLIPEmbedder": ".transformers.multimodal",
    # estimators
    "VoxelwiseEncoder": ".estimators.encoding",
    "PLSEncoder": ".estimators.encoding",
    "BandedRidgeEncoder": ".estimators.banded",
    "RSAScorer": ".estimators.rsa",
    "WeightedRSA": ".estimators.rsa_weighted",
    "PermutationTest": ".estimators.permutation",
    "TimeResolved": ".estimators.temporal",
    "TemporalGeneralization": ".estimators.temporal",
    "TemporalResponseFunction": ".estimators.trf",
    "Searchlight": ".searchlight.estimator",
    "read_epochs": ".io.epochs",
    # functions
    "compute_rdm": ".rsa",
    "compare_rdms": ".rsa",
    "noise_ceiling": ".rsa",
    "bootstrap_rsa": ".rsa_inference",
    "crossval_weighted_rsa": ".rsa_inference",
    "explainable_variance": ".ceilings",
    "correlation_ceiling": ".ceilings",
    "ncsnr": ".ceilings",
    "nsd_noise_ceiling": ".ceilings",
    "normalize_scores": ".ceilings",
    "cross_val_score_targets": ".model_selection",
    "probe_layers": ".model_selection",
    "variance_partitioning": ".partition",
    "compare_scores": ".comparison",
    "heldout_scores": ".comparison",
    "permutation_test_layers": ".comparison",
    "finetune": ".models.finetune",
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
__all__ = [*__all__, "__version__"]
