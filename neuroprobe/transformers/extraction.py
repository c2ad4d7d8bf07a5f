"""Activations of deep networks as scikit-learn transformers.

:class:`DNNFeatureExtractor` runs a network on stimuli and returns the outputs of chosen layers;
:class:`ActivationReader` reads one layer from an ``.act.h5`` file written by
:meth:`DNNFeatureExtractor.extract_to_file`, so a grid search over layers can read a file instead of
running the network.
"""

from __future__ import annotations

import functools
import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neuroprobe._utils import resolve_device
from neuroprobe._validation import HasMethods, Interval, StrOptions, check_params, fit_context
from neuroprobe.transformers._activation_cache import (  # noqa: F401  (old private names)
    _BUILT,
    _SEEN,
    ACTIVATIONS,
    DiskActivationCache,
    _ActivationCache,
    _build,
    _locked,
    _memory_location,
    memory_identity,
    weights_stamp,
)
from neuroprobe.transformers._sources import StimulusSource, _sha1  # noqa: F401

# Old private name of the input adapter (neuroprobe.parallel, benchmarks).
_Source = StimulusSource

__all__ = ["DNNFeatureExtractor", "ActivationReader", "feature_names"]

#: Threads decoding and preprocessing the next batches while the network runs (0 = serial).
DECODE_WORKERS = 2
#: Batches prepared ahead of the one being computed.
PREFETCH_BATCHES = 2

_POOLINGS = ("max", "mean", "median", "l1", "l2")


# --------------------------------------------------------------------------------------------
# Stimuli
# --------------------------------------------------------------------------------------------
def _prepare(spec, source, i):
    import torch

    raw = source.load(i)
    if isinstance(raw, torch.Tensor) and raw.is_floating_point():
        return raw.float()
    if isinstance(raw, str) != (spec.modality == "text"):  # [text] text vs another modality
        from neuroprobe.exceptions import ModelError

        got = "text" if isinstance(raw, str) else type(raw).__name__
        raise ModelError(
            f"model {spec.name!r} takes {spec.modality} stimuli, got {got} (stimulus "
            f"{source.ids[i]!r}); pass {spec.modality} stimuli (text: a StimulusSet from "
            "StimulusSet.from_texts, a CSV 'text' column or .txt files)"
        )
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


def _iter_batches(spec, source, indices, batch_size, workers=None, length=None):
    """Yield ``(chunk_indices, batch_tensor)``, decoding the next batches in background threads.

    ``length``: texts padded to that many tokens (``spec.collate(items, length=length)``: the
    longest text of the stimulus set, so every batch has the same width)."""
    workers = DECODE_WORKERS if workers is None else workers
    collate = spec.collate if length is None else functools.partial(spec.collate, length=length)
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
        return [(chunk[a:b], collate(items[a:b])) for a, b in _shape_runs(items)]

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


