"""Plain array and table files: ``FILE:KEY`` specs, column readers, array readers, writers.

One rule for ``FILE:KEY`` (:func:`split_spec`), one CSV/TSV column reader (:func:`read_column`),
one reader of the named arrays of an ``.npy`` / ``.npz`` / ``.h5`` file (:func:`read_arrays`) and
one writer per format (:func:`write_table` for CSV, :func:`write_h5` for HDF5), all atomic (a
temporary file renamed onto the destination). The command line uses these; so can scripts.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import numpy as np

__all__ = ["split_spec", "read_column", "read_arrays", "read_target_array", "write_table",
           "write_array", "write_h5"]

_DRIVE = re.compile(r"^[A-Za-z]$")


def split_spec(spec, default=None):
    """Split ``"FILE:KEY"`` into ``(FILE, KEY)``.

    An existing path is taken whole (a colon in a file name), otherwise the text is split at its
    last colon; a Windows drive letter (``C:\\data\\x.npy``) is not a key.

    Parameters
    ----------
    spec : str or path-like
    default : str, optional
        Key returned when ``spec`` names no key.

    Returns
    -------
    path : str
    key : str or None
    """
    text = str(spec)
    if Path(text).exists() or ":" not in text:
        return text, default
    path, key = text.rsplit(":", 1)
    if not key or (_DRIVE.match(path) and key[:1] in ("\\", "/")):
        return (path if not key else text), default
    return path, key


def _read_rows(path):
    delimiter = "\t" if str(path).lower().endswith(".tsv") else ","
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def read_column(spec, ids=None, what="--labels", warn=None, *, numeric=True):
    """Values of one column of a CSV / TSV file (``FILE.csv:COLUMN``), or a ``.npy`` / ``.txt``,
    or of an HDF5 file (``FILE.h5:NAME``: a 1-D dataset, or a column stored beside the
    activations of an ``.act.h5``, e.g. ``words.act.h5:onset``).

    Rows of a table with a ``stim_id`` column (an HDF5 file with ``stim_ids``) are put in the
    order of ``ids`` when given (every stimulus of ``ids`` must be in the table). Numeric
    columns come back as floats.

    Parameters
    ----------
    spec : str
        ``FILE.csv:COLUMN``, ``FILE.tsv:COLUMN``, ``FILE.h5:NAME``, ``FILE.npy`` or ``FILE.txt``.
    ids : sequence of str, optional
        Stimulus IDs of the rows the values are for.
    what : str
        Name of the argument, used in messages.
    warn : callable, optional
        Called with a message when the table has a ``stim_id`` column but ``ids`` is None (the
        rows are then taken by position); default :func:`warnings.warn`.
    numeric : bool, default=True
        Return a column whose every value is a number as floats (else the strings).

    Returns
    -------
    ndarray of shape (n_rows,)
    """
    path, key = split_spec(spec)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what}: file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".txt":
        return np.loadtxt(path, dtype=str)
    if suffix in (".h5", ".hdf5"):
        values, file_ids = _h5_column(path, key, what)
        if ids is not None and file_ids is not None:
            from neuroprobe.io.ids import align_ids

            values = values[align_ids(ids, file_ids, what=f"{what} {path}",
                                      reference="the input", subset=True)]
        return _numeric(values) if numeric else values.astype(str)
    if suffix not in (".csv", ".tsv"):
        raise ValueError(f"{what}: expected FILE.csv:COLUMN, .tsv, FILE.h5:NAME, .npy or .txt; "
                         f"got {path}")
    rows = _read_rows(path)
    columns = list(rows[0]) if rows else []
    if key is None or key not in columns:
        raise KeyError(f"{what}: give a column as {path}:COLUMN; columns: {', '.join(columns)}")
    values = [r[key] for r in rows]
    if ids is not None and "stim_id" in columns:
        from neuroprobe.io.ids import align_ids

        index = align_ids(ids, [r["stim_id"] for r in rows], what=f"{what} {path}",
                          reference="the input", subset=True)
        values = [values[i] for i in index]
    elif "stim_id" in columns:
        message = (f"{what} {path} has a stim_id column but the input rows have no stimulus "
                   "IDs: rows matched by position (give --ids FILE[:KEY])")
        (warn or warnings.warn)(message)
    if not numeric:
        return np.array(values)
    return _numeric(values)


def _numeric(values):
    """Floats when every value is a number, else the values as given."""
    if np.asarray(values).dtype.kind in "biuf":
        return np.asarray(values, dtype=np.float64)
    try:
        return np.array([float(v) for v in values])
    except ValueError:
        return np.array(values)


def _h5_column(path, key, what):
    """``(values, stim_ids or None)`` of the 1-D dataset ``key`` of an HDF5 file: the group
    ``columns/`` of an ``.act.h5`` first, then the root."""
    import h5py

    with h5py.File(path, "r") as f:
        group = f["columns"] if isinstance(f.get("columns"), h5py.Group) else None
        available = list(group) if group is not None else []
        available += [k for k, v in f.items() if isinstance(v, h5py.Dataset) and v.ndim == 1
                      and k not in ("stim_ids", "stim_keys")]
        if key is None or key not in available:
            raise KeyError(f"{what}: give a column as {path}:NAME; 1-D columns in it: "
                           f"{', '.join(available) or 'none'}")
        dset = group[key] if group is not None and key in group else f[key]
        is_str = h5py.check_string_dtype(dset.dtype) is not None or dset.dtype.kind in "SO"
        values = dset.asstr()[:].astype(str) if is_str else dset[...]
        ids = f["stim_ids"].asstr()[:].astype(str).tolist() if "stim_ids" in f else None
        if ids is not None and len(ids) != len(values):
            ids = None
    return np.asarray(values), ids


def read_arrays(path, keys=None):
    """Named arrays of an ``.npy`` / ``.npz`` / ``.h5`` file.

    Parameters
    ----------
    path : str or path-like
    keys : list of str, optional
        Arrays to read (default: every array of two or more dimensions; for ``.npy`` the one
        array, named by the file stem).

    Returns
    -------
    dict of str -> ndarray
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if keys:
            raise ValueError(f"{path}: a .npy file holds one array; no name can be selected")
        return {path.stem: np.load(path)}
    if suffix == ".npz":
        with np.load(path) as z:
            names = keys or [k for k in z.files if z[k].ndim >= 2]
            missing = [k for k in names if k not in z.files]
            if missing:
                raise KeyError(f"{path}: no array {missing[0]!r}; available: {z.files}")
            return {k: z[k] for k in names}
    if suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            available = [k for k, v in f.items() if isinstance(v, h5py.Dataset)]
            names = keys or [k for k in available if f[k].ndim >= 2]
            missing = [k for k in names if k not in available]
            if missing:
                raise KeyError(f"{path}: no dataset {missing[0]!r}; available: {available}")
            return {k: f[k][()] for k in names}
    raise ValueError(f"{path}: unsupported file type (expected .act.h5, .rdm.h5, .npy, .npz, .h5)")


