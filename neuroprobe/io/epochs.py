"""Time-resolved brain data in: MNE objects or plain arrays, rows keyed by stimulus ID.

:func:`read_epochs` turns ``mne.Epochs`` / ``mne.EpochsArray``, a list of ``mne.Evoked`` (one per
stimulus) or a plain array ``(n_trials, n_channels, n_times)`` with its ``times`` and per-trial
stimulus IDs into an :class:`EpochData`: trials averaged per stimulus (or kept, with groups),
optionally z-scored per channel within each session, and, when ``reference_ids`` are given, rows
put in the order of a StimulusSet / ``.act.h5`` through :func:`neuroprobe.io.ids.align_ids`
(never by position alone). mne is imported only when an MNE object is passed (extra ``meg``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..exceptions import StimulusError
from .ids import align_ids

__all__ = ["EpochData", "read_epochs"]


@dataclass
class EpochData:
    """Time-resolved responses with one row per stimulus (or per trial).

    Attributes
    ----------
    data : ndarray of shape (n_rows, n_channels, n_times)
    times : ndarray of shape (n_times,)
        Seconds relative to stimulus onset.
    stim_ids : ndarray of str of shape (n_rows,)
    sfreq : float
    ch_names : list of str
    groups : ndarray of shape (n_rows,) or None
        Stimulus index of each trial when trials are kept (``average=False``).
    """

    data: np.ndarray
    times: np.ndarray
    stim_ids: np.ndarray
    sfreq: float
    ch_names: list = field(default_factory=list)
    groups: np.ndarray | None = None


def _from_mne(epochs, picks):
    """(data, times, trial ids, sfreq, ch names) from an MNE object or a list of Evoked."""
    try:
        import mne
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("epochs: MNE objects need mne (pip install 'neuroprobe[meg]'); "
                          "or pass an array with times= and stim_ids=") from exc

    if isinstance(epochs, (list, tuple)):
        if not epochs or not all(isinstance(e, mne.Evoked) for e in epochs):
            raise TypeError("epochs: a list must hold mne.Evoked objects (one per stimulus)")
        sfreqs = {float(e.info["sfreq"]) for e in epochs}
        if len(sfreqs) > 1:
            raise ValueError(f"epochs: Evoked objects have mixed sampling rates {sorted(sfreqs)}")
        evs = [e.copy().pick(picks) if picks is not None else e for e in epochs]
        data = np.stack([e.data for e in evs])
        ids = [e.comment for e in evs]
        return data, evs[0].times, ids, sfreqs.pop(), list(evs[0].ch_names), evs[0].info
    if isinstance(epochs, mne.BaseEpochs):
        ep = epochs.copy().pick(picks) if picks is not None else epochs
        if picks is None:
            types = set(ep.get_channel_types(only_data_chs=True))
            if len(types) > 1:
                raise ValueError(f"picks: epochs hold channels of mixed types {sorted(types)}; "
                                 "pass picks= (e.g. 'mag', 'grad', 'eeg', 'seeg')")
            ep = ep.copy().pick("data")
        return (ep.get_data(copy=True), ep.times, None, float(ep.info["sfreq"]),
                list(ep.ch_names), ep)
    raise TypeError(f"epochs: expected mne.Epochs, a list of mne.Evoked or an array; "
                    f"got {type(epochs).__name__}")


def _trial_ids(stim_ids, epochs, n_trials):
    """Per-trial stimulus IDs: explicit, or from the Epochs' event_id names / metadata."""
    if stim_ids is None and epochs is not None and hasattr(epochs, "events"):
        if epochs.metadata is not None and "stim_id" in epochs.metadata:
            stim_ids = epochs.metadata["stim_id"].to_numpy()
        else:
            names = {v: k for k, v in epochs.event_id.items()}
            stim_ids = [names[c] for c in epochs.events[:, 2]]
    if stim_ids is None:
        raise StimulusError("stim_ids: per-trial stimulus IDs are required (pass stim_ids=, "
                            "an Epochs metadata column 'stim_id', or event_id names)")
    ids = np.asarray([v.decode() if isinstance(v, bytes) else str(v)
                      for v in np.asarray(stim_ids).ravel().tolist()])
    if ids.shape[0] != n_trials:
        raise StimulusError(f"stim_ids: expected {n_trials} IDs (one per trial); got {ids.size}")
    return ids


