"""Time-resolved RSA kernels: window RDMs from batched Gram products over chunks of windows,
the fused time-resolved RSA (RDMs, ranks and comparisons per chunk, on threads), batched
comparison with ranks from one int64 key sort, cross-temporal RSA (model time x brain time),
the channel x time searchlight, vectorised stimulus-permutation nulls, cluster statistics over
time, or channels x time with an adjacency (sign-flip and one-way F cluster tests as mne.stats',
TFCE), max-statistic FWE and bootstrap peak latencies.

All functions are NumPy only (no Python loop over time points or permutations where a batched
matmul does it) and never modify their inputs.
"""

from __future__ import annotations

import functools
import os

import numpy as np
from scipy import ndimage, stats

from .adjacency import check_adjacency, cluster_sums, label_clusters

__all__ = ["window_rdms", "time_resolved_rsa", "compare_rdms", "cross_temporal_rsa",
           "window_noise_ceiling", "permutation_null",
           "max_stat_fwe", "cluster_masses",
           "cluster_pvalues", "cluster_fwe", "cluster_h0", "cluster_fwe_pvalues", "tfce",
           "tfce_default_step", "tfce_fwe", "tfce_h0", "tfce_pvalues",
           "permutation_cluster_1samp",
           "permutation_cluster_test", "n_windows", "channel_neighbourhoods",
           "searchlight_rsa",
           "peak_latency"]

_METRICS = ("correlation", "sqeuclidean", "euclidean")


def n_windows(n_times, radius):
    """Number of window centres (``radius..n_times-radius-1``, as mne-rsa's searchlight)."""
    if radius < 0 or 2 * radius + 1 > n_times:
        raise ValueError(f"temporal_radius: {radius} samples is wider than the epoch "
                         f"({n_times} samples); expected at most {(n_times - 1) // 2}")
    return n_times - 2 * radius


def _gram_input(X, radius, metric, dtype):
    """X as (n_times, n_stimuli, n_channels) in ``dtype`` for the Gram product, and its scale.

    float64: a plain transposed copy (scale 1). float32: first centred and scaled in ways the
    distance is invariant to (up to the returned squared scale), so float32 keeps ~1e-7
    relative accuracy: euclidean metrics lose the mean over stimuli of every (channel, time);
    correlation loses each (stimulus, time) pattern's mean over channels at radius 0, else the
    grand mean; all are divided by the grand standard deviation (sensor units are ~1e-13 T).
    """
    if np.dtype(dtype) == np.float64:
        return np.ascontiguousarray(X.transpose(2, 0, 1)), 1.0, False
    if metric == "correlation":
        X = X - (X.mean(axis=1, keepdims=True) if radius == 0 else X.mean())
    else:
        X = X - X.mean(axis=0, keepdims=True)
    scale = float(np.sqrt(np.mean(X * X)))
    scale = scale if scale > 0 else 1.0
    Xs = (X * (1.0 / scale)).astype(dtype, copy=False)
    return np.ascontiguousarray(Xs.transpose(2, 0, 1)), scale ** 2, radius == 0


