""".act.h5 files: round trip, streamed extraction, crash + resume, ActivationReader."""

import h5py
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from torch import nn

from neuroprobe.io import activations as act
from neuroprobe.io.activations import open_activations, write_activations
from neuroprobe.models import LayerError
from neuroprobe.transformers.extraction import ActivationReader, DNNFeatureExtractor


def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3),
        nn.ReLU(inplace=True),
        nn.Conv2d(6, 5, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(20, 7),
    )


@pytest.fixture
def data():
    return torch.randn(11, 3, 12, 12, generator=torch.Generator().manual_seed(0))


def test_write_and_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    layers = {
        "conv/a": rng.normal(size=(5, 3, 2, 2)).astype(np.float32),
        "fc": rng.normal(size=(5, 4)),
    }
    ids = [f"s{i}" for i in range(5)]
    path = write_activations(
        tmp_path / "x.act.h5",
        layers,
        ids,
        model="m",
        weights_id="w",
        preprocess={"crop": [8]},
        pooling=None,
    )
    assert not list(tmp_path.glob("*.partial"))
    with open_activations(path) as f:
        assert f.layers == ["conv/a", "fc"]
        assert list(f.stim_ids) == ids
        assert f.attrs["model"] == "m" and f.attrs["preprocess"] == {"crop": [8]}
        assert f.attrs["complete"] and f.attrs["n_done"] == 5
        np.testing.assert_array_equal(f.read("conv/a"), layers["conv/a"])
        np.testing.assert_array_equal(
            f.read("fc", [4, 0, 4]), layers["fc"][[4, 0, 4]].astype(np.float32)
        )
        assert f.read("fc").dtype == np.float32
        with pytest.raises(LayerError, match="closest match: 'fc'"):
            f.read("fcc")
    with h5py.File(path) as raw:  # pinned layout
        dset = raw["layers/conv|a"]
        assert dset.compression == "gzip" and dset.chunks is not None


def test_extract_to_file_equals_transform(tmp_path, data):
    ext = DNNFeatureExtractor(_net(), layers=["0", "4", "6"], pooling=None, batch_size=4)
    path = ext.extract_to_file(data, tmp_path / "a.act.h5")
    expected = clone(ext).fit_transform(data)
    with open_activations(path) as f:
        got = np.concatenate([f.read(la).reshape(len(data), -1) for la in f.layers], axis=1)
        assert f.layers == ["0", "4", "6"]
        assert f.layer_attrs("0")["native_shape"] == [6, 10, 10]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_resume_after_crash_equals_uninterrupted_run(tmp_path, data, monkeypatch):
    ext = DNNFeatureExtractor(
        _net(), layers=["2", "6"], pooling="max", batch_size=3, channels={"2": [4, 1]}
    )
    full = ext.extract_to_file(data, tmp_path / "full.act.h5")

    calls = {"n": 0}
    original = act.ActivationWriter.write

    def crashing(self, start, arrays):
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated kill")
        calls["n"] += 1
        original(self, start, arrays)

    monkeypatch.setattr(act.ActivationWriter, "write", crashing)
    target = tmp_path / "resumed.act.h5"
    with pytest.raises(KeyboardInterrupt):
        clone(ext).extract_to_file(data, target)
    partial = tmp_path / ("resumed.act.h5" + act.PARTIAL_SUFFIX)
    assert partial.exists() and not target.exists()
    with h5py.File(partial) as f:
        assert int(f.attrs["n_done"]) == 6 and not f.attrs["complete"]
    monkeypatch.setattr(act.ActivationWriter, "write", original)

    seen = []
    ext2 = clone(ext)
    ext2._fit_model()
    ext2.model_.module.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[0]))
    ext2.extract_to_file(data, target)
    assert sum(seen) == len(data) - 6  # only the remaining rows ran
    assert target.exists() and not partial.exists()
    with open_activations(full) as a, open_activations(target) as b:
        for layer in a.layers:
            np.testing.assert_array_equal(a.read(layer), b.read(layer))  # bit for bit
        assert b.attrs["complete"]


