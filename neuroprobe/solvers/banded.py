"""Banded ridge: one regularisation per feature space ("band") per target, chosen by CV.

Pure array functions (numpy or torch through :mod:`neuroprobe.solvers.backend`); the
scikit-learn wrapper is :class:`neuroprobe.estimators.BandedRidgeEncoder`.

Model
-----
The features are split into bands ``X = [X_1, ..., X_k]``. Each target gets band weights
``gamma`` on the simplex (``gamma_b >= 0``, ``sum gamma_b = 1``) and one global ``alpha``; the
model is ridge on the scaled features ``[sqrt(gamma_1) X_1, ..., sqrt(gamma_k) X_k]`` with
penalty ``alpha``, i.e. band ``b`` is penalised by ``alpha / gamma_b`` (himalaya's
``deltas = log(gamma / alpha)``). The coefficients in the original feature space are
``sqrt(gamma_b)`` times those of the scaled problem.

Search (:func:`banded_ridge_cv`)
--------------------------------
The candidate ``gamma`` vectors (:func:`simplex_candidates`: the corners, so single-band models
are always candidates, the centre, seeded Dirichlet draws; or :func:`simplex_grid`, an exact
grid for 2-3 bands) are tried one after another. For each candidate the fold decompositions of
the scaled problem are formed once and reused by every target batch, through the machinery of
:mod:`neuroprobe.solvers.ridge` (:func:`~neuroprobe.solvers.ridge.cv_scores` scores every alpha
of a batch with one matrix product per fold):

* ``primal`` (n_features <= n_samples): ``X_c^T X_c`` and each fold's training cross-product are
  computed once; a candidate only rescales them, ``D G D`` with ``D = diag(sqrt(gamma))``, before
  the ``p x p`` eigendecomposition of each fold.
* ``kernel`` (n_features > n_samples): each band's centred Gram matrix ``K_b`` (and its fold
  blocks, centred on the training rows) is computed once; a candidate's fold kernel is the
  weighted sum ``sum_b gamma_b K_b`` (no pass over the features), then one ``n_train x n_train``
  eigendecomposition per fold. himalaya's random search forms the same sums, but re-centres and
  re-slices them per candidate and runs the alpha loop in batches.

Each target keeps the (candidate, alpha) of highest mean CV score (ties: the first candidate, as
himalaya); the refit on all samples decomposes only the candidates some target chose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations_with_replacement

import numpy as np

from neuroprobe.solvers import ridge as _ridge

__all__ = [
    "simplex_candidates",
    "simplex_grid",
    "BandedPlan",
    "make_banded_plan",
    "candidate_plan",
    "banded_ridge_cv",
    "banded_refit",
    "split_r2",
]


# --------------------------------------------------------------------------- candidates
def simplex_grid(n_bands, steps):
    """Every point of the simplex with coordinates in multiples of ``1 / steps``.

    Parameters
    ----------
    n_bands : int
    steps : int
        Resolution: ``steps + 1`` points for two bands, ``(steps + 1)(steps + 2) / 2`` for three.

    Returns
    -------
    ndarray (n_candidates, n_bands), float64, rows summing to 1
    """
    if n_bands < 1 or steps < 1:
        raise ValueError(f"simplex_grid needs n_bands >= 1 and steps >= 1; got {n_bands}, {steps}")
    points = []
    for combo in combinations_with_replacement(range(n_bands), steps):
        points.append(np.bincount(combo, minlength=n_bands))
    grid = np.asarray(points, dtype=np.float64) / steps
    return grid[np.lexsort(grid.T[::-1])][::-1]


def simplex_candidates(n_bands, n_candidates=20, *, random_state=None, concentration=1.0):
    """Band weights to try: the corners, the centre, then seeded Dirichlet draws.

    Parameters
    ----------
    n_bands : int
    n_candidates : int, default=20
        Total number of rows (at least ``n_bands + 1`` for more than one band).
    random_state : int, RandomState, Generator or None
        Seed of the Dirichlet draws.
    concentration : float, default=1.0
        Dirichlet concentration (1: uniform on the simplex; < 1 favours sparse weights).

    Returns
    -------
    ndarray (n_candidates, n_bands), float64, rows summing to 1
        Row ``b < n_bands``: the corner of band ``b`` (band b alone); row ``n_bands``: the
        centre (equal weights); then the draws.
    """
    if n_bands == 1:
        return np.ones((1, 1))
    fixed = np.vstack([np.eye(n_bands), np.full((1, n_bands), 1.0 / n_bands)])
    if n_candidates < len(fixed):
        raise ValueError(
            f"n_candidates must be at least n_bands + 1 = {len(fixed)} (the corners and the "
            f"centre); got {n_candidates}"
        )
    rng = random_state if isinstance(random_state, np.random.Generator) else None
    if rng is None:
        seed = random_state
        if isinstance(seed, np.random.RandomState):
            seed = int(seed.randint(2**31 - 1))
        rng = np.random.default_rng(seed)
    draws = rng.dirichlet(np.full(n_bands, float(concentration)), n_candidates - len(fixed))
    return np.vstack([fixed, draws])


# --------------------------------------------------------------------------- plans
@dataclass
class BandedPlan:
    """What every candidate needs about X, computed once (:func:`make_banded_plan`)."""

    backend: object
    kind: str
    bands: list  # column index arrays (numpy), one per band
    band_of: np.ndarray  # (n_features,) band index of every column
    x_mean: np.ndarray  # numpy (n_features,)
    X: object  # backend: centred X (primal) or X as given (kernel)
    folds: list | None
    fit_intercept: bool = True
    dtype: object = np.float32
    gram: object = None  # primal: X_c^T X_c (p, p); kernel: stacked centred K_b (k, n, n)
    fold_parts: list = field(default_factory=list)

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    @property
    def n_bands(self):
        return len(self.bands)


def _stack(backend, arrays):
    if backend.name == "torch":
        return backend.torch.stack(arrays)
    return np.stack(arrays)


def make_banded_plan(X, bands, folds=None, *, fit_intercept=True, backend, dtype=np.float32,
                     solver="auto"):
    """Cross-products (primal) or per-band Gram matrices (kernel) of X, and their fold parts.

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
    bands : list of int arrays
        The columns of each band (disjoint, together every column).
    folds : list of (train, test) index arrays, or None (refit only)
    fit_intercept : bool
    backend : backend from :func:`neuroprobe.solvers.backend.get_backend`
    dtype : numpy dtype
    solver : {"auto", "primal", "kernel"}
        ``auto``: primal when n_features <= n_samples, kernel otherwise.

    Returns
    -------
    BandedPlan
    """
    X = np.asarray(X, dtype=dtype)
    n, p = X.shape
    bands = [np.asarray(b, dtype=np.intp) for b in bands]
    band_of = np.full(p, -1, dtype=np.intp)
    for i, cols in enumerate(bands):
        band_of[cols] = i
    if np.any(band_of < 0):
        raise ValueError(f"bands leave {int((band_of < 0).sum())} column(s) of X unassigned")
    kind = solver if solver != "auto" else ("primal" if p <= n else "kernel")
    x_mean = X.mean(axis=0) if fit_intercept else np.zeros(p, dtype=dtype)
    be = backend
    if kind == "primal":
        xg = be.asarray(X - x_mean if fit_intercept else X)
        plan = BandedPlan(be, kind, bands, band_of, x_mean, xg, None, fit_intercept, dtype)
        plan.gram = xg.T @ xg
    else:
        xk = be.asarray(X)
        plan = BandedPlan(be, kind, bands, band_of, x_mean, xk, None, fit_intercept, dtype)
        grams = []
        for cols in bands:
            idx = be.asarray(cols)
            k, _ = _ridge._kernel_gram(be, xk[:, idx], x_mean[cols], fit_intercept)
            grams.append(k)
        plan.gram = _stack(be, grams)
    if folds is None:
        return plan
    plan.folds = []
    for train, test in folds:
        train, test = np.asarray(train), np.asarray(test)
        tr, te = be.asarray(train), be.asarray(test)
        n_tr = len(train)
        if kind == "primal":
            x_te = plan.X[te]
            sub = plan.gram - x_te.T @ x_te
            mx = -x_te.sum(axis=0) / n_tr if fit_intercept else 0 * x_te[0]
            if fit_intercept:
                sub = sub - n_tr * (mx[:, None] * mx[None, :])
            plan.fold_parts.append((sub, mx))
        else:
            k_tr = plan.gram[:, tr][:, :, tr]
            k_te = plan.gram[:, te][:, :, tr]
            if fit_intercept:  # centre on the training rows (linear: per band, then summed)
                r = k_tr.mean(axis=2)
                m = r.mean(axis=1)
                k_tr = k_tr - r[:, :, None] - r[:, None, :] + m[:, None, None]
                k_te = k_te - k_te.mean(axis=2, keepdims=True) - r[:, None, :] + m[:, None, None]
            plan.fold_parts.append((k_tr, k_te))
        plan.folds.append((train, test))
    return plan


def _scales(plan, gamma):
    """(n_features,) column scales ``sqrt(gamma_band)`` as a backend array of the plan's dtype."""
    d = np.sqrt(np.asarray(gamma, dtype=np.float64))[plan.band_of].astype(plan.dtype)
    return plan.backend.asarray(d)


