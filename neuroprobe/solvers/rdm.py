"""RDM kernels: dissimilarities through one matrix product, and vectorised RDM comparisons.

Pure array functions (numpy, or torch through :mod:`neuroprobe.solvers.backend`); the public
entry points with argument checks are in :mod:`neuroprobe.rsa`. :func:`to_condensed` and
:func:`to_square` convert between square and condensed RDMs (re-exported by :mod:`neuroprobe.rsa`).

RDMs are condensed vectors in scipy ``pdist`` order: the upper triangle of the square matrix,
row by row, ``(0, 1), (0, 2), ..., (0, n-1), (1, 2), ...``.

Comparison methods follow rsatoolbox (``rsatoolbox.rdm.compare``) exactly:

============== ============================== ==========================================
neuroprobe     rsatoolbox ``method=``          definition
============== ============================== ==========================================
``pearson``    ``"corr"``                      Pearson correlation of the vectors
``spearman``   ``"spearman"``                  Pearson correlation of average ranks
``rho_a``      ``"rho-a"``                     ``12 / (m**3 - m) * sum(rc_a * rc_b)``,
                                               rc = centred average ranks (no tie correction)
``kendall_tau_a`` ``"tau-a"``                  ``(concordant - discordant) / (m (m-1) / 2)``
``kendall_tau_b`` ``"kendall"`` / ``"tau-b"``  scipy ``kendalltau`` (tau-b)
``cosine``     ``"cosine"``                    cosine of the angle between the vectors
``corr_cov``   ``"corr_cov"``                  ``pearson`` after whitening by the RDM
                                               covariance (Diedrichsen et al. 2020)
``cosine_cov`` ``"cosine_cov"``                ``cosine`` after the same whitening
============== ============================== ==========================================

The whitened comparisons use the identity of Diedrichsen et al. (2020): with ``V`` the
covariance of the distance estimates of i.i.d. patterns (rsatoolbox's ``_get_v``),
``a' V^-1 b = <H A H, H B H>_F / 4`` where ``A``, ``B`` are the square RDMs and ``H`` the
centring matrix; so the whitened cosine is the cosine of the double-centred square RDMs (a
vectorised product, no ``m x m`` matrix). A 1-D ``sigma_k`` (pattern variances) scales
entry ``(i, j)`` of the double-centred matrix by ``1 / sqrt(sigma_i sigma_j)`` as rsatoolbox.

Dissimilarities: rsatoolbox's ``"euclidean"`` RDM is our ``"sqeuclidean"`` divided by the
number of features; its ``"mahalanobis"`` is our ``"mahalanobis"`` squared, divided by the
number of features (with its ``noise`` precision as our ``VI``); its ``"correlation"`` equals ours.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import squareform

from neuroprobe._utils import memory_budget
from neuroprobe.solvers.backend import get_backend

GRAM_METRICS = ("correlation", "cosine", "euclidean", "sqeuclidean", "mahalanobis")
DOT_METHODS = ("pearson", "spearman", "rho_a", "cosine")
KENDALL_METHODS = ("kendall_tau_a", "kendall_tau_b")
COV_METHODS = ("corr_cov", "cosine_cov")
COMPARE_METHODS = DOT_METHODS + KENDALL_METHODS + COV_METHODS


def n_pairs(n):
    """Length of the condensed RDM of ``n`` stimuli."""
    return n * (n - 1) // 2


def n_from_pairs(m):
    """Number of stimuli of a condensed RDM of length ``m`` (``ValueError`` if not triangular)."""
    n = int(round((1 + np.sqrt(1 + 8 * m)) / 2))
    if n * (n - 1) // 2 != m:
        raise ValueError(
            f"a condensed RDM has n*(n-1)/2 entries; {m} is not such a number"
        )
    return n


def pair_indices(n):
    """Row and column of each condensed entry (``np.triu_indices(n, 1)``, pdist order)."""
    return np.triu_indices(n, 1)


def _is_torch(x):
    return type(x).__module__.startswith("torch")


# --------------------------------------------------------------------------------------------
# dissimilarities
# --------------------------------------------------------------------------------------------
def _gram_to_condensed(left, right, out, dist, block_bytes, be):
    """Fill ``out`` with ``dist(i-block, all)`` entries above the diagonal, in row blocks.

    ``left @ right.T`` is the Gram matrix; ``dist(G_block, rows)`` turns one row block of it into
    dissimilarities. Rows ``a:b`` of the upper triangle are contiguous in pdist order.
    """
    n = left.shape[0]
    itemsize = left.element_size() if _is_torch(left) else left.itemsize
    rows = max(1, min(n, int(block_bytes // (3 * n * itemsize))))
    if _is_torch(left):
        cols = be.torch.arange(n, device=left.device)
    else:
        cols = np.arange(n)
    for a in range(0, n, rows):
        b = min(n, a + rows)
        block = dist(left[a:b] @ right.T, a, b)
        mask = cols[None, :] > cols[a:b, None]  # built on the device of the block
        start = a * n - a * (a + 1) // 2
        stop = b * n - b * (b + 1) // 2
        out[start:stop] = block[mask]
    return out


def rdm_gram(X, metric="correlation", *, VI=None, backend="numpy", device="cpu", block_bytes=None):
    """Condensed RDM of one pattern matrix ``X`` (n, p) through one (blocked) matrix product.

    Parameters
    ----------
    X : array of shape (n_stimuli, n_features)
    metric : {"correlation", "cosine", "euclidean", "sqeuclidean", "mahalanobis"}
    VI : array of shape (n_features, n_features), optional
        Inverse covariance for ``"mahalanobis"``; default ``inv(cov(X.T))`` as scipy's pdist.
    backend, device : str
        Array backend (``"numpy"`` or ``"torch"``) and device.
    block_bytes : int, optional
        Memory for one block of the Gram matrix (default: the memory budget).

    Returns
    -------
    rdm : ndarray of shape (n_stimuli * (n_stimuli - 1) // 2,)
        float64 for float64 input, else float32.
    """
    if metric not in GRAM_METRICS:
        raise ValueError(f"metric must be one of {GRAM_METRICS} here; got {metric!r}")
    be = get_backend(backend, device)
    dtype = np.float64 if np.asarray(X).dtype == np.float64 else np.float32
    Xn = np.asarray(X, dtype=dtype)
    n = Xn.shape[0]
    block_bytes = block_bytes or min(memory_budget(), be.free_memory())
    if metric == "correlation":
        Z = Xn - Xn.mean(axis=1, keepdims=True)
    elif metric == "cosine":
        Z = Xn
    else:
        # distances are translation invariant: centring the columns limits cancellation
        Z = Xn - Xn.mean(axis=0, keepdims=True)
    if metric == "mahalanobis" and VI is None:
        VI = np.linalg.inv(np.cov(np.asarray(X, dtype=np.float64).T)).T
    Z = be.asarray(Z)
    if metric in ("correlation", "cosine"):
        Z = Z / ((Z * Z).sum(1) ** 0.5)[:, None]
        left = right = Z

        def dist(G, a, b):
            return 1.0 - G
    else:
        right = Z
        left = Z @ be.asarray(np.asarray(VI, dtype=dtype)) if metric == "mahalanobis" else Z
        sq = (left * Z).sum(1)
        sqrt = metric in ("euclidean", "mahalanobis")

        def dist(G, a, b):
            D = sq[a:b, None] + sq[None, :] - 2.0 * G
            D = D.clip(0) if _is_torch(D) else np.maximum(D, 0, out=D)
            return D**0.5 if sqrt else D

    out = be.zeros(n_pairs(n), dtype=dtype)
    out = _gram_to_condensed(left, right, out, dist, block_bytes, be)
    return be.to_numpy(out)


def rdm_pdist(X, metric, **kwargs):
    """Condensed RDM through :func:`scipy.spatial.distance.pdist` (any scipy metric)."""
    from scipy.spatial.distance import pdist

    return pdist(np.asarray(X, dtype=np.float64), metric=metric, **kwargs)


def rdm(X, metric="correlation", *, backend="numpy", device="cpu", **kwargs):
    """Condensed RDM of ``X`` (n, p): Gram path for the metrics it covers, pdist otherwise."""
    if isinstance(metric, str) and metric in GRAM_METRICS:
        return rdm_gram(X, metric, backend=backend, device=device, **kwargs)
    return rdm_pdist(X, metric, **kwargs)


# --------------------------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------------------------
def rank_rows(A):
    """Average ranks (ties get the mean rank, as ``scipy.stats.rankdata``) of each row."""
    from scipy.stats import rankdata

    A = np.atleast_2d(np.asarray(A))
    return rankdata(A, axis=1).astype(np.float64)


def prepare(A, method, dtype=np.float64):
    """Transform rows of ``A`` so that ``method(a, b) == prepare(a) @ prepare(b)``.

    Valid for the dot-product methods (pearson, spearman, rho_a, cosine). A permutation of the
    entries of a row is a permutation of the entries of its prepared row: rank, mean and norm do
    not change; this is what makes permutation tests one gather and one matrix product.
    """
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    m = A.shape[1]
    if method in ("spearman", "rho_a"):
        A = rank_rows(A)
    if method in ("pearson", "spearman", "rho_a"):
        A = A - A.mean(axis=1, keepdims=True)
    if method == "rho_a":
        A = A * np.sqrt(12.0 / (m**3 - m))
    else:
        norms = np.sqrt(np.einsum("ij,ij->i", A, A))
        with np.errstate(divide="ignore", invalid="ignore"):
            A = A / norms[:, None]
    return A.astype(dtype, copy=False)


def _tie_pairs(v):
    _, counts = np.unique(v, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def kendall(a, b, variant="b"):
    """Kendall's tau-b (scipy) or tau-a (``(C - D) / total pairs``, as rsatoolbox) of two vectors.

    tau-a is derived from scipy's tau-b: ``C - D = tau_b * sqrt((T - ties_a) (T - ties_b))``.
    """
    from scipy.stats import kendalltau

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    total = a.size * (a.size - 1) // 2
    ta, tb = _tie_pairs(a), _tie_pairs(b)
    if ta == total or tb == total:  # a constant vector: no pair is discordant or concordant
        return np.nan if variant == "b" else 0.0
    tau_b = kendalltau(a, b).statistic
    if variant == "b":
        return float(tau_b)
    tau_a = tau_b * np.sqrt(float(total - ta) * float(total - tb)) / total
    return float(min(1.0, max(-1.0, tau_a)))


def cov_weight(A, method="cosine_cov", sigma_k=None, dtype=np.float64):
    """Rows of ``A`` (k, m) whitened by the RDM covariance, as unit vectors (k, n * n).

    ``cov_weight(a) @ cov_weight(b)`` is rsatoolbox's ``compare(a, b, "cosine_cov")`` (or
    ``"corr_cov"``, which removes each RDM's mean first): the cosine of the double-centred
    square RDMs (see the module notes), optionally scaled by a 1-D ``sigma_k``.
    """
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    if method == "corr_cov":
        A = A - A.mean(axis=1, keepdims=True)
    G = -0.5 * to_square(A)
    n = G.shape[-1]
    row = G.mean(axis=2)
    G = G - row[:, :, None] - row[:, None, :] + row.mean(axis=1)[:, None, None]
    if sigma_k is not None:
        sigma_k = np.asarray(sigma_k, dtype=np.float64)
        if sigma_k.shape != (n,):
            raise ValueError(
                f"sigma_k must hold one variance per stimulus (shape ({n},)); got shape "
                f"{sigma_k.shape} (a full pattern covariance is not supported)"
            )
        root = np.sqrt(sigma_k)
        G = G / (root[:, None] * root[None, :])
    G = G.reshape(G.shape[0], n * n)
    norms = np.sqrt(np.einsum("ij,ij->i", G, G))
    with np.errstate(divide="ignore", invalid="ignore"):
        G = G / norms[:, None]
    return G.astype(dtype, copy=False)


def compare(A, B, method="spearman", *, backend="numpy", device="cpu", sigma_k=None):
    """Comparison of every row of ``A`` (ka, m) with every row of ``B`` (kb, m) -> (ka, kb).

    ``sigma_k`` (pattern variances, shape (n,)) applies to the whitened methods only.
    """
    A = np.atleast_2d(A)
    B = np.atleast_2d(B)
    if sigma_k is not None and method not in COV_METHODS:
        raise ValueError(f"sigma_k applies to {COV_METHODS} only; got method={method!r}")
    if method in DOT_METHODS or method in COV_METHODS:
        be = get_backend(backend, device)
        dtype = np.float64 if backend == "numpy" else np.float32
        if method in COV_METHODS:
            pa, pb = (cov_weight(A, method, sigma_k, dtype),
                      cov_weight(B, method, sigma_k, dtype))
        else:
            pa, pb = prepare(A, method, dtype), prepare(B, method, dtype)
        if be.name == "numpy" and A.shape[0] * B.shape[0] <= 400:
            # a few RDMs: einsum avoids the thread start-up of a multi-threaded BLAS call
            return np.einsum("ik,jk->ij", pa, pb)
        pa, pb = be.asarray(pa), be.asarray(pb)
        return np.asarray(be.to_numpy(pa @ pb.T), dtype=np.float64)
    if method in KENDALL_METHODS:
        variant = method[-1]
        out = np.empty((A.shape[0], B.shape[0]))
        for i, a in enumerate(A):
            for j, b in enumerate(B):
                out[i, j] = kendall(a, b, variant)
        return out
    raise ValueError(f"method must be one of {COMPARE_METHODS}; got {method!r}")


# --------------------------------------------------------------------------------------------
# square <-> condensed
# --------------------------------------------------------------------------------------------
def _is_square_rdm(a):
    return (
        a.ndim >= 2
        and a.shape[-1] == a.shape[-2]
        and np.allclose(np.diagonal(a, axis1=-2, axis2=-1), 0)
        and np.allclose(a, np.swapaxes(a, -1, -2), equal_nan=True)
    )


def to_condensed(rdms, name="rdms"):
    """Condensed form of one RDM or a stack of RDMs.

    Parameters
    ----------
    rdms : array of shape (m,), (k, m), (n, n) or (k, n, n)
        A 2-D array is read as one square RDM when it is square, symmetric with a zero diagonal,
        else as a stack of condensed RDMs.
    name : str
        Name used in error messages.

    Returns
    -------
    ndarray of shape (m,) or (k, m)
    """
    a = np.asarray(rdms, dtype=np.float64) if not np.issubdtype(
        np.asarray(rdms).dtype, np.floating) else np.asarray(rdms)
    if a.ndim == 1:
        n_from_pairs(a.size)
        return a
    if a.ndim == 2 and _is_square_rdm(a):
        return squareform(a, checks=False)
    if a.ndim == 2:
        n_from_pairs(a.shape[1])
        return a
    if a.ndim == 3:
        if not _is_square_rdm(a):
            raise ValueError(
                f"{name}: a 3-D array must be a stack of square RDMs (symmetric, zero diagonal); "
                f"got shape {a.shape}"
            )
        i, j = np.triu_indices(a.shape[-1], 1)
        return a[:, i, j]
    raise ValueError(f"{name} must have 1 to 3 dimensions; got shape {a.shape}")


def to_square(rdms):
    """Square form (n, n) or (k, n, n) of condensed RDMs (m,) or (k, m)."""
    a = np.asarray(rdms)
    if a.ndim == 1:
        return squareform(a, checks=False)
    if a.ndim != 2:
        raise ValueError(f"rdms must be condensed (m,) or (k, m); got shape {a.shape}")
    n = n_from_pairs(a.shape[1])
    out = np.zeros((a.shape[0], n, n), dtype=a.dtype)
    i, j = np.triu_indices(n, 1)
    out[:, i, j] = a
    out[:, j, i] = a
    return out


# --------------------------------------------------------------------------------------------
# cross-validated Poisson KL divergence (rsatoolbox "poisson_cv")
# --------------------------------------------------------------------------------------------
def poisson_cv(X, conditions, cv_groups, prior_lambda=1.0, prior_weight=0.1, last_fold=False):
    """Cross-validated symmetrised KL divergence of Poisson rates (rsatoolbox ``poisson_cv``).

    For each run ``f``: the condition means of the other runs (``A``) and of run ``f`` (``B``),
    both shrunk towards ``prior_lambda`` (``(m + prior_lambda * prior_weight) / (1 +
    prior_weight)``); ``K = A @ log(B).T``; the RDM entry ``(i, j)`` is ``(K_ii + K_jj - K_ij
    - K_ji) / n_channels``. The RDM is the mean over runs (rsatoolbox 0.x returns the last
    run's, ``last_fold=True``).

    Parameters
    ----------
    X : array of shape (n_observations, n_channels), non-negative (e.g. spike counts)
    conditions, cv_groups : arrays of shape (n_observations,)
    prior_lambda, prior_weight : float
    last_fold : bool, default=False

    Returns
    -------
    rdm : ndarray of shape (n_conditions * (n_conditions - 1) / 2,)
    labels : ndarray
        The sorted unique conditions (the RDM's rows).
    """
    X = np.asarray(X, dtype=np.float64)
    labels, cond = np.unique(np.asarray(conditions), return_inverse=True)
    folds, fold = np.unique(np.asarray(cv_groups), return_inverse=True)
    n_cond, n_fold = labels.size, folds.size
    sums = np.zeros((n_fold, n_cond, X.shape[1]))
    np.add.at(sums, (fold, cond), X)
    counts = np.zeros((n_fold, n_cond))
    np.add.at(counts, (fold, cond), 1)
    i, j = np.triu_indices(n_cond, 1)
    out = np.zeros(i.size)
    use = [n_fold - 1] if last_fold else range(n_fold)
    for f in use:
        other = np.arange(n_fold) != f
        train = sums[other].sum(0) / counts[other].sum(0)[:, None]
        test = sums[f] / counts[f][:, None]
        train = (train + prior_lambda * prior_weight) / (1 + prior_weight)
        test = (test + prior_lambda * prior_weight) / (1 + prior_weight)
        K = train @ np.log(test).T
        d = np.diag(K)
        out += (d[i] + d[j] - K[i, j] - K[j, i]) / X.shape[1]
    return out / len(use), labels