def test_partial_file_of_another_extraction_is_discarded(tmp_path, data):
    path = tmp_path / "a.act.h5"
    other = DNNFeatureExtractor(_net(), layers=["6"], batch_size=4)
    w = act.ActivationWriter(path, [str(i) for i in range(len(data))], model="other", layers=["x"])
    w.close()
    with pytest.warns(UserWarning, match="another extraction"):
        other.extract_to_file(data, path)
    with open_activations(path) as f:
        assert f.layers == ["6"] and f.attrs["complete"]


def test_activation_reader(tmp_path, data):
    from neuroprobe.stimuli import StimulusSet

    ext = DNNFeatureExtractor(_net(), layers=["2", "6"], pooling="mean", batch_size=4)
    stims = StimulusSet.from_array(data.numpy(), ids=[f"im{i}" for i in range(len(data))])
    path = ext.extract_to_file(stims, tmp_path / "a.act.h5")
    expected = clone(ext).fit_transform(data)
    reader = ActivationReader(path, "2").fit()
    sl = slice(0, 5)
    np.testing.assert_allclose(reader.transform(["im3", "im0"]), expected[[3, 0], sl], rtol=1e-6)
    np.testing.assert_allclose(reader.transform(np.array([3, 0])), expected[[3, 0], sl], rtol=1e-6)
    np.testing.assert_allclose(reader.transform(stims[[1, 2]]), expected[[1, 2], sl], rtol=1e-6)
    fitted = clone(ext).fit(data)
    assert list(reader.get_feature_names_out()) == list(fitted.get_feature_names_out()[sl])
    with pytest.raises(KeyError, match="im99"):
        reader.transform(["im99"])
    with pytest.raises(LayerError):
        ActivationReader(path, "7").fit()
    # grid search over layers reading the file
    y = np.arange(len(data)) % 2
    search = GridSearchCV(
        Pipeline([("reader", ActivationReader(path, "2")), ("clf", LogisticRegression())]),
        {"reader__layer": ["2", "6"]},
        cv=2,
    ).fit(np.asarray(stims.ids), y)
    assert search.best_params_["reader__layer"] in ("2", "6")


_KILLED_CHILD = r"""
import sys, time, torch
from torch import nn
sys.path.insert(0, sys.argv[3])
from test_activations import _net
from neuroprobe.transformers.extraction import DNNFeatureExtractor
net = _net()
net[0].register_forward_hook(lambda *a: time.sleep(0.3))  # slow enough to be killed mid-way
x = torch.randn(11, 3, 12, 12, generator=torch.Generator().manual_seed(0))
DNNFeatureExtractor(net, layers=["2", "6"], batch_size=2).extract_to_file(x, sys.argv[1])
"""


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path, data):
    import os
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "k.act.h5"
    partial = tmp_path / ("k.act.h5" + act.PARTIAL_SUFFIX)
    here = os.path.dirname(__file__)
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_CHILD, str(target), "x", here])
    deadline = time.time() + 120
    n_done = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            with h5py.File(partial, "r", locking=False) as f:  # the child holds it open
                n_done = int(f.attrs["n_done"])
        except (OSError, KeyError, RuntimeError):
            continue
        if n_done >= 4:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    if n_done < 4 or target.exists():
        pytest.skip("the child finished before it could be killed (machine too fast/slow)")
    with h5py.File(partial, "r") as f:  # what the killed run left (HDF5 survived the kill)
        resume_at = int(f.attrs["n_done"])
    assert resume_at >= 4
    ext = DNNFeatureExtractor(_net(), layers=["2", "6"], batch_size=2)
    ext._fit_model()
    seen = []
    ext.model_.module.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[0]))
    ext.extract_to_file(data, target)
    assert sum(seen) == len(data) - resume_at
    full = clone(ext).extract_to_file(data, tmp_path / "full.act.h5")
    with open_activations(full) as a, open_activations(target) as b:
        for layer in a.layers:
            np.testing.assert_array_equal(a.read(layer), b.read(layer))