def _resolve_layers(spec, layers):
    """``(module names, runner)``: each layer's module name to capture, and the module to run
    (``None``: the network itself; a tapped ``torch.fx`` graph when ``"fx:<node>"`` layers are
    asked for, see :mod:`neuroprobe.models.fx`)."""
    from neuroprobe.models.fx import is_fx_layer, tap_graph
    from neuroprobe.models.registry import resolve_layer

    resolved = {la: resolve_layer(spec, la) for la in layers if not is_fx_layer(la)}
    fx = [la for la in layers if is_fx_layer(la)]
    if not fx:
        return [resolved[la] for la in layers], None
    runner, taps = tap_graph(spec.module, fx, list(resolved.values()), owner=f"model {spec.name!r}")
    resolved.update(taps)
    return [resolved[la] for la in layers], runner


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
        in this order. Default: the last module of the network. ``"fx:<node>"`` names a torch.fx
        graph node (``"fx:layer1.0.add"``, as torchvision's ``create_feature_extractor``; listed
        by ``list_layers(model, nodes=True)``), captured with the modules in the same pass
        (:mod:`neuroprobe.models.fx`).
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
        When set, it is used instead of the in-process cache.
    cache : bool, default=True
        Keep activations in this process's memory, shared by every clone (a grid search over
        layers runs the network once per stimulus and layer instead of once per candidate and
        fold); bounded by :func:`neuroprobe._utils.memory_budget` (``NEUROPROBE_MEMORY_BUDGET``),
        least recently used rows evicted first. ``False`` turns it off (with ``memory=None``: no
        caching at all). See Notes.
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
    n_tokens_ : int or None
        Texts with ``token_pooling="none"`` (:mod:`neuroprobe.models.tokens`): the token axis of
        the token layers, the longest tokenised text of the set given to ``fit`` (every text of
        ``transform`` is padded to it; a longer one raises). ``None`` for other models.
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

    **In-process cache (the default, ``cache=True``).** Without ``memory``, the same per-layer,
    per-stimulus rows are kept in this process's memory
    (:data:`neuroprobe.transformers._activation_cache.ACTIVATIONS`), shared by every clone, so the
    search above runs each stimulus once per candidate layer with no directory to manage
    (``prefetch`` fills it for every candidate in one pass). The key holds everything that
    determines a row: the model's name, weights id, preprocessing and modality, a SHA-1 of every
    weight and buffer of the built network (another seed, another weights file or a fine-tuned
    module is another key), the pooling, the token axis of texts padded to their set
    (``n_tokens_``), the device type, the layer and the stimulus identity
    (file path + size + mtime, or a hash of the array row's contents). Channels are selected after
    the cache. A cached row is the same float32 row the network gave. ``cache=False`` turns it
    off.
    """

    _parameter_constraints = {
        "model": "no_validation",  # name, module, factory or ModelSpec: build_model checks it
        "weights": [str, os.PathLike, None],
        "layers": [str, list, tuple, None],
        "pooling": [StrOptions(set(_POOLINGS)), None],
        "channels": [dict, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": "no_validation",  # resolve_device raises DeviceError
        "memory": [str, os.PathLike, HasMethods(["cache"]), None],
        "cache": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

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
        cache=True,
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
        self.cache = cache
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

    def _fit_model(self):
        check_params(self)  # every entry point (fit, extract_to_file, prefetch) builds through here
        spec = _build(self.model, self.weights, self.random_state)
        self.device_ = resolve_device(self.device)
        spec.module.to(self.device_)
        spec.module.eval()
        self.model_ = spec
        self._memory_key = (None, None)
        layers = self._layer_list()
        self.layers_, self._runner = _resolve_layers(spec, layers)
        self._given_layers = layers
        channels = self.channels or {}
        if not isinstance(channels, dict):
            raise TypeError("channels must be a dict layer -> list of channel indices")
        unknown = [k for k in channels if k not in layers]
        if unknown:
            raise ValueError(f"channels names layer(s) {unknown} that are not in layers={layers}")
        self._channels = {k: np.asarray(v, dtype=np.int64).ravel() for k, v in channels.items()}
        return self

    def _finish_fit(self, native_shapes, length=None):
        self.n_tokens_ = length
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
    def _forward_batches(self, source, indices, modules, length=None):
        """Yield ``(chunk, {module: pooled array}, native_shapes)`` batch by batch (texts padded
        to ``length`` tokens when given, see :meth:`_set_length`)."""
        import torch

        from neuroprobe.models.hooks import capture

        spec = self.model_
        modules = list(dict.fromkeys(modules))
        pooling = self.pooling
        native = {}

        def transform(name, tensor):
            native[name] = tuple(tensor.shape[1:])
            return _pool(tensor, pooling)

        batches = _iter_batches(spec, source, indices, int(self.batch_size), length=length)
        if self.verbose:
            from tqdm.auto import tqdm

            n_batches = -(-len(indices) // int(self.batch_size))
            batches = tqdm(batches, total=n_batches, desc=f"{spec.name} batches", unit="batch")
        runner = getattr(self, "_runner", None)  # a traced graph with taps for "fx:" layers
        if runner is not None:
            from neuroprobe.models.fx import current_graph

            runner = current_graph(runner)  # retraced if hooks (an ablation) were added since
        runner = spec.module if runner is None else runner
        with (
            torch.no_grad(),
            capture(runner, modules, repeat="error", transform=transform) as out,
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

    def _cache(self, length=None):
        """The activation store: the disk cache (``memory``), the in-process one, or None.

        None while the network carries a transient forward hook (an ablation, a user's hook):
        its outputs may differ from the cached ones, so they are computed afresh. ``length``
        (texts padded to a set's longest) is part of the key: rows of another length differ."""
        from neuroprobe.models.hooks import has_transient_hooks

        if has_transient_hooks(self.model_.module):
            return None
        location = _memory_location(self.memory)
        if location is not None:
            from neuroprobe.models.registry import spec_identity

            identity = {"spec": spec_identity(self.model_), "pooling": self.pooling}
            if length is not None:
                identity["n_tokens"] = int(length)
            identity = json.dumps(identity, sort_keys=True)
            return DiskActivationCache(location, identity)
        if not self.cache:
            return None
        # the weights are hashed again only when a tensor was replaced or changed in place
        stamp = weights_stamp(self.model_.module)
        if getattr(self, "_memory_key", (None, None))[0] != stamp:
            self._memory_key = (stamp, memory_identity(self.model_, self.pooling, self.device_))
        key = self._memory_key[1]
        return ACTIVATIONS.view(key if length is None else _sha1(key, "n_tokens", int(length)))

    def _activations(self, source, sink, length=None):
        """Compute the activations of ``source`` and pass each block to ``sink(positions, acts)``.

        Returns the native shapes (module -> shape). With a cache, only missing
        (stimulus, layer) pairs run the network. ``length``: texts padded to that many tokens.
        """
        modules = list(dict.fromkeys(self.layers_))
        cache = self._cache(length)
        n = len(source)
        if cache is None:
            native = {}
            for chunk, acts, shapes in self._forward_batches(source, np.arange(n), modules,
                                                             length):
                sink(chunk, acts)
                native = shapes
            return native
        keys = source.keys()
        with cache.lock(modules):
            found = {m: cache.lookup(m, keys) for m in modules}
            rows = {m: found[m][0] for m in modules}
            native = {m: found[m][1] for m in modules if found[m][1] is not None}
            missing = {m: [i for i in range(n) if i not in rows[m]] for m in modules}
            todo = sorted(set().union(*missing.values()))
            needed = [m for m in modules if missing[m]]
            if todo:
                for chunk, acts, shapes in self._forward_batches(source, np.asarray(todo), needed,
                                                                 length):
                    for m in needed:
                        want = np.isin(chunk, missing[m])
                        if want.any():
                            block = acts[m][want]
                            cache.save(m, [keys[i] for i in chunk[want]], block, shapes[m])
                            rows[m].update(zip(chunk[want].tolist(), block))
                            native[m] = shapes[m]
        if all(len({rows[m][i].shape for i in range(n)}) == 1 for m in modules):
            sink(np.arange(n), {m: np.stack([rows[m][i] for i in range(n)]) for m in modules})
        else:  # [audio/video] unpooled outputs of different lengths: the sink names the problem
            for i in range(n):
                sink(np.array([i]), {m: rows[m][i][None].copy() for m in modules})
        return native

    def _assemble(self, acts, n_rows):
        blocks = []
        for layer, module in zip(self._given_layers, self.layers_):
            block = self._select(layer, acts[module])
            blocks.append(block.reshape(n_rows, -1))
        return np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]

    def _compute(self, source, length=None):
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

        native = self._activations(source, sink, length)
        return out["X"], native

    def _set_length(self, source, fitted=None):
        """The token axis of a text set for a model padding texts to their set
        (``token_pooling="none"``, :func:`neuroprobe.models.tokens.pads_to_set`): the longest
        tokenised text of ``source`` (all of it, before any batch runs), or ``fitted`` (the
        ``n_tokens_`` of ``fit``; a longer text raises). ``None`` for other models and inputs."""
        from neuroprobe.models.tokens import pads_to_set, set_length

        if (source.kind != "stimset" or getattr(source.X, "modality", None) != "text"
                or not pads_to_set(self.model_)):
            return fitted  # other stimuli: the batches name a modality mismatch
        texts = [source.load(i) for i in range(len(source))]
        lengths, longest = set_length(self.model_, texts)
        if fitted is None:
            return longest
        if longest > fitted:
            i = int(np.argmax(lengths))
            raise ValueError(
                f"stimulus {str(source.ids[i])!r} has {longest} tokens but the extractor was "
                f"fitted on texts of at most {fitted} tokens: with token_pooling='none' every "
                "text is padded to the longest text of the set given to fit (the width of the "
                "features); fit on every text to transform, or use token_pooling='mean', 'last' "
                "or 'cls'"
            )
        return fitted

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
            from neuroprobe.models.tokens import pads_to_set

            x = _dummy_input(self.model_, None)
            native = None
            source = StimulusSource(x)
            for _, _, shapes in self._forward_batches(source, np.arange(1), self.layers_):
                native = shapes
            length = int(x.shape[1]) if pads_to_set(self.model_) else None
        else:
            source = StimulusSource(X)
            length = self._set_length(source)
            _, native = self._compute(source.subset([0]), length)
        self._finish_fit(native, length)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """Fit and return the features of ``X`` with a single pass over the stimuli."""
        self._fit_model()
        source = StimulusSource(X)
        length = self._set_length(source)
        features, native = self._compute(source, length)
        self._finish_fit(native, length)
        return features

    def transform(self, X):
        """Features of ``X``: float32 ``(n_stimuli, n_features_out_)``, layers in the given
        order."""
        check_is_fitted(self, "feature_slices_")
        source = StimulusSource(X)
        features, _ = self._compute(source, self._set_length(source, getattr(self, "n_tokens_",
                                                                                    None)))
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
        """Fill the activation cache (``memory``, or the in-process one) with ``layers``
        (default: ``self.layers``) in one pass per stimulus.

        Use it before a grid search over layers with every candidate layer, so that each stimulus
        runs through the network once. Returns ``self`` (unchanged).
        """
        if _memory_location(self.memory) is None and not self.cache:
            raise ValueError(
                "prefetch needs a cache to fill: memory=<directory> or cache=True (the default)"
            )
        from sklearn.base import clone

        helper = clone(self)
        if layers is not None:
            helper.set_params(layers=list(layers), channels=None)
        helper._fit_model()
        source = StimulusSource(X)
        helper._activations(source, lambda chunk, acts: None, helper._set_length(source))
        return self

    def extract_to_file(self, X, path, *, resume=True, n_tokens=None):
        """Stream the activations of every layer of ``X`` into an ``.act.h5`` file.

        Peak memory does not grow with the number of stimuli (batches are written as they come). The
        file is written as ``<path>.partial`` and renamed when complete; if a previous run with the
        same model, weights, layers, pooling and stimuli (IDs and contents: file path, size and
        modification time, or a hash of each array row) was interrupted, it continues where it
        stopped. A partial file of other stimuli, or a damaged one, is discarded with a warning.
        A second process writing the same ``path`` raises
        :class:`~neuroprobe.io.activations.ExtractionBusyError` and touches nothing.

        Texts with ``token_pooling="none"``: every text is padded to the longest tokenised text
        of ``X`` (``n_tokens``, computed over all of ``X`` before the first batch, also on a
        resume, and recorded as ``preprocess["n_tokens"]``), so every layer has one fixed shape
        ``(n, C, n_tokens)``; the masks are stored as ``<layer>.token_mask`` ``(n, n_tokens)``.

        Parameters
        ----------
        X : StimulusSet, list of paths, uint8 array or float tensor
        path : str or path-like
        resume : bool
        n_tokens : int, optional
            Texts with ``token_pooling="none"`` only: pad to this many tokens instead of the
            longest text of ``X`` (at least that; shards of one set share the set's length).

        Returns
        -------
        pathlib.Path
            The final path.
        """
        from neuroprobe.io.activations import ActivationWriter

        if not hasattr(self, "model_"):
            self._fit_model()
        source = StimulusSource(X)
        length = self._set_length(source)
        if n_tokens is not None and length is not None:
            if int(n_tokens) < length:
                raise ValueError(
                    f"n_tokens={n_tokens} is shorter than the longest text of X ({length} tokens)"
                )
            length = int(n_tokens)
        preprocess = self.model_.preprocess_info
        if length is not None:
            preprocess = dict(preprocess, n_tokens=length)
        channels = {k: v.tolist() for k, v in self._channels.items()} or None
        writer = ActivationWriter(
            path,
            source.ids,
            model=self.model_.name,
            weights_id=self.model_.weights_id,
            preprocess=preprocess,
            layers=self._given_layers,
            pooling=self.pooling,
            channels=channels,
            resume=resume,
            stim_keys=source.keys(),  # contents: a replaced image invalidates a resume
        )
        # padded tokens (token_pooling="none" of a language model): their masks beside the layers
        from neuroprobe.models.tokens import mask_layers

        masks = {} if self.pooling else mask_layers(self.model_, self._given_layers, self.layers_)
        try:
            start = writer.n_done
            created = False
            for chunk, acts, native in self._forward_batches(
                source, np.arange(start, len(source)), self.layers_ + list(masks.values()),
                length,
            ):
                arrays = {}
                for layer, module in [*zip(self._given_layers, self.layers_), *masks.items()]:
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

    _parameter_constraints = {
        "path": [str, os.PathLike],
        "layer": [str],
    }

    def __init__(self, path, layer):
        self.path = path
        self.layer = layer

    @fit_context()
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
