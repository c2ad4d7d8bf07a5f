"""Decoding of stimulus files: images, audio, video, text.

``load(path, modality)`` is the one entry point the rest of neuroprobe uses to turn a stimulus file
into raw data:

- ``"image"`` -> ``PIL.Image.Image`` in mode ``"RGB"`` (see :mod:`neuroprobe.media.image` for how
  grayscale, alpha, palette, 16-bit and CMYK images are converted);
- ``"audio"`` -> ``(waveform, sample_rate)``: float32 mono 1-D numpy array and an int;
- ``"video"`` -> ``(frames, fps)``: uint8 array ``(T, H, W, 3)`` and a float;
- ``"text"`` -> :class:`neuroprobe.media.text.Text` (a ``str``; ``.txt`` files, UTF-8).

Each modality lives in its own submodule (``neuroprobe.media.image``, ``.audio``, ``.video``) that
defines ``load(path, **options)``; the submodules are imported on first use, so decoding images
never imports the audio/video libraries. ``modality_from_path`` maps a file extension to a
modality using the tables below.
"""

from __future__ import annotations

import importlib
import os

from neuroprobe.exceptions import StimulusError

__all__ = [
    "AUDIO_EXTENSIONS",
    "EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "MODALITIES",
    "TEXT_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "load",
    "modality_from_path",
]

MODALITIES = ("image", "audio", "video", "text")

IMAGE_EXTENSIONS = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp",
        ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".jp2", ".j2k",
    }
)  # fmt: skip
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff"}
)
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv"}
)
TEXT_EXTENSIONS = frozenset({".txt"})
EXTENSIONS = {
    "image": IMAGE_EXTENSIONS, "audio": AUDIO_EXTENSIONS, "video": VIDEO_EXTENSIONS,
    "text": TEXT_EXTENSIONS,
}

_RAISE = object()


def modality_from_path(path, default=_RAISE):
    """Return the modality (``"image"``, ``"audio"`` or ``"video"``) of a file from its extension.

    Parameters
    ----------
    path : str or path-like
        File name; only its extension (case-insensitive) is looked at, the file is not opened.
    default : object, optional
        Returned for an unknown extension. Without it an unknown extension raises.

    Returns
    -------
    modality : str

    Raises
    ------
    neuroprobe.exceptions.StimulusError
        Unknown extension and no ``default``; the message names the path and the known extensions.
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    for modality, extensions in EXTENSIONS.items():
        if suffix in extensions:
            return modality
    if default is not _RAISE:
        return default
    known = ", ".join(f"{m}: {' '.join(sorted(e))}" for m, e in EXTENSIONS.items())
    raise StimulusError(
        f"cannot tell the modality of {os.fspath(path)!r} from its extension {suffix!r}; "
        f"known extensions are {known}. Pass modality='image'|'audio'|'video'|'text' explicitly."
    )


def _backend(modality):
    name = f"neuroprobe.media.{modality}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name == name:
            raise NotImplementedError(
                f"decoding {modality} stimuli needs the module {name}, which is not available "
                "in this installation of neuroprobe."
            ) from err
        raise ImportError(
            f"decoding {modality} stimuli needs the optional package {err.name!r}; install it "
            f"with: pip install 'neuroprobe[{modality}]'"
        ) from err


def load(path, modality=None, **options):
    """Decode one stimulus file.

    Parameters
    ----------
    path : str or path-like
        The stimulus file.
    modality : {"image", "audio", "video", "text"} or None
        ``None`` infers it from the extension (:func:`modality_from_path`).
    **options
        Passed to the modality's decoder, e.g. ``background=(255, 255, 255)`` for images (see
        :func:`neuroprobe.media.image.load`).

    Returns
    -------
    stimulus : PIL.Image.Image or tuple
        RGB image; ``(waveform float32 (n_samples,), sample_rate int)`` for audio;
        ``(frames uint8 (T, H, W, 3), fps float)`` for video.

    Raises
    ------
    neuroprobe.exceptions.StimulusError
        Missing, unreadable or corrupt file (the message contains the path).
    NotImplementedError
        The decoder module of that modality is not installed.
    """
    path = os.fspath(path)
    if modality is None:
        modality = modality_from_path(path)
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    module = _backend(modality)
    decode = getattr(module, "load", None) or getattr(module, f"load_{modality}", None)
    if decode is None:
        raise NotImplementedError(f"neuroprobe.media.{modality} defines no load(path) function")
    return decode(path, **options)