def read_target_array(path, key=None):
    """Targets (n_samples, n_targets) of an ``.npy``, ``.npz[:KEY]`` or ``.h5[:DATASET]`` file.

    ``.npy`` files are memory-mapped; an HDF5 dataset is returned open (streamed in batches:
    close it with ``Y.file.close()``) through :func:`neuroprobe.io.targets.open_targets`.

    Parameters
    ----------
    path : str or path-like
    key : str, optional
        Array of an ``.npz`` (default: its first array other than ``stim_ids``) or dataset of an
        ``.h5`` file (default: ``"Y"``).

    Returns
    -------
    Y : ndarray, memmap or h5py.Dataset
    ids : ndarray of str or None
        The file's ``stim_ids`` array (``.npz`` / ``.h5``), if any.
    """
    from neuroprobe.io.ids import IDS_KEY, as_ids

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--targets: file not found: {path}")
    name = path.name.lower()
    if name.endswith(".npy"):
        return np.load(path, mmap_mode="r"), None
    if name.endswith(".npz"):
        with np.load(path) as data:
            key = key or next((k for k in data.files if k != IDS_KEY), None)
            if key not in data.files:
                raise KeyError(f"--targets: {key!r} not in {path}; arrays: {data.files}")
            ids = as_ids(data[IDS_KEY], f"{path}:{IDS_KEY}") if IDS_KEY in data.files else None
            return data[key], ids
    if name.endswith((".h5", ".hdf5")):
        from neuroprobe.io.targets import open_targets

        Y = open_targets(path, key or "Y")
        ids = as_ids(Y.file[IDS_KEY][()], f"{path}:{IDS_KEY}") if IDS_KEY in Y.file else None
        return Y, ids
    raise ValueError(f"--targets: unsupported file {path} (.npy, .npz, .h5, NIfTI, CIFTI, GIFTI, "
                     "MGH)")


