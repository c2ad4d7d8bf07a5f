"""Bootstrap resampling, vectorised: every resample in one matrix product.

A resample of ``n`` samples (subjects, stimuli, runs) is a row of multiplicities ``counts[b, i]``
(how often sample ``i`` is drawn in resample ``b``); the resampled means of every column at once
are ``counts @ values / n`` (BLAS), never a Python loop over resamples or columns.

* :func:`bootstrap_indices`, :func:`bootstrap_means`: the resamples and their means;
* :func:`percentile_ci`, :func:`bootstrap_rdm_similarity`: the CIs of the figures (layer
  profiles, RSA over stimuli);
* :func:`paired_bootstrap`: pairwise model differences with percentile CIs and a two-sided
  p-value from the bootstrap distribution centred on the observed difference
  (``(#{|d* - d| >= |d|} + 1) / (B + 1)``, Hall & Wilson 1991);
* :func:`holm`, :func:`fdr_bh`: Holm's step-down family-wise correction and the
  Benjamini-Hochberg false discovery rate, as ``statsmodels.stats.multitest.multipletests``.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from neuroprobe._utils import memory_budget

__all__ = ["bootstrap_indices", "bootstrap_means", "percentile_ci", "bootstrap_rdm_similarity",
           "paired_bootstrap", "holm", "fdr_bh"]


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


def _condensed(rdm, n=None):
    rdm = np.asarray(rdm, dtype=np.float64)
    if rdm.ndim == 2 and rdm.shape[0] == rdm.shape[1]:
        rdm = rdm[np.triu_indices(len(rdm), 1)]
    if rdm.ndim != 1:
        raise ValueError(f"an RDM must be condensed (pdist order) or square; got shape "
                         f"{rdm.shape}")
    return rdm


def bootstrap_rdm_similarity(model_rdms, target_rdm, indices, *, method="pearson"):
    """RDM similarity of each model to a target over bootstrap resamples of the stimuli.

    A resample draws stimuli with replacement; its RDMs are the rows and columns of the drawn
    stimuli, and the pairs of a stimulus with its own copies are left out (rsatoolbox's rule).
    Each unordered pair of distinct stimuli ``{u, v}`` then appears ``c_u * c_v`` times
    (``c``: how often each stimulus is drawn), so every resample's similarity is a weighted
    correlation over the original pairs: sums ``W @ x`` for all resamples and models at once,
    batched over resamples within the memory budget.

    Parameters
    ----------
    model_rdms : array (n_models, n_pairs) or (n_models, n, n)
        Condensed (pdist order) or square RDMs of the same ``n`` stimuli, one per model / layer.
    target_rdm : array (n_pairs,) or (n, n)
    indices : array of int (n_boot, n)
        Stimulus resamples (:func:`bootstrap_indices`).
    method : {"pearson", "cosine"}
        Pearson correlation or cosine similarity of the dissimilarities.

    Returns
    -------
    ndarray (n_boot, n_models)
        NaN for a resample with fewer than two distinct stimuli.
    """
    if method not in ("pearson", "cosine"):
        raise ValueError(f"method must be 'pearson' or 'cosine', got {method!r}")
    y = _condensed(target_rdm)
    models = np.asarray(model_rdms, dtype=np.float64)
    if models.ndim == 3:
        models = np.stack([_condensed(m) for m in models])
    if models.ndim != 2 or models.shape[1] != y.shape[0]:
        raise ValueError(f"model_rdms must be (n_models, {y.shape[0]}) condensed or "
                         f"(n_models, n, n) square RDMs of the target's stimuli; got shape "
                         f"{np.shape(model_rdms)}")
    n = int(round((1 + np.sqrt(1 + 8 * y.shape[0])) / 2))
    if n * (n - 1) // 2 != y.shape[0]:
        raise ValueError(f"target_rdm has {y.shape[0]} entries: not n (n - 1) / 2 for any n")
    counts, _ = _counts(indices, n)
    iu, ju = np.triu_indices(n, 1)
    X = models.T  # (n_pairs, n_models)
    if method == "pearson":  # centring first keeps the moment sums well conditioned
        X = X - X.mean(axis=0)
        y = y - y.mean()
    X2, Xy, y2 = X * X, X * y[:, None], y * y
    out = np.empty((counts.shape[0], models.shape[0]))
    step = max(1, int(memory_budget() // max(1, 8 * 2 * len(y))))
    for start in range(0, counts.shape[0], step):
        c = counts[start:start + step]
        W = c[:, iu] * c[:, ju]  # (batch, n_pairs): how often each pair is drawn
        sw, sy, syy = W.sum(axis=1), W @ y, W @ y2
        sx, sxx, sxy = W @ X, W @ X2, W @ Xy
        with np.errstate(invalid="ignore", divide="ignore"):
            if method == "pearson":
                mean_y = (sy / sw)[:, None]
                cov = sxy - sx * mean_y
                var_x = sxx - sx * sx / sw[:, None]
                var_y = (syy - sy * sy / sw)[:, None]
            else:
                cov, var_x, var_y = sxy, sxx, syy[:, None]
            r = cov / np.sqrt(np.clip(var_x, 0, None) * np.clip(var_y, 0, None))
        r[sw < 1] = np.nan
        out[start:start + step] = r
    return out


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
