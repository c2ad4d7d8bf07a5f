"""Audio decoding: wav / flac / ogg through soundfile, mp3 and anything else through PyAV.

Every decoder returns ``(waveform, sample_rate)`` with ``waveform`` a float32 mono 1-D numpy array
in [-1, 1] (multi-channel audio is mixed down by averaging the channels, as the VGGish reference
code does) and ``sample_rate`` an int. :func:`load_audio` can resample to a target rate with
:func:`torchaudio.functional.resample` (band-limited sinc interpolation).

Bad input raises :class:`neuroprobe.exceptions.StimulusError` (a ``ValueError``) whose message names
the file: a missing, empty (0 bytes), corrupt or undecodable file, a file without an audio stream,
or audio with no samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroprobe.media._files import file_error, open_av

#: Extensions decoded by soundfile (libsndfile); everything else goes through PyAV (FFmpeg).
SOUNDFILE_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff")

__all__ = ["SOUNDFILE_EXTENSIONS", "load", "load_audio", "resample", "to_mono"]


def to_mono(waveform):
    """Average the channels of a ``(n_samples, n_channels)`` array into a float32 1-D array."""
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim == 2:
        waveform = waveform.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(waveform, dtype=np.float32)


def resample(waveform, orig_sr, new_sr):
    """Resample a 1-D float waveform with :func:`torchaudio.functional.resample`.

    Returns the input unchanged (as float32) when the rates are equal.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    orig_sr, new_sr = int(orig_sr), int(new_sr)
    if orig_sr == new_sr:
        return waveform
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(waveform)), orig_sr, new_sr)
    return out.numpy().astype(np.float32, copy=False)


def _read_soundfile(path):
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError) as exc:  # LibsndfileError is a RuntimeError
        raise file_error(
            path,
            f"cannot decode audio with soundfile ({exc}); the file is corrupt or "
            "not in a format libsndfile reads (wav/flac/ogg)",
        ) from exc
    return data, int(sr)


def _read_av(path):
    import av

    with open_av(path, "audio") as container:
        stream = container.streams.audio[0]
        # "fltp": planar float32, so to_ndarray() is (channels, samples) whatever the codec's format
        resampler = av.AudioResampler(format="fltp")
        chunks = []
        sr = None
        try:
            for frame in container.decode(stream):
                sr = frame.sample_rate
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except (av.error.FFmpegError, ValueError) as exc:
            raise file_error(
                path,
                f"cannot decode the audio stream (codec "
                f"{getattr(stream.codec_context, 'name', '?')}): {exc}",
            ) from exc
        if sr is None:
            sr = stream.codec_context.sample_rate or stream.rate
    if not chunks:
        return np.zeros((0, 1), np.float32), int(sr or 0)
    data = np.concatenate(chunks, axis=1).T  # (samples, channels)
    return data.astype(np.float32, copy=False), int(sr)


def load_audio(path, sample_rate=None, *, mono=True):
    """Decode an audio file to a float32 waveform.

    Parameters
    ----------
    path : str or Path
        wav / flac / ogg / aiff are read with soundfile; mp3, m4a and other FFmpeg formats with
        PyAV.
    sample_rate : int, optional
        Resample to this rate (Hz) with :func:`torchaudio.functional.resample`; ``None`` keeps the
        file's rate.
    mono : bool, default=True
        Mix the channels down to one by averaging. With ``mono=False`` the waveform is
        ``(n_samples, n_channels)``.

    Returns
    -------
    waveform : ndarray of float32, shape (n_samples,) (or (n_samples, n_channels) if ``mono=False``)
    sample_rate : int

    Raises
    ------
    neuroprobe.exceptions.StimulusError
        Naming the file, when it is missing, empty, corrupt, without an audio stream or without
        samples.
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "audio file not found")
    if path.stat().st_size == 0:
        raise file_error(path, "the audio file is empty (0 bytes)")
    if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
        data, sr = _read_soundfile(path)
    else:
        data, sr = _read_av(path)
    if data.shape[0] == 0:
        raise file_error(path, "the audio has zero length (no samples were decoded)")
    if not np.isfinite(data).all():
        raise file_error(path, "the decoded audio contains NaN or infinite samples")
    if mono:
        data = to_mono(data)
        if sample_rate is not None:
            data = resample(data, sr, sample_rate)
            sr = int(sample_rate)
    elif sample_rate is not None:
        data = np.stack([resample(c, sr, sample_rate) for c in data.T], axis=1)
        sr = int(sample_rate)
    return data, int(sr)


#: The decoder :func:`neuroprobe.media.load` calls for ``modality="audio"``.
load = load_audio
