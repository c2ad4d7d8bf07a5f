"""Cross-validated (crossnobis) RDMs with noise normalisation; public entry points.

:func:`crossnobis_rdm` (also ``compute_rdm(X, "crossnobis", conditions=..., cv_groups=...,
noise=...)``) equals rsatoolbox's ``calc_rdm(..., method="crossnobis", descriptor=...,
cv_descriptor=..., noise=...)``; :func:`precision_from_residuals` equals its
``prec_from_residuals`` without forming a p x p matrix for the shrinkage and diagonal
estimators.
"""

from __future__ import annotations

import numpy as np

from neuroprobe.solvers import crossnobis as _cn
from neuroprobe.solvers.noise import NoisePrecision, precision_from_residuals

__all__ = ["crossnobis_rdm", "precision_from_residuals", "NoisePrecision"]


def _labels(a, n, name):
    if a is None:
        raise ValueError(f"{name} is required for crossnobis distances (one label per row of X)")
    a = np.asarray(a)
    if a.shape != (n,):
        raise ValueError(f"{name} must have one label per row of X ({n}); got shape {a.shape}")
    return a


def crossnobis_rdm(X, conditions, cv_groups, noise=None, *, remove_mean=False,
                   return_labels=False):
    """Crossnobis RDM: leave-one-run-out cross-validated Mahalanobis distances / n_channels.

    Parameters
    ----------
    X : array of shape (n_observations, n_channels)
        Patterns (e.g. GLM betas of every condition in every run).
    conditions : array of shape (n_observations,)
        Condition of each row; the RDM rows are the sorted unique conditions.
    cv_groups : array of shape (n_observations,)
        Run (partition) of each row; at least 2 runs, each with every condition (runs may
        hold different numbers of repetitions: means are over the pooled observations).
    noise : None, array of shape (n_channels,) or (n_channels, n_channels), or NoisePrecision
        Noise precision (1-D: a diagonal precision); default identity.
    remove_mean : bool, default=False
    return_labels : bool, default=False
        Also return the sorted conditions.

    Returns
    -------
    rdm : ndarray of shape (n_conditions * (n_conditions - 1) / 2,)
    labels : ndarray, only with ``return_labels=True``
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_observations, n_channels); got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values")
    conditions = _labels(conditions, X.shape[0], "conditions")
    cv_groups = _labels(cv_groups, X.shape[0], "cv_groups")
    rdm, labels = _cn.crossnobis_rdm(X, conditions, cv_groups, noise, remove_mean)
    if labels.size < 2:
        raise ValueError(f"conditions: an RDM needs at least 2 conditions; got {labels.size}")
    return (rdm, labels) if return_labels else rdm
