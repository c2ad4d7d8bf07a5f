"""Time-resolved meta-estimators: :class:`TimeResolved` (one estimator per time window of the
brain data, RSA vectorised) and :class:`TemporalGeneralization` (train at t1, test at t2)."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone

from .._validation import HasMethods, Interval, fit_context
from ..io.epochs import EpochData
from ..solvers.temporal import n_windows, searchlight_rsa, time_resolved_rsa

__all__ = ["TimeResolved", "TemporalGeneralization"]


def _brain(y, what="y"):
    """Brain data as a float array (n_stimuli, n_channels, n_times)."""
    data = y.data if isinstance(y, EpochData) else np.asarray(y, dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"{what}: expected brain data (n_stimuli, n_channels, n_times) or an "
                         f"EpochData; got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{what}: brain data hold NaN/inf values")
    return data


def _centres(n_times, radius, step):
    return np.arange(radius, radius + n_windows(n_times, radius), step)


class TimeResolved(MetaEstimatorMixin, BaseEstimator):
    """Apply an estimator at every time window of time-resolved brain data.

    ``fit(X, y)``: ``X`` the model features (n_stimuli, n_features), ``y`` the brain data
    (n_stimuli, n_channels, n_times) or an :class:`~neuroprobe.io.epochs.EpochData`. At each
    window centre ``t`` the estimator sees ``y[:, :, t - r : t + r + 1]`` flattened to
    (n_stimuli, n_channels * (2r + 1)). For an :class:`~neuroprobe.estimators.RSAScorer` without a
    fixed target RDM, the window RDMs, ranks and comparisons come from one fused pass over chunks
    of windows (:func:`~neuroprobe.solvers.temporal.time_resolved_rsa`, fast path). For a
    :class:`~neuroprobe.estimators.VoxelwiseEncoder` whose targets are fitted independently
    (per-target alphas, or OLS), every window's channels are stacked as targets of one fit
    (channels x windows in the encoder's target batches, one decomposition of ``X`` per fold),
    which equals fitting a clone per window.

    Parameters
    ----------
    estimator : estimator with ``fit`` and ``score``
        ``score_targets`` is used when present.
    temporal_radius : int, default=0
        Half-width of the window in samples (as mne-rsa's, after conversion to samples).
    step : int, default=1
        Samples between window centres.
    spatial_neighbours : array-like of bool of shape (n_centres, n_channels), optional
        Channel-neighbourhood searchlight (RSA fast path only): one curve per model and centre,
        as mne-rsa's ``spatial_radius`` (neighbourhoods from
        :func:`neuroprobe.solvers.temporal.channel_neighbourhoods`).
    n_jobs : int or None, default=None
        Threads of the RSA fast path and the searchlight (chunks of windows: copy, Gram
        products, ranks; joblib's convention, None: 1, -1: all cores). Results do not depend
        on it.

    Attributes
    ----------
    times_ : ndarray of int
        Sample index of each window centre.
    estimators_ : list of estimators (generic path only)
    estimator_ : estimator (batched encoder path only)
        The one encoder fitted on the windows stacked as targets.
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "score"])],
        "temporal_radius": [Interval(Integral, 0, None, closed="left")],
        "step": [Interval(Integral, 1, None, closed="left")],
        "spatial_neighbours": ["array-like", None],
        "n_jobs": [Integral, None],
    }

    def __init__(self, estimator, temporal_radius=0, step=1, spatial_neighbours=None,
                 n_jobs=None):
        self.estimator = estimator
        self.temporal_radius = temporal_radius
        self.step = step
        self.spatial_neighbours = spatial_neighbours
        self.n_jobs = n_jobs

    def _fast(self):
        from .rsa import RSAScorer

        est = self.estimator
        return (isinstance(est, RSAScorer) and est.target_rdm is None and est.target_groups is None
                and (est.target_metric or est.metric) in ("correlation", "sqeuclidean",
                                                          "euclidean")
                and est.comparison in ("spearman", "pearson"))

    def _batched(self):
        from .encoding import VoxelwiseEncoder

        est = self.estimator
        return isinstance(est, VoxelwiseEncoder) and (est.alpha_per_target
                                                      or not est._solver().tuned)

    def _stacked(self, Y):
        """Every window's (channel x lag) columns side by side: (n, n_windows * c * width)."""
        r = self.temporal_radius
        view = np.lib.stride_tricks.sliding_window_view(Y, 2 * r + 1, axis=2)  # (n, c, w, width)
        view = view[:, :, self.times_ - r]
        return np.ascontiguousarray(view.transpose(0, 2, 1, 3)).reshape(Y.shape[0], -1)

    def _window(self, Y, t):
        r = self.temporal_radius
        return Y[:, :, t - r:t + r + 1].reshape(Y.shape[0], -1)

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit one estimator per window (or, for RSA, store the model RDMs). Returns self."""
        Y = _brain(y)
        X = np.asarray(X)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"y: {Y.shape[0]} stimuli but X has {X.shape[0]}")
        self.times_ = _centres(Y.shape[2], self.temporal_radius, self.step)
        if self.spatial_neighbours is not None and not self._fast():
            raise ValueError("spatial_neighbours: the channel searchlight needs an RSAScorer "
                             "without a fixed target RDM (correlation/euclidean metric, "
                             "spearman/pearson comparison)")
        if self._fast():
            self.rsa_ = clone(self.estimator).fit(X, self._window(Y, self.times_[0]))
        elif self._batched():
            self.estimator_ = clone(self.estimator).fit(X, self._stacked(Y))
        else:
            self.estimators_ = [clone(self.estimator).fit(X, self._window(Y, t))
                                for t in self.times_]
        return self

    def score_targets(self, X, y):
        """Score curves: ndarray of shape (n_targets, n_windows)."""
        Y = _brain(y)
        X = np.asarray(X)
        if self._fast():
            est = self.rsa_
            _, models = est._model_rdms(X)
            metric = est.target_metric or est.metric
            if self.spatial_neighbours is not None:       # (models, centres, windows)
                r = searchlight_rsa(Y, models, np.asarray(self.spatial_neighbours, bool),
                                    self.temporal_radius, metric, est.comparison,
                                    n_jobs=self.n_jobs)
                r = r[:, :, self.times_ - self.temporal_radius]
                return r.reshape(-1, r.shape[2])
            r = time_resolved_rsa(Y, models, self.temporal_radius, metric, est.comparison,
                                  n_jobs=self.n_jobs)          # fused: RDMs never stored
            return r[:, self.times_ - self.temporal_radius]
        if self._batched():
            scores = self.estimator_.score_targets(X, self._stacked(Y))
            return np.asarray(scores, dtype=np.float64).reshape(len(self.times_), -1).T
        cols = []
        for est, t in zip(self.estimators_, self.times_):
            w = self._window(Y, t)
            s = est.score_targets(X, w) if hasattr(est, "score_targets") else est.score(X, w)
            cols.append(np.atleast_1d(np.asarray(s, dtype=np.float64)))
        return np.stack(cols, axis=1)

    def score(self, X, y):
        """Mean of the score curves (the summary for GridSearchCV over layers)."""
        return float(np.mean(self.score_targets(X, y)))


class TemporalGeneralization(MetaEstimatorMixin, BaseEstimator):
    """Train at every time point t1, test at every t2 (as MNE's ``GeneralizingEstimator``).

    ``X``: brain data (n_trials, n_channels, n_times); ``y``: labels / targets per trial.

    Parameters
    ----------
    estimator : estimator with ``fit`` and ``score``

    Attributes
    ----------
    estimators_ : list of n_times fitted estimators
    """

    _parameter_constraints = {"estimator": [HasMethods(["fit", "score"])]}

    def __init__(self, estimator):
        self.estimator = estimator

    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit one estimator per time point. Returns self."""
        X = _brain(X, "X")
        self.estimators_ = [clone(self.estimator).fit(X[:, :, t], y) for t in range(X.shape[2])]
        return self

    def score(self, X, y):
        """Generalisation matrix: ndarray of shape (n_train_times, n_test_times)."""
        X = _brain(X, "X")
        if X.shape[2] != len(self.estimators_):
            raise ValueError(f"X: {X.shape[2]} time points but fitted on {len(self.estimators_)}")
        return np.array([[est.score(X[:, :, t], y) for t in range(X.shape[2])]
                         for est in self.estimators_])