def _weighted(plan, stacked, gamma):
    """``sum_b gamma_b stacked[b]`` (kernel blocks)."""
    g = plan.backend.asarray(np.asarray(gamma, dtype=plan.dtype))
    out = stacked[0] * g[0]
    for b in range(1, stacked.shape[0]):
        out = out + stacked[b] * g[b]
    return out


def _eigh_kernel(be, a):
    """Eigendecomposition of a candidate's kernel block.

    float32 numpy: LAPACK's divide-and-conquer ``ssyevd`` (scipy), about 2.5 times faster than
    the float64 call of :func:`neuroprobe.solvers.ridge._eigh` (which guards the squared
    condition number of primal cross-products); the kernel is regularised by every alpha, as in
    himalaya, which diagonalises in float32 too. Otherwise ridge's rule.
    """
    if be.name == "numpy" and a.dtype == np.float32:
        from scipy.linalg import eigh

        s, u = eigh(a, driver="evd", check_finite=False)
        return _ridge._clip(s), u
    return _ridge._eigh(be, a)


def candidate_plan(plan, gamma, *, full=False):
    """The :class:`~neuroprobe.solvers.ridge.RidgePlan` of the scaled problem of one candidate.

    Parameters
    ----------
    plan : BandedPlan
    gamma : array (n_bands,)
    full : bool
        Decompose the full data (for the refit) instead of the folds.

    Returns
    -------
    RidgePlan
        With folds (``full=False``) or the full-data decomposition (``full=True``); either way
        usable with :func:`neuroprobe.solvers.ridge.cv_scores` / ``refit`` / ``refit_dual``.
    """
    be = plan.backend
    R = _ridge
    if plan.kind == "primal":
        d = _scales(plan, gamma)
        xs = plan.X * d[None, :]
        rp = R.RidgePlan(be, xs, plan.x_mean, "primal", None, fit_intercept=plan.fit_intercept)
        if full:
            s, v = R._eigh(be, plan.gram * d[:, None] * d[None, :])
            rp.full_eigvals, rp.full_eigvecs = s, v
            return rp
        rp.folds = []
        for (train, test), (sub, mx) in zip(plan.folds, plan.fold_parts):
            s, v = R._eigh(be, sub * d[:, None] * d[None, :])
            rp.folds.append(R.primal_fold(train, test, s, v, mx * d, xs[be.asarray(test)]))
        return rp
    rp = R.RidgePlan(be, plan.X, plan.x_mean, "kernel", None, fit_intercept=plan.fit_intercept,
                     centred=False)
    if full:
        s, u = _eigh_kernel(be, _weighted(plan, plan.gram, gamma))
        rp.full_eigvals, rp.full_eigvecs = s, u
        return rp
    rp.folds = []
    for (train, test), (k_tr, k_te) in zip(plan.folds, plan.fold_parts):
        s, u = _eigh_kernel(be, _weighted(plan, k_tr, gamma))
        rp.folds.append(R.FoldDecomposition(train, test, "kernel", s, u,
                                            _weighted(plan, k_te, gamma) @ u))
    return rp


