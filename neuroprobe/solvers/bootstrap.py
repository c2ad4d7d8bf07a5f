"""Paired bootstrap of scores and multiple-comparison corrections, vectorised.

* :func:`bootstrap_indices` draws ``(n_bootstrap, n_units)`` resampling indices from one seed.
* :func:`bootstrap_means` turns them into the mean of every column for every resample with one
  ``bincount`` (the count of each unit in each resample) and one matrix product: no Python loop
  over the resamples.
* :func:`paired_bootstrap` gives, for every pair of models, the observed mean difference, its
  percentile confidence interval and a two-sided p-value from the bootstrap distribution centred
  on the observed difference (``(#{|d* - d| >= |d|} + 1) / (B + 1)``, Hall & Wilson 1991).
* :func:`holm` and :func:`fdr_bh`: Holm's step-down family-wise correction and the
  Benjamini-Hochberg false discovery rate, as ``statsmodels.stats.multitest.multipletests``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_indices", "bootstrap_means", "paired_bootstrap", "holm", "fdr_bh"]


def bootstrap_indices(n_units, n_bootstrap, seed=None):
    """``(n_bootstrap, n_units)`` int64 indices drawn with replacement (``numpy`` Generator)."""
    if n_units < 2:
        raise ValueError(f"a bootstrap needs at least 2 units; got {n_units}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_units, size=(int(n_bootstrap), int(n_units)), dtype=np.int64)


def bootstrap_means(values, indices):
    """Column means of ``values[indices[b]]`` for every resample ``b``, in one product.

    Parameters
    ----------
    values : array of shape (n_units, n_columns)
    indices : int array of shape (n_bootstrap, n_units)

    Returns
    -------
    ndarray of shape (n_bootstrap, n_columns)
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n_boot, n = indices.shape
    if values.shape[0] != n:
        raise ValueError(f"values has {values.shape[0]} units but indices draw from {n}")
    flat = (indices + (np.arange(n_boot, dtype=np.int64) * n)[:, None]).ravel()
    counts = np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)
    return counts @ values / n


def paired_bootstrap(scores, indices, confidence=0.95):
    """Pairwise differences of model means under a paired bootstrap of the units.

    Parameters
    ----------
    scores : array of shape (n_units, n_models)
        The score of every model on every unit (stimulus, subject, run); the same resample of
        units is applied to every model (paired).
    indices : int array of shape (n_bootstrap, n_units)
    confidence : float, default=0.95

    Returns
    -------
    dict
        ``pairs`` (n_pairs, 2) model indices ``(a, b)`` with ``a < b``; ``difference``,
        ``ci_low``, ``ci_high``, ``pvalue`` (n_pairs,) for ``mean_a - mean_b``; ``boot``
        (n_bootstrap, n_pairs) the bootstrap differences; ``means`` (n_models,).
    """
    scores = np.asarray(scores, dtype=np.float64)
    means = scores.mean(axis=0)
    boot = bootstrap_means(scores, indices)  # (B, n_models)
    a, b = np.triu_indices(scores.shape[1], 1)
    diff = means[a] - means[b]
    boot_diff = boot[:, a] - boot[:, b]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot_diff, [tail, 1.0 - tail], axis=0)
    extreme = np.abs(boot_diff - diff[None, :]) >= np.abs(diff)[None, :]
    pvalue = (extreme.sum(axis=0) + 1.0) / (boot_diff.shape[0] + 1.0)
    return {"pairs": np.c_[a, b], "difference": diff, "ci_low": low, "ci_high": high,
            "pvalue": np.minimum(pvalue, 1.0), "boot": boot_diff, "means": means}


def holm(pvalues):
    """Holm's step-down adjusted p-values (family-wise error), same shape as ``pvalues``.

    ``p_(i) * (m - i + 1)`` for the i-th smallest, made monotone with a running maximum and
    clipped at 1. NaN entries are left out of the family and stay NaN.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    flat, ok = p.ravel(), ~np.isnan(p.ravel())
    q = flat[ok]
    m = q.size
    if m:
        order = np.argsort(q, kind="stable")
        adj = np.maximum.accumulate(q[order] * (m - np.arange(m)))
        res = np.empty(m)
        res[order] = np.minimum(adj, 1.0)
        out.ravel()[np.flatnonzero(ok)] = res
    return out


def fdr_bh(pvalues):
    """Benjamini-Hochberg adjusted p-values (false discovery rate), same shape as ``pvalues``.

    ``min_{j >= i} p_(j) m / j`` for the i-th smallest, clipped at 1. NaN entries are left out.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    flat, ok = p.ravel(), ~np.isnan(p.ravel())
    q = flat[ok]
    m = q.size
    if m:
        order = np.argsort(q, kind="stable")
        scaled = q[order] * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(scaled[::-1])[::-1]
        res = np.empty(m)
        res[order] = np.minimum(adj, 1.0)
        out.ravel()[np.flatnonzero(ok)] = res
    return out
