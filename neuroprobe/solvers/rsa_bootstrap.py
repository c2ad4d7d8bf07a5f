"""Bootstrap evaluation of RDM models over subjects and / or stimuli, vectorised over samples.

A bootstrap sample draws subjects (RDMs) and stimuli with replacement. As in rsatoolbox
(``RDMs.subsample_pattern``), the RDM of a stimulus sample keeps every pair of sampled stimuli
*except* the pairs of a stimulus with its own copy (their zero dissimilarity would be trivially
predicted); a pair of distinct stimuli ``(p, q)`` sampled ``c_p`` and ``c_q`` times appears
``c_p * c_q`` times. So every statistic of a sample is a *weighted* statistic over the original
pairs, with weights ``W[e] = c_p c_q`` (and subject weights = subject counts): no resampled
RDM is ever gathered. Ranks within a sample (spearman, rho-a) are weighted average ranks:
``(weight of smaller entries) + (weight of equal entries + 1) / 2``, from one sort per RDM
(done once for the fixed model and subject RDMs).

Per sample, this computes what rsatoolbox's ``eval_bootstrap_*`` / ``eval_dual_bootstrap``
compute with fixed models: the mean comparison of each model with the sampled subjects'
RDMs, and ``boot_noise_ceiling`` of the sample (leave-one-subject-out by subject identity:
copies of a subject are left out together; bounds averaged over the distinct subjects).

Backends: numpy (float64) or torch (float32, CPU or CUDA) through :func:`get_backend`.
"""

from __future__ import annotations

import numpy as np

from neuroprobe.solvers.backend import get_backend

BOOTSTRAP_METHODS = ("pearson", "cosine", "spearman", "rho_a", "corr_cov", "cosine_cov")
RANK_METHODS = ("spearman", "rho_a")
COV_METHODS = ("corr_cov", "cosine_cov")


class _Ops:
    """The few array operations whose numpy and torch spellings differ."""

    def __init__(self, be):
        self.be = be
        self.torch = be.name == "torch"
        if self.torch:
            self.t = be.torch

    def asarray(self, x, dtype):
        return self.be.asarray(np.asarray(x), dtype=dtype)

    def cumsum(self, x):
        return self.t.cumsum(x, dim=-1) if self.torch else np.cumsum(x, axis=-1)

    def take_rows(self, x, index):
        """``x[r, index[r, p]]`` for 2-D ``x`` and ``index`` of the same shape."""
        if self.torch:
            return self.t.gather(x, -1, index)
        rows, m = index.shape
        return x.reshape(-1)[(index + (np.arange(rows) * m)[:, None]).reshape(-1)].reshape(
            rows, m)

    def put_rows(self, values, index):
        """``out`` with ``out[r, index[r, p]] = values[r, p]`` (``index`` rows permutations)."""
        if self.torch:
            return self.t.empty_like(values).scatter_(-1, index, values)
        rows, m = index.shape
        out = np.empty_like(values)
        out.reshape(-1)[(index + (np.arange(rows) * m)[:, None]).reshape(-1)] = \
            values.reshape(-1)
        return out

    def argsort(self, x):
        # ties get their group's average rank, so the order inside a tie group is irrelevant
        return self.t.argsort(x, dim=-1) if self.torch else np.argsort(x, axis=-1)

    def inv(self, a):
        return self.t.linalg.inv(a) if self.torch else np.linalg.inv(a)

    def where(self, c, a, b):
        return self.t.where(c, a, b) if self.torch else np.where(c, a, b)

    def sqrt(self, x):
        return x**0.5

    def numpy(self, x):
        return np.asarray(self.be.to_numpy(x), dtype=np.float64)