# --------------------------------------------------------------------------- search and refit
def _batches(n, size):
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _centred_batch(plan, read, cols):
    y = np.asarray(read(cols), dtype=plan.dtype)
    y_mean = y.mean(axis=0) if plan.fit_intercept else np.zeros(y.shape[1], dtype=plan.dtype)
    if plan.fit_intercept:
        y = y - y_mean  # a new array: never centre the caller's data in place
    return y, y_mean


def banded_ridge_cv(plan, Y, candidates, alphas, *, scoring="r2", batch=None, n_jobs=None,
                    cache_bytes=2**30, kernel_route="auto"):
    """Cross-validated search over (candidate, alpha) for every target.

    Parameters
    ----------
    plan : BandedPlan with folds
    Y : ndarray (n_samples, n_targets), or callable ``cols -> ndarray``
        Targets (a callable reads a batch of columns, given as a slice; with ``n_targets`` in
        its ``shape`` attribute).
    candidates : array (n_candidates, n_bands)
    alphas : array (n_alphas,)
    scoring : {"r2", "correlation", "explained_variance"}
    batch : int, optional
        Targets per batch (default: all).
    n_jobs : int, optional
        Target batches of one candidate in parallel threads (joblib).
    cache_bytes : int
        Centred target batches are kept between candidates when they fit in this many bytes.
    kernel_route : {"auto", "direct", "resolvent"}
        Kernel folds: ``"resolvent"`` forms the (n_alphas * n_test, n_train) matrix of every
        alpha once per fold and candidate (:func:`neuroprobe.solvers.ridge.cv_scores`);
        ``"direct"`` projects each batch through ``U^T y_train`` instead (cheaper when there
        are fewer targets than ``n_alphas * n_test``, the ``"auto"`` rule).

    Returns
    -------
    dict
        ``best_candidate`` (t,) int, ``best_alpha`` (t,), ``cv_scores`` (n_candidates, t) (mean
        CV score at the best alpha of each candidate, NaN for constant targets), ``y_mean`` (t,),
        ``const`` (t,) bool.
    """
    from joblib import Parallel, delayed

    be = plan.backend
    read, n_targets = _reader(Y)
    candidates = np.asarray(candidates, dtype=np.float64)
    alphas = np.asarray(alphas, dtype=np.float64)
    batch = int(batch or n_targets)
    slices = _batches(n_targets, batch)
    n_cand = len(candidates)
    cv = np.full((n_cand, n_targets), np.nan)
    best_alpha = np.full(n_targets, alphas[-1])
    best_cand = np.full(n_targets, -1, dtype=np.intp)
    best_score = np.full(n_targets, -np.inf)
    y_mean = np.zeros(n_targets, dtype=plan.dtype)
    const = np.zeros(n_targets, dtype=bool)
    keep = plan.n_samples * n_targets * np.dtype(plan.dtype).itemsize <= cache_bytes
    cache = {}
    a_be = be.asarray(alphas.astype(plan.dtype))

    def batch_of(i, cols):
        if i in cache:
            return cache[i]
        y, mean = _centred_batch(plan, read, cols)
        y_mean[cols] = mean
        const[cols] = ~(np.abs(y).max(axis=0) > 0) if y.shape[0] else True
        yb = be.asarray(y)
        if keep:
            cache[i] = yb
        return yb

    # kernel folds: the all-alpha resolvent (ridge's route, n_alphas n_te n_tr^2 per fold and
    # candidate) pays off only for many targets; otherwise project through U^T y_tr
    max_test = max((len(te) for _, te in plan.folds), default=0)
    direct = plan.kind == "kernel" and (
        kernel_route == "direct" or (kernel_route == "auto" and n_targets < len(alphas) * max_test))

    def work(rp, i, cols):
        yb = batch_of(i, cols)
        if direct:
            return cols, _kernel_scores_direct(rp, yb, a_be, scoring)
        return cols, _ridge.cv_scores(rp, yb, a_be, scoring)

    for c in range(n_cand):
        rp = candidate_plan(plan, candidates[c])
        if n_jobs in (None, 1) or len(slices) == 1:
            results = (work(rp, i, cols) for i, cols in enumerate(slices))
        else:
            results = Parallel(n_jobs=n_jobs, prefer="threads")(
                delayed(work)(rp, i, cols) for i, cols in enumerate(slices))
        for cols, scores in results:
            scores[:, const[cols]] = np.nan
            idx = _ridge.best_alpha_index(scores)
            val = scores[idx, np.arange(scores.shape[1])]
            cv[c, cols] = val
            better = val > best_score[cols]  # NaN never wins; ties keep the first candidate
            sel = np.flatnonzero(better) + cols.start
            best_score[sel] = val[better]
            best_cand[sel] = c
            best_alpha[sel] = alphas[idx[better]]
    # constant targets (never chosen): the centre (or the only candidate), the largest alpha
    best_cand[best_cand < 0] = min(plan.n_bands, n_cand - 1) if plan.n_bands > 1 else 0
    return {"best_candidate": best_cand, "best_alpha": best_alpha, "cv_scores": cv,
            "y_mean": y_mean, "const": const}


