"""Tests of BrainMasker on real nibabel test files and small images built here."""

import os
import tracemalloc

import h5py
import joblib
import nibabel as nib
import numpy as np
import pytest
from nibabel.cifti2 import cifti2_axes as ax
from nibabel.testing import data_path
from sklearn.base import clone

from neuroprobe.transformers import BrainMasker
from neuroprobe.transformers import brain as brain_mod

GIFTI_DATA = os.path.join(os.path.dirname(nib.__file__), "gifti", "tests", "data")
EXAMPLE4D = os.path.join(data_path, "example4d.nii.gz")
MGZ = os.path.join(data_path, "test.mgz")


def _box_mask(shape, affine, box):
    mask = np.zeros(shape, np.uint8)
    mask[box] = 1
    return nib.Nifti1Image(mask, affine)


# ---------------------------------------------------------------- NIfTI / MGH
def test_nifti_4d_roundtrip_real_file(tmp_path):
    img = nib.load(EXAMPLE4D)
    full = img.get_fdata().astype(np.float32)
    mask = _box_mask(img.shape[:3], img.affine, np.s_[40:60, 30:50, 10:14])
    masker = BrainMasker(mask)
    Y = masker.fit_transform(EXAMPLE4D)
    sel = mask.get_fdata().astype(bool)
    np.testing.assert_array_equal(Y, full[sel].T)
    assert Y.dtype == np.float32 and Y.shape == (2, int(sel.sum()))
    assert masker.format_ == "nifti" and masker.n_features_out_ == sel.sum()
    back = masker.inverse_transform(Y)
    assert isinstance(back, nib.Nifti1Image) and back.shape == img.shape
    np.testing.assert_allclose(back.affine, img.affine)
    np.testing.assert_array_equal(back.get_fdata(), full * sel[..., None])
    assert back.header.get_zooms() == img.header.get_zooms()
    path = tmp_path / "map.nii.gz"
    back.to_filename(path)
    np.testing.assert_array_equal(nib.load(path).get_fdata(), full * sel[..., None])
    one = masker.inverse_transform(Y[0])  # a vector -> a 3-D map
    assert one.shape == img.shape[:3]
    names = masker.get_feature_names_out()
    i, j, k = np.argwhere(sel)[0]
    assert names[0] == f"voxel_{i}_{j}_{k}" and len(names) == Y.shape[1]


def test_list_of_3d_volumes_equals_4d_and_3d_alone_is_an_error():
    img = nib.load(EXAMPLE4D)
    vols = [nib.Nifti1Image(np.asarray(img.dataobj[..., t]), img.affine) for t in range(2)]
    mask = _box_mask(img.shape[:3], img.affine, np.s_[50:55, 40:45, 5:9])
    a = BrainMasker(mask).fit_transform(EXAMPLE4D)
    b = BrainMasker(mask).fit_transform(vols)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="3-D image.*4-D"):
        BrainMasker(mask).fit(vols[0])
    assert BrainMasker(mask).fit_transform([vols[0]]).shape == (1, 100)


def test_mgz_roundtrip(tmp_path):
    img = nib.load(MGZ)
    full = img.get_fdata().astype(np.float32)
    masker = BrainMasker()
    Y = masker.fit_transform(MGZ)
    np.testing.assert_array_equal(Y, full.reshape(-1, full.shape[3]).T)
    back = masker.inverse_transform(Y)
    assert isinstance(back, nib.MGHImage)
    back.to_filename(tmp_path / "back.mgz")
    np.testing.assert_array_equal(nib.load(tmp_path / "back.mgz").get_fdata(), full)


