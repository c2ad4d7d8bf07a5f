"""`neuroprobe encode`: values outside the mask, output suffixes, warnings and --quiet."""

import numpy as np
import pytest

from neuroprobe.io.activations import write_activations

nib = pytest.importorskip("nibabel")


def _main(*args):
    from neuroprobe.cli.main import main

    try:
        return main([str(a) for a in args])
    except SystemExit as exc:  # --help
        return exc.code


@pytest.fixture(scope="module")
def brain(tmp_path_factory):
    """4x4x4 volume: a 12-voxel mask (one NaN voxel, dropped), 4 planted voxels, noise elsewhere."""
    d = tmp_path_factory.mktemp("values")
    rng = np.random.RandomState(0)
    n = 40
    X = rng.randn(n, 5).astype(np.float32)
    write_activations(d / "net.act.h5", {"fc": X}, [f"s{i:02d}" for i in range(n)], model="tiny")
    vol = rng.randn(4, 4, 4, n).astype(np.float32)  # noise everywhere
    mask = np.zeros((4, 4, 4), np.uint8)
    mask[:3, :2, :2] = 1  # 12 voxels
    inside = np.argwhere(mask)
    planted = inside[:4]
    for i, j, k in planted:
        vol[i, j, k] = X @ rng.randn(5) + 0.3 * rng.randn(n)
    vol[tuple(inside[-1])][7] = np.nan  # a dropped voxel
    # outside the mask: strong signal too, which must never appear in the maps
    vol[3, 3, 3] = X[:, 0] * 5
    nib.save(nib.Nifti1Image(vol, np.eye(4)), d / "bold.nii.gz")
    nib.save(nib.Nifti1Image(mask, np.eye(4)), d / "mask.nii.gz")
    return d, mask.astype(bool), inside, planted


def test_maps_are_nan_outside_the_mask_and_say_so(brain, tmp_path):
    d, mask, inside, planted = brain
    out = tmp_path / "map.nii.gz"
    with pytest.warns(RuntimeWarning, match="dropped 1 of 12 voxels"):
        code = _main("encode", d / "net.act.h5", "--layer", "fc", "--targets", d / "bold.nii.gz",
                     "--mask", d / "mask.nii.gz", "--cv", "4", "--alphas", "0.1,10",
                     "--n-permutations", "30", "--quiet", "--out", out)
    assert code == 0
    kept = mask.copy()
    kept[tuple(inside[-1])] = False
    for name in ("map", "map_pvalue", "map_pvalue_fwe"):
        img = nib.load(tmp_path / f"{name}.nii.gz")
        data = img.get_fdata()
        assert np.isnan(data[~kept]).all(), name  # outside the mask and the dropped voxel
        assert np.isfinite(data[kept]).all(), name
        descrip = img.header["descrip"].tobytes().decode()
        assert "NaN=no data" in descrip
    p = nib.load(tmp_path / "map_pvalue_fwe.nii.gz").get_fdata()
    # thresholding finds the planted voxels only: nothing outside the brain passes p <= 0.05
    # (with 0 outside the mask, the 53 voxels outside would all have "passed")
    significant = np.argwhere(p <= 0.05)
    assert {tuple(v) for v in significant} == {tuple(v) for v in planted}
    assert "at best alpha" in nib.load(tmp_path / "map_pvalue.nii.gz").header["descrip"].tobytes(
    ).decode()
    r = nib.load(out).get_fdata()
    assert np.nanmin(r[tuple(planted.T)]) > 0.8


def test_vector_suffix_with_brain_targets_saves_the_mask_vector(brain, tmp_path):
    d, mask, inside, _ = brain
    common = ["encode", d / "net.act.h5", "--layer", "fc", "--targets", d / "bold.nii.gz",
              "--mask", d / "mask.nii.gz", "--cv", "4", "--alphas", "0.1,10", "--quiet"]
    with pytest.warns(RuntimeWarning, match="dropped"):
        assert _main(*common, "--out", tmp_path / "map.nii.gz") == 0
        assert _main(*common, "--out", tmp_path / "map.npy") == 0  # used to crash in nibabel
        assert _main(*common, "--out", tmp_path / "map.csv") == 0
    image = nib.load(tmp_path / "map.nii.gz").get_fdata()
    kept = mask.copy()
    kept[tuple(inside[-1])] = False
    vector = np.load(tmp_path / "map.npy")
    assert vector.shape == (11,)
    np.testing.assert_allclose(vector, image[kept], rtol=1e-6)  # mask (C) order
    np.testing.assert_allclose(np.loadtxt(tmp_path / "map.csv", delimiter=","), vector,
                               rtol=1e-6)


def test_unknown_suffix_is_refused_up_front(brain, tmp_path, capsys):
    d, *_ = brain
    with pytest.warns(RuntimeWarning, match="dropped"):
        code = _main("encode", d / "net.act.h5", "--layer", "fc", "--targets", d / "bold.nii.gz",
                     "--mask", d / "mask.nii.gz", "--n-permutations", "500",
                     "--out", tmp_path / "map.mgz")
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "--out" in err and str(tmp_path / "map.mgz") in err
    assert ".nii / .nii.gz" in err and ".npy / .csv" in err and "11 voxels" in err
    assert not list(tmp_path.iterdir())
    np.save(tmp_path / "Y.npy", np.zeros((40, 3), np.float32))
    code = _main("encode", d / "net.act.h5", "--layer", "fc", "--targets", tmp_path / "Y.npy",
                 "--out", tmp_path / "map.nii.gz")
    assert code == 1 and ".npy or .csv" in capsys.readouterr().err


def test_zero_variance_warning_once_with_cause_and_quiet(brain, tmp_path, capsys):
    d, *_ = brain
    rng = np.random.RandomState(2)
    Y = rng.randn(40, 6).astype(np.float32)
    Y[:, 2] = 1.5  # a truly constant target
    np.save(tmp_path / "Y.npy", Y)
    args = ["encode", d / "net.act.h5", "--layer", "fc", "--targets", tmp_path / "Y.npy",
            "--cv", "4", "--alphas", "1,1e9", "--n-permutations", "10"]
    assert _main(*args, "--out", tmp_path / "a.npy") == 0
    # (the other line says that Y.npy has no stimulus IDs: rows are matched by position)
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if "have zero variance" in line]
    assert err == [
        "neuroprobe encode: warning: 1 of 6 target(s) have zero variance in the training "
        "samples of 4 of 4 fold(s); their scores there are NaN (undefined).",
        "neuroprobe encode: warning: 1 of 6 target(s) have zero variance in the held-out "
        "samples of 4 of 4 fold(s); their scores there are NaN (undefined).",
    ]
    r = np.load(tmp_path / "a.npy")
    assert np.isnan(r[2]) and np.isfinite(np.delete(r, 2)).all()
    # the constant target has no p-value (it used to get the smallest one, 1 / 11)
    assert np.isnan(np.load(tmp_path / "a_pvalue.npy")[2])
    assert np.isnan(np.load(tmp_path / "a_pvalue_fwe.npy")[2])
    assert _main(*args, "--quiet", "--out", tmp_path / "b.npy") == 0
    assert "have zero variance" not in capsys.readouterr().err


def test_help_states_the_conventions(capsys):
    assert _main("encode", "--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "NaN outside the mask" in text
    assert "the permutation statistic is the --cv-fold CV score at its best alpha" in text
    assert "scores r = 0" in text
