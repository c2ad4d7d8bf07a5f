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
  re-slices them per candidate and runs the alpha loop in batches. The alphas' weights
  ``1 / (s + alpha)`` are factorised to rank ``k`` (about 8 of 20 alphas;
  :func:`neuroprobe.solvers.ridge.alpha_factors`, tolerance ``factor_rtol``): per target and
  fold one product of ``k n_test n_train`` gives the ``k`` factor predictions, and every
  alpha's score follows in closed form from their per-target (k x k) Gram matrix
  (:func:`_kernel_gram_scores`), no alpha's predictions formed. The factors only rank the
  alphas; the refit uses the chosen alpha exactly. numpy: the folds' eigendecompositions and
  the target chunks run in parallel threads, one BLAS thread each (:func:`_thread_pool`).

Each target keeps the (candidate, alpha) of highest mean CV score (ties: the first candidate, as
himalaya); the refit on all samples decomposes only the candidates some target chose.
"""

from __future__ import annotations

import contextlib
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


#: default relative tolerance of the alpha factorisation of float32 kernel folds (see
#: :func:`banded_ridge_cv`, ``factor_rtol``)
FACTOR_RTOL = 1e-4


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


def band_columns(bands, n_features):
    """``(bands, band_of)``: each band's columns as an int array and the band of every column.

    Raises ``ValueError`` when some column of X is in no band (the solvers need a partition).
    """
    bands = [np.asarray(b, dtype=np.intp) for b in bands]
    band_of = np.full(n_features, -1, dtype=np.intp)
    for i, cols in enumerate(bands):
        band_of[cols] = i
    if np.any(band_of < 0):
        raise ValueError(f"bands leave {int((band_of < 0).sum())} column(s) of X unassigned")
    return bands, band_of


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
    bands, band_of = band_columns(bands, p)
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

        s, u = eigh(a, driver="evd", check_finite=False, overwrite_a=True)
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
                    cache_bytes=2**30, kernel_route="auto", factor_rtol=None):
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
        Kernel folds (:func:`_kernel_folds`): ``"resolvent"`` forms the (k * n_test, n_train)
        matrix of the ``k`` alpha factors once per fold and candidate; ``"direct"`` projects
        each batch through ``U^T y_train`` instead (cheaper when there are fewer targets than
        ``k * n_test``, the ``"auto"`` rule, decided per fold).
    factor_rtol : float, optional
        Kernel folds: relative tolerance of the low-rank factorisation of the alphas' weight
        rows (:func:`neuroprobe.solvers.ridge.alpha_factors`, in the norm of the held-out
        projection's columns): each alpha's held-out predictions move by at most about this
        fraction of their size, so every alpha's score by about ``factor_rtol`` times the
        score's scale (R^2 of the issue's benchmark: at most 6e-6 at 1e-4, 8e-5 at 1e-3 near
        the best alphas; the selected models' scores within 1e-5 of the exact selection).
        The factors only rank the alphas; :func:`banded_refit` uses the chosen alpha exactly.
        Default: ``FACTOR_RTOL`` (1e-4) for float32 plans, ``10 * eps`` (the rounding of the
        computation) for float64 ones. Larger values keep fewer factors (faster: the held-out
        product costs ``k n_test n_train`` per target and fold; ``k`` about 8 of 20 alphas at
        1e-4, 11 at float32 rounding, 7 at 1e-3).

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
    if factor_rtol is None:
        factor_rtol = FACTOR_RTOL if np.dtype(plan.dtype) == np.float32 else None
    factor = None if factor_rtol is None else float(factor_rtol)

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
    direct = {"direct": True, "resolvent": False}.get(kernel_route, n_targets)

    def work(rp, i, cols):
        yb = batch_of(i, cols)
        if plan.kind == "kernel":
            return cols, _kernel_gram_scores(be, rp, yb, scoring, pool=pool)
        return cols, _ridge.cv_scores(rp, yb, a_be, scoring)

    serial = n_jobs in (None, 1) or len(slices) == 1
    with _thread_pool(be, plan.kind == "kernel" and serial) as pool:
        for c in range(n_cand):
            if plan.kind == "kernel":
                rp = _kernel_folds(plan, candidates[c], alphas, direct, factor, pool=pool)
            else:
                rp = candidate_plan(plan, candidates[c])
            if serial:
                results = [work(rp, i, cols) for i, cols in enumerate(slices)]
            else:
                results = Parallel(n_jobs=n_jobs, prefer="threads")(
                    delayed(work)(rp, i, cols) for i, cols in enumerate(slices))
            _keep_best(c, results, const, cv, best_score, best_cand, best_alpha, alphas)
    # constant targets (never chosen): the centre (or the only candidate), the largest alpha
    best_cand[best_cand < 0] = min(plan.n_bands, n_cand - 1) if plan.n_bands > 1 else 0
    return {"best_candidate": best_cand, "best_alpha": best_alpha, "cv_scores": cv,
            "y_mean": y_mean, "const": const}


def _keep_best(c, results, const, cv, best_score, best_cand, best_alpha, alphas):
    """Record candidate ``c``'s scores (per target, at its best alpha) and keep the best."""
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


