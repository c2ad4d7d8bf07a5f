"""Image and text embeddings of the same stimuli from one CLIP model, in one feature matrix.

:class:`CLIPEmbedder` builds both towers of one OpenCLIP model
(:func:`neuroprobe.models.open_clip_source.build_open_clip_towers`: one build, the same weights),
runs the image tower on the stimuli (through :class:`DNNFeatureExtractor`, so decoding threads,
pooling and the activation cache are the extractor's) and the text tower on their captions (a
column of the :class:`~neuroprobe.stimuli.StimulusSet`), and concatenates the columns:
``image:<layer>:...`` first, then ``text:<layer>:...``. :meth:`CLIPEmbedder.extract_to_file`
writes the same features to one ``.act.h5`` file with layers ``"image:<layer>"`` and
``"text:<layer>"``, read back with :class:`~neuroprobe.transformers.ActivationReader`.

Text input is kept minimal: a list of strings or a text column of a StimulusSet, tokenised with
OpenCLIP's tokenizer (the general text modality lives in :mod:`neuroprobe.stimuli` /
:mod:`neuroprobe.media`).
"""

from __future__ import annotations

import os
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neuroprobe._utils import resolve_device
from neuroprobe._validation import Interval, StrOptions, check_params
from neuroprobe.exceptions import StimulusError
from neuroprobe.transformers.extraction import _POOLINGS, DNNFeatureExtractor, feature_names

__all__ = ["CLIPEmbedder"]

_TOWERS = ("image", "text")