def _kernel_scores_direct(rp, y, alphas, scoring):
    """Mean held-out scores (n_alphas, t) of kernel folds through ``U^T y_train``."""
    be = rp.backend
    out = []
    for fold in rp.folds:
        y_tr = y[be.asarray(fold.train)]
        y_te = y[be.asarray(fold.test)]
        my = y_tr.mean(axis=0) if rp.fit_intercept else None
        z = fold.eigvecs.T @ (y_tr - my if my is not None else y_tr)
        w = _ridge._inverse_weights(be, fold.eigvals, alphas)
        factors = _ridge.alpha_factors(be, w)
        if factors is None:
            pred = _ridge._project(fold.proj_test, w, z)
        else:  # k < n_alphas projections, combined per alpha
            left, right = factors
            m = _ridge._project(fold.proj_test, right, z)  # (k, n_test, t)
            pred = (left @ m.reshape(m.shape[0], -1)).reshape(len(alphas), m.shape[1], -1)
        if my is not None:
            pred += my
        out.append(be.to_numpy(_ridge.score_predictions(y_te, pred, scoring)))
    return _ridge.nanmean0(np.stack(out))


def _reader(Y):
    if callable(Y):
        return Y, int(Y.shape[1])
    return (lambda cols: Y[:, cols]), Y.shape[1]