@dataclass
class _KernelFold:
    """One kernel fold of one candidate, ready to score any batch of targets.

    The held-out predictions of alpha ``a`` are ``my + sum_r left[a, r] Q_r`` with the ``k``
    factor predictions ``Q_r`` (n_test, t) of :func:`neuroprobe.solvers.ridge.alpha_factors`.
    ``op`` gives them centred on the held-out rows, stacked ``(k * n_test, t)``, and ``op_mean``
    their held-out means ``(k, t)``, as ``op @ z`` and ``op_mean @ z`` with ``z = y_train``
    (``"resolvent"``: the training mean of the targets is folded into ``op``) or
    ``z = U^T (y_train - my)`` (``"direct"``, ``u`` and ``u1 = U^T 1`` kept).
    """

    train: np.ndarray
    test: np.ndarray
    op: object
    op_mean: object
    left: object  # (n_alphas, k)
    quad: object  # (n_alphas, k * k): left[a, r] * left[a, q]
    intercept: bool = True
    u: object = None
    u1: object = None


def _kernel_folds(plan, gamma, alphas, direct, factor_rtol=None, pool=None):
    """The :class:`_KernelFold` of every fold of one candidate (a list).

    Per fold one eigendecomposition ``U s U^T`` of the candidate's training kernel, the
    held-out projection ``A = K_te,tr U``, the factors ``w_a ~= sum_r left[a, r] right_r`` of
    the weights ``1 / (s + a)`` (:func:`neuroprobe.solvers.ridge.alpha_factors`, relative in
    the norm of the columns of ``A``), and the stacked ``A diag(right_r)`` (times ``U^T``: the
    resolvent route, when ``direct`` is False, or when it is a target count of at least
    ``k * n_test``). numpy: the folds run in parallel threads, one BLAS thread each
    (:func:`_thread_pool`).
    """
    a_be = plan.backend.asarray(alphas.astype(plan.dtype))
    jobs = [(train, test, k_tr, k_te) for (train, test), (k_tr, k_te)
            in zip(plan.folds, plan.fold_parts)]
    return _parallel_lapack(plan.backend, lambda job: _kernel_fold(
        plan, gamma, *job, a_be, direct, factor_rtol), jobs, pool)


def _blas_thread_count():
    """BLAS threads numpy would use now (1 when unknown)."""
    if not _ridge._CONTROLLER:  # built once (it scans the loaded libraries)
        from threadpoolctl import ThreadpoolController

        _ridge._CONTROLLER.append(ThreadpoolController())
    info = _ridge._CONTROLLER[0].select(user_api="blas").info()
    return max([int(i.get("num_threads", 1)) for i in info] or [1])


@contextlib.contextmanager
def _thread_pool(be, enable=True):
    """A pool of as many Python threads as numpy has BLAS threads, BLAS limited to one thread
    meanwhile (None for torch, one BLAS thread, or ``enable`` False).

    The kernel search runs its independent LAPACK and BLAS calls (folds, target chunks) in
    these threads (they release the GIL): LAPACK's eigensolver gains little from a second
    thread, and multithreaded OpenBLAS calls slow down many times over on a loaded machine
    (threads waiting on each other), whereas one-thread calls side by side do not.
    """
    n = _blas_thread_count() if (enable and be.name == "numpy") else 1
    if n <= 1:
        yield None
        return
    from concurrent.futures import ThreadPoolExecutor

    with _ridge._blas_threads(1), ThreadPoolExecutor(n) as pool:
        yield pool


