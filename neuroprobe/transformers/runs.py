"""RunScaler: z-score every column within each run (what sklearn's StandardScaler cannot do).

Naturalistic fMRI studies z-score each run's features and responses with that run's own mean
and standard deviation (Huth et al. 2016; the gallantlab voxelwise tutorials), the test runs
included: the statistics of a run describe the run, not a fitted model, so nothing is learned at
``fit`` and nothing leaks from the training runs into the test runs.

Run labels
----------
``runs`` (one label per row) is given to ``transform`` / ``fit_transform`` (or, for a fixed
data set, as the ``runs`` parameter). Inside a Pipeline route it with scikit-learn's metadata
routing (``RunScaler().set_transform_request(runs=True)``), or, since the step is stateless,
apply it to the whole stacked data before a ``LeaveOneGroupOut`` split with ``groups=runs``.
A run's rows need not be contiguous; each row is scaled with the statistics of its run.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroprobe._validation import fit_context

__all__ = ["RunScaler", "run_indices"]


def run_indices(runs, n_samples, name="runs"):
    """Row indices of each run, in the order of the sorted run labels.

    Parameters
    ----------
    runs : array-like of shape (n_samples,) or None
        One run label per row; ``None``: all rows are one run.
    n_samples : int
        Number of rows the labels must match.
    name : str
        Argument name used in the error message.

    Returns
    -------
    list of ndarray of int
    """
    if runs is None:
        return [np.arange(n_samples)]
    runs = np.asarray(runs)
    if runs.ndim != 1 or runs.shape[0] != n_samples:
        raise ValueError(
            f"{name} must give one run label per row: got shape {runs.shape} for {n_samples} rows"
        )
    _, inverse = np.unique(runs, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    return np.split(order, bounds)


class RunScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standardise each column within each run: ``(x - mean_run) / std_run``.

    Parameters
    ----------
    with_mean : bool
        Subtract each run's column means.
    with_std : bool
        Divide by each run's column standard deviations (``ddof=0``; a constant column is
        divided by 1, as in StandardScaler).
    runs : array-like of shape (n_samples,), optional
        Run labels of the rows seen by ``fit_transform`` / ``transform`` when those get no
        ``runs`` argument. ``None`` and no argument: one run (plain z-scoring).

    Attributes
    ----------
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from neuroprobe.transformers import RunScaler
    >>> X = np.array([[0.0], [2.0], [10.0], [30.0]])
    >>> RunScaler().fit_transform(X, runs=[0, 0, 1, 1]).ravel().tolist()
    [-1.0, 1.0, -1.0, 1.0]
    """

    _parameter_constraints = {
        "with_mean": ["boolean"],
        "with_std": ["boolean"],
        "runs": ["array-like", None],
    }

    def __init__(self, with_mean=True, with_std=True, runs=None):
        self.with_mean = with_mean
        self.with_std = with_std
        self.runs = runs

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, runs=None):
        """Check ``X`` (nothing is learned: each run is scaled with its own statistics).

        Returns
        -------
        self
        """
        validate_data(self, X, dtype=[np.float64, np.float32])
        return self

    def transform(self, X, runs=None):
        """Z-score ``X`` within each run.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)
        runs : array-like of shape (n_samples,), optional
            Run label of each row; default: the ``runs`` parameter, else one run.

        Returns
        -------
        ndarray, shape (n_samples, n_features), X's float dtype
        """
        check_is_fitted(self, "n_features_in_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        runs = self.runs if runs is None else runs
        out = np.empty_like(X)
        for idx in run_indices(runs, X.shape[0]):
            block = X[idx]
            if self.with_mean:
                block = block - block.mean(axis=0)
            if self.with_std:
                std = X[idx].std(axis=0)
                block = block / np.where(std > 0, std, 1.0).astype(X.dtype)
            out[idx] = block
        return out

    def fit_transform(self, X, y=None, runs=None):
        """``fit(X).transform(X, runs)``."""
        return self.fit(X, y).transform(X, runs=runs)
