"""scikit-learn transformers: feature extraction, reduction, brain data, HRF convolution."""

from neuroprobe._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "DNNFeatureExtractor": ".extraction",
        "ActivationReader": ".extraction",
        "PCAReducer": ".reduction",
        "BrainMasker": ".brain",
        "HRFConvolver": ".hrf",
    },
)
