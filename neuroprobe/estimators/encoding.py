"""Encoding models: a linear model per voxel (:class:`VoxelwiseEncoder`), PLS (:class:`PLSEncoder`).

Thin scikit-learn wrappers over :mod:`neuroprobe.solvers.ridge` and :mod:`neuroprobe.solvers.pls`.
Targets ``Y`` may be a numpy array (any float or int dtype, never copied whole: batches of columns
are cast and centred one at a time), a 1-D array, or an HDF5 dataset (``h5py.Dataset`` of shape
``(n_samples, n_targets)``), from which target batches are streamed.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import GroupKFold, check_cv
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroprobe._utils import check_finite, renamed_y
from neuroprobe.metrics import warn_zero_variance
from neuroprobe.solvers import ridge as _ridge
from neuroprobe.solvers.backend import get_backend

__all__ = ["VoxelwiseEncoder", "PLSEncoder"]

_MODELS = ("ridge", "ols", "lasso")


# --------------------------------------------------------------------------- targets
class TargetRows:
    """A read-only view of some rows of a 2-D target array (or HDF5 dataset), read per column batch.

    ``view[:, columns]`` reads ``Y[:, columns]`` and then keeps ``rows``; the full row subset is
    never materialised. Used by :func:`neuroprobe.cross_val_score_targets` so that each CV split
    streams its targets from the caller's array.
    """

    def __init__(self, Y, rows):
        self.Y = Y
        self.rows = np.asarray(rows)
        self.shape = (len(self.rows), Y.shape[1])
        self.ndim = 2
        self.dtype = Y.dtype

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        rows, cols = key
        if not (isinstance(rows, slice) and rows == slice(None)):
            raise IndexError("TargetRows supports view[:, columns] only")
        return np.asarray(self.Y[:, cols])[self.rows]

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.Y)[self.rows]
        return out if dtype is None else out.astype(dtype)


def _is_lazy_targets(Y):
    """True for array-likes read by column slices (h5py.Dataset, zarr, TargetRows)."""
    return (
        not isinstance(Y, np.ndarray)
        and hasattr(Y, "shape")
        and hasattr(Y, "dtype")
        and hasattr(Y, "__getitem__")
        and len(Y.shape) == 2
    )


def as_targets(Y, n_samples=None, name="Y"):
    """Return ``(Y2d, was_1d)`` without copying: 1-D becomes a (n, 1) view; lazy stays lazy."""
    if Y is None:
        raise ValueError(
            "This estimator requires y to be passed, but the target y is None. "
            f"Pass {name} of shape (n_samples,) or (n_samples, n_targets)."
        )
    if not _is_lazy_targets(Y):
        Y = np.asarray(Y)
        if Y.dtype == object:
            try:
                Y = Y.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"{name} must be numeric (Unknown label type: object values such as "
                    f"{Y.flat[0]!r})"
                ) from exc
        if not (
            np.issubdtype(Y.dtype, np.floating)
            or np.issubdtype(Y.dtype, np.integer)
            or Y.dtype == bool
        ):
            raise ValueError(f"{name} must be numeric (Unknown label type: dtype {Y.dtype})")
    was_1d = len(Y.shape) == 1
    if was_1d:
        Y = Y.reshape(-1, 1)
    if len(Y.shape) != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (n_samples, n_targets); got shape {Y.shape}")
    if n_samples is not None and Y.shape[0] != n_samples:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"X has {n_samples}, {name} has {Y.shape[0]}"
        )
    if Y.shape[1] == 0:
        raise ValueError(f"{name} has 0 targets (columns)")
    return Y, was_1d


def read_batch(Y, cols, dtype):
    """Read ``Y[:, cols]`` as a new array of ``dtype`` (the only copy of these columns)."""
    block = Y[:, cols]
    return np.array(block, dtype=dtype, copy=True)


def _batches(n_targets, size):
    return [slice(i, min(i + size, n_targets)) for i in range(0, n_targets, size)]


def _bad_summary(y, start):
    """(count, first (row, column)) of non-finite values of a batch starting at column ``start``."""
    bad = ~np.isfinite(y)
    count = int(bad.sum())
    if not count:
        return 0, None
    r, c = np.argwhere(bad)[0]
    return count, (int(r), int(c) + start)


def _raise_non_finite(count, first, size, name="y"):
    raise ValueError(
        f"{name} contains {count} NaN or infinite value(s) out of {size}; the first at index "
        f"{first}. Remove or impute them before fitting."
    )


def _warn_constant(mask, where="fitted"):
    """One warning for the targets whose true values are constant in ``where`` samples."""
    warn_zero_variance("targets", where, mask, stacklevel=5)


def _resolve_dtype(dtype):
    dtype = np.dtype(dtype if dtype is not None else np.float32)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64; got {dtype}")
    return dtype


def _target_scores(predict_batch, Y, scoring, dtype, batch, alphas=None, warn=True):
    """Per-target scores of ``predict_batch(cols)`` against ``Y``, in target batches.

    Returns ``(scores, constant_targets, constant_predictions)`` (bool masks). NaN scores are the
    targets constant in these samples; constant predictions score 0 (correlation). ``warn``:
    one :class:`~neuroprobe.metrics.ZeroVarianceWarning` per cause.
    """
    n_targets = Y.shape[1]
    out = np.empty(n_targets, dtype=np.float64)
    const_pred = np.zeros(n_targets, dtype=bool)
    be = get_backend("numpy")
    n_bad, first = 0, None
    for cols in _batches(n_targets, batch):
        y = read_batch(Y, cols, dtype)
        count, where = _bad_summary(y, cols.start)
        if count:
            n_bad += count
            first = first or where
            continue
        pred = predict_batch(cols).astype(dtype, copy=False)
        scores, const = _ridge.score_predictions(y, pred.copy(), scoring, return_constant=True)
        out[cols], const_pred[cols] = be.to_numpy(scores), be.to_numpy(const)
    if n_bad:
        _raise_non_finite(n_bad, first, Y.shape[0] * n_targets)
    const_y = np.isnan(out)
    if warn:
        _warn_constant(const_y, "scored")
        chosen = None if alphas is None else np.asarray(alphas)[const_pred]
        warn_zero_variance("predictions", "scored", const_pred, chosen, stacklevel=5)
    return out, const_y, const_pred


class _EncoderMixin:
    """score / score_targets / predict shared by the encoders (coef_ of shape (p, t))."""

    def _check_X(self, X, cast=True):
        X = validate_data(
            self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite=False
        )
        check_finite(X, "X")
        return X.astype(self._coef_dtype(), copy=False) if cast else X

    def _coef_dtype(self):
        return self.coef_.dtype

    def _n_outputs(self):
        return 1 if self.coef_.ndim == 1 else self.coef_.shape[1]

    def _predict_columns(self, X, shift=True):
        """``cols -> X @ coef_[:, cols] + intercept_[cols]`` (X validated; no intercept when
        ``shift`` is False)."""
        coef = self.coef_.reshape(X.shape[1], -1)
        if not shift:
            return lambda cols: X @ coef[:, cols]
        intercept = np.reshape(self.intercept_, -1)
        return lambda cols: X @ coef[:, cols] + intercept[cols]

    def predict(self, X):
        """Predict the targets of new samples.

        Parameters
        ----------
        X : array-like (n_samples, n_features)

        Returns
        -------
        ndarray (n_samples, n_targets), or (n_samples,) when the model was fitted on 1-D y
            float64 for float64 ``X`` (also with ``dtype="float32"`` coefficients, which are then
            cast per target batch, so memory stays bounded), else the dtype of ``coef_``.
        """
        check_is_fitted(self)
        X = self._check_X(X, cast=False)
        dtype = np.result_type(X.dtype, self._coef_dtype())
        X = X.astype(dtype, copy=False)
        predict_columns = self._predict_columns(X)
        if self._coef_dtype() == dtype:
            pred = predict_columns(slice(None))
        else:  # float32 coefficients, float64 X: cast per target batch (bounded memory)
            n_out = self._n_outputs()
            pred = np.empty((X.shape[0], n_out), dtype=dtype)
            batch = max(1, int(2**24 // max(1, X.shape[1])))
            for cols in _batches(n_out, batch):
                pred[:, cols] = predict_columns(cols)
        if self._fitted_1d_output():
            pred = pred.reshape(X.shape[0])
        return pred

    def _fitted_1d_output(self):
        return np.ndim(self.intercept_) == 0

    def score_targets(self, X, y=None, *, Y=None):
        """Held-out score of every target (the encoding-accuracy map).

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : array-like or h5py.Dataset (n_samples, n_targets), or (n_samples,)
        Y : deprecated
            Former name of ``y`` (a FutureWarning; removed in the next release).

        Returns
        -------
        ndarray (n_targets,)
            ``scoring`` per target (Pearson r or R^2); NaN for targets with zero variance in
            these samples (undefined); a constant prediction (e.g. at a very large alpha) has
            correlation 0. One :class:`~neuroprobe.metrics.ZeroVarianceWarning` per cause
            counts them.
        """
        Y = renamed_y(y, Y, f"{type(self).__name__}.score_targets")
        return self._score_targets(X, Y)[0]

    def _score_targets(self, X, Y, warn=True):
        """``score_targets`` and the masks of constant targets and constant predictions."""
        check_is_fitted(self)
        X = self._check_X(X)
        Y, _ = as_targets(Y, X.shape[0], name="y")
        n_out = self._n_outputs()
        if Y.shape[1] != n_out:
            raise ValueError(f"y has {Y.shape[1]} targets; the model was fitted on {n_out}")
        dtype = self._coef_dtype()
        batch = max(1, int(2**26 // max(1, X.shape[0] + X.shape[1])))
        # correlation ignores the intercept: adding it would round a small prediction away
        predict_batch = self._predict_columns(X, shift=self.scoring != "correlation")
        alphas = getattr(self, "best_alphas_", None)
        alphas = None if alphas is None else np.reshape(alphas, -1)
        return _target_scores(predict_batch, Y, self.scoring, dtype, batch, alphas, warn)

    def score(self, X, y=None, *, Y=None):
        """Mean over targets (NaN-aware) of :meth:`score_targets`: one float (for GridSearchCV).

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : array-like or h5py.Dataset (n_samples, n_targets), or (n_samples,)
        Y : deprecated
            Former name of ``y`` (a FutureWarning; removed in the next release).

        Returns
        -------
        float
        """
        y = renamed_y(y, Y, f"{type(self).__name__}.score")
        scores = self.score_targets(X, y)
        if np.all(np.isnan(scores)):
            return float("nan")
        return float(np.nanmean(scores))


def _check_scoring(scoring):
    if scoring not in _ridge.SCORINGS:
        raise ValueError(f"scoring must be one of {_ridge.SCORINGS}; got {scoring!r}")


# --------------------------------------------------------------------------- batch workers
def _ridge_batch(plan, y, cols, alphas_np, scoring, fit_coef, dtype):
    """CV scores, best alphas and (optionally) coefficients of one target batch."""
    count, where = _bad_summary(y, cols.start)
    if count:
        return {"cols": cols, "bad": (count, where)}
    be = plan.backend
    y_mean = y.mean(axis=0) if plan.fit_intercept else np.zeros(y.shape[1], dtype=dtype)
    if plan.fit_intercept:
        # a new array: a worker's ``y`` may be a read-only memmap (joblib, > 1 MB) or a
        # read-only buffer (dask); the batch is never centred in place
        y = y - y_mean
    const = ~(np.abs(y).max(axis=0) > 0)
    yb = be.asarray(y)
    alphas = be.asarray(alphas_np.astype(dtype))
    if plan.folds is None:
        scores = _ridge.loo_scores(plan, yb, alphas, scoring)
    else:
        scores = _ridge.cv_scores(plan, yb, alphas, scoring)
    scores[:, const] = np.nan
    result = {"cols": cols, "scores": scores, "const": const, "y_mean": y_mean}
    if fit_coef:
        chosen = alphas_np[_best_alpha_index(scores)]
        solve = _ridge.refit_dual if plan.kind == "kernel" else _ridge.refit
        coef = be.to_numpy(solve(plan, yb, be.asarray(chosen.astype(dtype))))
        result.update(best=chosen, coef=coef.astype(dtype, copy=False))
    return result


def _best_alpha_index(scores):
    """Index of the best alpha per target (the largest alpha for all-NaN targets)."""
    filled = np.where(np.isnan(scores), -np.inf, scores)
    best = filled.argmax(axis=0)
    best[np.all(np.isnan(scores), axis=0)] = scores.shape[0] - 1
    return best


def _ridge_coef_batch(plan, y, cols, chosen, dtype):
    be = plan.backend
    if plan.fit_intercept:
        y = y - y.mean(axis=0)  # new array: ``y`` may be read-only in a worker
    solve = _ridge.refit_dual if plan.kind == "kernel" else _ridge.refit
    return cols, be.to_numpy(solve(plan, be.asarray(y), be.asarray(chosen.astype(dtype))))


def _lasso_batch(X, y, cols, folds, alphas, scoring, fit_intercept, max_iter, tol):
    """Per-target sklearn Lasso: CV over ``alphas`` (lasso_path per fold), refit at the best."""
    from sklearn.linear_model import Lasso, lasso_path

    count, where = _bad_summary(y, cols.start)
    if count:
        return {"cols": cols, "bad": (count, where)}
    X = X.astype(np.float64)
    y = y.astype(np.float64)
    n_t = y.shape[1]
    order = np.argsort(alphas)[::-1]  # lasso_path wants decreasing alphas
    scores = np.zeros((len(folds), len(alphas), n_t))
    const = ~(np.ptp(y, axis=0) > 0)
    for f, (tr, te) in enumerate(folds):
        xm = X[tr].mean(axis=0) if fit_intercept else np.zeros(X.shape[1])
        xtr, xte = X[tr] - xm, X[te] - xm
        for j in range(n_t):
            ym = y[tr, j].mean() if fit_intercept else 0.0
            _, coefs, _ = lasso_path(
                xtr, y[tr, j] - ym, alphas=alphas[order], max_iter=max_iter, tol=tol
            )
            pred = (xte @ coefs + ym).T  # (n_alphas, n_te)
            pred = pred[np.argsort(order)]
            scores[f, :, j] = _ridge.score_predictions(y[te, j : j + 1], pred[:, :, None], scoring)[
                :, 0
            ]
    scores = _ridge._nanmean0(scores)
    scores[:, const] = np.nan
    best = alphas[_best_alpha_index(scores)]
    coef = np.zeros((X.shape[1], n_t))
    intercept = np.zeros(n_t)
    for j in range(n_t):
        model = Lasso(alpha=best[j], fit_intercept=fit_intercept, max_iter=max_iter, tol=tol)
        model.fit(X, y[:, j])
        coef[:, j] = model.coef_
        intercept[j] = model.intercept_
    return {
        "cols": cols,
        "scores": scores,
        "const": const,
        "best": best,
        "coef": coef,
        "intercept": intercept,
    }


# --------------------------------------------------------------------------- VoxelwiseEncoder
class VoxelwiseEncoder(_EncoderMixin, MultiOutputMixin, RegressorMixin, BaseEstimator):
    """One linear model per target (voxel), ridge with per-target alphas chosen by k-fold CV.

    For every CV fold X is decomposed once (eigendecomposition of X^T X when n_features <=
    n_samples, of the Gram matrix X X^T otherwise); the held-out scores of every alpha for every
    target then follow from matrix products, targets in batches; the best alpha of each target
    (highest mean CV score) is refitted on all samples. Unlike scikit-learn's
    ``RidgeCV(alpha_per_target=True)``, which allows per-target alphas only with leave-one-out
    (which leaks between neighbouring fMRI samples), the folds here may be k-fold or grouped by
    run (``fit(X, Y, groups=runs)``).

    Parameters
    ----------
    alphas : array-like of float, default=None
        Regularisation grid. ``None``: ``np.logspace(-2, 7, 10)`` for ridge (wide enough for fMRI),
        ``np.logspace(-3, 1, 9)`` for lasso (sklearn's ``Lasso`` alpha scale).
    cv : int, cross-validation splitter or None, default=5
        ``int``: ``KFold(cv)`` (``GroupKFold(cv)`` when ``groups`` are passed to ``fit``);
        a splitter (e.g. ``LeaveOneGroupOut()``); ``None``: efficient leave-one-out (closed form).
        These inner folds only choose the alphas and are unshuffled (contiguous blocks, safe for
        time series); the outer folds of ``cross_val_score_targets`` / ``neuroprobe encode`` are
        shuffled (:func:`neuroprobe.model_selection.default_cv`). For stimuli stored in category
        order pass e.g. ``cv=KFold(5, shuffle=True, random_state=0)``.
    scoring : {"correlation", "r2"}, default="correlation"
        Per-target score used to choose alphas and returned by ``score`` / ``score_targets``.
    fit_intercept : bool, default=True
    alpha_per_target : bool, default=True
        ``False``: one alpha for all targets (best mean CV score over targets).
    model : {"ridge", "ols", "lasso"}, default="ridge"
        ``"ols"``: ordinary least squares (GLM) from one SVD of X for all targets (``alphas`` are
        ignored; ``cv_scores_`` holds the CV score of OLS). ``"lasso"``: scikit-learn ``Lasso`` per
        target, in parallel over target batches through joblib; its alpha is chosen from ``alphas``
        by the same CV (one ``lasso_path`` per target and fold), so it costs
        ``n_targets * (n_folds + 1)`` coordinate-descent fits: use it for a few thousand targets
        at most.
    n_targets_batch : int or None, default=None
        Targets per batch; ``None`` sizes batches from the memory budget
        (:func:`neuroprobe._utils.memory_budget`, or the free device memory for CUDA).
    dtype : {"float32", "float64"}, default="float32"
        Precision of the computation and of ``coef_``.
    n_jobs : int or None, default=None
        Target batches run in parallel through joblib (so ``joblib.parallel_config(backend="dask")``
        spreads them over a cluster).
    backend : {"numpy", "torch"}, default="numpy"
        Array library of the solver (``"torch"`` runs on ``device``).
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (torch backend only).

    Attributes
    ----------
    coef_ : ndarray (n_features, n_targets) (``(n_features,)`` for 1-D Y)
        For ridge with n_features > n_samples (kernel path) formed on first access from
        ``dual_coef_`` (``predict``/``score`` do not need it).
    dual_coef_ : ndarray (n_samples, n_targets) or None
        Kernel path only: ``coef_ = (X_fit_ - X_fit_.mean(0))^T dual_coef_``; None otherwise.
    X_fit_ : ndarray (n_samples, n_features) or None
        Kernel path only: the training X (a reference, as sklearn's ``KernelRidge``).
    intercept_ : ndarray (n_targets,) (float for 1-D Y)
    best_alphas_ : ndarray (n_targets,)
    alphas_ : ndarray (n_alphas,)
    cv_scores_ : ndarray (n_alphas, n_targets)
        Mean held-out score of every alpha (leave-one-out score when ``cv=None``); a fold whose
        predictions are constant (large alphas) has correlation 0, so every fold counts. NaN for
        targets with zero variance (one :class:`~neuroprobe.metrics.ZeroVarianceWarning`).
    n_features_in_ : int
    feature_names_in_ : ndarray of str (when X has feature names)

    Notes
    -----
    Cost of ridge with k folds, a alphas, n samples, p features, t targets: one ``X^T Y``
    (n p t), then per fold ``p^2 t`` plus ``a p^2 t`` (p <= n/k: held-out scores from p x p
    moments, no predictions formed) or ``a (n/k) p t`` (larger p; ``(n - n/k)`` replaces p in
    the kernel case p > n). Memory: ``coef_`` plus one target batch and its working arrays,
    sized from the memory budget; ``Y`` may be an ``h5py.Dataset`` (streamed by column batches).

    ``_permutation_scores`` (used by :class:`neuroprobe.estimators.PermutationTest`) computes the
    statistic T = max over alphas of the mean CV score for permuted rows of Y, reusing the fold
    decompositions (permutations are stacked as extra targets).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroprobe import VoxelwiseEncoder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 10), dtype=np.float32)
    >>> Y = X @ rng.standard_normal((10, 500), dtype=np.float32) + rng.standard_normal((100, 500))
    >>> enc = VoxelwiseEncoder(cv=5).fit(X, Y)
    >>> enc.coef_.shape, enc.best_alphas_.shape
    ((10, 500), (500,))
    """

    def __init__(
        self,
        alphas=None,
        cv=5,
        scoring="correlation",
        fit_intercept=True,
        alpha_per_target=True,
        model="ridge",
        n_targets_batch=None,
        dtype="float32",
        n_jobs=None,
        backend="numpy",
        device="cpu",
    ):
        self.alphas = alphas
        self.cv = cv
        self.scoring = scoring
        self.fit_intercept = fit_intercept
        self.alpha_per_target = alpha_per_target
        self.model = model
        self.n_targets_batch = n_targets_batch
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.backend = backend
        self.device = device

    # -- helpers -----------------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.required = True
        return tags

    def _alpha_grid(self):
        if self.model == "ols":
            return np.array([0.0])
        if self.alphas is None:
            return np.logspace(-3, 1, 9) if self.model == "lasso" else _ridge.DEFAULT_ALPHAS.copy()
        alphas = np.atleast_1d(np.asarray(self.alphas, dtype=np.float64))
        if (
            alphas.ndim != 1
            or alphas.size == 0
            or np.any(alphas < 0)
            or not np.all(np.isfinite(alphas))
        ):
            raise ValueError(
                f"alphas must be a non-empty 1-D array of finite values >= 0; got {alphas}"
            )
        return alphas

    def _folds(self, X, groups, cv=None, allow_none=True):
        cv = self.cv if cv is None and allow_none else cv
        if cv is None:
            if groups is not None:
                raise ValueError(
                    "groups were given but cv=None (leave-one-out ignores groups); "
                    "pass cv=<int> (GroupKFold) or a group splitter such as LeaveOneGroupOut()"
                )
            return None
        if isinstance(cv, numbers.Integral) and groups is not None:
            cv = GroupKFold(int(cv))
        cv = check_cv(cv)
        n_splits = cv.get_n_splits(X, None, groups)
        if isinstance(n_splits, numbers.Integral) and n_splits > X.shape[0]:
            raise ValueError(f"cv has {n_splits} splits but there are only {X.shape[0]} samples")
        return [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(X, None, groups)]

    def _validate_params(self):
        if self.model not in _MODELS:
            raise ValueError(f"model must be one of {_MODELS}; got {self.model!r}")
        _check_scoring(self.scoring)
        if self.n_targets_batch is not None and (
            not isinstance(self.n_targets_batch, numbers.Integral) or self.n_targets_batch < 1
        ):
            raise ValueError(
                f"n_targets_batch must be a positive int or None; got {self.n_targets_batch!r}"
            )

    def _prepare(self, X, Y, groups, cv=None, use_self_cv=True):
        self._validate_params()
        dtype = _resolve_dtype(self.dtype)
        X = validate_data(
            self,
            X,
            reset=True,
            dtype=[np.float64, np.float32],
            ensure_all_finite=False,
            ensure_min_samples=2,
        )
        check_finite(X, "X")
        X = X.astype(dtype, copy=False)
        Y, was_1d = as_targets(Y, X.shape[0], name="y")
        folds = self._folds(X, groups, cv=cv, allow_none=use_self_cv)
        return X, Y, was_1d, folds, dtype

    def _batch_size(self, plan, n_targets, n_alphas, dtype, factor=1):
        if self.n_targets_batch is not None:
            return int(self.n_targets_batch)
        n, p = plan.X.shape
        if plan.kind == "kernel" and self.model == "ridge":
            p = n  # dual coefficients per target, not a coef_ column
        max_test = n if plan.folds is None else max(len(f.test) for f in plan.folds)
        rank = plan.full_eigvals.shape[0]
        per = _ridge.batch_bytes_per_target(n, p, n_alphas, max_test, rank, dtype.itemsize)
        budget = plan.backend.free_memory()
        n_jobs = abs(self.n_jobs) if self.n_jobs else 1
        return max(1, _ridge.auto_batch_size(n_targets, per * factor, budget // n_jobs) // 1)

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, X, y=None, groups=None, *, Y=None):
        """Choose alphas by cross-validation and fit every target.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : array-like (n_samples, n_targets) or (n_samples,), or h5py.Dataset
            Targets; read and cast in batches of columns (never copied whole, never modified).
        groups : array-like (n_samples,), optional
            Group labels (e.g. fMRI runs) for grouped CV.
        Y : deprecated
            Former name of ``y`` (a FutureWarning; removed in the next release).

        Returns
        -------
        self
        """
        Y = renamed_y(y, Y, "VoxelwiseEncoder.fit")
        X, Y, was_1d, folds, dtype = self._prepare(X, Y, groups)
        alphas = self._alpha_grid()
        n_targets = Y.shape[1]
        if self.model == "lasso":
            self._fit_lasso(X, Y, folds, alphas, dtype)
        else:
            self._fit_ridge(X, Y, folds, alphas, dtype)
        self.alphas_ = alphas
        self.n_targets_ = n_targets
        self._fitted_1d = was_1d
        if was_1d:
            if self.__dict__.get("_coef") is not None:
                self._coef = self._coef[:, 0]
            else:
                self.dual_coef_ = self.dual_coef_[:, 0]
            self.intercept_ = float(self.intercept_[0])
        return self

    # -- coefficients: dense, or implicit through the dual coefficients (n << p) -------------
    @property
    def coef_(self):
        """Primal coefficients (n_features, n_targets) (``(n_features,)`` for 1-D Y).

        Kernel fits (ridge, n_features > n_samples) keep them implicit, as ``X_fit_`` and
        ``dual_coef_``: the first access forms ``(X_fit_ - x_mean)^T dual_coef_`` (one GEMM per
        feature block, float32 for float32 fits) and keeps it; ``predict`` / ``score`` never
        need it.
        """
        coef = self.__dict__.get("_coef")
        if coef is not None:
            return coef
        if self.__dict__.get("dual_coef_") is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute 'coef_'")
        dual = self.dual_coef_.reshape(self.X_fit_.shape[0], -1)
        be = get_backend("numpy")
        plan = _ridge.RidgePlan(
            be, self.X_fit_, self._x_mean, "kernel", None, fit_intercept=True, centred=False
        )
        coef = _ridge.dual_to_primal(plan, np.ascontiguousarray(dual))
        if self.dual_coef_.ndim == 1:
            coef = coef[:, 0]
        self._coef = coef
        return coef

    @coef_.setter
    def coef_(self, value):
        self._coef = value
        self.dual_coef_ = None

    def _coef_dtype(self):
        coef = self.__dict__.get("_coef")
        return coef.dtype if coef is not None else self.dual_coef_.dtype

    def _n_outputs(self):
        coef = self.__dict__.get("_coef")
        if coef is not None:
            return super()._n_outputs()
        return 1 if self.dual_coef_.ndim == 1 else self.dual_coef_.shape[1]

    def _predict_columns(self, X, shift=True):
        if self.__dict__.get("_coef") is not None:
            return super()._predict_columns(X, shift)
        # kernel fit: (X - x_mean) (X_fit - x_mean)^T dual + y_mean, no (p, t) array
        be = get_backend("numpy")
        k = _ridge.centred_cross_gram(be, X, self.X_fit_, self._x_mean)
        dual = self.dual_coef_.reshape(self.X_fit_.shape[0], -1)
        if not shift:
            return lambda cols: k @ dual[:, cols]
        y_mean = np.reshape(self._y_mean, -1)
        return lambda cols: k @ dual[:, cols] + y_mean[cols]

    def _fit_ridge(self, X, Y, folds, alphas, dtype):
        be = get_backend(self.backend, self.device)
        n_targets = Y.shape[1]
        plan = _ridge.make_plan(X, folds, fit_intercept=self.fit_intercept, backend=be, dtype=dtype)
        batch = self._batch_size(plan, n_targets, len(alphas), dtype)
        per_target = bool(self.alpha_per_target) and self.model != "ols"
        cv_scores = np.empty((len(alphas), n_targets), dtype=np.float64)
        # kernel plans keep the dual coefficients (n, t); coef_ is formed on first access
        dual = plan.kind == "kernel" and self.model == "ridge"
        coef = np.zeros((X.shape[0] if dual else X.shape[1], n_targets), dtype=dtype)
        intercept = np.zeros(n_targets, dtype=dtype)
        best = np.empty(n_targets)
        n_bad, first, const = 0, None, np.zeros(n_targets, dtype=bool)
        tasks = (
            delayed(_ridge_batch)(
                plan, read_batch(Y, cols, dtype), cols, alphas, self.scoring, per_target, dtype
            )
            for cols in _batches(n_targets, batch)
        )
        for res in Parallel(n_jobs=self.n_jobs, return_as="generator")(tasks):
            cols = res["cols"]
            if "bad" in res:
                n_bad += res["bad"][0]
                first = first or res["bad"][1]
                continue
            cv_scores[:, cols] = res["scores"]
            const[cols] = res["const"]
            if self.fit_intercept:
                intercept[cols] = res["y_mean"]
            if "coef" in res:
                coef[:, cols] = res["coef"]
                best[cols] = res["best"]
        if n_bad:
            _raise_non_finite(n_bad, first, Y.shape[0] * n_targets)
        _warn_constant(const)
        if self.model == "ols":
            pinv, _ = _ridge.ols_solver(
                X, fit_intercept=self.fit_intercept, backend=be, dtype=dtype
            )
            best[:] = 0.0
            self._refit_batches(Y, batch, dtype, coef, lambda y: be.to_numpy(pinv @ be.asarray(y)))
        elif not per_target:
            mean_scores = np.array(
                [np.nanmean(row) if np.any(~np.isnan(row)) else -np.inf for row in cv_scores]
            )
            chosen = np.full(n_targets, alphas[int(np.argmax(mean_scores))])
            best[:] = chosen
            tasks = (
                delayed(_ridge_coef_batch)(
                    plan, read_batch(Y, cols, dtype), cols, chosen[cols], dtype
                )
                for cols in _batches(n_targets, batch)
            )
            for cols, c in Parallel(n_jobs=self.n_jobs, return_as="generator")(tasks):
                coef[:, cols] = c
        y_mean = intercept.copy()
        # intercept: y_mean - x_mean @ coef (per batch to keep memory bounded)
        if self.fit_intercept:
            # kernel: x_mean @ (X - x_mean)^T dual = ((X - x_mean) @ x_mean) @ dual
            x_mean = plan.x_mean
            if dual:
                x_mean = be.to_numpy(plan.mean_proj)
            for cols in _batches(n_targets, batch):
                intercept[cols] -= x_mean @ coef[:, cols]
        if dual:
            self._coef, self.dual_coef_ = None, coef
            self.X_fit_, self._x_mean, self._y_mean = X, plan.x_mean, y_mean
        else:
            self.coef_ = coef
            self.X_fit_ = self._x_mean = self._y_mean = None
        self.intercept_ = intercept
        self.best_alphas_ = best
        self.cv_scores_ = cv_scores

    def _refit_batches(self, Y, batch, dtype, coef, solve):
        for cols in _batches(Y.shape[1], batch):
            y = read_batch(Y, cols, dtype)
            if self.fit_intercept:
                y -= y.mean(axis=0)
            coef[:, cols] = solve(y)

    def _fit_lasso(self, X, Y, folds, alphas, dtype):
        n_targets = Y.shape[1]
        if folds is None:
            raise ValueError(
                "model='lasso' needs cv (k-fold); cv=None (leave-one-out) is ridge only"
            )
        batch = self.n_targets_batch or max(1, -(-n_targets // (4 * (abs(self.n_jobs or 1)))))
        coef = np.zeros((X.shape[1], n_targets), dtype=dtype)
        intercept = np.zeros(n_targets, dtype=dtype)
        cv_scores = np.empty((len(alphas), n_targets))
        best = np.empty(n_targets)
        n_bad, first, const = 0, None, np.zeros(n_targets, dtype=bool)
        tasks = (
            delayed(_lasso_batch)(
                X,
                read_batch(Y, cols, np.float64),
                cols,
                folds,
                alphas,
                self.scoring,
                self.fit_intercept,
                1000,
                1e-4,
            )
            for cols in _batches(n_targets, batch)
        )
        for res in Parallel(n_jobs=self.n_jobs, return_as="generator")(tasks):
            cols = res["cols"]
            if "bad" in res:
                n_bad += res["bad"][0]
                first = first or res["bad"][1]
                continue
            cv_scores[:, cols] = res["scores"]
            coef[:, cols] = res["coef"]
            intercept[cols] = res["intercept"]
            best[cols] = res["best"]
            const[cols] = res["const"]
        if n_bad:
            _raise_non_finite(n_bad, first, Y.shape[0] * n_targets)
        _warn_constant(const)
        self.coef_, self.intercept_ = coef, intercept
        self.best_alphas_, self.cv_scores_ = best, cv_scores

    # -- permutation fast path ---------------------------------------------------------------
    @available_if(lambda self: self.model in ("ridge", "ols"))
    def _permutation_scores(self, X, Y, permutations, *, cv=None, groups=None):
        """Observed and permuted CV statistics, reusing each fold's decomposition of X.

        The statistic of every target is T = max over alphas of the mean over CV folds of the
        held-out score (``scoring``), i.e. the same alpha selection as ``fit``. Permutation k
        uses ``Y[permutations[k]]`` (rows of Y permuted, X and the folds untouched).

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        Y : array-like (n_samples, n_targets) or (n_samples,), or h5py.Dataset
        permutations : int array (n_permutations, n_samples)
        cv : cross-validation spec, optional
            Defaults to this estimator's ``cv`` (``None``: leave-one-out statistic).
        groups : array-like, optional

        Returns
        -------
        observed : ndarray (n_targets,)
        null : ndarray (n_permutations, n_targets)
        """
        est = VoxelwiseEncoder(**self.get_params())
        X, Y, _, folds, dtype = est._prepare(
            X, Y, groups, cv=cv if cv is not None else self.cv, use_self_cv=False
        )
        permutations = np.asarray(permutations)
        if permutations.ndim != 2 or permutations.shape[1] != X.shape[0]:
            raise ValueError(
                f"permutations must have shape (n_permutations, {X.shape[0]}); "
                f"got {permutations.shape}"
            )
        alphas = est._alpha_grid()
        be = get_backend(self.backend, self.device)
        plan = _ridge.make_plan(X, folds, fit_intercept=self.fit_intercept, backend=be, dtype=dtype)
        n_targets = Y.shape[1]
        n_perm = permutations.shape[0]
        batch = est._batch_size(plan, n_targets, len(alphas), dtype)
        t_batch = max(1, min(n_targets, batch))
        p_chunk = max(1, batch // t_batch)
        observed = np.empty(n_targets)
        null = np.empty((n_perm, n_targets))

        def stat(y):
            yb = be.asarray(y)
            a = be.asarray(alphas.astype(dtype))
            s = (
                _ridge.loo_scores(plan, yb, a, self.scoring)
                if plan.folds is None
                else _ridge.cv_scores(plan, yb, a, self.scoring)
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmax(s, axis=0)

        for cols in _batches(n_targets, t_batch):
            y = read_batch(Y, cols, dtype)
            count, where = _bad_summary(y, cols.start)
            if count:
                _raise_non_finite(count, where, y.size)
            if self.fit_intercept:
                y -= y.mean(axis=0)
            observed[cols] = stat(y)
            tb = y.shape[1]
            for start in range(0, n_perm, p_chunk):
                perms = permutations[start : start + p_chunk]
                yp = y[perms]  # (k, n, tb)
                yp = np.ascontiguousarray(yp.transpose(1, 0, 2).reshape(y.shape[0], -1))
                null[start : start + len(perms), cols] = stat(yp).reshape(len(perms), tb)
        return observed, null


# --------------------------------------------------------------------------- PLSEncoder
class PLSEncoder(_EncoderMixin, MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Multivariate encoding with partial least squares (same result as sklearn ``PLSRegression``).

    A covariance ("kernel") form of sklearn's NIPALS algorithm: after one pass over Y to form
    ``X^T Y`` (targets in batches), every power iteration and deflation works on the
    ``(n_features, n_features)`` and ``(n_features, n_targets)`` cross-products instead of the
    ``(n_samples, n_targets)`` data. Coefficients and predictions equal sklearn's
    ``PLSRegression(n_components, scale, max_iter, tol)`` (test-verified).

    Parameters
    ----------
    n_components : int, default=2
    scale : bool, default=True
        Standardise X and Y (std with ddof=1) as sklearn does.
    max_iter : int, default=500
    tol : float, default=1e-6
    scoring : {"correlation", "r2"}, default="correlation"
    dtype : {"float64", "float32"}, default="float64"
    n_targets_batch : int or None, default=None
        Columns of Y read at once when forming ``X^T Y``.
    backend : {"numpy", "torch"}, default="numpy"
    device : str, default="cpu"

    Attributes
    ----------
    coef_ : ndarray (n_features, n_targets)
        ``predict(X) = X @ coef_ + intercept_`` (the transpose of sklearn's ``coef_``; note the
        intercept convention differs from sklearn's ``intercept_ = y_mean``).
    intercept_ : ndarray (n_targets,)
    x_weights_, x_loadings_, x_rotations_ : ndarray (n_features, n_components)
    y_weights_, y_loadings_ : ndarray (n_targets, n_components)
    n_iter_ : list of int
    """

    def __init__(
        self,
        n_components=2,
        scale=True,
        max_iter=500,
        tol=1e-6,
        scoring="correlation",
        dtype="float64",
        n_targets_batch=None,
        backend="numpy",
        device="cpu",
    ):
        self.n_components = n_components
        self.scale = scale
        self.max_iter = max_iter
        self.tol = tol
        self.scoring = scoring
        self.dtype = dtype
        self.n_targets_batch = n_targets_batch
        self.backend = backend
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.required = True
        return tags

    def fit(self, X, y=None, *, Y=None):
        """Fit the PLS model.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : array-like (n_samples, n_targets) or (n_samples,), or h5py.Dataset
            Never modified (target batches are copied, then centred and scaled).
        Y : deprecated
            Former name of ``y`` (a FutureWarning; removed in the next release).

        Returns
        -------
        self
        """
        from neuroprobe.solvers import pls as _pls

        Y = renamed_y(y, Y, "PLSEncoder.fit")
        _check_scoring(self.scoring)
        dtype = _resolve_dtype(self.dtype)
        X = validate_data(
            self,
            X,
            reset=True,
            dtype=[np.float64, np.float32],
            ensure_all_finite=False,
            ensure_min_samples=2,
        )
        check_finite(X, "X")
        X = X.astype(dtype, copy=False)
        Y, was_1d = as_targets(Y, X.shape[0], name="y")
        n, p = X.shape
        if not isinstance(self.n_components, numbers.Integral) or not (
            1 <= self.n_components <= min(n, p)
        ):
            raise ValueError(
                f"n_components must be an int in [1, {min(n, p)}] (min(n_samples, n_features)); "
                f"got {self.n_components!r}"
            )
        be = get_backend(self.backend, self.device)
        batch = self.n_targets_batch or max(1, int(2**26 // max(n, 1)))
        stats = _pls.cross_products(
            X,
            Y,
            scale=self.scale,
            backend=be,
            dtype=dtype,
            batch=batch,
            read=read_batch,
            check=_bad_summary,
        )
        if stats["bad"][0]:
            _raise_non_finite(stats["bad"][0], stats["bad"][1], Y.shape[0] * Y.shape[1])
        _warn_constant(stats["const"])
        res = _pls.nipals_cov(
            stats, self.n_components, max_iter=self.max_iter, tol=self.tol, backend=be
        )
        for name, value in res.items():
            setattr(self, name, value)
        coef = np.ascontiguousarray(res["coef_"].astype(dtype))
        intercept = (stats["y_mean"] - stats["x_mean"] @ coef).astype(dtype)
        self._fitted_1d = was_1d
        if was_1d:
            coef, intercept = coef[:, 0], float(intercept[0])
        self.coef_, self.intercept_ = coef, intercept
        return self
