"""align_ids and read_ids: one alignment rule for every join of two per-stimulus sources."""

import numpy as np
import pytest

from neuroprobe.io.ids import align_ids, read_ids


def test_align_ids_reorders_and_refuses():
    ref = ["a", "b", "c", "d"]
    other = ["d", "b", "a", "c"]
    idx = align_ids(ref, other)
    assert [other[i] for i in idx] == ref
    assert align_ids([3, 1], ["1", "2", "3"], subset=True).tolist() == [2, 0]  # compared as str
    with pytest.raises(ValueError, match=r"1 stimuli of model are not in target \(first: 'd'\); "
                                         r"1 stimuli of target are not in model \(first: 'e'\)"):
        align_ids(ref, ["a", "b", "c", "e"], what="target", reference="model")
    with pytest.raises(ValueError, match="1 stimuli of target are not in reference"):
        align_ids(ref, ref + ["z"], what="target")
    align_ids(ref, ref + ["z"], subset=True)  # a lookup table may hold more stimuli
    with pytest.raises(ValueError, match="duplicate stimulus IDs.*'b'"):
        align_ids(ref, ["a", "b", "b", "c"])


def test_read_ids_from_every_kind_of_file(tmp_path):
    import h5py

    ids = np.array(["s2", "s0", "s1"])
    np.save(tmp_path / "ids.npy", ids)
    np.savez(tmp_path / "t.npz", Y=np.zeros((3, 2)), stim_ids=ids, other=ids[::-1])
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f["stim_ids"] = ids.astype("S")
    (tmp_path / "ids.txt").write_text("s2\ns0\ns1\n")
    (tmp_path / "stim.csv").write_text("stim_id,cat\ns2,x\ns0,y\ns1,x\n")
    (tmp_path / "events.tsv").write_text("onset\tduration\tstim_file\n0\t1\ts2\n2\t1\ts0\n"
                                         "4\t1\ts1\n")
    for spec in ["ids.npy", "t.npz", "t.h5", "ids.txt", "stim.csv", "events.tsv:stim_file"]:
        assert read_ids(f"{tmp_path}/{spec}").tolist() == ids.tolist(), spec
    assert read_ids(f"{tmp_path / 't.npz'}:other").tolist() == ids[::-1].tolist()
    with pytest.raises(KeyError, match="no column 'stim_id'.*onset, duration, stim_file"):
        read_ids(tmp_path / "events.tsv")
    with pytest.raises(FileNotFoundError, match="--target-ids: file not found"):
        read_ids(tmp_path / "nope.npy", "--target-ids")
