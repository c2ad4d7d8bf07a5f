"""TimeResampler: features given at their own times (frames, words, audio windows) -> the scans.

Where it sits in a study
------------------------
Like :class:`~neuroprobe.transformers.HRFConvolver`, it changes the number of rows (samples to
scans), so it builds the scan-level design *before* a run-grouped cross-validation, not inside
a Pipeline cross-validated over samples::

    resampler = TimeResampler(tr=2.0, n_scans=[300, 290], times=onsets, runs=story)
    Xs = resampler.fit_transform(F)               # (590, n_features), runs in label order
    runs = resampler.scan_runs_                   # one run label per scan
    Xd = Delayer(delays=(1, 2, 3, 4)).fit_transform(Xs, runs=runs)
    Xz = RunScaler().fit_transform(Xd, runs=runs)
    # then any encoder, cross-validated with LeaveOneGroupOut / GroupKFold and groups=runs

Times are seconds from the start of each run's first scan (each run has its own clock); they
come from a StimulusSet's ``onset`` column (``times=stimuli``), from
``extract_time_series`` (``times=series.onsets``) or from an array. The formulas of every method are
in :mod:`neuroprobe.solvers.resample`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroprobe._validation import HasMethods, Integral, Interval, Real, StrOptions, fit_context
from neuroprobe.solvers.resample import METHODS, apply_matrix, resampling_matrix
from neuroprobe.transformers.runs import run_indices

__all__ = ["TimeResampler"]


class TimeResampler(TransformerMixin, BaseEstimator):
    """Resample per-sample features to the scan grid of each run, as one matrix product per run.

    For each run ``r`` an ``(n_scans_r, n_samples_r)`` matrix ``W_r`` is built at ``fit`` from
    the times alone (:func:`neuroprobe.solvers.resample.resampling_matrix`); ``transform``
    returns the runs' ``W_r @ X_r`` (a sparse product for the banded methods) stacked in the
    order of the sorted run labels. Samples of one run never reach the scans of another.

    Parameters
    ----------
    tr : float
        Repetition time in seconds.
    n_scans : int, sequence of int or None
        Scans per run (one int for every run, or one per run in sorted-label order). Required
        when ``times`` is given; ``None`` without ``times``: one scan per row.
    times : array-like of shape (n_samples,), StimulusSet or None
        Time of each row in seconds from its run's first scan (non-decreasing within a run);
        a StimulusSet gives its ``onset`` column. ``None``: rows are one per scan
        (``i * tr``), the identity for every method.
    runs : array-like of shape (n_samples,) or None
        Run label of each row; ``None``: one run.
    method : {"lanczos", "sinc", "average", "nearest"}
        ``"lanczos"`` (Huth et al.'s ``lanczosinterp2D``, cutoff at the scan rate's Nyquist
        frequency), ``"sinc"`` (unwindowed), ``"average"`` (mean of the samples in
        ``[i * tr, (i + 1) * tr)``), ``"nearest"`` (closest sample).
    window : int
        Lobes of the Lanczos window (``a = 3`` as in the gallantlab code).
    slice_time_ref : float in [0, 1]
        Where in the scan the interpolating methods sample: ``(i + slice_time_ref) * tr``
        (the ``"average"`` bins are always the whole acquisition ``[i * tr, (i + 1) * tr)``).

    Attributes
    ----------
    matrices_ : list of scipy.sparse.csr_array or ndarray
        ``W_r`` per run, shape (n_scans_r, n_samples_r) (CSR for the banded methods, a dense
        ndarray for ``"sinc"``).
    sample_indices_ : list of ndarray of int
        Rows of ``X`` belonging to each run.
    scan_runs_ : ndarray, shape (n_scans_total,)
        Run label of each output row (pass as ``groups`` to the CV).
    scan_times_ : ndarray, shape (n_scans_total,)
        Time of each output row within its run.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from neuroprobe.transformers import TimeResampler
    >>> X = np.array([[1.0], [3.0], [5.0], [7.0]])          # samples at 0.5, 1.5, 2.5, 3.5 s
    >>> est = TimeResampler(tr=2.0, n_scans=2, times=[0.5, 1.5, 2.5, 3.5], method="average")
    >>> est.fit_transform(X).ravel().tolist()               # scans [0, 2) s and [2, 4) s
    [2.0, 6.0]
    """

    _parameter_constraints = {
        "tr": [Interval(Real, 0, None, closed="neither")],
        "n_scans": [Interval(Integral, 1, None, closed="left"), "array-like", None],
        "times": ["array-like", HasMethods(["column"]), None],
        "runs": ["array-like", None],
        "method": [StrOptions(set(METHODS))],
        "window": [Interval(Integral, 1, None, closed="left")],
        "slice_time_ref": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, tr, n_scans=None, times=None, runs=None, method="lanczos", window=3,
                 slice_time_ref=0.0):
        self.tr = tr
        self.n_scans = n_scans
        self.times = times
        self.runs = runs
        self.method = method
        self.window = window
        self.slice_time_ref = slice_time_ref

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _times(self, n_rows):
        times = self.times
        if times is not None and hasattr(times, "column"):
            try:
                times = times.column("onset")
            except KeyError as exc:
                raise ValueError(f"times (a StimulusSet) has no 'onset' column: {exc}") from None
        if times is None:
            return None
        times = np.asarray(times, dtype=np.float64).ravel()
        if times.shape[0] != n_rows:
            raise ValueError(f"times has {times.shape[0]} values but X has {n_rows} rows")
        if not np.all(np.isfinite(times)):
            raise ValueError("times must be finite numbers of seconds")
        return times

    def _n_scans(self, n_runs, default):
        if self.n_scans is None:
            if default is None:
                raise ValueError(
                    "n_scans is required when times is given: the number of scans of each run "
                    "(an int, or one per run in sorted run-label order)"
                )
            return default
        n_scans = np.atleast_1d(np.asarray(self.n_scans))
        if n_scans.size == 1:
            n_scans = np.repeat(n_scans, n_runs)
        if n_scans.ndim != 1 or n_scans.size != n_runs or not np.issubdtype(
                n_scans.dtype, np.integer) or np.any(n_scans < 1):
            raise ValueError(
                f"n_scans must be a positive int or one positive int per run ({n_runs} runs), "
                f"got {self.n_scans!r}"
            )
        return [int(k) for k in n_scans]

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the per-run resampling matrices from ``times``, ``runs`` and ``n_scans``.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)
            Per-sample features (only the number of rows is used).
        y : ignored

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        n = X.shape[0]
        times = self._times(n)
        groups = run_indices(self.runs, n)
        labels = np.unique(self.runs) if self.runs is not None else np.array([0])
        tr = float(self.tr)
        if times is None:
            times = np.empty(n)
            for idx in groups:
                times[idx] = np.arange(idx.size) * tr
        n_scans = self._n_scans(len(groups), None if self.times is not None
                                else [idx.size for idx in groups])
        ref = 0.0 if self.method == "average" else float(self.slice_time_ref)
        self.matrices_, self.sample_indices_, runs_out, times_out = [], [], [], []
        for label, idx, k in zip(labels, groups, n_scans):
            t = times[idx]
            bad = np.flatnonzero(np.diff(t) < 0)
            if bad.size:
                i = int(bad[0])
                raise ValueError(
                    f"times must be non-decreasing within each run: in run {label}, a sample "
                    f"at {t[i + 1]:g} s follows one at {t[i]:g} s (row {int(idx[i + 1])} of X)"
                )
            scan_times = (np.arange(k) + ref) * tr
            self.matrices_.append(resampling_matrix(t, scan_times, self.method,
                                                    window=self.window, tr=tr, sparse=True))
            self.sample_indices_.append(idx)
            runs_out.append(np.full(k, label))
            times_out.append((np.arange(k) + float(self.slice_time_ref)) * tr)
        self.scan_runs_ = np.concatenate(runs_out)
        self.scan_times_ = np.concatenate(times_out)
        self.n_samples_fit_ = n
        return self

    def transform(self, X):
        """Resampled features ``(n_scans_total, n_features)``, runs stacked in label order."""
        check_is_fitted(self, "matrices_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        if X.shape[0] != self.n_samples_fit_:
            raise ValueError(
                f"X has {X.shape[0]} rows but the resampler was fitted on {self.n_samples_fit_} "
                "samples (times / runs); fit it on these samples"
            )
        return np.vstack([apply_matrix(W, X[idx])
                          for W, idx in zip(self.matrices_, self.sample_indices_)])

    def get_feature_names_out(self, input_features=None):
        """The input feature names, unchanged (resampling maps rows, not columns)."""
        check_is_fitted(self, "n_features_in_")
        if input_features is None:
            input_features = getattr(self, "feature_names_in_", None)
        if input_features is None:
            input_features = [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray([str(f) for f in input_features], dtype=object)