def _parallel_lapack(be, fn, jobs, pool=None):
    """``[fn(job) for job in jobs]``, in the threads of ``pool`` or of a new
    :func:`_thread_pool`."""
    if pool is not None:
        return list(pool.map(fn, jobs))
    with _thread_pool(be, len(jobs) > 1) as own:
        return [fn(job) for job in jobs] if own is None else list(own.map(fn, jobs))


def _kernel_fold(plan, gamma, train, test, k_tr, k_te, a_be, direct, factor_rtol):
    """One :class:`_KernelFold` (see :func:`_kernel_folds`)."""
    be = plan.backend
    R = _ridge
    s, u = _eigh_kernel(be, _weighted(plan, k_tr, gamma))
    proj = _weighted(plan, k_te, gamma) @ u  # (n_te, n_tr)
    w = R._inverse_weights(be, s, a_be)
    factors = R.alpha_factors(be, w, rtol=factor_rtol, scale=(proj * proj).sum(axis=0) ** 0.5)
    if factors is None:
        left, right = be.asarray(np.eye(w.shape[0], dtype=plan.dtype)), w
    else:
        left, right = factors
    k, n_te, n_tr = right.shape[0], proj.shape[0], proj.shape[1]
    use_direct = direct if isinstance(direct, bool) else int(direct) < k * n_te
    p_mean = proj.mean(axis=0)
    # factor predictions centred on the held-out rows: rows of A minus their mean
    op = R._bmul((proj - p_mean)[None], right[:, None, :]).reshape(k * n_te, n_tr)
    op_mean = right * p_mean[None, :]  # (k, n_tr): their held-out means
    u1 = u.sum(axis=0) if plan.fit_intercept else None
    if not use_direct:
        # resolvent: times U^T, with the training mean of y folded in (Q = N (y_tr - my) =
        # N (I - 1 1^T / n_tr) y_tr)
        ut = u.T if u1 is None else u.T - u1[:, None] * (1.0 / n_tr)
        op, op_mean, u1 = op @ ut, op_mean @ ut, None
    quad = (left[:, :, None] * left[:, None, :]).reshape(left.shape[0], k * k)
    return _KernelFold(np.asarray(train), np.asarray(test), op, op_mean, left, quad,
                       plan.fit_intercept, u if use_direct else None, u1)