def window_rdms(X, radius=0, metric="correlation", dtype=np.float64, *, chunk=8, n_jobs=None):
    """One condensed RDM per time window of ``2 * radius + 1`` samples.

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_channels, n_times)
    radius : int
        Half-width of the window in samples (0: one RDM per time point).
    metric : {"correlation", "sqeuclidean", "euclidean"}
        Distance between the flattened (channel x window) patterns.
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        Precision of the Gram products. float32 halves their time; the data are then
        first centred and scaled in ways the distance is invariant to, which keeps about 1e-7
        relative accuracy of the distances (Spearman comparisons then differ from float64 by up
        to ~1e-6: near-tied distances may swap ranks). Window sums and distances are float64.
    chunk : int, default=8
        Windows per chunk (float64; the float32 path is one batched product). Each chunk's
        time points are copied time-major into a small buffer (no transposed copy of the whole
        array), their Gram matrices come from one batched matmul and window sums from
        cumulative sums over the chunk.
    n_jobs : int or None
        Threads over chunks (float64; joblib's convention: None is 1, -1 all cores); BLAS
        runs one thread in each. Results do not depend on ``chunk`` or ``n_jobs``.

    Returns
    -------
    rdms : ndarray of shape (n_windows, n_stimuli * (n_stimuli - 1) // 2), float64
        Window ``w`` is centred on sample ``radius + w``.
    """
    if metric not in _METRICS:
        raise ValueError(f"metric: expected one of {_METRICS}; got {metric!r}")
    X = np.asarray(X, dtype=np.float64)
    n, c, t = X.shape
    nw = n_windows(t, radius)
    if np.dtype(dtype) == np.float64:
        out = np.empty((nw, n * (n - 1) // 2))

        def work(rdms, w0, w1):
            out[w0:w1] = rdms
        _run_chunks(X, radius, metric, chunk, n_jobs, work)
        return out
    Xt, scale2, centred = _gram_input(X, radius, metric, dtype)
    with _blas_one_thread():                                     # small GEMMs: threads only cost
        gram = Xt @ Xt.transpose(0, 2, 1)                        # (t, n, n), one batched matmul
    width = 2 * radius + 1
    S = None
    if metric == "correlation" and not centred:
        S = _window_sum(Xt.sum(axis=2, dtype=np.float64), width)  # (w, n) pattern sums
    gram = gram.astype(np.float64)                               # window sums in float64
    return _gram_distances(_window_sum(gram, width), S, c * width, metric, scale2)


def _gram_distances(G, S, k, metric, scale2=1.0, n=None):
    """Condensed distances from window Gram matrices ``G`` (w, N, N).

    The pairs are those of the first ``n`` rows (default ``N``; a last all-ones row gives the
    pattern sums for free). ``S`` (w, n): pattern sums for the correlation metric (None:
    patterns already centred); ``k``: values per pattern (a scalar or (w, 1)); ``scale2``: the
    squared scale the Gram input was divided by. The pairs' Gram entries are taken first and
    all arithmetic is on the (w, n_pairs) block: the row stimulus's terms by ``np.repeat``
    (each row of the condensed triangle is one run), the column stimulus's by ``np.take``.
    """
    w, N = G.shape[:2]
    n = N if n is None else n
    G = G.astype(np.float64, copy=False)
    off, cols, runs = _pair_offsets(n, N)
    diag = np.einsum("wii->wi", G[:, :n, :n])
    g = np.take(G.reshape(w, N * N), off, axis=1)                # (w, n_pairs)

    def pairs(a):                                                # a_i and a_j of every pair
        return np.repeat(a[:, :-1], runs, axis=1), np.take(a, cols, axis=1)

    if metric == "correlation":
        v = diag - S * S / k if S is not None else diag          # centred sums of squares
        with np.errstate(divide="ignore"):
            inv = 1.0 / np.sqrt(np.clip(v, 0, None))
        if S is None:
            a_i, a_j = pairs(inv)
            g *= a_i
            g *= a_j
        else:                                                    # (g - s_i s_j / k) / (d_i d_j)
            b_i, b_j = pairs(np.concatenate([inv, S * inv * (1.0 / np.sqrt(k))]))  # (2w, n)
            g *= b_i[:w]
            g *= b_j[:w]
            b_i[w:] *= b_j[w:]
            g -= b_i[w:]
        np.subtract(1.0, g, out=g)
        return g
    d_i, d_j = pairs(diag)
    g *= -2.0
    g += d_i
    g += d_j
    np.clip(g, 0, None, out=g)
    if scale2 != 1.0:
        g *= scale2
    if metric == "euclidean":
        np.sqrt(g, out=g)
    return g


@functools.lru_cache(maxsize=8)
def _pair_offsets(n, N):
    """The condensed pairs ``i < j < n`` of (N, N) matrices (read-only arrays): their flat
    offsets, their column indices ``j`` and the run length of every row ``i < n - 1``."""
    iu = np.triu_indices(n, 1)
    off = iu[0] * N + iu[1]
    runs = np.arange(n - 1, 0, -1)
    for a in (off, iu[1], runs):
        a.flags.writeable = False
    return off, iu[1], runs


def _chunk_grams(X, w0, w1, radius, buf):
    """Window Gram matrices of windows ``w0..w1 - 1`` (w, n_stimuli [+ 1], n_stimuli [+ 1]).

    The raw times ``w0 .. w1 + 2 * radius - 1`` are copied stimulus by stimulus, time-major,
    into ``buf`` (n_stimuli [+ 1], >= n raw times, n_channels), and their Gram matrices come
    from one batched matmul on the strided (times, stimuli, channels) view (BLAS takes the row
    stride); window sums by cumulative sums. For the correlation metric the buffer's extra
    last row of ones makes the Gram's last row the pattern sums.
    """
    n = X.shape[0]
    width = 2 * radius + 1
    xb = buf[:, :w1 - w0 + width - 1]
    np.copyto(xb[:n], X[:, :, w0:w1 + width - 1].transpose(0, 2, 1))
    xt = xb.transpose(1, 0, 2)                                   # (k, n [+ 1], c) view
    return _window_sum(xt @ xt.transpose(0, 2, 1), width)


_THREADS = {}                  # cached per process: the BLAS controller and thread pools


def _blas_one_thread():
    """A context limiting BLAS to one thread (the controller is inspected once per process:
    a fresh ``threadpool_limits`` scans every loaded library, ~0.6 ms a call)."""
    from threadpoolctl import ThreadpoolController

    key = ("controller", os.getpid())
    if key not in _THREADS:
        _THREADS[key] = ThreadpoolController()
    return _THREADS[key].limit(limits=1, user_api="blas")


def _pool(n_threads):
    """A thread pool of ``n_threads`` kept for this process (a forked child makes its own)."""
    from concurrent.futures import ThreadPoolExecutor

    key = ("pool", os.getpid(), n_threads)
    if key not in _THREADS:
        _THREADS[key] = ThreadPoolExecutor(n_threads, thread_name_prefix="neuroprobe-rsa")
    return _THREADS[key]


def _on_threads(n_items, n_jobs, run):
    """``run(k, n_threads)`` on each of ``n_threads`` threads (thread ``k`` takes the items
    ``k::n_threads``, round-robin), BLAS on one thread each; ``n_jobs`` as joblib's.

    For work made of large NumPy calls (BLAS, copies and sorts of whole chunks release the
    GIL); see :func:`_pipeline` for work that also has many small calls.
    """
    from joblib import effective_n_jobs

    n_threads = max(1, min(effective_n_jobs(n_jobs), n_items))
    with _blas_one_thread():                                     # small GEMMs: threads only cost
        if n_threads == 1:
            run(0, 1)
        else:
            list(_pool(n_threads).map(run, range(n_threads), [n_threads] * n_threads))


def _pipeline(items, produce, consume, new_state, n_threads):
    """``consume(produce(item, state))`` for every item: ``produce`` on ``n_threads - 1`` pool
    threads and on the calling thread, ``consume`` on the calling thread only, in any order.

    NumPy calls on arrays of ~1e4 values (~10 us) do not run in parallel on Python threads:
    each holds the GIL for its dispatch, and the handoffs between threads serialise them
    (measured: two threads are no faster than one below ~0.1 ms a call). Copies and BLAS
    products of whole chunks (~1 ms) do run in parallel. So the small-call phase runs on one
    thread while the others produce, and the calling thread produces itself whenever no
    result is waiting. Every thread owns one ``new_state()`` (a copy buffer); at most
    ``2 * n_threads`` results wait at a time; an error in any thread is raised here.
    """
    import queue
    import threading
    import time
    from concurrent.futures import wait

    todo = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    done = queue.Queue(maxsize=2 * n_threads)
    stop = threading.Event()

    def producer():
        try:
            state = new_state()
            while not stop.is_set():
                try:
                    item = todo.get_nowait()
                except queue.Empty:
                    return
                done.put((True, produce(item, state)))
        except BaseException as exc:                             # raised by the caller
            done.put((False, exc))

    futures = [_pool(n_threads - 1).submit(producer) for _ in range(n_threads - 1)]
    finished = False
    try:
        state = new_state()
        for _ in range(len(items)):
            try:
                ok, result = done.get_nowait()
            except queue.Empty:
                try:
                    item = todo.get_nowait()
                except queue.Empty:                              # all taken: wait for one
                    ok, result = done.get()
                else:
                    ok, result = True, produce(item, state)
            if not ok:
                raise result
            consume(result)
        finished = True
    finally:
        stop.set()
        if finished:                                             # every result taken: no put
            wait(futures)                                        # is blocked
        while not all(f.done() for f in futures):                # an error: unblock producers
            try:
                done.get_nowait()
            except queue.Empty:
                time.sleep(1e-3)


def _run_chunks(X, radius, metric, chunk, n_jobs, work):
    """``work(rdms, w0, w1)`` for chunks of windows, in any order.

    Each chunk's Gram matrices (:func:`_chunk_grams`) are computed on up to ``n_jobs``
    threads (joblib's convention), its distances and ``work`` on the calling thread
    (:func:`_pipeline`); BLAS runs one thread in each.
    """
    from joblib import effective_n_jobs

    n, c, t = X.shape
    nw = n_windows(t, radius)
    width = 2 * radius + 1
    chunk = max(int(chunk), 2 * width if radius else 1)          # bound the window overlap
    starts = list(range(0, nw, chunk))

    def new_buffer():
        buf = np.empty((n + (metric == "correlation"), min(chunk, nw) + width - 1, c))
        buf[n:] = 1.0
        return buf

    def produce(w0, buf):
        w1 = min(w0 + chunk, nw)
        return w0, w1, _chunk_grams(X, w0, w1, radius, buf)

    def consume(item):
        w0, w1, G = item
        S = G[:, n, :n] if G.shape[1] > n else None              # (w, n) pattern sums
        work(_gram_distances(G, S, c * width, metric, n=n), w0, w1)

    n_threads = max(1, min(effective_n_jobs(n_jobs), len(starts)))
    with _blas_one_thread():                                     # small GEMMs: threads only cost
        if n_threads == 1:
            buf = new_buffer()
            for w0 in starts:
                consume(produce(w0, buf))
        else:
            _pipeline(starts, produce, consume, new_buffer, n_threads)


def time_resolved_rsa(X, model_rdms, radius=0, metric="correlation", comparison="spearman", *,
                      chunk=8, n_jobs=None):
    """RSA of every model RDM with the brain RDM of every time window, in one fused pass.

    Equal to ``compare_rdms(model_rdms, window_rdms(X, radius, metric), comparison)`` (and to
    mne-rsa's ``rsa_epochs``), without the (n_windows, n_pairs) RDM array: per chunk of
    windows, the time points are copied time-major, their Gram matrices, distances, ranks and
    the product with the standardised models are computed while the chunk is in cache.

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_channels, n_times)
    model_rdms : ndarray of shape (n_models, n_pairs)
    radius : int
        Half-width of the window in samples.
    metric : {"correlation", "sqeuclidean", "euclidean"}
    comparison : {"spearman", "pearson"}
    chunk : int, default=8
        Windows per chunk.
    n_jobs : int or None
        Threads over chunks (None: 1, -1: all cores).

    Returns
    -------
    r : ndarray of shape (n_models, n_windows)
    """
    if metric not in _METRICS:
        raise ValueError(f"metric: expected one of {_METRICS}; got {metric!r}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3:
        raise ValueError(f"X: expected (n_stimuli, n_channels, n_times); got shape {X.shape}")
    n = X.shape[0]
    M = _standardise(model_rdms, comparison)
    if M.shape[1] != n * (n - 1) // 2:
        raise ValueError(f"model_rdms: {M.shape[1]} pairs but X has {n} stimuli")
    out = np.empty((M.shape[0], n_windows(X.shape[2], radius)))

    def work(rdms, w0, w1):
        out[:, w0:w1] = M @ _standardise(rdms, comparison).T
    _run_chunks(X, radius, metric, chunk, n_jobs, work)
    return out


_TIE_BITS = 40


def _quantise(V):
    """``V`` rounded to ``2 ** -40`` of each row's largest magnitude (see :func:`_rank`)."""
    scale = np.abs(V).max(axis=-1, keepdims=True)
    return np.round(V * (2.0 ** _TIE_BITS / np.where(scale > 0, scale, 1.0)))


_MAGIC = 1.5 * 2.0 ** 52      # x + _MAGIC rounds x to an integer (half to even, as np.round)
_KEY_MAX_COLUMNS = 2 ** 22    # 41 value bits + 22 column bits: the int64 keys of _sort_keys


def _sort_keys(V):
    """Per row: the order of ``_quantise(V)`` (ties by position) and whether it has ties.

    The quantised values are integers ``q`` in ``[-2 ** 40, 2 ** 40]``: adding ``1.5 * 2 **
    52`` rounds to them exactly (as ``np.round``) and leaves ``q`` in the low bits of the
    float's int64 view, whose constant high part vanishes when shifted left by ``bits >= 13``.
    So ``q << bits | column`` is one int64 key per value: one plain sort of the keys (SIMD, far
    cheaper than an argsort) gives the order, and neighbouring sorted keys with equal high bits
    are the ties. Rows with a NaN or infinite value are flagged in ``bad``.
    """
    m = V.shape[1]
    bits = max(int(m - 1).bit_length(), 13)
    scale = np.maximum(V.max(axis=1), -V.min(axis=1))
    bad = ~np.isfinite(scale)
    f = 2.0 ** _TIE_BITS / np.where((scale > 0) & ~bad, scale, 1.0)
    q = V * f[:, None]
    if bad.any():
        q[bad] = 0.0
    q += _MAGIC
    keys = q.view(np.int64)
    keys <<= bits
    keys |= np.arange(m, dtype=np.int64)
    keys.sort(axis=1)
    low = (1 << bits) - 1
    u = keys.view(np.uint64)                                     # xor of keys of another sign
    ties = np.bitwise_xor(u[:, 1:], u[:, :-1]).min(axis=1, initial=low + 1) <= low
    keys &= low
    return keys, ties, bad


def _rank(V, values=None):
    """Average ranks on the last axis (as scipy.stats.rankdata); one key sort if no ties.

    Values are compared at ``2 ** -40`` of each row's largest magnitude: dissimilarities from
    Gram products carry ~1e-15 relative rounding, so pairs that are exactly tied (integer spike
    counts, repeated patterns; scipy's ``pdist`` computes each pair directly) could otherwise
    differ in their last bits and be ranked apart.

    ``values`` (length ``n_columns``): put ``values[j]`` instead of rank ``j + 1`` in the rows
    without ties (e.g. standardised ranks), so no second pass is needed. Rows with a NaN or
    infinite value are NaN (as scipy's default ``nan_policy``).

    Returns
    -------
    ranks : ndarray of the shape of ``V``
    ties : ndarray of bool of shape (n_rows,)
        Rows with tied values (their ``ranks`` are average ranks, never ``values``).
    """
    V = np.ascontiguousarray(V, dtype=np.float64)             # row reductions need rows
    shape = V.shape
    V = V.reshape(-1, shape[-1])
    m = V.shape[1]
    if values is None:
        values = np.arange(1, m + 1, dtype=np.float64)
    ranks = np.empty(V.shape, dtype=np.float64)
    if m > _KEY_MAX_COLUMNS:                                     # keys would overflow int64
        Q = _quantise(V)
        order = np.argsort(Q, axis=-1)
        sorted_v = np.take_along_axis(Q, order, axis=-1)
        ties = (sorted_v[:, 1:] == sorted_v[:, :-1]).any(axis=-1)
        bad = ~np.isfinite(V).all(axis=-1)
    else:
        order, ties, bad = _sort_keys(V)
    for row, o in zip(ranks, order):                             # 1-D scatters: faster than
        row[o] = values                                          # put_along_axis
    if bad.any():
        ties &= ~bad
        ranks[bad] = np.nan
    if ties.any():
        ranks[ties] = stats.rankdata(_quantise(V[ties]), axis=-1)
    return ranks.reshape(shape), ties.reshape(shape[:-1])


@functools.lru_cache(maxsize=8)
def _rank_values(m):
    """The standardised ranks ``1..m`` (centred, unit norm; read-only)."""
    norm = np.sqrt(m * (m * m - 1) / 12.0) if m > 1 else np.nan
    values = (np.arange(1, m + 1, dtype=np.float64) - (m + 1) / 2.0) / norm
    values.flags.writeable = False
    return values


def _standardise(V, method):
    """Rows ranked (Spearman) and centred to unit norm, so a dot product is a correlation.

    Rows without ties rank to a permutation of ``1..m``, whose mean and norm are known: their
    standardised ranks are put in place directly; only tied rows are centred and normed from
    their values.
    """
    V = np.atleast_2d(np.asarray(V, dtype=np.float64))
    if method == "spearman":
        V, ties = _rank(V, _rank_values(V.shape[-1]))
        if ties.any():
            V[ties] = _standardise(V[ties], "pearson")
        return V
    if method != "pearson":
        raise ValueError(f"comparison: expected 'spearman' or 'pearson'; got {method!r}")
    V = V - V.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(V, axis=-1, keepdims=True)
    return V / np.where(norm > 0, norm, np.nan)


def compare_rdms(model_rdms, brain_rdms, comparison="spearman"):
    """Correlation of every model RDM with every brain RDM in one matmul.

    Parameters
    ----------
    model_rdms : ndarray of shape (n_models, n_pairs)
    brain_rdms : ndarray of shape (n_times, n_pairs)
    comparison : {"spearman", "pearson"}

    Returns
    -------
    r : ndarray of shape (n_models, n_times)
    """
    M, B = _standardise(model_rdms, comparison), _standardise(brain_rdms, comparison)
    if M.shape[1] != B.shape[1]:
        raise ValueError(f"model_rdms: {M.shape[1]} pairs but brain_rdms has {B.shape[1]}")
    with _blas_one_thread():                                     # a thin GEMM: one thread is faster
        return M @ B.T


def _average_ranks(V):
    """Average ranks of the rows of a 2-D ``V`` with many ties, without a loop over rows.

    Equal to ``scipy.stats.rankdata(_quantise(V), axis=-1)`` (values compared as in
    :func:`_rank`) for finite rows: one int64 key sort (:func:`_sort_keys`), then every run of
    equal sorted values gets the mean of its positions, all rows at once. Leave-one-out means of
    ranks (:func:`window_noise_ceiling`) tie in almost every row, where :func:`_rank` hands the
    rows to scipy one sort at a time.
    """
    n_rows, m = V.shape
    order = _sort_keys(V)[0]                                     # column of each sorted value
    q = np.take_along_axis(_quantise(V), order, axis=1).ravel()
    start = np.ones(q.size, dtype=bool)                          # a run of equal values starts
    start[1:] = q[1:] != q[:-1]
    start[::m] = True                                            # every row starts a run
    first = np.flatnonzero(start)
    last = np.append(first[1:], q.size) - 1
    mean_rank = (first % m + last % m) / 2.0 + 1.0
    ranks = np.empty(q.size)
    flat = (np.arange(n_rows)[:, None] * m + order).ravel()
    ranks[flat] = np.repeat(mean_rank, last - first + 1)
    return ranks.reshape(n_rows, m)


_CEILING_BLOCK = 2 ** 22      # values per block of windows in window_noise_ceiling (~32 MiB each)


def window_noise_ceiling(subject_rdms, method="spearman"):
    """Noise ceiling of every time window (Nili et al. 2014), leave-one-subject-out.

    Window by window, these are the bounds of :func:`neuroprobe.rsa.noise_ceiling` (and so of
    rsatoolbox's ``boot_noise_ceiling``): the upper bound is the mean over subjects of the
    comparison of each subject's RDM with the average of all subjects' RDMs, the lower bound
    with the average of the other subjects' RDMs. Averaged are ranks (``"spearman"``) or
    z-scores (``"pearson"``). All subjects x windows are ranked at once (one int64 key sort,
    see :func:`_rank`), the leave-one-out averages are the total minus each subject, and the
    comparisons are row-wise dot products of standardised rows; only blocks of windows (to
    bound memory) are looped over.

    Parameters
    ----------
    subject_rdms : ndarray of shape (n_subjects, n_windows, n_pairs)
        Condensed window RDMs of every subject, e.g. ``window_rdms(data, radius)`` stacked over
        subjects (same stimuli in the same order, same windows).
    method : {"spearman", "pearson"}, default="spearman"
        The comparison of :func:`time_resolved_rsa`.

    Returns
    -------
    lower, upper : ndarray of shape (n_windows,)
        NaN in a window where a subject's RDM or an average RDM is constant.
    """
    if method not in ("spearman", "pearson"):
        raise ValueError(f"method: expected 'spearman' or 'pearson'; got {method!r}")
    R = np.asarray(subject_rdms, dtype=np.float64)
    if R.ndim != 3:
        raise ValueError("subject_rdms: expected an array of shape (n_subjects, n_windows, "
                         f"n_pairs); got shape {R.shape}")
    k, n_win, m = R.shape
    if k < 2:
        raise ValueError(f"subject_rdms: a noise ceiling needs at least 2 subjects; got {k}")
    if m < 2:
        raise ValueError(f"subject_rdms: expected at least 2 stimulus pairs; got {m}")
    lower, upper = np.empty(n_win), np.empty(n_win)
    step = max(1, _CEILING_BLOCK // (k * m))
    for w0 in range(0, n_win, step):
        B = R[:, w0:w0 + step]
        if method == "spearman":
            T = _rank(B)[0]                                      # average ranks
        else:                                                    # z-scores (ddof 0)
            T = B - B.mean(axis=-1, keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                T /= T.std(axis=-1, keepdims=True)
        S = _standardise(T, "pearson")        # each subject's row: Spearman = Pearson of ranks
        total = T.sum(axis=0)
        loo = (total[None] - T) / (k - 1)
        pooled = total / k
        if method == "spearman":                                 # re-ranked (ties: most rows)
            loo = _average_ranks(loo.reshape(-1, m)).reshape(loo.shape)
            pooled = _average_ranks(pooled)
        L = _standardise(loo, "pearson")
        U = _standardise(pooled, "pearson")
        lower[w0:w0 + step] = np.einsum("swp,swp->w", L, S) / k
        upper[w0:w0 + step] = np.einsum("wp,swp->w", U, S) / k
    return lower, upper


def cross_temporal_rsa(model, brain, *, model_radius=0, brain_radius=0,
                       model_metric="correlation", brain_metric="correlation",
                       comparison="spearman", dtype=np.float64):
    """RSA of every model time with every brain time (video / audio networks unfold in time).

    Parameters
    ----------
    model : ndarray of shape (n_stimuli, n_features, n_model_times), or a list of such arrays
        (one per layer; their feature counts and time axes may differ).
    brain : ndarray of shape (n_stimuli, n_channels, n_times)
    model_radius, brain_radius : int
        Half-widths of the model's and the brain's windows in samples.
    model_metric, brain_metric : {"correlation", "sqeuclidean", "euclidean"}
    comparison : {"spearman", "pearson"}
    dtype : numpy dtype
        Precision of the Gram products (see :func:`window_rdms`).

    Returns
    -------
    r : ndarray of shape (n_model_windows, n_brain_windows), or a list of them per layer
        ``r[i, j]``: the model RDM of window ``i`` against the brain RDM of window ``j``, all
        from one product of the standardised model and brain RDMs.
    """
    brain_rdms = window_rdms(brain, brain_radius, brain_metric, dtype)
    layers = model if isinstance(model, (list, tuple)) else [model]
    for k, m in enumerate(layers):
        if np.shape(m)[0] != np.shape(brain)[0]:
            raise ValueError(f"model[{k}]: {np.shape(m)[0]} stimuli but brain has "
                             f"{np.shape(brain)[0]}")
    rdms = [window_rdms(m, model_radius, model_metric, dtype) for m in layers]
    r = compare_rdms(np.concatenate(rdms), brain_rdms, comparison)
    out = np.split(r, np.cumsum([x.shape[0] for x in rdms])[:-1])
    return out if isinstance(model, (list, tuple)) else out[0]


def channel_neighbourhoods(positions, radius):
    """Searchlight neighbourhoods of sensors: ``A[i, j]`` when ``|pos_i - pos_j| < radius``.

    As mne-rsa's ``spatial_radius`` (strict inequality; every sensor is its own neighbour).

    Parameters
    ----------
    positions : ndarray of shape (n_channels, 3)
        Sensor positions (metres), e.g. ``[ch["loc"][:3] for ch in info["chs"]]``.
    radius : float

    Returns
    -------
    ndarray of bool of shape (n_channels, n_channels)
    """
    from scipy.spatial.distance import cdist

    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or not np.all(np.isfinite(pos)):
        raise ValueError("positions: expected finite (n_channels, 3) sensor positions (set a "
                         "montage on the Epochs)")
    A = cdist(pos, pos) < radius
    np.fill_diagonal(A, True)
    return A


def searchlight_rsa(X, model_rdms, neighbours, radius=0, metric="correlation",
                    comparison="spearman", chunk=8, *, n_jobs=None):
    """Spatio-temporal searchlight RSA: every channel neighbourhood x every time window.

    Equal to mne-rsa's ``rsa_epochs(..., spatial_radius=r, temporal_radius=...)``. Every
    neighbourhood's channels are gathered (zero-padded to the largest neighbourhood), the Gram
    matrices of all (time, neighbourhood) pairs come from one batched matmul per chunk of
    ``chunk`` windows, window sums from cumulative sums over time, and the comparison with
    every model from one GEMM (memory ~ chunk x n_centres x n_stimuli ** 2).

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_channels, n_times)
    model_rdms : ndarray of shape (n_models, n_pairs)
    neighbours : ndarray of bool of shape (n_centres, n_channels)
        E.g. :func:`channel_neighbourhoods`.
    radius : int
        Temporal half-width in samples.
    metric : {"correlation", "sqeuclidean", "euclidean"}
    comparison : {"spearman", "pearson"}
    chunk : int
    n_jobs : int or None
        Threads over chunks (joblib's convention: None is 1, -1 all cores).

    Returns
    -------
    r : ndarray of shape (n_models, n_centres, n_windows)
    """
    if metric not in _METRICS:
        raise ValueError(f"metric: expected one of {_METRICS}; got {metric!r}")
    X = np.asarray(X, dtype=np.float64)
    n, c, t = X.shape
    A = np.asarray(neighbours, dtype=bool)
    if A.ndim != 2 or A.shape[1] != c:
        raise ValueError(f"neighbours: expected (n_centres, {c}); got shape {A.shape}")
    nw = n_windows(t, radius)
    width = 2 * radius + 1
    M = _standardise(model_rdms, comparison)
    if M.shape[1] != n * (n - 1) // 2:
        raise ValueError(f"model_rdms: {M.shape[1]} pairs but X has {n} stimuli")
    counts = A.sum(axis=1)
    k = counts * width                                            # values per pattern
    if metric == "correlation" and k.min() < 2:
        raise ValueError(f"neighbours: centre {int(k.argmin())} has a single value per pattern "
                         "(one sensor, one sample): the correlation metric needs more; use "
                         "sqeuclidean or a wider radius")
    # every neighbourhood's channels, padded with an all-zero channel (index c) to one width
    kmax = int(counts.max())
    nbr = np.full((A.shape[0], kmax), c)
    rows, cols = np.nonzero(A)
    nbr[rows, np.arange(rows.size) - np.searchsorted(rows, rows)] = cols
    out = np.empty((M.shape[0], A.shape[0], nw))
    Xt = np.concatenate([X, np.zeros((n, 1, t))], axis=1).transpose(2, 0, 1)  # (t, n, c + 1)
    starts = list(range(0, nw, chunk))

    def run(j, n_threads):
        for w0 in starts[j::n_threads]:
            w1 = min(w0 + chunk, nw)
            xs = Xt[w0:w1 + width - 1]                            # raw times of the windows
            xg = np.ascontiguousarray(xs[:, :, nbr].transpose(0, 2, 1, 3))  # (t, C, n, kmax)
            G = _window_sum(xg @ xg.transpose(0, 1, 3, 2), width)  # (w, C, n, n)
            S = None
            if metric == "correlation":
                S = _window_sum(xg.sum(axis=3), width).reshape(-1, n)  # (w * C, n)
            D = _gram_distances(G.reshape(-1, n, n), S, np.tile(k, w1 - w0)[:, None], metric)
            r = M @ _standardise(D, comparison).T                 # one GEMM per chunk
            out[:, :, w0:w1] = r.reshape(M.shape[0], w1 - w0, -1).transpose(0, 2, 1)

    _on_threads(len(starts), n_jobs, run)
    return out


def _window_sum(G, width):
    """Sums of ``width`` consecutive entries along axis 0."""
    if width == 1:
        return G
    csum = np.concatenate([np.zeros((1,) + G.shape[1:]), np.cumsum(G, axis=0)])
    return csum[width:] - csum[:-width]


def _pair_index(n, perms):
    """Condensed indices of the pairs ``(p[i], p[j])`` for every permutation ``p``."""
    iu, ju = np.triu_indices(n, 1)
    a, b = perms[:, iu], perms[:, ju]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return lo * n - lo * (lo + 1) // 2 + (hi - lo - 1)


def permutation_null(model_rdms, brain_rdms, n_permutations=1000, comparison="spearman",
                     random_state=None, chunk=100):
    """Stimulus-permutation null of whole model x time curves.

    The same stimulus permutation relabels every model RDM, so the nulls of all models and times
    are jointly valid (for max-statistic and cluster FWE). Ranks are permutation-equivariant, so
    each model is ranked once and its ranks are gathered per permutation.

    Parameters
    ----------
    model_rdms : ndarray of shape (n_models, n_pairs)
    brain_rdms : ndarray of shape (n_times, n_pairs)
        Condensed RDMs of the same stimuli.
    n_permutations : int, default=1000
    comparison : {"spearman", "pearson"}, default="spearman"
    random_state : int, numpy Generator, RandomState or None
        ``numpy.random.default_rng(random_state)`` draws the permutations (a ``RandomState``
        gives that seed: four ints drawn from it).
    chunk : int, default=100
        Permutations per GEMM (memory ``8 * chunk * n_models * n_pairs`` bytes).

    Returns
    -------
    null : ndarray of shape (n_permutations, n_models, n_times)
    """
    M = _standardise(model_rdms, comparison)
    B = _standardise(brain_rdms, comparison)
    n_pairs = M.shape[1]
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if isinstance(random_state, np.random.RandomState):  # sklearn's: a seed drawn from it
        random_state = random_state.randint(0, 2**31 - 1, size=4)
    rng = np.random.default_rng(random_state)
    perms = np.argsort(rng.random((n_permutations, n)), axis=1)
    out = np.empty((n_permutations, M.shape[0], B.shape[0]))
    for s in range(0, n_permutations, chunk):
        idx = _pair_index(n, perms[s:s + chunk])                 # (k, n_pairs)
        G = M[:, idx].transpose(1, 0, 2).reshape(-1, n_pairs) @ B.T  # one GEMM per chunk
        out[s:s + chunk] = G.reshape(idx.shape[0], M.shape[0], B.shape[0])
    return out


def max_stat_fwe(observed, null, tail=1):
    """FWE-corrected p-values by the max statistic over all but the first null axis.

    ``p = (1 + #{null max >= observed}) / (1 + n_permutations)``, on the statistic itself
    (``tail=1``), its negation (``tail=-1``) or its absolute value (``tail=0``; the max of
    ``|null|``).
    """
    obs = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64)
    if tail == 0:
        obs, null = np.abs(obs), np.abs(null)
    elif tail == -1:
        obs, null = -obs, -null
    mx = null.reshape(null.shape[0], -1).max(axis=1)
    return (1 + (mx[:, None] >= obs.ravel()[None]).sum(0)).reshape(obs.shape) / (1 + mx.size)


def cluster_masses(stat, threshold, tail=0, adjacency=None):
    """Clusters of adjacent supra-threshold samples and their masses.

    Parameters
    ----------
    stat : ndarray of shape (..., n_times), or (..., n_channels, n_times) with ``adjacency``
    threshold : float
        A magnitude: clusters of ``stat > threshold`` (``tail=1``), ``stat < -threshold``
        (``tail=-1``) or both, apart (``tail=0``).
    tail : {0, 1, -1}
    adjacency : array-like or sparse matrix of shape (n_channels, n_channels), optional
        None: clusters along the last axis (time) only, every other index apart. Given:
        spatio-temporal clusters, neighbours in time or adjacent channels at the same time
        (:mod:`neuroprobe.solvers.adjacency`, as mne.stats' spatio-temporal tests).

    Returns
    -------
    labels : ndarray of int, shape of ``stat`` (0: no cluster; signed clusters apart)
    masses : list of float
        Sum of ``stat`` in cluster ``k + 1`` (as mne.stats' cluster statistic).
    """
    stat = np.asarray(stat, dtype=np.float64)
    labels = np.zeros(stat.shape, int)
    masses = []
    signs = {1: [1], -1: [-1], 0: [1, -1]}[tail]
    if adjacency is not None:
        A = _adjacency(adjacency, stat)
        flat = labels.reshape(-1)
        for sign in signs:
            nodes, lab, k, sums, _ = cluster_sums(stat, sign * stat > threshold, A)
            flat[nodes] = lab + 1 + len(masses)
            masses.extend(sums.tolist())
        return labels, masses
    structure = np.zeros((3,) * stat.ndim, bool)
    structure[(1,) * (stat.ndim - 1)] = True                      # adjacency along time only
    for sign in signs:
        lab, k = ndimage.label(sign * stat > threshold, structure=structure)
        if k:
            masses.extend(ndimage.sum(stat, lab, np.arange(1, k + 1)).tolist())
            labels[lab > 0] = lab[lab > 0] + labels.max()
    return labels, masses


def _adjacency(adjacency, stat):
    if stat.ndim < 2:
        raise ValueError(f"stat: spatio-temporal clusters need (..., n_channels, n_times) "
                         f"arrays; got shape {stat.shape}")
    return check_adjacency(adjacency, stat.shape[-2])


def _max_mass_st(stat, threshold, tail, A):
    """Max (|) spatio-temporal cluster mass per row of (n_rows, n_channels, n_times)."""
    out = np.zeros(stat.shape[0])
    for sign in {1: [1], -1: [-1], 0: [1, -1]}[tail]:
        _, _, k, sums, rows = cluster_sums(stat, sign * stat > threshold, A, ordered=False)
        if k:
            np.maximum.at(out, rows, sign * sums)
    return out


def _tstat(X):
    n = X.shape[-2]
    return X.mean(-2) / np.sqrt(X.var(-2, ddof=1) / n)


def _max_mass(stat, threshold, tail):
    """Max (|) cluster mass per row of a 2-D (n_perm, n_times) statistic, vectorised.

    Runs of supra-threshold samples are numbered in raster order by a cumulative sum of their
    starts and summed by one ``bincount`` (the order of the sums of ``ndimage.sum``: the
    masses equal :func:`cluster_masses`' bit for bit); memory about twice ``stat``'s.
    """
    stat = np.asarray(stat, dtype=np.float64)
    out = np.zeros(stat.shape[0])
    for sign in {1: [1], -1: [-1], 0: [1, -1]}[tail]:
        mask = stat > threshold if sign == 1 else stat < -threshold
        start = mask.copy()
        start[:, 1:] &= ~mask[:, :-1]
        rows = np.nonzero(start)[0]                        # the row of every run, in order
        if not rows.size:
            continue
        run = np.cumsum(start, axis=None).reshape(mask.shape)   # run number (0: none)
        del start
        run *= mask
        mass = np.bincount(run.ravel(), weights=stat.ravel(), minlength=rows.size + 1)[1:]
        del run
        np.maximum.at(out, rows, sign * mass)
    return out


def _tfce_positive(stat, start, step, h_power, e_power, adjacency=None):
    """Positive-tail TFCE of the rows of ``stat`` (last axis; with ``adjacency`` the last two,
    channels x time, :mod:`neuroprobe.solvers.adjacency`), every row at once.

    The rows are sorted by their max once, so each threshold labels only the rows that reach
    it (a prefix, no copy): a null's rows stop at its lower maxima.
    """
    shape = stat.shape[-2:] if adjacency is not None else stat.shape[-1:]
    flat = stat.reshape(-1, int(np.prod(shape)))
    if flat.size == 0:
        return np.zeros_like(stat)
    rowmax = np.where(np.isnan(flat), -np.inf, flat).max(axis=1)   # NaN: never above h
    if rowmax.max() == np.inf:
        raise ValueError("stat: TFCE of infinite values")
    order = np.argsort(-rowmax, kind="stable")
    F, top = flat[order], rowmax[order]
    S = np.zeros_like(F)
    structure = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]], bool)
    thresholds = np.arange(start, top[0], step, dtype=float) if np.isfinite(top[0]) else []
    for i, h in enumerate(thresholds):
        dh = abs(h) if i == 0 else abs(h - thresholds[i - 1])
        n = int(np.count_nonzero(top > h))                       # rows reaching h: a prefix
        if adjacency is not None:                                # spatio-temporal clusters
            nodes, lab, k = label_clusters((F[:n] > h).reshape(n, *shape), adjacency,
                                           ordered=False)
            if k:
                extent = np.bincount(lab, minlength=k).astype(float)
                S[:n].reshape(-1)[nodes] += (abs(h) ** h_power * dh) * extent[lab] ** e_power
            continue
        lab, k = ndimage.label(F[:n] > h, structure=structure)
        if k:
            extent = np.bincount(lab.ravel(), minlength=k + 1).astype(float)
            weight = (abs(h) ** h_power * dh) * extent ** e_power
            weight[0] = 0.0
            S[:n] += weight[lab]
    scores = np.empty_like(F)
    scores[order] = S
    return scores.reshape(stat.shape)


def _check_tfce(start, step, tail):
    if tail not in (1, 0, -1):
        raise ValueError(f"tail: expected 1, 0 or -1; got {tail!r}")
    if not (np.isfinite(start) and np.isfinite(step)):
        raise ValueError(f"TFCE start and step: expected finite numbers; got start={start!r}, "
                         f"step={step!r}")
    if tail == -1 and (start > 0 or step >= 0):
        raise ValueError("TFCE with tail=-1 (as mne.stats): expected start <= 0 and step < 0 "
                         f"(thresholds going down); got start={start!r}, step={step!r}")
    if tail == 0 and (start < 0 or step <= 0):
        raise ValueError("TFCE with tail=0 (as mne.stats): expected start >= 0 and step > 0 "
                         f"(thresholds on |stat|); got start={start!r}, step={step!r}")
    if tail == 1 and step <= 0:
        raise ValueError(f"TFCE with tail=1: expected step > 0; got step={step!r}")


def tfce(stat, start=0.0, step=0.1, h_power=2.0, e_power=0.5, tail=1, adjacency=None):
    """Threshold-free cluster enhancement along the last axis (as mne.stats').

    ``score(t) = sum_h extent(h, t) ** e_power * |h| ** h_power * dh`` over the thresholds
    ``h = start, start + step, ...`` up to the most extreme value, ``extent`` the length of the
    supra-threshold run holding ``t`` and ``dh = |h - previous h|`` (``|start|`` for the first).
    Every row (all but the last axis) is enhanced separately, all rows in one labelling per
    threshold (no loop over rows).

    Parameters
    ----------
    stat : ndarray of shape (..., n_times)
    start, step : float
        First threshold and the spacing of the thresholds. ``tail=-1``: ``start <= 0`` and
        ``step < 0`` (thresholds going down, runs below them, as mne.stats); ``tail=0``:
        ``start >= 0`` and ``step > 0``, applied to both signs.
    h_power, e_power : float
        Powers of the height and of the extent (2 and 0.5: Smith and Nichols 2009, mne's).
    tail : {1, 0, -1}, default=1
        1: runs above the thresholds, scores >= 0. -1: runs below them, scores <= 0. 0: the
        positive and negative parts enhanced separately, signed scores (positive where
        ``stat > 0``, negative where ``stat < 0``). These are the ``t_obs`` that
        ``mne.stats.permutation_cluster_1samp_test(..., threshold=dict(start=, step=),
        tail=)`` returns (its scores times the sign of the statistic).
    adjacency : array-like or sparse matrix of shape (n_channels, n_channels), optional
        Spatio-temporal TFCE of ``stat`` of shape ``(..., n_channels, n_times)``: the extent
        of a sample at threshold ``h`` is the size of its cluster over channels x time
        (neighbours in time or adjacent channels at the same time), as mne.stats' TFCE with
        ``adjacency``.

    Returns
    -------
    scores : ndarray, shape of ``stat``
    """
    stat = np.asarray(stat, dtype=np.float64)
    start, step = float(start), float(step)
    _check_tfce(start, step, tail)
    A = None if adjacency is None else _adjacency(adjacency, stat)
    if tail == 1:
        return _tfce_positive(stat, start, step, h_power, e_power, A)
    if tail == -1:
        return -_tfce_positive(-stat, -start, -step, h_power, e_power, A)
    return (_tfce_positive(stat, start, step, h_power, e_power, A)
            - _tfce_positive(-stat, start, step, h_power, e_power, A))


def _oriented(x, tail):
    """The statistic whose large values are evidence in the tested tail."""
    return np.abs(x) if tail == 0 else (-x if tail == -1 else x)


def tfce_default_step(observed, start=0.0, tail=1, n_steps=50):
    """Default TFCE step: ``n_steps`` thresholds from ``start`` to the observed extreme.

    ``(extreme - |start|) / n_steps`` with ``extreme`` the largest observed value in the tested
    tail (``max(observed)``, ``max(|observed|)`` for ``tail=0``, ``max(-observed)`` for
    ``tail=-1``, where the step is returned negative). Scale-free: RSA correlations
    (~0.01-0.3) and t values (~2-10) get the same resolution. 1 (-1) when no observed value
    passes ``start`` in the tested tail (every observed score is then 0).
    """
    extreme = float(np.nanmax(_oriented(np.asarray(observed, dtype=np.float64), tail)))
    span = extreme - abs(float(start))
    step = span / n_steps if np.isfinite(span) and span > 0 else 1.0
    return -step if tail == -1 else step


def tfce_fwe(observed, null, *, start=0.0, step=None, h_power=2.0, e_power=0.5, tail=1,
             adjacency=None):
    """TFCE scores of observed curves and their FWE p-values over models x times.

    The observed curves and every null curve are enhanced with the same thresholds
    (:func:`tfce`, all permutations x models in one pass per threshold); each permutation
    contributes the max of its scores over all models and times (``|score|`` for ``tail=0``,
    ``-score`` for ``tail=-1``), and ``p = (1 + #{H0 >= score}) / (1 + n_permutations)``
    (up to a relative tolerance of 1e-10 for ties in the last bits).

    Parameters
    ----------
    observed : ndarray of shape (n_models, n_times)
        E.g. RSA curves of every layer (or one curve, (n_times,)).
    null : ndarray of shape (n_permutations, n_models, n_times)
        The same statistic under joint permutations (:func:`permutation_null`).
    start : float, default=0.0
    step : float or None
        None: :func:`tfce_default_step` of ``observed`` (50 thresholds up to the observed
        extreme). Signs as :func:`tfce` (negative for ``tail=-1``).
    h_power, e_power : float, default=2.0, 0.5
    tail : {1, 0, -1}, default=1
    adjacency : array-like or sparse matrix of shape (n_channels, n_channels), optional
        Spatio-temporal TFCE (:func:`tfce`) of ``observed`` of shape ``(..., n_channels,
        n_times)``.

    Returns
    -------
    scores : ndarray, shape of ``observed``
        Signed TFCE scores of the observed curves.
    pvalues : ndarray, shape of ``observed``
        FWE-corrected p-value of every sample.
    """
    observed = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64)
    if null.ndim != observed.ndim + 1 or null.shape[1:] != observed.shape:
        raise ValueError(f"null: expected shape (n_permutations, *{observed.shape}); got "
                         f"{null.shape}")
    if step is None:
        step = tfce_default_step(observed, start, tail)
    opts = dict(start=start, step=step, h_power=h_power, e_power=e_power, tail=tail,
                adjacency=adjacency)
    scores = tfce(observed, **opts)
    return scores, tfce_pvalues(scores, tfce_h0(null, **opts), tail)


