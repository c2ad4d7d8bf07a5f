"""Cross-validation: per-target scores (the encoding-accuracy map) and layer probing.

:func:`cross_val_score_targets` scores every target on every split; :func:`probe_layers`
decodes stimulus labels or values from each layer of a network (scikit-learn keeps
``cross_validate`` in ``sklearn.model_selection`` too); :func:`default_cv` is the one splitter
rule of every front end.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone, is_classifier
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import (
    check_cv,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import type_of_target

from neuroprobe._cv import DEFAULT_CV_SEED, default_cv, describe_cv  # noqa: F401 (re-exported)
from neuroprobe.exceptions import LayerError

__all__ = ["cross_val_score_targets", "default_cv", "describe_cv", "layer_features",
           "probe_layers"]

def _fold_scores(estimator, X, Y, train, test, groups, lazy):
    """Held-out scores of one split and the zero-variance events of its fit and score.

    Returns ``(scores, events)``; ``events`` lists ``(kind, where, mask, alphas)`` for the
    :class:`~neuroprobe.metrics.ZeroVarianceWarning` s of this split, which
    :func:`cross_val_score_targets` summarises once per call instead of once per split.
    """
    from neuroprobe.estimators.encoding import TargetRows
    from neuroprobe.metrics import PER_TARGET, ZeroVarianceWarning

    est = clone(estimator)
    fit_kw = {}
    if groups is not None and _accepts_groups(est):
        fit_kw["groups"] = np.asarray(groups)[train]
    if lazy:
        y_train, y_test = TargetRows(Y, train), TargetRows(Y, test)
    else:
        y_train, y_test = Y[train], Y[test]
    events = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ZeroVarianceWarning)
        est.fit(X[train], y_train, **fit_kw)
        if hasattr(est, "_score_targets"):
            scores, const_y, const_pred = est._score_targets(X[test], y_test, warn=False)
            alphas = getattr(est, "best_alphas_", None)
            alphas = None if alphas is None else np.reshape(alphas, -1)[const_pred]
            events += [("targets", "held-out", const_y, None),
                       ("predictions", "held-out", const_pred, alphas)]
        elif hasattr(est, "score_targets"):
            scores = est.score_targets(X[test], y_test)
        else:
            metric = PER_TARGET[getattr(est, "scoring", None) or "correlation"]
            scores = metric(np.asarray(y_test), est.predict(X[test]))
            events.append(("targets", "held-out", np.isnan(np.atleast_1d(scores)), None))
    for w in caught:
        if isinstance(w.message, ZeroVarianceWarning) and w.message.mask is not None:
            where = "training" if w.message.where == "fitted" else "held-out"
            events.append((w.message.kind, where, w.message.mask, w.message.alphas))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return np.atleast_1d(scores), events


def _summarise_events(fold_events, n_targets):
    """One :class:`~neuroprobe.metrics.ZeroVarianceWarning` per (cause, samples) over the splits."""
    from neuroprobe.metrics import warn_zero_variance

    n_splits = len(fold_events)
    for kind, where in (("targets", "training"), ("targets", "held-out"),
                        ("predictions", "held-out")):
        masks = [np.asarray(m, bool) for events in fold_events for k, w, m, _ in events
                 if (k, w) == (kind, where) and np.asarray(m).size == n_targets]
        hit = [any(k == kind and w == where and np.any(m) for k, w, m, _ in events)
               for events in fold_events]
        if not masks or not any(hit):
            continue
        alphas = [a for events in fold_events for k, w, _, a in events
                  if (k, w) == (kind, where) and a is not None]
        alphas = np.concatenate([np.ravel(a) for a in alphas]) if alphas else None
        warn_zero_variance(kind, where, np.logical_or.reduce(masks), alphas,
                           folds=(int(sum(hit)), n_splits), stacklevel=3)


def _accepts_groups(est):
    import inspect

    try:
        return "groups" in inspect.signature(est.fit).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def cross_val_score_targets(estimator, X, y=None, cv=5, groups=None, n_jobs=None,
                            random_state=None, *, Y=None):
    """Held-out score of every target on every CV split.

    Parameters
    ----------
    estimator : estimator
        A neuroprobe encoder (scored with its ``score_targets``, i.e. its ``scoring``) or any
        regressor with ``predict`` (scored per target with its ``scoring`` attribute, default
        Pearson correlation).
    X : array-like (n_samples, n_features)
    y : array-like (n_samples, n_targets) or (n_samples,), or h5py.Dataset
        For neuroprobe encoders y is never copied whole: each split reads its rows per target
        batch (an HDF5 dataset streams). Never modified (also read-only memmaps, as joblib's
        workers receive them).
    cv : int, splitter or iterable, default=5
        ``int``: :func:`default_cv` for continuous targets --
        ``KFold(cv, shuffle=True, random_state=random_state)``, or ``GroupKFold(cv)`` when
        ``groups`` are given; the same splitter as ``neuroprobe encode``.
    groups : array-like (n_samples,), optional
        Group labels (e.g. fMRI runs) for the splitter; also passed to ``fit`` of estimators
        that take ``groups`` (VoxelwiseEncoder's inner alpha selection).
    n_jobs : int, optional
        Splits in parallel through joblib.
    random_state : int, RandomState or None
        Seed of the shuffled default splitter (``None``: 0, as the CLI's ``--seed``).
    Y : deprecated
        Former name of ``y`` (a FutureWarning; removed in the next release).

    Returns
    -------
    ndarray (n_splits, n_targets)
        The encoding-accuracy map of each split (average over axis 0 for the usual map). A
        constant prediction (e.g. at a very large alpha) has correlation 0, so the average is over
        every split; NaN only where a target's held-out values are constant (undefined; use
        ``np.nanmean``). One :class:`~neuroprobe.metrics.ZeroVarianceWarning` per cause (targets
        constant in training or held-out samples, constant predictions) summarises all splits.
    """
    from neuroprobe._utils import renamed_y
    from neuroprobe.estimators.encoding import _is_lazy_targets, as_targets

    Y = renamed_y(y, Y, "cross_val_score_targets")
    X = np.asarray(X) if not hasattr(X, "iloc") else X.to_numpy()
    Y2, _ = as_targets(Y, X.shape[0], name="y")
    cv = check_cv(default_cv(cv, None, groups, random_state, classifier=False))
    lazy = hasattr(estimator, "score_targets")  # neuroprobe encoders stream target batches
    if _is_lazy_targets(Y2) and not lazy:
        Y2 = np.asarray(Y2[:, :])
    splits = list(cv.split(X, None, groups))
    results = Parallel(n_jobs=n_jobs)(
        delayed(_fold_scores)(estimator, X, Y2, np.sort(tr), np.sort(te), groups, lazy)
        for tr, te in splits
    )
    rows = np.vstack([r for r, _ in results])
    _summarise_events([e for _, e in results], rows.shape[1])
    return rows


# --------------------------------------------------------------------------------------------
# probing layers: cross-validated decoding of stimulus labels or values from each layer
#
# The paper's Figure 5 (animate vs inanimate accuracy rising with depth) is one call::
#
#     table = probe_layers(DNNFeatureExtractor("alexnet", layers=["conv1", "conv3", "conv5",
#                                              "fc2"], pooling="mean", random_state=0),
#                          labels, stimuli=stimset, cv=5, random_state=0)
#
# The network runs once per stimulus for all layers (one ``fit_transform``); each layer's
# columns are then scored with ``sklearn.model_selection.cross_validate``.
# --------------------------------------------------------------------------------------------


def _split_by_names(features, names, layers=None):
    from neuroprobe.transformers.reduction import layer_of

    owner = np.array([layer_of(n) for n in names])
    order = list(dict.fromkeys(owner))
    return {layer: features[:, owner == layer] for layer in (layers or order)}


def layer_features(source, stimuli=None, layers=None):
    """Features of every layer, as a dict ``layer -> (n_stimuli, n_features)`` array.

    Parameters
    ----------
    source : DNNFeatureExtractor, path to an ``.act.h5`` file, dict or DataFrame
        An extractor (run once on ``stimuli`` for all its layers), an activation file written by
        :meth:`DNNFeatureExtractor.extract_to_file`, a dict ``layer -> array`` or a DataFrame
        with ``"<layer>:..."`` columns.
    stimuli : stimuli accepted by the extractor (needed for an extractor)
    layers : list of str, optional
        Subset / order of layers (default: all, in the source's order).
    """
    if isinstance(source, (str, os.PathLike)):
        from neuroprobe.io.activations import read_layers_2d

        return read_layers_2d(source, layers)
    if isinstance(source, dict):
        names = layers or list(source)
        missing = [layer for layer in names if layer not in source]
        if missing:
            raise LayerError(f"layers {missing} not in the given dict; available: {list(source)}")
        return {layer: np.asarray(source[layer]).reshape(len(source[layer]), -1) for layer in names}
    if hasattr(source, "columns") and hasattr(source, "to_numpy"):
        return _split_by_names(source.to_numpy(), np.asarray(source.columns), layers)
    if hasattr(source, "fit_transform"):
        if stimuli is None:
            raise ValueError("probe_layers with an extractor needs stimuli= (the stimuli to run "
                             "the network on)")
        extractor = clone(source)
        if layers is not None:
            extractor.set_params(layers=list(layers))
        features = np.asarray(extractor.fit_transform(stimuli))  # one pass for every layer
        slices = getattr(extractor, "feature_slices_", None)
        if slices:
            return {layer: features[:, sl] for layer, sl in slices.items()}
        return _split_by_names(features, extractor.get_feature_names_out(), layers)
    raise TypeError(
        "source must be a DNNFeatureExtractor, an .act.h5 path, a dict layer -> array or a "
        f"DataFrame with '<layer>:...' columns; got {type(source).__name__}"
    )


def probe_layers(
    source,
    y,
    *,
    stimuli=None,
    layers=None,
    estimator=None,
    cv=5,
    scoring=None,
    groups=None,
    random_state=None,
    n_jobs=None,
):
    """Cross-validated decoding score of every layer.

    Parameters
    ----------
    source : DNNFeatureExtractor, ``.act.h5`` path, dict ``layer -> array`` or DataFrame
        See :func:`layer_features`.
    y : array-like (n_stimuli,)
        Class labels (classification) or behavioural values (regression), decided by
        :func:`sklearn.utils.multiclass.type_of_target`.
    stimuli : optional
        The stimuli, when ``source`` is an extractor.
    layers : list of str, optional
    estimator : estimator, optional
        Default: ``StandardScaler + LogisticRegression(max_iter=1000)`` for classes,
        ``StandardScaler + RidgeCV(alphas=logspace(-3, 5, 9))`` for values.
    cv : int or splitter, default=5
        ``int``: :func:`neuroprobe.model_selection.default_cv`, the splitter of the CLI's
        ``probe`` / ``decode``: shuffled stratified k-fold for classes, shuffled k-fold for values
        (``StratifiedGroupKFold`` / ``GroupKFold`` when ``groups`` are given), seeded by
        ``random_state``.
    scoring : str or callable, optional
        Default ``"accuracy"`` for classes, ``"correlation"`` (Pearson r) for values; resolved by
        :func:`neuroprobe.metrics.get_scorer`.
    groups : array-like (n_stimuli,), optional
        E.g. fMRI runs: folds never split a group.
    random_state : int, optional
        Seed of the shuffled folds (``None``: 0, as the CLI's ``--seed``) and of the estimator's
        ``random_state`` parameters when given.
    n_jobs : int, optional
        Folds in parallel (joblib).

    Returns
    -------
    pandas.DataFrame
        Indexed by layer: ``mean_score``, ``std_score``, ``scores`` (per fold), ``n_features``,
        ``cv`` (the splitter, e.g. ``"StratifiedKFold(n_splits=5, random_state=0, shuffle=True)"``);
        ``.attrs["confusion"]`` maps each layer to its confusion matrix (summed over folds,
        classes) and ``.attrs["classes"]`` holds the class labels.
    """
    import pandas as pd

    from neuroprobe.metrics import get_scorer

    y = np.asarray(y)
    classes = _probe_target_kind(y)
    feats = layer_features(source, stimuli, layers)
    estimator = _probe_estimator(estimator, classes, random_state)
    scorer = get_scorer(scoring or ("accuracy" if classes else "correlation"))
    splitter = default_cv(cv, y, groups, random_state, classifier=classes)
    labels = np.unique(y) if classes else None
    rows, confusion = [], {}
    for layer, X in feats.items():
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"layer {layer!r} has {X.shape[0]} stimuli but y has {y.shape[0]}")
        scores, cm = _probe_layer(estimator, X, y, splitter, groups, scorer, n_jobs, labels)
        if cm is not None:
            confusion[layer] = cm
        rows.append({"layer": layer, "mean_score": scores.mean(), "std_score": scores.std(),
                     "scores": scores, "n_features": X.shape[1], "cv": describe_cv(splitter)})
    table = pd.DataFrame(rows).set_index("layer")
    table.attrs["confusion"] = confusion
    table.attrs["classes"] = labels
    return table


def _probe_target_kind(y):
    """True for class labels, False for values; ``ValueError`` for anything else."""
    kind = type_of_target(y)
    if kind in ("binary", "multiclass"):
        return True
    if kind not in ("continuous", "multiclass-multioutput", "continuous-multioutput"):
        raise ValueError(f"y must be class labels or continuous values; got type {kind!r}")
    return False


def _probe_estimator(estimator, classes, random_state):
    """The default decoder of :func:`probe_layers` (or ``estimator``), seeded by random_state."""
    if estimator is None:
        estimator = (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            if classes
            else make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 5, 9)))
        )
    if random_state is not None:
        params = {k: random_state for k in estimator.get_params() if k.endswith("random_state")}
        estimator = clone(estimator).set_params(**params)
    return estimator


def _probe_layer(estimator, X, y, splitter, groups, scorer, n_jobs, labels):
    """Fold scores of one layer, and its confusion matrix summed over folds (classes)."""
    res = cross_validate(
        estimator,
        X,
        y,
        cv=splitter,
        groups=groups,
        scoring=scorer,
        n_jobs=n_jobs,
        return_estimator=labels is not None and is_classifier(estimator),
        return_indices=True,
    )
    scores = np.asarray(res["test_score"])
    if "estimator" not in res:
        return scores, None
    cm = np.zeros((len(labels), len(labels)), dtype=int)
    for est, test in zip(res["estimator"], res["indices"]["test"]):
        cm += confusion_matrix(y[test], est.predict(X[test]), labels=labels)
    return scores, cm
