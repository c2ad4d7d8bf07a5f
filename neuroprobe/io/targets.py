"""Target files: brain responses ``(n_samples, n_targets)`` in HDF5, read by batches of targets.

The encoders (:class:`~neuroprobe.estimators.VoxelwiseEncoder`,
:class:`~neuroprobe.estimators.PLSEncoder`) and :class:`~neuroprobe.estimators.PermutationTest`
accept an open ``h5py.Dataset`` as ``Y`` and stream batches of columns from it, so ``Y`` never has
to fit in memory. :func:`write_targets` stores an array chunked by blocks of whole columns (every
chunk holds all samples of a few targets), the layout those column reads want;
:meth:`neuroprobe.transformers.brain.BrainMasker.transform_to_h5` writes such a dataset straight
from images.

Stimulus identity: ``write_targets(..., stim_ids=)`` stores one ID per row in a root dataset
``stim_ids`` (read back by :func:`read_target_ids`); ``neuroprobe encode`` aligns the activations
to them and ``neuroprobe decode`` its label CSVs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroprobe._utils import atomic_path

__all__ = [
    "write_targets",
    "open_targets",
    "read_target_ids",
    "column_chunks",
    "TargetView",
    "as_targets",
    "read_batch",
]

CHUNK_BYTES = 4 * 1024**2


def column_chunks(n_samples, n_targets, itemsize=4, chunk_bytes=CHUNK_BYTES):
    """HDF5 chunk shape ``(n_samples, k)``: whole columns, about ``chunk_bytes`` per chunk."""
    k = int(max(1, min(n_targets, chunk_bytes // max(1, n_samples * itemsize))))
    return (int(max(1, n_samples)), k)


def write_targets(path, Y, dataset="Y", *, dtype="float32", targets_per_batch=None,
                  compression=None, attrs=None, stim_ids=None):
    """Write targets ``Y`` (array or array-like, e.g. another HDF5 dataset) to an HDF5 file.

    The file is written under a temporary name and renamed when complete; ``Y`` is copied in
    batches of columns, so an ``h5py.Dataset`` or a memory map can be re-chunked without loading it.

    Parameters
    ----------
    path : str or path-like
        Output file (``.h5``); replaced if it exists.
    Y : array-like of shape (n_samples, n_targets)
    dataset : str, default="Y"
        Name of the dataset in the file.
    dtype : str, default="float32"
    targets_per_batch : int, optional
        Columns copied at once (default: about 64 MiB of ``Y``).
    compression : str, optional
        HDF5 filter (e.g. ``"gzip"``); none by default (fastest reads).
    attrs : dict, optional
        Attributes stored on the dataset.
    stim_ids : sequence of str, optional
        One stimulus ID per row, stored in the root dataset ``stim_ids`` (unique).

    Returns
    -------
    pathlib.Path
    """
    import h5py

    if len(getattr(Y, "shape", ())) != 2:
        Y = np.asarray(Y)
        if Y.ndim == 1:
            Y = Y[:, None]
    if len(Y.shape) != 2:
        raise ValueError(f"Y must be 2-D (n_samples, n_targets); got shape {Y.shape}")
    n, t = (int(s) for s in Y.shape)
    if stim_ids is not None:
        from neuroprobe.io.ids import as_ids

        stim_ids = as_ids(stim_ids, "stim_ids")
        if stim_ids.size != n:
            raise ValueError(f"stim_ids has {stim_ids.size} entries for {n} rows of Y")
    dtype = np.dtype(dtype)
    step = targets_per_batch or max(1, (64 * 1024**2) // max(1, n * dtype.itemsize))
    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as fh:
        dset = fh.create_dataset(dataset, shape=(n, t), dtype=dtype,
                                 chunks=column_chunks(n, t, dtype.itemsize) if n and t else None,
                                 compression=compression)
        for start in range(0, t, step):
            cols = slice(start, min(t, start + step))
            dset[:, cols] = np.asarray(Y[:, cols], dtype=dtype)
        for key, value in (attrs or {}).items():
            dset.attrs[key] = value
        if stim_ids is not None:
            fh.create_dataset("stim_ids", data=np.array(stim_ids.tolist(), dtype=object),
                              dtype=h5py.string_dtype())
    return path


def read_target_ids(target):
    """Stimulus IDs stored with targets (an ``h5py.Dataset`` or a path), or None.

    Returns
    -------
    ndarray of str or None
    """
    import h5py

    from neuroprobe.io.ids import as_ids

    def ids_of(f):
        if "stim_ids" not in f:
            return None
        return as_ids(f["stim_ids"][()], f"{f.filename}:stim_ids")

    if isinstance(target, h5py.Dataset):
        return ids_of(target.file)
    with h5py.File(target, "r") as f:
        return ids_of(f)


def open_targets(path, dataset="Y"):
    """Open the target dataset of an HDF5 file for reading (an ``h5py.Dataset``).

    The file stays open while the dataset object is referenced; close it with
    ``dset.file.close()``.

    Parameters
    ----------
    path : str or path-like
    dataset : str, default="Y"

    Returns
    -------
    h5py.Dataset of shape (n_samples, n_targets)
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"target file not found: {path}")
    fh = h5py.File(path, "r")
    if dataset not in fh or not isinstance(fh[dataset], h5py.Dataset):
        names = []

        def collect(name, obj):
            if isinstance(obj, h5py.Dataset):
                names.append(name)

        fh.visititems(collect)
        fh.close()
        raise KeyError(
            f"{path} has no dataset {dataset!r}; datasets in the file: {', '.join(names) or 'none'}"
        )
    dset = fh[dataset]
    if dset.ndim != 2:
        shape = dset.shape
        fh.close()
        raise ValueError(
            f"{path}:{dataset} must be 2-D (n_samples, n_targets); got shape {shape}"
        )
    return dset


# --------------------------------------------------------------------------- lazy 2-D views
class TargetView:
    """A read-only lazy view of some rows and/or a column range of a 2-D array-like.

    ``view[:, columns]`` reads only those columns of ``Y`` (an array, ``h5py.Dataset``, zarr
    array or another view) and then keeps ``rows``; neither the row subset nor the column range
    is ever materialised whole. Cross-validation splits (:func:`neuroprobe.cross_val_score_targets`)
    use row views, :func:`neuroprobe.estimators.outofcore.fit_to_hdf5` column views.

    Parameters
    ----------
    Y : 2-D array-like
    rows : int array, optional
        Rows kept (all by default).
    cols : slice, optional
        Contiguous column range ``start:stop`` (all by default); column reads are then
        ``view[:, start:stop]`` slices only (what HDF5 serves fast).
    """

    def __init__(self, Y, rows=None, cols=None):
        self.Y = Y
        self.rows = None if rows is None else np.asarray(rows)
        self.cols = cols
        start, stop, _ = (cols or slice(None)).indices(Y.shape[1])
        self.start, self.stop = start, stop
        n_rows = Y.shape[0] if self.rows is None else len(self.rows)
        self.shape = (n_rows, stop - start)
        self.ndim = 2
        self.dtype = Y.dtype

    def __len__(self):
        return self.shape[0]

    def _columns(self, cols):
        if self.cols is None:
            return cols
        if not isinstance(cols, slice):
            raise IndexError("this view supports view[:, start:stop] only")
        start, stop, step = cols.indices(self.shape[1])
        return slice(self.start + start, self.start + stop, step)

    def __getitem__(self, key):
        rows, cols = key
        if not (isinstance(rows, slice) and rows == slice(None)):
            raise IndexError(f"{type(self).__name__} supports view[:, columns] only")
        block = self.Y[:, self._columns(cols)]
        return block if self.rows is None else np.asarray(block)[self.rows]

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self[:, slice(None)])
        return out if dtype is None else out.astype(dtype)


#: former name of the row view (``TargetRows(Y, rows)``)
TargetRows = TargetView


def column_view(Y, cols):
    """``Y[:, cols]`` for an array (a numpy view), a lazy :class:`TargetView` otherwise."""
    return Y[:, cols] if isinstance(Y, np.ndarray) else TargetView(Y, cols=cols)


def is_lazy_targets(Y):
    """True for array-likes read by column slices (h5py.Dataset, zarr, TargetView)."""
    return (
        not isinstance(Y, np.ndarray)
        and hasattr(Y, "shape")
        and hasattr(Y, "dtype")
        and hasattr(Y, "__getitem__")
        and len(Y.shape) == 2
    )


def _numeric(Y, name):
    Y = np.asarray(Y)
    if Y.dtype == object:
        try:
            Y = Y.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{name} must be numeric (Unknown label type: object values such as "
                f"{Y.flat[0]!r})"
            ) from exc
    if not (np.issubdtype(Y.dtype, np.floating) or np.issubdtype(Y.dtype, np.integer)
            or Y.dtype == bool):
        raise ValueError(f"{name} must be numeric (Unknown label type: dtype {Y.dtype})")
    return Y


def as_targets(Y, n_samples=None, name="Y"):
    """Return ``(Y2d, was_1d)`` without copying: 1-D becomes a (n, 1) view; lazy stays lazy."""
    if Y is None:
        raise ValueError(
            "This estimator requires y to be passed, but the target y is None. "
            f"Pass {name} of shape (n_samples,) or (n_samples, n_targets)."
        )
    if not is_lazy_targets(Y):
        Y = _numeric(Y, name)
    was_1d = len(Y.shape) == 1
    if was_1d:
        Y = Y.reshape(-1, 1)
    if len(Y.shape) != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (n_samples, n_targets); got shape {Y.shape}")
    if n_samples is not None and Y.shape[0] != n_samples:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"X has {n_samples}, {name} has {Y.shape[0]}"
        )
    if Y.shape[1] == 0:
        raise ValueError(f"{name} has 0 targets (columns)")
    return Y, was_1d


def read_batch(Y, cols, dtype):
    """Read ``Y[:, cols]`` as a new array of ``dtype`` (the only copy of these columns)."""
    block = Y[:, cols]
    return np.array(block, dtype=dtype, copy=True)