def tfce_h0(null, *, start=0.0, step=0.1, h_power=2.0, e_power=0.5, tail=1, adjacency=None):
    """The max TFCE score of each permutation: ndarray of shape (n_permutations,).

    :func:`tfce` of every null curve (all at once), then the max over all but the first axis
    of the scores oriented by ``tail`` (``|score|`` for 0, ``-score`` for -1). The maxima of
    separate chunks of permutations concatenate to those of the whole null (each curve's
    scores depend on its own values and the thresholds only). ``adjacency``: spatio-temporal
    TFCE of every ``(n_channels, n_times)`` slice (:func:`tfce`).
    """
    null = np.asarray(null, dtype=np.float64)
    opts = dict(start=start, step=step, h_power=h_power, e_power=e_power, tail=tail,
                adjacency=adjacency)
    k = null.shape[0]
    return _oriented(tfce(null, **opts), tail).reshape(k, -1).max(axis=1, initial=-np.inf)


def tfce_pvalues(scores, h0, tail=1):
    """FWE p-values ``(1 + #{h0 >= score}) / (1 + n_permutations)`` of TFCE ``scores``.

    ``h0``: :func:`tfce_h0` of the null (``scores`` oriented by ``tail`` as it is); ties are
    counted up to a relative tolerance of 1e-10 (TFCE sums differ in the last bits).
    """
    H0 = np.sort(np.asarray(h0, dtype=np.float64))
    k = H0.size
    s = _oriented(np.asarray(scores, dtype=np.float64), tail)
    tol = 1e-10 * max(float(np.max(np.abs(s), initial=0.0)), float(np.abs(H0).max(initial=0.0)))
    count = k - np.searchsorted(H0, s.ravel() - tol, side="left")
    return ((1 + count) / (1 + k)).reshape(s.shape)


