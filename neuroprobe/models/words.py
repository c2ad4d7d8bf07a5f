"""Word-by-word features of a language model for naturalistic (story listening / reading) designs.

Each word of a transcript gets one feature vector per layer from the model's outputs at that
word's own subword tokens (the ``"last"`` one or their ``"mean"``), the word being seen with its
context: the preceding ``context`` words of its run, or the whole run so far (``context=None``),
capped at ``max_tokens`` tokens (default: the model's maximum length; the earliest tokens are
dropped, with a :class:`~neuroprobe.exceptions.TruncationWarning` saying which words lost how
much). Runs never share context.

Tokens. Each run is tokenised once, as its words joined by single spaces, without special tokens
(``add_special_tokens=False``); the tokenizer's character offsets assign every token to the word
it lies in, so word ``k``'s context window is a slice of the run's token ids. The result equals
running the model once per word on that slice (the brute-force loop of the tests).

Cost, for a run of ``n`` words and windows of ``L`` tokens (``n`` forward passes of ``L`` tokens
for the brute-force loop):

* **causal models** (GPT-2, Llama; detected by checking that a token's output does not change
  when a token is appended): the output at a token depends only on the tokens before it, so
  every word whose window starts at the same token is read from one pass. With
  ``context=None`` one pass over the run's first ``max_tokens`` tokens gives every word in
  them (``ceil``-free: 1 pass instead of up to ``max_tokens`` passes); each later word, and
  every word of a sliding ``context`` of N words (each starts elsewhere), needs its own window.
  Sharing keys/values between sliding windows would change the result (the context tokens'
  states depend on where the window starts), so windows are not spliced.
* **bidirectional models** (BERT): one window per word.

Windows run ``batch_size`` at a time (right padding, attention mask; a window's outputs do not
depend on its batch), and each pass stops after the last requested layer. The number of tokens
computed is therefore at most the brute-force loop's, in ``n / batch_size`` calls of the network
instead of ``n``.
"""

from __future__ import annotations

import warnings

import numpy as np

from neuroprobe.exceptions import ModelError, TruncationWarning

__all__ = ["WORD_POOLINGS", "is_causal", "truncated_contexts", "word_features",
           "word_token_spans"]

#: How a word's subword tokens become one vector.
WORD_POOLINGS = ("last", "mean")


def word_token_spans(tokenizer, words):
    """Token ids of ``" ".join(words)`` and the ``[start, stop)`` token range of each word.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerFast
        A fast tokenizer (character offsets are needed).
    words : sequence of str

    Returns
    -------
    ids : ndarray of int64, shape (n_tokens,)
    starts, stops : ndarray of int64, shape (n_words,)
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(
            f"word features need a fast tokenizer (character offsets); "
            f"{type(tokenizer).__name__} is not one"
        )
    words = [str(w) for w in words]
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    char_starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    enc = tokenizer(" ".join(words), add_special_tokens=False, return_offsets_mapping=True,
                    verbose=False)  # a run is longer than the model takes: windows cut it
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    chars = np.maximum(offsets[:, 0], offsets[:, 1] - 1)
    owner = np.searchsorted(char_starts, chars, side="right") - 1
    starts = np.searchsorted(owner, np.arange(len(words)), side="left")
    stops = np.searchsorted(owner, np.arange(len(words)), side="right")
    empty = np.flatnonzero(stops == starts)
    if empty.size:
        k = int(empty[0])
        raise ModelError(f"word {k} ({words[k]!r}) gives no token with this tokenizer")
    return ids, starts.astype(np.int64), stops.astype(np.int64)


def _batch(ids_list, pad_id, device):
    """One right-padded batch of token-id windows: ``input_ids`` and ``attention_mask``."""
    import torch

    width = max(len(x) for x in ids_list)
    ids = torch.full((len(ids_list), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(ids_list), width), dtype=torch.long)
    for r, x in enumerate(ids_list):
        ids[r, : len(x)] = torch.from_numpy(np.asarray(x, dtype=np.int64))
        mask[r, : len(x)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def is_causal(spec):
    """Whether the language model of ``spec`` is causal: the outputs at the first tokens do not
    change when a token is appended."""
    import torch

    from neuroprobe.models.hooks import first_tensor

    tokenizer = spec.preprocess.tokenizer
    ids = np.arange(4, dtype=np.int64) % max(len(tokenizer), 1)
    device = next(spec.module.parameters()).device
    with torch.no_grad():
        short = first_tensor(spec.module(_batch([ids[:3]], 0, device)))
        full = first_tensor(spec.module(_batch([ids], 0, device)))
    return bool(torch.allclose(short[0], full[0, :3], rtol=1e-4, atol=1e-5))


def _raw_module(spec, name):
    """The library module behind a token tap (``token_taps.h_0`` -> ``h.0``), else ``name``."""
    tap = dict(spec.module.named_modules()).get(name)
    for module_name, module in spec.module.named_modules():
        if tap is not None and module.__dict__.get("_neuroprobe_token_tap") is tap:
            return module_name
    return name


def _windows(starts, stops, context, max_tokens):
    """``(first token, stop token, truncated?)`` of each word's window in its run."""
    n = len(starts)
    k = np.arange(n)
    first_word = np.zeros(n, dtype=np.int64) if context is None else np.maximum(k - context, 0)
    lo = starts[first_word]
    hi = stops
    cut = hi - lo > max_tokens
    lo = np.where(cut, hi - max_tokens, lo)
    return lo, hi, cut


