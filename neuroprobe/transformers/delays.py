"""Delayer: finite-impulse-response (FIR) expansion of scan-level features, within each run.

``Delayer(delays=(1, 2, 3, 4))`` stacks copies of the features shifted by each delay (in
scans): column block ``j`` holds ``X[t - delays[j]]`` of the same run, and zeros where that
scan would lie before the run's first scan (or, for a negative delay, after its last): a run's
first scans never see the previous run's last ones. A linear model on the output fits one
response per feature and delay, a free-form haemodynamic response; :func:`fold_delays` turns
its coefficients back into ``(feature, delay, target)`` to plot that response over time.

Run labels are handled as in :class:`~neuroprobe.transformers.RunScaler` (``runs`` argument
of ``transform`` / ``fit_transform``, the ``runs`` parameter, or metadata routing); the step
is stateless, so it may also be applied to the whole stacked data before a run-grouped CV.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroprobe._validation import fit_context
from neuroprobe.transformers.runs import run_indices

__all__ = ["Delayer", "fold_delays"]


def _delays(delays):
    arr = np.asarray(delays)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"delays must be a non-empty sequence of integers (scans), got {delays!r}"
        )
    if np.unique(arr).size != arr.size:
        raise ValueError(f"delays must be distinct, got {list(arr)}")
    return arr.astype(np.int64)


def fold_delays(coef, n_features, delays):
    """Fold delayed coefficients back to ``(n_features, n_delays, n_targets)``.

    Parameters
    ----------
    coef : array, shape (n_targets, n_delays * n_features) or (n_delays * n_features,)
        Coefficients of a linear model fitted on a :class:`Delayer`'s output (sklearn's
        ``coef_`` layout; a ``(n_delays * n_features, n_targets)`` array is accepted too).
    n_features : int
        Number of features before the delays.
    delays : sequence of int
        The Delayer's ``delays`` (their order is the column-block order).

    Returns
    -------
    ndarray, shape (n_features, n_delays, n_targets)
        ``out[f, j, v]``: weight of feature ``f`` at delay ``delays[j]`` for target ``v``.
    """
    delays = _delays(delays)
    n_in = int(n_features) * delays.size
    coef = np.asarray(coef)
    if coef.ndim == 1:
        coef = coef[None, :]
    if coef.ndim != 2 or n_in not in coef.shape:
        raise ValueError(
            f"coef must have {n_features} features x {delays.size} delays = {n_in} columns "
            f"(sklearn's (n_targets, n_features_in) coef_), got shape {coef.shape}"
        )
    if coef.shape[1] != n_in:  # (n_in, n_targets)
        coef = coef.T
    # columns are delay-major: column j * n_features + f
    return coef.reshape(coef.shape[0], delays.size, int(n_features)).transpose(2, 1, 0)


class Delayer(TransformerMixin, BaseEstimator):
    """FIR delays of scan-level features that never cross a run boundary.

    Parameters
    ----------
    delays : sequence of int
        Shifts in scans; ``d > 0`` puts the feature ``d`` scans later (the response to it),
        ``0`` keeps it, ``d < 0`` moves it earlier.
    runs : array-like of shape (n_samples,), optional
        Run labels of the rows seen by ``fit_transform`` / ``transform`` when those get no
        ``runs`` argument. ``None`` and no argument: one run.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When ``X`` has string column names.

    Notes
    -----
    Output columns are delay-major: ``[X(t - d_0), X(t - d_1), ...]``, named
    ``"<name>:d<k>"`` (``"x3:d2"``), so a prefix-based band selection of the input names
    (``"conv3:"``) still matches the delayed columns.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroprobe.transformers import Delayer
    >>> X = np.arange(1.0, 5.0)[:, None]
    >>> Delayer(delays=(1,)).fit_transform(X, runs=[0, 0, 1, 1]).ravel().tolist()
    [0.0, 1.0, 0.0, 3.0]
    """

    _parameter_constraints = {
        "delays": ["array-like"],
        "runs": ["array-like", None],
    }

    def __init__(self, delays=(1, 2, 3, 4), runs=None):
        self.delays = delays
        self.runs = runs

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, runs=None):
        """Check ``X`` and ``delays`` (nothing else is learned).

        Returns
        -------
        self
        """
        _delays(self.delays)
        validate_data(self, X, dtype=[np.float64, np.float32])
        return self

    def transform(self, X, runs=None):
        """Delayed copies of ``X``, zero-padded at each run's boundaries.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)
        runs : array-like of shape (n_samples,), optional
            Run label of each row (rows of a run in time order); default: the ``runs``
            parameter, else one run.

        Returns
        -------
        ndarray, shape (n_samples, n_delays * n_features), X's float dtype
        """
        check_is_fitted(self, "n_features_in_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        delays = _delays(self.delays)
        runs = self.runs if runs is None else runs
        n, p = X.shape
        out = np.zeros((n, delays.size * p), dtype=X.dtype)
        for idx in run_indices(runs, n):
            m = idx.size
            for j, d in enumerate(delays):
                if abs(d) >= m:
                    continue
                src, dst = (idx[: m - d], idx[d:]) if d >= 0 else (idx[-d:], idx[: m + d])
                out[dst, j * p : (j + 1) * p] = X[src]
        return out

    def fit_transform(self, X, y=None, runs=None):
        """``fit(X).transform(X, runs)``."""
        return self.fit(X, y).transform(X, runs=runs)

    def get_feature_names_out(self, input_features=None):
        """``"<name>:d<k>"`` for each delay ``k`` (delay-major), e.g. ``"x0:d1"``.

        Returns
        -------
        ndarray of str, shape (n_delays * n_features_in_,)
        """
        check_is_fitted(self, "n_features_in_")
        if input_features is None:
            input_features = getattr(self, "feature_names_in_", None)
        if input_features is None:
            input_features = [f"x{i}" for i in range(self.n_features_in_)]
        input_features = [str(f) for f in input_features]
        if len(input_features) != self.n_features_in_:
            raise ValueError(
                f"input_features has {len(input_features)} names but the Delayer was fitted "
                f"on {self.n_features_in_} features"
            )
        return np.asarray(
            [f"{f}:d{int(d)}" for d in _delays(self.delays) for f in input_features],
            dtype=object,
        )
