"""scikit-learn transformers: feature extraction, reduction, brain data, HRF convolution."""

from neuroprobe._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "DNNFeatureExtractor": ".extraction",
        "ActivationReader": ".extraction",
        "extract_to_file_sharded": ".sharded",
        "extract_time_series": ".timeseries",
        "FeatureTimeSeries": ".timeseries",
        "PCAReducer": ".reduction",
        "BrainMasker": ".brain",
        "HRFConvolver": ".hrf",
        "ExplainableVarianceSelector": ".selection",
        "TimeResampler": ".resample",
        "Delayer": ".delays",
        "RunScaler": ".runs",
        "WordFeatureExtractor": ".words",
        "CLIPEmbedder": ".multimodal",
    },
)
