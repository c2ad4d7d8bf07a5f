"""PLS regression (NIPALS, sklearn's ``PLSRegression``) computed on cross-products.

sklearn's NIPALS iterates on the ``(n_samples, n_targets)`` residual ``Y_k``. Every quantity it
needs is a function of ``S = X_k^T X_k`` (p x p) and ``C = X_k^T Y_k`` (p x t):

* power iteration: ``w = normalise(C y_w)`` (first iterate ``C[:, j]``), ``t^T t = w^T S w``,
  ``y_w = C^T w / t^T t``;
* loadings: ``p = S w / t^T t``, ``q = C^T w / t^T t``;
* deflation: ``S <- S - (t^T t) p p^T``, ``C <- C - (t^T t) p q^T`` (and the squared norms of the
  Y residual columns ``-= (t^T t) q**2``).

So one pass over Y (in column batches) to form ``C`` replaces every pass of NIPALS over Y.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import pinv


def cross_products(X, Y, *, scale=True, backend, dtype=np.float64, batch=4096, read, check):
    """Centre / scale X and form ``S = Xs^T Xs`` and ``C = Xs^T Ys`` with Y read in column batches.

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
    Y : 2-D array-like or h5py.Dataset (n_samples, n_targets)
    scale : bool
        Divide X and Y columns by their std (ddof=1; zero std -> 1), as sklearn.
    backend : backend object
    dtype : numpy dtype
    batch : int
        Columns of Y per batch.
    read : callable(Y, cols, dtype) -> ndarray
    check : callable(batch, start) -> (count, first) of non-finite values

    Returns
    -------
    dict with S, C (backend), x_mean, x_std, y_mean, y_std, y_ss (numpy), const (bool mask),
    bad ((count, first)).
    """
    X = np.asarray(X, dtype=dtype)
    x_mean = X.mean(axis=0)
    xc = X - x_mean
    if scale:
        x_std = xc.std(axis=0, ddof=1)
        x_std[x_std == 0.0] = 1.0
        xc /= x_std
    else:
        x_std = np.ones(X.shape[1], dtype=dtype)
    xs = backend.asarray(xc)
    n_t = Y.shape[1]
    C = backend.zeros((X.shape[1], n_t), dtype=dtype)
    y_mean = np.zeros(n_t, dtype=dtype)
    y_std = np.ones(n_t, dtype=dtype)
    y_ss = np.zeros(n_t, dtype=np.float64)
    const = np.zeros(n_t, dtype=bool)
    n_bad, first = 0, None
    for start in range(0, n_t, batch):
        cols = slice(start, min(start + batch, n_t))
        y = read(Y, cols, dtype)
        count, where = check(y, start)
        if count:
            n_bad += count
            first = first or where
            continue
        m = y.mean(axis=0)
        y -= m
        y_mean[cols] = m
        sd = y.std(axis=0, ddof=1)
        const[cols] = ~(sd > 0)
        if scale:
            sd[sd == 0.0] = 1.0
            y /= sd
            y_std[cols] = sd
        y_ss[cols] = (y.astype(np.float64) ** 2).sum(axis=0)
        C[:, cols] = xs.T @ backend.asarray(y)
    return {
        "S": xs.T @ xs,
        "C": C,
        "x_mean": x_mean,
        "x_std": x_std,
        "y_mean": y_mean,
        "y_std": y_std,
        "y_ss": y_ss,
        "const": const,
        "bad": (n_bad, first),
    }


def nipals_cov(stats, n_components, *, max_iter=500, tol=1e-6, backend):
    """PLS regression (sklearn's NIPALS, regression deflation, mode A) on cross-products.

    Parameters
    ----------
    stats : dict from :func:`cross_products` (its ``S`` and ``C`` are deflated in place)
    n_components : int
    max_iter, tol : as sklearn's ``PLSRegression``
    backend : backend object

    Returns
    -------
    dict of fitted attributes: x_weights_, y_weights_, x_loadings_, y_loadings_, x_rotations_,
    coef_ (n_features, n_targets), n_iter_, _x_mean, _x_std, _y_mean, _y_std.
    """
    S, C = stats["S"], stats["C"]
    y_ss = stats["y_ss"].copy()
    y_ss0 = y_ss.copy()
    p, q = C.shape
    dt = np.float32 if str(C.dtype).endswith("float32") else np.float64
    eps = np.finfo(dt).eps
    W = np.zeros((p, n_components))
    Wy = np.zeros((q, n_components))
    P = np.zeros((p, n_components))
    Q = np.zeros((q, n_components))
    n_iter = []
    for k in range(n_components):
        alive = np.flatnonzero(y_ss > max(1e3 * eps, 1e-10) * np.maximum(y_ss0, eps))
        if alive.size == 0:
            warnings.warn(f"y residual is constant at iteration {k}", stacklevel=3)
            break
        j = int(alive[0])
        x_old = yw = None
        for i in range(max_iter):
            xw = C[:, j] * 1.0 if i == 0 else C @ yw
            xw = xw / (float((xw @ xw) ** 0.5) + eps)
            tt = float(xw @ (S @ xw))
            yw = (C.T @ xw) / tt
            if x_old is not None:
                diff = xw - x_old
                if float(diff @ diff) < tol:
                    break
            if q == 1:
                break
            x_old = xw
        n_iter.append(i + 1)
        if i + 1 == max_iter:
            from sklearn.exceptions import ConvergenceWarning

            warnings.warn("Maximum number of iterations reached", ConvergenceWarning, stacklevel=3)
        xw_np = backend.to_numpy(xw).astype(np.float64)
        sign = np.sign(xw_np[np.argmax(np.abs(xw_np))])
        xw = xw * float(sign)
        yw = yw * float(sign)
        sw = S @ xw
        tt = float(xw @ sw)
        x_load = sw / tt
        y_load = (C.T @ xw) / tt
        S -= tt * (x_load[:, None] * x_load[None, :])
        C -= tt * (x_load[:, None] * y_load[None, :])
        y_load_np = backend.to_numpy(y_load).astype(np.float64)
        y_ss -= tt * y_load_np**2
        W[:, k] = backend.to_numpy(xw)
        Wy[:, k] = backend.to_numpy(yw)
        P[:, k] = backend.to_numpy(x_load)
        Q[:, k] = y_load_np
    rotations = W @ pinv(P.T @ W, check_finite=False)
    coef = (rotations @ Q.T) * stats["y_std"][None, :] / stats["x_std"][:, None]
    return {
        "x_weights_": W,
        "y_weights_": Wy,
        "x_loadings_": P,
        "y_loadings_": Q,
        "x_rotations_": rotations,
        "coef_": coef,
        "n_iter_": n_iter,
        "_x_mean": stats["x_mean"],
        "_x_std": stats["x_std"],
        "_y_mean": stats["y_mean"],
        "_y_std": stats["y_std"],
    }