def banded_refit(plan, Y, candidates, best_candidate, best_alpha, *, batch=None):
    """Coefficients on all samples at each target's chosen candidate and alpha.

    Only the candidates some target chose are decomposed (one full-data eigendecomposition
    each); their targets are refitted together.

    Parameters
    ----------
    plan : BandedPlan
    Y : ndarray (n_samples, n_targets), or callable ``cols -> ndarray`` (see
        :func:`banded_ridge_cv`; here ``cols`` may also be an int array)
    candidates : array (n_candidates, n_bands)
    best_candidate : int array (n_targets,)
    best_alpha : array (n_targets,)
    batch : int, optional
        Targets per refit batch.

    Returns
    -------
    coef : ndarray (n_features, n_targets)
        In the original (unscaled) feature space, the plan's dtype.
    intercept : ndarray (n_targets,)
    """
    be = plan.backend
    read, n_targets = _reader(Y)
    candidates = np.asarray(candidates, dtype=np.float64)
    best_candidate = np.asarray(best_candidate)
    best_alpha = np.asarray(best_alpha, dtype=np.float64)
    p, n = plan.n_features, plan.n_samples
    kernel = plan.kind == "kernel"
    out = np.zeros((n if kernel else p, n_targets), dtype=plan.dtype)
    y_mean = np.zeros(n_targets, dtype=plan.dtype)
    batch = int(batch or n_targets)
    for c in np.unique(best_candidate):
        targets = np.flatnonzero(best_candidate == c)
        rp = candidate_plan(plan, candidates[c], full=True)
        d = None if kernel else _scales(plan, candidates[c])
        for start in range(0, len(targets), batch):
            cols = targets[start:start + batch]
            y, mean = _centred_batch(plan, read, cols)
            y_mean[cols] = mean
            a = be.asarray(best_alpha[cols].astype(plan.dtype))
            if kernel:
                w = _ridge.refit_dual(rp, be.asarray(y), a)
            else:
                w = _ridge.refit(rp, be.asarray(y), a) * d[:, None]
            out[:, cols] = be.to_numpy(w)
    if kernel:
        rp = _ridge.RidgePlan(be, plan.X, plan.x_mean, "kernel", None,
                              fit_intercept=plan.fit_intercept, centred=False)
        coef = _ridge.dual_to_primal(rp, out if be.name == "numpy" else be.asarray(out))
        coef = be.to_numpy(coef).astype(plan.dtype, copy=False)
        # band b of target t is scaled by sqrt(gamma) twice: coef = gamma_b X_b,c^T dual
        coef *= candidates[best_candidate].T.astype(plan.dtype)[plan.band_of]
    else:
        coef = out
    intercept = y_mean - plan.x_mean @ coef if plan.fit_intercept else y_mean * 0
    return coef, intercept.astype(plan.dtype, copy=False)


