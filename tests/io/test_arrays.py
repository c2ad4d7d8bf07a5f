"""neuroprobe.io.arrays: one FILE:KEY rule, column and array readers, atomic writers."""

import csv

import h5py
import numpy as np
import pytest

from neuroprobe.io.arrays import (
    read_arrays,
    read_column,
    read_target_array,
    split_spec,
    write_array,
    write_h5,
    write_table,
)


def test_split_spec_rules(tmp_path):
    assert split_spec("betas.h5:Y") == ("betas.h5", "Y")
    assert split_spec("betas.h5") == ("betas.h5", None)
    assert split_spec("betas.h5", default="Y") == ("betas.h5", "Y")
    assert split_spec("a:b.h5:KEY") == ("a:b.h5", "KEY")  # the last colon splits
    assert split_spec("betas.h5:") == ("betas.h5", None)
    # a Windows drive letter is not a key
    assert split_spec(r"C:\data\x.npy") == (r"C:\data\x.npy", None)
    assert split_spec(r"C:\data\x.h5:Y") == (r"C:\data\x.h5", "Y")
    # an existing file whose name has a colon is taken whole
    odd = tmp_path / "odd:name.npy"
    np.save(odd, np.zeros(2))
    assert split_spec(str(odd)) == (str(odd), None)