def _zscore(data, sessions):
    """Per-channel z-scoring over trials and times within each session (a new array)."""
    out = np.empty_like(data, dtype=np.float64)
    sessions = np.zeros(len(data), int) if sessions is None else np.asarray(sessions)
    if sessions.shape != (len(data),):
        raise ValueError(f"sessions: expected {len(data)} labels (one per trial); "
                         f"got shape {sessions.shape}")
    for s in np.unique(sessions):
        m = sessions == s
        block = data[m]
        mu = block.mean(axis=(0, 2), keepdims=True)
        sd = block.std(axis=(0, 2), keepdims=True)
        out[m] = (block - mu) / np.where(sd > 0, sd, 1.0)
    return out


def _check_array(data, times, sfreq):
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"epochs: expected an array (n_trials, n_channels, n_times); "
                         f"got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        bad = np.unique(np.nonzero(~np.isfinite(data))[0])
        raise ValueError(f"epochs: {bad.size} trials hold NaN/inf values (first: trial {bad[0]})")
    if times is None:
        raise ValueError("times: required with an array (seconds, one per sample)")
    times = np.asarray(times, dtype=np.float64)
    if times.shape != (data.shape[2],):
        raise ValueError(f"times: expected {data.shape[2]} values; got shape {times.shape}")
    steps = np.diff(times)
    if steps.size and not np.allclose(steps, steps[0], rtol=1e-6, atol=0):
        raise ValueError("times: samples are not evenly spaced (mixed sampling rates?)")
    fs = 1.0 / steps[0] if steps.size else float(sfreq or 1.0)
    if sfreq is not None and not np.isclose(fs, sfreq, rtol=1e-6):
        raise ValueError(f"sfreq: {sfreq} Hz does not match the spacing of times ({fs:g} Hz)")
    return data, times, fs


def read_epochs(epochs, *, times=None, stim_ids=None, sfreq=None, picks=None, average=True,
                zscore=False, sessions=None, reference_ids=None):
    """Time-resolved responses with rows keyed (and optionally ordered) by stimulus ID.

    Parameters
    ----------
    epochs : mne.Epochs, list of mne.Evoked, or ndarray of shape (n_trials, n_channels, n_times)
        Baseline is taken as already applied. For a list of Evoked, each ``comment`` is its ID.
    times : array-like of shape (n_times,), optional
        Seconds; required for an array.
    stim_ids : array-like of shape (n_trials,), optional
        Per-trial stimulus IDs (for Epochs default: metadata ``stim_id``, else event names).
    sfreq : float, optional
        Checked against the spacing of ``times``.
    picks : str or list, optional
        MNE channel picks (required when the Epochs hold channels of several types).
    average : bool, default=True
        Average the trials of each stimulus; with False, trials are kept and ``groups`` set.
    zscore : bool, default=False
        Z-score every channel within each session (before averaging).
    sessions : array-like of shape (n_trials,), optional
        Session label per trial for ``zscore``.
    reference_ids : sequence, optional
        Stimulus IDs to order the rows by (e.g. ``StimulusSet.ids`` or an .act.h5's IDs); the
        two sets must match (:func:`~neuroprobe.io.ids.align_ids`).

    Returns
    -------
    EpochData
    """
    mne_obj = None
    if isinstance(epochs, np.ndarray):
        data, times, fs = _check_array(epochs, times, sfreq)
        ch_names = [f"ch{i}" for i in range(data.shape[1])]
    else:
        data, mtimes, ids0, fs, ch_names, mne_obj = _from_mne(epochs, picks)
        data, times, fs = _check_array(data, mtimes, None)
        if stim_ids is None and ids0 is not None:
            stim_ids = ids0
    ids = _trial_ids(stim_ids, mne_obj, data.shape[0])
    data = _zscore(data, sessions) if zscore else data.astype(np.float64, copy=True)
    uniq, inverse = np.unique(ids, return_inverse=True)
    if average:
        sums = np.zeros((uniq.size,) + data.shape[1:])
        np.add.at(sums, inverse, data)
        data = sums / np.bincount(inverse, minlength=uniq.size)[:, None, None]
        ids, groups = uniq, None
    else:
        groups = inverse
    if reference_ids is not None:
        index = align_ids(reference_ids, uniq, what="stim_ids", reference="reference_ids")
        if average:
            data, ids = data[index], ids[index]
        else:
            rank = np.empty_like(index)
            rank[index] = np.arange(index.size)
            groups = rank[inverse]
            order = np.argsort(groups, kind="stable")
            data, ids, groups = data[order], ids[order], groups[order]
    return EpochData(data=data, times=times, stim_ids=np.asarray(ids), sfreq=float(fs),
                     ch_names=ch_names, groups=groups)
