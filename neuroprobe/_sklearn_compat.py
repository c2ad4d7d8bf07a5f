"""The one place where neuroprobe reaches into scikit-learn's private API.

scikit-learn has no public equivalent of these helpers; every other module imports them from here,
so a scikit-learn release that moves or renames one needs a fix in this file only. Where a public
path exists (``sklearn.utils.metaestimators.available_if``, ``sklearn.utils.validation.
validate_data``) the modules use it directly, or the helper here is built on it.
"""

from __future__ import annotations

from sklearn.utils.validation import validate_data

try:  # scikit-learn >= 1.6 exports it from sklearn.utils; the implementation lives in _indexing
    from sklearn.utils import _safe_indexing
except ImportError:  # pragma: no cover
    from sklearn.utils._indexing import _safe_indexing

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    Options,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import _check_feature_names_in, _num_samples

__all__ = [
    "HasMethods",
    "Hidden",
    "Interval",
    "Options",
    "StrOptions",
    "_fit_context",
    "validate_parameter_constraints",
    "_check_feature_names",
    "_check_feature_names_in",
    "_check_n_features",
    "_num_samples",
    "_safe_indexing",
]


def _check_n_features(estimator, X, reset):
    """Set (``reset=True``) or check ``n_features_in_`` of ``X`` without converting it.

    Built on the public ``validate_data(..., skip_check_array=True)``, which also sets or
    checks ``feature_names_in_``.
    """
    validate_data(estimator, X, reset=reset, skip_check_array=True)


def _check_feature_names(estimator, X, reset):
    """Set (``reset=True``) or check ``feature_names_in_`` of ``X``.

    See :func:`_check_n_features` (the same public call sets or checks both).
    """
    validate_data(estimator, X, reset=reset, skip_check_array=True)