def test_read_column_numbers_strings_and_alignment(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("stim_id,value,label\ns2,3.5,c\ns0,1,a\ns1,2,b\n")
    np.testing.assert_array_equal(read_column(f"{path}:label", ["s0", "s1", "s2"]),
                                  ["a", "b", "c"])
    values = read_column(f"{path}:value", ["s0", "s1", "s2"])
    assert values.dtype.kind == "f"
    np.testing.assert_array_equal(values, [1.0, 2.0, 3.5])
    assert read_column(f"{path}:value", ["s0"], numeric=False).tolist() == ["1"]
    warned = []
    np.testing.assert_array_equal(read_column(f"{path}:label", warn=warned.append),
                                  ["c", "a", "b"])  # no IDs: by position, with a warning
    assert len(warned) == 1 and "stim_id" in warned[0]
    with pytest.raises(KeyError, match="columns: stim_id, value, label"):
        read_column(f"{path}:nope")
    with pytest.raises(FileNotFoundError, match="--groups: file not found"):
        read_column(f"{tmp_path / 'missing.csv'}:x", what="--groups")
    with pytest.raises(ValueError, match="missing"):
        read_column(f"{path}:label", ["s0", "missing"])


def test_read_column_tsv_npy_txt(tmp_path):
    (tmp_path / "e.tsv").write_text("onset\tcond\n0\tx\n1\ty\n")
    assert read_column(f"{tmp_path / 'e.tsv'}:cond").tolist() == ["x", "y"]
    np.save(tmp_path / "v.npy", np.arange(3))
    np.testing.assert_array_equal(read_column(tmp_path / "v.npy"), [0, 1, 2])
    (tmp_path / "v.txt").write_text("a\nb\n")
    assert read_column(tmp_path / "v.txt").tolist() == ["a", "b"]


def test_read_arrays_formats(tmp_path):
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    np.save(tmp_path / "a.npy", A)
    np.testing.assert_array_equal(read_arrays(tmp_path / "a.npy")["a"], A)
    np.savez(tmp_path / "ab.npz", A=A, B=B, v=np.zeros(4))
    got = read_arrays(tmp_path / "ab.npz")
    assert list(got) == ["A", "B"]  # 1-D arrays are not read by default
    np.testing.assert_array_equal(got["B"], B)
    write_h5(tmp_path / "ab.h5", {"A": A, "v": np.zeros(4)})
    assert list(read_arrays(tmp_path / "ab.h5")) == ["A"]
    assert list(read_arrays(tmp_path / "ab.h5", ["v"])) == ["v"]
    with pytest.raises(KeyError, match="no dataset 'C'"):
        read_arrays(tmp_path / "ab.h5", ["C"])
    with pytest.raises(ValueError, match="one array"):
        read_arrays(tmp_path / "a.npy", ["x"])


def test_read_target_array(tmp_path):
    Y = np.arange(12.0).reshape(4, 3)
    ids = np.array(["a", "b", "c", "d"])
    np.savez(tmp_path / "t.npz", Y=Y, stim_ids=ids)
    got, got_ids = read_target_array(tmp_path / "t.npz")
    np.testing.assert_array_equal(got, Y)
    assert got_ids.tolist() == ids.tolist()
    write_h5(tmp_path / "t.h5", {"Y": Y, "stim_ids": ids})
    dset, got_ids = read_target_array(tmp_path / "t.h5")
    try:
        np.testing.assert_array_equal(dset[:, :], Y)
        assert got_ids.tolist() == ids.tolist()
    finally:
        dset.file.close()
    np.save(tmp_path / "t.npy", Y)
    got, got_ids = read_target_array(tmp_path / "t.npy")
    assert got_ids is None and isinstance(got, np.memmap)
    with pytest.raises(KeyError, match="'Z' not in"):
        read_target_array(tmp_path / "t.npz", "Z")


def test_writers_round_trip_and_are_atomic(tmp_path):
    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    out = write_table(tmp_path / "t.csv", rows)
    with open(out, newline="") as fh:
        assert list(csv.DictReader(fh)) == [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}]
    write_table(tmp_path / "s.csv", [[1, 2]], ["p", "q"])
    assert (tmp_path / "s.csv").read_text().splitlines() == ["p,q", "1,2"]
    v = np.array([0.5, np.nan, 2.0])
    np.testing.assert_array_equal(np.load(write_array(tmp_path / "m.npy", v)), v)
    np.testing.assert_array_equal(np.loadtxt(write_array(tmp_path / "m.csv", v), delimiter=","),
                                  v)
    write_h5(tmp_path / "d.h5", {"x": np.ones((40, 40)), "g/s": np.array(["a", "b"])},
             {"layer": "conv1"})
    with h5py.File(tmp_path / "d.h5") as f:
        assert f["x"].compression == "gzip" and f.attrs["layer"] == "conv1"
        assert [s.decode() for s in f["g/s"][()]] == ["a", "b"]
    # a failed write leaves the old file and no temporary file
    with pytest.raises(TypeError):
        write_h5(tmp_path / "d.h5", {"bad": np.array([object()])})
    with h5py.File(tmp_path / "d.h5") as f:
        assert sorted(f) == ["g", "x"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_read_column_of_an_act_h5_file_aligned_by_its_stim_ids(tmp_path):
    """Columns stored beside the activations (``neuroprobe words``) read as FILE:NAME."""
    from neuroprobe.io.activations import ActivationWriter, open_activations

    path = tmp_path / "w.act.h5"
    onsets = np.array([0.25, 1.5, 3.125])
    writer = ActivationWriter(path, ["w0", "w1", "w2"], layers=["a"],
                              columns={"onset": onsets, "run": np.array(["2", "2", "x"]),
                                       "word": np.array(["é", "b", "c"])})
    writer.ensure_layer("a", (2,))
    writer.write(0, {"a": np.zeros((3, 2), np.float32)})
    writer.finish()
    np.testing.assert_array_equal(read_column(f"{path}:onset"), onsets)  # float64, exactly
    # rows put in the order of the given IDs, as for a CSV with a stim_id column
    np.testing.assert_array_equal(read_column(f"{path}:onset", ["w2", "w0"]), onsets[[2, 0]])
    assert read_column(f"{path}:run").tolist() == ["2", "2", "x"]  # not all numbers: strings
    assert read_column(f"{path}:word", numeric=False).tolist() == ["é", "b", "c"]
    with open_activations(path) as f:
        assert f.columns == ["onset", "run", "word"]
        np.testing.assert_array_equal(f.column("onset"), onsets)
        with pytest.raises(KeyError, match="its columns: onset, run, word"):
            f.column("offset")
    with pytest.raises(KeyError, match="1-D columns in it: onset, run, word"):
        read_column(f"{path}:offset", what="--times")
    with pytest.raises(ValueError, match="not in --labels .*first: .w9."):
        read_column(f"{path}:onset", ["w9"])
