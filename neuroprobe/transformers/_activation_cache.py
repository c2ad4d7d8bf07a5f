"""Caches of the feature extractor: activations on disk, activations in memory, built models.

* :class:`DiskActivationCache` (``DNNFeatureExtractor(memory=path)``): one ``.npy`` per layer and
  stimulus under file locks, shared by processes.
* :class:`MemoryActivationCache` (:data:`ACTIVATIONS`, ``DNNFeatureExtractor(cache=True)``, the
  default): rows in this process, shared by clones (a grid search over layers runs the network once
  per stimulus and layer), keyed by :func:`memory_identity`, bounded by the memory budget.
* :func:`build_cached` (``_BUILT``): a small LRU of deep-copied networks, so repeated fits of clones
  do not re-initialise them.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import threading
import uuid
import weakref
from collections import OrderedDict
from pathlib import Path

import numpy as np

from neuroprobe._utils import memory_budget
from neuroprobe.transformers._sources import _sha1

__all__ = [
    "ACTIVATIONS",
    "DiskActivationCache",
    "MemoryActivationCache",
    "build_cached",
    "memory_identity",
    "weights_fingerprint",
    "weights_stamp",
]


# --------------------------------------------------------------------------------------------
# On-disk activation cache
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(path):
    """Exclusive inter-process lock on ``path`` (fcntl; no-op where unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class DiskActivationCache:
    """Per-(model, weights, preprocessing, pooling) store on disk: ``<layer>/<stimulus key>.npy``.

    Shared by processes: :meth:`lock` takes one file lock per layer, in one global order.
    """

    def __init__(self, location, identity):
        key = _sha1(identity)[:16]
        self.root = Path(location) / "neuroprobe_activations" / key
        self.root.mkdir(parents=True, exist_ok=True)
        ident = self.root / "identity.json"
        if not ident.exists():
            tmp = self.root / f".identity.{uuid.uuid4().hex}"
            tmp.write_text(identity)
            os.replace(tmp, ident)

    def layer_dir(self, module_name):
        path = self.root / module_name.replace("/", "|")
        path.mkdir(exist_ok=True)
        return path

    def lock(self, module_names):
        stack = contextlib.ExitStack()
        for name in sorted(set(module_names)):  # one global order: no deadlock
            stack.enter_context(_locked(self.layer_dir(name) / ".lock"))
        return stack

    def lookup(self, module_name, keys):
        """``({position: row}, native shape or None)`` of the stored stimuli among ``keys``."""
        folder = self.layer_dir(module_name)
        hits = {}
        for i, k in enumerate(keys):
            file = folder / f"{k}.npy"
            if file.exists():
                hits[i] = np.load(file).astype(np.float32, copy=False)
        shape_file = folder / "shape.json"
        shape = tuple(json.loads(shape_file.read_text())) if hits else None
        return hits, shape

    def save(self, module_name, keys, array, native_shape):
        folder = self.layer_dir(module_name)
        shape_file = folder / "shape.json"
        if not shape_file.exists():
            tmp = folder / f".shape.{uuid.uuid4().hex}"
            tmp.write_text(json.dumps(list(native_shape)))
            os.replace(tmp, shape_file)
        for key, row in zip(keys, array):
            tmp = folder / f".{key}.{uuid.uuid4().hex}.npy"
            np.save(tmp, np.ascontiguousarray(row, dtype=np.float32))
            os.replace(tmp, folder / f"{key}.npy")


# Backward-compatible name.
_ActivationCache = DiskActivationCache


def _memory_location(memory):
    if memory is None:
        return None
    if isinstance(memory, (str, os.PathLike)):
        return os.fspath(memory)
    location = getattr(memory, "location", None)  # joblib.Memory
    if location is None and hasattr(memory, "location"):
        return None
    if location is None:
        raise TypeError(
            f"memory must be None, a directory path or a joblib.Memory, got {type(memory).__name__}"
        )
    return os.fspath(location)


# --------------------------------------------------------------------------------------------
# In-process activation cache (default): shared by every clone in the process, LRU over bytes
# --------------------------------------------------------------------------------------------
class MemoryActivationCache:
    """Activation rows of this process, keyed ``(identity, module, stimulus key)``.

    Bounded by ``max_bytes`` (default: :func:`neuroprobe._utils.memory_budget`, read at every
    insertion): the least recently used rows are evicted first; a block larger than the bound is
    not stored. Thread-safe (one re-entrant lock). Stored rows are read-only float32 arrays;
    readers get copies (the extractor stacks them into a new array).
    """

    def __init__(self, max_bytes=None):
        self.max_bytes = max_bytes
        self._rows = OrderedDict()
        self._shapes = {}
        self._lock = threading.RLock()
        self.nbytes = 0

    def budget(self):
        return memory_budget() if self.max_bytes is None else int(self.max_bytes)

    def __len__(self):
        return len(self._rows)

    def clear(self):
        with self._lock:
            self._rows.clear()
            self._shapes.clear()
            self.nbytes = 0

    def view(self, identity):
        """The part of the cache for one model identity (see :func:`memory_identity`)."""
        return _MemoryView(self, identity)

    def _lookup(self, identity, module_name, keys):
        with self._lock:
            hits = {}
            for i, k in enumerate(keys):
                row = self._rows.get((identity, module_name, k))
                if row is not None:
                    self._rows.move_to_end((identity, module_name, k))
                    hits[i] = row
            return hits, (self._shapes.get((identity, module_name)) if hits else None)

    def _save(self, identity, module_name, keys, array, native_shape):
        array = np.array(array, dtype=np.float32)  # our own copy, whatever the caller does next
        array.flags.writeable = False
        budget = self.budget()
        if array.nbytes > budget:
            return
        with self._lock:
            self._shapes[(identity, module_name)] = tuple(native_shape)
            for key, row in zip(keys, array):
                old = self._rows.pop((identity, module_name, key), None)
                self.nbytes -= 0 if old is None else old.nbytes
                self._rows[(identity, module_name, key)] = row
                self.nbytes += row.nbytes
            while self.nbytes > budget and self._rows:
                _, row = self._rows.popitem(last=False)
                self.nbytes -= row.nbytes


class _MemoryView:
    """:class:`MemoryActivationCache` restricted to one identity, with the disk cache's methods."""

    def __init__(self, cache, identity):
        self.cache = cache
        self.identity = identity

    def lock(self, module_names):
        return self.cache._lock  # threads of one process compute a missing pair once

    def lookup(self, module_name, keys):
        return self.cache._lookup(self.identity, module_name, keys)

    def save(self, module_name, keys, array, native_shape):
        self.cache._save(self.identity, module_name, keys, array, native_shape)


#: module -> (weights_stamp, fingerprint): weights hashed once per network, not once per fit.
_FINGERPRINTS = weakref.WeakKeyDictionary()

#: The process-wide in-process activation cache of :class:`DNNFeatureExtractor` (``cache=True``).
ACTIVATIONS = MemoryActivationCache()


def weights_fingerprint(module):
    """SHA-1 of every parameter and buffer of ``module`` (names, dtypes, shapes, bytes).

    Changes whenever a weight changes: another seed, another weights file, in-place fine-tuning.
    Memoized per module while :func:`weights_stamp` is unchanged (a copy handed out by
    :func:`build_cached` inherits the fingerprint of the stored network), so a grid search hashes
    a network's weights once, not once per fit.
    """
    import torch

    stamp = weights_stamp(module)
    memo = _FINGERPRINTS.get(module)
    if memo is not None and memo[0] == stamp:
        return memo[1]
    digest = hashlib.sha1()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes())
    _FINGERPRINTS[module] = (stamp, digest.hexdigest())
    return digest.hexdigest()


