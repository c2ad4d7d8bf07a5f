"""Progress bars: one owner for how long loops report themselves (tqdm).

:func:`progress` wraps an iterable in a tqdm bar when progress is on, and returns it unchanged
otherwise. Bars are off when the output is not a terminal (tqdm's ``disable=None``: logs and test
runs stay clean) and everywhere after :func:`set_progress(False) <set_progress>`, which the
command line calls for ``--quiet``. Estimators that take ``verbose=`` pass it as ``enabled``.

Examples
--------
>>> from neuroprobe._progress import progress
>>> sum(progress(range(3), desc="demo", enabled=False))
3
"""

from __future__ import annotations

import contextlib

__all__ = ["progress", "set_progress", "progress_enabled", "quiet"]

_ENABLED = True


def set_progress(enabled):
    """Turn every neuroprobe progress bar on (default) or off (``--quiet``)."""
    global _ENABLED
    _ENABLED = bool(enabled)


def progress_enabled():
    """Whether progress bars are on (see :func:`set_progress`)."""
    return _ENABLED


@contextlib.contextmanager
def quiet():
    """Progress bars off inside the block."""
    before = _ENABLED
    set_progress(False)
    try:
        yield
    finally:
        set_progress(before)


def progress(iterable, *, total=None, desc=None, unit="it", enabled=True):
    """``iterable`` with a progress bar (tqdm) when progress is on and stderr is a terminal.

    Parameters
    ----------
    iterable : iterable
    total : int, optional
        Number of items (default: ``len(iterable)`` where defined).
    desc : str, optional
        What is being done (shown before the bar).
    unit : str
    enabled : bool
        The caller's own switch (e.g. ``verbose``); both it and :func:`set_progress` must be on.

    Returns
    -------
    iterable
        The same items, in the same order.
    """
    if not (enabled and _ENABLED):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, disable=None)
