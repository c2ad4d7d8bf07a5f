"""Centred kernel alignment (CKA) between representations of the same stimuli.

:func:`linear_cka` and :func:`rbf_cka` compare two representations; :func:`cka_matrix`
compares every layer of one network with every layer of another in one call. Biased (Kornblith
et al. 2019) or unbiased (debiased HSIC: Song et al. 2012; Nguyen et al. 2021) estimators.
"""

from __future__ import annotations

import numpy as np

from neuroprobe.solvers import cka as _cka

__all__ = ["linear_cka", "rbf_cka", "cka_matrix"]


def _as_layers(X, name):
    """A list of 2-D float arrays with a common row count, checked."""
    if isinstance(X, dict):
        items = list(X.values())
    elif isinstance(X, (list, tuple)):
        items = list(X)
    else:
        arr = np.asarray(X)
        items = list(arr) if arr.ndim == 3 else [arr]
    if not items:
        raise ValueError(f"{name} is an empty collection of representations")
    out = []
    for i, x in enumerate(items):
        x = np.asarray(x)
        if x.ndim < 2:
            raise ValueError(f"{name}[{i}] must be 2-D (n_stimuli, n_features); got {x.ndim}-D")
        x = x.reshape(x.shape[0], -1)
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name}[{i}] contains NaN or infinite values")
        out.append(x)
    rows = {x.shape[0] for x in out}
    if len(rows) > 1:
        raise ValueError(f"{name}: all representations must have the same stimuli; got row "
                         f"counts {sorted(rows)}")
    return out


def cka_matrix(A, B=None, *, kernel="linear", threshold=1.0, unbiased=False,
               backend="numpy", device="cpu"):
    """CKA of every representation in ``A`` with every one in ``B`` (one batched call).

    Parameters
    ----------
    A, B : list / dict / stack of arrays of shape (n_stimuli, n_features_i)
        E.g. the layers of two networks on the same stimuli (rows in the same order).
        ``B=None`` compares ``A`` with itself.
    kernel : {"linear", "rbf"}, default="linear"
    threshold : float, default=1.0
        RBF bandwidth as a fraction of the median pairwise distance (``kernel="rbf"``).
    unbiased : bool, default=False
        Use the debiased HSIC estimator (needs >= 4 stimuli).
    backend, device : str
        ``"numpy"`` or ``"torch"``; ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    ndarray of shape (len(A), len(B))

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(20, 5))
    >>> float(cka_matrix([X], [2 * X])[0, 0])
    1.0
    """
    if kernel not in _cka.KERNELS:
        raise ValueError(f"kernel must be one of {list(_cka.KERNELS)}; got {kernel!r}")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0; got {threshold!r}")
    la = _as_layers(A, "A")
    lb = None if B is None else _as_layers(B, "B")
    if lb is not None and lb[0].shape[0] != la[0].shape[0]:
        raise ValueError(f"A and B must describe the same stimuli; got {la[0].shape[0]} and "
                         f"{lb[0].shape[0]} rows")
    return _cka.cka_matrix(la, lb, kernel=kernel, threshold=threshold, unbiased=unbiased,
                           backend=backend, device=device)


def linear_cka(X, Y, *, unbiased=False, backend="numpy", device="cpu"):
    """Linear CKA of ``X`` (n, p) and ``Y`` (n, q): a float in [0, 1] (biased estimator).

    See :func:`cka_matrix` for the parameters.
    """
    return float(cka_matrix([X], [Y], unbiased=unbiased, backend=backend, device=device)[0, 0])


def rbf_cka(X, Y, threshold=1.0, *, unbiased=False, backend="numpy", device="cpu"):
    """RBF-kernel CKA of ``X`` and ``Y``; bandwidth ``threshold`` x median distance.

    See :func:`cka_matrix` for the parameters.
    """
    return float(cka_matrix([X], [Y], kernel="rbf", threshold=threshold, unbiased=unbiased,
                            backend=backend, device=device)[0, 0])
