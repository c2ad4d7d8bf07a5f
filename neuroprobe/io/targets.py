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

__all__ = ["write_targets", "open_targets", "read_target_ids", "column_chunks"]

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