def write_array(path, values, *, atomic=True):
    """Write a numeric array as ``.npy``, or as ``.csv`` (numbers only, a vector as one row).

    Parameters
    ----------
    path : str or path-like
    values : array-like
    atomic : bool, default=True
        Write a temporary file renamed onto ``path``; False writes ``path`` directly (for a
        caller that renames several files together).

    Returns
    -------
    Path
    """
    return _write(path, atomic, _write_array, values, Path(path).suffix.lower() == ".csv")


def _write(path, atomic, write, *args):
    """``write(target, *args)`` into ``path``: through a temporary file renamed onto it when
    ``atomic``, else directly."""
    from neuroprobe._utils import atomic_path

    path = Path(path)
    if not atomic:
        write(path, *args)
        return path
    with atomic_path(path, suffix=path.suffix or ".tmp") as tmp:
        write(tmp, *args)
    return path


def _write_array(path, values, as_csv):
    values = np.asarray(values)
    if as_csv:
        np.savetxt(path, values[None] if values.ndim == 1 else values, delimiter=",")
    else:
        with open(path, "wb") as fh:  # a file object: np.save adds no second suffix
            np.save(fh, values)


def write_table(path, rows, fields=None, *, atomic=True):
    """Write a table to a CSV file, atomically.

    Parameters
    ----------
    path : str or path-like
    rows : iterable of dict, iterable of sequence, or pandas DataFrame
        Dict rows (columns: ``fields`` or the keys of the first row), sequences (with ``fields``
        as the header) or a DataFrame (written with its index).
    fields : list of str, optional
    atomic : bool, default=True
        As in :func:`write_array`.

    Returns
    -------
    Path
    """
    return _write(path, atomic, _write_csv, rows, fields)


def _write_csv(path, rows, fields):
    if hasattr(rows, "to_csv"):  # a DataFrame
        rows.to_csv(path)
        return
    rows = list(rows)
    as_dicts = not rows or isinstance(rows[0], dict)
    fields = list(fields) if fields is not None else (list(rows[0]) if rows and as_dicts else [])
    with open(path, "w", newline="") as fh:
        if as_dicts:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
        else:
            writer = csv.writer(fh)
            writer.writerow(fields)
        writer.writerows(rows)


def write_h5(path, datasets, attrs=None):
    """Write named arrays (and file attributes) to an HDF5 file, atomically.

    String arrays are stored as variable-length UTF-8; arrays of more than 1024 values are
    gzip-compressed. Names with ``/`` create groups.

    Parameters
    ----------
    path : str or path-like
    datasets : dict of str -> array-like
    attrs : dict, optional

    Returns
    -------
    Path
    """
    import h5py

    from neuroprobe._utils import atomic_h5

    path = Path(path)
    with atomic_h5(path) as f:  # built in memory: a full disk is one clean error
        for name, value in datasets.items():
            value = np.asarray(value)
            if value.dtype.kind in "UO":
                f.create_dataset(name, data=value.astype(object), dtype=h5py.string_dtype())
            else:
                gzip = "gzip" if value.size > 1024 else None
                f.create_dataset(name, data=value, compression=gzip)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return path
