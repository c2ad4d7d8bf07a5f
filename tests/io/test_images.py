"""Tests of neuroprobe.io.images: loading, lazy block reads, LUTs, atomic writes."""

import os

import nibabel as nib
import numpy as np
import pytest
from nibabel.cifti2 import cifti2_axes as ax
from nibabel.testing import data_path

from neuroprobe.io import images as nio

GIFTI_DATA = os.path.join(os.path.dirname(nib.__file__), "gifti", "tests", "data")
EXAMPLE4D = os.path.join(data_path, "example4d.nii.gz")
MGZ = os.path.join(data_path, "test.mgz")


def _cifti(n_rows=3, seed=0):
    bm = ax.BrainModelAxis.from_surface(np.array([0, 2, 3, 7]), 9, "CortexLeft")
    vmask = np.zeros((2, 3, 2), bool)
    vmask[1, :, 1] = True
    bm = bm + ax.BrainModelAxis.from_mask(vmask, affine=np.eye(4), name="thalamus_right")
    data = np.random.default_rng(seed).standard_normal((n_rows, len(bm))).astype(np.float32)
    return nib.Cifti2Image(data, header=(ax.ScalarAxis([f"s{i}" for i in range(n_rows)]), bm))


def test_load_and_describe_real_files():
    img = nio.load_image(EXAMPLE4D)
    assert nio.image_format(img) == "nifti"
    assert nio.n_samples(img) == 2 and nio.space_size(img) == 128 * 96 * 24
    mgh = nio.load_image(MGZ)
    assert nio.image_format(mgh) == "mgh" and nio.n_samples(mgh) == 2
    gii = nio.load_image(os.path.join(GIFTI_DATA, "task.func.gii"))
    assert nio.image_format(gii) == "gifti"
    assert nio.n_samples(gii) == 10 and nio.space_size(gii) == 642
    curv = nio.load_image(os.path.join(GIFTI_DATA, "rh.shape.curv.gii"))  # one (n, 1) array
    assert nio.n_samples(curv) == 1 and nio.space_size(curv) == 133764
    assert nio.image_format(_cifti()) == "cifti"


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nii"):
        nio.load_image(tmp_path / "missing.nii")
    bad = tmp_path / "bad.nii"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="bad.nii"):
        nio.load_image(bad)
    with pytest.raises(ValueError, match="surface geometry"):
        nio.n_samples(nio.load_image(os.path.join(GIFTI_DATA, "ascii.gii")))


@pytest.mark.parametrize("max_bytes", [None, 1])
def test_iter_rows_volume_matches_full_read(max_bytes):
    img = nio.load_image(EXAMPLE4D)
    full = np.asarray(img.dataobj, dtype=np.float32)
    rng = np.random.default_rng(0)
    columns = np.sort(rng.choice(full[..., 0].size, 50, replace=False))
    blocks = list(nio.iter_rows(img, columns, max_bytes=max_bytes))
    if max_bytes == 1:
        assert len(blocks) == 2  # one volume per block
    got = np.vstack(blocks)
    expected = full.reshape(-1, 2)[columns].T  # C-order voxel index
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.float32


def test_iter_rows_3d_cifti_gifti():
    vol = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
    np.testing.assert_array_equal(np.vstack(list(nio.iter_rows(vol, [1, 5, 23]))), [[1, 5, 23]])
    cif = _cifti(n_rows=5)
    got = np.vstack(list(nio.iter_rows(cif, [1, 4, 6], max_bytes=1)))
    np.testing.assert_array_equal(got, np.asarray(cif.dataobj)[:, [1, 4, 6]])
    gii = nio.load_image(os.path.join(GIFTI_DATA, "task.func.gii"))
    got = np.vstack(list(nio.iter_rows(gii, [0, 10, 641])))
    expected = np.stack([d.data for d in gii.darrays])[:, [0, 10, 641]]
    np.testing.assert_array_equal(got, expected)


def test_read_lut(tmp_path):
    lut = tmp_path / "lut.txt"
    lut.write_text("# FreeSurfer style\n0  Unknown 0 0 0 0\n\n17 Left-Hippocampus 220 216 20 0\n"
                   "1007 ctx-lh-fusiform 180 220 140 0  # comment\n")
    assert nio.read_lut(lut) == {0: "Unknown", 17: "Left-Hippocampus", 1007: "ctx-lh-fusiform"}
    lut.write_text("x Unknown\n")
    with pytest.raises(ValueError, match="line 1"):
        nio.read_lut(lut)


@pytest.mark.parametrize("name", ["map.nii.gz", "map.dscalar.nii", "map.func.gii", "map.mgz"])
def test_save_image_atomic_in_format(tmp_path, name):
    data = np.random.default_rng(1).standard_normal((3, 642)).astype(np.float32)
    ref_gii = nio.load_image(os.path.join(GIFTI_DATA, "task.func.gii"))
    if name.endswith(".nii.gz"):
        img, expected = nib.Nifti1Image(data.reshape(3, 6, 107), np.eye(4)), data.reshape(3, 6, 107)
    elif name.endswith(".dscalar.nii"):
        cif = _cifti()
        img = nio.new_cifti_like(cif.header.get_axis(1), np.asarray(cif.dataobj))
        expected = np.asarray(cif.dataobj)
    elif name.endswith(".gii"):
        img, expected = nio.new_gifti_like(ref_gii, data), data
    else:
        img, expected = nib.MGHImage(data.reshape(3, 6, 107), np.eye(4)), data.reshape(3, 6, 107)
    out = nio.save_image(img, tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left
    back = nio.load_image(out)
    assert type(back) is type(img)
    if isinstance(back, nib.gifti.GiftiImage):
        np.testing.assert_array_equal(np.stack([d.data for d in back.darrays]), expected)
    else:
        np.testing.assert_array_equal(np.asarray(back.dataobj), expected)


def test_save_pair_needs_pair_of_paths(tmp_path):
    ref = nio.load_image(os.path.join(GIFTI_DATA, "task.func.gii"))
    pair = (nio.new_gifti_like(ref, np.zeros((1, 642))), nio.new_gifti_like(ref, np.ones((1, 642))))
    with pytest.raises(ValueError, match="pair of output paths"):
        nio.save_image(pair, tmp_path / "x.func.gii")
    paths = nio.save_image(pair, (tmp_path / "lh.func.gii", tmp_path / "rh.func.gii"))
    assert nio.load_image(paths[1]).darrays[0].data.sum() == 642