def _kernel_gram_scores(be, folds, y, scoring, chunk_bytes=2**22, pool=None):
    """Mean held-out scores (n_alphas, t) over kernel folds, without any alpha's predictions.

    Per fold and chunk of targets, one GEMM gives the ``k`` factor predictions (centred on the
    held-out rows) as ``(t, k, n_test)``; their per-target Gram matrices ``G`` (k x k), their
    products ``h`` with the held-out targets and their held-out means ``qbar`` give every
    alpha's score in closed form: with ``l_a = left[a]``, the centred prediction's sum of
    squares is ``l_a G l_a``, its product with the targets ``l_a . h``, its mean
    ``my + l_a . qbar``, hence

    ``SSE_a = ss_y - 2 l_a . h + l_a G l_a + n_test (ybar - my - l_a . qbar)^2``

    (R^2), the same without the last term (explained variance), or
    ``l_a . h / sqrt(l_a G l_a ss_y)`` (correlation; constant predictions score 0 as in
    :func:`neuroprobe.solvers.ridge.score_predictions`). Cost per target: ``k n_test n_train``
    (the GEMM) plus ``k^2 n_test`` instead of ``n_alphas (k + 1) n_test``. The (fold, chunk)
    pieces run in the threads of ``pool`` when given.
    """
    numpy = be.name == "numpy"
    t = y.shape[1]
    jobs = []
    for f, fold in enumerate(folds):
        k = fold.op_mean.shape[0]
        step = max(32, chunk_bytes // (k * len(fold.test) * y.itemsize)) if numpy else t
        jobs += [(f, slice(start, min(start + step, t))) for start in range(0, t, step)]

    def job(piece):
        fold, sl = folds[piece[0]], piece[1]
        yc = y[:, sl]
        tr, te = be.asarray(fold.train), be.asarray(fold.test)
        return be.to_numpy(_fold_chunk_scores(fold, yc[tr], yc[te], scoring, len(fold.test),
                                              fold.op_mean.shape[0]))

    parts = [job(p) for p in jobs] if pool is None else list(pool.map(job, jobs))
    out = np.empty((len(folds), parts[0].shape[0], t), dtype=parts[0].dtype)
    for (f, sl), part in zip(jobs, parts):
        out[f, :, sl] = part
    return _ridge.nanmean0(out)


def _fold_chunk_scores(fold, y_tr, y_te, scoring, n_te, k):
    """Scores (n_alphas, s) of one fold for one chunk of targets (see _kernel_gram_scores)."""
    s = y_tr.shape[1]
    my = y_tr.mean(axis=0) if fold.intercept else None
    if fold.u is not None:  # direct: z = U^T (y_tr - my)
        z = fold.u.T @ y_tr
        if fold.u1 is not None:
            z = z - fold.u1[:, None] * my[None, :]
    else:
        z = y_tr
    q = (z.T @ fold.op.T).reshape(s, k, n_te)  # centred factor predictions, per target
    qbar = z.T @ fold.op_mean.T  # (s, k)
    gram = (q @ q.swapaxes(1, 2)).reshape(s, k * k)
    ybar = y_te.mean(axis=0)
    y_c = y_te - ybar
    ss_y = (y_c * y_c).sum(axis=0)
    h = (q @ y_te.T[:, :, None])[:, :, 0]  # q is centred: <y_te, q_r> = <y_c, q_r>
    cov = (h @ fold.left.T).T  # (n_alphas, s)
    var = (gram @ fold.quad.T).T
    var = var * (var > 0)
    mean = (qbar @ fold.left.T).T  # held-out mean of the prediction minus my
    if my is not None:
        mean = mean + my[None, :]
    bad = ~(ss_y > 0)
    if scoring == "r2":
        dev = ybar[None, :] - mean
        sse = ss_y[None, :] - 2 * cov + var + n_te * dev * dev
        out = 1.0 - sse / (ss_y + bad)[None, :]
    elif scoring == "explained_variance":
        out = 1.0 - (ss_y[None, :] - 2 * cov + var) / (ss_y + bad)[None, :]
    elif scoring == "correlation":
        tol = (_ridge.CONSTANT_RTOL * _ridge._eps(var)) ** 2 * n_te
        const = ~(var > tol * (mean * mean))
        ok = ~const & ~bad[None, :]
        out = cov / ((var * ss_y[None, :]) ** 0.5 + ~ok)
        out[const] = 0.0
    else:
        raise ValueError(f"scoring must be one of {_ridge.SCORINGS}; got {scoring!r}")
    out[:, bad] = float("nan")
    return out


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
    used = np.unique(best_candidate)
    group = max(1, _blas_thread_count()) if be.name == "numpy" else 1
    for g in range(0, len(used), group):  # a few decompositions at a time, in parallel threads
        chosen = used[g:g + group]
        plans = _parallel_lapack(be, lambda c: candidate_plan(plan, candidates[c], full=True),
                                 list(chosen))
        for c, rp in zip(chosen, plans):
            _refit_candidate(plan, rp, read, candidates[c], np.flatnonzero(best_candidate == c),
                             best_alpha, batch, out, y_mean)
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


def _refit_candidate(plan, rp, read, gamma, targets, best_alpha, batch, out, y_mean):
    """Dual (kernel) or primal coefficients of the ``targets`` of one candidate, into ``out``."""
    be = plan.backend
    d = None if plan.kind == "kernel" else _scales(plan, gamma)
    for start in range(0, len(targets), batch):
        cols = targets[start:start + batch]
        y, mean = _centred_batch(plan, read, cols)
        y_mean[cols] = mean
        a = be.asarray(best_alpha[cols].astype(plan.dtype))
        if d is None:
            w = _ridge.refit_dual(rp, be.asarray(y), a)
        else:
            w = _ridge.refit(rp, be.asarray(y), a) * d[:, None]
        out[:, cols] = be.to_numpy(w)


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
