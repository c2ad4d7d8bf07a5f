"""Encoding models: a linear model per voxel (:class:`VoxelwiseEncoder`), PLS (:class:`PLSEncoder`).

Thin scikit-learn estimators over pure solvers (:mod:`neuroprobe.solvers.ridge`,
:mod:`neuroprobe.solvers.lasso`, :mod:`neuroprobe.solvers.pls`). ``VoxelwiseEncoder`` picks its
solver from the table ``_SOLVERS`` (one row per ``penalty``, as himalaya's ``ALL_SOLVERS``): a
new regression family is one more row and one ``_fit_*`` method. Targets ``y`` may be a numpy
array (any float or int dtype, never copied whole: batches of columns are cast and centred one at
a time), a 1-D array, or an HDF5 dataset (``h5py.Dataset`` of shape ``(n_samples, n_targets)``),
from which target batches are streamed.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import GroupKFold, check_cv
from sklearn.utils.metaestimators import available_if

from neuroprobe._utils import renamed_y
from neuroprobe._validation import (
    Hidden,
    Integral,
    Interval,
    Options,
    Real,
    StrOptions,
    check_params,
    fit_context,
)
from neuroprobe.estimators._base import (  # noqa: F401 (re-exported: former home)
    _bad_summary,
    _batches,
    _EncoderMixin,
    _raise_non_finite,
    _resolve_dtype,
    _target_scores,
    _warn_constant,
    run_batches,
)
from neuroprobe.io.targets import TargetRows, TargetView, as_targets, read_batch  # noqa: F401
from neuroprobe.io.targets import is_lazy_targets as _is_lazy_targets  # noqa: F401
from neuroprobe.solvers import lasso as _lasso
from neuroprobe.solvers import ridge as _ridge
from neuroprobe.solvers.backend import get_backend
from neuroprobe.solvers.scoring import SCORINGS
from neuroprobe.solvers.scoring import check_scoring as _check_scoring  # noqa: F401

__all__ = ["VoxelwiseEncoder", "PLSEncoder"]


# --------------------------------------------------------------------------- solver table
@dataclass(frozen=True)
class _Solver:
    """One row of the solver table: how a ``penalty`` is cross-validated and refitted.

    Attributes
    ----------
    fit : str
        The ``VoxelwiseEncoder`` method ``(X, Y, folds, alphas, dtype, solver)`` that fits it.
    default_alphas : ndarray or None
        The grid when ``alphas=None``; ``None``: the family has no alpha (the grid is ``[0.]``,
        ``alpha_per_target`` does not apply, blocks of targets always fit independently).
    dual : bool
        Kernel plans (n_features > n_samples) keep dual coefficients.
    permutation : bool
        ``_permutation_scores`` (PermutationTest's fast path) supports it.
    needs_folds : bool
        Needs k-fold ``cv`` (no closed-form leave-one-out).
    """

    fit: str
    default_alphas: np.ndarray | None
    dual: bool = False
    permutation: bool = False
    needs_folds: bool = False

    @property
    def tuned(self):
        return self.default_alphas is not None


_SOLVERS = {
    "l2": _Solver("_fit_ridge", _ridge.DEFAULT_ALPHAS, dual=True, permutation=True),
    None: _Solver("_fit_ridge", None, permutation=True),
    "l1": _Solver("_fit_lasso", _lasso.DEFAULT_ALPHAS, needs_folds=True),
}

# deprecated ``model=`` values -> ``penalty``
_MODEL_TO_PENALTY = {"ridge": "l2", "ols": None, "lasso": "l1"}
_MODELS = tuple(_MODEL_TO_PENALTY)
_UNKNOWN = object()

_DTYPES = [
    StrOptions({"float32", "float64"}),
    Options(type, {np.float32, np.float64}),
    Options(np.dtype, {np.dtype(np.float32), np.dtype(np.float64)}),
]
_SHARED_CONSTRAINTS = {
    "scoring": [StrOptions(set(SCORINGS))],
    "n_targets_batch": [Interval(Integral, 1, None, closed="left"), None],
    "dtype": _DTYPES,
    "backend": [StrOptions({"numpy", "torch"})],
    "device": "no_validation",  # resolved (DeviceError) by neuroprobe._utils.resolve_device
}


def _penalty_options():
    names = {key for key in _SOLVERS if key is not None}
    return [StrOptions(names)] + ([None] if None in _SOLVERS else [])


def _check_alphas(alphas, owner):
    """``alphas`` as a float64 grid; its values (not expressible as a constraint) checked."""
    grid = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if grid.ndim != 1 or grid.size == 0 or np.any(grid < 0) or not np.all(np.isfinite(grid)):
        raise ValueError(
            f"The 'alphas' parameter of {owner} must be a non-empty 1-D array of finite values "
            f">= 0. Got {alphas!r} instead."
        )
    return grid


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
        ``np.logspace(-3, 1, 9)`` for ``penalty="l1"`` (sklearn's ``Lasso`` alpha scale).
    cv : int, cross-validation splitter or None, default=5
        ``int``: ``KFold(cv)`` (``GroupKFold(cv)`` when ``groups`` are passed to ``fit``);
        a splitter (e.g. ``LeaveOneGroupOut()``); ``None``: efficient leave-one-out (closed form).
        These inner folds only choose the alphas and are unshuffled (contiguous blocks, safe for
        time series); the outer folds of ``cross_val_score_targets`` / ``neuroprobe encode`` are
        shuffled (:func:`neuroprobe.model_selection.default_cv`). For stimuli stored in category
        order pass e.g. ``cv=KFold(5, shuffle=True, random_state=0)``.
    scoring : {"correlation", "r2", "explained_variance"}, default="correlation"
        Per-target score used to choose alphas and returned by ``score`` / ``score_targets``.
    fit_intercept : bool, default=True
    alpha_per_target : bool, default=True
        ``False``: one alpha for all targets (best mean CV score over targets).
    penalty : {"l2", "l1"} or None, default="l2"
        The regression family (scikit-learn's ``SGDRegressor`` wording), one row of the solver
        table ``_SOLVERS``: ``"l2"`` ridge; ``None`` ordinary least squares (GLM) from one SVD of
        X for all targets (``alphas`` are ignored; ``cv_scores_`` holds the CV score of OLS);
        ``"l1"`` lasso per target (coordinate descent, as scikit-learn's ``Lasso``), in parallel
        over target batches through joblib; its alpha is chosen from ``alphas`` by the same CV
        (one ``lasso_path`` per target and fold), so it costs ``n_targets * (n_folds + 1)``
        coordinate-descent fits: use it for a few thousand targets at most; needs k-fold ``cv``.
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
    model : {"ridge", "ols", "lasso"}, deprecated
        Former name of ``penalty`` (``"ridge"`` is ``"l2"``, ``"ols"`` is ``None``, ``"lasso"``
        is ``"l1"``); a FutureWarning, removed in the next release.

    Attributes
    ----------
    coef_ : ndarray (n_features, n_targets) (``(n_features,)`` for 1-D Y)
        For ``penalty="l2"`` with n_features > n_samples (kernel path) formed on first access from
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

    _parameter_constraints = {
        **_SHARED_CONSTRAINTS,
        "alphas": ["array-like", Interval(Real, 0, None, closed="left"), None],
        "cv": ["cv_object", None],
        "fit_intercept": ["boolean"],
        "alpha_per_target": ["boolean"],
        "penalty": _penalty_options(),
        "n_jobs": [Integral, None],
        "model": [StrOptions(set(_MODELS)), Hidden(StrOptions({"deprecated"}))],
    }

    def __init__(
        self,
        alphas=None,
        cv=5,
        scoring="correlation",
        fit_intercept=True,
        alpha_per_target=True,
        penalty="l2",
        n_targets_batch=None,
        dtype="float32",
        n_jobs=None,
        backend="numpy",
        device="cpu",
        model="deprecated",
    ):
        self.alphas = alphas
        self.cv = cv
        self.scoring = scoring
        self.fit_intercept = fit_intercept
        self.alpha_per_target = alpha_per_target
        self.penalty = penalty
        self.n_targets_batch = n_targets_batch
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.backend = backend
        self.device = device
        self.model = model

    # -- helpers -----------------------------------------------------------------------------
    def _penalty(self, warn=False):
        """``penalty``, or the one the deprecated ``model`` names (FutureWarning with ``warn``)."""
        if self.model == "deprecated":
            return self.penalty
        if warn:
            new = _MODEL_TO_PENALTY.get(self.model, _UNKNOWN)
            warnings.warn(
                f"The parameter 'model' of VoxelwiseEncoder was renamed 'penalty' in 0.9 and "
                f"will be removed in 0.10: use penalty={new!r} instead of model={self.model!r}.",
                FutureWarning,
                stacklevel=5,
            )
        return _MODEL_TO_PENALTY.get(self.model, _UNKNOWN)

    def _solver(self, warn=False):
        """The row of ``_SOLVERS`` of this estimator's penalty."""
        return _SOLVERS[self._penalty(warn)]

    def _alpha_grid(self):
        solver = self._solver()
        if not solver.tuned:
            return np.array([0.0])
        if self.alphas is None:
            return solver.default_alphas.copy()
        return _check_alphas(self.alphas, type(self).__name__)

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

    def _check_rules(self, cv):
        """The rules that involve two parameters (the rest is ``_parameter_constraints``)."""
        if self.model != "deprecated" and self.penalty != "l2":
            raise ValueError(
                f"pass penalty= only: model={self.model!r} (deprecated) and "
                f"penalty={self.penalty!r} were both given"
            )
        if self._solver().needs_folds and cv is None:
            raise ValueError(
                f"penalty={self._penalty()!r} needs k-fold cv; cv=None (leave-one-out) is "
                "for penalty='l2' or None only"
            )

    def _prepare(self, X, Y, groups, cv=None, use_self_cv=True):
        cv = self.cv if cv is None and use_self_cv else cv
        self._check_rules(cv)
        if self.alphas is not None:
            _check_alphas(self.alphas, type(self).__name__)
        X, Y, was_1d, dtype = self._validate_fit_data(X, Y)
        folds = self._folds(X, groups, cv=cv, allow_none=False)
        return X, Y, was_1d, folds, dtype

    def _batch_size(self, plan, n_targets, n_alphas, dtype, factor=1):
        if self.n_targets_batch is not None:
            return int(self.n_targets_batch)
        n, p = plan.X.shape
        if plan.kind == "kernel" and self._solver().dual:
            p = n  # dual coefficients per target, not a coef_ column
        max_test = n if plan.folds is None else max(len(f.test) for f in plan.folds)
        rank = plan.full_eigvals.shape[0]
        per = _ridge.batch_bytes_per_target(n, p, n_alphas, max_test, rank, dtype.itemsize)
        budget = plan.backend.free_memory()
        n_jobs = abs(self.n_jobs) if self.n_jobs else 1
        return max(1, _ridge.auto_batch_size(n_targets, per * factor, budget // n_jobs) // 1)

    # -- fit ---------------------------------------------------------------------------------
    @fit_context(prefer_skip_nested_validation=True)
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
        solver = self._solver(warn=True)
        X, Y, was_1d, folds, dtype = self._prepare(X, Y, groups)
        alphas = self._alpha_grid()
        getattr(self, solver.fit)(X, Y, folds, alphas, dtype, solver)
        self.alphas_ = alphas
        self.n_targets_ = Y.shape[1]
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

    def _fit_ridge(self, X, Y, folds, alphas, dtype, solver):
        """Ridge (``solver.tuned``) or OLS: CV scores of every alpha, then the refit."""
        be = get_backend(self.backend, self.device)
        n_targets = Y.shape[1]
        plan = _ridge.make_plan(X, folds, fit_intercept=self.fit_intercept, backend=be, dtype=dtype)
        batch = self._batch_size(plan, n_targets, len(alphas), dtype)
        per_target = bool(self.alpha_per_target) and solver.tuned
        # kernel plans keep the dual coefficients (n, t); coef_ is formed on first access
        dual = plan.kind == "kernel" and solver.dual
        out = {
            "scores": np.empty((len(alphas), n_targets), dtype=np.float64),
            "const": np.zeros(n_targets, dtype=bool),
            "y_mean": np.zeros(n_targets, dtype=dtype),
            "coef": np.zeros((X.shape[0] if dual else X.shape[1], n_targets), dtype=dtype),
            "best": np.empty(n_targets),
        }
        args = (plan, alphas, self.scoring, per_target, dtype)
        run_batches(_ridge.cv_batch, Y, batch, dtype, out, self.n_jobs, args)
        _warn_constant(out["const"])
        coef, best = out["coef"], out["best"]
        if not solver.tuned:
            pinv, _ = _ridge.ols_solver(X, fit_intercept=self.fit_intercept, backend=be,
                                        dtype=dtype)
            best[:] = 0.0
            self._refit_batches(Y, batch, dtype, coef, lambda y: be.to_numpy(pinv @ be.asarray(y)))
        elif not per_target:
            chosen = np.full(n_targets, alphas[_best_shared_alpha(out["scores"])])
            best[:] = chosen
            run_batches(_ridge.coef_batch, Y, batch, dtype, {"coef": coef}, self.n_jobs,
                        (plan, dtype), chosen=chosen)
        self._set_ridge_results(X, plan, out, dual)

    def _set_ridge_results(self, X, plan, out, dual):
        """Intercepts ``y_mean - x_mean @ coef`` (per batch: bounded memory) and the attributes."""
        coef, y_mean = out["coef"], out["y_mean"]
        intercept = y_mean.copy()
        if self.fit_intercept:
            # kernel: x_mean @ (X - x_mean)^T dual = ((X - x_mean) @ x_mean) @ dual
            x_mean = plan.backend.to_numpy(plan.mean_proj) if dual else plan.x_mean
            batch = max(1, int(2**24 // max(1, coef.shape[0])))
            for cols in _batches(coef.shape[1], batch):
                intercept[cols] -= x_mean @ coef[:, cols]
        if dual:
            self._coef, self.dual_coef_ = None, coef
            self.X_fit_, self._x_mean, self._y_mean = X, plan.x_mean, y_mean
        else:
            self.coef_ = coef
            self.X_fit_ = self._x_mean = self._y_mean = None
        self.intercept_ = intercept
        self.best_alphas_ = out["best"]
        self.cv_scores_ = out["scores"]

    def _refit_batches(self, Y, batch, dtype, coef, solve):
        for cols in _batches(Y.shape[1], batch):
            y = read_batch(Y, cols, dtype)
            if self.fit_intercept:
                y -= y.mean(axis=0)
            coef[:, cols] = solve(y)

    def _fit_lasso(self, X, Y, folds, alphas, dtype, solver):
        """Lasso per target (:func:`neuroprobe.solvers.lasso.cv_batch`), target batches."""
        n_targets = Y.shape[1]
        batch = self.n_targets_batch or max(1, -(-n_targets // (4 * (abs(self.n_jobs or 1)))))
        out = {
            "scores": np.empty((len(alphas), n_targets)),
            "coef": np.zeros((X.shape[1], n_targets), dtype=dtype),
            "intercept": np.zeros(n_targets, dtype=dtype),
            "best": np.empty(n_targets),
            "const": np.zeros(n_targets, dtype=bool),
        }
        args = (X, folds, alphas, self.scoring, self.fit_intercept, 1000, 1e-4)
        run_batches(_lasso.cv_batch, Y, batch, np.float64, out, self.n_jobs, args)
        _warn_constant(out["const"])
        self.coef_, self.intercept_ = out["coef"], out["intercept"]
        self.best_alphas_, self.cv_scores_ = out["best"], out["scores"]

    # -- permutation fast path ---------------------------------------------------------------
    @available_if(lambda self: getattr(_SOLVERS.get(self._penalty()), "permutation", False))
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
        check_params(self)
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


def _best_shared_alpha(cv_scores):
    """Index of the alpha with the best mean CV score over targets (one alpha for all)."""
    mean_scores = np.array(
        [np.nanmean(row) if np.any(~np.isnan(row)) else -np.inf for row in cv_scores]
    )
    return int(np.argmax(mean_scores))


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
    scoring : {"correlation", "r2", "explained_variance"}, default="correlation"
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

    _parameter_constraints = {
        **_SHARED_CONSTRAINTS,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "scale": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
    }

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

    @fit_context(prefer_skip_nested_validation=True)
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
        X, Y, was_1d, dtype = self._validate_fit_data(X, Y)
        n, p = X.shape
        if self.n_components > min(n, p):  # a rule on the parameter and the data
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
