"""Cross-validated per-target scores: the encoding-accuracy map."""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, check_cv

__all__ = ["cross_val_score_targets"]


def _fold_scores(estimator, X, Y, train, test, groups, lazy):
    from neuroprobe.estimators.encoding import TargetRows
    from neuroprobe.metrics import PER_TARGET

    est = clone(estimator)
    fit_kw = {}
    if groups is not None and _accepts_groups(est):
        fit_kw["groups"] = np.asarray(groups)[train]
    if lazy:
        y_train, y_test = TargetRows(Y, train), TargetRows(Y, test)
    else:
        y_train, y_test = Y[train], Y[test]
    est.fit(X[train], y_train, **fit_kw)
    if hasattr(est, "score_targets"):
        return np.atleast_1d(est.score_targets(X[test], y_test))
    metric = PER_TARGET[getattr(est, "scoring", None) or "correlation"]
    return np.atleast_1d(metric(np.asarray(y_test), est.predict(X[test])))


def _accepts_groups(est):
    import inspect

    try:
        return "groups" in inspect.signature(est.fit).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def cross_val_score_targets(estimator, X, y=None, cv=5, groups=None, n_jobs=None, *, Y=None):
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
        ``int``: ``KFold(cv)``, or ``GroupKFold(cv)`` when ``groups`` are given.
    groups : array-like (n_samples,), optional
        Group labels (e.g. fMRI runs) for the splitter; also passed to ``fit`` of estimators
        that take ``groups`` (VoxelwiseEncoder's inner alpha selection).
    n_jobs : int, optional
        Splits in parallel through joblib.
    Y : deprecated
        Former name of ``y`` (a FutureWarning; removed in the next release).

    Returns
    -------
    ndarray (n_splits, n_targets)
        The encoding-accuracy map of each split (average over axis 0 for the usual map).
    """
    from neuroprobe.estimators.encoding import _is_lazy_targets, _renamed_y, as_targets

    Y = _renamed_y(y, Y, "cross_val_score_targets")
    X = np.asarray(X) if not hasattr(X, "iloc") else X.to_numpy()
    Y2, _ = as_targets(Y, X.shape[0], name="y")
    if isinstance(cv, int) and groups is not None:
        cv = GroupKFold(cv)
    cv = check_cv(cv)
    lazy = hasattr(estimator, "score_targets")  # neuroprobe encoders stream target batches
    if _is_lazy_targets(Y2) and not lazy:
        Y2 = np.asarray(Y2[:, :])
    splits = list(cv.split(X, None, groups))
    rows = Parallel(n_jobs=n_jobs)(
        delayed(_fold_scores)(estimator, X, Y2, np.sort(tr), np.sort(te), groups, lazy)
        for tr, te in splits
    )
    return np.vstack(rows)
