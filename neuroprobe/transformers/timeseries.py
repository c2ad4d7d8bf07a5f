"""Feature time series of audio and video stimuli, ready for ``HRFConvolver``.

A :class:`~neuroprobe.transformers.DNNFeatureExtractor` gives one row per stimulus. For naturalistic
designs (a film or a story heard in the scanner) the brain sees the stimulus unfold in time, so the
features are wanted per time window: per 0.96 s VGGish example, or per sliding video clip.

:func:`extract_time_series` cuts each stimulus into the windows of its model's preprocessing (the
``windows(decoded)`` method of :class:`~neuroprobe.models.audio.VGGishPreprocess` and
:class:`~neuroprobe.models.video.VideoPreprocess`), runs the extractor's network, layers, pooling
and channels on every window as if it were a stimulus, and returns the rows with their onsets and
durations in seconds. When the stimulus set has an ``onset`` column (the stimulus CSV of a run),
window onsets are shifted by it, so that ::

    ts = extract_time_series(DNNFeatureExtractor("vggish", layers="embedding", pooling="mean"),
    stims) regressors = HRFConvolver(tr=2.0, n_scans=240, onsets=ts.onsets,
                              durations=ts.durations).fit_transform(ts.features)

builds the scan-level design of a run.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["FeatureTimeSeries", "extract_time_series"]


@dataclasses.dataclass
class FeatureTimeSeries:
    """Features of the time windows of one or more stimuli.

    Attributes
    ----------
    features : ndarray of float32, shape (n_windows, n_features)
    onsets : ndarray of float, shape (n_windows,)
        Window onsets in seconds (plus the stimulus onset when the stimulus set has an ``onset``
        column).
    durations : ndarray of float, shape (n_windows,)
    stim_ids : ndarray of str, shape (n_windows,)
        Stimulus of each window.
    feature_names : ndarray of str, shape (n_features,)
    """

    features: np.ndarray
    onsets: np.ndarray
    durations: np.ndarray
    stim_ids: np.ndarray
    feature_names: np.ndarray

    def __len__(self):
        return len(self.onsets)


def _as_stimulus_set(X):
    from neuroprobe.stimuli import as_stimulus_set

    return as_stimulus_set(X)


def extract_time_series(extractor, X, *, onset_column="onset"):
    """Per-window features of each stimulus of ``X`` (see the module docstring).

    Parameters
    ----------
    extractor : DNNFeatureExtractor
        Its parameters (model, weights, layers, pooling, channels, batch size, device, memory,
        random state) are used on a clone; it is not modified. Its model's preprocessing must define
        ``windows(decoded) -> (inputs, onsets, duration)`` (VGGish and video models do).
    X : StimulusSet or list of paths
        Audio or video stimuli.
    onset_column : str or None, default="onset"
        Column of the stimulus set added to the window onsets when present.

    Returns
    -------
    FeatureTimeSeries
    """
    from sklearn.base import clone

    stimset = _as_stimulus_set(X)
    helper = clone(extractor)
    helper._fit_model()
    windows = getattr(helper.model_.preprocess, "windows", None)
    if windows is None:
        raise TypeError(
            f"the preprocessing of model {helper.model_.name!r} defines no windows(); time series "
            "are available for VGGish (0.96 s examples) and video models (sliding clips)"
        )
    offsets = np.zeros(len(stimset))
    if onset_column is not None and onset_column in getattr(stimset, "attributes", {}):
        offsets = np.asarray(stimset.column(onset_column), dtype=float)
    features, onsets, durations, ids = [], [], [], []
    fitted = False
    for i in range(len(stimset)):
        inputs, window_onsets, duration = windows(stimset.load(i))
        if fitted:
            rows = helper.transform(inputs)
        else:
            rows = helper.fit_transform(inputs)
            fitted = True
        features.append(rows)
        onsets.append(offsets[i] + np.asarray(window_onsets, dtype=float))
        durations.append(np.full(len(rows), float(duration)))
        ids.append(np.repeat(str(stimset.ids[i]), len(rows)))
    return FeatureTimeSeries(
        features=np.concatenate(features).astype(np.float32, copy=False),
        onsets=np.concatenate(onsets),
        durations=np.concatenate(durations),
        stim_ids=np.concatenate(ids),
        feature_names=np.asarray(helper.get_feature_names_out()),
    )