@pytest.fixture()
def atlas_case(tmp_path):
    rng = np.random.default_rng(0)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    atlas = np.zeros((6, 5, 4), np.int16)
    atlas[:3, :, :2] = 17
    atlas[3:, :2, :] = 1007
    atlas[3:, 3:, 2:] = 5
    data = rng.standard_normal((6, 5, 4, 7)).astype(np.float32)
    paths = {
        "data": tmp_path / "bold.nii",
        "atlas": tmp_path / "atlas.nii.gz",
        "lut": tmp_path / "FreeSurferColorLUT.txt",
    }
    nib.Nifti1Image(data, affine).to_filename(paths["data"])
    nib.Nifti1Image(atlas, affine).to_filename(paths["atlas"])
    paths["lut"].write_text("0 Unknown 0 0 0 0\n17 Left-Hippocampus 220 216 20 0\n"
                            "1007 ctx-lh-fusiform 180 220 140 0\n5 Left-Thalamus 0 118 14 0\n")
    return paths, atlas, data


def test_label_atlas_by_name_value_lut_and_dict(atlas_case):
    paths, atlas, data = atlas_case
    m = BrainMasker((paths["atlas"], paths["lut"]), labels=["ctx-lh-fusiform", 17])
    Y = m.fit_transform(paths["data"])
    sel = np.isin(atlas, [1007, 17])
    np.testing.assert_array_equal(Y, data[sel].T)
    assert m.regions_ == ["ctx-lh-fusiform", "Left-Hippocampus"]
    m2 = BrainMasker(paths["atlas"], labels={1007: "FFA", 5: "thal"}, summary="mean")
    S = m2.fit_transform(paths["data"])
    np.testing.assert_allclose(S[:, 0], data[atlas == 1007].mean(0), rtol=1e-6)
    np.testing.assert_allclose(S[:, 1], data[atlas == 5].mean(0), rtol=1e-6)
    assert list(m2.get_feature_names_out()) == ["FFA", "thal"]
    m3 = BrainMasker(paths["atlas"], labels="all")
    assert m3.fit(paths["data"]).n_voxels_ == int((atlas != 0).sum())


@pytest.mark.parametrize("summary,func", [("mean", np.mean), ("max", np.max), ("std", np.std)])
def test_summary_matches_numpy_and_paints_back(atlas_case, summary, func):
    paths, atlas, data = atlas_case
    m = BrainMasker(paths["atlas"], labels=[17, 1007, 5], summary=summary)
    S = m.fit_transform(paths["data"])
    expected = np.stack([func(data[atlas == v], axis=0) for v in (17, 1007, 5)], axis=1)
    np.testing.assert_allclose(S, expected, rtol=1e-5, atol=1e-6)
    painted = m.inverse_transform(S[0]).get_fdata()
    for r, v in enumerate((17, 1007, 5)):
        np.testing.assert_allclose(painted[atlas == v], S[0, r])
    assert np.all(painted[atlas == 0] == 0)


def test_bad_labels_and_masks(atlas_case, tmp_path):
    paths, atlas, data = atlas_case
    with pytest.raises(ValueError, match="not binary.*labels="):
        BrainMasker(paths["atlas"]).fit(paths["data"])
    with pytest.raises(ValueError, match=r"'ctx-lh-fusiformm'.*ctx-lh-fusiform.*closest"):
        BrainMasker((paths["atlas"], paths["lut"]), labels=["ctx-lh-fusiformm"]).fit(paths["data"])
    with pytest.raises(ValueError, match="labels were given without a mask_img"):
        BrainMasker(labels=["x"]).fit(paths["data"])
    with pytest.raises(
        ValueError, match=r"The 'summary' parameter of BrainMasker must be a str among .*'mean'"
        r".* or None\. Got 'median' instead"
    ):
        BrainMasker(summary="median").fit(paths["data"])
    with pytest.raises(ValueError, match="The 'summary' parameter of BrainMasker"):
        BrainMasker(summary="median").fit_transform(paths["data"])
    with pytest.raises(TypeError, match=r"The 'mask_img' parameter of BrainMasker must be .*"
                                        r"Got 3 instead"):
        BrainMasker(mask_img=3).fit(paths["data"])
    with pytest.raises(TypeError, match=r"The 'memory' parameter of BrainMasker must be .*'cache'"):
        BrainMasker(memory=1.5).fit(paths["data"])
    small = tmp_path / "small.nii"
    nib.Nifti1Image(np.ones((6, 5, 3), np.uint8), np.diag([2.0, 2, 2, 1])).to_filename(small)
    with pytest.raises(ValueError, match=r"shape mismatch.*small\.nii.*bold\.nii"):
        BrainMasker(small).fit(paths["data"])
    shifted = tmp_path / "shifted.nii"
    aff = np.diag([2.0, 2, 2, 1])
    aff[0, 3] = 4
    nib.Nifti1Image(np.ones((6, 5, 4), np.uint8), aff).to_filename(shifted)
    with pytest.raises(ValueError, match=r"affine mismatch.*shifted\.nii.*bold\.nii"):
        BrainMasker(shifted).fit(paths["data"])
    m = BrainMasker((paths["atlas"], paths["lut"]), labels=[17]).fit(paths["data"])
    with pytest.raises(ValueError, match="expected 30 values"):
        m.inverse_transform(np.zeros(29))


