"""RDM files: roundtrip, atomic writes, DNNBrain import."""

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from neuroprobe.io.rdm import load_rdms, lower_to_condensed, read_dnnbrain_rdm, save_rdms


def test_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    rdms = np.stack([pdist(rng.standard_normal((6, 3))) for _ in range(2)]).astype(np.float32)
    path = save_rdms(tmp_path / "x.rdm.h5", rdms, names=["conv1", "fc8"],
                     stim_ids=[f"s{i}" for i in range(6)], metric="correlation",
                     attrs={"layers": ["conv1", "fc8"], "seed": 3})
    data = load_rdms(path)
    np.testing.assert_array_equal(data.rdms, rdms)
    assert data.rdms.dtype == np.float32
    assert data.names == ["conv1", "fc8"]
    assert list(data.stim_ids) == [f"s{i}" for i in range(6)]
    assert data.attrs["metric"] == "correlation"
    assert data.n_stimuli == 6
    np.testing.assert_array_equal(data["fc8"], rdms[1])
    with pytest.raises(KeyError, match="available"):
        data["fc7"]
    # a square RDM is stored condensed
    save_rdms(tmp_path / "sq.rdm.h5", squareform(rdms[0]))
    np.testing.assert_allclose(load_rdms(tmp_path / "sq.rdm.h5").rdms[0], rdms[0])


def test_describe(tmp_path):
    from neuroprobe.io import describe

    save_rdms(tmp_path / "a.rdm.h5", pdist(np.eye(4)), names=["IT"], stim_ids=list("abcd"),
              metric="euclidean")
    text = describe(tmp_path / "a.rdm.h5")
    assert "1 RDM(s) of 4 stimuli" in text and "IT" in text and "euclidean" in text


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "bad.rdm.h5"
    with pytest.raises(ValueError, match="stim_ids"):
        save_rdms(target, pdist(np.eye(4)), stim_ids=["a", "b"])
    assert list(tmp_path.iterdir()) == []


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_rdms(tmp_path / "nope.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.ones(3)
    with pytest.raises(ValueError, match="neither a neuroprobe RDM file"):
        load_rdms(tmp_path / "other.h5")


def _write_dnnbrain(path, rdm_type, rdm_dict):
    # layout of dnnbrain.io.fileio.RdmFile.write
    with h5py.File(path, "w") as wf:
        wf.attrs["type"] = rdm_type
        for k, v in rdm_dict.items():
            wf.create_dataset(k, data=v, compression="gzip")


def test_dnnbrain_lower_triangle_import(tmp_path):
    rng = np.random.default_rng(1)
    n = 7
    squares = [squareform(pdist(rng.standard_normal((n, 3)))) for _ in range(3)]
    tri = np.tri(n, k=-1, dtype=bool)  # DNNBrain keeps rdm[tri]
    _write_dnnbrain(tmp_path / "b.rdm.h5", "bRDM", {"V1": squares[0][tri], "IT": squares[1][tri]})
    data = load_rdms(tmp_path / "b.rdm.h5")
    assert data.attrs["type"] == "bRDM"
    assert sorted(data.names) == ["IT", "V1"]
    np.testing.assert_allclose(data["V1"], squareform(squares[0]))
    np.testing.assert_allclose(data["IT"], squareform(squares[1]))

    _write_dnnbrain(tmp_path / "d.rdm.h5", "dRDM",
                    {"conv5": np.stack([squares[1][tri], squares[2][tri]])})
    data = read_dnnbrain_rdm(tmp_path / "d.rdm.h5")
    assert data.names == ["conv5#0", "conv5#1"]
    np.testing.assert_allclose(data.rdms[1], squareform(squares[2]))
    np.testing.assert_allclose(lower_to_condensed(squares[2][tri]), squareform(squares[2]))

    _write_dnnbrain(tmp_path / "x.rdm.h5", "zRDM", {"a": np.ones(3)})
    with pytest.raises(ValueError, match="bRDM"):
        read_dnnbrain_rdm(tmp_path / "x.rdm.h5")
