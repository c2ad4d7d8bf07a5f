"""Noise precision from residuals, applied without forming a p x p matrix.

The estimators equal rsatoolbox's ``prec_from_residuals`` (``"diag"``, ``"full"``,
``"shrinkage_eye"`` (Ledoit & Wolf 2004), ``"shrinkage_diag"`` (Schäfer & Strimmer 2005)). A
shrinkage covariance of ``n`` residuals is a diagonal plus a rank-``n`` term, ``D + U U^T``, so
its inverse is applied through the Woodbury identity: memory ``O(n p + n^2)``, never ``p^2``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NoisePrecision", "precision_from_residuals", "as_precision", "NOISE_METHODS"]

NOISE_METHODS = ("diag", "full", "shrinkage_eye", "shrinkage_diag")


class NoisePrecision:
    """A noise precision ``P = (D + U U^T)^-1`` (or a dense ``P``) over ``p`` channels.

    Parameters
    ----------
    cov_diag : ndarray of shape (p,), optional
        Diagonal ``D`` of the covariance.
    cov_factor : ndarray of shape (p, k), optional
        Low-rank factor ``U`` of the covariance.
    dense : ndarray of shape (p, p), optional
        A dense precision (instead of the two above).
    """

    def __init__(self, cov_diag=None, cov_factor=None, dense=None):
        self.cov_diag = cov_diag
        self.cov_factor = cov_factor
        self.dense_precision = dense
        self._core = None
        if dense is None and cov_factor is not None:
            W = cov_factor / cov_diag[:, None]
            core = np.eye(cov_factor.shape[1]) + cov_factor.T @ W
            self._W, self._core = W, np.linalg.cholesky(core)

    @property
    def n_channels(self):
        if self.dense_precision is not None:
            return self.dense_precision.shape[0]
        return self.cov_diag.shape[0]

    def matmul(self, V):
        """``P @ V`` for ``V`` of shape (p, m)."""
        if self.dense_precision is not None:
            return self.dense_precision @ V
        out = V / self.cov_diag[:, None]
        if self._core is None:
            return out
        from scipy.linalg import cho_solve

        return out - self._W @ cho_solve((self._core, True), self._W.T @ V)

    def dense(self):
        """The p x p precision (for tests and small ``p`` only)."""
        return self.matmul(np.eye(self.n_channels))


def _diag_stats(R, dof):
    """rsatoolbox ``_covariance_diag`` shrinkage weight, from ``n x n`` products only."""
    n = R.shape[0]
    var = np.einsum("ij,ij->j", R, R) / dof
    Rt = R / np.sqrt(var)
    G = Rt @ Rt.T
    row2 = np.einsum("ij,ij->i", Rt, Rt)
    col4 = np.einsum("ij,ij->j", Rt ** 2, Rt ** 2)
    col2 = np.einsum("ij,ij->j", Rt, Rt)
    s2_off = (np.sum(row2 ** 2) - np.sum(col4)) / (n - 1)
    smean2_off = (np.sum(G ** 2) - np.sum(col2 ** 2)) / (n - 1) ** 2
    var_hat_off = n / dof ** 2 * (s2_off - smean2_off)
    lamb = float(np.clip(var_hat_off / smean2_off, 0, 1))
    return var, lamb


def _eye_stats(R, dof):
    """rsatoolbox ``_covariance_eye`` (Ledoit-Wolf): covariance ``a I + c R^T R``."""
    n, p = R.shape
    row2 = np.einsum("ij,ij->i", R, R)
    trS = row2.sum() / n
    fro2 = np.sum((R @ R.T) ** 2) / n ** 2
    m = trS / p
    d2 = fro2 - 2 * m * trS + m * m * p
    b2 = min(d2, (np.sum(row2 ** 2) / n - fro2) / n)
    return b2 / d2 * m * n / dof, (d2 - b2) / d2 / dof


def precision_from_residuals(residuals, dof=None, method="shrinkage_diag"):
    """Noise precision from residuals (n_residuals, n_channels), as rsatoolbox's.

    Parameters
    ----------
    residuals : array of shape (n, p)
        Residuals (e.g. of a first-level GLM); they are demeaned first.
    dof : int, optional
        Degrees of freedom; default ``n - 1``.
    method : {"shrinkage_diag", "shrinkage_eye", "diag", "full"}

    Returns
    -------
    NoisePrecision
        Apply with ``.matmul``; ``"full"`` forms the dense p x p inverse (small p only).
    """
    if method not in NOISE_METHODS:
        raise ValueError(f"method must be one of {list(NOISE_METHODS)}; got {method!r}")
    R = np.asarray(residuals, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] < 2:
        raise ValueError(f"residuals must be 2-D (n_residuals >= 2, n_channels); got shape "
                         f"{R.shape}")
    R = R - R.mean(axis=0, keepdims=True)
    dof = R.shape[0] - 1 if dof is None else dof
    var = np.einsum("ij,ij->j", R, R) / dof
    if np.any(var <= 0):
        raise ValueError(f"residuals: {int(np.sum(var <= 0))} channels have zero variance; "
                         "their noise precision is undefined")
    if method == "diag":
        return NoisePrecision(cov_diag=var)
    if method == "full":
        return NoisePrecision(dense=np.linalg.inv(R.T @ R / dof))
    if method == "shrinkage_eye":
        a, c = _eye_stats(R, dof)
        diag, scale = np.full(R.shape[1], a), c
    else:
        var, lamb = _diag_stats(R, dof)
        diag, scale = lamb * var, (1 - lamb) / dof
    if np.any(diag <= 0):  # no shrinkage: the sample covariance itself (small p only)
        return NoisePrecision(dense=np.linalg.inv(R.T @ R * scale))
    return NoisePrecision(cov_diag=diag, cov_factor=np.sqrt(scale) * R.T)


def as_precision(noise, n_channels):
    """``noise`` (None, (p,) diagonal precision, (p, p) precision or NoisePrecision), checked."""
    if noise is None or isinstance(noise, NoisePrecision):
        if noise is not None and noise.n_channels != n_channels:
            raise ValueError(f"noise is a precision over {noise.n_channels} channels; the data "
                             f"have {n_channels}")
        return noise if noise is not None else NoisePrecision(cov_diag=np.ones(n_channels))
    arr = np.asarray(noise, dtype=np.float64)
    if arr.shape == (n_channels,):
        return NoisePrecision(cov_diag=1 / arr)
    if arr.shape == (n_channels, n_channels):
        return NoisePrecision(dense=arr)
    raise ValueError(f"noise must be a precision of shape ({n_channels},) (diagonal) or "
                     f"({n_channels}, {n_channels}); got shape {arr.shape}")