def cluster_fwe(observed, null, threshold, tail=1, adjacency=None):
    """Cluster-mass inference over time, family-wise over time x models (layers).

    Parameters
    ----------
    observed : ndarray of shape (n_models, n_times)
        E.g. RSA curves of every layer.
    null : ndarray of shape (n_permutations, n_models, n_times)
        The same statistic under joint permutations (:func:`permutation_null`).
    threshold : float
        Cluster-forming threshold on the statistic, a magnitude: clusters of
        ``observed > threshold`` (``tail=1``), ``observed < -threshold`` (``tail=-1``), or
        both, apart (``tail=0``).
    tail : {1, -1, 0}
        The mass of a cluster is the sum of the statistic over it; permutation maxima and
        p-values use ``mass`` (1), ``-mass`` (-1) or ``|mass|`` (0).
    adjacency : array-like or sparse matrix of shape (n_channels, n_channels), optional
        Spatio-temporal clusters of ``observed`` of shape ``(..., n_channels, n_times)`` (and
        ``null`` of ``(n_permutations, ..., n_channels, n_times)``): neighbours in time or
        adjacent channels at the same time (:func:`cluster_masses`).

    Returns
    -------
    labels : ndarray of int of shape (n_models, n_times)
        Cluster ``k`` of the observed curves (0: none); clusters never span two models.
    cluster_p : ndarray of shape (n_clusters,)
        ``(1 + #{max null mass >= mass}) / (1 + n_permutations)``, the max over all models and
        times of each permutation.
    """
    observed = np.asarray(observed, dtype=np.float64)
    labels, masses = cluster_masses(observed, threshold, tail, adjacency)
    return labels, cluster_fwe_pvalues(masses, cluster_h0(null, threshold, tail, adjacency),
                                       tail)


