"""Variance partitioning: which feature band explains which voxel, uniquely or shared.

:func:`variance_partitioning` fits one model per non-empty union of ``k`` feature bands
(``2^k - 1`` models) on every cross-validation fold, scores each voxel's held-out R2, and splits
it into the atoms of the bands' Venn diagram (the unique variance of each band and the variance
shared by each set of bands: de Heer et al. 2017; Lescroart et al. 2015) by Möbius inversion
(:mod:`neuroprobe.solvers.partition`). Any estimator with ``fit`` / ``predict`` works (default:
:class:`~neuroprobe.estimators.VoxelwiseEncoder` choosing its alphas by R2 in the training
folds); an estimator with a ``bands`` parameter (a banded ridge) is given each union's bands as
slices of the union's columns.

Cost: ``(2^k - 1) * n_folds`` fits (k = 2: 3 models, 3: 7, 4: 15, 5: 31), each on the union's
columns only. For ridge (:class:`~neuroprobe.estimators.VoxelwiseEncoder`, the default) the unions
of one outer fold share their products (:func:`neuroprobe.solvers.partition.union_ridge_scores`):
one ``X^T X`` of all the bands (each union takes its block sub-matrix) or one Gram matrix per band
(a union sums its bands'), and ``X^T y`` per target batch, instead of one per union, where each
band would count ``2^(k-1)`` times; each union keeps its own eigendecompositions (one per inner
fold and one for the refit: the eigenvectors of a sum are not those of its parts). Results equal
the per-union fits (to rounding). Other estimators are cloned and fitted once per (fold, union)
(joblib over them with ``n_jobs``; the ridge path runs the outer folds in parallel).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone

from neuroprobe import bands as _bands
from neuroprobe.solvers.partition import (
    mask_bands,
    partition_components,
    subset_masks,
    union_ridge_scores,
)

__all__ = ["VariancePartition", "resolve_bands", "variance_partitioning"]


# --------------------------------------------------------------------------- bands
def resolve_bands(bands, n_features, feature_names=None):
    """Column indices of every feature band; columns in no band are allowed.

    The former signature, kept for compatibility: :func:`neuroprobe.bands.resolve_bands` with
    ``cover="any"`` (the one rule of every front end; see there for the accepted specs).
    """
    return _bands.resolve_bands(bands, n_features, feature_names, cover="any")


# --------------------------------------------------------------------------- result
def _component_name(bands, mask):
    members = [bands[i] for i in mask_bands(mask, len(bands))]
    return f"unique:{members[0]}" if len(members) == 1 else "shared:" + "&".join(members)


def _union_name(bands, mask):
    return "r2:" + "+".join(bands[i] for i in mask_bands(mask, len(bands)))


@dataclass
class VariancePartition:
    """Result of :func:`variance_partitioning`.

    Attributes
    ----------
    bands : list of str
    masks : ndarray of shape (2^k - 1,)
        Bit masks of the unions / atoms (band ``i`` is bit ``i``).
    r2 : ndarray of shape (2^k - 1, n_targets)
        Held-out R2 of the model of every union (mean over folds), row ``m - 1`` for mask ``m``.
    r2_folds : ndarray of shape (n_folds, 2^k - 1, n_targets)
    components : ndarray of shape (2^k - 1, n_targets)
        The atoms: row ``m - 1`` is the variance explained by exactly the bands of mask ``m``
        (unique for one band, shared for several); negative estimates kept. They sum to the R2
        of the full union (``r2[-1]``).
    component_names : list of str
        ``"unique:A"``, ``"shared:A&B"``, ... in the order of ``masks``.
    union_names : list of str
        ``"r2:A"``, ``"r2:A+B"``, ...
    """

    bands: list
    masks: np.ndarray
    r2: np.ndarray
    r2_folds: np.ndarray
    components: np.ndarray
    component_names: list = field(default_factory=list)
    union_names: list = field(default_factory=list)

    def maps(self, unions=True):
        """``name -> (n_targets,) array`` of every component (and union R2), for
        :meth:`neuroprobe.transformers.brain.BrainMasker.inverse_transform`."""
        out = dict(zip(self.component_names, self.components))
        if unions:
            out.update(zip(self.union_names, self.r2))
        return out

    def to_frame(self, unions=True):
        """Tidy table: one row per (component, voxel): ``component``, ``kind`` (``unique``,
        ``shared`` or ``r2``), ``bands``, ``voxel``, ``value``."""
        import pandas as pd

        rows = []
        n = self.components.shape[1]
        entries = [(c, v) for c, v in zip(self.component_names, self.components)]
        if unions:
            entries += list(zip(self.union_names, self.r2))
        frames = []
        for name, values in entries:
            kind, members = name.split(":", 1)
            frames.append(pd.DataFrame({
                "component": name, "kind": kind, "bands": members.replace("+", "&"),
                "voxel": np.arange(n), "value": values,
            }))
        rows = pd.concat(frames, ignore_index=True)
        return rows

    def summary(self):
        """One row per component and union: mean, median, fraction of negative voxels."""
        import pandas as pd

        names = self.component_names + self.union_names
        values = np.vstack([self.components, self.r2])
        with np.errstate(invalid="ignore"):
            return pd.DataFrame({
                "mean": np.nanmean(values, axis=1),
                "median": np.nanmedian(values, axis=1),
                "fraction_negative": np.mean(values < 0, axis=1),
            }, index=pd.Index(names, name="component"))


# --------------------------------------------------------------------------- fitting
def _accepts_groups(est):
    try:
        return "groups" in inspect.signature(est.fit).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def _fit_union(estimator, X_train, Y_train, X_test, Y_test, cols, band_slices, groups_train):
    """Held-out R2 (per target) of the model of one union on one fold."""
    from neuroprobe.metrics import r2_score

    est = clone(estimator)
    if band_slices is not None:
        est.set_params(bands=band_slices)
        if "feature_names" in est.get_params(deep=False):
            est.set_params(feature_names=None)  # the union's bands are slices of its columns
    kw = {"groups": groups_train} if groups_train is not None and _accepts_groups(est) else {}
    est.fit(X_train[:, cols], Y_train, **kw)
    pred = np.asarray(est.predict(X_test[:, cols]), dtype=np.float64).reshape(Y_test.shape)
    return np.atleast_1d(r2_score(Y_test, pred))


def _shared_ridge(estimator):
    """Whether ``estimator`` is a ridge :class:`~neuroprobe.estimators.VoxelwiseEncoder` with
    one alpha per target chosen by k-fold CV: then every union is fitted from per-fold blocks
    shared by the unions (:func:`neuroprobe.solvers.partition.union_ridge_scores`)."""
    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    if type(estimator) is not VoxelwiseEncoder:
        return False
    params = estimator.get_params(deep=False)
    return (params["penalty"] == "l2" and params["model"] == "deprecated"
            and bool(params["alpha_per_target"]) and params["cv"] is not None)


def _shared_fold(estimator, X, Y, train, test, band_cols, masks, groups):
    """Held-out R2 (n_unions, n_targets) of every union on one outer fold, from shared blocks;
    the inner folds, alphas, dtype and backend are the estimator's own."""
    from neuroprobe.estimators._base import _warn_constant
    from neuroprobe.solvers.backend import get_backend

    est = clone(estimator)
    est._validate_params()  # the checks of fit (fit_context) and its two-parameter rules
    est._check_rules(est.cv)
    dtype = np.dtype(est.dtype)
    X_train = np.asarray(X[train], dtype=dtype)
    g_train = None if groups is None else groups[train]
    inner = est._folds(X_train, g_train, cv=est.cv, allow_none=False)
    r2, const = union_ridge_scores(
        X_train, Y[train], X[test], Y[test], band_cols, masks, inner, est._alpha_grid(),
        scoring=est.scoring, fit_intercept=est.fit_intercept,
        backend=get_backend(est.backend, est.device), dtype=dtype, batch=est.n_targets_batch)
    _warn_constant(const)
    return r2


