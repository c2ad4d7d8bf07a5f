"""Transcripts of naturalistic language stimuli: one row per word with its timing.

CSV format (read with :func:`neuroprobe.io.stimulus_table.read_table`: UTF-8, ``.tsv``
tab-separated)::

    word,onset,offset,run
    Once,0.52,0.80,1
    upon,0.80,1.01,1

``word`` is required; ``onset`` and ``offset`` are seconds from the start of the word's run (its
first scan); ``run`` (any label) groups words into runs / stories, whose contexts never mix.
Without ``run`` every word is in one run. Onsets are needed to bring word features to the scan
grid (:class:`~neuroprobe.transformers.TimeResampler`); :attr:`Transcript.onsets` of a word list
without them raises :class:`~neuroprobe.exceptions.StimulusError`.
"""

from __future__ import annotations

import numpy as np

from neuroprobe.exceptions import StimulusError

__all__ = ["Transcript", "read_transcript"]


class Transcript:
    """Words with their onsets, offsets and runs (the input of word features).

    Parameters
    ----------
    words : sequence of str
    onsets, offsets : array-like of float, optional
        Seconds from the start of each word's run.
    runs : array-like, optional
        Run label of each word (default: one run ``0``).
    source : str, optional
        Where the words came from (named in errors).
    """

    def __init__(self, words, onsets=None, offsets=None, runs=None, source="the word list"):
        if isinstance(words, str):
            raise StimulusError("words must be a sequence of words, got one string")
        self.words = np.array([str(w) for w in words], dtype=str)
        n = len(self.words)
        if n == 0:
            raise StimulusError(f"{source} holds no words")
        empty = np.flatnonzero(np.char.strip(self.words) == "")
        if empty.size:
            raise StimulusError(f"{source}: word {int(empty[0])} is empty")
        self.source = source
        self._onsets = _times(onsets, n, "onsets", source)
        self.offsets = _times(offsets, n, "offsets", source)
        self.runs = np.zeros(n, dtype=np.int64) if runs is None else np.asarray(runs)
        if self.runs.shape != (n,):
            raise StimulusError(f"{source}: {self.runs.shape[0]} run labels for {n} words")

    def __len__(self):
        return len(self.words)

    def __getitem__(self, key):
        """A sub-transcript (int, slice, indices or mask)."""
        index = np.atleast_1d(np.arange(len(self))[key])
        onsets = None if self._onsets is None else self._onsets[index]
        offsets = None if self.offsets is None else self.offsets[index]
        return Transcript(self.words[index], onsets, offsets, self.runs[index],
                          source=self.source)

    @property
    def onsets(self):
        """Word onsets (float64 seconds); :class:`StimulusError` when the words have none."""
        if self._onsets is None:
            raise StimulusError(
                f"{self.source} has no onsets; bringing word features to the scans needs one "
                "onset per word: give a transcript with an 'onset' column (word, onset, offset, "
                "run) or Transcript(words, onsets=...)"
            )
        return self._onsets

    @property
    def has_onsets(self):
        return self._onsets is not None

    def run_slices(self):
        """``[(label, indices), ...]``: the words of each run, runs in order of appearance."""
        labels, first = np.unique(self.runs, return_index=True)
        return [(label, np.flatnonzero(self.runs == label)) for label in labels[np.argsort(first)]]

    def __repr__(self):
        return (f"Transcript(n_words={len(self)}, n_runs={len(np.unique(self.runs))}, "
                f"onsets={'yes' if self.has_onsets else 'no'})")


def _times(values, n, name, source):
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (n,):
        raise StimulusError(f"{source}: {values.shape[0]} {name} for {n} words")
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise StimulusError(f"{source}: {name} must be finite numbers (word {bad} is not)")
    return values


def read_transcript(path, *, require_onsets=True):
    """Read a transcript CSV (format in the module docstring).

    Parameters
    ----------
    path : str or path-like
    require_onsets : bool, default=True
        Raise when there is no ``onset`` column.

    Returns
    -------
    Transcript
    """
    from neuroprobe.io.stimulus_table import parse_columns, read_table

    required = ("word", "onset") if require_onsets else ("word",)
    table = read_table(path, required=required)
    columns = parse_columns(
        {k: v for k, v in table.columns.items() if k in ("onset", "offset", "run")},
        float_columns=("onset", "offset"), source=table.source, lines=table.lines,
    )
    words = table.columns["word"]
    return Transcript(words, columns.get("onset"), columns.get("offset"), columns.get("run"),
                      source=table.source)