class CLIPEmbedder(TransformerMixin, BaseEstimator):
    """Image and caption embeddings of the same stimuli from one OpenCLIP model.

    Parameters
    ----------
    model : str, default="open_clip:ViT-B-32/laion2b_s34b_b79k"
        An OpenCLIP name ``"open_clip:<architecture>/<pretrained tag>"`` (options such as
        ``?tower=`` are not allowed: both towers are used).
    weights : str, path or None, default="DEFAULT"
        As in :func:`neuroprobe.models.build_model` (``None``: seeded random weights).
    text_column : str, default="caption"
        The column of the StimulusSet holding each stimulus's text.
    towers : {"both", "image", "text"}, default="both"
        Which embeddings to return; with ``"text"``, ``X`` may also be a list of strings.
    image_layers, text_layers : str or list of str, default="head"
        Layers of each tower (aliases or module names; ``"head"`` = the embedding, OpenCLIP's
        ``encode_image`` / ``encode_text``).
    normalize : bool, default=False
        L2-normalise the embedding rows (the ``head`` / ``embedding`` layers), as
        ``encode_image(..., normalize=True)``.
    pooling : {None, "max", "mean", "median", "l1", "l2"}
        Pooling of image layers with spatial or token axes (as in :class:`DNNFeatureExtractor`).
    batch_size : int, default=32
    device : {"cpu", "cuda", "auto"} or torch.device
    random_state : int, RandomState or None
        Seed of random weights (``weights=None``).

    Attributes
    ----------
    image_spec_, text_spec_ : ModelSpec
        The two towers.
    feature_slices_ : dict of str -> slice
        ``"image:<layer>"`` / ``"text:<layer>"`` -> its columns.
    layer_shapes_ : dict of str -> tuple
    n_features_out_ : int
    """

    _parameter_constraints = {
        "model": [str],
        "weights": [str, os.PathLike, None],
        "text_column": [str],
        "towers": [StrOptions({"both", "image", "text"})],
        "image_layers": [str, list, tuple],
        "text_layers": [str, list, tuple],
        "normalize": ["boolean"],
        "pooling": [StrOptions(set(_POOLINGS)), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": "no_validation",  # resolve_device raises DeviceError
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        model="open_clip:ViT-B-32/laion2b_s34b_b79k",
        weights="DEFAULT",
        text_column="caption",
        towers="both",
        image_layers="head",
        text_layers="head",
        normalize=False,
        pooling=None,
        batch_size=32,
        device="cpu",
        random_state=None,
    ):
        self.model = model
        self.weights = weights
        self.text_column = text_column
        self.towers = towers
        self.image_layers = image_layers
        self.text_layers = text_layers
        self.normalize = normalize
        self.pooling = pooling
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    # ---------------------------------------------------------------- building
    def _used(self):
        return _TOWERS if self.towers == "both" else (self.towers,)

    @staticmethod
    def _as_list(layers):
        return [layers] if isinstance(layers, str) else [str(la) for la in layers]

    def _build(self):
        from neuroprobe.models.layers import resolve_layer
        from neuroprobe.models.open_clip_source import build_open_clip_towers
        from neuroprobe.models.registry import warn_random_weights
        from neuroprobe.models.weights import is_random_weights

        check_params(self)
        prefix, sep, rest = self.model.partition(":")
        if prefix.lower() != "open_clip" or not sep or "?" in rest:
            raise ValueError(
                f"model={self.model!r}; expected an OpenCLIP name 'open_clip:<architecture>/<tag>' "
                "without options (CLIPEmbedder uses both towers)"
            )
        self.image_spec_, self.text_spec_ = build_open_clip_towers(
            rest, self.weights, self.random_state)
        if is_random_weights(self.weights):
            warn_random_weights(self.model, self.image_spec_.weights_id)
        self.device_ = resolve_device(self.device)
        self._layers = {"image": self._as_list(self.image_layers),
                        "text": self._as_list(self.text_layers)}
        for tower in _TOWERS:
            if not self._layers[tower]:
                raise ValueError(f"{tower}_layers is empty; give at least one layer name")
        self._text_modules = [resolve_layer(self.text_spec_, la) for la in self._layers["text"]]
        self.text_spec_.module.to(self.device_)
        if "image" in self._used():
            self._image = DNNFeatureExtractor(
                self.image_spec_, layers=self._layers["image"], pooling=self.pooling,
                batch_size=self.batch_size, device=self.device)
        return self

    # ---------------------------------------------------------------- inputs
    def _texts(self, X):
        if hasattr(X, "column") and hasattr(X, "ids"):
            if self.text_column not in X.columns:
                raise StimulusError(
                    f"the stimulus set has no text column {self.text_column!r} (text_column); "
                    f"its columns: {', '.join(X.columns)}"
                )
            return [str(t) for t in X.column(self.text_column)]
        if self.towers == "text" and isinstance(X, (list, tuple, np.ndarray)) and all(
            isinstance(t, str) for t in np.ravel(np.asarray(X, dtype=object))
        ):
            return [str(t) for t in np.ravel(np.asarray(X, dtype=object))]
        raise StimulusError(
            "X must be a StimulusSet of images with a text column "
            f"{self.text_column!r} (text_column)"
            + (", or a list of strings (towers='text')" if self.towers == "text" else "")
            + f"; got {type(X).__name__}"
        )

    def _ids(self, X):
        if hasattr(X, "ids"):
            return np.asarray(X.ids).astype(str)
        return np.arange(len(X)).astype(str)

    # ---------------------------------------------------------------- the towers
    def _text_blocks(self, texts):
        """``{layer: float32 (n, ...)}`` of the text tower, one forward pass per batch."""
        import torch

        from neuroprobe.models.hooks import capture

        spec = self.text_spec_
        out_blocks = {m: [] for m in self._text_modules}
        shapes = {}
        step = int(self.batch_size)
        with torch.no_grad(), capture(spec.module, self._text_modules) as out:
            for start in range(0, len(texts), step):
                tokens = spec.preprocess.batch(texts[start:start + step]).to(self.device_)
                out.run(tokens)
                for m in self._text_modules:
                    shapes[m] = tuple(out[m].shape[1:])
                    out_blocks[m].append(out[m].float().cpu().numpy())
        result = {}
        for layer, m in zip(self._layers["text"], self._text_modules):
            block = np.concatenate(out_blocks[m])
            result[layer] = self._maybe_normalize(m, block)
            self._native[f"text:{layer}"] = shapes[m]
        return result

    def _image_blocks(self, X):
        features = self._image.fit_transform(X) if not hasattr(
            self._image, "feature_slices_") else self._image.transform(X)
        result = {}
        for layer, module in zip(self._layers["image"], self._image.layers_):
            block = features[:, self._image.feature_slices_[layer]]
            result[layer] = self._maybe_normalize(module, block)
            self._native[f"image:{layer}"] = self._image.layer_shapes_[layer]
        return result

    def _maybe_normalize(self, module, block):
        if self.normalize and module == "embedding":
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            return (block / np.maximum(norms, 1e-12)).astype(np.float32)
        return np.ascontiguousarray(block, dtype=np.float32)

    def _blocks(self, X):
        """``{"image:<layer>": (n, ...), "text:<layer>": (n, ...)}`` in output order."""
        self._native = {}
        blocks = {}
        if "image" in self._used():
            if not (hasattr(X, "load") and hasattr(X, "ids")):
                raise StimulusError(
                    f"X must be a StimulusSet of images with a text column {self.text_column!r}; "
                    f"got {type(X).__name__}"
                )
            blocks.update({f"image:{k}": v for k, v in self._image_blocks(X).items()})
        if "text" in self._used():
            texts = self._texts(X)
            blocks.update({f"text:{k}": v for k, v in self._text_blocks(texts).items()})
        return blocks

    # ---------------------------------------------------------------- sklearn API
    def fit(self, X, y=None):
        """Build both towers and find the feature layout from ``X``'s first stimulus.

        Parameters
        ----------
        X : StimulusSet (images with a text column) or, with ``towers="text"``, list of str
        y : ignored

        Returns
        -------
        self
        """
        self._build()
        first = X[:1] if hasattr(X, "ids") else list(X)[:1]
        self._finish(self._blocks(first))
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """Fit and return the features of ``X`` in one pass over the stimuli."""
        self._build()
        blocks = self._blocks(X)
        self._finish(blocks)
        return np.concatenate([b.reshape(len(b), -1) for b in blocks.values()], axis=1)

    def _finish(self, blocks):
        self.feature_slices_, self.layer_shapes_ = {}, {}
        start = 0
        for name, block in blocks.items():
            width = int(np.prod(block.shape[1:], dtype=np.int64))
            self.feature_slices_[name] = slice(start, start + width)
            self.layer_shapes_[name] = tuple(self._native[name])
            start += width
        self.n_features_out_ = start

    def transform(self, X):
        """Features ``(n, n_features_out_)``: image columns, then text columns."""
        check_is_fitted(self, "feature_slices_")
        blocks = self._blocks(X)
        return np.concatenate([b.reshape(len(b), -1) for b in blocks.values()], axis=1)

    def get_feature_names_out(self, input_features=None):
        """``"image:<layer>:u<i>"`` / ``"text:<layer>:u<i>"`` (see
        :func:`~neuroprobe.transformers.extraction.feature_names`)."""
        check_is_fitted(self, "feature_slices_")
        names = []
        for name, shape in self.layer_shapes_.items():
            pooled = self.pooling is not None and name.startswith("image:")
            names.extend(feature_names(name, shape, pooled))
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags

    def extract_to_file(self, X, path, *, resume=True):
        """Write the image and text features of ``X`` to one ``.act.h5`` file.

        Layers are stored as ``"image:<layer>"`` and ``"text:<layer>"``; batches of
        ``batch_size`` stimuli are written as they come, and an interrupted run resumes.

        Parameters
        ----------
        X : StimulusSet (images with a text column) or, with ``towers="text"``, list of str
        path : str or path-like
        resume : bool

        Returns
        -------
        pathlib.Path
        """
        from neuroprobe.io.activations import ActivationWriter

        if not hasattr(self, "image_spec_"):
            self._build()
        ids = self._ids(X)
        names = [f"{t}:{la}" for t in self._used() for la in self._layers[t]]
        info = {"image": self.image_spec_.preprocess_info, "text": self.text_spec_.preprocess_info,
                "text_column": self.text_column, "normalize": bool(self.normalize)}
        keys = None
        if hasattr(X, "load"):
            from neuroprobe.transformers._sources import StimulusSource, _sha1

            texts = self._texts(X) if "text" in self._used() else [""] * len(ids)
            keys = [_sha1(k, t) for k, t in zip(StimulusSource(X).keys(), texts)]
        writer = ActivationWriter(
            path, ids, model=self.model, weights_id=self.image_spec_.weights_id,
            preprocess=info, layers=names, pooling=self.pooling, resume=resume, stim_keys=keys)
        try:
            created = False
            step = int(self.batch_size)
            for start in range(writer.n_done, len(ids), step):
                chunk = X[start:start + step]
                blocks = self._blocks(chunk)
                if not created:
                    for name, block in blocks.items():
                        writer.ensure_layer(
                            name, block.shape[1:], module=name,
                            native_shape=self._native[name],
                            pooled=self.pooling is not None and name.startswith("image:")
                            and len(self._native[name]) > 1)
                    created = True
                writer.write(start, blocks)
            return writer.finish()
        finally:
            writer.close()
