"""Permutation inference kernels: seeded chunks, group-aware permutations, vectorised RSA nulls.

* Permutations are drawn in fixed-size chunks; chunk ``c`` draws from child ``c`` of
  ``SeedSequence(entropy).spawn``, where ``entropy`` comes from one master random state. The
  permutations depend only on ``random_state`` and ``n_permutations``, never on how chunks are
  spread over workers.
* Schemes (:func:`draw_permutations`): an iid shuffle, circular shifts or block permutations,
  always within groups (runs); the last two keep the autocorrelation of time series.
* p-values are ``(#{null >= observed} + 1) / (n_permutations + 1)``; family-wise p-values use the
  maximum statistic over the family (targets, layers, ROIs) in each permutation.
* :func:`rsa_null` permutes the stimulus labels of target RDMs (rows and columns together) for a
  batch of permutations with one gather and one matrix product.
"""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.utils import check_random_state

from neuroprobe._utils import memory_budget
from neuroprobe.solvers.backend import get_backend
from neuroprobe.solvers.rdm import (
    COV_METHODS,
    DOT_METHODS,
    KENDALL_METHODS,
    compare,
    cov_weight,
    kendall,
    prepare,
)


def chunk_sizes(n_permutations, chunk_size=None):
    """Sizes of the permutation chunks: a function of ``n_permutations`` only (not of n_jobs)."""
    n_permutations = int(n_permutations)
    if chunk_size is None:
        chunk_size = max(64, -(-n_permutations // 32))
    sizes = [chunk_size] * (n_permutations // chunk_size)
    if n_permutations % chunk_size:
        sizes.append(n_permutations % chunk_size)
    return sizes


def chunk_seeds(random_state, n_chunks):
    """One independent ``SeedSequence`` per chunk, all derived from ``random_state``."""
    rng = check_random_state(random_state)
    entropy = int(rng.randint(0, 2**31 - 1, dtype=np.int64)) * (2**31) + int(
        rng.randint(0, 2**31 - 1, dtype=np.int64)
    )
    return np.random.SeedSequence(entropy).spawn(n_chunks)


def run_chunks(chunk, n_permutations, random_state=None, n_jobs=None, args=()):
    """The one permutation driver: seeded chunks of permutations, run through joblib.

    ``chunk_sizes`` -> ``chunk_seeds`` -> one task per worker (``effective_n_jobs``; the chunks
    are only grouped, so the permutations do not depend on ``n_jobs``) -> ``Parallel``.

    Parameters
    ----------
    chunk : callable
        ``chunk(sizes, seeds, *args)``: the result of the chunks of these sizes, each drawing its
        permutations from its own seed (e.g. with :func:`draw_permutations`).
    n_permutations : int
    random_state : int, RandomState or None
        Master seed of every chunk's seed.
    n_jobs : int, optional
        joblib workers (or a dask / ray backend through ``joblib.parallel_config``).
    args : tuple
        Further arguments of ``chunk``.

    Returns
    -------
    list
        One result per task, in chunk order.
    """
    sizes = chunk_sizes(n_permutations)
    return run_seeded_chunks(chunk, sizes, chunk_seeds(random_state, len(sizes)), n_jobs, args)


def run_seeded_chunks(chunk, sizes, seeds, n_jobs=None, args=()):
    """:func:`run_chunks` of given chunk ``sizes`` and ``seeds`` (e.g. all but the first of
    ``chunk_sizes`` / ``chunk_seeds``, the first run in the caller). An empty list of chunks
    runs nothing and returns ``[]``."""
    if not len(sizes):
        return []
    n_tasks = min(len(sizes), max(1, effective_n_jobs(n_jobs)))
    tasks = np.array_split(np.arange(len(sizes)), n_tasks)
    return Parallel(n_jobs=n_jobs)(
        delayed(chunk)([sizes[i] for i in t], [seeds[i] for i in t], *args) for t in tasks
    )


def check_n_stimuli(n_a, n_b, what_a="X", what_b="Y", unit="rows"):
    """The one stimulus-count check of the permutation tests (same stimuli on both sides).

    Raises
    ------
    ValueError
        ``"X has 5 rows but Y has 4"`` (or the RDMs' wording with ``unit="stimuli"``).
    """
    if n_a != n_b:
        if unit == "stimuli":
            raise ValueError(f"{what_a} and {what_b} must have the same number of stimuli; got "
                             f"{n_a} and {n_b}")
        raise ValueError(f"{what_a} has {n_a} {unit} but {what_b} has {n_b}")


#: Permutation schemes of :func:`draw_permutations` (``PermutationTest(scheme=)``).
SCHEMES = ("shuffle", "circular", "block")


def draw_permutations(n, n_permutations, groups=None, seed=None, *, scheme="shuffle",
                      block_size=None):
    """Draw ``n_permutations`` permutations of ``range(n)`` (within groups when given).

    Parameters
    ----------
    n : int
    n_permutations : int
    groups : array of shape (n,), optional
        Group label of each sample (e.g. fMRI runs); samples are only exchanged with samples of
        the same group. ``None``: one group.
    seed : None, int, SeedSequence or numpy Generator
    scheme : {"shuffle", "circular", "block"}, default="shuffle"
        ``"shuffle"``: an independent uniform shuffle within each group (exchangeable samples:
        one beta per stimulus). ``"circular"``: each group (run), in its row order, is rotated by
        its own random shift in ``[1, n_g - 1]``, which keeps the autocorrelation of a time
        series. ``"block"``: each group is cut into contiguous blocks of ``block_size`` rows (the
        last one shorter) whose order is shuffled, the rows inside a block kept in order.
    block_size : int, optional
        Rows per block (``scheme="block"`` only; required there).

    Returns
    -------
    permutations : ndarray of shape (n_permutations, n), int64
        Row ``k`` is the permutation: permuted data are ``Y[permutations[k]]``.

    Notes
    -----
    A run of ``n_g`` rows has only ``n_g - 1`` circular shifts and ``m!`` block orders
    (``m`` blocks): the minimum attainable p-value of one run is then ``1 / n_g``, whatever
    ``n_permutations``. With several runs each run is shifted independently.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}; got {scheme!r}")
    if scheme == "block" and block_size is None:
        raise ValueError("scheme='block' needs block_size= (rows per block, e.g. 10 scans)")
    if block_size is not None and (int(block_size) != block_size or block_size < 1):
        raise ValueError(f"block_size must be a positive int; got {block_size!r}")
    rng = np.random.default_rng(seed)
    if groups is None:
        groups = np.zeros(n, dtype=np.int64)
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups must have shape ({n},); got {groups.shape}")
    out = np.empty((n_permutations, n), dtype=np.int64)
    draw = {"shuffle": _shuffled, "circular": _shifted, "block": _blocked}[scheme]
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        out[:, idx] = idx[draw(rng, n_permutations, idx.size, block_size)]
    return out


def _shuffled(rng, k, size, block_size):
    """(k, size) uniform permutations of ``range(size)``."""
    return rng.permuted(np.broadcast_to(np.arange(size, dtype=np.int64), (k, size)), axis=1)


def _shifted(rng, k, size, block_size):
    """(k, size) circular shifts of ``range(size)`` by a shift in [1, size - 1] (0 if size 1)."""
    shifts = rng.integers(1, size, size=k) if size > 1 else np.zeros(k, dtype=np.int64)
    return (np.arange(size, dtype=np.int64)[None, :] + shifts[:, None]) % size


def _blocked(rng, k, size, block_size):
    """(k, size): contiguous blocks of ``block_size`` in a shuffled order (one argsort)."""
    block = np.arange(size, dtype=np.int64) // int(block_size)
    n_blocks = int(block[-1]) + 1 if size else 0
    rank = _shuffled(rng, k, n_blocks, None)  # new position of each block
    key = rank[:, block] * size + np.arange(size)[None, :]  # block position, then row order
    return np.argsort(key, axis=1, kind="stable")


def pvalues(observed, null):
    """Per-column permutation p-values ``(#{null >= observed} + 1) / (n_permutations + 1)``.

    NaN where the observed statistic is NaN (e.g. a zero-variance target).
    """
    observed = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64).reshape(len(null), -1)
    count = (null >= observed.reshape(1, -1)).sum(axis=0)
    p = (count + 1.0) / (null.shape[0] + 1.0)
    p[np.isnan(observed.reshape(-1))] = np.nan  # an undefined score has no p-value (not 1/(n+1))
    return p.reshape(observed.shape)


def fwe_pvalues(observed, null):
    """Family-wise (max-statistic) p-values: compares each observed value to the null of the max.

    NaN where the observed statistic is NaN.
    """
    observed = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64).reshape(len(null), -1)
    max_null = np.nanmax(null, axis=1)
    count = (max_null[:, None] >= observed.reshape(1, -1)).sum(axis=0)
    p = (count + 1.0) / (null.shape[0] + 1.0)
    p[np.isnan(observed.reshape(-1))] = np.nan
    return p.reshape(observed.shape)


def _square(prepared, n):
    """(k, m) condensed rows -> (k, n, n) symmetric with zero diagonal."""
    k = prepared.shape[0]
    out = np.zeros((k, n, n), dtype=prepared.dtype)
    i, j = np.triu_indices(n, 1)
    out[:, i, j] = prepared
    out[:, j, i] = prepared
    return out


def rsa_null(models, targets, permutations, method="spearman", *, backend="numpy", device="cpu",
             batch_bytes=None):
    """RDM comparisons under stimulus-label permutations of the target RDMs.

    Parameters
    ----------
    models : array of shape (n_models, m)
        Condensed model RDMs (e.g. one per layer).
    targets : array of shape (n_targets, m)
        Condensed target RDMs (e.g. one per ROI or subject).
    permutations : int array of shape (n_permutations, n_stimuli)
        Permutation ``k`` relabels target stimulus ``i`` as ``permutations[k, i]``:
        ``D'[i, j] = D[p[i], p[j]]``, i.e. the RDM of ``Y[p]``.
    method : {"pearson", "spearman", "rho_a", "cosine", "kendall_tau_a", "kendall_tau_b"}
    backend, device : str
    batch_bytes : int, optional
        Memory for one batch of permuted RDMs (default: the memory budget).

    Returns
    -------
    observed : ndarray of shape (n_models * n_targets,)
        Model-major: entry ``i * n_targets + t`` compares model ``i`` with target ``t``.
    null : ndarray of shape (n_permutations, n_models * n_targets)

    Notes
    -----
    For the dot-product methods the target is transformed once (ranked, centred, normalised):
    permuting labels only permutes its entries, so rank/mean/norm are unchanged and the statistic
    of permutation ``p`` is ``0.5 * <T_sq[p][:, p], M_sq>`` over full square matrices: one gather of
    a batch of permuted squares and one matrix product with all models. Kendall's tau has no such
    form and is computed per permutation (slow; documented).
    """
    models = np.atleast_2d(np.asarray(models, dtype=np.float64))
    targets = np.atleast_2d(np.asarray(targets, dtype=np.float64))
    permutations = np.asarray(permutations, dtype=np.int64)
    n_perm, n = permutations.shape
    km, kt = models.shape[0], targets.shape[0]
    observed = compare(models, targets, method, backend=backend, device=device).ravel()
    if method in KENDALL_METHODS:
        variant = method[-1]
        null = np.empty((n_perm, km, kt))
        i, j = np.triu_indices(n, 1)
        squares = _square(targets, n)
        for k, p in enumerate(permutations):
            # condensed entry (i, j) of the permuted RDM is (p[i], p[j]) of the original
            for t in range(kt):
                perm_t = squares[t][p[i], p[j]]
                for mi in range(km):
                    null[k, mi, t] = kendall(models[mi], perm_t, variant)
        return observed, null.reshape(n_perm, km * kt)
    if method not in DOT_METHODS and method not in COV_METHODS:
        raise ValueError(f"unknown comparison method {method!r}")
    be = get_backend(backend, device)
    dtype = np.float64 if backend == "numpy" else np.float32
    if method in COV_METHODS:  # whitened squares permute with the stimuli; no double count
        m_sq, t_sq, half = cov_weight(models, method, dtype=dtype), cov_weight(
            targets, method, dtype=dtype), 1.0
    else:
        m_sq = _square(prepare(models, method, dtype), n).reshape(km, n * n)
        t_sq, half = _square(prepare(targets, method, dtype), n).reshape(kt, n * n), 0.5
    m_sq = be.asarray(m_sq)
    itemsize = np.dtype(dtype).itemsize
    if batch_bytes is None:
        if be.name == "torch" and be.device.type == "cuda":
            batch_bytes = min(memory_budget(), be.free_memory()) // 2
        else:  # CPU: batches that stay in cache are faster than big ones
            batch_bytes = 2**24
    batch = max(1, int(batch_bytes // (n * n * (kt * itemsize + 8))))
    null = np.empty((n_perm, km, kt), dtype=np.float64)
    if be.name == "numpy":
        for a in range(0, n_perm, batch):
            p = permutations[a : a + batch]
            flat = (p[:, :, None] * n + p[:, None, :]).reshape(len(p), n * n)
            for t in range(kt):  # one gather per target RDM (ROIs: few)
                null[a : a + batch, :, t] = half * (t_sq[t][flat] @ m_sq.T)
    else:
        t_sq = be.asarray(t_sq.reshape(kt, n, n))
        for a in range(0, n_perm, batch):
            p = be.asarray(permutations[a : a + batch])
            g = t_sq[:, p[:, :, None], p[:, None, :]].reshape(kt * p.shape[0], n * n)
            s = be.to_numpy(g @ m_sq.T).reshape(kt, p.shape[0], km)
            null[a : a + batch] = half * np.transpose(s, (1, 2, 0))
            del g
    return observed, null.reshape(n_perm, km * kt)
