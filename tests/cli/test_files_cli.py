"""Files that cannot lie, on the command line: busy outputs, incomplete inputs, full disks
(a file-size limit in a subprocess), atomic multi-file outputs, --out checked first, info."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from PIL import Image

from neuroprobe.cli.main import main
from neuroprobe.io import activations as act
from neuroprobe.io.activations import open_activations, write_activations

LIMITED = r"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
limit, check = int(sys.argv[1]), sys.argv[2]
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
if check == "nocheck":  # let HDF5 itself hit the limit in the middle of a write
    from neuroprobe.io import activations
    activations.ActivationWriter._check_space = lambda self, nbytes: None
import warnings
warnings.filterwarnings("ignore", message=".*RANDOM, untrained weights")  # --weights none
from neuroprobe.cli.main import main
sys.exit(main(sys.argv[3:]))
"""


def _limited(limit, check, *args, cwd):
    return subprocess.run(
        [sys.executable, "-c", LIMITED, str(limit), check, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


@pytest.fixture
def stims(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    rows = ["stim_id,path,label"]
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), np.uint8)).save(folder / f"s{i}.png")
        rows.append(f"s{i},imgs/s{i}.png,{i % 2}")
    csv = tmp_path / "stims.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def _extract_args(stims, out, *extra):
    return [
        "extract", "--model", "squeezenet1_1", "--weights", "none", "--layers", "features.3",
        "--stimuli", str(stims), "--out", str(out), "--batch-size", "1", "--quiet", *extra,
    ]


def _one_error_line(stderr):
    # warnings (e.g. random weights asked for by --weights none) are one line each too
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and ": warning: " not in ln]
    assert len(lines) == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    return lines[0]


# ----------------------------------------------------------------------------- busy
def test_extract_on_an_output_being_written_stops_with_one_line(stims, tmp_path, capsys):
    out = tmp_path / "busy.act.h5"
    with act.ActivationWriter(out, ["a", "b"], model="other", layers=["x"]) as w:
        w.ensure_layer("x", (3,))
        w.write(0, {"x": np.ones((1, 3))})
        before = (tmp_path / "busy.act.h5.partial").read_bytes()
        assert main(_extract_args(stims, out)) == 1
        line = _one_error_line(capsys.readouterr().err)
        assert f"another extraction is writing {out}" in line
        assert (tmp_path / "busy.act.h5.partial").read_bytes() == before
        assert not out.exists()


# ----------------------------------------------------------------------------- incomplete
@pytest.fixture
def incomplete(tmp_path):
    rng = np.random.default_rng(0)
    target = tmp_path / "inc.act.h5"
    n = 12
    w = act.ActivationWriter(target, [f"s{i}" for i in range(n)], model="m", layers=["fc"])
    w.ensure_layer("fc", (4,))
    w.write(0, {"fc": rng.normal(size=(7, 4))})
    w.close()
    os.replace(target.with_name(target.name + act.PARTIAL_SUFFIX), target)
    np.save(tmp_path / "Y.npy", rng.normal(size=(n, 3)).astype(np.float32))
    (tmp_path / "labels.csv").write_text(
        "stim_id,y\n" + "".join(f"s{i},{i % 2}\n" for i in range(n))
    )
    return target


@pytest.mark.parametrize(
    "command",
    [
        ["encode", "{f}", "--layer", "fc", "--targets", "{d}/Y.npy", "--out", "{d}/m.npy"],
        ["rdm", "{f}", "--out", "{d}/r.rdm.h5"],
        ["probe", "{f}", "--labels", "{d}/labels.csv:y", "--cv", "2", "--out", "{d}/p.csv"],
        ["reduce", "{f}", "--n-components", "2", "--out", "{d}/z.npz"],
    ],
    ids=["encode", "rdm", "probe", "reduce"],
)
def test_incomplete_activations_are_refused(incomplete, command, capsys):
    # before: encode and rdm read the 5 unwritten rows as zeros and exited 0
    d = incomplete.parent
    argv = [a.format(f=incomplete, d=d) for a in command]
    assert main(argv) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "7 of 12 rows" in line and str(incomplete) in line
    assert not [p for p in d.iterdir() if p.name.startswith(("m.", "r.", "p.", "z."))]


def test_info_describes_incomplete_and_partial_files(incomplete, tmp_path, capsys):
    assert main(["info", str(incomplete)]) == 0
    assert "INCOMPLETE: 7 of 12 rows written" in capsys.readouterr().out
    other = tmp_path / "other.act.h5"
    w = act.ActivationWriter(other, ["a", "b", "c"], model="m", layers=["fc"])
    w.ensure_layer("fc", (2,))
    w.write(0, {"fc": np.ones((1, 2))})
    w.close()
    assert main(["info", str(other) + act.PARTIAL_SUFFIX]) == 0
    assert "INCOMPLETE: 1 of 3 rows written" in capsys.readouterr().out


