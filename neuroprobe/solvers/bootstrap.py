"""Percentile bootstrap intervals of a mean, vectorised: every resample in one matrix product.

A resample of ``n`` samples (subjects or stimuli) is a row of multiplicities ``counts[b, i]``
(how often sample ``i`` is drawn in resample ``b``); the resampled means of every column at once
are ``counts @ values / n`` (BLAS), never a Python loop over resamples or columns.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["bootstrap_indices", "bootstrap_means", "percentile_ci"]


def bootstrap_indices(n_samples, n_boot=1000, random_state=None):
    """Indices of ``n_boot`` resamples with replacement of ``n_samples`` samples.

    Parameters
    ----------
    n_samples : int
    n_boot : int, default=1000
    random_state : int, RandomState or None

    Returns
    -------
    ndarray of int, shape (n_boot, n_samples)
    """
    n_samples, n_boot = int(n_samples), int(n_boot)
    if n_samples < 1 or n_boot < 1:
        raise ValueError(f"bootstrap_indices: n_samples ({n_samples}) and n_boot ({n_boot}) "
                         "must be at least 1")
    rng = check_random_state(random_state)
    return rng.randint(0, n_samples, size=(n_boot, n_samples))


def _counts(indices, n_samples):
    """Multiplicity matrix ``(n_boot, n_samples)`` of resample indices."""
    indices = np.asarray(indices)
    if indices.ndim != 2 or (indices.size and (indices.min() < 0 or indices.max() >= n_samples)):
        raise ValueError(f"indices must be (n_boot, n) integers in [0, {n_samples}); got shape "
                         f"{indices.shape}")
    n_boot, n = indices.shape
    counts = np.zeros((n_boot, n_samples), dtype=np.float64)
    rows = np.repeat(np.arange(n_boot), n)
    np.add.at(counts, (rows, indices.ravel()), 1.0)
    return counts, n


def bootstrap_means(values, indices):
    """Means over the first axis of ``values`` for every resample in ``indices``.

    Parameters
    ----------
    values : array (n_samples, ...)
        E.g. one row per subject, a column per layer (or voxel).
    indices : array of int (n_boot, n)
        From :func:`bootstrap_indices`.

    Returns
    -------
    ndarray (n_boot, ...)
        ``values[indices[b]].mean(axis=0)`` for each ``b``, as one matrix product.
    """
    values = np.asarray(values)
    if values.ndim == 0 or values.shape[0] < 1:
        raise ValueError(f"values must have at least one sample (row); got shape {values.shape}")
    dtype = np.float32 if values.dtype == np.float32 else np.float64
    flat = values.reshape(values.shape[0], -1).astype(dtype, copy=False)
    counts, n = _counts(indices, values.shape[0])
    means = (counts.astype(dtype) @ flat) / dtype(n)
    return means.reshape((counts.shape[0],) + values.shape[1:])


def percentile_ci(values, *, n_boot=1000, ci=0.95, indices=None, random_state=None):
    """Mean over the first axis with its percentile bootstrap interval.

    Parameters
    ----------
    values : array (n_samples, ...)
        Samples (subjects or stimuli) along the first axis; every other axis (layers, voxels) gets
        its own interval from the same resamples.
    n_boot : int, default=1000
        Number of resamples (ignored when ``indices`` is given).
    ci : float, default=0.95
        Coverage of the interval, in (0, 1).
    indices : array of int (n_boot, n_samples), optional
        The resamples (from :func:`bootstrap_indices`); default: drawn from ``random_state``.
    random_state : int, RandomState or None

    Returns
    -------
    mean, lower, upper : ndarray (...)
        The sample mean and the ``(1 - ci) / 2`` and ``(1 + ci) / 2`` quantiles (linear
        interpolation, ``numpy.quantile``'s default) of the resampled means.
    """
    if not 0 < float(ci) < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    values = np.asarray(values)
    if values.dtype != np.float32:
        values = values.astype(float)
    if indices is None:
        indices = bootstrap_indices(values.shape[0] if values.ndim else 0, n_boot, random_state)
    means = bootstrap_means(values, indices)
    tail = (1.0 - float(ci)) / 2.0
    lower, upper = np.quantile(means, [tail, 1.0 - tail], axis=0)
    return values.mean(axis=0), lower, upper
