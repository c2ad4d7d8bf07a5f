"""Activations of deep networks as scikit-learn transformers.

:class:`DNNFeatureExtractor` runs a network on stimuli and returns the outputs of chosen layers;
:class:`ActivationReader` reads one layer from an ``.act.h5`` file written by
:meth:`DNNFeatureExtractor.extract_to_file`, so a grid search over layers can read a file instead of
running the network.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import uuid
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neuroprobe._utils import resolve_device

__all__ = ["DNNFeatureExtractor", "ActivationReader", "feature_names"]

#: Threads decoding and preprocessing the next batches while the network runs (0 = serial).
DECODE_WORKERS = 2
#: Batches prepared ahead of the one being computed.
PREFETCH_BATCHES = 2

_POOLINGS = ("max", "mean", "median", "l1", "l2")


# --------------------------------------------------------------------------------------------
# Stimuli
# --------------------------------------------------------------------------------------------
def _sha1(*parts):
    digest = hashlib.sha1()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


class _Source:
    """Uniform view of the accepted inputs: ``len``, ``ids``, ``keys()``, ``load(i)``,
    ``subset``."""

    def __init__(self, X):
        import torch

        self.X = X
        if hasattr(X, "load") and hasattr(X, "ids"):  # StimulusSet
            self.kind = "stimset"
        elif isinstance(X, torch.Tensor):
            self.kind = "tensor"
            if not X.is_floating_point():
                raise ValueError(
                    f"a tensor X must be float (already preprocessed), got dtype {X.dtype}"
                )
        elif isinstance(X, np.ndarray) and X.dtype.kind in "fc" and X.ndim >= 2:
            self.kind = "tensor"
        elif isinstance(X, np.ndarray) and X.dtype == np.uint8:
            if not (X.ndim == 3 or (X.ndim == 4 and X.shape[-1] in (1, 3, 4))):
                raise ValueError(
                    "a uint8 X must hold images of shape (n, H, W, 3), (n, H, W, 4) or (n, H, W); "
                    f"got {X.shape}"
                )
            self.kind = "uint8"
        elif isinstance(X, (list, tuple, np.ndarray)) and all(
            isinstance(p, (str, os.PathLike))
            for p in (X.ravel() if isinstance(X, np.ndarray) else X)
        ):
            paths = [os.fspath(p) for p in (np.ravel(X) if isinstance(X, np.ndarray) else X)]
            try:
                from neuroprobe.stimuli import StimulusSet
            except ImportError:  # pragma: no cover - stimuli module missing
                self.kind = "paths"
                self.X = [os.path.abspath(p) for p in paths]
            else:
                self.kind = "stimset"
                self.X = StimulusSet.from_paths(paths) if paths else paths
        else:
            raise TypeError(
                "X must be a StimulusSet, a list of file paths, a uint8 image array (n, H, W, 3) "
                "or a float tensor/array (n, C, ...) that is already preprocessed; got "
                f"{type(X).__name__}" + (f" of dtype {X.dtype}" if hasattr(X, "dtype") else "")
            )
        if len(self) == 0:
            raise ValueError("empty stimulus set: X holds 0 stimuli")

    def __len__(self):
        return len(self.X)

    @property
    def ids(self):
        if self.kind == "stimset":
            return np.asarray(self.X.ids).astype(str)
        if self.kind == "paths":
            return np.asarray([os.path.splitext(os.path.basename(p))[0] for p in self.X])
        return np.arange(len(self)).astype(str)

    def subset(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        new = object.__new__(_Source)
        new.kind = self.kind
        if self.kind == "paths":
            new.X = [self.X[i] for i in indices]
        else:
            new.X = self.X[indices]
        return new

    def _array(self):
        if self.kind == "stimset":
            return getattr(self.X, "data", None)
        if self.kind in ("tensor", "uint8"):
            return self.X
        return None

    def keys(self):
        """Identity of each stimulus: file path + size + mtime, or a hash of the array row."""
        array = self._array()
        if array is not None:
            out = []
            for i in range(len(self)):
                row = array[i]
                row = row.detach().cpu().numpy() if hasattr(row, "detach") else np.asarray(row)
                row = np.ascontiguousarray(row)
                out.append(_sha1("array", row.dtype.str, row.shape, row.tobytes()))
            return out
        paths = self.X.paths if self.kind == "stimset" else self.X
        out = []
        for path in paths:
            try:
                st = os.stat(path)
            except OSError as exc:
                raise FileNotFoundError(f"stimulus file not found or unreadable: {path}") from exc
            out.append(_sha1("file", os.path.abspath(path), st.st_size, st.st_mtime_ns))
        return out

    def load(self, i):
        """Decoded stimulus ``i`` (PIL image, audio/video tuple, or float tensor row)."""
        import torch

        if self.kind == "stimset":
            return self.X.load(int(i))
        if self.kind == "tensor":  # a copy, as batch_tensor's
            row = self.X[i]
            if isinstance(row, torch.Tensor):
                return row.to(torch.float32, copy=True)
            return torch.from_numpy(np.array(row, dtype=np.float32))
        if self.kind == "uint8":
            from PIL import Image

            row = self.X[i]
            if row.ndim == 3 and row.shape[-1] == 1:
                row = row[..., 0]
            return Image.fromarray(row).convert("RGB")
        from PIL import Image

        path = self.X[i]
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read stimulus file {path}: {exc}") from exc

    def batch_tensor(self, indices):
        """Fast path for preprocessed float inputs: the rows as one float32 tensor."""
        import torch

        indices = np.asarray(indices, dtype=np.int64)
        if (
            len(indices)
            and indices[-1] - indices[0] + 1 == len(indices)
            and (np.all(np.diff(indices) == 1))
        ):  # a contiguous run: one copy of the batch (never a view of the caller's stimuli,
            # which a module could change in place, nor of a read-only memmap torch may not share)
            rows = self.X[int(indices[0]) : int(indices[-1]) + 1]
            if isinstance(rows, np.ndarray):
                return torch.from_numpy(np.array(rows, dtype=np.float32))
            return rows.to(torch.float32, copy=True)
        if isinstance(self.X, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(self.X[indices])).float()
        return self.X[torch.from_numpy(indices)].float()


def _prepare(spec, source, i):
    import torch

    raw = source.load(i)
    if isinstance(raw, torch.Tensor) and raw.is_floating_point():
        return raw.float()
    try:
        return spec.preprocess(raw)
    except ValueError as exc:  # [audio/video] e.g. a video shorter than one clip: name the file
        paths = getattr(source.X, "paths", None) if source.kind == "stimset" else None
        where = paths[i] if paths else f"stimulus {source.ids[i]}"
        if where in str(exc):
            raise
        raise ValueError(f"{where}: {exc}") from exc


def _shape_runs(items):
    """``(start, stop)`` of the runs of consecutive items with the same shape (tensors)
    [audio/video]."""
    shapes = [tuple(getattr(x, "shape", ())) for x in items]
    runs, start = [], 0
    for k in range(1, len(items) + 1):
        if k == len(items) or shapes[k] != shapes[start]:
            runs.append((start, k))
            start = k
    return runs


def _iter_batches(spec, source, indices, batch_size, workers=None):
    """Yield ``(chunk_indices, batch_tensor)``, decoding the next batches in background threads."""
    workers = DECODE_WORKERS if workers is None else workers
    indices = np.asarray(indices, dtype=np.int64)
    chunks = [indices[s : s + batch_size] for s in range(0, len(indices), batch_size)]
    if source.kind == "tensor":
        for chunk in chunks:
            yield chunk, source.batch_tensor(chunk)
        return

    def make(chunk):
        # [audio/video] stimuli of different lengths (audio durations -> numbers of VGGish
        # examples or waveform samples; videos) cannot be stacked into one tensor: collate each
        # run of consecutive equal-shape stimuli as its own sub-batch. Each stimulus still runs
        # once and alone in its row, so the features do not depend on the batch (batch
        # invariance).
        items = [_prepare(spec, source, i) for i in chunk]
        return [(chunk[a:b], spec.collate(items[a:b])) for a, b in _shape_runs(items)]

    if workers <= 0:
        for chunk in chunks:
            yield from make(chunk)
        return
    executor = ThreadPoolExecutor(max_workers=workers)
    pending = deque()
    todo = iter(chunks)
    try:
        for chunk in todo:
            pending.append((chunk, executor.submit(make, chunk)))
            if len(pending) > PREFETCH_BATCHES:
                break
        while pending:
            chunk, future = pending.popleft()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, executor.submit(make, nxt)))
            yield from future.result()
    finally:
        for _, future in pending:
            future.cancel()
        executor.shutdown(wait=True)


# --------------------------------------------------------------------------------------------
# Pooling and feature names
# --------------------------------------------------------------------------------------------
def _pool(tensor, how):
    """Pool a batch ``(N, C, ...)`` over every axis after the channel axis (2-D: copied)."""
    import torch

    if how is None or tensor.ndim <= 2:
        return tensor.clone()
    flat = tensor.flatten(2)
    if how == "max":
        return flat.amax(-1)
    if how == "mean":
        return flat.mean(-1)
    if how == "median":  # numpy's median: mean of the two middle values for an even count
        ordered = flat.sort(-1).values
        k = ordered.shape[-1]
        if k % 2:
            return ordered[..., k // 2].clone()
        return 0.5 * (ordered[..., k // 2 - 1] + ordered[..., k // 2])
    if how == "l1":
        return flat.abs().sum(-1)
    if how == "l2":
        return torch.linalg.vector_norm(flat, ord=2, dim=-1)
    raise ValueError(f"pooling must be None or one of {_POOLINGS}, got {how!r}")


def feature_names(layer, native_shape, pooled, channels=None):
    """Column names of one layer (see :meth:`DNNFeatureExtractor.get_feature_names_out`).

    Parameters
    ----------
    layer : str
        Layer name as given by the user.
    native_shape : tuple
        Output shape of the layer without the batch dimension.
    pooled : bool
        Whether the spatial/temporal axes were pooled.
    channels : sequence of int, optional
        Kept channel (or unit) indices; all when ``None``.
    """
    native_shape = tuple(int(s) for s in native_shape)
    chans = range(native_shape[0]) if channels is None else [int(c) for c in channels]
    if len(native_shape) == 1:
        return [f"{layer}:u{c}" for c in chans]
    if pooled:
        return [f"{layer}:c{c}" for c in chans]
    rest = native_shape[1:]
    if len(rest) == 1:
        axes = ("t",)
    elif len(rest) == 2:
        axes = ("y", "x")
    elif len(rest) == 3:
        axes = ("t", "y", "x")
    else:
        axes = tuple(f"i{k}_" for k in range(len(rest)))
    positions = [":".join(f"{a}{i}" for a, i in zip(axes, idx)) for idx in np.ndindex(*rest)]
    return [f"{layer}:c{c}:{pos}" for c in chans for pos in positions]


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


class _ActivationCache:
    """Per-(model, weights, preprocessing, pooling) store: ``<layer>/<stimulus key>.npy``."""

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

    def missing(self, module_name, keys):
        folder = self.layer_dir(module_name)
        return [i for i, k in enumerate(keys) if not (folder / f"{k}.npy").exists()]

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

    def load(self, module_name, keys):
        folder = self.layer_dir(module_name)
        rows = [np.load(folder / f"{k}.npy") for k in keys]
        shape = tuple(json.loads((folder / "shape.json").read_text()))
        return np.stack(rows).astype(np.float32, copy=False), shape


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
# Model building cache (per process): repeated fits of clones do not re-initialise the network
# --------------------------------------------------------------------------------------------
_BUILT = OrderedDict()
_BUILT_MAX = 2
_SEEN = set()


def _build(model, weights, random_state):
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
            return copy.deepcopy(_BUILT[key])
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


# --------------------------------------------------------------------------------------------
# The transformer
# --------------------------------------------------------------------------------------------
class DNNFeatureExtractor(TransformerMixin, BaseEstimator):
    """Outputs of chosen layers of a deep network, as a scikit-learn transformer.

    Parameters
    ----------
    model : str, torch.nn.Module, callable or ModelSpec
        A torchvision classification model name (``"alexnet"``), a registered model (``"vggish"``),
        a module or a factory; see :func:`neuroprobe.models.build_model`.
    weights : str, path or None, default="DEFAULT"
        ``"DEFAULT"`` (as on the CLI) or an enum name: pretrained weights from torchvision's cache
        (offline without the file: :class:`~neuroprobe.models.WeightsUnavailableError` naming the
        file and where to put it; never a silent random network); a path: a local state_dict /
        checkpoint; ``None`` (or ``"random"``): random initialisation seeded by ``random_state``,
        warned once per model name.
    layers : str or list of str
        Module names (``"features.10"``) or DNNBrain aliases (``"conv5"``); columns are concatenated
        in this order. Default: the last module of the network.
    pooling : {None, "max", "mean", "median", "l1", "l2"}
        Pool every axis after the channel axis (space, time) per channel; ``"l1"``/``"l2"`` are the
        norms (sum of absolute values, root of the sum of squares). Layers with 1-D outputs are not
        pooled.
    channels : dict of str -> list of int, optional
        Per-layer selection of channels (or units of 1-D layers), DNNBrain's dmask; keys are layer
        names as in ``layers``.
    batch_size : int
    device : {"cpu", "cuda", "auto"} or torch.device
    memory : None, str or joblib.Memory
        Directory of an on-disk activation cache shared by clones and worker processes (see Notes).
    random_state : int, RandomState or None
        Seed of the random initialisation when ``weights=None`` (``None``: seed 0, so every clone,
        e.g. inside ``GridSearchCV``, builds the same network).
    verbose : int
        Show a progress bar when > 0.

    Attributes
    ----------
    model_ : ModelSpec
        The network (on ``device_``) with its preprocessing.
    layers_ : list of str
        Resolved module names, one per entry of ``layers``.
    layer_shapes_ : dict of str -> tuple
        Layer (as given) -> output shape of the layer without the batch dimension (before pooling).
    feature_slices_ : dict of str -> slice
        Layer (as given) -> its columns in the output of :meth:`transform`.
    n_features_out_ : int
    device_ : torch.device

    Notes
    -----
    **Inputs.** ``X`` is a :class:`~neuroprobe.stimuli.StimulusSet`, a list of file paths, a uint8
    image array ``(n, H, W, 3)`` (each image goes through the model's preprocessing), or a float
    tensor/array ``(n, C, ...)`` taken as already preprocessed and fed as is.

    **One pass.** Every batch runs the network once under ``torch.no_grad()`` in ``eval()`` mode
    with forward hooks on the requested layers (:func:`neuroprobe.models.hooks.capture`). The first
    batch of a call runs the whole network to check that each requested module runs exactly once (a
    module called several times, e.g. a ReLU reused inside a ResNet block, raises
    :class:`~neuroprobe.models.hooks.RepeatedCallError` because its output is ambiguous; capture the
    block instead); the next batches stop right after the last requested layer. Captured outputs are
    copied (or pooled inside the hook), so in-place ReLUs cannot alter them. For modules returning a
    tuple (or list/dict) the first tensor is captured. Batches are decoded and preprocessed by
    ``DECODE_WORKERS`` background threads while the network runs. Output is float32.

    **Grid search over layers without re-running the network.** Set ``memory`` to a directory:
    activations are stored there per (model, weights, preprocessing, pooling), per layer and per
    stimulus (stimulus identity = file path + size + mtime, or a hash of the array row). Every clone
    and every joblib worker process first reads the cache and runs the network only for the
    (stimulus, layer) pairs that are missing, under a per-layer file lock, so in ::

        search = GridSearchCV(
            Pipeline([("dnn", DNNFeatureExtractor("alexnet", layers=["conv1"], memory="cache/",
                                                  random_state=0)),
                      ("pca", PCA(20)), ("clf", LogisticRegression())]),
            {"dnn__layers": [["conv1"], ["conv2"], ["conv3"], ["conv4"], ["conv5"]]}, cv=5,
            n_jobs=2)

    each layer is computed once per stimulus over the whole search (one network pass per stimulus
    and candidate layer). Calling ``DNNFeatureExtractor(..., memory="cache/").prefetch(X,
    layers=[...all candidates...])`` first fills the cache for every candidate in a single pass per
    stimulus. The alternative for large studies is :meth:`extract_to_file` once, then
    :class:`ActivationReader` in the pipeline with ``{"reader__layer": [...]}``.
    """

    def __init__(
        self,
        model,
        weights="DEFAULT",
        layers=None,
        pooling=None,
        channels=None,
        batch_size=32,
        device="cpu",
        memory=None,
        random_state=None,
        verbose=0,
    ):
        self.model = model
        self.weights = weights
        self.layers = layers
        self.pooling = pooling
        self.channels = channels
        self.batch_size = batch_size
        self.device = device
        self.memory = memory
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- parameters
    def _layer_list(self):
        layers = self.layers
        if layers is None:
            names = self.model_.layer_names()
            if not names:
                raise ValueError("the model has no sub-modules; pass layers=[...] explicitly")
            return [names[-1]]
        if isinstance(layers, str):
            layers = [layers]
        layers = [str(layer) for layer in layers]
        if not layers:
            raise ValueError("layers is empty; give at least one layer name")
        dup = sorted({la for la in layers if layers.count(la) > 1})
        if dup:
            raise ValueError(f"layers lists {dup} more than once")
        return layers

    def _check_params(self):
        if self.pooling is not None and self.pooling not in _POOLINGS:
            raise ValueError(f"pooling must be None or one of {_POOLINGS}, got {self.pooling!r}")
        if not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")

    def _fit_model(self):
        from neuroprobe.models.registry import resolve_layer

        self._check_params()
        spec = _build(self.model, self.weights, self.random_state)
        self.device_ = resolve_device(self.device)
        spec.module.to(self.device_)
        spec.module.eval()
        self.model_ = spec
        layers = self._layer_list()
        self.layers_ = [resolve_layer(spec, layer) for layer in layers]
        self._given_layers = layers
        channels = self.channels or {}
        if not isinstance(channels, dict):
            raise TypeError("channels must be a dict layer -> list of channel indices")
        unknown = [k for k in channels if k not in layers]
        if unknown:
            raise ValueError(f"channels names layer(s) {unknown} that are not in layers={layers}")
        self._channels = {k: np.asarray(v, dtype=np.int64).ravel() for k, v in channels.items()}
        return self

    def _finish_fit(self, native_shapes):
        self.layer_shapes_ = {}
        self.feature_slices_ = {}
        start = 0
        for layer, module in zip(self._given_layers, self.layers_):
            shape = tuple(native_shapes[module])
            self.layer_shapes_[layer] = shape
            width = self._layer_width(layer, shape)
            self.feature_slices_[layer] = slice(start, start + width)
            start += width
        self.n_features_out_ = start

    def _layer_width(self, layer, shape):
        chans = self._channels.get(layer)
        n_chan = shape[0] if chans is None else len(chans)
        if chans is not None and chans.size and (chans.max() >= shape[0] or chans.min() < 0):
            raise ValueError(
                f"channels[{layer!r}] holds indices outside 0..{shape[0] - 1} (layer {layer!r} has "
                f"{shape[0]} channels)"
            )
        if len(shape) == 1 or self.pooling is not None:
            return int(n_chan)
        return int(n_chan * np.prod(shape[1:], dtype=np.int64))

    def _select(self, layer, array):
        chans = self._channels.get(layer)
        if chans is not None:
            if chans.size and chans.max() >= array.shape[1]:
                raise ValueError(
                    f"channels[{layer!r}] holds index {int(chans.max())} but the layer has "
                    f"{array.shape[1]} channels"
                )
            array = array[:, chans]
        return array

    # ---------------------------------------------------------------- the forward passes
    def _forward_batches(self, source, indices, modules):
        """Yield ``(chunk, {module: pooled array}, native_shapes)`` batch by batch."""
        import torch

        from neuroprobe.models.hooks import capture

        spec = self.model_
        modules = list(dict.fromkeys(modules))
        pooling = self.pooling
        native = {}

        def transform(name, tensor):
            native[name] = tuple(tensor.shape[1:])
            return _pool(tensor, pooling)

        batches = _iter_batches(spec, source, indices, int(self.batch_size))
        if self.verbose:
            from tqdm.auto import tqdm

            n_batches = -(-len(indices) // int(self.batch_size))
            batches = tqdm(batches, total=n_batches, desc=f"{spec.name} batches", unit="batch")
        with (
            torch.no_grad(),
            capture(spec.module, modules, repeat="error", transform=transform) as out,
        ):
            for k, (chunk, batch) in enumerate(batches):
                out.stop = k > 0  # the first pass runs whole, to detect repeated modules
                if isinstance(batch, torch.Tensor):
                    batch = batch.to(self.device_, dtype=torch.float32, non_blocking=True)
                out.run(batch)
                missing = [m for m in modules if m not in out]
                if missing:
                    raise RuntimeError(
                        f"layer(s) {missing} of model {spec.name!r} did not run in the forward "
                        "pass; "
                        "choose layers that are called by forward()"
                    )
                acts = {m: out[m].float().cpu().numpy() for m in modules}
                yield chunk, acts, dict(native)

    def _cache(self):
        location = _memory_location(self.memory)
        if location is None:
            return None
        from neuroprobe.models.registry import spec_identity

        identity = json.dumps(
            {"spec": spec_identity(self.model_), "pooling": self.pooling}, sort_keys=True
        )
        return _ActivationCache(location, identity)

    def _activations(self, source, sink):
        """Compute the activations of ``source`` and pass each block to ``sink(positions, acts)``.

        Returns the native shapes (module -> shape). With ``memory`` set, only missing
        (stimulus, layer) pairs run the network.
        """
        modules = list(dict.fromkeys(self.layers_))
        cache = self._cache()
        n = len(source)
        if cache is None:
            native = {}
            for chunk, acts, shapes in self._forward_batches(source, np.arange(n), modules):
                sink(chunk, acts)
                native = shapes
            return native
        keys = source.keys()
        with cache.lock(modules):
            missing = {m: cache.missing(m, keys) for m in modules}
            todo = sorted(set().union(*missing.values()))
            needed = [m for m in modules if missing[m]]
            if todo:
                for chunk, acts, native in self._forward_batches(source, np.asarray(todo), needed):
                    for m in needed:
                        want = np.isin(chunk, missing[m])
                        if want.any():
                            cache.save(m, [keys[i] for i in chunk[want]], acts[m][want], native[m])
        native = {}
        acts = {}
        for m in modules:
            acts[m], native[m] = cache.load(m, keys)
        sink(np.arange(n), acts)
        return native

    def _assemble(self, acts, n_rows):
        blocks = []
        for layer, module in zip(self._given_layers, self.layers_):
            block = self._select(layer, acts[module])
            blocks.append(block.reshape(n_rows, -1))
        return np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]

    def _compute(self, source):
        out = {}

        def sink(chunk, acts):
            block = self._assemble(acts, len(chunk))
            if "X" not in out:
                out["X"] = np.empty((len(source), block.shape[1]), dtype=np.float32)
            if block.shape[1] != out["X"].shape[1]:  # [audio/video] unpooled, different lengths
                raise ValueError(
                    f"stimuli give different numbers of features ({out['X'].shape[1]} and "
                    f"{block.shape[1]}): their outputs differ in length (audio durations, video "
                    "lengths); use pooling, or stimuli of equal length"
                )
            out["X"][chunk] = block

        native = self._activations(source, sink)
        return out["X"], native

    # ---------------------------------------------------------------- sklearn API
    def fit(self, X=None, y=None):
        """Build the network, resolve the layers and find their output shapes.

        The shapes come from the first stimulus of ``X`` (one forward pass of one stimulus, read
        from the cache when ``memory`` is set).

        Parameters
        ----------
        X : StimulusSet, list of paths, uint8 array (n, H, W, 3), float tensor (n, C, ...) or None
            ``None``: shapes from a zero input of the model's input size (its crop size, or
            ``preprocess_info["input_shape"]``).
        y : ignored

        Returns
        -------
        self
        """
        self._fit_model()
        if X is None:  # shapes from a zero input of the model's input size (no cache involved)
            from neuroprobe.models.registry import _dummy_input

            x = _dummy_input(self.model_, None)
            native = None
            for _, _, shapes in self._forward_batches(_Source(x), np.arange(1), self.layers_):
                native = shapes
        else:
            _, native = self._compute(_Source(X).subset([0]))
        self._finish_fit(native)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """Fit and return the features of ``X`` with a single pass over the stimuli."""
        self._fit_model()
        features, native = self._compute(_Source(X))
        self._finish_fit(native)
        return features

    def transform(self, X):
        """Features of ``X``: float32 ``(n_stimuli, n_features_out_)``, layers in the given
        order."""
        check_is_fitted(self, "feature_slices_")
        features, _ = self._compute(_Source(X))
        if features.shape[1] != self.n_features_out_:
            raise ValueError(
                f"X gives {features.shape[1]} features but the extractor was fitted with "
                f"{self.n_features_out_}; stimuli must have the size seen in fit"
            )
        return features

    def get_feature_names_out(self, input_features=None):
        """Column names ``"<layer>:c<c>"`` (pooled), ``"<layer>:c<c>:y<y>:x<x>"`` (maps),
        ``"<layer>:u<i>"`` (1-D layers), ``"<layer>:c<c>:t<t>:y<y>:x<x>"`` (video maps)."""
        check_is_fitted(self, "feature_slices_")
        names = []
        for layer, shape in self.layer_shapes_.items():
            chans = self._channels.get(layer)
            names.extend(feature_names(layer, shape, self.pooling is not None, chans))
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags

    # ---------------------------------------------------------------- cache and files
    def prefetch(self, X, layers=None):
        """Fill the ``memory`` cache with ``layers`` (default: ``self.layers``) in one pass per
        stimulus.

        Use it before a grid search over layers with every candidate layer, so that each stimulus
        runs through the network once. Returns ``self`` (unchanged).
        """
        if _memory_location(self.memory) is None:
            raise ValueError("prefetch needs memory=<directory> (the cache to fill)")
        from sklearn.base import clone

        helper = clone(self)
        if layers is not None:
            helper.set_params(layers=list(layers), channels=None)
        helper._fit_model()
        helper._activations(_Source(X), lambda chunk, acts: None)
        return self

    def extract_to_file(self, X, path, *, resume=True):
        """Stream the activations of every layer of ``X`` into an ``.act.h5`` file.

        Peak memory does not grow with the number of stimuli (batches are written as they come). The
        file is written as ``<path>.partial`` and renamed when complete; if a previous run with the
        same model, weights, layers, pooling and stimuli (IDs and contents: file path, size and
        modification time, or a hash of each array row) was interrupted, it continues where it
        stopped. A partial file of other stimuli, or a damaged one, is discarded with a warning.
        A second process writing the same ``path`` raises
        :class:`~neuroprobe.io.activations.ExtractionBusyError` and touches nothing.

        Parameters
        ----------
        X : StimulusSet, list of paths, uint8 array or float tensor
        path : str or path-like
        resume : bool

        Returns
        -------
        pathlib.Path
            The final path.
        """
        from neuroprobe.io.activations import ActivationWriter

        if not hasattr(self, "model_"):
            self._fit_model()
        source = _Source(X)
        channels = {k: v.tolist() for k, v in self._channels.items()} or None
        writer = ActivationWriter(
            path,
            source.ids,
            model=self.model_.name,
            weights_id=self.model_.weights_id,
            preprocess=self.model_.preprocess_info,
            layers=self._given_layers,
            pooling=self.pooling,
            channels=channels,
            resume=resume,
            stim_keys=source.keys(),  # contents: a replaced image invalidates a resume
        )
        try:
            start = writer.n_done
            created = False
            for chunk, acts, native in self._forward_batches(
                source, np.arange(start, len(source)), self.layers_
            ):
                arrays = {}
                for layer, module in zip(self._given_layers, self.layers_):
                    arrays[layer] = self._select(layer, acts[module])
                    if not created:
                        writer.ensure_layer(
                            layer,
                            arrays[layer].shape[1:],
                            module=module,
                            native_shape=native[module],
                            pooled=self.pooling is not None and len(native[module]) > 1,
                            channels=self._channels.get(layer),
                        )
                created = True
                writer.write(int(chunk[0]), arrays)
            return writer.finish()
        finally:
            writer.close()


# --------------------------------------------------------------------------------------------
# Reading activation files
# --------------------------------------------------------------------------------------------
class ActivationReader(TransformerMixin, BaseEstimator):
    """One layer's features read from an ``.act.h5`` file, by stimulus ID or row index.

    Parameters
    ----------
    path : str or path-like
        File written by :meth:`DNNFeatureExtractor.extract_to_file` or
        :func:`neuroprobe.io.activations.write_activations`.
    layer : str
        Layer name as stored (as given at extraction).

    Attributes
    ----------
    stim_ids_ : numpy.ndarray of str
    n_features_out_ : int

    Notes
    -----
    ``X`` is an array/list of stimulus IDs (str), of integer row indices, or a StimulusSet (its
    ``ids``). Grid search over layers: ``GridSearchCV(Pipeline([("reader", ActivationReader(path,
    "conv1")),
    ...]), {"reader__layer": layers})`` reads the file instead of running the network.
    """

    def __init__(self, path, layer):
        self.path = path
        self.layer = layer

    def fit(self, X=None, y=None):
        """Check the file and the layer; remember the stimulus IDs."""
        from neuroprobe.io.activations import open_activations

        with open_activations(self.path) as f:
            shape = f.shape(self.layer)
            attrs = f.layer_attrs(self.layer)
            self.stim_ids_ = np.asarray(f.stim_ids)
        self._native_shape = tuple(attrs.get("native_shape") or shape[1:])
        self._pooled = bool(attrs.get("pooled", False))
        self._channels = attrs.get("channels")
        self.n_features_out_ = int(np.prod(shape[1:], dtype=np.int64))
        return self

    def _indices(self, X):
        if hasattr(X, "ids") and hasattr(X, "load"):
            X = np.asarray(X.ids)
        X = np.asarray(X)
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(
                f"X must be a 1-D array of stimulus IDs or indices, got shape {X.shape}"
            )
        if X.dtype.kind in "iu":
            n = len(self.stim_ids_)
            if X.size and (X.min() < 0 or X.max() >= n):
                raise IndexError(f"indices out of range for the {n} stimuli of {self.path}")
            return X.astype(np.int64)
        lookup = {s: i for i, s in enumerate(self.stim_ids_)}
        ids = X.astype(str)
        missing = [s for s in ids if s not in lookup]
        if missing:
            raise KeyError(
                f"{len(missing)} stimulus ID(s) not in {self.path}, e.g. {missing[:3]}; the file "
                "holds "
                f"{len(lookup)} IDs such as {list(self.stim_ids_[:3])}"
            )
        return np.asarray([lookup[s] for s in ids], dtype=np.int64)

    def transform(self, X):
        """Features of the stimuli ``X``: float32 ``(n, n_features_out_)``."""
        from neuroprobe.io.activations import open_activations

        check_is_fitted(self, "stim_ids_")
        idx = self._indices(X)
        with open_activations(self.path) as f:
            data = f.read(self.layer, idx)
        return data.reshape(len(idx), -1)

    def get_feature_names_out(self, input_features=None):
        """Column names, as :meth:`DNNFeatureExtractor.get_feature_names_out`."""
        check_is_fitted(self, "stim_ids_")
        return np.asarray(
            feature_names(self.layer, self._native_shape, self._pooled, self._channels),
            dtype=object,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags
