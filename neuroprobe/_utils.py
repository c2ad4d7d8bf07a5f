"""Small helpers shared across neuroprobe: atomic writes, finite checks, memory budgets."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path, suffix=".tmp"):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Nothing is half-written: if the block raises, the temporary file is removed and ``path`` is
    untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp creates 0600; give the file the usual umask permissions
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def check_finite(array, name="X"):
    """Raise ``ValueError`` naming how many NaN / inf values ``array`` has and where.

    Works in chunks of rows so that a large float32 array is not copied whole.
    """
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        return
    n_bad = 0
    first = None
    step = max(1, int(2**24 // max(1, array[0].size if array.ndim > 1 else 1)))
    for start in range(0, array.shape[0], step):
        bad = ~np.isfinite(array[start : start + step])
        count = int(bad.sum())
        if count and first is None:
            idx = np.argwhere(bad)[0]
            idx[0] += start
            first = tuple(int(i) for i in idx)
        n_bad += count
    if n_bad:
        raise ValueError(
            f"{name} contains {n_bad} NaN or infinite value(s) out of {array.size}; "
            f"the first at index {first}. Remove or impute them before fitting."
        )


def memory_budget(default_bytes=2 * 1024**3):
    """Bytes a batched computation may use for its working arrays.

    Reads ``NEUROPROBE_MEMORY_BUDGET`` (bytes, or with a ``K``/``M``/``G`` suffix); otherwise a
    quarter of the available memory, capped at ``default_bytes``.
    """
    value = os.environ.get("NEUROPROBE_MEMORY_BUDGET")
    if value:
        units = {"K": 1024, "M": 1024**2, "G": 1024**3}
        value = value.strip().upper().rstrip("B")
        if value and value[-1] in units:
            return int(float(value[:-1]) * units[value[-1]])
        return int(float(value))
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return int(min(default_bytes, pages // 4))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return default_bytes
