"""Gradient refinement of banded ridge hyperparameters (himalaya's hyper-gradient, monotone).

Pure array functions (numpy or torch through :mod:`neuroprobe.solvers.backend`); the option
``refine="gradient"`` of :class:`neuroprobe.estimators.BandedRidgeEncoder` runs them after the
search of :func:`neuroprobe.solvers.banded.banded_ridge_cv`.

Parameterisation
----------------
Target ``t`` has one log band weight per band, ``delta_b = log(gamma_b / alpha)`` (himalaya's
``deltas``): the model is kernel ridge with kernel ``sum_b exp(delta_b) K_b`` and penalty 1, the
same model as the banded search's ridge on ``[sqrt(gamma_b) X_b]`` with penalty ``alpha``
(``gamma = exp(delta) / sum exp(delta)``, ``alpha = 1 / sum exp(delta)``). Every delta is free,
so the refinement moves the band ratios and the global scale at once.

Objective and gradient
----------------------
The mean over CV folds of the held-out score (``"r2"``, ``"explained_variance"``,
``"correlation"``, or ``"neg_mse"``), maximised. With ``A = K_tr(delta) + I``, ``c = A^-1 y_tr``
(y centred on the training rows with an intercept), ``pred = K_te(delta) c`` and ``v`` the
derivative of the fold's score in ``pred``, implicit differentiation of the ridge solution gives

    d score / d delta_b = exp(delta_b) (v^T K_te,b c - q^T K_tr,b c),   q = A^-1 K_te^T v

(one more solve with the same Cholesky factor). When ``n_features < n_train`` the same
quantities come from the primal system ``(D G D + I) beta' = D X_tr^T y`` with
``D = diag(sqrt(exp(delta_band)))``: ``d score / d delta_b = sum_{j in b} q'_j beta'_j``.
Autograd through the batched solves would give the same numbers but keep the factor, the
solves and every intermediate of the graph per target; the closed form needs the factor, two
triangular solves and a few shared GEMMs.

Cost
----
Each evaluation (score and gradient together) costs, per target, ``n_folds`` Cholesky
factorisations of an ``m x m`` matrix, ``m = min(n_train, n_features)``: about
``n_folds * m^3 / 3`` flops, plus ``O(n_folds * n_bands * m^2)`` for forming the system and the
GEMMs shared by the batch; memory ``batch * m^2`` floats. Meant for modest ``n`` or a subset of
targets (e.g. the best voxels of the search): 500 targets, ``n_train = 480``, 5 folds is about
``1e11`` flops per evaluation.

Optimiser
---------
Per target, quasi-Newton (BFGS on the ``n_bands`` deltas, projected on the box ``bounds``) with
step halving: a trial point is accepted only when it raises the target's mean CV score, so
every accepted iterate is the best so far, and the result is never worse than the start (the
start is scored exactly, zero band weights included). Targets whose step has shrunk below
``tol`` leave the batch.
"""

from __future__ import annotations

import numpy as np

from neuroprobe._utils import memory_budget
from neuroprobe.solvers.banded import band_columns

__all__ = [
    "REFINE_SCORINGS",
    "RefinePlan",
    "make_refine_plan",
    "deltas_from",
    "gammas_alphas_from",
    "cv_score_gradient",
    "refine_deltas",
    "refit_deltas",
]

REFINE_SCORINGS = ("r2", "explained_variance", "correlation", "neg_mse")


