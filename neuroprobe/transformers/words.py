"""WordFeatureExtractor: one language-model feature vector per word of a transcript.

For naturalistic designs (story listening, reading): each word is seen with its preceding
context, its subword tokens give one vector per layer (:mod:`neuroprobe.models.words`, which
states the cost), and the rows keep the transcript's order, so the word onsets and runs bring
them to the scan grid::

    words = read_transcript("story.csv")                     # word, onset, offset, run
    ext = WordFeatureExtractor("hf:models/gpt2", layers=["block6"], context=50)
    F = ext.fit_transform(words)                             # (n_words, 768)
    Xs = TimeResampler(tr=2.0, n_scans=[300, 290], times=words.onsets,
                       runs=words.runs).fit_transform(F)

:meth:`WordFeatureExtractor.extract_to_file` writes the same features to an ``.act.h5`` file
(resumable, in chunks of words) with each word's ``onset``, ``offset``, ``run`` and ``word``
stored beside them (``neuroprobe words``).
"""

from __future__ import annotations

import os
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neuroprobe._utils import resolve_device
from neuroprobe._validation import Interval, StrOptions, check_params, fit_context
from neuroprobe.models.words import WORD_POOLINGS, word_features

__all__ = ["WordFeatureExtractor", "as_transcript"]

#: Words per written chunk of :meth:`WordFeatureExtractor.extract_to_file`, per ``batch_size``.
_CHUNK_BATCHES = 16


def as_transcript(X):
    """A :class:`~neuroprobe.io.transcript.Transcript` of ``X``: a Transcript, a transcript
    CSV path, a pandas DataFrame with a ``word`` column (``onset``, ``offset``, ``run``
    optional) or a sequence of words."""
    from neuroprobe.io.transcript import Transcript, read_transcript

    if isinstance(X, Transcript):
        return X
    if isinstance(X, (str, os.PathLike)):
        return read_transcript(X, require_onsets=False)
    if hasattr(X, "columns") and "word" in getattr(X, "columns", ()):
        get = {c: X[c].to_numpy() for c in ("onset", "offset", "run") if c in X.columns}
        return Transcript(X["word"].astype(str).tolist(), get.get("onset"), get.get("offset"),
                          get.get("run"), source="the DataFrame")
    return Transcript(list(np.asarray(X, dtype=object).ravel()))


