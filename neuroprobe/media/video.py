"""Video decoding with PyAV and temporal clip sampling.

:func:`load_video` decodes a file to ``(frames, fps)`` with ``frames`` uint8 ``(T, H, W, 3)`` RGB.
:func:`clip_indices` chooses which frames make each clip fed to a video network;
:func:`sample_clips` applies it to decoded frames.

Clip sampling
-------------
A clip has ``n_frames`` frames taken every ``stride`` frames, so it spans ``(n_frames - 1) * stride
+ 1`` frames of the video. ``mode`` chooses where clips lie in the frames ``[start, T)``:

``"centre"`` (default)
    one clip centred in ``[start, T)``.
``"start"``
    one clip beginning at frame ``start``.
``"uniform"``
    one clip of ``n_frames`` frames spread evenly over ``[start, T)`` (``stride`` is ignored; this
    is pytorchvideo's ``UniformTemporalSubsample`` applied to the whole video).
``"sliding"``
    consecutive clips beginning at ``start, start + step, start + 2 step, ...`` while a whole clip
    fits (``step`` defaults to the clip span, i.e. non-overlapping clips). Clip ``k`` begins at
    ``(start + k * step) / fps`` seconds; :func:`clip_onsets` gives these times, which are the
    onsets of a feature time series for :class:`~neuroprobe.transformers.HRFConvolver`.

Videos shorter than one clip
----------------------------
``short_policy="pad"`` (default) repeats the last frame: frame indices past the end are clamped to
the last frame, and ``"sliding"`` returns one (padded) clip. ``short_policy="error"`` raises a
:class:`~neuroprobe.exceptions.StimulusError` naming the file. A video with no decodable frame
always raises.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroprobe.media._files import file_error, open_av

CLIP_MODES = ("centre", "start", "uniform", "sliding")

__all__ = [
    "CLIP_MODES",
    "clip_indices",
    "clip_onsets",
    "clip_span",
    "load",
    "load_video",
    "sample_clips",
    "video_info",
]


def _open(path):
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "video file not found")
    if path.stat().st_size == 0:
        raise file_error(path, "the video file is empty (0 bytes)")
    return open_av(path, "video")


def _fps(stream):
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def video_info(path):
    """Container metadata, without decoding.

    Returns a dict with ``fps``, ``n_frames`` (0 if unknown), ``width``, ``height``, ``duration``
    (seconds, or ``None``) and ``codec``.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6
        return {
            "fps": _fps(stream),
            "n_frames": int(stream.frames or 0),
            "width": int(stream.codec_context.width),
            "height": int(stream.codec_context.height),
            "duration": duration,
            "codec": stream.codec_context.name,
        }


def load_video(path, *, start_s=None, end_s=None, max_frames=None):
    """Decode the frames of a video file as RGB.

    Parameters
    ----------
    path : str or Path
    start_s, end_s : float, optional
        Keep only the frames whose presentation time is in ``[start_s, end_s)`` seconds.
    max_frames : int, optional
        Stop after this many frames (bounds the memory for long films).

    Returns
    -------
    frames : ndarray of uint8, shape (T, H, W, 3)
    fps : float
        Average frame rate of the stream.

    Raises
    ------
    neuroprobe.exceptions.StimulusError
        Naming the file when it is missing, empty, corrupt, has no video stream, uses a codec this
        FFmpeg build cannot decode, or yields no frame.
    """
    import av

    path = Path(path)
    frames = []
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = _fps(stream)
        if start_s:
            try:  # seek to the key frame before start_s, then drop the frames before it
                container.seek(int(start_s / stream.time_base), stream=stream, backward=True)
            except (av.error.FFmpegError, ValueError, TypeError):
                container.seek(0)
        try:
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else len(frames) / (fps or 1.0)
                if start_s is not None and t < start_s - 1e-6:
                    continue
                if end_s is not None and t >= end_s - 1e-6:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
        except (av.error.FFmpegError, ValueError) as exc:
            codec = getattr(stream.codec_context, "name", "?")
            if not frames:
                raise file_error(
                    path, f"cannot decode the video stream (codec {codec}): {exc}"
                ) from exc
            # a truncated file: keep the frames decoded before the damage
    if not frames:
        raise file_error(
            path, "no video frame could be decoded (empty, truncated or unsupported codec)"
        )
    return np.stack(frames), float(fps)