# --------------------------------------------------------------------------- parameters
def deltas_from(gammas, alphas):
    """``log(gamma / alpha)``: (n_targets, n_bands) log band weights (``-inf`` for zero weights).

    Parameters
    ----------
    gammas : array (n_targets, n_bands)
        Band weights on the simplex.
    alphas : array (n_targets,)
    """
    g = np.asarray(gammas, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(g) - np.log(np.asarray(alphas, dtype=np.float64))[:, None]


def gammas_alphas_from(deltas):
    """The simplex weights (n_targets, n_bands) and global alphas (n_targets,) of ``deltas``."""
    d = np.asarray(deltas, dtype=np.float64)
    top = d.max(axis=1, keepdims=True)
    e = np.exp(d - top)
    total = e.sum(axis=1, keepdims=True)
    return e / total, np.exp(-top[:, 0]) / total[:, 0]


# --------------------------------------------------------------------------- plan
class RefinePlan:
    """Fold systems shared by every target (:func:`make_refine_plan`)."""

    def __init__(self, backend, kind, band_of, n_bands, x_mean, fit_intercept, dtype):
        self.backend = backend
        self.kind = kind
        self.band_of = band_of
        self.n_bands = n_bands
        self.x_mean = x_mean
        self.fit_intercept = fit_intercept
        self.dtype = dtype
        self.folds = []  # (train, test, parts) with backend arrays
        self.full = None  # parts of the full data (refit)
        self.onehot = None  # primal: (n_features, n_bands) band membership
        self.x_c = None  # X centred on all samples (backend)

    @property
    def n_folds(self):
        return len(self.folds)

    @property
    def size(self):
        """Side of each target's system (``n_train`` or ``n_features``)."""
        parts = self.folds[0][2] if self.folds else self.full
        return int(parts[0].shape[-1])


def _parts(be, kind, bands, x_tr, x_te):
    """Kernel: stacked K_tr (k, m, m), K_te (k, n_te, m); primal: G, X_tr, X_te."""
    if kind == "kernel":
        k_tr = np.stack([x_tr[:, b] @ x_tr[:, b].T for b in bands])
        k_te = None if x_te is None else np.stack([x_te[:, b] @ x_tr[:, b].T for b in bands])
        return (be.asarray(k_tr), None if k_te is None else be.asarray(k_te))
    return (be.asarray(x_tr.T @ x_tr), be.asarray(x_tr),
            None if x_te is None else be.asarray(x_te))


def make_refine_plan(X, bands, folds=None, *, fit_intercept=True, backend, dtype=np.float64,
                     solver="auto"):
    """Per-band Gram matrices (kernel) or the cross-product (primal) of every fold.

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
    bands : list of int arrays
        The columns of each band (disjoint, together every column).
    folds : list of (train, test) index arrays, or None (refit only)
    fit_intercept : bool
        Centre X (and the targets) on each fold's training rows.
    backend : backend from :func:`neuroprobe.solvers.backend.get_backend`
    dtype : numpy dtype, default float64
        The CV score differences the refinement compares are small: float64 by default.
    solver : {"auto", "primal", "kernel"}
        ``auto``: primal when n_features < the smallest training fold, else kernel.

    Returns
    -------
    RefinePlan
    """
    X = np.asarray(X, dtype=dtype)
    n, p = X.shape
    bands, band_of = band_columns(bands, p)
    folds = [(np.asarray(tr), np.asarray(te)) for tr, te in (folds or [])]
    n_train = min((len(tr) for tr, _ in folds), default=n)
    kind = solver if solver != "auto" else ("primal" if p < n_train else "kernel")
    if kind not in ("primal", "kernel"):
        raise ValueError(f"solver must be 'auto', 'primal' or 'kernel'; got {solver!r}")
    x_mean = X.mean(axis=0) if fit_intercept else np.zeros(p, dtype=dtype)
    plan = RefinePlan(backend, kind, band_of, len(bands), x_mean, fit_intercept, dtype)
    if kind == "primal":
        onehot = np.zeros((p, len(bands)), dtype=dtype)
        onehot[np.arange(p), band_of] = 1
        plan.onehot = backend.asarray(onehot)
    for train, test in folds:
        mean = X[train].mean(axis=0) if fit_intercept else 0
        plan.folds.append((train, test, _parts(backend, kind, bands, X[train] - mean,
                                               X[test] - mean)))
    x_c = X - x_mean
    plan.full = _parts(backend, kind, bands, x_c, None)
    plan.x_c = plan.full[1] if kind == "primal" else backend.asarray(x_c)
    return plan


# --------------------------------------------------------------------------- linear algebra
def _cholesky(be, a):
    """Lower Cholesky factors of a batch (T, m, m), overwriting ``a``; ok (T,) bool."""
    if be.name == "torch":
        factor, info = be.torch.linalg.cholesky_ex(a)
        return factor, be.to_numpy(info) == 0
    from scipy.linalg import get_lapack_funcs

    potrf, = get_lapack_funcs(("potrf",), (a,))
    ok = np.ones(len(a), dtype=bool)
    for t in range(len(a)):  # one LAPACK call of m^3 / 3 flops per target
        c, info = potrf(a[t], lower=True, overwrite_a=True, clean=False)
        a[t] = c
        ok[t] = info == 0
    return a, ok


def _cho_solve(be, factor, ok, b):
    """``A^-1 b`` per target (b: (T, m)); zero where the factorisation failed."""
    if be.name == "torch":
        out = be.torch.cholesky_solve(b[:, :, None], factor)[:, :, 0]
        out[be.asarray(~ok)] = 0
        return out
    from scipy.linalg import get_lapack_funcs

    potrs, = get_lapack_funcs(("potrs",), (factor,))
    out = np.zeros_like(b)
    for t in np.flatnonzero(ok):
        out[t] = potrs(factor[t], b[t], lower=True)[0]
    return out


def _add_identity(be, a):
    if be.name == "torch":
        a.diagonal(dim1=-2, dim2=-1).add_(1)
    else:
        a = np.ascontiguousarray(a)
        i = np.arange(a.shape[-1])
        a[:, i, i] += 1
    return a


def _exp(be, x):
    return be.torch.exp(x) if be.name == "torch" else np.exp(x)


def _sqrt(be, x):
    return be.torch.sqrt(x) if be.name == "torch" else np.sqrt(x)


def _system(plan, parts, e):
    """The batch of systems ``A`` (T, m, m) at band weights ``e = exp(delta)`` (backend)."""
    be = plan.backend
    if plan.kind == "kernel":
        k = parts[0]
        m = k.shape[-1]
        a = (e @ k.reshape(k.shape[0], -1)).reshape(e.shape[0], m, m)
    else:
        d = _sqrt(be, e)[:, be.asarray(plan.band_of)]
        a = parts[0][None] * d[:, :, None] * d[:, None, :]
    return _add_identity(be, a)


# --------------------------------------------------------------------------- scores
def _fold_score(y, pred, scoring):
    """Score (T,), its derivative in ``pred`` (T, n_te) and validity (T,), target-first."""
    n_te = y.shape[1]
    if scoring == "neg_mse":
        r = y - pred
        return -(r * r).sum(axis=1) / n_te, 2 * r / n_te, None
    y_c = y - y.mean(axis=1, keepdims=True)
    ss = (y_c * y_c).sum(axis=1)
    valid = ss > 0
    ss_safe = ss + ~valid
    if scoring == "correlation":
        p_c = pred - pred.mean(axis=1, keepdims=True)
        ss_p = (p_c * p_c).sum(axis=1)
        good = ss_p > 0
        ss_p = ss_p + ~good
        norm = (ss_p * ss_safe) ** 0.5
        score = (p_c * y_c).sum(axis=1) / norm * good
        grad = (y_c / norm[:, None] - score[:, None] * p_c / ss_p[:, None]) * good[:, None]
        return score, grad, valid
    r = y - pred
    if scoring == "explained_variance":
        r = r - r.mean(axis=1, keepdims=True)
    elif scoring != "r2":
        raise ValueError(f"scoring must be one of {REFINE_SCORINGS}; got {scoring!r}")
    return 1 - (r * r).sum(axis=1) / ss_safe, 2 * r / ss_safe[:, None], valid


def _targets_first(plan, y):
    """Backend (T, n) of the targets as the plan's dtype."""
    return plan.backend.asarray(np.ascontiguousarray(np.asarray(y, dtype=plan.dtype).T))


def cv_score_gradient(plan, Y, deltas, scoring="r2", *, gradient=True):
    """Mean CV score of every target at its deltas, and its gradient in the deltas.

    Parameters
    ----------
    plan : RefinePlan with folds
    Y : ndarray (n_samples, n_targets)
        One batch of targets.
    deltas : array (n_targets, n_bands)
        ``log(gamma / alpha)`` per target (``-inf``: a band left out).
    scoring : {"r2", "explained_variance", "correlation", "neg_mse"}
    gradient : bool
        Also return the gradient (one more solve per fold).

    Returns
    -------
    score : ndarray (n_targets,)
        Mean held-out score over the folds where the target varies (NaN where it never does;
        ``-inf`` where a system could not be factorised).
    grad : ndarray (n_targets, n_bands) or None
    """
    be = plan.backend
    deltas = np.asarray(deltas, dtype=np.float64)
    e_np = np.exp(deltas).astype(plan.dtype)
    e = be.asarray(e_np)
    yt = _targets_first(plan, Y)
    T, k = deltas.shape
    total = np.zeros(T)
    count = np.zeros(T)
    grad = np.zeros((T, k)) if gradient else None
    ok_all = np.ones(T, dtype=bool)
    for train, test, parts in plan.folds:
        y_tr, y_te = yt[:, be.asarray(train)], yt[:, be.asarray(test)]
        mean = y_tr.mean(axis=1, keepdims=True) if plan.fit_intercept else 0 * y_tr[:, :1]
        y_tr = y_tr - mean
        factor, ok = _cholesky(be, _system(plan, parts, e))
        ok_all &= ok
        if plan.kind == "kernel":
            k_tr, k_te = parts
            c = _cho_solve(be, factor, ok, y_tr)
            p_b = [c @ k_te[b].T for b in range(k)]  # (T, n_te) per band
            pred = p_b[0] * e[:, :1]
            for b in range(1, k):
                pred = pred + p_b[b] * e[:, b:b + 1]
        else:
            _, x_tr, x_te = parts
            d = _sqrt(be, e)[:, be.asarray(plan.band_of)]
            c = _cho_solve(be, factor, ok, (y_tr @ x_tr) * d)  # beta' (T, p)
            pred = (c * d) @ x_te.T
        score, v, valid = _fold_score(y_te, pred + mean, scoring)
        valid_np = np.ones(T, dtype=bool) if valid is None else be.to_numpy(valid)
        total += np.where(valid_np, be.to_numpy(score), 0)
        count += valid_np
        if not gradient:
            continue
        if plan.kind == "kernel":
            m_b = [v @ k_te[b] for b in range(k)]  # (T, m): K_te,b^T v
            z = m_b[0] * e[:, :1]
            for b in range(1, k):
                z = z + m_b[b] * e[:, b:b + 1]
            q = _cho_solve(be, factor, ok, z)
            g = np.stack([be.to_numpy((m_b[b] * c).sum(axis=1) - (q * (c @ k_tr[b])).sum(axis=1))
                          for b in range(k)], axis=1) * e_np
        else:
            q = _cho_solve(be, factor, ok, (v @ x_te) * d)
            g = be.to_numpy((q * c) @ plan.onehot)
        grad += np.where(valid_np[:, None], g, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
        if gradient:
            grad /= np.maximum(count, 1)[:, None]
    out[count == 0] = np.nan
    out[~ok_all | ~np.isfinite(out) & (count > 0)] = -np.inf
    if gradient:
        grad[~np.isfinite(out)] = 0
        grad[~np.all(np.isfinite(grad), axis=1)] = 0
    return out, grad


# --------------------------------------------------------------------------- optimiser
def _project(direction, delta, lo, hi):
    """Zero the components pushing through an active bound."""
    blocked = ((delta <= lo) & (direction < 0)) | ((delta >= hi) & (direction > 0))
    return np.where(blocked, 0.0, direction)


def _newton_direction(h, g):
    d = -np.einsum("tij,tj->ti", h, g)
    bad = (d * g).sum(axis=1) >= 0  # not a descent direction of the loss (-score)
    return d, bad


def refine_deltas(plan, Y, gammas, alphas, *, scoring="r2", n_iter=20, batch=None,
                  gamma_floor=1e-3, bounds=None, tol=1e-3, max_step=2.0):
    """Refine each target's band weights and alpha by monotone gradient steps on the CV score.

    Parameters
    ----------
    plan : RefinePlan with folds
    Y : ndarray (n_samples, n_targets), or callable ``cols -> ndarray`` (``cols`` a slice of
        the targets)
    gammas : array (n_targets, n_bands)
        Starting band weights (the search's best, on the simplex).
    alphas : array (n_targets,)
        Starting global alphas.
    scoring : {"r2", "explained_variance", "correlation", "neg_mse"}
    n_iter : int
        Evaluations (score and gradient at one trial point per target) after the start (0:
        score the start only). The start with zero weights raised to ``gamma_floor`` is the
        first trial point.
    batch : int, optional
        Targets per batch (default: from the memory budget, ``3 * batch * m^2`` floats).
    gamma_floor : float
        Zero (or tiny) starting weights are raised to this fraction before the first step (a
        weight of exactly zero has zero gradient); the start itself is scored as given.
    bounds : (float, float), optional
        Box of the deltas; default: the starting deltas' range widened by ``e^10`` each side.
    tol : float
        A target stops once its step (max over bands, in log units) falls below ``tol``.
    max_step : float
        Largest change of any delta in one step (log units).

    Returns
    -------
    dict
        ``gammas`` (n_targets, n_bands), ``alphas`` (n_targets,), ``deltas``, ``score`` (mean CV
        score at the result), ``score_start`` (at the start), ``n_evals`` (n_targets,).
    """
    if scoring not in REFINE_SCORINGS:
        raise ValueError(f"scoring must be one of {REFINE_SCORINGS}; got {scoring!r}")
    read = Y if callable(Y) else (lambda cols: Y[:, cols])
    n_targets = len(gammas)
    start = deltas_from(gammas, alphas)
    floor = np.log(np.maximum(np.asarray(gammas, dtype=np.float64), gamma_floor))
    clipped = floor - np.log(np.asarray(alphas, dtype=np.float64))[:, None]
    if bounds is None:
        bounds = (float(clipped.min()) - 10.0, float(clipped.max()) + 10.0)
    lo, hi = map(float, bounds)
    clipped = np.clip(clipped, lo, hi)
    if batch is None:
        m = plan.size
        batch = max(1, int(memory_budget() // (3 * m * m * np.dtype(plan.dtype).itemsize)))
    out_delta = start.copy()
    score_start = np.full(n_targets, np.nan)
    score_out = np.full(n_targets, np.nan)
    n_evals = np.zeros(n_targets, dtype=np.intp)
    for s in range(0, n_targets, int(batch)):
        cols = slice(s, min(s + int(batch), n_targets))
        y = np.asarray(read(cols))
        res = _refine_batch(plan, y, start[cols], clipped[cols], scoring, n_iter, lo, hi, tol,
                            max_step)
        out_delta[cols], score_out[cols], score_start[cols], n_evals[cols] = res
    g, a = gammas_alphas_from(out_delta)
    return {"gammas": g, "alphas": a, "deltas": out_delta, "score": score_out,
            "score_start": score_start, "n_evals": n_evals}


def _refine_batch(plan, y, start, delta, scoring, n_iter, lo, hi, tol, max_step):
    T, k = delta.shape
    if n_iter == 0:  # the start as given
        score = cv_score_gradient(plan, y, start, scoring, gradient=False)[0]
        return start.copy(), score, score.copy(), np.ones(T, dtype=np.intp)
    score, grad = cv_score_gradient(plan, y, delta, scoring)
    n_evals = np.ones(T, dtype=np.intp)
    moved = np.any(delta != start, axis=1)
    score_start = score.copy()
    if np.any(moved):
        score_start[moved] = cv_score_gradient(plan, y[:, moved], start[moved], scoring,
                                               gradient=False)[0]
    # loss = -score; the BFGS inverse Hessian of the loss, per target
    h = np.tile(np.eye(k), (T, 1, 1))
    g_inf = np.abs(grad).max(axis=1)
    h /= np.where(g_inf > 0, g_inf, 1.0)[:, None, None]
    direction = _project(np.einsum("tij,tj->ti", h, grad), delta, lo, hi)  # ascent
    step = np.ones(T)
    fresh = np.ones(T, dtype=bool)  # direction is the (scaled) gradient
    active = np.isfinite(score) & (np.abs(direction).max(axis=1) > 0)
    for _ in range(n_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        move = step[idx, None] * direction[idx]
        size = np.abs(move).max(axis=1)
        move *= np.minimum(1.0, max_step / np.maximum(size, 1e-300))[:, None]
        trial = np.clip(delta[idx] + move, lo, hi)
        t_score, t_grad = cv_score_gradient(plan, y[:, idx], trial, scoring)
        n_evals[idx] += 1
        better = t_score > score[idx]
        acc, rej = idx[better], idx[~better]
        # accepted: BFGS update of the inverse Hessian of -score, new direction
        if acc.size:
            s_vec = trial[better] - delta[acc]
            y_vec = -(t_grad[better] - grad[acc])
            sy = (s_vec * y_vec).sum(axis=1)
            hy = np.einsum("tij,tj->ti", h[acc], y_vec)
            ok = sy > 1e-12 * np.sqrt((s_vec ** 2).sum(1) * (y_vec ** 2).sum(1))
            rho = np.where(ok, 1.0 / np.where(ok, sy, 1.0), 0.0)
            yhy = (y_vec * hy).sum(axis=1)
            upd = (rho * (1 + rho * yhy))[:, None, None] * s_vec[:, :, None] * s_vec[:, None, :] \
                - rho[:, None, None] * (hy[:, :, None] * s_vec[:, None, :]
                                        + s_vec[:, :, None] * hy[:, None, :])
            h[acc] += upd
            delta[acc], score[acc], grad[acc] = trial[better], t_score[better], t_grad[better]
            d, bad = _newton_direction(h[acc], -grad[acc])
            if np.any(bad):  # reset to the scaled gradient
                b = acc[bad]
                gi = np.abs(grad[b]).max(axis=1)
                h[b] = np.eye(k)[None] / np.where(gi > 0, gi, 1.0)[:, None, None]
                d[bad] = np.einsum("tij,tj->ti", h[b], grad[b])
            direction[acc] = _project(d, delta[acc], lo, hi)
            step[acc] = 1.0
            fresh[acc] = bad
            stop = np.abs(s_vec).max(axis=1) < tol
            active[acc[stop]] = False
        # rejected: halve the step; when it is tiny, restart from the gradient once
        if rej.size:
            step[rej] *= 0.5
            tiny = rej[step[rej] * np.abs(direction[rej]).max(axis=1) < tol]
            restart = tiny[~fresh[tiny]]
            gi = np.abs(grad[restart]).max(axis=1)
            h[restart] = np.eye(k)[None] / np.where(gi > 0, gi, 1.0)[:, None, None]
            direction[restart] = _project(grad[restart] / np.where(gi > 0, gi, 1.0)[:, None],
                                          delta[restart], lo, hi)
            step[restart] = 1.0
            fresh[restart] = True
            active[tiny[np.isin(tiny, restart, invert=True)]] = False
        active &= np.abs(direction).max(axis=1) > 0
    # never worse than the start as given (zero weights included)
    keep = ~(score > score_start) | ~np.isfinite(score)
    delta[keep] = start[keep]
    score[keep] = score_start[keep]
    return delta, score, score_start, n_evals


# --------------------------------------------------------------------------- refit
def refit_deltas(plan, Y, deltas, *, batch=None):
    """Coefficients on all samples at each target's deltas (one Cholesky per target).

    Parameters
    ----------
    plan : RefinePlan
    Y : ndarray (n_samples, n_targets), or callable ``cols -> ndarray`` (``cols`` a slice)
    deltas : array (n_targets, n_bands)
    batch : int, optional
        Targets per batch.

    Returns
    -------
    coef : ndarray (n_features, n_targets)
        In the original feature space, the plan's dtype.
    intercept : ndarray (n_targets,)
    """
    be = plan.backend
    read = Y if callable(Y) else (lambda cols: Y[:, cols])
    deltas = np.asarray(deltas, dtype=np.float64)
    n_targets = len(deltas)
    p = len(plan.band_of)
    m = plan.size if plan.folds else plan.full[0].shape[-1]
    if batch is None:
        batch = max(1, int(memory_budget() // (3 * m * m * np.dtype(plan.dtype).itemsize)))
    coef = np.zeros((p, n_targets), dtype=plan.dtype)
    y_mean = np.zeros(n_targets)
    for s in range(0, n_targets, int(batch)):
        cols = slice(s, min(s + int(batch), n_targets))
        e = be.asarray(np.exp(deltas[cols]).astype(plan.dtype))
        y = np.asarray(read(cols), dtype=np.float64)
        if plan.fit_intercept:
            y_mean[cols] = y.mean(axis=0)
        yt = _targets_first(plan, y - y_mean[cols])
        factor, ok = _cholesky(be, _system(plan, plan.full, e))
        d = _sqrt(be, e)[:, be.asarray(plan.band_of)]
        if plan.kind == "kernel":  # dual c: coef_j = gamma_band(j) / alpha * x_j^T c
            w = (_cho_solve(be, factor, ok, yt) @ plan.x_c) * (d * d)
        else:
            w = _cho_solve(be, factor, ok, (yt @ plan.x_c) * d) * d
        coef[:, cols] = be.to_numpy(w).T
    return coef, (y_mean - plan.x_mean @ coef).astype(plan.dtype)
