"""Activation files (``*.act.h5``): write in streamed batches, resume after a crash, read by layer.

Format
------
* group ``layers/``: one dataset per layer, named by the layer string as the user gave it (``"/"``
  replaced by ``"|"``), shape ``(n_stimuli, ...)`` float32, chunked by rows, gzip-compressed with
  the shuffle filter. Dataset attributes: ``layer`` (the name as given), ``module`` (resolved module
  name), ``native_shape`` (output shape of the layer without the batch dimension), ``pooled``
  (bool), ``channels`` (JSON list of kept channel indices, or ``null`` for all).
* dataset ``stim_ids``: utf-8 strings.
* root attributes: ``model``, ``weights_id``, ``preprocess`` (JSON), ``layers`` (JSON list),
  ``pooling`` (``"none"`` when unpooled), ``channels`` (JSON), ``neuroprobe_version``,
  ``n_stimuli``, ``complete`` (bool), ``n_done`` (rows written so far).

Crash safety
------------
:class:`ActivationWriter` writes to ``<path>.partial`` and renames it onto ``<path>`` when every row
is written. After each batch the rows are written, then ``n_done`` is updated and the file flushed.
A rerun with the same identity (model, weights, preprocessing, layers, pooling, channels, stimulus
IDs) opens the partial file and continues at ``n_done``; a partial file with another identity, or
one HDF5 cannot open (killed in the middle of a metadata write), is discarded and the extraction
starts over.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import warnings
from pathlib import Path

import numpy as np

__all__ = [
    "ActivationWriter",
    "ActivationFile",
    "write_activations",
    "open_activations",
    "describe",
    "dataset_name",
    "PARTIAL_SUFFIX",
]

PARTIAL_SUFFIX = ".partial"
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
    ):
        import h5py

        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        self.stim_ids = np.asarray([str(s) for s in stim_ids], dtype=object)
        n = len(self.stim_ids)
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
        if resume and self.tmp.exists():
            self.file = self._try_resume()
        elif self.tmp.exists():
            self.tmp.unlink()
        if self.file is None:
            self.file = h5py.File(self.tmp, "w")
            for key, value in self.identity.items():
                self.file.attrs[key] = value
            self.file.attrs["neuroprobe_version"] = _version()
            self.file.attrs["complete"] = False
            self.file.attrs["n_done"] = 0
            self.file.create_dataset(
                "stim_ids", data=self.stim_ids, dtype=h5py.string_dtype("utf-8")
            )
            self.file.create_group("layers")
            self.file.flush()

    def _try_resume(self):
        import h5py

        try:
            handle = h5py.File(self.tmp, "a")
        except OSError as exc:
            warnings.warn(
                f"cannot reopen the partial file {self.tmp} ({exc}); starting over", stacklevel=3
            )
            self.tmp.unlink()
            return None
        same = all(
            _attr(handle.attrs.get(k)) == _attr(v) for k, v in self.identity.items()
        ) and np.array_equal(handle["stim_ids"].asstr()[:].astype(object), self.stim_ids)
        if not same:
            handle.close()
            warnings.warn(
                f"partial file {self.tmp} belongs to another extraction (model, weights, layers or "
                "stimuli differ); starting over",
                stacklevel=3,
            )
            self.tmp.unlink()
            return None
        self.n_done = int(handle.attrs.get("n_done", 0))
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

    def write(self, start, arrays):
        """Write rows ``start:start+len`` of every layer, then record ``n_done`` and flush."""
        stop = None
        for layer, array in arrays.items():
            array = np.asarray(array, dtype=np.float32)
            dset = self.file["layers"][dataset_name(layer)]
            stop = start + array.shape[0]
            dset[start:stop] = array
        if stop is not None:
            self.file.attrs["n_done"] = int(stop)
            self.n_done = int(stop)
        self.file.flush()

    def finish(self):
        """Mark the file complete and rename it onto its final name. Returns the final path."""
        if self.n_done != self.identity["n_stimuli"]:
            raise RuntimeError(
                f"{self.tmp}: only {self.n_done} of {self.identity['n_stimuli']} rows written"
            )
        self.file.attrs["complete"] = True
        self.file.close()
        self.file = None
        os.replace(self.tmp, self.path)
        return self.path

    def close(self):
        """Close the partial file without completing it (it stays for a later resume)."""
        if self.file is not None:
            with contextlib.suppress(Exception):
                self.file.close()
            self.file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
        writer.close()
        with contextlib.suppress(FileNotFoundError):
            writer.tmp.unlink()
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

    def __init__(self, path):
        import h5py

        self.path = Path(path)
        if not self.path.exists():
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
        if not attrs.get("complete", True):
            warnings.warn(f"{self.path} is incomplete ({attrs.get('n_done')} rows)", stacklevel=2)

    def _dataset(self, layer):
        if layer not in self._datasets:
            from neuroprobe.models.registry import LayerError

            close = difflib.get_close_matches(str(layer), self.layers, n=1, cutoff=0.0)
            raise LayerError(
                f"layer {layer!r} is not in {self.path}; closest match: "
                f"{close[0] if close else None!r}. Layers in the file: {', '.join(self.layers)}"
            )
        return self._file["layers"][self._datasets[layer]]

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


def open_activations(path):
    """Open an ``.act.h5`` file for reading; use as a context manager or call ``.close()``."""
    return ActivationFile(path)


def describe(path):
    """Human-readable summary of an ``.act.h5`` file (used by ``neuroprobe info``)."""
    with open_activations(path) as f:
        a = f.attrs
        lines = [
            f"{f.path}: neuroprobe activations "
            f"({'complete' if a.get('complete') else 'INCOMPLETE'})",
            f"  model: {a.get('model')}   weights: {a.get('weights_id')}",
            f"  preprocess: {json.dumps(a.get('preprocess'))}",
            f"  pooling: {a.get('pooling')}   neuroprobe: {a.get('neuroprobe_version')}",
            f"  stimuli: {len(f.stim_ids)} (first: {', '.join(f.stim_ids[:3])})",
            "  layers:",
        ]
        for layer in f.layers:
            la = f.layer_attrs(layer)
            shape = f.shape(layer)
            lines.append(
                f"    {layer:<20} {str(shape):<22} module={la.get('module')} "
                f"native={tuple(la.get('native_shape') or ())}"
            )
        return "\n".join(lines)