def test_nan_voxels_dropped_with_count_then_error_at_transform(tmp_path):
    data = np.random.default_rng(2).standard_normal((4, 4, 3, 5)).astype(np.float32)
    data[0, 0, 0, 2] = np.nan
    data[1, 2, 0, :] = np.nan
    data[3, 3, 2, 0] = np.inf
    img = nib.Nifti1Image(data, np.eye(4))
    with pytest.warns(RuntimeWarning, match="dropped 3 of 48 voxels"):
        m = BrainMasker().fit(img)
    assert m.n_dropped_nonfinite_ == 3 and m.n_voxels_ == 45
    Y = m.transform(img)
    assert np.isfinite(Y).all()
    finite = np.isfinite(data).all(axis=3)
    np.testing.assert_array_equal(Y, data[finite].T)
    data2 = np.nan_to_num(data, nan=1.0, posinf=1.0)
    data2[2, 2, 2, 1] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite value"):
        m.transform(nib.Nifti1Image(data2, np.eye(4)))


def test_fit_from_mask_only_and_sklearn_contract(atlas_case):
    paths, atlas, data = atlas_case
    m = BrainMasker((paths["atlas"], paths["lut"]), labels=["Left-Thalamus"])
    assert m.get_params()["labels"] == ["Left-Thalamus"]
    c = clone(m)
    assert c.fit(None) is c and not hasattr(m, "mask_")
    np.testing.assert_array_equal(c.transform(paths["data"]), data[atlas == 5].T)
    np.testing.assert_array_equal(c.mask_, atlas == 5)
    with pytest.raises(ValueError, match="needs data X or a mask_img"):
        BrainMasker().fit()
    with pytest.raises(TypeError, match="not a numeric array"):
        c.transform(np.zeros((3, 4)))


# ---------------------------------------------------------------- lazy reading
def _rchar():
    try:
        with open("/proc/self/io") as fh:
            return next(int(ln.split()[1]) for ln in fh if ln.startswith("rchar"))
    except (OSError, StopIteration):
        return None


