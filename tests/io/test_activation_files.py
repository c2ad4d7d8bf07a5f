"""Activation files that cannot lie: one writer per file, incomplete files refused, stimulus
contents in the resume identity, damaged partial files restarted, full disks reported on one line.

Each test reproduces a failure of the earlier code (issue 13, section 2).
"""

import os
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch
from sklearn.base import clone

from neuroprobe.io import activations as act
from neuroprobe.io.activations import (
    ExtractionBusyError,
    IncompleteActivationsError,
    open_activations,
    write_activations,
)
from neuroprobe.transformers.extraction import ActivationReader, DNNFeatureExtractor

HERE = os.path.dirname(__file__)


def _net():
    from test_activations import _net as net

    return net()


sys.path.insert(0, HERE)


@pytest.fixture
def data():
    return torch.randn(11, 3, 12, 12, generator=torch.Generator().manual_seed(0))


def _crash_after(monkeypatch, n_batches):
    calls = {"n": 0}
    original = act.ActivationWriter.write

    def crashing(self, start, arrays):
        if calls["n"] == n_batches:
            raise KeyboardInterrupt("simulated kill")
        calls["n"] += 1
        original(self, start, arrays)

    monkeypatch.setattr(act.ActivationWriter, "write", crashing)
    return original


def _partial(path):
    return path.with_name(path.name + act.PARTIAL_SUFFIX)


# ----------------------------------------------------------------------------- one writer
_SLOW_WRITER = r"""
import sys, time, torch
sys.path.insert(0, sys.argv[2])
from test_activations import _net
from neuroprobe.transformers.extraction import DNNFeatureExtractor
import os
net = _net()
hold = sys.argv[3]  # the first writer waits at each batch while this file exists (max 200 s)
def wait(*args):
    end = time.time() + 200
    while hold != "-" and os.path.exists(hold) and time.time() < end:
        time.sleep(0.05)
net[0].register_forward_hook(wait)
x = torch.randn(11, 3, 12, 12, generator=torch.Generator().manual_seed(0))
DNNFeatureExtractor(net, layers=["2", "6"], batch_size=2).extract_to_file(x, sys.argv[1])
print("done")
"""


