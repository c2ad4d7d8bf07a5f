"""Errors that name the stimulus file, and opening media files with PyAV (audio and video)."""

from __future__ import annotations

from neuroprobe.exceptions import StimulusError


def file_error(path, message):
    """A ``StimulusError`` (a ``ValueError``) whose message starts with the file name."""
    return StimulusError(f"{path}: {message}")


def open_av(path, stream):
    """Open ``path`` with PyAV; raise a :func:`file_error` unless it has a ``stream`` stream.

    Parameters
    ----------
    path : str or path-like
    stream : {"audio", "video"}

    Returns
    -------
    av.container.InputContainer
        Open; the caller closes it.
    """
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise file_error(
            path,
            f"cannot open the file with PyAV/FFmpeg ({exc}); it is corrupt or in an "
            "unsupported container",
        ) from exc
    if not getattr(container.streams, stream):
        container.close()
        raise file_error(path, f"the file has no {stream} stream")
    return container
