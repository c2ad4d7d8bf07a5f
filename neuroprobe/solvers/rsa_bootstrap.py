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

BOOTSTRAP_METHODS = ("pearson", "cosine", "spearman", "rho_a")
RANK_METHODS = ("spearman", "rho_a")


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

    def take(self, x, index):
        if self.torch:
            shape = [max(a, b) for a, b in zip(x.shape, index.shape)]
            shape[-1] = index.shape[-1]
            return self.t.gather(x.expand(*shape[:-1], x.shape[-1]), -1,
                                 index.expand(*shape))
        return np.take_along_axis(x, index, axis=-1)

    def argsort(self, x):
        if self.torch:
            return self.t.argsort(x, dim=-1, stable=True)
        return np.argsort(x, axis=-1, kind="stable")

    def cummax(self, x):
        return self.t.cummax(x, dim=-1).values if self.torch else np.maximum.accumulate(x, -1)

    def cummin(self, x):
        return self.t.cummin(x, dim=-1).values if self.torch else np.minimum.accumulate(x, -1)

    def flip(self, x):
        return self.t.flip(x, dims=(-1,)) if self.torch else x[..., ::-1]

    def pad_left(self, x):
        if self.torch:
            return self.t.nn.functional.pad(x, (1, 0))
        return np.concatenate([np.zeros(x.shape[:-1] + (1,), x.dtype), x], axis=-1)

    def arange(self, m):
        if self.torch:
            return self.t.arange(m, device=self.be.device)
        return np.arange(m)

    def where(self, c, a, b):
        return self.t.where(c, a, b) if self.torch else np.where(c, a, b)

    def sqrt(self, x):
        return x**0.5

    def numpy(self, x):
        return np.asarray(self.be.to_numpy(x), dtype=np.float64)


def _tie_bounds(ops, sv):
    """Start and end (inclusive) of the tie group of each position of sorted rows ``sv``."""
    m = sv.shape[-1]
    pos = ops.arange(m)
    change = sv[..., 1:] != sv[..., :-1]
    if ops.torch:
        true = ops.t.ones(sv.shape[:-1] + (1,), dtype=ops.t.bool, device=sv.device)
        new = ops.t.cat([true, change], dim=-1)
        last = ops.t.cat([change, true], dim=-1)
        zero, end_fill = ops.t.zeros_like(pos), ops.t.full_like(pos, m - 1)
    else:
        true = np.ones(sv.shape[:-1] + (1,), bool)
        new = np.concatenate([true, change], axis=-1)
        last = np.concatenate([change, true], axis=-1)
        zero, end_fill = 0, m - 1
    start = ops.cummax(ops.where(new, pos, zero))
    end = ops.flip(ops.cummin(ops.flip(ops.where(last, pos, end_fill))))
    return start, end


def _sorted_ranks(ops, start, end, sw):
    """Weighted average ranks at sorted positions, from tie bounds and sorted weights."""
    cs = ops.pad_left(ops.cumsum(sw))
    before = ops.take(cs, start)
    after = ops.take(cs, end + 1)
    return before + (after - before + 1.0) / 2.0


class _FixedRanks:
    """Sort order and tie groups of fixed RDM rows (R, m), to rank them under any weights."""

    def __init__(self, ops, V):
        self.ops = ops
        self.order = ops.argsort(V)
        self.inverse = ops.argsort(self.order)
        self.start, self.end = _tie_bounds(ops, ops.take(V, self.order))

    def __call__(self, W):
        """Ranks (Bc, R, m) of the rows under the weights ``W`` (Bc, m) of each sample."""
        ops = self.ops
        sw = ops.take(W[:, None, :], self.order[None])
        ranks = _sorted_ranks(ops, self.start[None], self.end[None], sw)
        return ops.take(ranks, self.inverse[None])


def _ranks(ops, X, W):
    """Weighted average ranks of rows X (Bc, R, m) under the weights W (Bc, m)."""
    order = ops.argsort(X)
    start, end = _tie_bounds(ops, ops.take(X, order))
    ranks = _sorted_ranks(ops, start, end, ops.take(W[:, None, :], order))
    return ops.take(ranks, ops.argsort(order))


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
    method : {"pearson", "cosine", "spearman", "rho_a"}
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
    rank_m = _FixedRanks(ops, M) if method in RANK_METHODS else None
    rank_v = _FixedRanks(ops, V) if method in RANK_METHODS else None
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
    loo = (total[:, None, :] - cs[:, :, None] * T) / (S - cs)[:, :, None]
    if method in RANK_METHODS:
        pooled = _ranks(ops, pooled[:, None, :], W)[:, 0]
        loo = _ranks(ops, loo, W)
    pooled = _prepare(method, pooled[:, None, :], W, N, ops)
    loo = _prepare(method, loo, W, N, ops)
    shape = tuple(Vc.shape)
    pooled = pooled.expand(*shape) if ops.torch else np.broadcast_to(pooled, shape)
    upper_s = _paired(method, pooled, Vc, W, N, ops)
    lower_s = _paired(method, loo, Vc, W, N, ops)
    present = cs > 0
    n_present = present.sum(-1)
    zero = 0.0 * upper_s
    upper = ops.where(present, upper_s, zero).sum(-1) / n_present
    lower = ops.where(present, lower_s, zero).sum(-1) / n_present
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