def test_second_writer_of_the_same_file_stops_and_touches_nothing(tmp_path, data):
    # before: the second process took the first's HDF5 lock failure for a damaged file and deleted
    # its live .partial; the first then renamed the second's unfinished file (exit 0, rows lost)
    target = tmp_path / "two.act.h5"
    partial = _partial(target)
    hold = tmp_path / "hold"
    hold.write_text("")
    first = subprocess.Popen(  # waits inside its first batch until `hold` is removed
        [sys.executable, "-c", _SLOW_WRITER, str(target), HERE, str(hold)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not partial.exists() and first.poll() is None:
            time.sleep(0.05)
        assert partial.exists(), first.stderr.read() if first.poll() is not None else ""
        inode = partial.stat().st_ino
        second = subprocess.run(
            [sys.executable, "-c", _SLOW_WRITER, str(target), HERE, "-"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert first.poll() is None  # still writing
        assert second.returncode != 0
        assert f"another extraction is writing {target}" in second.stderr
        assert "Traceback" in second.stderr  # Python API: the exception; the CLI test: one line
        assert partial.stat().st_ino == inode  # the first one's file, untouched
        hold.unlink()
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert target.exists() and not partial.exists() and not act.lock_path(target).exists()
    ext = DNNFeatureExtractor(_net(), layers=["2", "6"], batch_size=4)
    full = ext.extract_to_file(data, tmp_path / "ref.act.h5")
    with open_activations(full) as a, open_activations(target) as b:
        assert b.attrs["complete"] and b.n_done == len(data)
        for layer in a.layers:  # other batch size: float32 tolerance
            np.testing.assert_allclose(b.read(layer), a.read(layer), rtol=1e-5, atol=1e-6)


def test_second_writer_in_the_same_process_is_refused(tmp_path, data):
    target = tmp_path / "a.act.h5"
    ids = [str(i) for i in range(len(data))]
    with act.ActivationWriter(target, ids, model="x", layers=["6"]) as w:
        w.ensure_layer("6", (7,))
        w.write(0, {"6": np.ones((3, 7))})
        before = _partial(target).read_bytes()
        with pytest.raises(ExtractionBusyError, match=f"another extraction is writing {target}"):
            DNNFeatureExtractor(_net(), layers=["6"]).extract_to_file(data, target)
        with pytest.raises(ExtractionBusyError):
            write_activations(target, {"6": np.zeros((len(ids), 7))}, ids)
        assert _partial(target).read_bytes() == before
        assert not target.exists()
    # released: the next writer may take over (and discard it: another identity)
    with pytest.warns(UserWarning, match="another extraction"):
        DNNFeatureExtractor(_net(), layers=["6"]).extract_to_file(data, target)
    assert target.exists()


# ----------------------------------------------------------------------------- incomplete
def _incomplete_file(tmp_path, n=5, done=3):
    target = tmp_path / "inc.act.h5"
    w = act.ActivationWriter(target, [f"s{i}" for i in range(n)], model="m", layers=["fc"])
    w.ensure_layer("fc", (4,))
    w.write(0, {"fc": np.arange(done * 4, dtype=np.float32).reshape(done, 4) + 1})
    w.close()
    os.replace(_partial(target), target)  # e.g. copied away by hand, or renamed by a bug
    return target


def test_incomplete_file_is_refused_by_readers_naming_the_rows(tmp_path):
    # before: read with the unwritten rows as zeros, with a UserWarning only
    target = _incomplete_file(tmp_path)
    with pytest.raises(IncompleteActivationsError, match="3 of 5 rows"):
        open_activations(target)
    with pytest.raises(IncompleteActivationsError, match="3 of 5 rows"):
        ActivationReader(target, "fc").fit()
    with open_activations(target, allow_incomplete=True) as f:  # what info and resume use
        assert not f.complete and f.n_done == 3
        assert np.all(f.read("fc")[3:] == 0) and np.all(f.read("fc")[:3] > 0)
    text = act.describe(target)
    assert "INCOMPLETE: 3 of 5 rows written" in text


def test_missing_file_beside_its_partial_says_so(tmp_path):
    target = tmp_path / "p.act.h5"
    w = act.ActivationWriter(target, ["a", "b"], model="m", layers=["fc"])
    w.close()
    with pytest.raises(FileNotFoundError, match="unfinished extraction"):
        open_activations(target)


# ----------------------------------------------------------------------------- identity
def test_replaced_image_between_crash_and_rerun_invalidates_the_resume(tmp_path, monkeypatch):
    # before: the identity was the stimulus IDs only; the replaced image kept its old row
    from PIL import Image

    from neuroprobe.stimuli import StimulusSet

    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(folder / f"s{i}.png")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    torch.manual_seed(0)
    ext = DNNFeatureExtractor(net, layers=["0"], pooling="mean", batch_size=2)
    target = tmp_path / "r.act.h5"
    original = _crash_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        ext.extract_to_file(StimulusSet.from_folder(folder), target)
    monkeypatch.setattr(act.ActivationWriter, "write", original)
    # replace an image whose row is already written (rows 0-3 done)
    Image.fromarray(np.full((20, 20, 3), 255, np.uint8)).save(folder / "s1.png")
    stims = StimulusSet.from_folder(folder)
    with pytest.warns(UserWarning, match=r"1 of the 4 stimuli it holds changed.*s1"):
        clone(ext).extract_to_file(stims, target)
    fresh = clone(ext).extract_to_file(stims, tmp_path / "fresh.act.h5")
    with open_activations(target) as a, open_activations(fresh) as b:
        np.testing.assert_array_equal(a.read("0"), b.read("0"))


def test_changed_array_row_invalidates_the_resume(tmp_path, data, monkeypatch):
    ext = DNNFeatureExtractor(_net(), layers=["6"], batch_size=3)
    target = tmp_path / "t.act.h5"
    original = _crash_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        ext.extract_to_file(data, target)
    monkeypatch.setattr(act.ActivationWriter, "write", original)
    changed = data.clone()
    changed[1] += 1.0
    with pytest.warns(UserWarning, match="changed since"):
        clone(ext).extract_to_file(changed, target)
    expected = clone(ext).fit_transform(changed)
    with open_activations(target) as f:
        np.testing.assert_allclose(f.read("6"), expected, rtol=1e-5, atol=1e-6)


def test_same_contents_still_resume(tmp_path, data, monkeypatch):
    ext = DNNFeatureExtractor(_net(), layers=["6"], batch_size=3)
    target = tmp_path / "t.act.h5"
    original = _crash_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        ext.extract_to_file(data, target)
    monkeypatch.setattr(act.ActivationWriter, "write", original)
    ext2 = clone(ext)
    ext2._fit_model()
    seen = []
    ext2.model_.module.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[0]))
    ext2.extract_to_file(data.clone(), target)
    assert sum(seen) == len(data) - 6


def test_cache_key_sees_a_replaced_image(tmp_path):
    from PIL import Image

    from neuroprobe.stimuli import StimulusSet

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(folder / f"s{i}.png")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    ext = DNNFeatureExtractor(net, layers=["0"], pooling="mean", memory=tmp_path / "cache")
    before = ext.fit_transform(StimulusSet.from_folder(folder))
    Image.fromarray(np.full((20, 20, 3), 255, np.uint8)).save(folder / "s2.png")
    stims = StimulusSet.from_folder(folder)
    after = clone(ext).fit_transform(stims)
    reference = clone(ext).set_params(memory=None).fit_transform(stims)
    np.testing.assert_allclose(after, reference, rtol=1e-5, atol=1e-6)
    assert not np.allclose(after[2], before[2])


# ----------------------------------------------------------------------------- damage
def test_damaged_partial_is_detected_and_restarted(tmp_path, data, monkeypatch):
    # before: KeyError "Unable to synchronously open object" on every rerun
    ext = DNNFeatureExtractor(_net(), layers=["2", "6"], batch_size=3)
    target = tmp_path / "d.act.h5"
    original = _crash_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        ext.extract_to_file(data, target)
    monkeypatch.setattr(act.ActivationWriter, "write", original)
    partial = _partial(target)
    with h5py.File(partial, "r") as f:  # wreck the object header of a layer dataset
        offset = h5py.h5o.get_info(f["layers/6"].id).addr
    raw = bytearray(partial.read_bytes())
    raw[offset : offset + 64] = b"\xff" * 64
    partial.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="is damaged"):
        clone(ext).extract_to_file(data, target)
    expected = clone(ext).extract_to_file(data, tmp_path / "ref.act.h5")
    with open_activations(target) as a, open_activations(expected) as b:
        for layer in b.layers:
            np.testing.assert_array_equal(a.read(layer), b.read(layer))


def test_truncated_partial_is_restarted(tmp_path, data, monkeypatch):
    ext = DNNFeatureExtractor(_net(), layers=["6"], batch_size=3)
    target = tmp_path / "d.act.h5"
    original = _crash_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        ext.extract_to_file(data, target)
    monkeypatch.setattr(act.ActivationWriter, "write", original)
    partial = _partial(target)
    partial.write_bytes(partial.read_bytes()[: partial.stat().st_size // 2])
    with pytest.warns(UserWarning, match="is damaged"):
        clone(ext).extract_to_file(data, target)
    with open_activations(target) as f:
        np.testing.assert_allclose(
            f.read("6"), clone(ext).fit_transform(data), rtol=1e-5, atol=1e-6
        )


def test_corrupt_chunk_error_names_file_and_layer(tmp_path):
    rng = np.random.default_rng(0)
    path = write_activations(
        tmp_path / "c.act.h5", {"conv5": rng.normal(size=(40, 300))}, [f"s{i}" for i in range(40)]
    )
    with h5py.File(path, "r") as f:
        info = f["layers/conv5"].id.get_chunk_info(0)
    raw = bytearray(path.read_bytes())
    raw[info.byte_offset : info.byte_offset + info.size] = b"\x00" * info.size
    path.write_bytes(bytes(raw))
    with open_activations(path) as f, pytest.raises(OSError) as err:
        f.read("conv5")
    assert "'conv5'" in str(err.value) and str(path) in str(err.value)


def test_space_check_refuses_a_batch_that_cannot_fit(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    target = tmp_path / "s.act.h5"
    w = act.ActivationWriter(target, [str(i) for i in range(10)], model="m", layers=["a"])
    w.ensure_layer("a", (1000,))
    w.write(0, {"a": np.ones((2, 1000))})
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(OSError, match=f"cannot write {target}: No space left on device") as err:
        w.write(2, {"a": np.ones((2, 1000))})
    assert err.value.errno == 28
    w.close()
    monkeypatch.undo()
    with act.ActivationWriter(target, [str(i) for i in range(10)], model="m", layers=["a"]) as w2:
        assert w2.n_done == 2  # the partial file stayed whole: resumable
