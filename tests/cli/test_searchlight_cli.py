"""neuroprobe searchlight: maps in the data's format equal the Python API's."""

import numpy as np
import pytest

from neuroprobe.cli.main import main
from neuroprobe.io.rdm import save_rdms
from neuroprobe.rsa import compute_rdm
from neuroprobe.searchlight import Searchlight
from neuroprobe.transformers import BrainMasker
from tests.searchlight.test_neighbourhoods import _icosphere

nib = pytest.importorskip("nibabel")


def _volume(tmp_path, n=8, seed=0):
    r = np.random.default_rng(seed)
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    mask = r.random((6, 6, 5)) > 0.3
    data = r.normal(size=(6, 6, 5, n)).astype(np.float32)
    nib.Nifti1Image(data, aff).to_filename(tmp_path / "betas.nii.gz")
    nib.Nifti1Image(mask.astype(np.uint8), aff).to_filename(tmp_path / "mask.nii.gz")
    return tmp_path / "betas.nii.gz", tmp_path / "mask.nii.gz", mask, r


def test_volume_rsa_map_and_fwe(tmp_path, capsys):
    data, mask_path, mask, r = _volume(tmp_path)
    model = compute_rdm(r.normal(size=(8, 3)))
    np.save(tmp_path / "model.npy", model)
    out = tmp_path / "rsa.nii.gz"
    assert main(["searchlight", str(data), "--mask", str(mask_path), "--radius", "2",
                 "--radius-unit", "voxels", "--model", f"m={tmp_path / 'model.npy'}",
                 "--n-permutations", "19", "--seed", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "rsa_pfwe.nii.gz" in text and "m:" in text
    masker = BrainMasker(str(mask_path))
    X = masker.fit_transform(str(data))
    sl = Searchlight(masker=masker, radius=2, radius_unit="voxels", model_rdms=model,
                     n_permutations=19, random_state=3).fit(X)
    img = nib.load(out)
    assert img.shape == mask.shape
    np.testing.assert_allclose(np.asarray(img.dataobj), np.asarray(sl.to_image().dataobj),
                               rtol=1e-6, equal_nan=True)
    p = np.asarray(nib.load(tmp_path / "rsa_pfwe.nii.gz").dataobj)[mask]
    np.testing.assert_allclose(p, sl.pvalues_fwe_[:, 0], rtol=1e-6)
    assert np.all((p > 0) & (p <= 1))


def test_rdm_file_ids_matched_and_refused(tmp_path, capsys):
    data, mask_path, _, r = _volume(tmp_path, seed=1)
    ids = np.array([f"im{i}" for i in range(8)])
    feats = r.normal(size=(8, 3))
    order = r.permutation(8)
    save_rdms(tmp_path / "m.rdm.h5", compute_rdm(feats[order])[None], names=["layer"],
              stim_ids=ids[order])
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    out = tmp_path / "a.nii.gz"
    assert main(["searchlight", str(data), "--mask", str(mask_path), "--radius", "4.5",
                 "--model", str(tmp_path / "m.rdm.h5"), "--ids", str(tmp_path / "ids.txt"),
                 "--out", str(out)]) == 0
    masker = BrainMasker(str(mask_path))
    X = masker.fit_transform(str(data))
    expect = Searchlight(masker=masker, radius=4.5).fit(X, feats).to_image()
    np.testing.assert_allclose(np.asarray(nib.load(out).dataobj), np.asarray(expect.dataobj),
                               rtol=1e-6, equal_nan=True)
    (tmp_path / "other.txt").write_text("\n".join(f"x{i}" for i in range(8)) + "\n")
    capsys.readouterr()
    assert main(["searchlight", str(data), "--mask", str(mask_path), "--model",
                 str(tmp_path / "m.rdm.h5"), "--ids", str(tmp_path / "other.txt"),
                 "--out", str(tmp_path / "b.nii.gz")]) == 1
    err = capsys.readouterr().err
    assert "model_rdms" in err and not (tmp_path / "b.nii.gz").exists()


def test_surface_encoding_map(tmp_path, capsys):
    coords, faces = _icosphere(2, r=20.0)
    mesh = nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(coords.astype(np.float32), intent="NIFTI_INTENT_POINTSET"),
        nib.gifti.GiftiDataArray(faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE")])
    mesh.to_filename(tmp_path / "lh.surf.gii")
    r = np.random.default_rng(2)
    F = r.normal(size=(10, 4))
    Y = (F @ r.normal(size=(4, len(coords))) + r.normal(size=(10, len(coords))))
    gii = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
        row.astype(np.float32), intent="NIFTI_INTENT_SHAPE", datatype="NIFTI_TYPE_FLOAT32")
        for row in Y])
    gii.to_filename(tmp_path / "lh.func.gii")
    np.save(tmp_path / "F.npy", F)
    out = tmp_path / "lh.r2.func.gii"
    assert main(["searchlight", str(tmp_path / "lh.func.gii"), "--mesh",
                 str(tmp_path / "lh.surf.gii"), "--analysis", "encoding", "--features",
                 str(tmp_path / "F.npy"), "--radius", "8", "--out", str(out)]) == 0
    masker = BrainMasker()
    X = masker.fit_transform(str(tmp_path / "lh.func.gii"))
    sl = Searchlight("encoding", masker=masker, mesh=str(tmp_path / "lh.surf.gii"),
                     radius=8).fit(X, F)
    np.testing.assert_allclose(nib.load(out).darrays[0].data, sl.score_map_[:, 0], rtol=1e-5)
    assert np.nanmedian(sl.score_map_) > 0.2  # the features drive every vertex
    capsys.readouterr()
    assert main(["searchlight", str(tmp_path / "lh.func.gii"), "--analysis", "encoding",
                 "--features", str(tmp_path / "F.npy"), "--out", str(tmp_path / "x.nii")]) == 1
    assert "gifti data give maps written as .gii" in capsys.readouterr().err


def test_cifti_map(tmp_path):
    from tests.searchlight.test_spaces import _cifti

    path, coords, faces, *_ = _cifti(tmp_path, n=7)
    mesh = nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(coords.astype(np.float32), intent="NIFTI_INTENT_POINTSET"),
        nib.gifti.GiftiDataArray(faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE")])
    mesh.to_filename(tmp_path / "L.surf.gii")
    model = compute_rdm(np.random.default_rng(4).normal(size=(7, 3)))
    np.save(tmp_path / "model.npy", model)
    out = tmp_path / "rsa.dscalar.nii"
    assert main(["searchlight", str(path), "--mesh", str(tmp_path / "L.surf.gii"),
                 "--radius", "7", "--model", str(tmp_path / "model.npy"),
                 "--out", str(out)]) == 0
    masker = BrainMasker().fit(str(path))
    X = masker.transform(str(path))
    sl = Searchlight(masker=masker, mesh={"CORTEX_LEFT": (coords, faces)}, radius=7,
                     model_rdms=model).fit(X)
    img = nib.load(out)
    assert img.header.get_axis(1) == masker.brain_models_
    np.testing.assert_allclose(np.asarray(img.dataobj)[0], sl.score_map_[:, 0], rtol=1e-5,
                               equal_nan=True)
