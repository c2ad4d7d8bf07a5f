"""io/stimulus_table and io/dnnbrain: file formats that return columns, never a StimulusSet."""

import subprocess
import sys

import numpy as np
import pytest

from neuroprobe.exceptions import StimulusError
from neuroprobe.io import dnnbrain, stimulus_table


def test_io_does_not_import_stimuli():
    code = (
        "import sys, neuroprobe.io.stimulus_table, neuroprobe.io.dnnbrain; "
        "print('neuroprobe.stimuli' in sys.modules, 'neuroprobe.media' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_parse_column_types():
    assert stimulus_table.parse_column("a", ["1", "-2", "3"]).dtype == np.int64
    with_gap = stimulus_table.parse_column("a", ["1", "", "3"])
    np.testing.assert_array_equal(with_gap, [1.0, np.nan, 3.0])
    assert with_gap.dtype == np.float64
    np.testing.assert_array_equal(stimulus_table.parse_column("a", ["1.5", "nan", "2e3"]),
                                  [1.5, np.nan, 2000.0])
    text = stimulus_table.parse_column("a", ["x", "", "1"])
    assert text.dtype.kind == "U" and text.tolist() == ["x", "", "1"]
    assert np.isnan(stimulus_table.parse_column("a", ["", ""])).all()
    assert stimulus_table.parse_column("onset", ["1", "2"], force_float=True).dtype == np.float64
    with pytest.raises(StimulusError, match=r"t\.csv: column 'onset' must be numeric.*line 3"):
        stimulus_table.parse_column("onset", ["1", "x"], force_float=True, source="t.csv",
                                    lines=[2, 3])


def test_read_table_returns_text_columns(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("stim_id\tpath\tlabel\n\n a \tx.png\t1\t\nb\ty.png\t2\n", encoding="utf-8")
    table = stimulus_table.read_table(path, required=("stim_id", "path"))
    assert table.columns == {"stim_id": ["a", "b"], "path": ["x.png", "y.png"],
                             "label": ["1", "2"]}
    assert table.lines == [3, 4] and table.source == str(path)
    bad = tmp_path / "bad.csv"
    bad.write_text("stim_id,path\na,\n", encoding="utf-8")
    with pytest.raises(StimulusError, match=r"empty 'path' cell on line\(s\) '2'"):
        stimulus_table.read_table(bad, required=("stim_id", "path"))


def test_write_table_round_trips_through_read_table(tmp_path):
    path = tmp_path / "out.csv"
    values = [0.1 + 0.2, np.nan, np.int64(7)]
    stimulus_table.write_table(path, ["stim_id", "a", "b", "c"], [["s1", *values]])
    table = stimulus_table.read_table(path)
    parsed = stimulus_table.parse_columns({k: v for k, v in table.columns.items()
                                           if k != "stim_id"})
    assert parsed["a"][0] == 0.1 + 0.2  # full precision
    assert np.isnan(parsed["b"][0]) and parsed["c"].dtype == np.int64 and parsed["c"][0] == 7


def test_read_stim_parts(tmp_path):
    (tmp_path / "imgs").mkdir()
    path = tmp_path / "x.stim.csv"
    path.write_text("type=image\npath=imgs\ntitle=t\ndata=stimID,label,condition,RT\n"
                    "a.png,1,cat,0.5\nsub\\b.png,0,dog,1\n", encoding="utf-8")
    stim = dnnbrain.read_stim(path)
    assert isinstance(stim, dnnbrain.DNNBrainStim)
    assert stim.kind == "image" and stim.info == {"type": "image", "path": "imgs", "title": "t"}
    assert stim.root == str(tmp_path / "imgs") and stim.stim_ids == ["a.png", "sub\\b.png"]
    assert stim.attributes["label"].dtype == np.int64
    assert stim.attributes["condition"].tolist() == ["cat", "dog"]
    assert stim.attributes["RT"].dtype == np.float64  # DNNBrain: float, even for integers
    assert stim.lines == [5, 6]
    video = tmp_path / "v.stim.csv"
    video.write_text("type=video\npath=clip.mp4\ndata=stimID,onset\n2,0\n1,1\n", encoding="utf-8")
    vstim = dnnbrain.read_stim(video)
    assert vstim.attributes["frame"].tolist() == [2, 1]
    assert vstim.paths() == [str(tmp_path / "clip.mp4")] * 2
    video.write_text("type=video\npath=clip.mp4\ndata=stimID\n0\n", encoding="utf-8")
    with pytest.raises(StimulusError, match="1-based frame number; line 4 has '0'"):
        dnnbrain.read_stim(video)