def clip_span(n_frames, stride=1):
    """Number of video frames covered by one clip."""
    return (int(n_frames) - 1) * int(stride) + 1


def clip_indices(
    n_total,
    n_frames,
    stride=1,
    *,
    start=0,
    mode="centre",
    step=None,
    short_policy="pad",
    name="video",
):
    """Frame indices of the clips taken from a video of ``n_total`` frames.

    See the module docstring for the modes and the short-video policy.

    Parameters
    ----------
    n_total : int
        Number of frames in the video.
    n_frames : int
        Frames per clip.
    stride : int, default=1
        Take every ``stride``-th frame inside a clip.
    start : int, default=0
        First frame considered.
    mode : {"centre", "start", "uniform", "sliding"}, default="centre"
    step : int, optional
        Frames between the starts of consecutive clips in ``"sliding"`` mode (default: the clip
        span).
    short_policy : {"pad", "error"}, default="pad"
        What to do when fewer than one clip span of frames follows ``start``.
    name : str
        Named in error messages (the file).

    Returns
    -------
    ndarray of int, shape (n_clips, n_frames)
        ``n_clips`` is 1 except in ``"sliding"`` mode, where it is
        ``1 + (n_total - start - span) // step`` (at least 1).
    """
    n_total, n_frames, stride, start = int(n_total), int(n_frames), int(stride), int(start)
    if mode not in CLIP_MODES:
        raise ValueError(f"mode must be one of {CLIP_MODES}, got {mode!r}")
    if short_policy not in ("pad", "error"):
        raise ValueError(f"short_policy must be 'pad' or 'error', got {short_policy!r}")
    if n_frames < 1 or stride < 1:
        raise ValueError(f"n_frames and stride must be >= 1, got {n_frames} and {stride}")
    if n_total < 1:
        raise file_error(name, "the video has no frames")
    if not 0 <= start < n_total:
        raise file_error(name, f"start frame {start} is outside the video's {n_total} frames")
    available = n_total - start
    span = clip_span(n_frames, stride)
    if mode == "uniform":
        if available < n_frames and short_policy == "error":
            raise file_error(
                name,
                f"the video has {available} frames after frame {start}, fewer than the "
                f"{n_frames} frames of one clip (short_policy='error')",
            )
        idx = start + np.floor(np.linspace(0, available - 1, n_frames) + 0.5).astype(int)
        idx = np.minimum(idx, n_total - 1)
        return idx[None, :]
    if available < span:
        if short_policy == "error":
            raise file_error(
                name,
                f"the video has {available} frames after frame {start}, fewer than one "
                f"clip of {n_frames} frames with stride {stride} ({span} frames; "
                "short_policy='error')",
            )
        starts = np.array([start])
    elif mode == "centre":
        starts = np.array([start + (available - span) // 2])
    elif mode == "start":
        starts = np.array([start])
    else:  # sliding
        step = span if step is None else int(step)
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        starts = start + step * np.arange(1 + (available - span) // step)
    idx = starts[:, None] + stride * np.arange(n_frames)[None, :]
    return np.minimum(idx, n_total - 1)  # pad policy: repeat the last frame


def clip_onsets(indices, fps):
    """Onset (seconds) of each clip: its first frame index divided by ``fps``."""
    return np.asarray(indices)[:, 0] / float(fps)


def sample_clips(frames, n_frames, stride=1, **kwargs):
    """Take clips from decoded frames: ``(n_clips, n_frames, H, W, 3)`` uint8.

    ``kwargs`` are passed to :func:`clip_indices`.
    """
    frames = np.asarray(frames)
    idx = clip_indices(len(frames), n_frames, stride, **kwargs)
    return frames[idx]


#: The decoder :func:`neuroprobe.media.load` calls for ``modality="video"``.
load = load_video
