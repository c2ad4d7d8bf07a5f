"""Comparing layers and models: paired bootstrap of scores, FWE across layers x voxels.

* :func:`compare_scores`: every pair of models (layers, networks, encoding vs decoding), the
  mean difference of their scores over the same units (stimuli, subjects or runs), a paired
  bootstrap confidence interval and p-value, corrected over the pairs (Holm and
  Benjamini-Hochberg). Vectorised over the bootstrap samples
  (:mod:`neuroprobe.solvers.bootstrap`).
* :func:`heldout_scores`: one held-out score per stimulus from cross-validated predictions (the
  units of a paired comparison of encoding and decoding models on the same stimuli).
* :func:`permutation_test_layers`: :class:`~neuroprobe.estimators.PermutationTest` over a dict
  of feature sets; every layer meets the same permutations, so the maximum over layers and
  voxels of each permutation gives family-wise p-values across layers x voxels; with a per-layer
  summary table (mean score in a region, significant voxel count).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone, is_classifier

from neuroprobe.solvers.bootstrap import bootstrap_indices, fdr_bh, holm, paired_bootstrap
from neuroprobe.solvers.permutation import fwe_pvalues, pvalues

__all__ = ["compare_scores", "heldout_scores", "permutation_test_layers", "LayerTest"]

UNITS = ("stimuli", "subjects", "runs")


def _unit_scores(values, groups, name):
    """(n_rows,) scores of one model: mean over targets, then over the rows of each group."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            values = np.nanmean(values, axis=1)
    elif values.ndim != 1:
        raise ValueError(f"scores of {name!r} must be 1-D (one per unit) or 2-D (units x "
                         f"targets); got shape {values.shape}")
    if groups is None:
        return values
    groups = np.asarray(groups)
    if groups.shape != values.shape:
        raise ValueError(f"groups must have one label per row of the scores ({values.size}); got "
                         f"{groups.shape}")
    labels, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=np.nan_to_num(values), minlength=labels.size)
    counts = np.bincount(inverse, weights=~np.isnan(values), minlength=labels.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def compare_scores(scores_by_model, unit="stimuli", *, groups=None, n_bootstrap=10_000,
                   confidence=0.95, random_state=None):
    """Pairwise paired-bootstrap comparison of models' scores, with corrected p-values.

    Parameters
    ----------
    scores_by_model : dict
        ``name -> scores`` on the same units, in the same order: an array (n_units,) (e.g.
        per-stimulus held-out scores from :func:`heldout_scores`, one score per subject, per run)
        or (n_units, n_targets) (averaged over targets first, NaN-aware: a region's mean).
    unit : {"stimuli", "subjects", "runs"}, default="stimuli"
        What the rows (or the ``groups``) are: the units resampled with replacement.
    groups : array-like of shape (n_rows,), optional
        Labels of the rows when they are finer than the units (stimuli within runs, with
        ``unit="runs"``): rows are averaged within each label first (a cluster bootstrap).
    n_bootstrap : int, default=10000
    confidence : float, default=0.95
        Level of the percentile intervals.
    random_state : int, Generator or None
        Seed of the resamples (the same resamples for every pair: paired and consistent).

    Returns
    -------
    pandas.DataFrame
        One row per pair ``(model_a, model_b)`` (in the order of the dict, ``a`` first):
        ``mean_a``, ``mean_b``, ``difference`` (``mean_a - mean_b``), ``ci_low``, ``ci_high``,
        ``pvalue`` (two-sided, bootstrap distribution centred on the difference),
        ``pvalue_holm``, ``pvalue_fdr_bh`` (corrected over the pairs), ``unit``, ``n_units``,
        ``n_bootstrap``. Units with a NaN score in any model are dropped (paired);
        ``.attrs["boot"]`` holds the (n_bootstrap, n_pairs) bootstrap differences.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroprobe.comparison import compare_scores
    >>> rng = np.random.default_rng(0)
    >>> base = rng.standard_normal(92)
    >>> table = compare_scores({"conv3": base + 0.3, "conv5": base}, n_bootstrap=2000,
    ...                        random_state=0)
    >>> bool(table["ci_low"].iloc[0] > 0)
    True
    """
    import pandas as pd

    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}; got {unit!r}")
    if not isinstance(scores_by_model, dict) or len(scores_by_model) < 2:
        raise ValueError("scores_by_model must be a dict of at least two models' scores")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence!r}")
    names = list(scores_by_model)
    cols = [_unit_scores(scores_by_model[n], groups, n) for n in names]
    sizes = {c.size for c in cols}
    if len(sizes) != 1:
        raise ValueError(f"every model must be scored on the same {unit}: got "
                         f"{dict(zip(names, [c.size for c in cols]))} units")
    S = np.column_stack(cols)
    S = S[~np.isnan(S).any(axis=1)]
    indices = bootstrap_indices(S.shape[0], n_bootstrap, random_state)
    res = paired_bootstrap(S, indices, confidence)
    a, b = res["pairs"].T
    table = pd.DataFrame({
        "model_a": [names[i] for i in a], "model_b": [names[i] for i in b],
        "mean_a": res["means"][a], "mean_b": res["means"][b],
        "difference": res["difference"], "ci_low": res["ci_low"], "ci_high": res["ci_high"],
        "pvalue": res["pvalue"], "pvalue_holm": holm(res["pvalue"]),
        "pvalue_fdr_bh": fdr_bh(res["pvalue"]),
        "unit": unit, "n_units": S.shape[0], "n_bootstrap": int(n_bootstrap),
    })
    table.attrs["boot"] = res["boot"]
    return table


