"""scikit-learn estimators: encoding models, RSA scoring, permutation inference."""

from neuroprobe._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "VoxelwiseEncoder": ".encoding",
        "PLSEncoder": ".encoding",
        "BandedRidgeEncoder": ".banded",
        "RSAScorer": ".rsa",
        "WeightedRSA": ".rsa_weighted",
        "CKAScorer": ".cka",
        "PermutationTest": ".permutation",
        "TimeResolved": ".temporal",
        "TemporalGeneralization": ".temporal",
        "permutation_test_time_resolved": ".temporal",
        "permutation_test_time_resolved_rsa": ".temporal",
        "TemporalResponseFunction": ".trf",
    },
)