# --------------------------------------------------------------------------- split scores
def split_r2(y_true, band_predictions, offset=None):
    """Each band's contribution to R^2 (product measure; they sum to the joint R^2).

    ``r2_b = sum_i (2 y_c,i p_b,i - P_i p_b,i) / sum_i y_c,i^2`` with ``y_c`` the targets centred
    on these samples, ``p_b`` the band predictions and ``P = sum_b p_b`` (St-Yves & Naselaris
    2018; himalaya's ``r2_score_split``). ``offset`` (the joint prediction's constant part,
    minus the mean of ``y_true``) is shared equally among the bands, so that
    ``sum_b r2_b = 1 - ||y - yhat||^2 / ||y_c||^2`` exactly.

    Parameters
    ----------
    y_true : array (n_samples, n_targets)
    band_predictions : array (n_bands, n_samples, n_targets)
    offset : array (n_targets,), optional
        ``intercept - mean(y_true)`` (the joint prediction is
        ``sum_b band_predictions[b] + intercept``).

    Returns
    -------
    ndarray (n_bands, n_targets)
        NaN for targets constant in these samples.
    """
    y = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(band_predictions, dtype=np.float64)
    y_c = y - y.mean(axis=0)
    if offset is not None:
        pred = pred + np.asarray(offset, dtype=np.float64)[None, None, :] / pred.shape[0]
    total = pred.sum(axis=0)
    sst = (y_c * y_c).sum(axis=0)
    num = (2 * y_c[None] * pred - total[None] * pred).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / sst
    out[:, ~(sst > 0)] = np.nan
    return out