def test_small_roi_out_of_large_4d_file_is_read_lazily(tmp_path):
    shape = (48, 48, 32, 40)  # 11.8 MB of float32 on disk
    data = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    affine = np.eye(4)
    path = tmp_path / "big.nii"
    nib.Nifti1Image(data, affine).to_filename(path)
    file_bytes = os.path.getsize(path)
    box = np.s_[20:24, 10:14, 5:9]
    mask = _box_mask(shape[:3], affine, box)
    expected = data[box].reshape(-1, shape[3])  # C-order voxels
    del data
    masker = BrainMasker(mask).fit(None)
    r0 = _rchar()
    tracemalloc.start()
    Y = masker.transform(str(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    r1 = _rchar()
    np.testing.assert_array_equal(Y, expected.T)
    assert peak < file_bytes / 20, (peak, file_bytes)
    if r0 is not None:
        assert r1 - r0 < file_bytes / 10, (r1 - r0, file_bytes)


def test_gzipped_4d_read_in_bounded_blocks(tmp_path, monkeypatch):
    shape = (32, 32, 16, 24)
    data = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    path = tmp_path / "big.nii.gz"
    nib.Nifti1Image(data, np.eye(4)).to_filename(path)
    vol_bytes = 32 * 32 * 16 * 4
    monkeypatch.setattr("neuroprobe.io.images.BLOCK_BYTES", 4 * vol_bytes)
    calls = []
    orig = brain_mod.nio.iter_rows

    def spy(img, columns, **kw):
        for block in orig(img, columns, **kw):
            calls.append(block.shape[0])
            yield block

    monkeypatch.setattr(brain_mod.nio, "iter_rows", spy)
    mask = _box_mask(shape[:3], np.eye(4), np.s_[3:6, 3:6, 3:6])
    tracemalloc.start()
    Y = BrainMasker(mask).fit(None).transform(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert calls == [4] * 6  # 24 volumes, four per block
    np.testing.assert_array_equal(Y, data[3:6, 3:6, 3:6].reshape(-1, 24).T)
    assert peak < data.nbytes / 4


# ---------------------------------------------------------------- CIFTI
def _cifti_space():
    bm = ax.BrainModelAxis.from_surface(np.array([0, 2, 3, 5, 7]), 10, "CortexLeft")
    bm = bm + ax.BrainModelAxis.from_surface(np.arange(6), 6, "CortexRight")
    vmask = np.zeros((3, 3, 3), bool)
    vmask[1, 1, :] = True
    return bm + ax.BrainModelAxis.from_mask(vmask, affine=np.eye(4), name="thalamus_left")


@pytest.fixture()
def cifti_case(tmp_path):
    bm = _cifti_space()
    data = np.random.default_rng(5).standard_normal((6, len(bm))).astype(np.float32)
    series = nib.Cifti2Image(data, header=(ax.SeriesAxis(0, 2.0, 6), bm))
    series.nifti_header.set_intent("ConnDenseSeries")
    nib.save(series, tmp_path / "bold.dtseries.nii")
    scalar = nib.Cifti2Image(data[:2], header=(ax.ScalarAxis(["a", "b"]), bm))
    scalar.nifti_header.set_intent("ConnDenseScalar")
    nib.save(scalar, tmp_path / "betas.dscalar.nii")
    labels = np.array([[1, 1, 2, 2, 0, 0, 3, 3, 1, 1, 0, 2, 2, 2]], np.float32)
    table = {0: ("???", (0, 0, 0, 0)), 1: ("V1", (1, 0, 0, 1)), 2: ("FFA", (0, 1, 0, 1)),
             3: ("PPA", (0, 0, 1, 1))}
    dlabel = nib.Cifti2Image(labels, header=(ax.LabelAxis(["parc"], table), bm))
    dlabel.nifti_header.set_intent("ConnDenseLabel")
    nib.save(dlabel, tmp_path / "atlas.dlabel.nii")
    return tmp_path, bm, data, labels[0]


def test_cifti_structures_by_full_and_short_name_roundtrip(cifti_case):
    folder, bm, data, _ = cifti_case
    m = BrainMasker(labels=["CIFTI_STRUCTURE_CORTEX_LEFT", "thalamus_left"])
    Y = m.fit_transform(folder / "bold.dtseries.nii")
    sel = np.isin(bm.name, ["CIFTI_STRUCTURE_CORTEX_LEFT", "CIFTI_STRUCTURE_THALAMUS_LEFT"])
    np.testing.assert_array_equal(Y, data[:, sel])
    assert m.regions_ == ["CORTEX_LEFT", "THALAMUS_LEFT"]
    names = m.get_feature_names_out()
    assert names[0] == "CORTEX_LEFT:vertex_0" and names[-1] == "THALAMUS_LEFT:voxel_1_1_2"
    back = m.inverse_transform(Y)
    assert isinstance(back, nib.Cifti2Image)
    assert back.header.get_axis(1) == bm
    assert isinstance(back.header.get_axis(0), ax.SeriesAxis)
    nib.save(back, folder / "back.dtseries.nii")
    np.testing.assert_array_equal(nib.load(folder / "back.dtseries.nii").get_fdata(),
                                  data * sel)


def test_cifti_dscalar_full_roundtrip(cifti_case):
    folder, bm, data, _ = cifti_case
    m = BrainMasker()
    Y = m.fit_transform(folder / "betas.dscalar.nii")
    np.testing.assert_array_equal(Y, data[:2])
    back = m.inverse_transform(Y)
    assert list(back.header.get_axis(0).name) == ["a", "b"]
    np.testing.assert_array_equal(back.get_fdata(), data[:2])
    acc = m.inverse_transform(Y[0])  # one accuracy map -> a one-row dscalar
    assert acc.shape == (1, len(bm))


def test_cifti_dlabel_by_name_with_summary(cifti_case):
    folder, bm, data, labels = cifti_case
    m = BrainMasker(folder / "atlas.dlabel.nii", labels=["FFA", "V1"], summary="mean")
    S = m.fit_transform(folder / "bold.dtseries.nii")
    np.testing.assert_allclose(S[:, 0], data[:, labels == 2].mean(1), rtol=1e-6)
    np.testing.assert_allclose(S[:, 1], data[:, labels == 1].mean(1), rtol=1e-6)
    assert m.label_table_[3] == "PPA"
    with pytest.raises(ValueError, match=r"'FFAx'.*available.*'FFA'.*CORTEX_LEFT"):
        BrainMasker(folder / "atlas.dlabel.nii", labels=["FFAx"]).fit(folder / "bold.dtseries.nii")
    with pytest.raises(ValueError, match="not binary"):
        BrainMasker(folder / "atlas.dlabel.nii").fit(folder / "bold.dtseries.nii")


def test_cifti_axis_errors(cifti_case, tmp_path):
    folder, bm, data, _ = cifti_case
    with pytest.raises(ValueError, match="CIFTI first axis is a BrainModelAxis"):
        BrainMasker().fit(os.path.join(data_path, "row_major.dconn.nii"))
    parcels = ax.ParcelsAxis.from_brain_models([("p1", bm[:5]), ("p2", bm[5:])])
    img = nib.Cifti2Image(np.zeros((3, 2), np.float32), header=(ax.SeriesAxis(0, 1, 3), parcels))
    with pytest.raises(ValueError, match="ParcelsAxis.*brain-model axis"):
        BrainMasker().fit(img)
    other = nib.Cifti2Image(data[:2, :5], header=(ax.ScalarAxis(["a", "b"]), bm[:5]))
    m = BrainMasker().fit(folder / "betas.dscalar.nii")
    with pytest.raises(ValueError, match="brain-model mismatch"):
        m.transform(other)


# ---------------------------------------------------------------- GIFTI
def test_gifti_real_func_roundtrip(tmp_path):
    path = os.path.join(GIFTI_DATA, "task.func.gii")
    gii = nib.load(path)
    full = np.stack([d.data for d in gii.darrays])
    m = BrainMasker()
    Y = m.fit_transform(path)
    np.testing.assert_array_equal(Y, full)
    back = m.inverse_transform(Y)
    assert isinstance(back, nib.gifti.GiftiImage) and len(back.darrays) == 10
    nib.save(back, tmp_path / "back.func.gii")
    again = nib.load(tmp_path / "back.func.gii")
    np.testing.assert_array_equal(np.stack([d.data for d in again.darrays]), full)
    assert again.darrays[0].intent == gii.darrays[0].intent


def test_gifti_real_label_table_selection():
    annot = os.path.join(GIFTI_DATA, "rh.aparc.annot.gii")
    keys = nib.load(annot).darrays[0].data
    table = {lb.label: lb.key for lb in nib.load(annot).labeltable.labels}
    n = keys.size
    data = np.random.default_rng(6).standard_normal((2, n)).astype(np.float32)
    img = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(d) for d in data])
    m = BrainMasker(annot, labels=["fusiform", "lateraloccipital"])
    Y = m.fit_transform(img)
    sel = np.isin(keys, [table["fusiform"], table["lateraloccipital"]])
    np.testing.assert_array_equal(Y, data[:, sel])
    back = m.inverse_transform(Y)
    np.testing.assert_array_equal(np.stack([d.data for d in back.darrays]), data * sel)
    with pytest.raises(ValueError, match="'fusifrom'.*closest: \\['fusiform'\\]"):
        BrainMasker(annot, labels=["fusifrom"]).fit(img)


def test_gifti_pair_and_label_gii(tmp_path):
    label_path = os.path.join(GIFTI_DATA, "label.gii")
    keys = nib.load(label_path).darrays[0].data
    n_r = keys.size
    rng = np.random.default_rng(7)
    lh_data = np.stack([d.data for d in nib.load(os.path.join(GIFTI_DATA, "task.func.gii")
                                                  ).darrays])[:3]
    rh_data = rng.standard_normal((3, n_r)).astype(np.float32)
    rh = tmp_path / "rh.func.gii"
    # right hemisphere as one (n_vertices, n_samples) array, left as one array per sample
    nib.save(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
        np.ascontiguousarray(rh_data.T), intent="NIFTI_INTENT_TIME_SERIES")]), rh)
    lh = tmp_path / "lh.func.gii"
    nib.save(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(d) for d in lh_data]), lh)
    lh_mask = tmp_path / "lh.label.gii"
    lh_keys = (np.arange(642) % 3 == 0).astype(np.int32)
    lab = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
        lh_keys, intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32")])
    lab.labeltable.labels.append(nib.gifti.GiftiLabel(key=1, red=1, green=0, blue=0))
    lab.labeltable.labels[-1].label = "Positive"
    nib.save(lab, lh_mask)
    m = BrainMasker((lh_mask, label_path), labels=["Positive"])
    Y = m.fit_transform((lh, rh))
    assert m.format_ == "gifti_pair"
    sel_l, sel_r = lh_keys == 1, keys == 1
    np.testing.assert_array_equal(Y, np.hstack([lh_data[:, sel_l], rh_data[:, sel_r]]))
    names = m.get_feature_names_out()
    assert names[0] == "lh:vertex_0" and names[-1].startswith("rh:vertex_")
    back_l, back_r = m.inverse_transform(Y)
    np.testing.assert_array_equal(np.stack([d.data for d in back_r.darrays]), rh_data * sel_r)
    np.testing.assert_array_equal(np.stack([d.data for d in back_l.darrays]), lh_data * sel_l)
    with pytest.raises(ValueError, match="vertex count mismatch"):
        m.transform((rh, lh))