def _default_estimator(groups):
    """``VoxelwiseEncoder(scoring="r2")``, alphas chosen leave-one-run-out with runs."""
    from sklearn.model_selection import LeaveOneGroupOut

    from neuroprobe.estimators.encoding import VoxelwiseEncoder

    return VoxelwiseEncoder(scoring="r2", cv=LeaveOneGroupOut() if groups is not None else 5)


def variance_partitioning(estimator, X, y, bands, *, groups=None, cv=None, feature_names=None,
                          random_state=None, n_jobs=None):
    """Held-out R2 of every union of feature bands, split into unique and shared variance.

    Parameters
    ----------
    estimator : estimator or None
        Anything with ``fit`` and ``predict`` (multi-target). ``None``:
        ``VoxelwiseEncoder(scoring="r2")`` (per-voxel alphas chosen by R2 inside the training
        folds: 5 folds, or leave-one-run-out when ``groups`` are given). An estimator with a
        ``bands`` parameter (banded ridge) gets ``{band: slice}`` of each union's columns.
    X : array-like or DataFrame of shape (n_samples, n_features)
    y : array-like of shape (n_samples, n_targets) or (n_samples,)
    bands : dict or list
        See :func:`neuroprobe.bands.resolve_bands`: prefixes (``"conv3:"``), slices, indices,
        names, masks, a dict ``name -> spec``.
        Columns in no band are left out of every model.
    groups : array-like of shape (n_samples,), optional
        Runs: the outer folds never split a run (and are passed to ``fit``).
    cv : int, splitter or iterable, optional
        Outer folds whose held-out R2 is partitioned. ``None``: ``LeaveOneGroupOut()`` with
        ``groups``, else 5 shuffled folds; an int:
        :func:`neuroprobe.model_selection.default_cv` (``GroupKFold`` with groups).
    feature_names : array of str, optional
        Names of the columns of ``X`` (default: a DataFrame's columns).
    random_state : int, optional
        Seed of the shuffled default folds.
    n_jobs : int, optional
        (fold, union) fits in parallel through joblib.

    Returns
    -------
    VariancePartition
        ``components`` (the atoms, negative estimates kept), ``r2`` of every union,
        ``to_frame()`` (component, voxel, value), ``maps()`` for
        ``BrainMasker.inverse_transform``, ``summary()``.

    Notes
    -----
    ``(2^k - 1) * n_folds`` fits; the R2 of a fold is ``1 - SS_res / SS_tot`` about the fold's
    own mean, averaged over folds (NaN-aware), so the components of the mean equal the mean of
    the components per fold.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroprobe.partition import variance_partitioning
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 6))
    >>> Y = X[:, :3] @ rng.standard_normal((3, 50)) + rng.standard_normal((200, 50))
    >>> vp = variance_partitioning(None, X, Y, {"A": slice(0, 3), "B": slice(3, 6)})
    >>> vp.component_names
    ['unique:A', 'unique:B', 'shared:A&B']
    """
    from sklearn.model_selection import LeaveOneGroupOut, check_cv

    from neuroprobe._cv import default_cv

    if feature_names is None and hasattr(X, "columns"):
        feature_names = np.asarray(X.columns)
    X = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}")
    Y = np.asarray(y)
    Y2 = Y.reshape(Y.shape[0], -1)
    if Y2.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {Y2.shape[0]}")
    cols = _bands.resolve_bands(bands, X.shape[1], feature_names, cover="any")
    names = list(cols)
    k = len(names)
    masks = subset_masks(k)
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (X.shape[0],):
            raise ValueError(f"groups must have one label per sample ({X.shape[0]}); got "
                             f"{groups.shape}")
    estimator = _default_estimator(groups) if estimator is None else estimator
    has_bands = "bands" in estimator.get_params(deep=False)
    if cv is None:
        cv = LeaveOneGroupOut() if groups is not None else 5
    splitter = check_cv(default_cv(cv, None, groups, random_state, classifier=False))
    folds = [(np.sort(tr), np.sort(te)) for tr, te in splitter.split(X, None, groups)]
    unions = []
    for m in masks:
        members = mask_bands(m, k)
        union_cols = np.concatenate([cols[names[i]] for i in members])
        slices, start = {}, 0
        for i in members:
            slices[names[i]] = slice(start, start + cols[names[i]].size)
            start += cols[names[i]].size
        unions.append((union_cols, slices if has_bands else None))
    if _shared_ridge(estimator) and np.all(np.isfinite(X)) and np.all(np.isfinite(Y2)):
        # ridge: one cross-product (primal) or one Gram matrix per band (kernel) per outer fold,
        # shared by the 2^k - 1 unions; columns in no band are left out
        used = np.concatenate([cols[name] for name in names])
        local, start = [], 0
        for name in names:
            local.append(np.arange(start, start + cols[name].size))
            start += cols[name].size
        Xu = X[:, used]
        scores = Parallel(n_jobs=n_jobs)(
            delayed(_shared_fold)(estimator, Xu, Y2, train, test, local, masks, groups)
            for train, test in folds)
        return _result(names, masks, scores, len(folds))

    def tasks():
        # one fold's rows are copied once and shared by its unions (sliced by column there);
        # a generator, so only the folds being worked on are held in memory
        for train, test in folds:
            X_train, X_test, Y_train, Y_test = X[train], X[test], Y2[train], Y2[test]
            g_train = None if groups is None else groups[train]
            for c, s in unions:
                yield delayed(_fit_union)(estimator, X_train, Y_train, X_test, Y_test, c, s,
                                          g_train)

    scores = Parallel(n_jobs=n_jobs)(tasks())
    return _result(names, masks, scores, len(folds))


def _result(names, masks, scores, n_folds):
    """The :class:`VariancePartition` of the held-out R2 of every (fold, union)."""
    r2_folds = np.asarray(scores, dtype=np.float64).reshape(n_folds, masks.size, -1)
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN voxels stay NaN
            r2 = np.nanmean(r2_folds, axis=0)
    return VariancePartition(
        bands=names,
        masks=masks,
        r2=r2,
        r2_folds=r2_folds,
        components=partition_components(r2),
        component_names=[_component_name(names, m) for m in masks],
        union_names=[_union_name(names, m) for m in masks],
    )
