"""Banded ridge encoding: one regularisation per feature space per voxel (BandedRidgeEncoder).

A thin scikit-learn estimator over :mod:`neuroprobe.solvers.banded`: it resolves the bands from
feature names, slices or index lists, builds the CV folds (``"leave-one-run-out"`` over
``groups``, any splitter), and dispatches to the solver.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, check_cv
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from neuroprobe import bands as _bands
from neuroprobe._utils import memory_budget
from neuroprobe._validation import Integral, Interval, StrOptions, fit_context
from neuroprobe.estimators._base import (
    _bad_summary,
    _batches,
    _EncoderMixin,
    _raise_non_finite,
    _warn_constant,
)
from neuroprobe.estimators.encoding import _SHARED_CONSTRAINTS, _check_alphas
from neuroprobe.exceptions import BandError
from neuroprobe.io.targets import as_targets, read_batch
from neuroprobe.solvers import banded as _banded
from neuroprobe.solvers import banded_refine as _refine
from neuroprobe.solvers import ridge as _ridge
from neuroprobe.solvers.backend import get_backend

__all__ = ["BandedRidgeEncoder", "resolve_bands"]

DEFAULT_ALPHAS = np.logspace(-2, 7, 20)


# --------------------------------------------------------------------------- bands
def resolve_bands(bands, feature_names=None, n_features=None):
    """The columns of each band, every feature in one band: ``{name: int array}``.

    The former signature, kept for compatibility: :func:`neuroprobe.bands.resolve_bands` with
    ``cover="all"`` (the one rule of every front end; see there for the accepted specs).
    """
    return _bands.resolve_bands(bands, n_features, feature_names, cover="all")


# --------------------------------------------------------------------------- estimator
class BandedRidgeEncoder(_EncoderMixin, MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Banded ridge: per target, one weight per feature space (band) and one alpha, chosen by CV.

    Each target's model is ridge on ``[sqrt(g_1) X_1, ..., sqrt(g_k) X_k]`` with penalty
    ``alpha`` (band ``b`` penalised by ``alpha / g_b``), the band weights ``g`` on the simplex
    (Dupré la Tour et al. 2022). The candidates are the simplex corners (each band alone), its
    centre and seeded Dirichlet draws (``candidates``), or an exact grid (``grid``); for each
    candidate the fold decompositions are computed once for all targets (primal when
    n_features <= n_samples, else kernel, where each band's Gram matrix is computed once and
    the candidates only reweight it: :mod:`neuroprobe.solvers.banded`). Each target keeps the
    (candidate, alpha) of best mean CV score, refitted on all samples.

    With ``refine="gradient"`` the search's choice is then the starting point of a per-target
    gradient refinement (himalaya's hyper-gradient, made monotone:
    :mod:`neuroprobe.solvers.banded_refine`): one free log penalty per band,
    ``delta_b = log(g_b / alpha)``, moved by quasi-Newton steps on the mean CV score with
    gradients by implicit differentiation of the ridge solution; a step is kept only when it
    raises the target's score, so no target ends worse than the search left it. Each step costs
    per target ``n_folds`` Cholesky factorisations of ``min(n_train, n_features)``-sided
    systems (``n_folds * m^3 / 3`` flops), in float64: meant for modest ``n`` or a subset of
    targets (``refine_targets``).

    Parameters
    ----------
    bands : None, list or dict, default=None
        The feature spaces: prefixes of the feature names (``["conv3:", "fc1:"]``: the
        extractor's names, also after a FeatureUnion / ColumnTransformer's ``"<step>__"``),
        slices or column-index lists, or a dict ``name -> prefix / slice / indices / names``.
        ``None``: one band per layer prefix when every feature name has one, else one band
        (plain ridge). Feature names come from a pandas X (in a Pipeline:
        ``set_output(transform="pandas")``) or ``feature_names``.
    alphas : array-like of float, default=None
        Global regularisation grid; ``None``: ``np.logspace(-2, 7, 20)``.
    candidates : int or array-like (n_candidates, n_bands), default=20
        ``int``: that many band-weight vectors (the corners, the centre, Dirichlet draws seeded
        by ``random_state``); an array: explicit weights (rows rescaled to sum 1).
    grid : int or None, default=None
        Use the exact simplex grid of step ``1 / grid`` instead (for 2-3 bands).
    cv : int, "leave-one-run-out", splitter or iterable, default=5
        ``"leave-one-run-out"``: ``LeaveOneGroupOut`` over ``groups`` (the runs);
        ``int``: ``GroupKFold`` with ``groups``, else ``KFold`` (unshuffled: contiguous blocks).
    scoring : {"r2", "correlation", "explained_variance"}, default="r2"
        Chooses the hyperparameters and is returned by ``score`` / ``score_targets``.
    fit_intercept : bool, default=True
    solver : {"auto", "primal", "kernel"}, default="auto"
    feature_names : array-like of str or None, default=None
        Names of X's columns when X is a plain array (e.g. ``union.get_feature_names_out()``).
    n_targets_batch : int or None, default=None
        Targets per batch (``None``: from the memory budget).
    dtype : {"float32", "float64"}, default="float32"
    n_jobs : int or None, default=None
        Target batches of each candidate in parallel threads (joblib).
    backend : {"numpy", "torch"}, default="numpy"
    device : str, default="cpu"
    random_state : int, RandomState or None, default=None
        Seed of the Dirichlet draws (``None``: 0, so that fits are reproducible).
    refine : {None, "gradient"}, default=None
        ``"gradient"``: refine each target's band weights and alpha from the search's best by
        monotone gradient steps on its mean CV score (``scoring``), before the refit.
    n_iter_refine : int, default=20
        Evaluations (score and gradient at one trial point) per target in the refinement.
    refine_targets : None, int or array-like, default=None
        Targets to refine: ``None`` all (except constant ones); an int ``k``: the ``k`` of best
        search CV score; indices or a boolean mask.

    Attributes
    ----------
    coef_ : ndarray (n_features, n_targets)
    intercept_ : ndarray (n_targets,)
    best_alphas_ : ndarray (n_targets,)
    best_gammas_ : ndarray (n_bands, n_targets)
        Each target's band weights (columns sum to 1).
    cv_scores_ : ndarray (n_candidates, n_targets)
        Mean CV score of every candidate at its best alpha (as himalaya's ``cv_scores_``).
    candidates_ : ndarray (n_candidates, n_bands)
    alphas_ : ndarray (n_alphas,)
    bands_ : dict of str to ndarray
        The columns of each band.
    band_names_ : list of str
    solver_ : str
        ``"primal"`` or ``"kernel"``.
    refine_scores_ : ndarray (2, n_targets)
        Only with ``refine``: mean CV score (float64) at the search's choice (row 0) and after
        the refinement (row 1); NaN for targets not refined. ``best_gammas_`` and
        ``best_alphas_`` then hold the refined values.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroprobe import BandedRidgeEncoder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((120, 30))
    >>> Y = X[:, :10] @ rng.standard_normal((10, 50)) + rng.standard_normal((120, 50))
    >>> runs = np.repeat(np.arange(4), 30)
    >>> enc = BandedRidgeEncoder(bands=[slice(0, 10), slice(10, 30)],
    ...                          cv="leave-one-run-out").fit(X, Y, groups=runs)
    >>> enc.best_gammas_.shape
    (2, 50)
    """

    _parameter_constraints = {
        **_SHARED_CONSTRAINTS,
        "scoring": [StrOptions({"r2", "correlation", "explained_variance"})],
        "bands": [list, dict, tuple, str, slice, None],
        "alphas": ["array-like", None],
        "candidates": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "grid": [Interval(Integral, 1, None, closed="left"), None],
        "cv": ["cv_object", StrOptions({"leave-one-run-out"})],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"auto", "primal", "kernel"})],
        "feature_names": ["array-like", None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "refine": [StrOptions({"gradient"}), None],
        "n_iter_refine": [Interval(Integral, 0, None, closed="left")],
        "refine_targets": [Interval(Integral, 1, None, closed="left"), "array-like", None],
    }

    def __init__(
        self,
        bands=None,
        alphas=None,
        candidates=20,
        grid=None,
        cv=5,
        scoring="r2",
        fit_intercept=True,
        solver="auto",
        feature_names=None,
        n_targets_batch=None,
        dtype="float32",
        n_jobs=None,
        backend="numpy",
        device="cpu",
        random_state=None,
        refine=None,
        n_iter_refine=20,
        refine_targets=None,
    ):
        self.bands = bands
        self.alphas = alphas
        self.candidates = candidates
        self.grid = grid
        self.cv = cv
        self.scoring = scoring
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.feature_names = feature_names
        self.n_targets_batch = n_targets_batch
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.backend = backend
        self.device = device
        self.random_state = random_state
        self.refine = refine
        self.n_iter_refine = n_iter_refine
        self.refine_targets = refine_targets

    # -- helpers -----------------------------------------------------------------------------
    def _names(self, n_features):
        names = getattr(self, "feature_names_in_", None)
        if names is None and self.feature_names is not None:
            names = np.asarray(self.feature_names, dtype=object)
            if names.ndim != 1 or len(names) != n_features:
                raise BandError(
                    f"feature_names has {names.size} names but X has {n_features} columns"
                )
        return names

    def _candidate_grid(self, n_bands):
        if self.grid is not None:
            return _banded.simplex_grid(n_bands, int(self.grid))
        if isinstance(self.candidates, numbers.Integral):
            if n_bands > 1 and self.candidates < n_bands + 1:
                raise ValueError(
                    f"candidates={self.candidates} is too few for {n_bands} bands: at least "
                    f"n_bands + 1 = {n_bands + 1} (the corners and the centre)"
                )
            seed = 0 if self.random_state is None else check_random_state(self.random_state)
            return _banded.simplex_candidates(n_bands, int(self.candidates), random_state=seed)
        cand = np.asarray(self.candidates, dtype=np.float64)
        if cand.ndim != 2 or cand.shape[1] != n_bands or np.any(cand < 0) or \
                not np.all(cand.sum(axis=1) > 0) or not np.all(np.isfinite(cand)):
            raise ValueError(
                f"candidates must be an int or an array (n_candidates, {n_bands}) of "
                f"non-negative weights with a positive sum per row; got shape {cand.shape}"
            )
        return cand / cand.sum(axis=1, keepdims=True)

    def _folds(self, X, groups, cv=None):
        cv = self.cv if cv is None else cv
        n = X.shape[0]
        if isinstance(cv, str):  # "leave-one-run-out"
            if groups is None:
                raise ValueError(
                    "cv='leave-one-run-out' needs groups: pass fit(X, y, groups=runs) (one run "
                    "label per sample)"
                )
            cv = LeaveOneGroupOut()
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape[0] != n:
                raise ValueError(f"groups has {groups.shape[0]} labels; X has {n} samples")
            n_groups = len(np.unique(groups))
            need = 2 if isinstance(cv, LeaveOneGroupOut) else (
                int(cv) if isinstance(cv, numbers.Integral) else None)
            if need is not None and n_groups < need:
                raise ValueError(
                    f"cv={self.cv!r} needs at least {need} runs in groups; got {n_groups}"
                )
            if isinstance(cv, numbers.Integral):
                cv = GroupKFold(int(cv))
        elif isinstance(cv, numbers.Integral):
            if int(cv) > n:
                raise ValueError(f"cv={cv} folds but there are only {n} samples")
            cv = KFold(int(cv))
        cv = check_cv(cv)
        folds = [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(X, None, groups)]
        if any(len(tr) == 0 or len(te) == 0 for tr, te in folds):
            raise ValueError("cv produced an empty training or test fold")
        return folds

    def _batch_size(self, n, p, n_alphas, max_test, dtype):
        if self.n_targets_batch is not None:
            return int(self.n_targets_batch)
        per = _ridge.batch_bytes_per_target(n, min(n, p), n_alphas, max_test, min(n, p),
                                            dtype.itemsize)
        return _ridge.auto_batch_size(10**9, per, memory_budget() // 4)

    # -- fit ---------------------------------------------------------------------------------
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, groups=None):
        """Choose each target's band weights and alpha by cross-validation, then refit.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : array-like (n_samples, n_targets) or (n_samples,), or h5py.Dataset
            Read in batches of columns (never modified).
        groups : array-like (n_samples,), optional
            Run labels: grouped folds (``cv="leave-one-run-out"`` needs them).

        Returns
        -------
        self
        """
        X, Y, was_1d, plan, res, bands, cands, alphas, batch, folds, be = self._search(
            X, y, groups)
        _warn_constant(res["const"])
        coef, intercept = _banded.banded_refit(plan, Y, cands, res["best_candidate"],
                                               res["best_alpha"], batch=batch)
        gammas, best_alphas = cands[res["best_candidate"]], res["best_alpha"]
        if self.refine == "gradient":
            gammas, best_alphas = gammas.copy(), best_alphas.copy()
            self.refine_scores_ = self._refine(X, Y, bands, folds, be, res, gammas,
                                               best_alphas, coef, intercept)
        self.bands_, self.band_names_ = bands, list(bands)
        self.candidates_, self.alphas_ = cands, alphas
        self.best_alphas_ = best_alphas
        self.best_gammas_ = gammas.T.copy()
        self.cv_scores_ = res["cv_scores"]
        self.solver_ = plan.kind
        self.n_targets_ = Y.shape[1]
        self._fitted_1d = was_1d
        if was_1d:
            coef, intercept = coef[:, 0], float(intercept[0])
        self.coef_, self.intercept_ = coef, intercept
        return self

    def _search(self, X, y, groups, cv=None):
        """Validate, build the plan (``cv``: instead of ``self.cv``) and search every target's
        (candidate, alpha): ``(X, Y, was_1d, plan, res, bands, candidates, alphas, batch, folds,
        backend)``."""
        X, Y, was_1d, dtype = self._validate_fit_data(X, y)
        n, p = X.shape
        alphas = DEFAULT_ALPHAS.copy() if self.alphas is None else _check_alphas(
            self.alphas, type(self).__name__)
        bands = _bands.resolve_bands(self.bands, p, self._names(p), cover="all")
        cands = self._candidate_grid(len(bands))
        folds = self._folds(X, groups, cv)
        be = get_backend(self.backend, self.device)
        plan = _banded.make_banded_plan(X, list(bands.values()), folds,
                                        fit_intercept=self.fit_intercept, backend=be,
                                        dtype=dtype, solver=self.solver)
        batch = self._batch_size(n, p, len(alphas), max(len(te) for _, te in folds), dtype)
        self._check_targets(Y, batch, dtype)
        res = _banded.banded_ridge_cv(plan, Y, cands, alphas, scoring=self.scoring, batch=batch,
                                      n_jobs=self.n_jobs, cache_bytes=memory_budget() // 4)
        return X, Y, was_1d, plan, res, bands, cands, alphas, batch, folds, be

    # -- permutation fast path ---------------------------------------------------------------
    def _permutation_scores(self, X, Y, permutations, *, cv=None, groups=None, split=False):
        """Observed and permuted held-out statistics at fixed hyperparameters, no refit.

        The statistic is the ``cross_val_score_targets`` score: over the outer folds (``cv``,
        else this estimator's ``cv``), each fold's model is this estimator fitted on the
        training rows (its band weights and alpha chosen by its own ``cv`` inside them) and
        scored on the held-out rows (``scoring``), averaged over folds; with ``split``, each
        band's share of the held-out explained variance, one row per band (``band_names_``
        order): ``score_targets(split=True)``'s product measure of the band predictions centred
        on the held-out rows (a band of weight 0 has share 0; the fold's mean error is left
        out instead of being shared equally among the bands, see
        :mod:`neuroprobe.solvers.banded_permutation`). Each fold's hyperparameters are chosen
        once, on the observed data, and kept for every permutation: permutation k scores
        ``Y[permutations[k]]`` through the same fold operators, one eigendecomposition per
        outer fold and chosen candidate.

        Why nested: hyperparameters chosen on the very folds that score them make the observed
        statistic the maximum of many (candidate, alpha) scores, while a null at fixed
        hyperparameters takes no maximum (p-values too small: about 12% at 0.05 on null
        voxels, AR(1) series, circular shifts). Chosen without the held-out rows they cost no
        such optimism; the test is then valid, somewhat conservative (most with ``r2``, whose
        null voxels' p-values pile up near 1). VoxelwiseEncoder's fast path instead takes
        each permutation's best alpha (cheap there; here each permutation would pay the whole
        (candidate, alpha) search).

        Cost: the nested search once per outer fold (the ``cross_val_score_targets`` map), then
        per permutation a few matrix products per fold. ``PermutationTest(n_jobs=k)`` runs this
        method once per worker, each repeating the search: prefer the encoder's own ``n_jobs``
        (threads over target batches).

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        Y : array-like (n_samples, n_targets) or (n_samples,), or h5py.Dataset
        permutations : int array (n_permutations, n_samples)
        cv : cross-validation spec, optional
            The outer folds (default: this estimator's ``cv``, with ``groups``).
        groups : array-like (n_samples,), optional
            Runs: grouped outer and inner folds.
        split : bool, default=False

        Returns
        -------
        observed : ndarray (n_targets,), or (n_bands, n_targets) with ``split``
        null : ndarray (n_permutations, n_targets), or (n_permutations, n_bands, n_targets)
        """
        from neuroprobe._validation import check_params
        from neuroprobe.io.targets import TargetView
        from neuroprobe.solvers.banded_permutation import banded_permutation_scores

        check_params(self)
        est = type(self)(**self.get_params())  # leaves this estimator unfitted
        X, Y, _, dtype = est._validate_fit_data(X, Y)
        n, p = X.shape
        permutations = np.asarray(permutations)
        if permutations.ndim != 2 or permutations.shape[1] != n:
            raise ValueError(f"permutations must have shape (n_permutations, {n}); "
                             f"got {permutations.shape}")
        names = est._names(p)
        bands = _bands.resolve_bands(self.bands, p, names, cover="all")
        cands = est._candidate_grid(len(bands))
        outer = est._folds(X, groups, cv)
        groups = None if groups is None else np.asarray(groups)
        best_c = np.empty((len(outer), Y.shape[1]), dtype=np.intp)
        best_a = np.empty((len(outer), Y.shape[1]))
        inner = est.set_params(feature_names=None if names is None else list(names))
        for f, (train, _) in enumerate(outer):  # the observed choice of every outer fold
            y_tr = Y[train] if isinstance(Y, np.ndarray) else TargetView(Y, train)
            res = inner._search(X[train], y_tr, None if groups is None else groups[train])[4]
            best_c[f], best_a[f] = res["best_candidate"], res["best_alpha"]
        plan = _banded.make_banded_plan(X, list(bands.values()), outer,
                                        fit_intercept=self.fit_intercept,
                                        backend=get_backend(self.backend, self.device),
                                        dtype=dtype, solver=self.solver)
        return banded_permutation_scores(
            plan, Y, permutations, cands, best_c, best_a, scoring=self.scoring, split=split,
            batch_bytes=max(2**22, memory_budget() // 8))
    def _refine_indices(self, res, n_targets):
        spec = self.refine_targets
        usable = ~res["const"]
        if spec is None:
            return np.flatnonzero(usable)
        if isinstance(spec, numbers.Integral):
            best = np.nanmax(np.where(np.isnan(res["cv_scores"]), -np.inf, res["cv_scores"]),
                             axis=0)
            order = np.argsort(-np.where(usable, best, -np.inf), kind="stable")
            return np.sort(order[:min(int(spec), int(usable.sum()))])
        idx = np.asarray(spec)
        if idx.dtype == bool:
            if idx.shape != (n_targets,):
                raise ValueError(f"refine_targets: a boolean mask needs {n_targets} entries "
                                 f"(one per target); got shape {idx.shape}")
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or \
                np.any(idx < -n_targets) or np.any(idx >= n_targets):
            raise ValueError(f"refine_targets must be None, an int, or target indices in "
                             f"[0, {n_targets}); got {spec!r}")
        idx = np.unique(np.arange(n_targets)[idx])
        return idx[usable[idx]]

    def _refine(self, X, Y, bands, folds, be, res, gammas, best_alphas, coef, intercept):
        """Gradient refinement of the chosen targets; updates the arrays in place."""
        n_targets = Y.shape[1]
        scores = np.full((2, n_targets), np.nan)
        idx = self._refine_indices(res, n_targets)
        if idx.size == 0:
            return scores
        rplan = _refine.make_refine_plan(X, list(bands.values()), folds,
                                         fit_intercept=self.fit_intercept, backend=be)
        batch = None if self.n_targets_batch is None else int(self.n_targets_batch)

        def reader(targets):  # sorted indices: h5py reads them too
            return lambda cols: read_batch(Y, targets[cols], np.float64)

        out = _refine.refine_deltas(rplan, reader(idx), gammas[idx], best_alphas[idx],
                                    scoring=self.scoring, n_iter=int(self.n_iter_refine),
                                    batch=batch)
        scores[0, idx], scores[1, idx] = out["score_start"], out["score"]
        moved = out["score"] > out["score_start"]
        new = idx[moved]
        if new.size:
            gammas[new], best_alphas[new] = out["gammas"][moved], out["alphas"][moved]
            c, b = _refine.refit_deltas(rplan, reader(new), out["deltas"][moved], batch=batch)
            coef[:, new], intercept[new] = c, b
        return scores

    @staticmethod
    def _check_targets(Y, batch, dtype):
        n_bad, first = 0, None
        for cols in _batches(Y.shape[1], batch):
            count, where = _bad_summary(read_batch(Y, cols, dtype), cols.start)
            n_bad += count
            first = first or where
        if n_bad:
            _raise_non_finite(n_bad, first, Y.shape[0] * Y.shape[1])

    # -- scores ------------------------------------------------------------------------------
    def score_targets(self, X, y=None, *, split=False, normalize=None):
        """Held-out score of every target, or each band's share of the held-out R^2.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : array-like (n_samples, n_targets) or (n_samples,)
        split : bool, default=False
            Return each band's contribution to the R^2 (the product measure of St-Yves &
            Naselaris 2018, himalaya's ``r2_score_split``): ``(n_bands, n_targets)``, summing
            over bands to the R^2 of the joint prediction (whatever ``scoring``). The intercept
            minus the held-out mean of y is shared equally among the bands.
        normalize : array-like (n_targets,), optional
            Explainable variance per target (as :meth:`VoxelwiseEncoder.score_targets`); with
            ``split`` each band's share is divided by it.

        Returns
        -------
        ndarray (n_targets,), or (n_bands, n_targets) with ``split``
        """
        if not split:
            return super().score_targets(X, y, normalize=normalize)
        check_is_fitted(self)
        X = self._check_X(X)
        Y, _ = as_targets(y, X.shape[0], name="y")
        coef = self.coef_.reshape(X.shape[1], -1)
        if Y.shape[1] != coef.shape[1]:
            raise ValueError(f"y has {Y.shape[1]} targets; the model was fitted on "
                             f"{coef.shape[1]}")
        intercept = np.reshape(self.intercept_, -1)
        out = np.empty((len(self.bands_), coef.shape[1]))
        batch = max(1, int(2**24 // max(1, X.shape[0] * len(self.bands_))))
        for cols in _batches(coef.shape[1], batch):
            yb = read_batch(Y, cols, np.float64)
            preds = np.stack([X[:, idx] @ coef[idx, cols] for idx in self.bands_.values()])
            out[:, cols] = _banded.split_r2(yb, preds, intercept[cols] - yb.mean(axis=0))
        if normalize is not None:
            from neuroprobe.ceilings import normalize_scores

            out = np.stack([normalize_scores(row, normalize, kind="r2/ev") for row in out])
        return out