# ---------------------------------------------------------------- caching, HDF5
def test_memory_cache_hits_and_invalidates(atlas_case, tmp_path, monkeypatch):
    paths, atlas, data = atlas_case
    calls = []
    orig = brain_mod._read_array

    def spy(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    monkeypatch.setattr(brain_mod, "_read_array", spy)
    memory = joblib.Memory(tmp_path / "cache", verbose=0)
    m = BrainMasker(paths["atlas"], labels=[17], memory=memory).fit(None)
    a = m.transform(paths["data"])
    b = m.transform(paths["data"])
    np.testing.assert_array_equal(a, b)
    assert len(calls) == 1
    new = data.copy()
    new[atlas == 17] += 1
    nib.Nifti1Image(new, np.diag([2.0, 2, 2, 1])).to_filename(paths["data"])
    os.utime(paths["data"], ns=(1, 10**18))  # a distinct modification time
    c = m.transform(paths["data"])
    assert len(calls) == 2
    np.testing.assert_allclose(c, a + 1, rtol=1e-6)


@pytest.mark.parametrize("summary", [None, "max"])
def test_transform_to_h5_equals_transform(atlas_case, tmp_path, summary):
    paths, atlas, data = atlas_case
    m = BrainMasker(paths["atlas"], labels=[17, 5], summary=summary).fit(paths["data"])
    out = m.transform_to_h5([paths["data"], paths["data"]], tmp_path / "Y.h5", dataset="Y")
    with h5py.File(out) as fh:
        np.testing.assert_array_equal(fh["Y"][:], m.transform([paths["data"], paths["data"]]))
        assert list(fh["Y_feature_names"].asstr()[:]) == list(m.get_feature_names_out())
        assert fh["Y"].dtype == np.float32
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".h5") == ["Y.h5"]