def cluster_h0(null, threshold, tail=1, adjacency=None):
    """The max cluster mass of each permutation: ndarray of shape (n_permutations,).

    Clusters of adjacent samples along the last axis of every null curve (all curves labelled
    at once), or, with ``adjacency``, spatio-temporal clusters of every ``(n_channels,
    n_times)`` slice (``null`` of shape ``(n_permutations, ..., n_channels, n_times)``),
    oriented as :func:`cluster_fwe` (``mass``, ``-mass`` or ``|mass|``); 0 for a permutation
    without a cluster. The maxima of separate chunks of permutations concatenate to those of
    the whole null.
    """
    null = np.asarray(null, dtype=np.float64)
    k, t = null.shape[0], null.shape[-1]
    if k == 0:
        return np.zeros(0)
    if adjacency is not None:
        A = _adjacency(adjacency, null[0])
        c = null.shape[-2]
        m = null.size // (k * c * t) if c * t else 0
        mass = _max_mass_st(null.reshape(k * m, c, t), threshold, tail, A)
        return mass.reshape(k, m).max(axis=1, initial=0.0)
    m = null.size // (k * t) if t else 0
    return _max_mass(null.reshape(k * m, t), threshold, tail).reshape(k, m).max(axis=1,
                                                                              initial=0.0)


