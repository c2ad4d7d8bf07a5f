"""Result objects of neuroprobe.inspect own their save(folder): the files the CLI writes."""

import csv

import h5py
import numpy as np

from neuroprobe.inspect.ablation import LesionResult
from neuroprobe.inspect.saliency import SaliencyMaps
from neuroprobe.inspect.synthesis import OptimalStimulus
from neuroprobe.inspect.top_stimuli import TopStimuli
from neuroprobe.inspect.units import Unit as Target


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_top_stimuli_save_round_trip(tmp_path):
    res = TopStimuli(layer="conv1", units=[0, 3], indices=np.array([[2, 0], [1, 2]]),
                     values=np.array([[0.9, 0.5], [2.0, -1.25]]),
                     ids=np.array([["c", "a"], ["b", "c"]]), metric="mean")
    (path,) = res.save(tmp_path)
    rows = _rows(path)
    assert path.name == "top_stimuli.csv" and len(rows) == 4
    assert [(r["unit"], r["rank"], r["stim_id"]) for r in rows] == [
        ("0", "1", "c"), ("0", "2", "a"), ("3", "1", "b"), ("3", "2", "c")]
    np.testing.assert_array_equal([float(r["value"]) for r in rows], res.values.ravel())
    np.testing.assert_array_equal([int(r["index"]) for r in rows], res.indices.ravel())


def test_lesion_save_round_trip(tmp_path):
    res = LesionResult(layer="conv2", channels=np.array([1, 4]), baseline=1.0,
                       scores=np.array([0.75, 0.125]), delta=np.array([-0.25, -0.875]))
    (path,) = res.save(tmp_path)
    rows = _rows(path)
    assert path.name == "lesion.csv"
    assert [int(r["channel"]) for r in rows] == [1, 4]
    np.testing.assert_array_equal([float(r["delta"]) for r in rows], res.delta)
    np.testing.assert_array_equal([float(r["score"]) for r in rows], res.scores)


def test_optimal_stimulus_save_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    res = OptimalStimulus(images=rng.random((2, 3, 4, 4)), inputs=rng.standard_normal((2, 3, 4, 4)),
                          trace=rng.standard_normal((5, 2)),
                          targets=[Target("conv1", 0), Target("conv1", 7)])
    csv_path, h5_path = res.save(tmp_path, {"layer": "conv1", "metric": "max"})
    rows = _rows(csv_path)
    assert list(rows[0]) == ["step", "conv1:c0", "conv1:c7"] and len(rows) == 5
    np.testing.assert_allclose([float(r["conv1:c7"]) for r in rows], res.trace[:, 1])
    with h5py.File(h5_path) as f:
        np.testing.assert_array_equal(f["images"][()], res.images)
        np.testing.assert_array_equal(f["inputs"][()], res.inputs)
        np.testing.assert_array_equal(f["trace"][()], res.trace)
        assert f["channels"][()].tolist() == [0, 7]
        assert f.attrs["layer"] == "conv1" and f.attrs["metric"] == "max"


def test_saliency_save_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    maps = rng.standard_normal((2, 3, 1, 4, 4))
    res = SaliencyMaps(maps, images=None, targets=[Target("fc", 2), Target("fc", 5)],
                       method="vanilla", metric="mean")
    (path,) = res.save(tmp_path, stim_ids=["a", "b", "c"], attrs={"layer": "fc"})
    with h5py.File(path) as f:
        assert sorted(f) == ["c2", "c5", "stim_ids"]
        np.testing.assert_array_equal(f["c5"][()], maps[1])
        assert [s.decode() for s in f["stim_ids"][()]] == ["a", "b", "c"]
        assert (f.attrs["method"], f.attrs["metric"], f.attrs["layer"]) == ("vanilla", "mean",
                                                                            "fc")
    one = SaliencyMaps(maps[0], targets=[Target("fc", 2)], method="guided", metric="max")
    (path,) = one.save(tmp_path / "one")
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["c2"][()], maps[0])