def _check(spec, word_pooling, max_tokens, context):
    """The model's token limit as the window cap: ``max_tokens`` checked against it."""
    if spec.modality != "text" or not hasattr(spec.preprocess, "tokenizer"):
        raise ModelError(
            f"word features need a language model ('hf:<folder or repo id>' of a model taking "
            f"input_ids); model {spec.name!r} takes {spec.modality} stimuli"
        )
    if word_pooling not in WORD_POOLINGS:
        raise ModelError(f"word_pooling must be one of {WORD_POOLINGS}, got {word_pooling!r}")
    limit = int(spec.preprocess.max_length)
    if max_tokens is None:
        max_tokens = limit
    elif int(max_tokens) > limit:
        raise ModelError(
            f"max_tokens={max_tokens} is longer than model {spec.name!r} allows ({limit} tokens, "
            "its maximum length); pass max_tokens <= that"
        )
    if context is not None and int(context) < 0:
        raise ModelError(f"context must be a number of preceding words >= 0 or None, got {context}")
    return int(max_tokens)


def _plan(spec, transcript, context, max_tokens):
    """Per run: ``(ids, starts, stops, lo, hi, index)`` of every word's window, and the
    truncated words ``(run label, word, kept tokens, context tokens)``."""
    tokenizer = spec.preprocess.tokenizer
    runs, truncated = [], []
    for label, index in transcript.run_slices():
        ids, starts, stops = word_token_spans(tokenizer, transcript.words[index])
        too_long = np.flatnonzero(stops - starts > max_tokens)
        if too_long.size:
            k = int(too_long[0])
            raise ModelError(
                f"word {int(index[k])} ({str(transcript.words[index[k]])!r}) alone has "
                f"{int(stops[k] - starts[k])} tokens, more than max_tokens={max_tokens}"
            )
        lo, hi, cut = _windows(starts, stops, None if context is None else int(context),
                               max_tokens)
        label = label.item() if hasattr(label, "item") else label
        truncated.extend((label, int(index[k]), int(stops[k] - lo[k]),
                          int(stops[k] - (starts[0] if context is None else
                                          starts[max(k - int(context), 0)])))
                         for k in np.flatnonzero(cut))
        runs.append((ids, starts, stops, lo, hi, index))
    return runs, truncated


def _truncation(truncated, n, max_tokens):
    """The one :class:`TruncationWarning` of the truncated words (None when none is)."""
    if not truncated:
        return None
    first = truncated[0]
    return TruncationWarning(
        f"the contexts of {len(truncated)} of {n} words are longer than max_tokens="
        f"{max_tokens} tokens: their earliest tokens were dropped (e.g. word {first[1]} "
        f"of run {first[0]!r} keeps {first[2]} of its {first[3]} context tokens)",
        [(f"word {t[1]}", t[3]) for t in truncated], max_tokens,
    )


def truncated_contexts(spec, transcript, *, context=None, max_tokens=None):
    """The :class:`~neuroprobe.exceptions.TruncationWarning` :func:`word_features` gives for
    these words and settings (which words lose how many context tokens), or None; tokenises
    only, no forward pass (a writer in chunks reports it once)."""
    max_tokens = _check(spec, "last", max_tokens, context)
    _, truncated = _plan(spec, transcript, context, max_tokens)
    return _truncation(truncated, len(transcript), max_tokens)