def cluster_fwe_pvalues(masses, h0, tail=1):
    """Cluster-mass FWE p-values ``(1 + #{h0 >= mass}) / (1 + n_permutations)``.

    ``masses``: signed cluster masses (:func:`cluster_masses`), oriented here by ``tail``;
    ``h0``: :func:`cluster_h0` of the null.
    """
    h0 = np.asarray(h0, dtype=np.float64)
    masses = np.asarray(masses, dtype=np.float64)
    masses = np.abs(masses) if tail == 0 else masses * (tail or 1)
    return (1 + (h0[None, :] >= masses[:, None] - 1e-12).sum(1)) / (1 + h0.size)


def permutation_cluster_1samp(X, threshold, n_permutations="all", tail=0, random_state=None,
                              adjacency=None):
    """One-sample cluster-mass test over time (or channels x time) by sign flips (as
    mne.stats').

    Parameters
    ----------
    X : ndarray of shape (n_subjects, n_times), or (n_subjects, n_channels, n_times) with
        ``adjacency`` (mne's ``spatio_temporal_cluster_1samp_test`` takes ``(n_subjects,
        n_times, n_channels)``: transpose the last two axes)
    threshold : float or dict
        t threshold forming clusters, or ``dict(start=, step=[, h_power=, e_power=])`` for
        TFCE (:func:`tfce` with ``tail``; then every sample is its own "cluster"; mne.stats
        returns the signed scores as ``t_obs``, here ``tfce(t_obs, ..., tail=tail)``). For
        ``tail=-1`` TFCE p-values mirror ``tail=1`` (``H0`` the min score per flip); mne 1.13
        compares its unsigned ``H0`` with ``<=`` there, which makes its ``tail=-1`` TFCE
        p-values unusable.
    n_permutations : int or "all"
        "all": every sign flip of the subjects (exact test; the first is the identity).
    tail : {0, 1, -1}
    random_state : int, numpy Generator or None
        Seed of the random sign flips (``n_permutations`` an int).
    adjacency : array-like or sparse matrix of shape (n_channels, n_channels), optional
        Spatio-temporal clusters: neighbours in time or adjacent channels at the same time
        (mne.stats' ``adjacency``, e.g. ``mne.channels.find_ch_adjacency``); with a TFCE
        ``threshold`` dict, spatio-temporal TFCE.

    Returns
    -------
    t_obs : ndarray of shape (n_times,) (or (n_channels, n_times))
    labels : ndarray of int, shape of ``t_obs``
    cluster_p : ndarray of shape (n_clusters,)
    H0 : ndarray of shape (n_flips,)
        Max cluster mass per sign flip (absolute for ``tail=0``; for ``tail=-1`` the most
        negative mass, as mne.stats), identity first.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n_permutations == "all":
        codes = np.arange(2 ** n)
        flips = 1 - 2 * ((codes[:, None] >> np.arange(n)) & 1).astype(float)
    else:
        rng = np.random.default_rng(random_state)
        flips = np.vstack([np.ones(n), rng.choice([-1.0, 1.0], (int(n_permutations) - 1, n))])
    if adjacency is not None:
        if X.ndim != 3:
            raise ValueError(f"X: with adjacency expected (n_subjects, n_channels, n_times); "
                             f"got shape {X.shape}")
        A = check_adjacency(adjacency, X.shape[1])
        flat = X.reshape(n, -1)
        sumsq = np.einsum("ij,ij->j", flat, flat)                   # unchanged by sign flips

        def tstats(F):              # t of every flip: one GEMM for the means, then in place
            mean = F @ flat
            mean *= 1.0 / n
            se = mean * mean
            se *= -n
            se += sumsq
            np.maximum(se, 0.0, out=se)
            se *= 1.0 / ((n - 1) * n)                       # var / n
            np.sqrt(se, out=se)
            with np.errstate(divide="ignore", invalid="ignore"):
                np.divide(mean, se, out=mean)
            return mean.reshape(len(F), *X.shape[1:])

        t_obs = tstats(np.ones((1, n)))[0]          # as the identity flip of the null
        block = max(1, (1 << 20) // max(1, flat.shape[1]))   # flips per block (8 MB: cached)
        if isinstance(threshold, dict):             # spatio-temporal TFCE: a p per sample
            opts = {k: threshold[k] for k in ("start", "step", "h_power", "e_power")
                    if k in threshold}
            scores = tfce(t_obs, **opts, tail=tail, adjacency=A)
            extreme = {1: lambda v: v.max(axis=1), -1: lambda v: v.min(axis=1),
                       0: lambda v: np.abs(v).max(axis=1)}[tail]
            H0 = np.concatenate([      # each block reduced to its flips' extremes at once
                extreme(tfce(tstats(flips[i:i + block]), **opts, tail=tail, adjacency=A)
                        .reshape(-1, t_obs.size)) for i in range(0, len(flips), block)])
            return (t_obs, np.arange(1, t_obs.size + 1).reshape(t_obs.shape),
                    cluster_pvalues(scores.ravel(), H0, tail).reshape(t_obs.shape), H0)
        labels, masses = cluster_masses(t_obs, threshold, tail, A)
        H0 = np.concatenate([_max_mass_st(tstats(flips[i:i + block]), threshold, tail, A)
                             for i in range(0, len(flips), block)])
        if tail == -1:
            H0 = -H0
        return t_obs, labels, cluster_pvalues(masses, H0, tail), H0
    t_obs = _tstat(X)
    if isinstance(threshold, dict):                               # TFCE: one p per sample
        opts = {k: threshold[k] for k in ("start", "step", "h_power", "e_power")
                if k in threshold}
        scores = tfce(t_obs, **opts, tail=tail)
        null = tfce(_tstat(flips[:, :, None] * X[None]), **opts, tail=tail)
        H0 = {1: null.max(axis=1), -1: null.min(axis=1), 0: np.abs(null).max(axis=1)}[tail]
        return t_obs, np.arange(1, t_obs.size + 1), cluster_pvalues(scores, H0, tail), H0
    labels, masses = cluster_masses(t_obs, threshold, tail)
    H0 = _max_mass(_tstat(flips[:, :, None] * X[None]), threshold, tail)
    if tail == -1:                      # signed, as mne.stats: the most negative mass per flip
        H0 = -H0
    return t_obs, labels, cluster_pvalues(masses, H0, tail), H0


def _f_stat(X, onehot):
    """One-way ANOVA F along the last axis for every group assignment (one matmul).

    ``X`` (N, T); ``onehot`` (P, k, N) group indicators; returns (P, T).
    """
    N, k = X.shape[0], onehot.shape[1]
    n_g = onehot.sum(axis=2)                                     # (P, k)
    sums = onehot @ X                                            # (P, k, T)
    total = X.sum(axis=0)
    ss_tot = (X * X).sum(axis=0) - total * total / N             # invariant to permutation
    ss_b = (sums * sums / n_g[:, :, None]).sum(axis=1) - total * total / N
    ss_w = ss_tot - ss_b
    return (ss_b / (k - 1)) / (ss_w / (N - k))


def permutation_cluster_test(groups, threshold=None, n_permutations=1024, tail=1,
                             random_state=None, chunk=256):
    """Cluster-mass test of one-way ANOVA F over time between groups (as mne.stats').

    Equal to ``mne.stats.permutation_cluster_test(groups, threshold, n_permutations, tail,
    seed=random_state)`` with its default ``f_oneway`` statistic: the same F values, clusters,
    and, for an integer (or ``RandomState``) ``random_state``, the same permutations (MNE draws
    ``n_permutations - 1`` orders with ``RandomState.permutation``) and so the same ``H0`` and
    p-values. Two groups: ``F = t ** 2`` of the two-sample t test.

    Parameters
    ----------
    groups : list of ndarray of shape (n_observations_k, n_times)
        At least two groups (subjects or trials per condition).
    threshold : float or None
        F threshold forming clusters; None: the 0.95 quantile of F(k - 1, N - k) (MNE's).
    n_permutations : int
        Including the identity.
    tail : {1, 0, -1}
        1 (F is non-negative): clusters of ``F > threshold``.
    random_state : int, RandomState or None

    Returns
    -------
    F_obs : ndarray of shape (n_times,)
    labels : ndarray of int of shape (n_times,)
    cluster_p : ndarray of shape (n_clusters,)
    H0 : ndarray of shape (n_permutations,)
        Max cluster mass per permutation, the observed data first.
    """
    from sklearn.utils import check_random_state

    groups = [np.asarray(g, dtype=np.float64) for g in groups]
    if len(groups) < 2 or any(g.ndim != 2 for g in groups):
        raise ValueError("groups: expected a list of at least two (n_observations, n_times) "
                         f"arrays; got shapes {[g.shape for g in groups]}")
    if len({g.shape[1] for g in groups}) != 1:
        raise ValueError(f"groups: different n_times {[g.shape[1] for g in groups]}")
    X = np.concatenate(groups, axis=0)
    N, k = X.shape[0], len(groups)
    if threshold is None:
        threshold = float(stats.f.ppf(0.95, k - 1, N - k))
    codes = np.repeat(np.arange(k), [g.shape[0] for g in groups])
    rng = check_random_state(random_state)
    orders = np.stack([np.arange(N)] + [rng.permutation(N) for _ in range(n_permutations - 1)])
    onehot_obs = (codes[None, :] == np.arange(k)[:, None]).astype(np.float64)[None]
    F_obs = _f_stat(X, onehot_obs)[0]
    labels, masses = cluster_masses(F_obs, threshold, tail)
    H0 = np.empty(orders.shape[0])
    for s in range(0, orders.shape[0], chunk):
        o = orders[s:s + chunk]
        # observation o[p, i] is put in the group of position i
        member = np.zeros((o.shape[0], k, N))
        member[np.arange(o.shape[0])[:, None], codes[None, :], o] = 1.0
        H0[s:s + chunk] = _max_mass(_f_stat(X, member), threshold, tail)
    return F_obs, labels, cluster_pvalues(masses, H0, tail), H0


def cluster_pvalues(masses, H0, tail=0):
    """``p = mean(H0 >= mass)`` over the null (|.| for ``tail=0``; ``H0`` includes the identity)."""
    masses, H0 = np.asarray(masses, dtype=np.float64), np.asarray(H0, dtype=np.float64)
    if tail == 0:
        masses, H0 = np.abs(masses), np.abs(H0)
    elif tail == -1:
        masses, H0 = -masses, -H0
    return (H0[None, :] >= masses[:, None] - 1e-12).mean(1) if masses.size else np.zeros(0)


def peak_latency(curves, times, n_boot=1000, ci=0.95, random_state=None):
    """Peak latency of the subject-mean curve per layer, with bootstrap CIs over subjects.

    Parameters
    ----------
    curves : ndarray of shape (n_subjects, n_layers, n_times)
    times : ndarray of shape (n_times,)
    n_boot : int
    ci : float

    Returns
    -------
    peak : ndarray of shape (n_layers,)
    low, high : ndarray of shape (n_layers,)
        Percentile interval of the peak latency over resampled subjects.
    boot : ndarray of shape (n_boot, n_layers)
        Bootstrap peak latencies (for a test of later peaks in deeper layers).
    """
    curves = np.asarray(curves, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if curves.ndim != 3 or curves.shape[2] != times.size:
        raise ValueError(f"curves: expected (n_subjects, n_layers, {times.size}); "
                         f"got shape {curves.shape}")
    n = curves.shape[0]
    rng = np.random.default_rng(random_state)
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.arange(n_boot)[:, None], rng.integers(0, n, (n_boot, n))), 1.0)
    means = np.einsum("bs,slt->blt", counts / n, curves)       # all resamples at once
    boot = times[means.argmax(axis=2)]
    peak = times[curves.mean(axis=0).argmax(axis=1)]
    a = (1 - ci) / 2
    low, high = np.quantile(boot, [a, 1 - a], axis=0)
    return peak, low, high, boot