def _tie_bounds(sv):
    """Start and end (inclusive) of the tie group of each position of sorted rows ``sv``.

    numpy only (2-D ``sv``); the torch path sorts and bounds on the device through
    :func:`_tie_bounds_torch`.
    """
    rows, m = sv.shape
    pos = np.broadcast_to(np.arange(m), (rows, m))
    change = sv[:, 1:] != sv[:, :-1]
    true = np.ones((rows, 1), bool)
    start = np.maximum.accumulate(np.where(np.concatenate([true, change], 1), pos, 0), axis=1)
    last = np.concatenate([change, true], 1)
    end = np.minimum.accumulate(np.where(last, pos, m - 1)[:, ::-1], axis=1)[:, ::-1]
    return start, end


def _tie_bounds_torch(t, sv):
    rows, m = sv.shape
    pos = t.arange(m, device=sv.device).expand(rows, m)
    change = sv[:, 1:] != sv[:, :-1]
    true = t.ones((rows, 1), dtype=t.bool, device=sv.device)
    start = t.cummax(t.where(t.cat([true, change], 1), pos, t.zeros_like(pos)), dim=1).values
    last = t.cat([change, true], 1)
    end = t.flip(t.cummin(t.flip(t.where(last, pos, t.full_like(pos, m - 1)), (1,)), dim=1)
                 .values, (1,))
    return start, end


class _FixedRanks:
    """Sort order and tie groups of fixed RDM rows (R, m), to rank them under any weights.

    For weights ``W`` (Bc, m) the rank of entry ``e`` is ``before + (group + 1) / 2`` with
    ``before`` the exclusive cumulative weight at the start of ``e``'s tie group and
    ``group`` the group's weight: two gathers of flat precomputed positions per batch.
    """

    def __init__(self, ops, V):
        V = np.asarray(V, dtype=np.float64)
        R, m = V.shape
        order = np.argsort(V, axis=1, kind="stable")
        inverse = np.argsort(order, axis=1, kind="stable")
        start, end = _tie_bounds(np.take_along_axis(V, order, 1))
        base = (np.arange(R) * m)[:, None]
        self.shape = (R, m)
        self.ops = ops
        self.order = ops.asarray(order.reshape(-1), None)
        self.start = ops.asarray((np.take_along_axis(start, inverse, 1) + base).reshape(-1),
                                 None)
        self.end = ops.asarray((np.take_along_axis(end, inverse, 1) + base).reshape(-1), None)

    def __call__(self, W):
        """Ranks (Bc, R, m) of the rows under the weights ``W`` (Bc, m) of each sample."""
        Bc = W.shape[0]
        R, m = self.shape
        sw = W[:, self.order].reshape(Bc, R, m)
        cs = self.ops.cumsum(sw)
        excl = (cs - sw).reshape(Bc, R * m)
        cs = cs.reshape(Bc, R * m)
        before = excl[:, self.start]
        return (before + (cs[:, self.end] - before + 1.0) / 2.0).reshape(Bc, R, m)


def _ranks(ops, X, W):
    """Weighted average ranks of rows X (rows, m) under row weights W (rows, m)."""
    order = ops.argsort(X)
    sv = ops.take_rows(X, order)
    sw = ops.take_rows(W, order)
    start, end = (_tie_bounds_torch(ops.t, sv) if ops.torch
                  else _tie_bounds(sv))
    cs = ops.cumsum(sw)
    before = ops.take_rows(cs - sw, start)
    ranks = before + (ops.take_rows(cs, end) - before + 1.0) / 2.0
    return ops.put_rows(ranks, order)


def _centre(X, W, N):
    """Rows of X (Bc, R, m) minus their W-weighted means."""
    return X - (X * W[:, None, :]).sum(-1, keepdims=True) / N[:, None, None]


def _scale(method, N):
    """Divisor of rho-a's sum of products (12 / (N^3 - N) with N sample entries)."""
    return (N**3 - N) / 12.0


def _paired(method, X, Y, W, N, ops):
    """Comparison of X[b, s] with Y[b, s] (both (Bc, S, m), prepared) -> (Bc, S)."""
    Wx = X * W[:, None, :]
    num = (Wx * Y).sum(-1)
    if method == "rho_a":
        return num / _scale(method, N)[:, None]
    return num / ops.sqrt((Wx * X).sum(-1) * (Y * Y * W[:, None, :]).sum(-1))