# --------------------------------------------------------------------------- per-stimulus scores
def _per_sample(y, pred, metric):
    if metric == "accuracy":
        return (np.asarray(y) == np.asarray(pred)).astype(np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    pred = np.asarray(pred, dtype=np.float64).reshape(y.shape)
    if metric == "neg_squared_error":
        return -np.mean((y - pred) ** 2, axis=1)
    if metric == "correlation":  # across targets: the pattern correlation of each stimulus
        if y.shape[1] < 2:
            raise ValueError("metric='correlation' correlates each stimulus's pattern over the "
                             "targets: it needs at least 2 targets (use 'neg_squared_error')")
        yc = y - y.mean(axis=1, keepdims=True)
        pc = pred - pred.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (yc * pc).sum(1) / np.sqrt((yc * yc).sum(1) * (pc * pc).sum(1))
    raise ValueError(f"metric must be 'correlation', 'neg_squared_error' or 'accuracy'; got "
                     f"{metric!r}")


def heldout_scores(estimator, X, y, *, cv=5, groups=None, metric=None, random_state=None):
    """One held-out score per stimulus, from cross-validated predictions.

    Every stimulus is predicted by the model fitted on the folds that do not contain it; its
    score compares that prediction with its true value(s). Scores of two models on the same
    stimuli (encoding from two layers; a decoder and an encoder) are paired units for
    :func:`compare_scores`.

    Parameters
    ----------
    estimator : estimator with ``fit`` / ``predict``
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
    cv : int, splitter or iterable, default=5
        Must put every sample in exactly one test fold (KFold, GroupKFold, LeaveOneGroupOut).
        An int: :func:`neuroprobe.model_selection.default_cv` seeded by ``random_state``.
    groups : array-like, optional
        Runs for the splitter; also passed to ``fit`` of estimators that take ``groups``.
    metric : {"correlation", "neg_squared_error", "accuracy"}, optional
        ``"correlation"``: of each stimulus's predicted and measured pattern over the targets
        (encoding); ``"neg_squared_error"``: minus the mean squared error over the targets;
        ``"accuracy"``: 1 for a correct class, else 0 (decoding). Default: accuracy for a
        classifier, correlation for several targets, neg_squared_error for one.
    random_state : int, optional

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    from sklearn.model_selection import check_cv

    from neuroprobe._cv import default_cv
    from neuroprobe.partition import _accepts_groups

    X = np.asarray(X)
    y = np.asarray(y)
    classifier = is_classifier(estimator)
    if metric is None:
        metric = "accuracy" if classifier else ("correlation" if y.ndim == 2 and y.shape[1] > 1
                                                else "neg_squared_error")
    splitter = check_cv(default_cv(cv, y if classifier else None, groups, random_state,
                                   classifier=classifier), y, classifier=classifier)
    pred = None
    seen = np.zeros(len(y), dtype=int)
    for train, test in splitter.split(X, y if classifier else None, groups):
        est = clone(estimator)
        kw = {"groups": np.asarray(groups)[train]} if groups is not None and \
            _accepts_groups(est) else {}
        p = np.asarray(est.fit(X[train], y[train], **kw).predict(X[test]))
        if pred is None:
            pred = np.empty((len(y),) + p.shape[1:], dtype=p.dtype)
        pred[test] = p
        seen[test] += 1
    if not np.all(seen == 1):
        raise ValueError("cv must put every sample in exactly one test fold (a partition such "
                         "as KFold, GroupKFold or LeaveOneGroupOut)")
    return _per_sample(y, pred, metric)


# --------------------------------------------------------------------------- layers x voxels
@dataclass
class LayerTest:
    """Result of :func:`permutation_test_layers`.

    Attributes
    ----------
    layers : list of str
    score : ndarray of shape (n_layers, n_targets)
        The observed statistic of every layer and target.
    pvalue : ndarray of shape (n_layers, n_targets)
        Uncorrected permutation p-values.
    pvalue_fwe : ndarray of shape (n_layers, n_targets)
        Family-wise p-values over layers x targets (max statistic over both in each
        permutation).
    pvalue_fwe_voxels : ndarray of shape (n_layers, n_targets)
        Family-wise over the targets of each layer only (as one PermutationTest per layer).
    null : ndarray of shape (n_permutations, n_layers, n_targets)
    summary : pandas.DataFrame
        Per layer: ``mean_score`` (in ``region``), ``max_score``, ``n_significant``
        (``pvalue_fwe <= alpha`` in the region), ``n_targets``.
    """

    layers: list
    score: np.ndarray
    pvalue: np.ndarray
    pvalue_fwe: np.ndarray
    pvalue_fwe_voxels: np.ndarray
    null: np.ndarray
    summary: object


def permutation_test_layers(estimator, features, y, *, groups=None, n_permutations=1000,
                            scheme=None, block_size=None, cv=None, random_state=None,
                            n_jobs=None, alpha=0.05, region=None, layers=None):
    """Permutation test of every layer's map, family-wise across layers x voxels.

    Parameters
    ----------
    estimator : estimator
        E.g. :class:`~neuroprobe.estimators.VoxelwiseEncoder` (its fast path: each layer's fold
        decompositions are reused for every permutation); any estimator refit otherwise.
    features : dict, .act.h5 path, DataFrame or DNNFeatureExtractor
        The feature sets (see :func:`neuroprobe.model_selection.layer_features`).
    y : array-like of shape (n_samples, n_targets)
    groups, n_permutations, scheme, block_size, cv, random_state, n_jobs
        As :class:`~neuroprobe.estimators.PermutationTest` (``scheme="circular"`` for time
        series). The same permutations of ``y`` meet every layer.
    alpha : float, default=0.05
        Threshold of the summary's significant counts.
    region : array-like of bool or int, optional
        Targets of the region summarised (default: all).
    layers : list of str, optional
        Subset / order of layers.

    Returns
    -------
    LayerTest
    """
    import pandas as pd

    from neuroprobe.estimators.permutation import PermutationTest
    from neuroprobe.model_selection import layer_features

    feats = layer_features(features, layers=layers)
    names = list(feats)
    n_rows = np.shape(y)[0]
    for name, X in feats.items():
        if X.shape[0] != n_rows:
            raise ValueError(f"layer {name!r} has {X.shape[0]} stimuli but y has {n_rows}")
    test = PermutationTest(estimator, n_permutations=n_permutations, cv=cv, scheme=scheme,
                           block_size=block_size, random_state=random_state, n_jobs=n_jobs)
    (observed, nulls), _ = test._run([feats[n] for n in names], y, groups)
    score = np.vstack([np.ravel(o) for o in observed])
    null = np.stack([n.reshape(n.shape[0], -1) for n in nulls], axis=1)
    n_perm, n_layers, n_targets = null.shape
    flat_null = null.reshape(n_perm, -1)
    p = pvalues(score.ravel(), flat_null).reshape(score.shape)
    p_fwe = fwe_pvalues(score.ravel(), flat_null).reshape(score.shape)
    p_vox = np.vstack([fwe_pvalues(score[i], null[:, i]) for i in range(n_layers)])
    mask = np.ones(n_targets, bool) if region is None else np.zeros(n_targets, bool)
    if region is not None:
        mask[np.asarray(region)] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        summary = pd.DataFrame({
            "mean_score": np.nanmean(score[:, mask], axis=1),
            "max_score": np.nanmax(score[:, mask], axis=1),
            "n_significant": (p_fwe[:, mask] <= alpha).sum(axis=1),
            "n_targets": int(mask.sum()),
        }, index=pd.Index(names, name="layer"))
    return LayerTest(layers=names, score=score, pvalue=p, pvalue_fwe=p_fwe,
                     pvalue_fwe_voxels=p_vox, null=null, summary=summary)