# ----------------------------------------------------------------------------- full disk
def _reference(stims, tmp_path):
    ref = tmp_path / "ref.act.h5"
    assert main(_extract_args(stims, ref)) == 0
    return ref


def _same(a, b):
    with open_activations(a) as fa, open_activations(b) as fb:
        assert fa.attrs["complete"] and fb.attrs["complete"]
        np.testing.assert_array_equal(fa.read("features.3"), fb.read("features.3"))


@pytest.mark.parametrize("check", ["check", "nocheck"])
def test_extract_under_a_file_size_limit_gives_one_line_and_resumes(stims, tmp_path, check):
    # before: segmentation fault (exit 139) or h5py tracebacks; the cause on a dropped line;
    # then the damaged .partial failed every rerun with KeyError
    out = tmp_path / "lim.act.h5"
    res = _limited(3_500_000, check, *_extract_args(stims, out), cwd=tmp_path)
    assert res.returncode == 1, res.stderr[-3000:]
    line = _one_error_line(res.stderr)
    assert f"cannot write {out}: File too large" in line
    assert not out.exists()
    with pytest.warns(UserWarning, match="damaged") if check == "nocheck" else _no_warning():
        assert main(_extract_args(stims, out)) == 0  # resumed, or restarted when damaged
    _same(out, _reference(stims, tmp_path))


