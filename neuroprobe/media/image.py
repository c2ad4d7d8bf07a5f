"""Image decoding: any file Pillow can read -> ``PIL.Image.Image`` in mode ``"RGB"``.

Conversion rules (:func:`to_rgb`), chosen so that what a network sees is what the participant saw
for ordinary stimuli, and so that features match torchvision's and DNNBrain's loaders where those
are correct:

- ``RGB``: unchanged (copied).
- ``L`` (grayscale) and ``1`` (bilevel): the gray value is replicated in the three channels
  (bilevel pixels become 0 or 255).
- ``P`` (palette): looked up in the palette. A palette with a transparent entry is treated like
  ``RGBA``.
- ``RGBA``, ``LA``, ``PA``, ``RGBa``, ``La``: **the alpha channel is dropped** by default (the
  colour stored under each pixel is kept), which is what DNNBrain, ``PIL.Image.convert("RGB")`` and
  torchvision's ``ImageFolder`` loader do, so features stay comparable with those tools. Pass
  ``background=(r, g, b)`` (e.g. ``(255, 255, 255)`` or the grey of your experiment's screen) to
  composite the image over that colour instead: ``out = a * rgb + (1 - a) * background``.
- ``I;16``, ``I;16L``, ``I;16B``, ``I;16N`` (16-bit grayscale, e.g. 16-bit PNG or TIFF): scaled to
  8 bits over the full 16-bit range, ``round(v * 255 / 65535)``. (Pillow's own ``convert`` clips
  every value above 255 to white, which is wrong for 16-bit images.)
- ``I`` (32-bit integer): values within ``0..65535`` are treated as 16-bit and scaled as above;
  otherwise the image's own ``min..max`` range is mapped linearly to ``0..255``.
- ``F`` (32-bit float): values within ``0..1`` are scaled by 255; otherwise ``min..max`` is mapped
  to ``0..255``. NaN pixels become 0.
- ``CMYK``, ``YCbCr``, ``HSV`` and other modes: Pillow's ``convert("RGB")`` (for CMYK this is
  Pillow's plain formula; embedded ICC profiles are not applied).

Multi-frame files (GIF, multi-page TIFF) give their first frame. EXIF orientation tags are not
applied (torchvision and DNNBrain do not apply them either).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from neuroprobe.exceptions import StimulusError

__all__ = ["load", "load_image", "to_rgb"]

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_16BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


def _scale_16bit(values):
    """uint8 array of ``round(v * 255 / 65535)`` for integer values in 0..65535 (exact integers)."""
    values = values.astype(np.int64)
    return ((values * 255 + 32767) // 65535).astype(np.uint8)


def _rescale_range(values):
    """Map ``min..max`` of a float array linearly to 0..255 (uint8, rounded); NaN -> 0."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _high_depth_to_l(image):
    """Convert an ``I;16*``, ``I`` or ``F`` image to an 8-bit ``L`` image (rules in module doc)."""
    values = np.asarray(image)
    if image.mode in _16BIT_MODES:
        out = _scale_16bit(values)
    elif image.mode == "I":
        if values.size and values.min() >= 0 and values.max() <= 65535:
            out = _scale_16bit(values)
        else:
            out = _rescale_range(values)
    else:  # "F"
        finite = values[np.isfinite(values)]
        if finite.size == 0 or (finite.min() >= 0.0 and finite.max() <= 1.0):
            clean = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            out = np.rint(np.clip(clean, 0.0, 1.0) * 255.0).astype(np.uint8)
        else:
            out = _rescale_range(values)
    return Image.fromarray(np.ascontiguousarray(out), mode="L")


def _parse_background(background):
    if isinstance(background, str):
        from PIL import ImageColor

        return ImageColor.getrgb(background)[:3]
    color = tuple(int(c) for c in background)
    if len(color) != 3 or not all(0 <= c <= 255 for c in color):
        raise ValueError(f"background must be an (r, g, b) tuple of 0..255 ints: {background!r}")
    return color


def to_rgb(image, *, background=None):
    """Convert a ``PIL.Image.Image`` of any mode to a new image in mode ``"RGB"``.

    Parameters
    ----------
    image : PIL.Image.Image
        Decoded image (its pixel data must be loaded).
    background : None, str or tuple of 3 int, default=None
        ``None`` drops the alpha channel of images that have one; a colour (``(255, 255, 255)``,
        ``"white"``, ``"#808080"``) composites the image over that colour.

    Returns
    -------
    PIL.Image.Image
        A new ``RGB`` image (the input is never returned or modified).
    """
    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        if mode != "RGBA":
            image = image.convert("RGBA")
        if background is None:
            return image.convert("RGB")
        base = Image.new("RGBA", image.size, (*_parse_background(background), 255))
        return Image.alpha_composite(base, image).convert("RGB")
    if mode in _16BIT_MODES or mode in ("I", "F"):
        return _high_depth_to_l(image).convert("RGB")
    if mode == "1":
        image = image.convert("L")
    return image.convert("RGB")


def load(path, *, background=None):
    """Read an image file and return it as a ``PIL.Image.Image`` in mode ``"RGB"``.

    Parameters
    ----------
    path : str or path-like
        Image file in any format Pillow reads.
    background : None, str or tuple of 3 int, default=None
        How to handle transparency: ``None`` drops alpha (DNNBrain/torchvision behaviour), a
        colour composites over it. See :func:`to_rgb`.

    Returns
    -------
    PIL.Image.Image
        RGB image, fully decoded and detached from the file.

    Raises
    ------
    neuroprobe.exceptions.StimulusError
        The file is missing, is not an image, or is corrupt/truncated; the message names the path.
    """
    path = os.fspath(path)
    if background is not None:
        background = _parse_background(background)
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image, background=background)
    except FileNotFoundError as err:
        raise StimulusError(f"image file not found: {path!r}") from err
    except IsADirectoryError as err:
        raise StimulusError(f"expected an image file but got a directory: {path!r}") from err
    except UnidentifiedImageError as err:
        raise StimulusError(
            f"cannot decode {path!r}: not an image format Pillow recognises"
        ) from err
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise StimulusError(f"cannot decode image {path!r} (corrupt or truncated?): {err}") from err


load_image = load
