"""HRFConvolver: per-event features to scan-level regressors convolved with a haemodynamic response.

Where it sits in a study
------------------------
``HRFConvolver`` turns one row per *event* into one row per *scan*: it changes the number of
samples, so it cannot sit inside a Pipeline that is cross-validated over events (the CV splitter
would split events while the targets are scans). Build the design first, per run::

    regressors = HRFConvolver(tr=2.0, n_scans=240, stimuli=run_events).fit_transform(features)

then stack the runs and cross-validate the encoder at the scan level with the runs as groups
(``GroupKFold`` / ``LeaveOneGroupOut`` with ``groups=run_index``), so that neighbouring,
autocorrelated scans never fall on both sides of a split.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from neuroprobe._validation import HasMethods, Integral, Interval, Real, fit_context

__all__ = ["HRFConvolver", "spm_hrf", "hrf_kernel"]

_MODELS = {
    "spm": ("",),
    "spm + derivative": ("", "_derivative"),
    "spm + derivative + dispersion": ("", "_derivative", "_dispersion"),
}


def _model_key(name):
    """``"SPM+derivative"`` -> ``"spm + derivative"`` (spaces and case do not matter)."""
    return " + ".join(part.strip() for part in name.lower().split("+"))


def _gamma_pdf(t, shape, scale):
    from scipy.stats import gamma

    return gamma.pdf(t, shape, scale=scale)


def spm_hrf(dt, *, delay=6.0, undershoot=16.0, dispersion=1.0, u_dispersion=1.0, ratio=6.0,
            onset=0.0, length=32.0):
    """SPM's canonical double-gamma HRF (``spm_hrf``) sampled every ``dt`` seconds, summing to 1.

    ``h(t) = g(t - onset; delay/dispersion, dispersion) - g(t - onset; undershoot/u_dispersion,
    u_dispersion) / ratio`` with ``g(t; a, s)`` the gamma density of shape ``a`` and scale ``s``,
    at ``t = 0, dt, ..., ceil(length / dt) * dt``; then divided by its sum.

    Parameters
    ----------
    dt : float
        Sampling step in seconds.
    delay, undershoot, dispersion, u_dispersion, ratio, onset, length : float
        SPM's parameters ``p(1)..p(7)`` (defaults 6, 16, 1, 1, 6, 0, 32).

    Returns
    -------
    ndarray, shape (ceil(length / dt) + 1,)
    """
    t = np.arange(int(np.ceil(length / dt)) + 1) * dt - onset
    h = _gamma_pdf(t, delay / dispersion, dispersion) - _gamma_pdf(
        t, undershoot / u_dispersion, u_dispersion
    ) / ratio
    return h / h.sum()


def hrf_kernel(hrf_model, dt):
    """The basis kernels ``(n_taps, n_basis)`` of ``hrf_model`` sampled every ``dt`` seconds.

    The derivatives are SPM's finite differences (``spm_get_bf``): time derivative
    ``h(t) - h(t - 1 s)``; dispersion derivative ``(h - h_{dispersion=1.01}) / 0.01``. They are
    not orthogonalised.
    """
    if isinstance(hrf_model, str):
        key = _model_key(hrf_model)
        if key not in _MODELS:
            raise ValueError(
                f"hrf_model {hrf_model!r} is not known; use one of {list(_MODELS)} or an array "
                "kernel sampled every tr / oversampling seconds"
            )
        h = spm_hrf(dt)
        basis = [h]
        if "derivative" in key:
            basis.append(h - spm_hrf(dt, onset=1.0))
        if "dispersion" in key:
            basis.append((h - spm_hrf(dt, dispersion=1.01)) / 0.01)
        return np.column_stack(basis)
    kernel = np.asarray(hrf_model, dtype=float)
    if kernel.ndim == 1:
        kernel = kernel[:, None]
    if kernel.ndim != 2 or kernel.shape[0] == 0 or not np.all(np.isfinite(kernel)):
        raise ValueError(
            "hrf_model as an array must be a finite kernel of shape (n_taps,) or "
            f"(n_taps, n_basis), got shape {kernel.shape}"
        )
    return kernel


class HRFConvolver(TransformerMixin, BaseEstimator):
    """Per-event features to regressors sampled at the scans, convolved with an HRF.

    Each event ``e`` is a boxcar from ``onsets[e]`` to ``onsets[e] + durations[e]`` on a grid of
    step ``dt = tr / oversampling`` (onsets and offsets rounded to the grid; a zero duration is
    one grid step, as in nilearn), scaled by the event's features, convolved with the HRF and
    sampled at the scan times ``t_i = (i + slice_time_ref) * tr``. The event-to-scan design
    ``G`` (n_scans, n_events) is built once per basis function at ``fit`` from cumulative sums of
    the oversampled kernel, and ``transform`` is one matrix product ``G @ features`` per basis,
    for thousands of DNN units at once. DNNBrain's ``db_hrf`` is the anchor.

    It changes the number of samples (events to scans), so it builds the design *before* a
    scan-level, run-grouped cross-validation, not inside a Pipeline cross-validated over events
    (see the module docstring).

    Parameters
    ----------
    tr : float
        Repetition time in seconds.
    n_scans : int or None
        Number of scans of the run. ``None`` only for a continuous design (no ``onsets``), where
        it equals the number of feature rows.
    onsets, durations : array of float, optional
        Event onsets and durations in seconds (time 0 = start of the first scan). Default: from
        ``stimuli``; without either, the rows are taken as one sample per scan (continuous
        design: onsets ``i * tr``, durations ``tr``). ``durations`` default to 0. ``fit``
        refuses a run where every event lies outside it (starts after the last scan, or its
        response ends before the first; e.g. onsets in milliseconds) and warns about the
        events that do.
    hrf_model : str or array
        ``"spm"``, ``"spm + derivative"``, ``"spm + derivative + dispersion"``, or a kernel
        ``(n_taps,)`` / ``(n_taps, n_basis)`` sampled every ``tr / oversampling`` seconds.
    oversampling : int
        Grid points per TR.
    slice_time_ref : float in [0, 1]
        Where in the scan the sample is taken (0: scan start, 0.5: middle).
    stimuli : StimulusSet, optional
        Source of ``onset`` / ``duration`` columns (``stimuli.column("onset")``).

    Attributes
    ----------
    design_ : ndarray, shape (n_basis, n_scans, n_events)
        Event-to-scan matrices, one per basis function.
    hrf_ : ndarray, shape (n_taps, n_basis)
        The oversampled kernel(s).
    frame_times_ : ndarray, shape (n_scans,)
    n_basis_ : int
    n_features_in_ : int

    Notes
    -----
    Output columns are basis-major: ``[G_0 @ F, G_1 @ F, ...]``, named ``<feature>``,
    ``<feature>_derivative``, ``<feature>_dispersion`` (``<feature>_basis<b>`` for a user
    kernel).
    """

    _parameter_constraints = {
        "tr": [Interval(Real, 0, None, closed="neither")],
        "n_scans": [Interval(Integral, 1, None, closed="left"), None],
        "onsets": ["array-like", None],
        "durations": ["array-like", None],
        "hrf_model": [str, "array-like"],
        "oversampling": [Interval(Integral, 1, None, closed="left")],
        "slice_time_ref": [Interval(Real, 0, 1, closed="both")],
        "stimuli": [HasMethods(["column"]), None],
    }

    def __init__(self, tr, n_scans, onsets=None, durations=None, hrf_model="spm",
                 oversampling=50, slice_time_ref=0.0, stimuli=None):
        self.tr = tr
        self.n_scans = n_scans
        self.onsets = onsets
        self.durations = durations
        self.hrf_model = hrf_model
        self.oversampling = oversampling
        self.slice_time_ref = slice_time_ref
        self.stimuli = stimuli

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def _events(self, n_rows):
        onsets, durations = self.onsets, self.durations
        if onsets is None and self.stimuli is not None:
            try:
                onsets = self.stimuli.column("onset")
            except KeyError as exc:
                raise ValueError(
                    f"stimuli has no 'onset' column to take the event onsets from: {exc}"
                ) from None
            if durations is None:
                try:
                    durations = self.stimuli.column("duration")
                except KeyError:
                    durations = None
        if onsets is None:
            onsets = np.arange(n_rows) * float(self.tr)
            durations = np.full(n_rows, float(self.tr)) if durations is None else durations
        onsets = np.asarray(onsets, dtype=float).ravel()
        durations = np.zeros_like(onsets) if durations is None else np.asarray(
            durations, dtype=float).ravel()
        if durations.shape != onsets.shape:
            raise ValueError(
                f"durations has {durations.size} values but onsets has {onsets.size}"
            )
        if not (np.all(np.isfinite(onsets)) and np.all(np.isfinite(durations))):
            raise ValueError("onsets and durations must be finite numbers of seconds")
        if np.any(durations < 0):
            raise ValueError(f"durations must be >= 0; got min {durations.min()}")
        return onsets, durations

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the event-to-scan design.

        Parameters
        ----------
        X : array, shape (n_events, n_features)
            Per-event features (only the number of rows is used).
        y : ignored

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        continuous = self.onsets is None and self.stimuli is None
        onsets, durations = self._events(X.shape[0])
        if len(onsets) != X.shape[0]:
            raise ValueError(
                f"features have {X.shape[0]} rows but there are {len(onsets)} events (onsets)"
            )
        n_scans = self.n_scans
        if n_scans is None:
            if not continuous:
                raise ValueError("n_scans is required when onsets or stimuli are given")
            n_scans = X.shape[0]
        tr, ov = float(self.tr), int(self.oversampling)
        dt = tr / ov
        kernel = hrf_kernel(self.hrf_model, dt)
        ref = float(self.slice_time_ref) * tr
        # grid index of scan i relative to grid point 0 = time `ref`
        k_scan = np.arange(n_scans) * ov
        start = np.rint((onsets - ref) / dt).astype(np.int64)
        stop = np.maximum(np.rint((onsets + durations - ref) / dt).astype(np.int64), start + 1)
        cums = np.vstack([np.zeros((1, kernel.shape[1])), np.cumsum(kernel, axis=0)])
        n_taps = kernel.shape[0]

        def cum(lag):  # sum of kernel[0 : lag + 1] (0 for lag < 0)
            return cums[np.clip(lag + 1, 0, n_taps)]

        lag_on = k_scan[:, None] - start[None, :]
        lag_off = k_scan[:, None] - stop[None, :]
        design = cum(lag_on) - cum(lag_off)  # (n_scans, n_events, n_basis)
        self._check_events_in_run(onsets, durations, n_scans, tr, kernel.shape[0] * dt)
        self.design_ = np.ascontiguousarray(np.moveaxis(design, 2, 0))
        self.hrf_ = kernel
        self.frame_times_ = np.arange(n_scans) * tr + ref
        self.n_basis_ = kernel.shape[1]
        self.n_events_ = len(onsets)
        return self

    @staticmethod
    def _check_events_in_run(onsets, durations, n_scans, tr, hrf_seconds):
        """Refuse a run where every event lies outside it; warn for the events that do."""
        length = n_scans * tr
        # outside: starts after the last scan, or its response ends before the first
        silent = (onsets >= length) | (onsets + durations + hrf_seconds <= 0)
        if not silent.any():
            return
        if silent.all():
            hint = ""
            if onsets.min() >= length:
                hint = (f" (onsets in milliseconds? in seconds they would span "
                        f"{onsets.min() / 1000:g} to {onsets.max() / 1000:g} s)")
            raise ValueError(
                f"every event lies outside the run: onsets span {onsets.min():g} to "
                f"{onsets.max():g} s but the run is {n_scans} scans x tr {tr:g} s = {length:g} s"
                f"{hint}; onsets and durations must be in seconds from the start of the first "
                "scan. The regressors would be all zero."
            )
        idx = np.flatnonzero(silent)
        shown = ", ".join(f"{onsets[i]:g}" for i in idx[:5]) + (", ..." if len(idx) > 5 else "")
        warnings.warn(
            f"{len(idx)} of {len(onsets)} events lie outside the run (0 to {length:g} s, "
            f"{n_scans} scans x tr {tr:g} s) and add nothing to the regressors: onsets {shown} s",
            UserWarning,
            stacklevel=4,
        )

    def transform(self, X):
        """Regressors ``(n_scans, n_features * n_basis)`` float32 (basis-major columns)."""
        check_is_fitted(self, "design_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        if X.shape[0] != self.n_events_:
            raise ValueError(
                f"features have {X.shape[0]} rows but HRFConvolver was fitted for "
                f"{self.n_events_} events"
            )
        X = X.astype(np.float32, copy=False)
        out = [self.design_[b].astype(np.float32) @ X for b in range(self.n_basis_)]
        return np.hstack(out) if len(out) > 1 else out[0]

    def get_feature_names_out(self, input_features=None):
        """``<feature>``, ``<feature>_derivative``, ``<feature>_dispersion`` (basis-major)."""
        check_is_fitted(self, "design_")
        from neuroprobe._sklearn_compat import _check_feature_names_in

        names = _check_feature_names_in(self, input_features)
        if isinstance(self.hrf_model, str):
            suffixes = _MODELS[_model_key(self.hrf_model)]
        else:
            suffixes = [""] if self.n_basis_ == 1 else [f"_basis{b}" for b in range(self.n_basis_)]
        return np.asarray([f"{n}{s}" for s in suffixes for n in names], dtype=object)