class WordFeatureExtractor(TransformerMixin, BaseEstimator):
    """Per-word features of a language model, each word seen with its preceding context.

    Parameters
    ----------
    model : str or ModelSpec
        A language model, e.g. ``"hf:<folder or repo id>"`` (GPT-2, BERT, Llama-style).
    weights : str, path or None, default="DEFAULT"
        As in :class:`~neuroprobe.transformers.DNNFeatureExtractor` (``None``: seeded random).
    layers : str or list of str
        Layers with token outputs (``"block0"``, ``"h.3"``, ``"norm"``); default the last block.
    context : int or None, default=None
        Preceding words of the same run each word is seen with; ``None``: the whole run so far.
    max_tokens : int or None, default=None
        Most tokens in a word's window (default: the model's maximum length; more raises).
        Longer contexts lose their earliest tokens, with a
        :class:`~neuroprobe.exceptions.TruncationWarning` saying what was dropped.
    word_pooling : {"last", "mean"}, default="last"
        The word's last subword token, or the mean of its subword tokens.
    batch_size : int, default=16
        Context windows per forward pass.
    device : {"cpu", "cuda", "auto"} or torch.device
    random_state : int, RandomState or None
        Seed of random weights (``weights=None``).

    Attributes
    ----------
    model_ : ModelSpec
    layers_ : list of str
    n_features_out_ : int
    layer_widths_ : dict of str -> int
    device_ : torch.device

    Notes
    -----
    ``X`` is a transcript: a :class:`~neuroprobe.io.transcript.Transcript`
    (:func:`~neuroprobe.io.transcript.read_transcript`), a CSV path, a DataFrame with a
    ``word`` column, or a list of words (one run). The rows of :meth:`transform` are the words
    in order; ``X.onsets`` and ``X.runs`` go to
    :class:`~neuroprobe.transformers.TimeResampler`.
    """

    _parameter_constraints = {
        "model": "no_validation",  # build_model checks it
        "weights": [str, os.PathLike, None],
        "layers": [str, list, tuple, None],
        "context": [Interval(Integral, 0, None, closed="left"), None],
        "max_tokens": [Interval(Integral, 1, None, closed="left"), None],
        "word_pooling": [StrOptions(set(WORD_POOLINGS))],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": "no_validation",  # resolve_device raises DeviceError
        "random_state": ["random_state"],
    }

    def __init__(self, model, weights="DEFAULT", layers=None, context=None, max_tokens=None,
                 word_pooling="last", batch_size=16, device="cpu", random_state=None):
        self.model = model
        self.weights = weights
        self.layers = layers
        self.context = context
        self.max_tokens = max_tokens
        self.word_pooling = word_pooling
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    def _fit_model(self):
        from neuroprobe.transformers._activation_cache import build_cached

        check_params(self)
        spec = build_cached(self.model, self.weights, self.random_state)
        self.device_ = resolve_device(self.device)
        spec.module.to(self.device_)
        spec.module.eval()
        self.model_ = spec
        layers = self.layers
        if layers is None:
            blocks = sorted((k for k in spec.aliases if k.startswith("block")),
                            key=lambda k: int(k[5:]))
            layers = blocks[-1:] or ["norm"]
        self.layers_ = [layers] if isinstance(layers, str) else [str(la) for la in layers]
        return spec

    def _features(self, transcript):
        return word_features(self.model_, transcript, self.layers_, context=self.context,
                             max_tokens=self.max_tokens, word_pooling=self.word_pooling,
                             batch_size=self.batch_size)

    @fit_context()
    def fit(self, X=None, y=None):
        """Build the model and find each layer's width (from one word of ``X``, or "a")."""
        self._fit_model()
        from neuroprobe.io.transcript import Transcript

        probe = as_transcript(X)[:1] if X is not None else Transcript(["a"])
        self._finish(self._features(probe))
        return self

    def _finish(self, feats):
        self.layer_widths_ = {layer: int(feats[layer].shape[1]) for layer in self.layers_}
        self.n_features_out_ = int(sum(self.layer_widths_.values()))

    def fit_transform(self, X, y=None, **fit_params):
        """Build the model and return the word features of ``X`` in one pass."""
        check_params(self)
        self._fit_model()
        feats = self._features(as_transcript(X))
        self._finish(feats)
        return np.concatenate([feats[layer] for layer in self.layers_], axis=1)

    def transform(self, X):
        """Features of the words of ``X``: float32 ``(n_words, n_features_out_)``."""
        check_is_fitted(self, "n_features_out_")
        feats = self._features(as_transcript(X))
        return np.concatenate([feats[layer] for layer in self.layers_], axis=1)

    def get_feature_names_out(self, input_features=None):
        """``"<layer>:u<i>"`` per column."""
        check_is_fitted(self, "n_features_out_")
        return np.asarray([f"{layer}:u{i}" for layer in self.layers_
                           for i in range(self.layer_widths_[layer])], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags

    def _settings(self):
        """What the features depend on besides the model and the words (the file's identity)."""
        return {"kind": "word_features", "context": "run" if self.context is None
                else int(self.context), "max_tokens": self.max_tokens,
                "word_pooling": self.word_pooling, "tokenizer": self.model_.preprocess_info}

    def extract_to_file(self, X, path, *, resume=True):
        """Write the word features of ``X`` to an ``.act.h5`` file, resumably.

        One dataset per layer (rows: the words in order, stimulus IDs ``w0, w1, ...``); the
        columns ``word``, ``run`` and, when known, ``onset`` and ``offset`` are stored beside
        (:meth:`~neuroprobe.io.activations.ActivationFile.column`, ``FILE.act.h5:onset`` for
        ``neuroprobe encode --times``). Words are computed in chunks of ``16 * batch_size``,
        each with its full context, and written as they come; a rerun after an interruption
        continues after the last written chunk (the file's identity covers the model, the
        settings and each word with every word before it in its run). Contexts longer than
        the model allows give one :class:`~neuroprobe.exceptions.TruncationWarning` for the
        whole transcript.

        Parameters
        ----------
        X : Transcript, CSV path, DataFrame or list of words (see the class notes)
        path : str or path-like
        resume : bool, default=True

        Returns
        -------
        pathlib.Path
        """
        import hashlib
        import warnings

        from neuroprobe.io.activations import ActivationWriter
        from neuroprobe.models.layers import resolve_layer
        from neuroprobe.models.words import truncated_contexts

        if not hasattr(self, "model_"):
            self._fit_model()
        transcript = as_transcript(X)
        n = len(transcript)
        ids = [f"w{i}" for i in range(n)]
        columns = {"word": transcript.words, "run": np.asarray(transcript.runs).astype(str)}
        if transcript.has_onsets:
            columns["onset"] = transcript.onsets
        if transcript.offsets is not None:
            columns["offset"] = transcript.offsets
        keys, chain = [], {}
        for i in range(n):  # each word with every word before it in its run
            run = str(transcript.runs[i])
            times = [columns[c][i] for c in ("onset", "offset") if c in columns]
            digest = hashlib.sha1(
                "\x1f".join([chain.get(run, ""), run, str(transcript.words[i]),
                              *map(repr, times)]).encode()).hexdigest()
            chain[run] = digest
            keys.append(digest)
        warning = truncated_contexts(self.model_, transcript, context=self.context,
                                     max_tokens=self.max_tokens)
        if warning is not None:
            warnings.warn(warning, stacklevel=2)
        writer = ActivationWriter(
            path, ids, model=self.model_.name, weights_id=self.model_.weights_id,
            preprocess=self._settings(), layers=self.layers_, pooling=None, resume=resume,
            stim_keys=keys, columns=columns)
        try:
            step = _CHUNK_BATCHES * int(self.batch_size)
            for start in range(writer.n_done, n, step):
                rows = np.arange(start, min(start + step, n))
                feats = word_features(self.model_, transcript, self.layers_,
                                      context=self.context, max_tokens=self.max_tokens,
                                      word_pooling=self.word_pooling,
                                      batch_size=self.batch_size, rows=rows, warn=False)
                for layer in self.layers_:
                    writer.ensure_layer(layer, feats[layer].shape[1:],
                                        module=resolve_layer(self.model_, layer))
                writer.write(start, feats)
            self._finish_from(writer)
            return writer.finish()
        finally:
            writer.close()

    def _finish_from(self, writer):
        group = writer.file["layers"]
        from neuroprobe.io.activations import dataset_name

        self.layer_widths_ = {la: int(group[dataset_name(la)].shape[1]) for la in self.layers_}
        self.n_features_out_ = int(sum(self.layer_widths_.values()))
