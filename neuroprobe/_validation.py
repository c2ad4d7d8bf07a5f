"""Parameter validation in one style: scikit-learn's ``_parameter_constraints`` tables.

Every estimator and transformer declares a class-level ``_parameter_constraints`` dict (the
names and wording of :mod:`sklearn.utils._param_validation`) and checks it at the start of
``fit`` through :func:`fit_context` (sklearn's ``_fit_context``) or, where ``fit`` is not the
entry point (``transform`` of a stateless step), through :func:`check_params`. Rules that
involve two parameters at once stay as plain ``if ... raise`` in ``fit``, as in scikit-learn.

Error messages therefore read like scikit-learn's: "The 'alpha' parameter of Ridge must be a
float in the range [0, inf). Got -1 instead." (an ``InvalidParameterError``, a ``ValueError``).

The private scikit-learn names come from :mod:`neuroprobe._sklearn_compat`, the one module that
imports scikit-learn's private API.
"""

from __future__ import annotations

from numbers import Integral, Real

from neuroprobe._sklearn_compat import (
    HasMethods,
    Hidden,
    Interval,
    Options,
    StrOptions,
    _fit_context,
    validate_parameter_constraints,
)

__all__ = [
    "HasMethods",
    "Hidden",
    "Integral",
    "Interval",
    "Options",
    "Real",
    "StrOptions",
    "check_params",
    "fit_context",
]


def fit_context(prefer_skip_nested_validation=True):
    """Decorate ``fit`` so that ``_parameter_constraints`` is checked first (sklearn's
    ``_fit_context``); nested estimators skip their own check when
    ``prefer_skip_nested_validation`` is true."""
    return _fit_context(prefer_skip_nested_validation=prefer_skip_nested_validation)


def check_params(estimator):
    """Check ``estimator``'s parameters against its ``_parameter_constraints`` (outside ``fit``).

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        A ``ValueError`` and ``TypeError``, worded as scikit-learn words it.
    """
    validate_parameter_constraints(
        estimator._parameter_constraints,
        estimator.get_params(deep=False),
        caller_name=type(estimator).__name__,
    )
