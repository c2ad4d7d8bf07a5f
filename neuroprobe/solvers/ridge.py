"""Ridge regression with per-target regularisation, cross-validated at matrix-product speed.

Pure array functions (numpy or torch through :mod:`neuroprobe.solvers.backend`); the scikit-learn
wrapper is :class:`neuroprobe.estimators.VoxelwiseEncoder`.

Algorithm (one decomposition of X per fold, targets in batches)
----------------------------------------------------------------
X is centred once (``Xg``); each batch of targets is centred by its own mean (the full Y is never
copied). For every CV fold:

* ``primal`` (n_features <= n_samples): the eigendecomposition ``V s V^T`` of the fold's centred
  ``X_tr^T X_tr``, which is the full ``X^T X`` minus the held-out rows' part (no pass over the
  training rows). The fold's ``X_tr^T Y_tr`` is likewise the full ``X^T Y`` of the batch minus the
  held-out part. Held-out predictions for alpha ``a`` are ``A diag(1 / (s + a)) V^T X_tr^T Y_tr``
  with ``A = (X_te - mean_tr) V``.
* ``kernel`` (n_features > n_samples): the eigendecomposition ``U s U^T`` of the fold's centred
  Gram matrix ``K_tr`` (sliced from one full centred ``X X^T``, accumulated over feature blocks
  without a centred copy of X; memory n x n, never p x p); predictions are
  ``K_te,tr U diag(1 / (s + a)) U^T Y_tr``. The (n_alphas * n_test, n_train) matrix of all
  alphas is formed once per fold (it does not depend on the targets), so each target costs one
  GEMM row-block of ``n_alphas * n_test * n_train``. The refit keeps dual coefficients
  ``U diag(1 / (s + a_t)) U^T y`` (:func:`refit_dual`); primal coefficients ``X_c^T dual`` only
  when asked for (:func:`dual_to_primal`).

In both cases the held-out predictions of every alpha and every target of a batch come from one
(batched) matrix product; the scores of all alphas follow elementwise. Leave-one-out (``cv=None``)
uses the closed form ``e_loo = (y - y_hat) / (1 - h)`` with the hat-matrix diagonal ``h`` of every
alpha, from the single full-data decomposition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from neuroprobe.solvers.scoring import CONSTANT_RTOL, _eps, score_predictions  # noqa: F401
from neuroprobe.solvers.scoring import SCORINGS as _SCORING_KERNELS

DEFAULT_ALPHAS = np.logspace(-2, 7, 10)
SCORINGS = tuple(_SCORING_KERNELS)


# --------------------------------------------------------------------------- decompositions
def _inverse_weights(xb, s, alphas, kernel_scaled=False):
    """(n_alphas, r) weights ``1 / (s + a)`` (or ``s / (s + a)``), pseudo-inverse at a = 0."""
    eps = np.finfo(np.float32 if str(s.dtype).endswith("float32") else np.float64).eps
    tol = float(s.max()) * eps * max(s.shape[0], 1) * 10 if s.shape[0] else 0.0
    den = s[None, :] + alphas[:, None]
    ok = den > tol
    w = 1.0 / (den + ~ok)
    if kernel_scaled:
        w = w * s[None, :]
    w[~ok] = 0.0
    return w


def alpha_factors(be, w, factor=10.0, *, rtol=None, scale=None):
    """``(left, right)`` with ``w ~= left @ right`` (n_alphas x k, k x r), or None when k would
    not be smaller than the number of alphas.

    The rows ``1 / (s + alpha)`` of the alphas form a Cauchy-like matrix, numerically of low
    rank: after scaling each row to unit norm its singular values fall below
    ``factor * eps(dtype)`` of the largest after about 9 of 20 alphas spanning 9 decades in
    float32 (about 14 in float64). Truncating there changes each alpha's held-out predictions by
    a relative ``~factor * eps`` (the rounding of the computation itself) and divides the
    dominant product of the kernel folds (``n_alphas * n_test * n_train`` per target) by
    ``n_alphas / k``. ``rtol`` (optional) replaces ``factor * eps`` as the cut.

    ``scale`` (optional, (r,) non-negative): factorise ``w diag(scale)`` instead, so that the
    truncation error of each row is relative in the ``scale``-weighted norm (with ``scale_j``
    the norm of the column of the held-out projection that weight ``j`` multiplies, a relative
    bound on each alpha's held-out predictions, blind to directions that predict nothing);
    ``right`` is returned for ``w`` itself (zero where ``scale`` is 0).
    """
    wn = be.to_numpy(w).astype(np.float64)
    if scale is not None:
        scale = be.to_numpy(scale).astype(np.float64)
        wn = wn * scale[None, :]
    n_alphas = wn.shape[0]
    if n_alphas < 4:
        return None
    norms = np.linalg.norm(wn, axis=1)
    norms[norms == 0] = 1.0
    u, sv, vt = np.linalg.svd(wn / norms[:, None], full_matrices=False)
    eps = np.finfo(np.float32 if str(w.dtype).endswith("float32") else np.float64).eps
    k = int((sv > sv[0] * (factor * eps if rtol is None else rtol)).sum())
    if k >= n_alphas - 1:
        return None
    dtype = be.to_numpy(w[:1, :1]).dtype
    left = (u[:, :k] * sv[:k] * norms[:, None]).astype(dtype)
    right = vt[:k]
    if scale is not None:
        pos = scale > 0
        right = np.where(pos[None, :], right / np.where(pos, scale, 1.0)[None, :], 0.0)
    return be.asarray(left), be.asarray(np.ascontiguousarray(right).astype(dtype))



@dataclass
class FoldDecomposition:
    """One CV fold: its eigendecomposition and the held-out projection ``A``."""

    train: np.ndarray
    test: np.ndarray
    kind: str
    eigvals: object
    eigvecs: object
    proj_test: object
    x_mean: object = None  # primal: training-fold mean of the centred X
    x_test: object = None  # primal: held-out rows of the centred X
    moments: bool = False  # primal: score from (r x r) moments instead of predictions
    test_mean: object = None  # primal: mean of the held-out rows of the centred X
    gram_test: object = None  # primal: A_v^T A_v, A_v = (X_te - test_mean) V
    offset: object = None  # primal: (test_mean - x_mean) V
    resolvent: object = None  # kernel: cached (alphas, M, c, left), see _kernel_resolvent


@dataclass
class RidgePlan:
    """Everything about X that ridge needs for any batch of targets.

    Built once by :func:`make_plan`; the per-batch functions only read it.
    """

    backend: object
    X: object  # centred X (primal), X as given (kernel: ``centred`` is False); backend array
    x_mean: np.ndarray  # column means of the original X (numpy)
    kind: str
    folds: list | None  # None: leave-one-out
    full_eigvals: object = None
    full_eigvecs: object = None  # V (primal) or U (kernel)
    full_proj: object = None  # A = X V (primal) or U (kernel), for leave-one-out
    fit_intercept: bool = True
    centred: bool = True  # whether ``X`` is already centred
    mean_proj: object = None  # kernel: (X - x_mean) @ x_mean, for the intercept

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]


def _clip(s):
    s[s < 0] = 0
    return s


_CONTROLLER = []


def _blas_threads(limit):
    """Context manager limiting BLAS threads (the controller is built once: it scans libraries)."""
    import contextlib

    if limit is None:
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=limit, user_api="blas")


def _eigh(backend, a):
    """Symmetric eigendecomposition; numpy runs it in float64 (X^T X squares the condition)."""
    if backend.name == "numpy":
        # small LAPACK calls are much slower multithreaded (thread sync, shared machines)
        with _blas_threads(1 if a.shape[0] <= 512 else None):
            s, v = np.linalg.eigh(a.astype(np.float64))
        return _clip(s.astype(a.dtype)), v.astype(a.dtype)
    s, v = backend.eigh(a)
    return _clip(s), v


def _feature_block(n_rows, itemsize, n_features, target=32 * 2**20):
    """Features per block so that one block of ``n_rows`` rows takes about ``target`` bytes."""
    return int(max(256, min(n_features, target // max(1, n_rows * itemsize))))


def _centred_block(X, sl, mean, buf):
    """``X[:, sl] - mean[sl]`` as a C-contiguous array, reusing the flat numpy buffer ``buf``.

    Reusing one cache-sized buffer avoids a fresh allocation (page faults) per block.
    """
    if not isinstance(X, np.ndarray):
        return X[:, sl] - mean[sl] if mean is not None else X[:, sl]
    w = sl.stop - sl.start
    out = buf[: X.shape[0] * w].reshape(X.shape[0], w)
    if mean is not None:
        np.subtract(X[:, sl], mean[sl], out=out)
    else:
        out[...] = X[:, sl]
    return out


def centred_cross_gram(backend, A, B, mean, block=None, apply=None):
    """``(A - mean) @ (B - mean).T`` accumulated over feature blocks, shape (n_a, n_b).

    Neither centred matrix is formed whole: one cache-sized block of columns of each at a time
    (about 4 MB, in reused buffers), so memory is ``n_a * n_b`` plus the blocks. ``A is B`` uses
    the symmetric product. Centring before the product avoids the float32 cancellation of
    ``A B^T - ...`` when feature means are large. With ``apply`` (a feature vector), also
    returns ``(A - mean) @ apply`` from the same blocks: ``(gram, applied)``.
    """
    n_a, p = A.shape
    same = A is B
    itemsize = 4 if str(A.dtype).endswith("float32") else 8
    if block is None:
        block = _feature_block(max(n_a, B.shape[0]), itemsize, p, target=4 * 2**20)
    mean = backend.asarray(mean) if mean is not None else None
    buf_a = buf_b = None
    if isinstance(A, np.ndarray):
        dtype = np.result_type(A.dtype, mean.dtype if mean is not None else A.dtype)
        buf_a = np.empty(n_a * min(block, p), dtype=dtype)
        buf_b = None if same else np.empty(B.shape[0] * min(block, p), dtype=dtype)
    out = applied = None
    for start in range(0, max(p, 1), block):
        sl = slice(start, min(start + block, p))
        a = _centred_block(A, sl, mean, buf_a)
        b = a if same else _centred_block(B, sl, mean, buf_b)
        prod = a @ b.T
        if out is None:
            out = prod
        else:
            out += prod
        if apply is not None:
            v = a @ apply[sl]
            applied = v if applied is None else applied + v
    return out if apply is None else (out, applied)


def _kernel_gram(backend, X, x_mean, fit_intercept, max_offset=8.0):
    """Centred Gram matrix ``(X - m)(X - m)^T`` and ``(X - m) @ m`` for the kernel path.

    One symmetric product of X as given when the feature means are moderate: the centred
    matrix is then ``K - r 1^T - 1 r^T + mu`` (``r = K 1 / n = X m``, ``mu = m . m``), which
    loses at most ``log2(trace K / trace K_c)`` bits; accepted when that ratio is at most
    ``max_offset`` (``trace K_c = trace K - n mu``). Otherwise (features with large means) the
    product is redone over centred feature blocks (:func:`centred_cross_gram`).
    """
    if not fit_intercept:
        return X @ X.T, None
    n = X.shape[0]
    k = X @ X.T
    torch = backend.name == "torch"
    k64 = k.double() if torch else k.astype(np.float64)
    r = k64.mean(axis=1)
    mu = r.mean()
    trace = float(k64.diagonal().sum())
    trace_c = trace - n * float(mu)
    if trace_c > 0 and trace <= max_offset * trace_c:
        kc, proj = k64 - r[:, None] - r[None, :] + mu, r - mu
        if torch:
            return kc.to(k.dtype), proj.to(k.dtype)
        return kc.astype(k.dtype), proj.astype(k.dtype)
    mean = backend.asarray(x_mean)
    return centred_cross_gram(backend, X, X, x_mean, apply=mean)


def primal_fold(train, test, s, v, mx, x_te):
    """The primal :class:`FoldDecomposition` of eigenpairs ``(s, v)`` of the fold's training
    cross-product, training mean ``mx`` and held-out rows ``x_te``: scored from (p x p) moments
    when ``p <= n_test`` (they beat explicit predictions, n_te x p per alpha), else through the
    held-out projection."""
    fold = FoldDecomposition(train, test, "primal", s, v, None, mx, x_te)
    fold.moments = x_te.shape[1] <= len(test)
    if fold.moments:
        m_te = x_te.mean(axis=0)
        a_v = (x_te - m_te) @ v
        fold.test_mean, fold.gram_test = m_te, a_v.T @ a_v
        fold.offset = (m_te - mx) @ v
    else:
        fold.proj_test = (x_te - mx) @ v
    return fold


def make_plan(X, folds=None, *, fit_intercept=True, backend, dtype=np.float32, solver="auto"):
    """Decompose X once per fold and once on all samples.

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
    folds : list of (train, test) index arrays, or None for leave-one-out
    fit_intercept : bool
    backend : backend object from :func:`neuroprobe.solvers.backend.get_backend`
    dtype : numpy dtype of the computation
    solver : {"auto", "primal", "kernel"}
        ``auto``: primal (eigh of X^T X) when n_features <= n_samples, kernel (eigh of X X^T)
        otherwise.

    Returns
    -------
    RidgePlan
    """
    X = np.asarray(X, dtype=dtype)
    n, p = X.shape
    x_mean = X.mean(axis=0) if fit_intercept else np.zeros(p, dtype=dtype)
    kind = solver if solver != "auto" else ("primal" if p <= n else "kernel")
    if kind == "primal":
        xg = backend.asarray(X - x_mean if fit_intercept else X)
        plan = RidgePlan(backend, xg, x_mean, kind, None, fit_intercept=fit_intercept)
        gram = xg.T @ xg
        s, v = _eigh(backend, gram)
        plan.full_eigvals, plan.full_eigvecs = s, v
        plan.full_proj = xg @ v
    else:
        # kernel: X is kept as given (no centred n x p copy); the centred Gram matrix is
        # accumulated over feature blocks
        xk = backend.asarray(X)
        plan = RidgePlan(backend, xk, x_mean, kind, None, fit_intercept=fit_intercept)
        plan.centred = False
        gram, plan.mean_proj = _kernel_gram(backend, xk, x_mean, fit_intercept)
        s, u = _eigh(backend, gram)
        plan.full_eigvals, plan.full_eigvecs = s, u
        plan.full_proj = u
    if folds is None:
        return plan
    plan.folds = []
    for train, test in folds:
        train = np.asarray(train)
        test = np.asarray(test)
        tr = backend.asarray(train)
        te = backend.asarray(test)
        n_tr = len(train)
        if kind == "primal":
            x_te = xg[te]
            sub = gram - x_te.T @ x_te
            mx = -x_te.sum(axis=0) / n_tr if fit_intercept else 0 * x_te[0]
            if fit_intercept:
                sub = sub - n_tr * (mx[:, None] * mx[None, :])
            s, v = _eigh(backend, sub)
            plan.folds.append(primal_fold(train, test, s, v, mx, x_te))
        else:
            k_tr = gram[tr][:, tr]
            k_te = gram[te][:, tr]
            if fit_intercept:
                r = k_tr.mean(axis=1)
                m = r.mean()
                k_tr = k_tr - r[:, None] - r[None, :] + m
                k_te = k_te - k_te.mean(axis=1, keepdims=True) - r[None, :] + m
            s, u = _eigh(backend, k_tr)
            plan.folds.append(FoldDecomposition(train, test, kind, s, u, k_te @ u))
    return plan


# --------------------------------------------------------------------------- per-batch solvers
def _bmul(x, y):
    """Broadcast product as a new C-contiguous array (numpy may otherwise pick another layout)."""
    if isinstance(x, np.ndarray):
        shape = np.broadcast_shapes(x.shape, y.shape)
        return np.multiply(x, y, out=np.empty(shape, dtype=np.result_type(x, y)))
    return (x * y).contiguous()


def _project(a, w, z):
    """Predictions ``a @ diag(w_alpha) @ z`` of every alpha, shape (n_alphas, n, t).

    One GEMM ``[a diag(w_1); ...; a diag(w_k)] @ z``: the stacked left factor (n_alphas * n, r)
    does not grow with the number of targets, the output is already (n_alphas, n, t).
    """
    aw = _bmul(a[None], w[:, None, :])  # (n_alphas, n, r)
    na, n, r = aw.shape
    return (aw.reshape(na * n, r) @ z).reshape(na, n, z.shape[1])


def _fold_projection(plan, fold, y, xty, xty_te=None):
    """``Z`` such that held-out predictions are ``A diag(w) Z`` (+ training mean of y).

    Returns ``(Z, my, y_te, xty_te)`` (``xty_te``: the held-out rows' ``X_te^T y_te``, computed
    unless given).
    """
    n_tr = len(fold.train)
    y_te = y[plan.backend.asarray(fold.test)]
    if fold.kind == "primal":
        if xty_te is None:
            xty_te = fold.x_test.T @ y_te
        xty_tr = xty - xty_te
        if plan.fit_intercept:
            my = -y_te.sum(axis=0) / n_tr  # y is centred on all samples
            xty_tr = xty_tr - n_tr * (fold.x_mean[:, None] * my[None, :])
        else:
            my = None
        return fold.eigvecs.T @ xty_tr, my, y_te, xty_te
    y_tr = y[plan.backend.asarray(fold.train)]
    my = y_tr.mean(axis=0) if plan.fit_intercept else None
    if my is not None:
        y_tr = y_tr - my
    return fold.eigvecs.T @ y_tr, my, y_te, None


def _kernel_resolvent(plan, fold, alphas):
    """``(M, c, left)``: held-out predictions of every alpha are ``M @ y_tr + c my`` (kernel fold).

    ``M = [A diag(w_1) U^T; ...; A diag(w_k) U^T]`` (n_alphas * n_test, n_train), built from the
    fold's eigendecomposition once per alpha grid (cached on the fold: it does not depend on
    the targets). Per target batch the predictions then cost one GEMM of
    ``n_alphas * n_test * n_train`` per target instead of ``(n_alphas * n_test + n_train) *
    n_train`` through ``U^T y_tr``. ``c = 1 - M 1`` carries the training mean ``my`` of the
    targets (the targets need not be centred per fold). When the alphas' weight rows are
    numerically of rank ``k < n_alphas`` (:func:`alpha_factors`; in float32 about 7 of 10 alphas
    over 9 decades), ``M`` holds ``k`` stacked projections instead and ``left`` (n_alphas, k)
    combines their predictions per alpha: the dominant GEMM shrinks by ``n_alphas / k``, the
    predictions change by about the rounding of the product itself.
    """
    be = plan.backend
    key = be.to_numpy(alphas)
    cached = fold.resolvent
    if cached is not None and cached[0].shape == key.shape and np.array_equal(cached[0], key):
        return cached[1], cached[2], cached[3]
    w = _inverse_weights(be, fold.eigvals, alphas)
    factors = alpha_factors(be, w)
    left = None
    if factors is not None:  # k < n_alphas combinations of the alphas' weights (low rank)
        left, w = factors
    m = _project(fold.proj_test, w, fold.eigvecs.T)  # (n_alphas or k, n_te, n_tr)
    m = m.reshape(m.shape[0] * m.shape[1], m.shape[2])
    c = None
    if plan.fit_intercept:
        c = 1.0 - m.sum(axis=1)
        if left is not None:  # 1 - M_alpha 1 = 1 - sum_k left[alpha, k] (N_k 1)
            n_te = fold.proj_test.shape[0]
            c = 1.0 - (left @ (1.0 - c).reshape(left.shape[1], n_te)).reshape(-1)
    fold.resolvent = (key.copy(), m, c, left)
    return m, c, left


def _moment_scores(fold, z, my, y_te, xty_te, w, scoring):
    """Held-out scores of all alphas from (r x r) moments, without forming predictions.

    With ``A_v`` the held-out projection centred on the held-out mean and ``x_a = w_a * Z``:
    ``cov = (A_v^T y) . x_a``, ``var_pred = x_a^T (A_v^T A_v) x_a``; the held-out mean of the
    prediction is ``my + offset . x_a``.
    """
    n_te = y_te.shape[0]
    sy = y_te.sum(axis=0)
    ybar = sy / n_te
    ss_y = (y_te * y_te).sum(axis=0) - sy * ybar
    b = fold.eigvecs.T @ (xty_te - fold.test_mean[:, None] * sy[None, :])  # A_v^T y
    cov = w @ (b * z)
    # var_p[a, t] = sum_j w[a, j] z[j, t] (G diag(w_a) z)[j, t]
    gwz = _project(fold.gram_test, w, z)  # (n_alphas, r, t)
    gwz *= z[None]
    var_p = (w[:, None, :] @ gwz)[:, 0, :]
    nan = float("nan")
    bad = ~(ss_y > 0)
    if scoring == "correlation":
        # constant predictions score 0, zero-variance targets NaN (as score_predictions)
        const = ~(var_p > 0)
        ok = ~const & ~bad
        out = cov / ((var_p * ss_y) ** 0.5 + ~ok)
        out[const] = 0.0
        out[..., bad] = nan
        return out
    if scoring == "r2":
        mean_p = (w * fold.offset[None]) @ z
        if my is not None:
            mean_p = mean_p + my
        sse = ss_y - 2 * cov + var_p + n_te * (ybar - mean_p) ** 2
        out = 1.0 - sse / (ss_y + bad)
        out[..., bad] = nan
        return out
    if scoring == "explained_variance":  # residuals centred on their held-out mean
        out = 1.0 - (ss_y - 2 * cov + var_p) / (ss_y + bad)
        out[..., bad] = nan
        return out
    raise ValueError(f"scoring must be one of {SCORINGS}; got {scoring!r}")


def cv_scores(plan, y, alphas, scoring="correlation", *, reduce=True, xty=None, xty_test=None):
    """Held-out scores of every alpha for every target of a batch.

    Parameters
    ----------
    plan : RidgePlan with folds
    y : backend array (n_samples, n_targets)
        A batch of targets, centred on all samples when ``plan.fit_intercept``.
    alphas : backend array (n_alphas,)
    scoring : {"correlation", "r2"}
    reduce : bool
        Return the mean over folds (NaN-aware) instead of the per-fold scores.
    xty, xty_test : backend arrays, optional
        Primal plans: ``X^T y`` of the plan's centred X and, per fold, the held-out rows'
        ``X_te^T y_te``, when the caller already has them (variance partitioning slices them
        from the products of all the bands' columns).

    Returns
    -------
    numpy array (n_alphas, n_targets), or (n_folds, n_alphas, n_targets) when not ``reduce``.
    """
    be = plan.backend
    if plan.kind == "primal" and xty is None:
        xty = plan.X.T @ y
    out = []
    for f, fold in enumerate(plan.folds):
        if fold.kind == "kernel":
            out.append(_kernel_fold_scores(plan, fold, y, alphas, scoring))
            continue
        z, my, y_te, xty_te = _fold_projection(plan, fold, y, xty,
                                               None if xty_test is None else xty_test[f])
        w = _inverse_weights(be, fold.eigvals, alphas)
        if fold.moments:
            scores = _moment_scores(fold, z, my, y_te, xty_te, w, scoring)
        else:
            pred = _project(fold.proj_test, w, z)
            if my is not None:
                pred += my
            scores = score_predictions(y_te, pred, scoring)
        out.append(be.to_numpy(scores))
    scores = np.stack(out)
    if not reduce:
        return scores
    return nanmean0(scores)


def _kernel_fold_scores(plan, fold, y, alphas, scoring, chunk_bytes=2**21):
    """Held-out scores (n_alphas, n_targets) of a kernel fold, targets in cache-sized chunks.

    Each chunk's predictions ``M @ y_tr + c my`` (one GEMM) are scored while they are still in
    cache (about ``chunk_bytes``).
    """
    be = plan.backend
    m, c, left = _kernel_resolvent(plan, fold, alphas)
    y_tr = y[be.asarray(fold.train)]
    y_te = y[be.asarray(fold.test)]
    n_a, n_te, t = len(alphas), y_te.shape[0], y.shape[1]
    step = t if be.name != "numpy" else max(64, chunk_bytes // (m.shape[0] * m.itemsize))
    out = []
    for start in range(0, t, step):
        sl = slice(start, min(start + step, t))
        ytr = y_tr[:, sl]
        pred = m @ ytr
        if left is not None:  # (k * n_te, s) -> (n_alphas * n_te, s)
            pred = (left @ pred.reshape(left.shape[1], -1)).reshape(n_a * n_te, -1)
        if c is not None:
            pred += c[:, None] * ytr.mean(axis=0)[None, :]
        pred = pred.reshape(n_a, n_te, pred.shape[1])
        out.append(be.to_numpy(score_predictions(y_te[:, sl], pred, scoring)))
    return out[0] if len(out) == 1 else np.concatenate(out, axis=1)


def nanmean0(a):
    """Mean over axis 0 ignoring NaN; NaN where every entry is NaN (no RuntimeWarning)."""
    with np.errstate(invalid="ignore"):
        valid = ~np.isnan(a)
        total = np.where(valid, a, 0).sum(axis=0)
        count = valid.sum(axis=0)
        out = total / np.maximum(count, 1)
    out[count == 0] = np.nan
    return out


def loo_scores(plan, y, alphas, scoring="correlation"):
    """Leave-one-out scores of every alpha (closed form), numpy array (n_alphas, n_targets).

    ``y`` is a backend batch centred on all samples (when ``plan.fit_intercept``).
    """
    be = plan.backend
    a = plan.full_proj
    z = a.T @ y
    if plan.kind == "kernel":
        # e_loo = G y / diag(G), G = U diag(1 / (s + alpha)) U^T with the weight of the constant
        # eigenvector set to 0 (unpenalised intercept), as sklearn's _RidgeGCV: no cancellation
        # when the hat-matrix diagonal is close to 1 (n_features > n_samples).
        w = _inverse_weights(be, plan.full_eigvals, alphas)
        if plan.fit_intercept:
            ones = a.sum(axis=0) / plan.n_samples**0.5
            w[:, int((ones * ones).argmax())] = 0.0
        gy = _project(a, w, z)
        diag = w @ (a * a).T
        pred = y[None] - gy / diag[:, :, None]
    else:
        w = _inverse_weights(be, plan.full_eigvals, alphas)
        pred = _project(a, w, z)
        hat = w @ (a * a).T  # (n_alphas, n_samples)
        if plan.fit_intercept:
            hat = hat + 1.0 / plan.n_samples
        resid = (y[None] - pred) / (1.0 - hat)[:, :, None]
        pred = y[None] - resid
    return be.to_numpy(score_predictions(y, pred, scoring))


def refit(plan, y, alphas_per_target, xty=None):
    """Ridge coefficients on all samples, one alpha per target.

    Parameters
    ----------
    plan : RidgePlan
    y : backend array (n_samples, n_targets), centred on all samples if ``fit_intercept``
    alphas_per_target : backend array (n_targets,)
    xty : backend array (n_features, n_targets), optional
        Primal plans: ``X^T y`` when the caller already has it.

    Returns
    -------
    backend array (n_features, n_targets)
    """
    if plan.kind == "primal":
        vecs = plan.full_eigvecs
        z = vecs.T @ (plan.X.T @ y if xty is None else xty)
        return vecs @ (z * _refit_weights(plan, alphas_per_target))
    return dual_to_primal(plan, refit_dual(plan, y, alphas_per_target))


def _refit_weights(plan, alphas_per_target):
    """(r, n_targets) weights ``1 / (s + alpha_t)``, pseudo-inverse where ``s + alpha_t ~ 0``."""
    s = plan.full_eigvals
    den = s[:, None] + alphas_per_target[None, :]
    eps = np.finfo(np.float32 if str(s.dtype).endswith("float32") else np.float64).eps
    tol = float(s.max()) * eps * max(s.shape[0], 1) * 10
    ok = den > tol
    inv = 1.0 / (den + ~ok)
    inv[~ok] = 0.0
    return inv


def refit_dual(plan, y, alphas_per_target):
    """Dual coefficients on all samples, one alpha per target (kernel plans).

    ``dual = U diag(1 / (s + alpha_t)) U^T y`` from the full-data Gram decomposition: two
    (n x n) @ (n x t) products, no feature-sized array. The primal coefficients are
    ``(X - x_mean)^T dual`` (:func:`dual_to_primal`); predictions of new rows ``X_new`` are
    ``(X_new - x_mean) (X - x_mean)^T dual + y_mean`` (:func:`centred_cross_gram`).

    Returns
    -------
    backend array (n_samples, n_targets)
    """
    if plan.kind != "kernel":
        raise ValueError("refit_dual needs a kernel plan (n_features > n_samples)")
    vecs = plan.full_eigvecs
    return vecs @ ((vecs.T @ y) * _refit_weights(plan, alphas_per_target))


def dual_to_primal(plan, dual, out=None):
    """Primal coefficients ``(X - x_mean)^T dual`` of a kernel plan, shape (p, t).

    One GEMM per feature block of the centred X (about 32 MB each, no centred copy of the whole
    X), written straight into ``out`` (numpy: a new (p, t) array when None) without
    temporaries of the output's size. ``1^T dual = 0`` for centred targets, so centring X
    changes only the rounding: it keeps float32 accurate when feature means are large.
    """
    be = plan.backend
    X = plan.X
    n, p = X.shape
    mean = None if (plan.centred or not plan.fit_intercept) else be.asarray(plan.x_mean)
    numpy = isinstance(dual, np.ndarray)
    if out is None and numpy:
        out = np.empty((p, dual.shape[1]), dtype=np.result_type(X.dtype, dual.dtype))
    itemsize = 4 if str(X.dtype).endswith("float32") else 8
    block = _feature_block(n, itemsize, p)
    parts = []
    for start in range(0, p, block):
        sl = slice(start, min(start + block, p))
        xb = X[:, sl] if mean is None else X[:, sl] - mean[sl]
        if out is not None:
            np.matmul(xb.T, dual, out=out[sl])
        else:
            parts.append(xb.T @ dual)
    if out is not None:
        return out
    return be.torch.cat(parts, dim=0) if be.name == "torch" else np.concatenate(parts)


def ols_solver(X, *, fit_intercept=True, backend, dtype=np.float32):
    """Least squares for all targets from one SVD of X: returns ``(pinv, x_mean)``.

    ``coef = pinv @ y_centred`` is the minimum-norm least-squares solution (as
    :func:`numpy.linalg.lstsq`, with singular values below ``eps * max(n, p) * s_max`` dropped).
    """
    X = np.asarray(X, dtype=dtype)
    x_mean = X.mean(axis=0) if fit_intercept else np.zeros(X.shape[1], dtype=dtype)
    xg = backend.asarray(X - x_mean if fit_intercept else X)
    u, s, vt = backend.svd(xg)
    rcond = np.finfo(dtype).eps * max(X.shape)
    keep = s > rcond * float(s.max()) if s.shape[0] else s > 0
    inv = 1.0 / (s + ~keep)
    inv[~keep] = 0.0
    return (vt.T * inv[None, :]) @ u.T, x_mean


def batch_bytes_per_target(n_samples, n_features, n_alphas, max_test, rank, itemsize=4):
    """Working memory per target of one batch (used to size batches from a memory budget)."""
    per = 4 * n_samples + n_alphas * (2 * max_test + rank) + 3 * max(n_features, rank)
    return int(per * itemsize * 1.5)


def auto_batch_size(n_targets, bytes_per_target, budget):
    """Number of targets per batch that fits in ``budget`` bytes (at least 1)."""
    return int(max(1, min(n_targets, budget // max(bytes_per_target, 1))))


_nanmean0 = nanmean0


# --------------------------------------------------------------------------- batch workers
def best_alpha_index(scores):
    """Index of the best alpha per target (the largest alpha for all-NaN targets)."""
    filled = np.where(np.isnan(scores), -np.inf, scores)
    best = filled.argmax(axis=0)
    best[np.all(np.isnan(scores), axis=0)] = scores.shape[0] - 1
    return best


def _refit_solver(plan):
    return refit_dual if plan.kind == "kernel" else refit


def cv_batch(y, plan, alphas_np, scoring, fit_coef, dtype):
    """CV scores, best alphas and (``fit_coef``) coefficients of one finite target batch.

    Returns a dict with ``scores`` (n_alphas, t), ``const`` (t,) (constant targets), ``y_mean``
    (t,) and, with ``fit_coef``, ``best`` (t,) and ``coef`` (primal or dual, per ``plan``).
    """
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
        scores = loo_scores(plan, yb, alphas, scoring)
    else:
        scores = cv_scores(plan, yb, alphas, scoring)
    scores[:, const] = np.nan
    result = {"scores": scores, "const": const, "y_mean": y_mean}
    if fit_coef:
        chosen = alphas_np[best_alpha_index(scores)]
        coef = be.to_numpy(_refit_solver(plan)(plan, yb, be.asarray(chosen.astype(dtype))))
        result.update(best=chosen, coef=coef.astype(dtype, copy=False))
    return result


def coef_batch(y, chosen, plan, dtype):
    """Coefficients of one target batch at the given alphas (one per target)."""
    be = plan.backend
    if plan.fit_intercept:
        y = y - y.mean(axis=0)  # new array: ``y`` may be read-only in a worker
    return {"coef": be.to_numpy(_refit_solver(plan)(plan, be.asarray(y),
                                                    be.asarray(chosen.astype(dtype))))}
