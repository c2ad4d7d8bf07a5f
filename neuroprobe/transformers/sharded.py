"""Sharded feature extraction through joblib: stimulus shards on workers, one ``.act.h5`` file.

Every other parallel step of neuroprobe already goes through joblib (target batches of
``VoxelwiseEncoder(n_jobs=...)``, permutation chunks of ``PermutationTest(n_jobs=...)``, candidates
of ``GridSearchCV(n_jobs=...)``), so ``with joblib.parallel_config(backend="dask"):`` around a
``dask.distributed.Client`` spreads them over a cluster without changing the study.
:func:`extract_to_file_sharded` does the same for :meth:`DNNFeatureExtractor.extract_to_file`:
each shard of stimuli runs the network on a worker (which builds the model once per shard), the
shard's activations come back to the calling process, and the calling process alone writes the
HDF5 file, in stimulus order. Workers need the stimuli (file paths readable on every worker, or the
array itself, which joblib ships) but no shared output directory. Texts padded to their set
(``token_pooling="none"``) are padded to the longest text of the whole set in every shard. The
result equals ``extractor.extract_to_file(X, path)`` (tested).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone

__all__ = ["extract_to_file_sharded"]


def _extract_shard(extractor, X_shard, n_tokens=None):
    """Run ``extractor`` on one shard; return the file attributes and every layer's array."""
    from neuroprobe.io.activations import open_activations

    est = clone(extractor)
    with tempfile.TemporaryDirectory(prefix="neuroprobe-shard-") as tmp:
        path = est.extract_to_file(X_shard, Path(tmp) / "shard.act.h5", resume=False,
                                   n_tokens=n_tokens)
        with open_activations(path) as f:
            layers = [(layer, f.layer_attrs(layer), f.read(layer)) for layer in f.layers]
            return {"attrs": dict(f.attrs), "layers": layers}


def _shards(n, n_shards, shard_size):
    if shard_size is None:
        n_shards = int(n_shards) if n_shards else 8
        if n_shards < 1:
            raise ValueError(f"n_shards must be >= 1; got {n_shards}")
        shard_size = -(-n // n_shards)
    shard_size = int(shard_size)
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1; got {shard_size}")
    return [np.arange(a, min(n, a + shard_size)) for a in range(0, n, shard_size)]


def extract_to_file_sharded(extractor, X, path, *, n_shards=None, shard_size=None, n_jobs=None):
    """Extract the activations of ``X`` into an ``.act.h5`` file, shards of stimuli in parallel.

    Parameters
    ----------
    extractor : DNNFeatureExtractor
        Template, cloned on every worker (a random-weight model needs ``random_state`` so that
        every worker builds the same network).
    X : StimulusSet, list of paths, uint8 image array or float array (n, C, ...)
        As for :meth:`DNNFeatureExtractor.extract_to_file`.
    path : str or path-like
        Output file; written under a temporary name and renamed when complete.
    n_shards : int, optional
        Number of shards (default 8; ignored when ``shard_size`` is given).
    shard_size : int, optional
        Stimuli per shard.
    n_jobs : int, optional
        joblib workers; with ``joblib.parallel_config(backend="dask")`` the shards run on the
        dask cluster.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import joblib                                                            # doctest: +SKIP
    >>> from dask.distributed import Client                                      # doctest: +SKIP
    >>> with Client(), joblib.parallel_config(backend="dask"):                   # doctest: +SKIP
    ...     extract_to_file_sharded(DNNFeatureExtractor("alexnet", layers=["conv5"],
    ...                                                 weights="DEFAULT"),
    ...                             stimuli, "alexnet.act.h5", n_shards=64)
    """
    from neuroprobe.io.activations import ActivationWriter
    from neuroprobe.transformers._sources import StimulusSource

    source = StimulusSource(X)
    shards = _shards(len(source), n_shards, shard_size)
    n_tokens = None
    if getattr(source.X, "modality", None) == "text":  # one token axis for every shard
        template = clone(extractor)
        template._fit_model()
        n_tokens = template._set_length(source)
    tasks = (delayed(_extract_shard)(extractor, source.subset(idx).X, n_tokens)
             for idx in shards)
    writer = None
    try:
        results = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
        for idx, res in zip(shards, results):
            if writer is None:
                a = res["attrs"]
                writer = ActivationWriter(
                    path, source.ids, model=a.get("model", ""),
                    weights_id=a.get("weights_id", ""), preprocess=a.get("preprocess"),
                    layers=a.get("layers") or [name for name, _, _ in res["layers"]],
                    pooling=None if a.get("pooling") in (None, "none") else a["pooling"],
                    channels=a.get("channels"), resume=False,
                )
                for layer, la, array in res["layers"]:
                    writer.ensure_layer(layer, array.shape[1:], module=la.get("module"),
                                        native_shape=la.get("native_shape"),
                                        pooled=bool(la.get("pooled")),
                                        channels=la.get("channels"))
            writer.write(int(idx[0]), {layer: array for layer, _, array in res["layers"]})
        return writer.finish()
    finally:
        if writer is not None:
            writer.close()
