"""Text decoding: a ``.txt`` file -> its text, as a :class:`Text` (a ``str``).

A text stimulus is a string. :class:`Text` is a ``str`` that also carries the stimulus ID it was
loaded for (``stim_id``), so a tokeniser can name the stimulus in a truncation warning; it
compares, hashes and prints as the plain string.

Bad input raises :class:`neuroprobe.exceptions.StimulusError` (a ``ValueError``) naming the file:
a missing or unreadable file, bytes that are not valid in ``encoding``.
"""

from __future__ import annotations

from pathlib import Path

from neuroprobe.media._files import file_error

__all__ = ["Text", "load", "load_text"]


class Text(str):
    """A text stimulus: a ``str`` with the ``stim_id`` it belongs to (``None`` when unknown)."""

    stim_id = None

    def __new__(cls, value, stim_id=None):
        new = super().__new__(cls, value)
        new.stim_id = None if stim_id is None else str(stim_id)
        return new

    def describe(self, n_chars=40):
        """``"stimulus 's1'"`` when the ID is known, else the text's first characters."""
        if self.stim_id is not None:
            return f"stimulus {self.stim_id!r}"
        head = str(self)[:n_chars]
        return f"text {head + ('...' if len(self) > n_chars else '')!r}"


def load_text(path, *, encoding="utf-8", strip=True):
    """Read a text file.

    Parameters
    ----------
    path : str or path-like
    encoding : str, default="utf-8"
        A byte-order mark is tolerated with the default.
    strip : bool, default=True
        Remove leading and trailing whitespace (the final newline).

    Returns
    -------
    Text
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "text file not found")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise file_error(path, f"cannot read the file ({exc})") from exc
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") == "utf-8" else encoding
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise file_error(
            path, f"the bytes are not valid {encoding} text ({exc.reason} at byte {exc.start})"
        ) from exc
    return Text(text.strip() if strip else text)


#: The decoder :func:`neuroprobe.media.load` calls for ``modality="text"``.
load = load_text
