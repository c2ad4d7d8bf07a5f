"""Small helpers shared across neuroprobe: atomic writes, finite checks, memory budgets, seeds,
devices."""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

from neuroprobe.exceptions import DeviceError, WriteError  # noqa: F401 (re-exported)


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
    except (OSError, RuntimeError) as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if not write_failure(exc):
            raise
        raise write_error(path, exc) from exc  # name the user's path, not the temporary file
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_h5(path):
    """Yield a new HDF5 file (``h5py.File``) built in memory; on success its image is written to
    a temporary file beside ``path`` and renamed onto it.

    HDF5 itself never writes to the disk, so a full disk or a file-size limit gives one
    :class:`WriteError` "cannot write <path>: <cause>" from Python's own write, never an HDF5
    failure (which HDF5 cannot recover from: tracebacks, then a crash at exit). For files that fit
    in memory (RDMs, ROI and HRF tables, saliency maps); stream large files instead.
    """
    import h5py

    path = Path(path)
    fh = h5py.File(
        f"{path.name}.{os.getpid()}.{id(path)}", "w", driver="core", backing_store=False
    )
    try:
        yield fh
        fh.flush()
        image = fh.id.get_file_image()
    finally:
        fh.close()
    with atomic_path(path, suffix=path.suffix or ".h5") as tmp, open(tmp, "wb") as out:
        out.write(image)


_HDF5_CAUSE = re.compile(r"error message = '([^']+)'")
_HDF5_ERRNO = re.compile(r"errno = (\d+)")


def write_failure(exc):
    """Whether ``exc`` (raised while writing) is a failure of the storage (errno or HDF5 write)."""
    if isinstance(exc, WriteError):
        return False  # already explained
    text = str(exc)
    if isinstance(exc, OSError) and exc.errno in (
        _errno.ENOSPC, _errno.EFBIG, _errno.EDQUOT, _errno.EIO, _errno.EROFS, _errno.EACCES
    ):
        return True
    return bool(_HDF5_ERRNO.search(text) or "write failed" in text)


def io_cause(exc):
    """The cause of an I/O error in a few words (``"No space left on device"``).

    HDF5 errors carry it in the middle of a long, multi-line message (``... errno = 28, error
    message = 'No space left on device' ...``); plain ``OSError`` in ``strerror``.
    """
    text = str(exc)
    found = _HDF5_CAUSE.search(text)
    if found:
        return found.group(1)
    found = _HDF5_ERRNO.search(text)
    if found:
        return os.strerror(int(found.group(1)))
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines) or type(exc).__name__


def write_error(path, exc, detail=""):
    """A :class:`WriteError` "cannot write <path>: <cause>" from the error ``exc``."""
    text = str(exc)
    number = getattr(exc, "errno", None)
    found = _HDF5_ERRNO.search(text)
    if found:
        number = int(found.group(1))
    err = WriteError(f"cannot write {path}: {io_cause(exc)}{detail}")
    err.errno = number or _errno.EIO
    err.hdf5_failed = bool(found or "write failed" in text)
    return err


def check_output_path(path, suffixes=None, what="--out"):
    """Check before a long computation that ``path`` can be written.

    Parameters
    ----------
    path : str or path-like
    suffixes : sequence of str, optional
        Accepted endings (case-insensitive), e.g. ``(".csv",)``.
    what : str
        How the user gave the path (for the message).

    Raises
    ------
    ValueError
        Wrong suffix, or the path is a folder.
    OSError
        The folder (or its nearest existing parent) is not a writable folder.
    """
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a file name")
    if suffixes and not any(name.endswith(s.lower()) for s in suffixes):
        raise ValueError(f"{what} {path}: expected a name ending in {' or '.join(suffixes)}")
    parent = path.parent if str(path.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(
            _errno.ENOTDIR, f"{what} {path}: {probe} is a file, not a folder"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(_errno.EACCES, f"{what} {path}: folder {probe} is not writable")
    return path


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


def check_output_folder(path, what="--out"):
    """Check before a long computation that the folder ``path`` can be created or written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(_errno.ENOTDIR, f"{what} {path} is a file; give a folder")
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(_errno.ENOTDIR, f"{what} {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(_errno.EACCES, f"{what} {path}: folder {probe} is not writable")
    return path


def renamed_y(y, Y, where, stacklevel=3):
    """``y``, or the deprecated ``Y=`` keyword (with a FutureWarning); both is an error.

    ``stacklevel`` 3 names the caller of the public method that calls this.
    """
    if Y is None:
        return y
    if y is not None:
        raise TypeError(f"{where} got both y and Y; pass the targets once, as y")
    warnings.warn(
        f"{where}: the keyword Y= is deprecated and will be removed in the next release; "
        "pass the targets as y= (scikit-learn's name) or positionally",
        FutureWarning,
        stacklevel=stacklevel,
    )
    return Y


def resolve_device(device):
    """The one rule for ``device=``: ``None``/``"auto"`` picks CUDA when present, else the CPU.

    Parameters
    ----------
    device : str, torch.device or None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"`` or ``None``.

    Returns
    -------
    torch.device

    Raises
    ------
    DeviceError
        CUDA asked for on a machine without it, or a string torch does not parse.
    """
    import torch

    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(
            f"device={device!r} is not a device torch understands; use 'cpu', 'cuda', "
            f"'cuda:N' or 'auto' ({exc})"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device={device!r} but CUDA is not available; use 'cpu' or 'auto'")
    return dev


def seed_from(random_state=None, default=None):
    """An int seed (for torch) from an sklearn-style ``random_state``.

    Parameters
    ----------
    random_state : int, numpy.random.RandomState or None
        An int is the seed; a ``RandomState`` draws one (and advances); ``None`` gives ``default``.
    default : int or None
        The seed for ``random_state=None``: a fixed seed (the networks use
        ``DEFAULT_WEIGHTS_SEED`` = 0, so clones build identical weights) or ``None`` for a fresh
        random seed.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        ``random_state`` of another type.
    """
    if random_state is None:
        if default is not None:
            return int(default)
        return int(np.random.default_rng().integers(2**31 - 1))
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise ValueError(
        f"random_state must be None, an int or a RandomState, got {random_state!r}"
    )
