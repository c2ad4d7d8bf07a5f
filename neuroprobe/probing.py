"""Probing layers: cross-validated decoding of stimulus labels or values from each layer.

The paper's Figure 5 (animate vs inanimate accuracy rising with depth) is one call::

    table = probe_layers(DNNFeatureExtractor("alexnet", layers=["conv1", "conv3", "conv5", "fc2"],
                                             pooling="mean", random_state=0),
                         labels, stimuli=stimset, cv=5, random_state=0)

The network runs once per stimulus for all layers (one ``fit_transform``); each layer's columns
are then scored with ``sklearn.model_selection.cross_validate``.
"""

from __future__ import annotations

import os

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import type_of_target

from neuroprobe.exceptions import LayerError

__all__ = ["probe_layers", "layer_features"]


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
        from neuroprobe.io.activations import open_activations

        with open_activations(source) as reader:
            names = layers or reader.layers
            return {layer: reader.read(layer).reshape(len(reader.stim_ids), -1) for layer in names}
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
            raise ValueError("probe_layers with an extractor needs stimuli=")
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
    from neuroprobe.model_selection import default_cv, describe_cv

    y = np.asarray(y)
    kind = type_of_target(y)
    classes = kind in ("binary", "multiclass")
    if not classes and kind not in (
        "continuous",
        "multiclass-multioutput",
        "continuous-multioutput",
    ):
        raise ValueError(f"y must be class labels or continuous values; got type {kind!r}")
    feats = layer_features(source, stimuli, layers)
    if estimator is None:
        estimator = (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            if classes
            else make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 5, 9)))
        )
    if random_state is not None:
        params = {k: random_state for k in estimator.get_params() if k.endswith("random_state")}
        estimator = clone(estimator).set_params(**params)
    scorer = get_scorer(scoring or ("accuracy" if classes else "correlation"))
    splitter = default_cv(cv, y, groups, random_state, classifier=classes)
    cv_text = describe_cv(splitter)
    labels = np.unique(y) if classes else None
    rows, confusion = [], {}
    for layer, X in feats.items():
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"layer {layer!r} has {X.shape[0]} stimuli but y has {y.shape[0]}")
        res = cross_validate(
            estimator,
            X,
            y,
            cv=splitter,
            groups=groups,
            scoring=scorer,
            n_jobs=n_jobs,
            return_estimator=classes and is_classifier(estimator),
            return_indices=True,
        )
        scores = np.asarray(res["test_score"])
        if "estimator" in res:
            cm = np.zeros((len(labels), len(labels)), dtype=int)
            for est, test in zip(res["estimator"], res["indices"]["test"]):
                cm += confusion_matrix(y[test], est.predict(X[test]), labels=labels)
            confusion[layer] = cm
        rows.append(
            {
                "layer": layer,
                "mean_score": scores.mean(),
                "std_score": scores.std(),
                "scores": scores,
                "n_features": X.shape[1],
                "cv": cv_text,
            }
        )
    table = pd.DataFrame(rows).set_index("layer")
    table.attrs["confusion"] = confusion
    table.attrs["classes"] = labels
    return table
