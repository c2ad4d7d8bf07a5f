"""Tests of ``neuroprobe roi`` and ``neuroprobe hrf``."""

import csv
import os

import h5py
import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

from neuroprobe.cli.main import main
from neuroprobe.transformers import BrainMasker, HRFConvolver

EXAMPLE4D = os.path.join(data_path, "example4d.nii.gz")
GIFTI_DATA = os.path.join(os.path.dirname(nib.__file__), "gifti", "tests", "data")


def _read_csv(path):
    with open(path) as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array(rows[1:], dtype=float)


@pytest.fixture()
def atlas(tmp_path):
    img = nib.load(EXAMPLE4D)
    atlas = np.zeros(img.shape[:3], np.int16)
    atlas[40:50, 30:40, 10:12] = 3
    atlas[60:64, 50:55, 5:9] = 8
    path = tmp_path / "atlas.nii.gz"
    nib.Nifti1Image(atlas, img.affine).to_filename(path)
    lut = tmp_path / "lut.txt"
    lut.write_text("0 Unknown 0 0 0 0\n3 FFA 1 1 1 0\n8 PPA 2 2 2 0\n")
    return path, lut, atlas, img.get_fdata()


def test_help_has_examples(capsys):
    for cmd in ("roi", "hrf"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "example:" in capsys.readouterr().out


def test_roi_summary_csv(tmp_path, atlas):
    path, lut, labels, data = atlas
    out = tmp_path / "roi.csv"
    assert main(["roi", EXAMPLE4D, "--mask", str(path), "--lut", str(lut), "--labels", "FFA",
                 "PPA", "--summary", "mean", "--out", str(out), "--quiet"]) == 0
    header, values = _read_csv(out)
    assert header == ["FFA", "PPA"]
    expected = np.stack([data[labels == 3].mean(0), data[labels == 8].mean(0)], axis=1)
    np.testing.assert_allclose(values, expected, rtol=1e-6)


def test_roi_voxels_h5_equals_masker(tmp_path, atlas):
    path, lut, labels, data = atlas
    out = tmp_path / "roi.h5"
    assert main(["roi", EXAMPLE4D, "--mask", str(path), "--labels", "8", "--out", str(out),
                 "--quiet"]) == 0
    with h5py.File(out) as fh:
        np.testing.assert_array_equal(fh["Y"][:], data[labels == 8].T.astype(np.float32))
        assert fh["Y_feature_names"].shape == (int((labels == 8).sum()),)


def test_roi_gifti_pair(tmp_path):
    func = os.path.join(GIFTI_DATA, "task.func.gii")
    out = tmp_path / "pair.h5"
    assert main(["roi", func, func, "--pair", "--out", str(out), "--quiet"]) == 0
    expected = BrainMasker().fit_transform((func, func))
    with h5py.File(out) as fh:
        np.testing.assert_array_equal(fh["Y"][:], expected)
        assert fh["Y"].shape == (10, 2 * 642)


def test_roi_errors_are_one_line(tmp_path, atlas, capsys):
    path, lut, labels, data = atlas
    code = main(["roi", EXAMPLE4D, "--mask", str(path), "--lut", str(lut), "--labels", "FFAA",
                 "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert code == 1 and "FFAA" in err and "closest" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


@pytest.fixture()
def events(tmp_path):
    onsets = np.array([2.0, 10.0, 18.0, 30.0, 40.0])
    durations = np.array([1.0, 0.0, 4.0, 2.0, 1.0])
    ids = ["b", "a", "c", "a", "b"]  # stimulus "a" and "b" shown twice
    path = tmp_path / "events.csv"
    path.write_text("onset,duration,stim_id\n" + "".join(
        f"{o},{d},{s}\n" for o, d, s in zip(onsets, durations, ids)))
    return path, onsets, durations, ids


def test_hrf_from_act_h5_by_stim_id(tmp_path, events):
    from neuroprobe.io.activations import write_activations

    path, onsets, durations, ids = events
    feats = np.random.default_rng(0).standard_normal((3, 4, 2)).astype(np.float32)
    act = write_activations(tmp_path / "f.act.h5", {"fc": feats}, ["a", "b", "c"])
    out = tmp_path / "reg.h5"
    assert main(["hrf", "--features", str(act), "--layer", "fc", "--events", str(path),
                 "--tr", "2", "--n-scans", "30", "--hrf-model", "spm+derivative",
                 "--out", str(out), "--quiet"]) == 0
    rows = feats.reshape(3, -1)[[{"a": 0, "b": 1, "c": 2}[s] for s in ids]]
    expected = HRFConvolver(2.0, 30, onsets=onsets, durations=durations,
                            hrf_model="spm + derivative").fit_transform(rows)
    with h5py.File(out) as fh:
        np.testing.assert_allclose(fh["X"][:], expected, rtol=1e-6)
        names = list(fh["X_feature_names"].asstr()[:])
    assert names[0] == "fc:f0" and names[8] == "fc:f0_derivative"


def test_hrf_from_npy_to_csv_and_errors(tmp_path, events, capsys):
    path, onsets, durations, _ = events
    feats = np.random.default_rng(1).standard_normal((5, 3))
    np.save(tmp_path / "f.npy", feats)
    out = tmp_path / "reg.csv"
    assert main(["hrf", "--features", str(tmp_path / "f.npy"), "--events", str(path),
                 "--tr", "2", "--n-scans", "25", "--out", str(out), "--quiet"]) == 0
    header, values = _read_csv(out)
    expected = HRFConvolver(2.0, 25, onsets=onsets, durations=durations).fit_transform(feats)
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert header == ["f0", "f1", "f2"]
    bad = tmp_path / "bad.csv"
    bad.write_text("time,duration\n1,2\n")
    assert main(["hrf", "--features", str(tmp_path / "f.npy"), "--events", str(bad),
                 "--tr", "2", "--n-scans", "25", "--out", str(out)]) == 1
    assert "'onset' column" in capsys.readouterr().err
    np.save(tmp_path / "g.npy", feats[:4])
    assert main(["hrf", "--features", str(tmp_path / "g.npy"), "--events", str(path),
                 "--tr", "2", "--n-scans", "25", "--out", str(out)]) == 1
    assert "4 rows but" in capsys.readouterr().err


def test_hrf_onsets_in_milliseconds_are_refused(tmp_path, events, capsys):
    path, onsets, durations, _ = events
    ms = tmp_path / "events_ms.csv"
    ms.write_text("onset,duration\n" + "".join(f"{o * 1000},{d * 1000}\n"
                                                for o, d in zip(onsets, durations)))
    np.save(tmp_path / "f.npy", np.ones((5, 2)))
    out = tmp_path / "reg.h5"
    assert main(["hrf", "--features", str(tmp_path / "f.npy"), "--events", str(ms),
                 "--tr", "2", "--n-scans", "25", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "every event lies outside the run: onsets span 2000 to 40000 s" in err
    assert "25 scans x tr 2 s = 50 s" in err and "milliseconds" in err
    assert not out.exists()


def test_roi_ids_are_stored_and_read_by_the_joining_commands(tmp_path, atlas, capsys):
    """`roi --ids` stores the rows' stimulus IDs; encode/rdm/decode's target reader returns them."""
    from neuroprobe.cli.encoding import _Targets
    from neuroprobe.io.targets import read_target_ids

    path, lut, labels, data = atlas
    n = data.shape[-1]
    ids = [f"s{k:02d}" for k in range(n)][::-1]  # rows in reverse stimulus order
    np.savetxt(tmp_path / "ids.txt", ids, fmt="%s")
    out = tmp_path / "roi.h5"
    assert main(["roi", EXAMPLE4D, "--mask", str(path), "--labels", "8", "--out", str(out),
                 "--ids", str(tmp_path / "ids.txt"), "--quiet"]) == 0
    assert list(read_target_ids(out)) == ids
    targets = _Targets(str(out), None, None)
    try:
        assert [v.decode() if isinstance(v, bytes) else str(v) for v in targets.ids] == ids
        np.testing.assert_array_equal(targets.Y[:], data[labels == 8].T.astype(np.float32))
    finally:
        targets.close()
    # too few IDs, duplicated IDs, and a CSV output are refused (nothing written)
    np.savetxt(tmp_path / "short.txt", ids[:-1], fmt="%s")
    np.savetxt(tmp_path / "dup.txt", [ids[0]] * n, fmt="%s")
    for spec, message in (("short.txt", f"{n - 1} IDs for the {n} samples"),
                          ("dup.txt", "duplicate stimulus IDs (first: 's01')")):
        bad = tmp_path / f"bad_{spec}.h5"
        assert main(["roi", EXAMPLE4D, "--mask", str(path), "--labels", "8", "--out", str(bad),
                     "--ids", str(tmp_path / spec), "--quiet"]) == 1
        assert message in capsys.readouterr().err and not bad.exists()
    assert main(["roi", EXAMPLE4D, "--mask", str(path), "--labels", "8", "--out",
                 str(tmp_path / "roi.csv"), "--ids", str(tmp_path / "ids.txt"), "--quiet"]) == 1
    assert "--ids needs an .h5 --out" in capsys.readouterr().err