def test_in_pipeline_and_pandas_output(atlas_case):
    pd = pytest.importorskip("pandas")
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline

    paths, atlas, data = atlas_case
    pipe = make_pipeline(BrainMasker(paths["atlas"], labels=[17]), PCA(2))
    Z = pipe.fit_transform(paths["data"])
    np.testing.assert_allclose(np.abs(Z), np.abs(PCA(2).fit_transform(data[atlas == 17].T)),
                               rtol=1e-4, atol=1e-5)
    m = BrainMasker(paths["atlas"], labels=[17, 5], summary="mean").set_output(transform="pandas")
    df = m.fit_transform(paths["data"])
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["17", "5"]


# ---------------------------------------------------------------- fill and description
def test_inverse_transform_fill_and_description_survive_saving(cifti_case, tmp_path):
    """Outside the mask (and at dropped voxels) maps hold ``fill``; the text is in the header."""
    folder, bm, data, _ = cifti_case
    text = "neuroprobe encode r: mean of 5 outer CV folds; NaN=no data"
    # NIfTI with a mask and a dropped (NaN) voxel
    vol = np.random.RandomState(0).randn(3, 3, 2, 4).astype(np.float32)
    vol[0, 0, 0, 1] = np.nan
    mask = _box_mask((3, 3, 2), np.eye(4), np.s_[:2, :2, :])
    m = BrainMasker(mask)
    with pytest.warns(RuntimeWarning, match="dropped 1 of 8"):
        Y = m.fit_transform(nib.Nifti1Image(vol, np.eye(4)))
    assert np.asarray(m.inverse_transform(Y[0]).dataobj)[2, 2, 0] == 0  # default unchanged
    img = m.inverse_transform(Y[0], fill=np.nan, description=text)
    nib.save(img, tmp_path / "map.nii.gz")
    back = nib.load(tmp_path / "map.nii.gz")
    got = back.get_fdata()
    assert np.isnan(got[~m.mask_]).all() and np.isnan(got[0, 0, 0])
    np.testing.assert_array_equal(got[m.mask_], Y[0])
    assert back.header["descrip"].tobytes().decode().rstrip("\x00") == text
    long = m.inverse_transform(Y[0], description="x" * 100)
    assert len(long.header["descrip"].tobytes()) == 80  # cut to the NIfTI field
    # CIFTI (grayordinates of one structure)
    mc = BrainMasker(labels=["CORTEX_LEFT"])
    Yc = mc.fit_transform(folder / "bold.dtseries.nii")
    cimg = mc.inverse_transform(Yc[0], fill=np.nan, description=text)
    nib.save(cimg, tmp_path / "map.dscalar.nii")
    cback = nib.load(tmp_path / "map.dscalar.nii")
    keep = np.asarray(bm.name) == "CIFTI_STRUCTURE_CORTEX_LEFT"
    values = cback.get_fdata()[0]
    assert np.isnan(values[~keep]).all()
    np.testing.assert_array_equal(values[keep], Yc[0])
    assert cback.nifti_header["descrip"].tobytes().decode().rstrip("\x00") == text
    # GIFTI
    gpath = os.path.join(GIFTI_DATA, "task.func.gii")
    mg = BrainMasker().fit(gpath)
    gimg = mg.inverse_transform(np.zeros(mg.n_features_out_), fill=np.nan, description=text)
    nib.save(gimg, tmp_path / "map.func.gii")
    gback = nib.load(tmp_path / "map.func.gii")
    assert gback.meta["Description"] == text and gback.darrays[0].meta["Description"] == text


def test_summary_inverse_transform_fills_outside_the_regions(atlas_case):
    paths, atlas, data = atlas_case
    m = BrainMasker(paths["atlas"], labels=[17, 5], summary="mean")
    S = m.fit_transform(paths["data"])
    painted = m.inverse_transform(S[0], fill=np.nan).get_fdata()
    np.testing.assert_allclose(painted[atlas == 17], S[0, 0])
    np.testing.assert_allclose(painted[atlas == 5], S[0, 1])
    assert np.isnan(painted[(atlas != 17) & (atlas != 5)]).all()  # incl. label 1007, not chosen