def word_features(spec, transcript, layers, *, context=None, max_tokens=None,
                  word_pooling="last", batch_size=16, rows=None, warn=True):
    """Per-word features of a language model (see the module docstring).

    Parameters
    ----------
    spec : ModelSpec
        A language model of :mod:`neuroprobe.models.hf_source` (``modality == "text"``).
    transcript : Transcript
        Words and runs (:class:`neuroprobe.io.transcript.Transcript`).
    layers : list of str
        Module names or aliases with token outputs (``block0``, ``h.3``, ``norm`` ...).
    context : int or None
        Preceding words of the same run each word is seen with; ``None``: the whole run so far.
    max_tokens : int or None
        Most tokens in a window (default and upper bound: the model's maximum length).
    word_pooling : {"last", "mean"}
        The word's last subword token, or the mean of its subword tokens.
    batch_size : int
        Windows per forward pass.
    rows : array-like of int, optional
        Compute only these words (increasing indices into ``transcript``), each still seen with
        its context from the whole transcript (how a file is written in resumable chunks).
    warn : bool, default=True
        Issue the :class:`~neuroprobe.exceptions.TruncationWarning` of the computed words
        (:func:`truncated_contexts` gives it for a whole transcript).

    Returns
    -------
    dict of str -> ndarray of float32, shape (n_rows, n_channels)
        One array per layer (as given), rows in transcript order (``rows`` when given).
    """
    import torch

    from neuroprobe.models.hooks import capture
    from neuroprobe.models.layers import resolve_layer

    max_tokens = _check(spec, word_pooling, max_tokens, context)
    tokenizer = spec.preprocess.tokenizer
    pad_id = tokenizer.pad_token_id or 0
    modules = [_raw_module(spec, resolve_layer(spec, layer)) for layer in layers]
    wanted = list(dict.fromkeys(modules))
    causal = is_causal(spec)
    device = next(spec.module.parameters()).device
    n_all = len(transcript)
    row_of = np.arange(n_all)  # word index -> output row (-1: not computed)
    if rows is not None:
        rows = np.asarray(rows, dtype=np.int64).ravel()
        if rows.size and (np.any(np.diff(rows) <= 0) or rows[0] < 0 or rows[-1] >= n_all):
            raise ValueError(f"rows must be increasing word indices in [0, {n_all}); got {rows}")
        row_of = np.full(n_all, -1, dtype=np.int64)
        row_of[rows] = np.arange(rows.size)
    n = n_all if rows is None else int(rows.size)
    runs, truncated = _plan(spec, transcript, context, max_tokens)
    truncated = [t for t in truncated if row_of[t[1]] >= 0]
    passes = []  # (run ids, lo, hi, output rows, word starts, word stops)
    for ids, starts, stops, lo, hi, index in runs:
        keep = np.flatnonzero(row_of[index] >= 0)
        if causal:  # one pass per window start: every word starting there is read from it
            for start in np.unique(lo[keep]):
                members = keep[lo[keep] == start]
                passes.append((ids, int(start), int(hi[members].max()), row_of[index[members]],
                               starts[members], stops[members]))
        else:
            for k in keep:
                passes.append((ids, int(lo[k]), int(hi[k]), row_of[index[[k]]], starts[[k]],
                               stops[[k]]))
    warning = _truncation(truncated, n, max_tokens) if warn else None
    if warning is not None:
        warnings.warn(warning, stacklevel=2)
    order = sorted(range(len(passes)), key=lambda j: passes[j][1] - passes[j][2])  # longest first
    out = {m: None for m in wanted}
    with torch.no_grad(), capture(spec.module, wanted, stop=True, repeat="error") as cap:
        for b in range(0, len(order), int(batch_size)):
            chunk = [passes[j] for j in order[b : b + int(batch_size)]]
            cap.run(_batch([p[0][p[1] : p[2]] for p in chunk], pad_id, device))
            for m in wanted:
                tokens = cap[m]
                if out[m] is None:
                    out[m] = np.empty((n, tokens.shape[-1]), dtype=np.float32)
                for r, (_, lo, _, words, w_starts, w_stops) in enumerate(chunk):
                    a = torch.from_numpy(w_starts - lo)
                    z = torch.from_numpy(w_stops - lo)
                    if word_pooling == "last":
                        rows_r = tokens[r, z - 1]
                    else:
                        cums = tokens[r].double().cumsum(0)
                        cums = torch.cat([cums.new_zeros(1, cums.shape[-1]), cums])
                        rows_r = ((cums[z] - cums[a]) / (z - a)[:, None].double()).to(
                            tokens.dtype)
                    out[m][words] = rows_r.float().cpu().numpy()
    for m in wanted:
        if out[m] is None:  # no word computed (rows empty)
            out[m] = np.empty((0, 0), dtype=np.float32)
    return {layer: out[m] for layer, m in zip(layers, modules)}
