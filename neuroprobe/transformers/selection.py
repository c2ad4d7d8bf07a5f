"""ExplainableVarianceSelector: keep the targets (voxels) whose explainable variance is high enough.

Where it sits in a study
------------------------
The targets of an encoding study are ``y``, not ``X``: a scikit-learn ``Pipeline`` transforms
``X`` only, so this selector is a transformer over the *columns of the target matrix*, applied
outside the encoder's pipeline (or through ``TransformedTargetRegressor``-style code of one's
own). ``fit`` takes the repeated test responses, ``transform`` any ``(n_samples, n_targets)``
response matrix of the same targets::

    selector = ExplainableVarianceSelector(threshold=0.1).fit(Y_repeats)
    encoder.fit(X_train, selector.transform(Y_train))
    scores = encoder.score_targets(X_test, selector.transform(Y_test.mean(0)))
    brain_map = selector.inverse_transform(scores[None])[0]   # NaN outside the selection
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neuroprobe._utils import check_finite
from neuroprobe._validation import Real, fit_context
from neuroprobe.ceilings import check_repeats, explainable_variance

__all__ = ["ExplainableVarianceSelector"]


class ExplainableVarianceSelector(TransformerMixin, BaseEstimator):
    """Select targets by explainable variance (a transformer over the target columns).

    ``fit(Y_repeats)`` computes :func:`neuroprobe.ceilings.explainable_variance` of every target
    from repeated presentations and keeps those with ``ev_ > threshold``; ``transform(Y)``
    returns ``Y[:, support_]``.

    Parameters
    ----------
    threshold : float, default=0.0
        Targets with explainable variance strictly above it are kept (the bias-corrected EV of a
        noise-only target is centred on 0).
    bias_correction : bool, default=True
    do_zscore : bool, default=True

    Attributes
    ----------
    ev_ : ndarray (n_targets,)
        Explainable variance of every target (NaN for constant targets, never selected).
    support_ : ndarray of bool (n_targets,)
    n_features_in_ : int
        Number of targets (columns of the matrices given to ``transform``).
    """

    _parameter_constraints = {
        "threshold": [Real],
        "bias_correction": ["boolean"],
        "do_zscore": ["boolean"],
    }

    def __init__(self, threshold=0.0, bias_correction=True, do_zscore=True):
        self.threshold = threshold
        self.bias_correction = bias_correction
        self.do_zscore = do_zscore

    @fit_context()
    def fit(self, Y_repeats, y=None):
        """Compute the explainable variance of each target.

        Parameters
        ----------
        Y_repeats : array-like (n_repeats, n_samples, n_targets)
        y : ignored

        Returns
        -------
        self
        """
        Y = check_repeats(Y_repeats)
        self.ev_ = explainable_variance(
            Y, bias_correction=self.bias_correction, do_zscore=self.do_zscore
        )
        with np.errstate(invalid="ignore"):
            self.support_ = self.ev_ > self.threshold
        self.n_features_in_ = Y.shape[2]
        return self

    def get_support(self, indices=False):
        """The mask (or indices, with ``indices=True``) of the selected targets."""
        check_is_fitted(self)
        return np.flatnonzero(self.support_) if indices else self.support_.copy()

    def _check_columns(self, Y, n_columns, name):
        Y = np.asarray(Y)
        if Y.ndim != 2 or Y.shape[1] != n_columns:
            raise ValueError(
                f"{name} must have shape (n_samples, {n_columns}), got shape {Y.shape}"
            )
        check_finite(Y, name)
        return Y

    def transform(self, Y):
        """The selected columns of ``Y`` (n_samples, n_targets) -> (n_samples, n_selected)."""
        check_is_fitted(self)
        return self._check_columns(Y, self.n_features_in_, "Y")[:, self.support_]

    def inverse_transform(self, Y):
        """(n_samples, n_selected) -> (n_samples, n_targets), NaN in the unselected columns."""
        check_is_fitted(self)
        Y = self._check_columns(Y, int(self.support_.sum()), "Y")
        out = np.full((Y.shape[0], self.n_features_in_), np.nan,
                      dtype=np.result_type(Y.dtype, np.float32))
        out[:, self.support_] = Y
        return out

    def get_feature_names_out(self, input_features=None):
        """``target<i>`` (or ``input_features``) of the selected targets."""
        check_is_fitted(self)
        if input_features is None:
            input_features = [f"target{i}" for i in range(self.n_features_in_)]
        return np.asarray(input_features, dtype=object)[self.support_]
