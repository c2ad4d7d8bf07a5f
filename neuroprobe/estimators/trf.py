"""Temporal response functions (TRFs) of continuous recordings: lagged ridge per channel.

:class:`TemporalResponseFunction` expands the stimulus features (a speech envelope, a DNN's
audio features over time) into copies lagged by ``tmin .. tmax`` seconds within each run
(:class:`~neuroprobe.transformers.Delayer`), then fits ridge for every channel at once with
the channel's alpha chosen by run-wise cross-validation
(:class:`~neuroprobe.estimators.VoxelwiseEncoder`, one decomposition of the lagged design per
fold). The kernel is returned as ``(feature, lag, channel)`` (:func:`fold_delays`).

Conventions are MNE-Python's ``mne.decoding.ReceptiveField``:

* lags ``round(tmin * sfreq) .. round(tmax * sfreq)`` samples; lag ``d > 0`` means the
  response follows the stimulus by ``d`` samples (column ``X[t - d]``);
* ``edge="mean"`` (``ReceptiveField(..., estimator=sklearn.linear_model.Ridge(alpha))``): in
  each run every lagged copy is centred on its own samples and the lags that fall outside the
  run are filled with that (zero) mean, MNE's ``fill_mean``;
* ``edge="zero"`` (``ReceptiveField(..., estimator=alpha)``, i.e. ``TimeDelayingRidge`` with
  ``edge_correction=True``): the features are centred once on all samples and the lags outside
  a run are zeros; the lagged design is not re-centred;
* ``score`` / ``score_targets`` use the samples whose every lag lies inside the run
  (MNE's ``valid_samples_``).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import KFold, LeaveOneGroupOut
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroprobe._validation import Interval, StrOptions, fit_context
from neuroprobe.estimators.encoding import VoxelwiseEncoder
from neuroprobe.solvers.scoring import SCORINGS, score_predictions
from neuroprobe.transformers.delays import Delayer, fold_delays
from neuroprobe.transformers.runs import run_indices

__all__ = ["TemporalResponseFunction", "lags_from_times"]


def lags_from_times(tmin, tmax, sfreq):
    """Lags in samples of a ``tmin .. tmax`` seconds window (MNE's ``_times_to_delays``).

    Parameters
    ----------
    tmin, tmax : float
        First and last lag in seconds (``tmin <= tmax``; negative: the response precedes).
    sfreq : float
        Sampling frequency in Hz.

    Returns
    -------
    ndarray of int64
        ``arange(round(tmin * sfreq), round(tmax * sfreq) + 1)``.
    """
    if not tmin <= tmax:
        raise ValueError(f"tmin ({tmin}) must be at most tmax ({tmax}) (seconds)")
    return np.arange(int(np.round(tmin * sfreq)), int(np.round(tmax * sfreq)) + 1,
                     dtype=np.int64)


def _lagged(X, lags, runs, edge, x_mean):
    """The lagged design (n, n_lags * p), delay-major (a :class:`Delayer`'s layout)."""
    p = X.shape[1]
    delayer = Delayer(delays=lags).fit(X)
    if edge == "zero":
        return delayer.transform(X - x_mean, runs=runs)
    design = delayer.transform(X, runs=runs)
    # per run and lag: centre the lagged copy on its own samples (MNE's fill_mean); the lags
    # that fall outside the run stay 0 (the centred fill value)
    for idx in run_indices(runs, X.shape[0]):
        m = idx.size
        for j, d in enumerate(lags):
            if abs(d) >= m:
                continue
            rows = idx[d:] if d >= 0 else idx[:m + d]
            cols = slice(j * p, (j + 1) * p)
            design[rows, cols] -= design[rows, cols].mean(axis=0)
    return design


def _valid_rows(lags, runs, n):
    """Rows of each run whose every lag lies inside the run (MNE's ``valid_samples_``)."""
    keep = np.zeros(n, dtype=bool)
    lo, hi = max(int(lags.max()), 0), max(-int(lags.min()), 0)
    for idx in run_indices(runs, n):
        keep[idx[lo:idx.size - hi]] = True
    return keep


class TemporalResponseFunction(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Lagged ridge (TRF) of continuous recordings, per-channel alpha by run-wise CV.

    Parameters
    ----------
    tmin, tmax : float, default=0.0, 0.1
        First and last lag in seconds (MNE's ``ReceptiveField`` convention).
    sfreq : float, default=100.0
        Sampling frequency of ``X`` and ``y`` in Hz.
    alphas : array-like of float or float, default=None
        Ridge grid (``np.logspace(-2, 7, 10)`` when None); one value: that alpha for every
        channel (no CV needed).
    cv : int, splitter or None, default=None
        ``None``: leave one run out when ``fit`` gets two runs or more, else ``KFold(5)`` over
        contiguous blocks. ``int``: ``GroupKFold`` over runs (``KFold`` without runs).
    scoring : {"correlation", "r2", "explained_variance"}, default="correlation"
    edge : {"mean", "zero"}, default="mean"
        ``"mean"``: as ``ReceptiveField(estimator=Ridge(alpha))``; ``"zero"``: as
        ``ReceptiveField(estimator=alpha)`` (``TimeDelayingRidge``). See the module notes.
    dtype : {"float32", "float64"}, default="float32"
    n_jobs : int or None, default=None
        Channel batches in parallel (joblib).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features, n_lags, n_channels)
        The kernel; ``coef_[f, j, c]``: weight of feature ``f`` at lag ``lags_[j]``.
    intercept_ : ndarray of shape (n_channels,)
    lags_ : ndarray of int
        Lags in samples.
    times_ : ndarray of float
        Lags in seconds (``lags_ / sfreq``).
    best_alphas_ : ndarray of shape (n_channels,)
    cv_scores_ : ndarray of shape (n_alphas, n_channels)
    estimator_ : VoxelwiseEncoder
        The ridge fitted on the lagged design.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from neuroprobe.estimators.trf import TemporalResponseFunction
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((600, 2))
    >>> y = np.roll(X[:, :1], 3, axis=0) + 0.1 * rng.standard_normal((600, 1))
    >>> trf = TemporalResponseFunction(0.0, 0.05, 100.0, alphas=[1.0]).fit(X, y)
    >>> int(trf.lags_[np.abs(trf.coef_[0, :, 0]).argmax()])
    3
    """

    _parameter_constraints = {
        "tmin": [Real],
        "tmax": [Real],
        "sfreq": [Interval(Real, 0, None, closed="neither")],
        "alphas": ["array-like", Interval(Real, 0, None, closed="left"), None],
        "cv": ["cv_object", None],
        "scoring": [StrOptions(set(SCORINGS))],
        "edge": [StrOptions({"mean", "zero"})],
        "dtype": [StrOptions({"float32", "float64"})],
        "n_jobs": [Integral, None],
    }

    def __init__(self, tmin=0.0, tmax=0.1, sfreq=100.0, alphas=None, cv=None,
                 scoring="correlation", edge="mean", dtype="float32", n_jobs=None):
        self.tmin = tmin
        self.tmax = tmax
        self.sfreq = sfreq
        self.alphas = alphas
        self.cv = cv
        self.scoring = scoring
        self.edge = edge
        self.dtype = dtype
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def _cv(self, runs, n):
        if self.cv is not None:
            return self.cv
        if runs is not None and np.unique(runs).size >= 2:
            return LeaveOneGroupOut()
        return KFold(min(5, n)) if n >= 2 else None

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, runs=None):
        """Fit the kernel of every channel.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Stimulus features over time (runs stacked; rows of a run in time order).
        y : array-like of shape (n_samples, n_channels) or (n_samples,)
            The recording at the same samples.
        runs : array-like of shape (n_samples,), optional
            Run label of each row: lags never cross runs, the CV leaves runs out.

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=[np.float64, np.float32])
        dtype = np.dtype(self.dtype)
        X, y = X.astype(dtype, copy=False), y.astype(dtype, copy=False)
        self._y_1d = y.ndim == 1
        Y = y[:, None] if self._y_1d else y
        lags = lags_from_times(self.tmin, self.tmax, self.sfreq)
        run_indices(runs, X.shape[0])  # checks the labels
        self.lags_ = lags
        self.times_ = lags / float(self.sfreq)
        self.x_mean_ = X.mean(axis=0)
        design = _lagged(X, lags, runs, self.edge, self.x_mean_)
        alphas = self.alphas
        if alphas is not None and np.ndim(alphas) == 0:
            alphas = [float(alphas)]
        cv = self._cv(runs, X.shape[0])
        if alphas is not None and len(np.atleast_1d(alphas)) == 1 and self.cv is None:
            cv = None   # one alpha: nothing to choose (closed-form leave-one-out scores)
        use_groups = runs is not None and cv is not None and not isinstance(cv, KFold)
        groups = runs if use_groups else None
        zero = self.edge == "zero"
        y_mean = Y.mean(axis=0)
        enc = VoxelwiseEncoder(alphas=alphas, cv=cv, fit_intercept=not zero,
                               scoring=self.scoring, dtype=self.dtype, n_jobs=self.n_jobs)
        enc.fit(design, Y - y_mean if zero else Y, groups=groups)
        self.estimator_ = enc
        kernel = fold_delays(np.asarray(enc.coef_).T, X.shape[1], lags)
        self.coef_ = kernel[:, :, 0] if self._y_1d else kernel
        total = kernel.sum(axis=1)                                      # (p, n_channels)
        base = y_mean if zero else np.asarray(enc.intercept_)
        intercept = base - self.x_mean_ @ total
        self.intercept_ = float(intercept[0]) if self._y_1d else intercept
        self.best_alphas_ = np.asarray(enc.best_alphas_)
        self.cv_scores_ = np.asarray(enc.cv_scores_)
        return self

    def predict(self, X, runs=None):
        """Predicted recording, shape (n_samples, n_channels) (``(n_samples,)`` for 1-D y).

        In ``X``'s float dtype (float64 for float64 ``X``, as VoxelwiseEncoder).

        Lags outside a run follow the ``edge`` rule on the new ``X`` (as MNE's ``predict``).
        """
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        n, p = X.shape
        kernel = (self.coef_[:, :, None] if self._y_1d else self.coef_).astype(X.dtype)
        W = kernel.transpose(1, 0, 2).reshape(len(self.lags_) * p, -1)  # delay-major rows
        intercept = np.atleast_1d(self.intercept_).astype(X.dtype)
        if self.edge == "zero":
            pred = Delayer(delays=self.lags_).fit(X).transform(X, runs=runs) @ W + intercept
        else:
            design = _lagged(X, self.lags_, runs, "mean", None)
            pred = design @ W + (X.mean(axis=0) @ kernel.sum(axis=1) + intercept)
        return pred[:, 0] if self._y_1d else pred

    def score_targets(self, X, y, runs=None):
        """Per-channel ``scoring`` on the samples with every lag inside their run.

        Returns
        -------
        ndarray of shape (n_channels,)
        """
        pred = self.predict(X, runs=runs)
        y = np.asarray(y, dtype=pred.dtype)
        keep = _valid_rows(self.lags_, runs, y.shape[0])
        Y = y.reshape(y.shape[0], -1)[keep]
        P = pred.reshape(pred.shape[0], -1)[keep]
        return np.asarray(score_predictions(Y, P, self.scoring), dtype=np.float64)

    def score(self, X, y, runs=None):
        """Mean of :meth:`score_targets` over channels (one float)."""
        return float(np.nanmean(self.score_targets(X, y, runs=runs)))

    def get_feature_names_out(self, input_features=None):
        """Names of the channels' predictions: ``"trf0"``, ``"trf1"``, ..."""
        check_is_fitted(self, "coef_")
        n = 1 if self._y_1d else self.coef_.shape[2]
        return np.asarray([f"trf{i}" for i in range(n)], dtype=object)