def weights_stamp(module):
    """Cheap change detector of the weights: each tensor's address and in-place version."""
    return tuple(
        (name, t.data_ptr(), t._version) for name, t in module.state_dict(keep_vars=True).items()
    )


def memory_identity(spec, pooling, device):
    """Key of one extractor configuration in :data:`ACTIVATIONS`: the spec's identity (model
    name, weights id, preprocessing, modality), the hash of its weights, the pooling and the
    device type (a GPU's results may differ from the CPU's in the last bits)."""
    from neuroprobe.models.registry import spec_identity

    return _sha1(spec_identity(spec), weights_fingerprint(spec.module), pooling,
                 getattr(device, "type", str(device)))


# --------------------------------------------------------------------------------------------
# Model building cache (per process): repeated fits of clones do not re-initialise the network
# --------------------------------------------------------------------------------------------
_BUILT = OrderedDict()
_BUILT_MAX = 2
_SEEN = set()


def build_cached(model, weights, random_state):
    """:func:`~neuroprobe.models.build_model`, through the per-process LRU ``_BUILT``."""
    from neuroprobe.models.registry import DEFAULT_WEIGHTS_SEED, build_model

    key = None
    if random_state is None:  # build_model's fixed default seed: same network, same key
        random_state = DEFAULT_WEIGHTS_SEED
    if isinstance(model, str) and isinstance(random_state, (int, np.integer)):
        wkey = weights
        if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
            st = os.stat(weights)
            wkey = (os.path.abspath(weights), st.st_size, st.st_mtime_ns)
        elif weights is not None and not isinstance(weights, str):
            wkey = str(weights)
        key = (model.lower(), wkey, int(random_state))
        if key in _BUILT:
            _BUILT.move_to_end(key)
            stored = _BUILT[key]
            out = copy.deepcopy(stored)  # same weights as stored: same fingerprint
            _FINGERPRINTS[out.module] = (weights_stamp(out.module),
                                         weights_fingerprint(stored.module))
            return out
    spec = build_model(model, weights=weights, random_state=random_state)
    if key is not None:
        # keep a copy only from the second build on (repeated fits of clones, grid searches), so
        # a one-off extraction does not hold the weights twice
        if key in _SEEN:
            _BUILT[key] = copy.deepcopy(spec)
            while len(_BUILT) > _BUILT_MAX:
                _BUILT.popitem(last=False)
        _SEEN.add(key)
    return spec



_build = build_cached
