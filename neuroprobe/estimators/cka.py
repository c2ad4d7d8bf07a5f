"""CKAScorer: an estimator whose score is the CKA of model features with brain responses."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroprobe._validation import Interval, Real, StrOptions, fit_context
from neuroprobe.solvers import cka as _cka
from neuroprobe.solvers.backend import get_backend


class CKAScorer(BaseEstimator):
    """Centred kernel alignment between model features ``X`` and brain responses ``y``.

    ``score(X, y)`` is the CKA (:func:`neuroprobe.cka.cka_matrix`) of the rows of ``X`` and
    ``y`` (the same stimuli), so a CKAScorer can end a :class:`~sklearn.pipeline.Pipeline`
    like :class:`~neuroprobe.estimators.RSAScorer`. It implements the fast stimulus-permutation
    protocol of :class:`~neuroprobe.estimators.PermutationTest`: permuting the rows of ``y``
    permutes the rows and columns of its centred Gram matrix, so the null needs no refit.

    Parameters
    ----------
    kernel : {"linear", "rbf"}, default="linear"
    threshold : float, default=1.0
        RBF bandwidth as a fraction of the median distance.
    unbiased : bool, default=False
        Debiased HSIC estimator (Song et al. 2012; Nguyen et al. 2021).
    backend : {"numpy", "torch"}, default="numpy"
    device : str, default="cpu"

    Attributes
    ----------
    cka_ : float
        CKA of the ``X`` and ``y`` given to ``fit``.
    n_features_in_ : int
    """

    _parameter_constraints = {
        "kernel": [StrOptions(set(_cka.KERNELS))],
        "threshold": [Interval(Real, 0, None, closed="neither")],
        "unbiased": ["boolean"],
        "backend": [StrOptions({"numpy", "torch"})],
        "device": [str],
    }

    def __init__(self, kernel="linear", threshold=1.0, unbiased=False, backend="numpy",
                 device="cpu"):
        self.kernel = kernel
        self.threshold = threshold
        self.unbiased = unbiased
        self.backend = backend
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        return tags

    def _check_y(self, X, y):
        if y is None:
            raise ValueError("CKAScorer needs y (brain responses of the rows of X)")
        y = check_array(np.asarray(y).reshape(len(y), -1), dtype=(np.float64, np.float32),
                        input_name="y")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have one row per row of X ({X.shape[0]}); got "
                             f"{y.shape[0]}")
        return y

    def _grams(self, X, y):
        xb = get_backend(self.backend, self.device)
        dtype = np.float64 if xb.name == "numpy" else np.float32
        G = _cka._centred_stack([X, y], self.kernel, self.threshold, self.unbiased, xb, dtype)
        return xb.to_numpy(G).astype(np.float64)

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute ``cka_`` for ``X`` (n_stimuli, n_features) and ``y`` (n_stimuli, ...)."""
        X = validate_data(self, X, dtype=(np.float64, np.float32))
        y = self._check_y(X, y)
        self.cka_ = self._score(X, y)
        return self

    def _score(self, X, y):
        Kx, Ky = self._grams(X, y)
        return float(Kx @ Ky / np.sqrt((Kx @ Kx) * (Ky @ Ky)))

    def score(self, X, y=None):
        """CKA of ``X`` with ``y`` (one float)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        return self._score(X, self._check_y(X, y))

    def _permutation_scores(self, X, Y, permutations, *, cv=None, groups=None):
        """Observed CKA and its null under stimulus permutations of ``Y``'s rows.

        Returns
        -------
        observed : ndarray of shape (1,)
        null : ndarray of shape (n_permutations, 1)
        """
        X = check_array(X, dtype=(np.float64, np.float32), input_name="X")
        Y = self._check_y(X, Y)
        n = X.shape[0]
        Kx, Ky = self._grams(X, Y)
        Kx, Ky = Kx.reshape(n, n), Ky.reshape(n, n)
        denom = np.sqrt(np.sum(Kx * Kx) * np.sum(Ky * Ky))
        perms = np.asarray(permutations)
        null = np.empty((perms.shape[0], 1))
        for k, p in enumerate(perms):  # <Kx, Ky[p][:, p]>: one n x n product per permutation
            null[k, 0] = np.sum(Kx * Ky[np.ix_(p, p)])
        return np.array([np.sum(Kx * Ky) / denom]), null / denom
