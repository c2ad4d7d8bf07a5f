"""Transcripts: the CSV (word, onset, offset, run), runs, and a word list without onsets."""

import numpy as np
import pytest

from neuroprobe.exceptions import StimulusError
from neuroprobe.io.transcript import Transcript, read_transcript


def test_transcript_csv_and_missing_onsets(tmp_path):
    path = tmp_path / "story.csv"
    path.write_text("word,onset,offset,run\nthe,0.5,0.7,1\ncat,0.7,1.0,1\nsat,0.2,0.4,2\n")
    tr = read_transcript(path)
    assert tr.words.tolist() == ["the", "cat", "sat"] and tr.onsets.tolist() == [0.5, 0.7, 0.2]
    assert tr.runs.tolist() == [1, 1, 2]
    (tmp_path / "bare.csv").write_text("word\nthe\ncat\n")
    with pytest.raises(StimulusError, match="missing required column.*'onset'"):
        read_transcript(tmp_path / "bare.csv")
    bare = read_transcript(tmp_path / "bare.csv", require_onsets=False)
    with pytest.raises(StimulusError, match="has no onsets; .*one onset per word"):
        _ = bare.onsets


def test_transcript_checks_and_runs():
    tr = Transcript(["a", "b", "c", "d"], onsets=[0, 1, 0, 1], runs=["s2", "s2", "s1", "s1"])
    assert [(label, idx.tolist()) for label, idx in tr.run_slices()] == [("s2", [0, 1]),
                                                                        ("s1", [2, 3])]
    sub = tr[[1, 2]]
    assert sub.words.tolist() == ["b", "c"] and sub.onsets.tolist() == [1.0, 0.0]
    with pytest.raises(StimulusError, match="3 onsets for 4 words"):
        Transcript(["a", "b", "c", "d"], onsets=[0, 1, 2])
    with pytest.raises(StimulusError, match="word 1 is empty"):
        Transcript(["a", " "])
    with pytest.raises(StimulusError, match="onsets must be finite"):
        Transcript(["a"], onsets=[np.nan])
