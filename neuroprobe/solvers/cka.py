"""Centred kernel alignment (CKA): array kernels on numpy or torch.

Linear and RBF CKA (Kornblith et al. 2019), biased (HSIC of centred Gram matrices) or
unbiased (the debiased HSIC estimator of Song et al. 2012, used for CKA by Nguyen et al.
2021). Many layers are compared in one call: every layer's centred Gram matrix is flattened
and all pairwise Frobenius inner products are one matrix product.
"""

from __future__ import annotations

import numpy as np

from neuroprobe.solvers.backend import get_backend

__all__ = ["gram_linear", "gram_rbf", "center_gram", "cka_matrix", "KERNELS"]

KERNELS = ("linear", "rbf")


def _median(xb, sq):
    """Median of all entries of ``sq`` (numpy's interpolating median, also on torch)."""
    if xb.name == "numpy":
        return np.median(sq)
    flat = sq.reshape(-1)
    m = flat.numel()
    lo = xb.torch.kthvalue(flat, (m + 1) // 2).values
    hi = xb.torch.kthvalue(flat, m // 2 + 1).values
    return (lo + hi) / 2


def gram_linear(X, xb):
    """Linear Gram matrix ``X @ X.T`` of the rows of ``X`` (n, p)."""
    return X @ X.T


def gram_rbf(X, xb, threshold=1.0):
    """RBF Gram matrix, bandwidth ``threshold`` times the median Euclidean distance.

    As Kornblith et al.'s reference code: ``exp(-d^2 / (2 threshold^2 median(d^2)))``, the
    median taken over all ``n * n`` squared distances (diagonal included).
    """
    dot = X @ X.T
    norms = (X * X).sum(1)
    sq = norms[:, None] + norms[None, :] - 2 * dot
    sq = sq * (sq > 0)  # rounding can make tiny negatives
    med = _median(xb, sq)
    if float(med) <= 0:
        raise ValueError("rbf_cka: the median pairwise distance is 0 (most rows identical); "
                         "the RBF bandwidth is undefined")
    scaled = -sq / (2 * threshold ** 2 * med)
    return np.exp(scaled) if xb.name == "numpy" else xb.torch.exp(scaled)


def center_gram(K, xb, unbiased=False):
    """Centred Gram matrix; ``unbiased`` gives the U-statistic form of Song et al. (2012).

    ``<center_gram(K), center_gram(L)>_F`` is (up to a factor common to all pairs) the
    biased HSIC ``tr(KHLH)`` or the unbiased HSIC estimator.
    """
    n = K.shape[0]
    if unbiased:
        if n < 4:
            raise ValueError(f"unbiased CKA needs at least 4 stimuli; got {n}")
        dt = np.float64 if xb.name == "numpy" and K.dtype == np.float64 else np.float32
        off = 1 - xb.asarray(np.eye(n, dtype=dt))
        K = K * off
        means = K.sum(0) / (n - 2)
        means = means - means.sum() / (2 * (n - 1))
        return (K - means[:, None] - means[None, :]) * off
    means = K.mean(0)
    means = means - means.mean() / 2
    return K - means[:, None] - means[None, :]


def _centred_stack(layers, kernel, threshold, unbiased, xb, dtype):
    out = []
    for X in layers:
        X = xb.asarray(X, dtype=dtype)
        X = X - X.mean(0)[None, :]
        K = gram_linear(X, xb) if kernel == "linear" else gram_rbf(X, xb, threshold)
        out.append(center_gram(K, xb, unbiased).reshape(-1))
    if xb.name == "numpy":
        return np.stack(out)
    return xb.torch.stack(out)


def cka_matrix(layers_a, layers_b=None, *, kernel="linear", threshold=1.0, unbiased=False,
               backend="numpy", device="cpu"):
    """CKA between every layer of ``layers_a`` and every layer of ``layers_b``.

    Parameters
    ----------
    layers_a, layers_b : sequence of arrays of shape (n, p_i)
        Representations of the same ``n`` stimuli (feature counts may differ);
        ``layers_b=None`` compares ``layers_a`` with itself.
    kernel : {"linear", "rbf"}
    threshold : float
        RBF bandwidth as a fraction of the median distance.
    unbiased : bool
        Debiased HSIC (Song et al. 2012; Nguyen et al. 2021) instead of the biased one.
    backend, device : str
        ``"numpy"`` or ``"torch"`` (torch works in float32).

    Returns
    -------
    ndarray of shape (len(layers_a), len(layers_b)), float64 (numpy) or float32 (torch).
    """
    xb = get_backend(backend, device)
    dtype = np.float64 if xb.name == "numpy" else np.float32
    A = _centred_stack(layers_a, kernel, threshold, unbiased, xb, dtype)
    B = A if layers_b is None else _centred_stack(layers_b, kernel, threshold, unbiased, xb,
                                                   dtype)
    num = A @ B.T
    na = (A * A).sum(1) ** 0.5
    nb = na if layers_b is None else (B * B).sum(1) ** 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / (na[:, None] * nb[None, :])
    return xb.to_numpy(out)