class _no_warning:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("error", UserWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def test_extract_under_a_limit_smaller_than_an_empty_file(stims, tmp_path):
    # before: h5py tracebacks at the creation of the partial file, then exit 139
    out = tmp_path / "tiny.act.h5"
    res = _limited(1500, "check", *_extract_args(stims, out), cwd=tmp_path)
    assert res.returncode == 1, res.stderr[-3000:]
    assert f"cannot write {out}: File too large" in _one_error_line(res.stderr)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tiny", "tiny"))]


def test_rdm_under_a_file_size_limit_gives_one_line_naming_the_path(tmp_path):
    rng = np.random.default_rng(0)
    acts = write_activations(
        tmp_path / "a.act.h5",
        {f"l{k}": rng.normal(size=(60, 5)) for k in range(3)},
        [f"s{i}" for i in range(60)],
    )
    out = tmp_path / "r.rdm.h5"
    res = _limited(os.path.getsize(acts) // 4, "check", "rdm", acts, "--out", out, cwd=tmp_path)
    assert res.returncode == 1, res.stderr[-3000:]
    line = _one_error_line(res.stderr)
    assert f"cannot write {out}: File too large" in line and ".tmp" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.act.h5"]  # no temporary left


def test_corrupt_chunk_names_file_and_layer(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = write_activations(
        tmp_path / "c.act.h5", {"conv5": rng.normal(size=(40, 300))}, [f"s{i}" for i in range(40)]
    )
    with h5py.File(path, "r") as f:
        info = f["layers/conv5"].id.get_chunk_info(0)
    raw = bytearray(path.read_bytes())
    raw[info.byte_offset : info.byte_offset + info.size] = b"\x00" * info.size
    path.write_bytes(bytes(raw))
    assert main(["rdm", str(path), "--out", str(tmp_path / "r.rdm.h5")]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "'conv5'" in line and str(path) in line


# ----------------------------------------------------------------------------- atomic outputs
@pytest.fixture
def study(tmp_path):
    rng = np.random.RandomState(0)
    n = 30
    labels = np.repeat(["a", "b"], n // 2)
    fc = (rng.randn(n, 5) + 2 * (labels == "a")[:, None]).astype(np.float32)
    ids = [f"s{i:02d}" for i in range(n)]
    write_activations(tmp_path / "net.act.h5", {"fc": fc}, ids, model="tiny")
    (tmp_path / "stim.csv").write_text(
        "stim_id,y\n" + "".join(f"{s},{y}\n" for s, y in zip(ids, labels))
    )
    np.save(tmp_path / "Y.npy", (fc @ rng.randn(5, 8) + rng.randn(n, 8)).astype(np.float32))
    return tmp_path


def test_probe_outputs_are_replaced_together_or_not_at_all(study, monkeypatch, capsys):
    # before: the CSV was replaced, then np.savez wrote the .confusion.npz directly: a failure
    # left a corrupt zip beside a complete (new) CSV
    out = study / "probe.csv"
    argv = ["probe", str(study / "net.act.h5"), "--labels", f"{study}/stim.csv:y", "--cv", "3"]
    assert main([*argv, "--out", str(out)]) == 0
    csv_before = out.read_bytes()
    npz_before = out.with_suffix(".confusion.npz").read_bytes()

    def failing(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", failing)
    assert main([*argv, "--seed", "5", "--out", str(out)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"cannot write {out.with_suffix('.confusion.npz')}: No space left on device" in line
    assert out.read_bytes() == csv_before
    assert out.with_suffix(".confusion.npz").read_bytes() == npz_before
    assert sorted(p.name for p in study.iterdir() if p.name.startswith(".")) == []


def test_interrupted_encode_leaves_the_old_maps_as_they_were(study, monkeypatch):
    # before: the new score map was written, then the permutations ran; an interrupt left the
    # new score map beside the p-value maps of the earlier run
    from neuroprobe.estimators import permutation

    out = study / "map.npy"
    argv = ["encode", str(study / "net.act.h5"), "--layer", "fc", "--targets",
            str(study / "Y.npy"), "--cv", "3", "--alphas", "1,10", "--n-permutations", "5"]
    assert main([*argv, "--out", str(out)]) == 0
    names = ["map.npy", "map_pvalue.npy", "map_pvalue_fwe.npy"]
    before = {name: (study / name).read_bytes() for name in names}

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(permutation.PermutationTest, "fit", interrupted)
    assert main([*argv, "--cv", "2", "--out", str(out)]) == 130
    assert {name: (study / name).read_bytes() for name in names} == before
    monkeypatch.undo()
    # a rerun without permutations: the old p-value maps (of another score map) are removed
    assert main([*argv[:-2], "--cv", "2", "--out", str(out)]) == 0
    assert (study / "map.npy").read_bytes() != before["map.npy"]
    assert not (study / "map_pvalue.npy").exists() and not (study / "map_pvalue_fwe.npy").exists()


@pytest.mark.parametrize(
    "out, message",
    [
        ("probe.txt", "expected a name ending in .csv"),
        ("afile/probe.csv", "is a file, not a folder"),
        ("folder", "is a folder"),
    ],
)
def test_out_is_checked_before_the_computation(study, monkeypatch, capsys, out, message):
    import neuroprobe.model_selection as probing

    (study / "afile").write_text("x")
    (study / "folder").mkdir()
    monkeypatch.setattr(probing, "probe_layers", lambda *a, **k: pytest.fail("computed first"))
    argv = ["probe", str(study / "net.act.h5"), "--labels", f"{study}/stim.csv:y"]
    assert main([*argv, "--out", str(study / out)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert message in line and str(study / out) in line


def test_encode_checks_the_map_suffix_before_fitting(study, monkeypatch, capsys):
    import neuroprobe.model_selection as ms

    monkeypatch.setattr(ms, "cross_val_score_targets", lambda *a, **k: pytest.fail("computed"))
    argv = ["encode", str(study / "net.act.h5"), "--layer", "fc", "--targets",
            str(study / "Y.npy"), "--out", str(study / "map.nii.gz")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "map.nii.gz" in err and "written as .npy or .csv" in err


def test_extract_checks_out_before_building_the_model(stims, tmp_path, capsys):
    assert main(_extract_args(stims, tmp_path / "acts.npy")) == 1
    assert "expected a name ending in .h5 or .hdf5" in capsys.readouterr().err


# ----------------------------------------------------------------------------- info
def test_info_describes_every_file_kind(study, capsys):
    from neuroprobe.cli.inspect import _write_h5

    _write_h5(study / "saliency.h5", {"maps": np.ones((2, 8, 8)), "stim_ids": np.array(["a", "b"])},
              {"method": "gradient", "layer": "conv5"})
    assert main(["info", str(study / "saliency.h5")]) == 0
    text = capsys.readouterr().out
    assert "(gradient)" in text and "maps" in text and "(2, 8, 8)" in text and "conv5" in text

    assert main(["reduce", str(study / "net.act.h5"), "--n-components", "2",
                 "--out", str(study / "z.npz")]) == 0
    capsys.readouterr()
    assert main(["info", str(study / "z.npz")]) == 0
    text = capsys.readouterr().out
    assert "X" in text and "(30, 2)" in text and "stim_ids" in text

    np.save(study / "m.npy", np.array([0.5, np.nan, 0.25]))
    assert main(["info", str(study / "m.npy")]) == 0
    text = capsys.readouterr().out
    assert "(3,)" in text and "1 NaN/inf of 3" in text and "max 0.5" in text

    assert main(["rdm", str(study / "net.act.h5"), "--out", str(study / "plain.h5")]) == 0
    capsys.readouterr()
    assert main(["info", str(study / "plain.h5")]) == 0  # an RDM file under any .h5 name
    assert "RDM" in capsys.readouterr().out