def evaluate_samples(models, subjects, subject_counts, stimulus_counts, method, *,
                     backend="numpy", device="cpu", batch_bytes=2**27):
    """Model evaluations and noise ceilings of bootstrap samples given by their counts.

    Parameters
    ----------
    models : array of shape (n_models, m)
        Condensed model RDMs.
    subjects : array of shape (n_subjects, m)
        Condensed subject RDMs.
    subject_counts : int array of shape (n_samples, n_subjects)
        How often each subject is in each sample (all ones: subjects not resampled).
    stimulus_counts : int array of shape (n_samples, n_stimuli)
        How often each stimulus is in each sample (all ones: stimuli not resampled).
    method : {"pearson", "cosine", "spearman", "rho_a", "corr_cov", "cosine_cov"}
    backend, device : str
    batch_bytes : int
        Memory for the working arrays of one batch of samples.

    Returns
    -------
    evaluations : ndarray of shape (n_samples, n_models)
        Mean over the sampled subjects (with repeats) of each model's comparison.
    noise_ceiling : ndarray of shape (n_samples, 2)
        Lower and upper bound of each sample (rsatoolbox ``boot_noise_ceiling``). NaN where
        a sample has a single distinct subject or an RDM constant on its pairs.
    """
    if method not in BOOTSTRAP_METHODS:
        raise ValueError(f"bootstrap evaluation supports {BOOTSTRAP_METHODS}; got {method!r}")
    be = get_backend(backend, device)
    ops = _Ops(be)
    dtype = np.float64 if be.name == "numpy" else np.float32
    M = ops.asarray(np.atleast_2d(models), dtype)
    V = ops.asarray(np.atleast_2d(subjects), dtype)
    cS = np.asarray(subject_counts)
    cN = np.asarray(stimulus_counts)
    n_samples, S = cS.shape
    n = cN.shape[1]
    k, m = M.shape
    i, j = np.triu_indices(n, 1)
    i, j = ops.asarray(i, None), ops.asarray(j, None)
    rank_m = _FixedRanks(ops, np.atleast_2d(models)) if method in RANK_METHODS else None
    rank_v = _FixedRanks(ops, np.atleast_2d(subjects)) if method in RANK_METHODS else None
    per_sample = (k + 4 * S + 4) * m * np.dtype(dtype).itemsize
    batch = int(max(1, min(n_samples, batch_bytes // per_sample)))
    evals = np.empty((n_samples, k))
    nc = np.empty((n_samples, 2))
    for a in range(0, n_samples, batch):
        b = min(n_samples, a + batch)
        cn = ops.asarray(cN[a:b], dtype)
        cs = ops.asarray(cS[a:b], dtype)
        W = cn[:, i] * cn[:, j]
        N = W.sum(-1)
        if method in COV_METHODS:
            ev, lo, up = _batch_cov(method, M, V, W, N, cs, cn, S, (i, j), ops)
        else:
            ev, lo, up = _batch(method, M, V, W, N, cs, S, rank_m, rank_v, ops)
        evals[a:b], nc[a:b, 0], nc[a:b, 1] = ops.numpy(ev), ops.numpy(lo), ops.numpy(up)
    return evals, nc


def _prepare(method, X, W, N, ops):
    """Centre (all but cosine) prepared rows; ranks come in already for rank methods."""
    return X if method == "cosine" else _centre(X, W, N)


def _batch(method, M, V, W, N, cs, S, rank_m, rank_v, ops):
    Bc = W.shape[0]
    if method in RANK_METHODS:
        Mx, Vx = rank_m(W), rank_v(W)
    else:
        shape_m, shape_v = (Bc,) + tuple(M.shape), (Bc,) + tuple(V.shape)
        Mx = M[None].expand(*shape_m) if ops.torch else np.broadcast_to(M[None], shape_m)
        Vx = V[None].expand(*shape_v) if ops.torch else np.broadcast_to(V[None], shape_v)
    Mc, Vc = _prepare(method, Mx, W, N, ops), _prepare(method, Vx, W, N, ops)
    Wv = Vc * W[:, None, :]
    cross = Mc @ Wv.transpose(0, 2, 1) if not ops.torch else Mc @ Wv.transpose(1, 2)
    vv = (Wv * Vc).sum(-1)  # (Bc, S)
    if method == "rho_a":
        r = cross / _scale(method, N)[:, None, None]
    else:
        mm = (Mc * Mc * W[:, None, :]).sum(-1)
        r = cross / ops.sqrt(mm[:, :, None] * vv[:, None, :])
    evals = (r * cs[:, None, :]).sum(-1) / S
    # noise ceiling: pool transform, leave-one-subject-out by identity
    if method == "pearson":
        T = Vc / ops.sqrt(vv / N[:, None])[:, :, None]
    elif method == "cosine":
        T = Vx / ops.sqrt(vv / N[:, None])[:, :, None]
    else:
        T = Vx
    total = (T * cs[:, :, None]).sum(1)  # (Bc, m)
    pooled = total / S
    # leave-one-subject-out, only for the subjects present in each sample
    present = cs > 0
    pb, ps = (ops.t.nonzero(present, as_tuple=True) if ops.torch else np.nonzero(present))
    c = cs[pb, ps][:, None]
    loo = (total[pb] - c * T[pb, ps]) / (S - c)
    Wp, Np = W[pb], N[pb]
    if method in RANK_METHODS:
        pooled = _ranks(ops, pooled, W)
        loo = _ranks(ops, loo, Wp)
    pooled = _prepare(method, pooled[:, None, :], W, N, ops)
    loo = _prepare(method, loo[:, None, :], Wp, Np, ops)[:, 0]
    upper_s = _paired(method, pooled, Vc, W, N, ops)  # pooled broadcasts over subjects
    lower_p = _paired(method, loo[:, None, :], Vc[pb, ps][:, None, :], Wp, Np, ops)[:, 0]
    lower_s = 0.0 * upper_s
    lower_s[pb, ps] = lower_p
    n_present = present.sum(-1)
    upper = ops.where(present, upper_s, 0.0 * upper_s).sum(-1) / n_present
    lower = lower_s.sum(-1) / n_present
    return evals, lower, upper


def _cov_system(W, cn, pairs, ops):
    """Inverse normal matrices (Bc, n, n) of the whitening of each sample's RDMs.

    rsatoolbox whitens an RDM with missing entries (the pairs of a stimulus with its copy) by
    an oblique projection on row effects: ``b = (X' D X)^-1 X' y`` with ``X`` the row / column
    indicators (``e_p + e_q`` for entry ``(p, q)``, ``e_p`` for diagonal entry ``p``) and ``D``
    the weights (1/2 off the diagonal, 1 on it); fitted values ``D X b``, i.e. ``r_p + r_q``
    off and ``2 r_p`` on the diagonal with ``r = b / 2``; the residuals, off-diagonal ones
    times sqrt(2), are the whitened vector (double centring when no entry is missing).
    Over the original pairs the off-diagonal weights
    are ``W / 2`` and each stimulus has ``c_p`` diagonal entries. Stimuli not in a sample get
    an identity row (their weights are zero).
    """
    i, j = pairs
    Bc, n = cn.shape
    A = W.new_zeros((Bc, n, n)) if ops.torch else np.zeros((Bc, n, n), dtype=W.dtype)
    A[:, i, j] = W / 2
    A[:, j, i] = W / 2
    diag = A.sum(-1) + cn + (cn == 0) * 1.0
    idx = ops.t.arange(n, device=W.device) if ops.torch else np.arange(n)
    A[:, idx, idx] = diag
    return ops.inv(A)


def _cov_residuals(Y, W, Ainv, pairs):
    """Whitening residuals of rows Y (rows, R, m) (off-diagonal, diagonal) under a system."""
    i, j = pairs
    Bc, R, m = Y.shape
    n = Ainv.shape[-1]
    Wy = Y * (W / 2)[:, None, :]
    g = Y.new_zeros((Bc, R, n)) if hasattr(Y, "new_zeros") else np.zeros((Bc, R, n), Y.dtype)
    if hasattr(g, "index_add_"):
        g.index_add_(2, i, Wy)
        g.index_add_(2, j, Wy)
    else:
        for idx in (i, j):  # one scatter-add per side of the pairs
            np.add.at(g, (slice(None), slice(None), idx), Wy)
    r = g @ Ainv.transpose(-1, -2) if hasattr(Ainv, "index_add_") else g @ np.swapaxes(
        Ainv, -1, -2)
    return Y - r[:, :, i] - r[:, :, j], -2 * r  # rsatoolbox fits the diagonal with 2 r


def _cov_inner(Xa, Da, Xb, Db, W, cn):
    """Whitened inner products (rows, Ra, Rb) of residuals (off-diagonal x2, diagonal x c)."""
    off = (Xa * (2 * W)[:, None, :]) @ Xb.transpose(-1, -2) if hasattr(Xa, "index_add_") \
        else (Xa * (2 * W)[:, None, :]) @ np.swapaxes(Xb, -1, -2)
    Dt = Db.transpose(-1, -2) if hasattr(Db, "index_add_") else np.swapaxes(Db, -1, -2)
    return off + (Da * cn[:, None, :]) @ Dt


def _batch_cov(method, M, V, W, N, cs, cn, S, pairs, ops):
    """:func:`_batch` for the whitened comparisons (corr_cov, cosine_cov)."""
    Bc = W.shape[0]
    Ainv = _cov_system(W, cn, pairs, ops)
    shape_m, shape_v = (Bc,) + tuple(M.shape), (Bc,) + tuple(V.shape)
    Mx = M[None].expand(*shape_m) if ops.torch else np.broadcast_to(M[None], shape_m)
    Vx = V[None].expand(*shape_v) if ops.torch else np.broadcast_to(V[None], shape_v)
    centre = method == "corr_cov"
    Mc = _centre(Mx, W, N) if centre else Mx
    Vc = _centre(Vx, W, N) if centre else Vx
    Rm, Dm = _cov_residuals(-0.5 * Mc, W, Ainv, pairs)
    Rv, Dv = _cov_residuals(-0.5 * Vc, W, Ainv, pairs)
    cross = _cov_inner(Rm, Dm, Rv, Dv, W, cn)
    mm = (Rm * Rm * (2 * W)[:, None, :]).sum(-1) + (Dm * Dm * cn[:, None, :]).sum(-1)
    vv = (Rv * Rv * (2 * W)[:, None, :]).sum(-1) + (Dv * Dv * cn[:, None, :]).sum(-1)
    r = cross / ops.sqrt(mm[:, :, None] * vv[:, None, :])
    evals = (r * cs[:, None, :]).sum(-1) / S
    # noise ceiling: pool (z-scores or RMS-normalised RDMs), leave-one-subject-out
    Vm = _centre(Vx, W, N)
    if centre:
        T = Vm / ops.sqrt((Vm * Vm * W[:, None, :]).sum(-1) / N[:, None])[:, :, None]
    else:
        T = Vx / ops.sqrt((Vx * Vx * W[:, None, :]).sum(-1) / N[:, None])[:, :, None]
    total = (T * cs[:, :, None]).sum(1)
    pooled = (total / S)[:, None, :]
    present = cs > 0
    pb, ps = (ops.t.nonzero(present, as_tuple=True) if ops.torch else np.nonzero(present))
    c = cs[pb, ps][:, None]
    loo = ((total[pb] - c * T[pb, ps]) / (S - c))[:, None, :]
    if centre:
        pooled, loo = _centre(pooled, W, N), _centre(loo, W[pb], N[pb])
    Rp, Dp = _cov_residuals(-0.5 * pooled, W, Ainv, pairs)
    Rl, Dl = _cov_residuals(-0.5 * loo, W[pb], Ainv[pb], pairs)
    pp = (Rp * Rp * (2 * W)[:, None, :]).sum(-1) + (Dp * Dp * cn[:, None, :]).sum(-1)
    up = _cov_inner(Rp, Dp, Rv, Dv, W, cn)[:, 0] / ops.sqrt(pp * vv)
    Wp, cp = W[pb], cn[pb]
    ll = (Rl * Rl * (2 * Wp)[:, None, :]).sum(-1) + (Dl * Dl * cp[:, None, :]).sum(-1)
    lv = _cov_inner(Rl, Dl, Rv[pb, ps][:, None], Dv[pb, ps][:, None], Wp, cp)[:, 0, 0]
    lower_s = 0.0 * up
    lower_s[pb, ps] = lv / ops.sqrt(ll[:, 0] * vv[pb, ps])
    n_present = present.sum(-1)
    upper = ops.where(present, up, 0.0 * up).sum(-1) / n_present
    lower = lower_s.sum(-1) / n_present
    return evals, lower, upper


def counts(index, size):
    """Counts (n_samples, size) of each item in each row of a sample index (n_samples, k)."""
    index = np.asarray(index, dtype=np.int64)
    out = np.zeros((index.shape[0], size), dtype=np.int64)
    np.add.at(out, (np.repeat(np.arange(index.shape[0]), index.shape[1]), index.ravel()), 1)
    return out


def draw_indices(n_subjects, n_stimuli, n_bootstrap, unit, rng):
    """Bootstrap indices: (subjects (B, S) or None, stimuli (B, n) or None).

    Per sample, subjects are drawn before stimuli, each with ``rng.randint`` (the order of
    rsatoolbox's ``bootstrap_sample``).
    """
    subj = stim = None
    if unit in ("subjects", "both"):
        subj = np.empty((n_bootstrap, n_subjects), dtype=np.int64)
    if unit in ("stimuli", "both"):
        stim = np.empty((n_bootstrap, n_stimuli), dtype=np.int64)
    for b in range(n_bootstrap):
        if subj is not None:
            subj[b] = rng.randint(0, n_subjects, size=n_subjects)
        if stim is not None:
            stim[b] = rng.randint(0, n_stimuli, size=n_stimuli)
    return subj, stim


def dual_variance(variances, n_rdm, n_pattern):
    """rsatoolbox's ``_dual_bootstrap``: combine the both / subjects / stimuli variances."""
    v0, v1, v2 = variances
    f_r, f_p = n_rdm / (n_rdm - 1), n_pattern / (n_pattern - 1)
    v = f_r * v1 + f_p * v2 - f_r * f_p * (v0 - v1 - v2)
    v = np.maximum(np.maximum(v, f_r * v1), f_p * v2)
    return np.minimum(v, v0)


def split_variances(cov, correction=None):
    """(model, pairwise-difference, model-minus-ceiling) variances of a covariance.

    ``cov`` is (..., k + 2, k + 2) over [models, lower bound, upper bound] (rsatoolbox's
    ``extract_variances`` with the ceiling included); a leading axis of 3 is combined with
    :func:`dual_variance` by the caller through ``correction``.
    """
    k = cov.shape[-1] - 2
    a, b = np.triu_indices(k, 1)
    diag = np.einsum("...ii->...i", cov)
    model = diag[..., :k]
    diff = model[..., a] + model[..., b] - 2 * cov[..., a, b]
    nc = model[..., :, None] - 2 * cov[..., :k, k:] + diag[..., None, k:]
    if correction is not None:
        model, diff, nc = correction(model), correction(diff), correction(nc)
    return model, diff, nc
