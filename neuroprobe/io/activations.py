"""Activation files (``*.act.h5``): write in streamed batches, resume after a crash, read by layer.

Format
------
* group ``layers/``: one dataset per layer, named by the layer string as the user gave it (``"/"``
  replaced by ``"|"``), shape ``(n_stimuli, ...)`` float32, chunked by rows, gzip-compressed with
  the shuffle filter. Dataset attributes: ``layer`` (the name as given), ``module`` (resolved module
  name), ``native_shape`` (output shape of the layer without the batch dimension), ``pooled``
  (bool), ``channels`` (JSON list of kept channel indices, or ``null`` for all).
* dataset ``stim_ids``: utf-8 strings.
* dataset ``stim_keys`` (when known): identity of each stimulus's content, a SHA-1 of the file's
  path, size and modification time, or of the array row.
* group ``columns/`` (optional): per-row values stored beside the activations, one 1-D dataset
  each (float64 numbers or utf-8 strings), e.g. the ``onset``, ``offset`` and ``run`` of each
  word of ``neuroprobe words``; read with :meth:`ActivationFile.column` or as ``FILE:NAME`` by
  :func:`neuroprobe.io.arrays.read_column` (``encode --times words.act.h5:onset``).
* root attributes: ``model``, ``weights_id``, ``preprocess`` (JSON), ``layers`` (JSON list),
  ``pooling`` (``"none"`` when unpooled), ``channels`` (JSON), ``neuroprobe_version``,
  ``n_stimuli``, ``complete`` (bool), ``n_done`` (rows written so far).

Crash safety
------------
:class:`ActivationWriter` writes to ``<path>.partial`` and renames it onto ``<path>`` when every row
is written. After each batch the rows are written, then ``n_done`` is updated and the file flushed.
A rerun with the same identity (model, weights, preprocessing, layers, pooling, channels, stimulus
IDs and stimulus contents: file path, size and modification time, or a hash of each array row)
opens the partial file and continues at ``n_done``. A partial file with another identity (e.g. an
image replaced between the crash and the rerun: the message names it), or a damaged one (killed in
the middle of a metadata write, disk full: HDF5 cannot open it or its datasets), is discarded with
a warning and the extraction starts over.

One writer per file: the writer holds an exclusive lock (``.<name>.lock`` beside the file, removed
when it finishes) while it writes; a second writer of the same path stops with "another extraction
is writing <path>" and touches nothing. Before each batch the writer checks that the batch fits
(free disk space, the process's file-size limit); a full disk or a write error gives one
:class:`~neuroprobe.exceptions.WriteError` "cannot write <path>: <cause>".

Readers (:func:`open_activations`) refuse incomplete files (``complete`` false), naming how many
rows were written; only ``neuroprobe info`` (:func:`describe`) and resuming read them.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from neuroprobe.exceptions import (  # noqa: F401 (ExtractionBusyError, IncompleteActivationsError re-exported)
    ExtractionBusyError,
    IncompleteActivationsError,
    LayerError,
    WriteError,
)

__all__ = [
    "ActivationWriter",
    "ExtractionBusyError",
    "IncompleteActivationsError",
    "ActivationFile",
    "write_activations",
    "open_activations",
    "read_layers_2d",
    "describe",
    "dataset_name",
    "PARTIAL_SUFFIX",
]

PARTIAL_SUFFIX = ".partial"
_ABANDONED = []  # HDF5 files whose write failed (see ActivationWriter._abandon)
_IDENTITY_KEYS = ("model", "weights_id", "preprocess", "layers", "pooling", "channels", "n_stimuli")


def dataset_name(layer):
    """HDF5 dataset name of a layer string (``"/"`` is not allowed in HDF5 names)."""
    return str(layer).replace("/", "|")


def _json(value):
    return json.dumps(value, sort_keys=True, default=str)


def _version():
    from neuroprobe._version import __version__

    return __version__


def _chunk_rows(row_nbytes, n_rows, target=1 << 20):
    return int(max(1, min(n_rows, target // max(1, row_nbytes))))


def lock_path(path):
    """The lock file of the writer of ``path``: ``.<name>.lock`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


class _WriterLock:
    """Exclusive, non-blocking inter-process lock of a file being written (fcntl.flock).

    The lock file is removed on release; a process that opened it before the removal notices that
    its lock is on an unlinked file (inode check) and takes the new one, so two writers can never
    both hold the lock.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.file = lock_path(path)
        self.fd = None

    def acquire(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            return self
        while True:
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ExtractionBusyError(
                        f"another extraction is writing {self.path} (its lock {self.file} is "
                        "held); wait for it to finish, or write to another --out"
                    ) from None
                raise
            try:
                same = os.stat(self.file).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                return self
            os.close(fd)  # the holder removed it meanwhile: lock the new one

    def release(self):
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.file)  # while still holding the lock
        os.close(self.fd)
        self.fd = None


def _is_lock_error(exc):
    text = str(exc).lower()
    return "lock" in text and any(k in text for k in ("errno = 11", "errno = 35", "unavailable"))


def _stim_keys_of(handle):
    if "stim_keys" not in handle:
        return None
    return handle["stim_keys"].asstr()[:].astype(object)


class ActivationWriter:
    """Stream batches of activations into an ``.act.h5`` file, resumably.

    Parameters
    ----------
    path : str or path-like
        Final file name (by convention ending in ``.act.h5``).
    stim_ids : sequence of str
        One ID per stimulus (row).
    model, weights_id : str
        Identity of the network.
    preprocess : dict
        JSON-able description of the preprocessing.
    layers : list of str
        Layer names as given by the user, in output order.
    pooling : str or None
    channels : dict or None
        Layer -> kept channel indices.
    resume : bool
        Continue a matching ``<path>.partial`` file (default) instead of starting over.
    stim_keys : sequence of str, optional
        Identity of each row's content (a resumed file's written rows must match).
    columns : dict of str -> array-like, optional
        Per-row values stored in ``columns/`` (numbers as float64, else strings); written when
        the file is created and again on a resume (they are not part of the identity: let
        ``stim_keys`` cover what the rows depend on).

    Attributes
    ----------
    n_done : int
        Rows already written (where to resume).
    """

    def __init__(
        self,
        path,
        stim_ids,
        *,
        model="",
        weights_id="",
        preprocess=None,
        layers=(),
        pooling=None,
        channels=None,
        resume=True,
        stim_keys=None,
        columns=None,
    ):
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        self.stim_ids = np.asarray([str(s) for s in stim_ids], dtype=object)
        n = len(self.stim_ids)
        self.stim_keys = (
            None if stim_keys is None else np.asarray([str(k) for k in stim_keys], dtype=object)
        )
        if self.stim_keys is not None and len(self.stim_keys) != n:
            raise ValueError(f"{len(self.stim_keys)} stimulus keys for {n} stimulus IDs")
        self.columns = {str(k): _column_values(v, k, n) for k, v in (columns or {}).items()}
        self.identity = {
            "model": str(model),
            "weights_id": str(weights_id),
            "preprocess": _json(preprocess or {}),
            "layers": _json([str(layer) for layer in layers]),
            "pooling": str(pooling) if pooling else "none",
            "channels": _json(channels),
            "n_stimuli": int(n),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = None
        self.n_done = 0
        self._lock = _WriterLock(self.path).acquire()  # ExtractionBusyError: nothing touched
        try:
            self._open(resume)
        except BaseException:
            self.close()
            raise

    def _open(self, resume):
        import h5py

        if resume and self.tmp.exists():
            self.file = self._try_resume()
        elif self.tmp.exists():
            self.tmp.unlink()
        if self.file is not None:
            return
        # the skeleton is built in memory and written by Python: a full disk here is a clean
        # OSError, never an HDF5 failure (which HDF5 cannot recover from)
        mem = h5py.File(f"{self.tmp.name}.{os.getpid()}", "w", driver="core", backing_store=False)
        try:
            for key, value in self.identity.items():
                mem.attrs[key] = value
            mem.attrs["neuroprobe_version"] = _version()
            mem.attrs["complete"] = False
            mem.attrs["n_done"] = 0
            mem.create_dataset("stim_ids", data=self.stim_ids, dtype=h5py.string_dtype("utf-8"))
            if self.stim_keys is not None:
                mem.create_dataset(
                    "stim_keys", data=self.stim_keys, dtype=h5py.string_dtype("utf-8")
                )
            _write_columns(mem, self.columns)
            mem.create_group("layers")
            mem.flush()
            image = mem.id.get_file_image()
        finally:
            mem.close()
        try:
            with open(self.tmp, "wb") as fh:
                fh.write(image)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()
            raise self._write_error(exc) from exc
        self.file = h5py.File(self.tmp, "a")

    def _discard(self, why):
        warnings.warn(f"partial file {self.tmp} {why}; starting over", stacklevel=4)
        self.tmp.unlink()
        return None

    def _try_resume(self):
        import h5py

        try:
            handle = h5py.File(self.tmp, "a")
        except OSError as exc:
            if _is_lock_error(exc):  # another program holds it open (we hold our own lock)
                raise ExtractionBusyError(
                    f"another extraction is writing {self.path} ({self.tmp} is locked by another "
                    "process)"
                ) from None
            from neuroprobe._utils import io_cause

            return self._discard(f"is damaged (HDF5 cannot open it: {io_cause(exc)})")
        try:
            same = all(
                _attr(handle.attrs.get(k)) == _attr(v) for k, v in self.identity.items()
            ) and np.array_equal(handle["stim_ids"].asstr()[:].astype(object), self.stim_ids)
            old_keys = _stim_keys_of(handle)
            n_done = int(handle.attrs.get("n_done", 0))
            if not 0 <= n_done <= self.identity["n_stimuli"]:
                raise ValueError(f"n_done = {n_done} of {self.identity['n_stimuli']} rows")
            if same:  # every dataset must open, and its last written row must read back
                for name in handle["layers"]:
                    dset = handle["layers"][name]
                    if dset.shape[0] != self.identity["n_stimuli"]:
                        raise ValueError(f"layer {name!r} has {dset.shape[0]} rows")
                    if n_done:
                        dset[n_done - 1]
        except Exception as exc:  # noqa: BLE001 - any failure to read it back = damaged
            from neuroprobe._utils import io_cause

            with contextlib.suppress(Exception):
                handle.close()
            return self._discard(f"is damaged ({type(exc).__name__}: {io_cause(exc)})")
        if not same:
            handle.close()
            return self._discard(
                "belongs to another extraction (model, weights, layers or stimuli differ)"
            )
        if self.stim_keys is not None:
            changed = (
                np.arange(n_done)
                if old_keys is None or len(old_keys) != len(self.stim_keys)
                else np.flatnonzero(old_keys[:n_done] != self.stim_keys[:n_done])
            )
            if changed.size:
                handle.close()
                first = ", ".join(str(i) for i in self.stim_ids[changed[:3]])
                return self._discard(
                    f"was computed from other stimulus contents: {changed.size} of the {n_done} "
                    f"stimuli it holds changed since (file replaced or modified, e.g. {first})"
                )
            if old_keys is None or not np.array_equal(old_keys, self.stim_keys):
                handle["stim_keys"][...] = self.stim_keys  # rows not yet written: new contents
        if self.columns:
            _write_columns(handle, self.columns)
            handle.flush()
        self.n_done = n_done
        return handle

    def ensure_layer(
        self, layer, shape, *, module=None, native_shape=None, pooled=False, channels=None
    ):
        """Create the dataset of ``layer`` with row shape ``shape`` (no-op when it exists)."""
        name = dataset_name(layer)
        group = self.file["layers"]
        shape = tuple(int(s) for s in shape)
        if name in group:
            if group[name].shape[1:] != shape:
                raise ValueError(
                    f"layer {layer!r} has rows of shape {shape} but the partial file {self.tmp} "
                    f"holds {group[name].shape[1:]}"
                )
            return group[name]
        n = self.identity["n_stimuli"]
        row_nbytes = int(np.prod(shape, dtype=np.int64)) * 4
        dset = group.create_dataset(
            name,
            shape=(n, *shape),
            dtype="float32",
            chunks=(_chunk_rows(row_nbytes, n), *shape) if n else None,
            compression="gzip",
            compression_opts=1,
            shuffle=True,
        )
        dset.attrs["layer"] = str(layer)
        dset.attrs["module"] = str(module if module is not None else layer)
        dset.attrs["native_shape"] = _json(list(native_shape) if native_shape else list(shape))
        dset.attrs["pooled"] = bool(pooled)
        dset.attrs["channels"] = _json(None if channels is None else [int(c) for c in channels])
        return dset

    def _write_error(self, exc, detail=""):
        from neuroprobe._utils import write_error

        return write_error(self.path, exc, detail)

    def _check_space(self, nbytes):
        """Refuse a batch of ``nbytes`` (uncompressed) that may not fit: before HDF5 sees a
        failed write, so the partial file stays whole and resumable."""
        need = int(nbytes * 1.01) + (1 << 20)  # gzip may not shrink; metadata
        try:
            size = os.path.getsize(self.tmp)
            free = shutil.disk_usage(self.tmp.parent).free
        except OSError:
            return
        limit = None
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            if soft != resource.RLIM_INFINITY:
                limit = int(soft)
        except (ImportError, ValueError, OSError):  # pragma: no cover - non-POSIX
            pass
        mb = 1024**2
        if limit is not None and size + need > limit:
            raise WriteError(
                f"cannot write {self.path}: File too large (the process's file-size limit is "
                f"{limit / mb:.1f} MiB; the file holds {size / mb:.1f} MiB and the next batch "
                f"needs up to {need / mb:.1f} MiB); {self.n_done} rows are kept in {self.tmp} "
                "for a resume",
                errno=errno.EFBIG,
            )
        if need > free:
            raise WriteError(
                f"cannot write {self.path}: No space left on device ({free / mb:.1f} MiB free, "
                f"the next batch needs up to {need / mb:.1f} MiB); {self.n_done} rows are kept "
                f"in {self.tmp} for a resume",
                errno=errno.ENOSPC,
            )

    def write(self, start, arrays):
        """Write rows ``start:start+len`` of every layer, then record ``n_done`` and flush."""
        arrays = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
        self._check_space(sum(a.nbytes for a in arrays.values()))
        stop = None
        try:
            for layer, array in arrays.items():
                dset = self.file["layers"][dataset_name(layer)]
                stop = start + array.shape[0]
                dset[start:stop] = array
            if stop is not None:
                self.file.attrs["n_done"] = int(stop)
            self.file.flush()
        except (OSError, RuntimeError) as exc:
            self._abandon()
            raise self._write_error(exc) from exc
        if stop is not None:
            self.n_done = int(stop)

    def finish(self):
        """Mark the file complete and rename it onto its final name. Returns the final path."""
        if self.n_done != self.identity["n_stimuli"]:
            raise RuntimeError(
                f"{self.tmp}: only {self.n_done} of {self.identity['n_stimuli']} rows written"
            )
        try:
            self.file.attrs["complete"] = True
            self.file.close()
        except (OSError, RuntimeError) as exc:
            self._abandon()
            raise self._write_error(exc) from exc
        self.file = None
        os.replace(self.tmp, self.path)
        self._release()
        return self.path

    def close(self):
        """Close the partial file without completing it (it stays for a later resume)."""
        if self.file is not None:
            with contextlib.suppress(Exception):
                self.file.close()
            self.file = None
        self._release()

    def _abandon(self):
        """After HDF5 failed in a write: keep the file object alive and never close it (closing or
        freeing it makes HDF5 write again, fail, and at worst crash); the next run finds the
        partial file damaged and starts over."""
        _ABANDONED.append(self.file)
        self.file = None

    def _release(self):
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _column_values(values, name, n):
    """``values`` as a float64 array (all numbers) or an object array of str, of length ``n``."""
    values = np.asarray(values)
    if values.shape != (n,):
        raise ValueError(f"column {name!r} has shape {values.shape}; expected ({n},)")
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    return np.asarray([str(v) for v in values], dtype=object)


def _write_columns(handle, columns):
    import h5py

    if not columns:
        return
    group = handle.require_group("columns")
    for name, values in columns.items():
        if name in group:
            del group[name]
        if values.dtype == object:
            group.create_dataset(name, data=values, dtype=h5py.string_dtype("utf-8"))
        else:
            group.create_dataset(name, data=values)


def _attr(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_activations(
    path,
    layers,
    stim_ids,
    *,
    model="",
    weights_id="",
    preprocess=None,
    pooling=None,
    channels=None,
    modules=None,
):
    """Write in-memory activations to an ``.act.h5`` file (temporary name, then renamed).

    Parameters
    ----------
    path : str or path-like
    layers : dict of str -> array (n_stimuli, ...)
        Activations per layer, in the order to record.
    stim_ids : sequence of str
    model, weights_id, preprocess, pooling, channels
        Metadata stored as attributes (see the module docstring).
    modules : dict of str -> str, optional
        Layer -> resolved module name.

    Returns
    -------
    pathlib.Path
    """
    stim_ids = list(stim_ids)
    for layer, array in layers.items():
        if np.shape(array)[0] != len(stim_ids):
            raise ValueError(
                f"layer {layer!r} has {np.shape(array)[0]} rows but there are {len(stim_ids)} "
                "stimulus IDs"
            )
    writer = ActivationWriter(
        path,
        stim_ids,
        model=model,
        weights_id=weights_id,
        preprocess=preprocess,
        layers=list(layers),
        pooling=pooling,
        channels=channels,
        resume=False,
    )
    try:
        for layer, array in layers.items():
            writer.ensure_layer(
                layer,
                np.shape(array)[1:],
                module=(modules or {}).get(layer, layer),
                pooled=bool(pooling),
            )
        writer.write(0, layers)
        return writer.finish()
    except BaseException:
        if writer.file is not None:
            with contextlib.suppress(Exception):
                writer.file.close()
            writer.file = None
        with contextlib.suppress(FileNotFoundError):
            writer.tmp.unlink()  # still under the writer's lock
        writer.close()
        raise


class ActivationFile:
    """Read access to an ``.act.h5`` file (see :func:`open_activations`).

    Attributes
    ----------
    path : pathlib.Path
    layers : list of str
        Layer names as given at extraction.
    stim_ids : numpy.ndarray of str
    attrs : dict
        Root attributes, JSON values decoded.
    """

    def __init__(self, path, *, allow_incomplete=False):
        import h5py

        self.path = Path(path)
        if not self.path.exists():
            partial = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
            if partial.exists():
                raise FileNotFoundError(
                    f"activation file not found: {self.path}; {partial} is an unfinished "
                    "extraction: rerun the same 'neuroprobe extract' to complete it"
                )
            raise FileNotFoundError(f"activation file not found: {self.path}")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise OSError(f"cannot open activation file {self.path}: {exc}") from exc
        if "layers" not in self._file or "stim_ids" not in self._file:
            self._file.close()
            raise ValueError(
                f"{self.path} is not a neuroprobe activation file (no layers/stim_ids)"
            )
        attrs = {k: _attr(v) for k, v in self._file.attrs.items()}
        for key in ("preprocess", "layers", "channels"):
            if isinstance(attrs.get(key), str):
                with contextlib.suppress(ValueError):
                    attrs[key] = json.loads(attrs[key])
        self.attrs = attrs
        group = self._file["layers"]
        names = {group[k].attrs.get("layer", k): k for k in group}
        order = attrs.get("layers") if isinstance(attrs.get("layers"), list) else list(names)
        self.layers = [layer for layer in order if layer in names] + [
            layer for layer in names if layer not in order
        ]
        self._datasets = names
        self.stim_ids = self._file["stim_ids"].asstr()[:].astype(str)
        self.columns = list(self._file["columns"]) if "columns" in self._file else []
        self.complete = bool(attrs.get("complete", True))
        self.n_done = int(attrs.get("n_done", len(self.stim_ids)))
        if not self.complete and not allow_incomplete:
            self._file.close()
            raise IncompleteActivationsError(
                f"{self.path} is incomplete: {self.n_done} of {len(self.stim_ids)} rows were "
                "written (an interrupted extraction; the other rows are not activations). "
                "Rerun the same 'neuroprobe extract' to complete it"
            )

    def _dataset(self, layer):
        if layer not in self._datasets:
            close = difflib.get_close_matches(str(layer), self.layers, n=1, cutoff=0.0)
            raise LayerError(
                f"layer {layer!r} is not in {self.path}; closest match: "
                f"{close[0] if close else None!r}. Layers in the file: {', '.join(self.layers)}"
            )
        return self._file["layers"][self._datasets[layer]]

    def column(self, name):
        """The per-row values of column ``name`` (float64, or str); KeyError lists them."""
        if name not in self.columns:
            raise KeyError(f"{self.path} has no column {name!r}; its columns: "
                           f"{', '.join(self.columns) or 'none'}")
        dset = self._file["columns"][name]
        if _is_string_dataset(dset):
            return dset.asstr()[:].astype(str)
        return dset[...].astype(np.float64)

    def shape(self, layer):
        """Shape ``(n_stimuli, ...)`` of a layer's dataset."""
        return self._dataset(layer).shape

    def layer_attrs(self, layer):
        """Attributes of a layer's dataset (JSON values decoded)."""
        out = {k: _attr(v) for k, v in self._dataset(layer).attrs.items()}
        for key in ("native_shape", "channels"):
            if isinstance(out.get(key), str):
                out[key] = json.loads(out[key])
        return out

    def read(self, layer, indices=None):
        """Activations of ``layer`` (float32), all rows or the rows ``indices`` in the given
        order."""
        dset = self._dataset(layer)
        try:
            return self._read(dset, indices)
        except (OSError, RuntimeError) as exc:  # a corrupt chunk: name the file and the layer
            from neuroprobe._utils import io_cause

            raise OSError(
                f"cannot read layer {layer!r} of {self.path} (damaged file? {io_cause(exc)}); "
                "extract it again"
            ) from exc

    def _read(self, dset, indices):
        if indices is None:
            return dset[...].astype(np.float32, copy=False)
        indices = np.asarray(indices)
        if indices.dtype == bool:
            indices = np.flatnonzero(indices)
        indices = indices.astype(np.int64).ravel()
        n = dset.shape[0]
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"row indices out of range for {n} stimuli in {self.path}")
        indices = np.where(indices < 0, indices + n, indices)
        unique, inverse = np.unique(indices, return_inverse=True)
        if unique.size > n // 2:  # reading everything is faster than many chunk lookups
            block = dset[...]
            return np.ascontiguousarray(block[indices], dtype=np.float32)
        block = dset[unique] if unique.size else np.empty((0, *dset.shape[1:]), np.float32)
        return np.ascontiguousarray(block[inverse], dtype=np.float32)

    def close(self):
        """Close the file."""
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"ActivationFile({str(self.path)!r}, layers={self.layers}, n={len(self.stim_ids)})"


def _is_string_dataset(dset):
    """Whether an HDF5 dataset holds strings."""
    import h5py

    return h5py.check_string_dtype(dset.dtype) is not None or dset.dtype.kind in "SO"


def open_activations(path, *, allow_incomplete=False):
    """Open an ``.act.h5`` file for reading; use as a context manager or call ``.close()``.

    An incomplete file (an interrupted extraction) raises :class:`IncompleteActivationsError`
    naming how many rows were written, unless ``allow_incomplete`` (its unwritten rows are zeros).
    """
    return ActivationFile(path, allow_incomplete=allow_incomplete)


def describe(path):
    """Human-readable summary of an ``.act.h5`` file (used by ``neuroprobe info``)."""
    with open_activations(path, allow_incomplete=True) as f:
        a = f.attrs
        n = len(f.stim_ids)
        state = (
            "complete"
            if f.complete
            else f"INCOMPLETE: {f.n_done} of {n} rows written; rerun the same 'neuroprobe "
            "extract' to complete it (readers refuse it until then)"
        )
        lines = [
            f"{f.path}: neuroprobe activations ({state})",
            f"  model: {a.get('model')}   weights: {a.get('weights_id')}",
            f"  preprocess: {json.dumps(a.get('preprocess'))}",
            f"  pooling: {a.get('pooling')}   neuroprobe: {a.get('neuroprobe_version')}",
            f"  stimuli: {n} (first: {', '.join(f.stim_ids[:3])})"
            + ("   contents recorded (resume checks them)" if "stim_keys" in f._file else ""),
        ]
        if f.columns:
            lines.append(f"  columns (one value per row): {', '.join(f.columns)}")
        lines.append("  layers:")
        for layer in f.layers:
            la = f.layer_attrs(layer)
            shape = f.shape(layer)
            lines.append(
                f"    {layer:<20} {str(shape):<22} module={la.get('module')} "
                f"native={tuple(la.get('native_shape') or ())}"
            )
        return "\n".join(lines)


def read_layers_2d(path, layers=None, *, with_ids=False):
    """Every layer (or ``layers``) of an ``.act.h5`` file as ``(n_stimuli, n_features)`` arrays.

    Parameters
    ----------
    path : str or path-like
    layers : list of str, optional
        Subset / order of layers (default: all, in the file's order).
    with_ids : bool, default=False
        Also return the file's stimulus IDs.

    Returns
    -------
    dict of str -> ndarray, and (``with_ids``) the list of stimulus IDs
    """
    with open_activations(path) as reader:
        names = layers or reader.layers
        feats = {layer: reader.read(layer).reshape(len(reader.stim_ids), -1) for layer in names}
        return (feats, list(reader.stim_ids)) if with_ids else feats
