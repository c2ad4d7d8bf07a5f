"""Brain maps land where they belong: a hot voxel at its world coordinate on the MNI background
(nilearn) or at its slice (fallback), a hot vertex on its hemisphere, p-value maps hide exactly the
voxels with p >= alpha, and bad input names the file / argument and what was expected."""

import sys

import nibabel as nib
import numpy as np
import pytest

from neuroprobe import plotting
from neuroprobe.exceptions import BrainMapError
from neuroprobe.transformers import BrainMasker

nilearn = pytest.importorskip("nilearn")

AFFINE = np.array([[4.0, 0, 0, -20], [0, 4.0, 0, -40], [0, 0, 4.0, -20], [0, 0, 0, 1]])
HOT = (7, 3, 6)
HOT_XYZ = (8.0, -28.0, 4.0)  # AFFINE @ HOT
N_FS5 = 10242  # vertices per hemisphere of fsaverage5


def _volume(value=5.0):
    d = np.zeros((10, 10, 10), np.float32)
    d[HOT] = value
    d[2, 2, 2] = 1.0
    return d


@pytest.fixture(autouse=True)
def _no_pyplot_figures_left():
    plt = sys.modules.get("matplotlib.pyplot")
    before = set(plt.get_fignums()) if plt else set()
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    assert (set(plt.get_fignums()) if plt else set()) == before, "pyplot figures left open"


def _displayed_peak(ax):
    """World coordinates (horizontal, vertical) of the largest overlay pixel of a nilearn cut."""
    im = ax.images[-1]
    arr = np.ma.filled(np.ma.asarray(im.get_array()).astype(float), np.nan)
    r, c = np.unravel_index(np.nanargmax(arr), arr.shape)
    left, right, bottom, top = im.get_extent()
    h = left + (c + 0.5) * (right - left) / arr.shape[1]
    v = (top - (r + 0.5) * (top - bottom) / arr.shape[0]) if im.origin == "upper" else \
        (bottom + (r + 0.5) * (top - bottom) / arr.shape[0])
    return h, v


def test_hot_voxel_at_its_world_coordinate_on_the_mni_background():
    fig = plotting.plot_map(nib.Nifti1Image(_volume(), AFFINE))
    info = fig.neuroprobe_map
    assert info["peak_index"] == HOT
    np.testing.assert_allclose(info["cut_coords"], HOT_XYZ)
    display = info["display"]
    np.testing.assert_allclose(display.cut_coords, HOT_XYZ)
    dims = {"x": (1, 2), "y": (0, 2), "z": (0, 1)}  # world axes shown by each cut
    for cut, (a, b) in dims.items():
        ax = display.axes[cut].ax
        assert ax.figure is fig
        background, overlay = ax.images[-2], ax.images[-1]  # the anatomy under the map
        assert background.get_cmap().name == "gray"
        assert background.get_array().shape[0] > 50  # MNI152 at 2 mm, not the 10^3 map grid
        assert np.ma.asarray(overlay.get_array()).shape == (10, 10)
        h, v = _displayed_peak(ax)
        assert abs(h - HOT_XYZ[a]) <= 4.0 and abs(v - HOT_XYZ[b]) <= 4.0, (cut, h, v)
    table = plotting.figure_table(fig)
    row = int(np.argmax(table["value"]))
    assert (table["x"][row], table["y"][row], table["z"][row]) == HOT_XYZ


def test_glass_brain_and_masker_values():
    mask = np.zeros((10, 10, 10), bool)
    mask[1:9, 1:9, 1:9] = True
    masker = BrainMasker(nib.Nifti1Image(mask.astype(np.uint8), AFFINE)).fit()
    values = _volume()[mask]  # the masker's column order is C order over the mask
    fig = plotting.plot_map(values, masker, kind="glass")
    assert fig.neuroprobe_map["peak_index"] == HOT
    np.testing.assert_allclose(fig.neuroprobe_map["cut_coords"], HOT_XYZ)
    with pytest.raises(BrainMapError, match=r"shape \(5,\) matches no masker.*expects 512"):
        plotting.plot_map(np.ones(5), masker)
    with pytest.raises(BrainMapError, match="matches no masker"):
        plotting.plot_map(np.ones((4, 4)))


def test_fallback_draws_the_hot_voxel_in_its_slice():
    fig = plotting.plot_map(_volume(), engine="matplotlib")  # 3-D array: voxel grid
    info = fig.neuroprobe_map
    assert HOT[2] in info["slices"] and info["axis"] == 2
    panel = [ax for ax in fig.axes if ax.get_title() == f"slice {HOT[2]}"][0]
    arr = np.ma.filled(np.ma.asarray(panel.images[0].get_array()).astype(float), np.nan)
    assert np.unravel_index(np.nanargmax(arr), arr.shape) == (HOT[1], HOT[0])  # (row=j, col=i)


def test_pvalues_hide_exactly_the_voxels_with_p_at_or_above_alpha(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.uniform(0.5, 1.0, (10, 10, 10)).astype(np.float32)
    p = rng.uniform(0, 0.2, (10, 10, 10)).astype(np.float32)
    p[0, 0, 0] = np.nan  # a NaN p-value is never significant
    nib.Nifti1Image(data, AFFINE).to_filename(tmp_path / "r.nii.gz")
    nib.Nifti1Image(p, AFFINE).to_filename(tmp_path / "p.nii.gz")
    keep = np.nan_to_num(p, nan=1.0) < 0.05
    for engine in ("nilearn", "matplotlib"):
        fig = plotting.plot_map(tmp_path / "r.nii.gz", pvalues=tmp_path / "p.nii.gz",
                                alpha=0.05, engine=engine)
        t = plotting.figure_table(fig)
        shown = np.zeros_like(keep)
        shown[t["i"], t["j"], t["k"]] = True
        np.testing.assert_array_equal(shown, keep)
        np.testing.assert_allclose(t["value"], data[t["i"], t["j"], t["k"]])
    s = fig.neuroprobe_map["slices"][0]
    panel = [ax for ax in fig.axes if ax.get_title() == f"slice {s}"][0]
    arr = np.ma.filled(np.ma.asarray(panel.images[0].get_array()).astype(float), np.nan)
    np.testing.assert_array_equal(np.isfinite(arr), keep[:, :, s].T)  # hidden = transparent
    nib.Nifti1Image(p[:9], AFFINE).to_filename(tmp_path / "p9.nii.gz")
    with pytest.raises(BrainMapError, match=r"pvalues .*p9\.nii\.gz has shape \(9, 10, 10\) "
                       r"but the map .*r\.nii\.gz has shape \(10, 10, 10\)"):
        plotting.plot_map(tmp_path / "r.nii.gz", pvalues=tmp_path / "p9.nii.gz")
    nib.Nifti1Image(p, AFFINE * [[1], [1], [1], [1]] + np.eye(4) * [2, 0, 0, 0]).to_filename(
        tmp_path / "p_grid.nii.gz")
    with pytest.raises(BrainMapError, match=r"p_grid\.nii\.gz is on another voxel grid"):
        plotting.plot_map(tmp_path / "r.nii.gz", pvalues=tmp_path / "p_grid.nii.gz")
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        plotting.plot_map(tmp_path / "missing.nii.gz")


def _coloured_faces(ax):
    fc = ax.collections[0].get_facecolors()
    return int((~(np.isclose(fc[:, 0], fc[:, 1]) & np.isclose(fc[:, 1], fc[:, 2]))).sum())


def test_hot_vertex_on_its_hemisphere_and_wrong_vertex_counts(tmp_path):
    from nilearn.datasets import load_fsaverage

    faces = load_fsaverage("fsaverage5")["inflated"].parts
    values = np.zeros(2 * N_FS5)
    values[100] = 3.0  # left hemisphere vertex 100
    fig = plotting.plot_map(values, views=("lateral",))
    assert fig.neuroprobe_map["panels"] == [("left", "lateral"), ("right", "lateral")]
    axes3d = [ax for ax in fig.axes if ax.name == "3d"]
    n_with_vertex = int(np.any(faces["left"].faces == 100, axis=1).sum())
    assert _coloured_faces(axes3d[0]) == n_with_vertex  # exactly the faces around the vertex
    assert _coloured_faces(axes3d[1]) == 0
    t = plotting.figure_table(fig)
    assert list(t["hemi"]) == ["left"] and list(t["vertex"]) == [100]
    # a GIFTI file naming its hemisphere goes to that hemisphere
    meta = nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": "CortexRight"})
    gii = nib.gifti.GiftiImage(meta=meta, darrays=[nib.gifti.GiftiDataArray(
        values[:N_FS5].astype(np.float32), intent="NIFTI_INTENT_SHAPE")])
    nib.save(gii, tmp_path / "rh.shape.gii")
    fig = plotting.plot_map(tmp_path / "rh.shape.gii", kind="flat")
    assert fig.neuroprobe_map["panels"] == [("right", "flat")]
    bad = nib.gifti.GiftiImage(meta=meta, darrays=[nib.gifti.GiftiDataArray(
        np.zeros(500, np.float32), intent="NIFTI_INTENT_SHAPE")])
    nib.save(bad, tmp_path / "bad.shape.gii")
    with pytest.raises(BrainMapError, match=r"bad\.shape\.gii: the right hemisphere has 500 "
                       r"vertices but mesh fsaverage5 has 10242"):
        plotting.plot_map(tmp_path / "bad.shape.gii")
    with pytest.raises(BrainMapError, match=r"123 values, but mesh fsaverage5 has left 10242"):
        plotting.plot_map(np.ones(123))
    with pytest.raises(BrainMapError, match="pvalues .* has shape"):
        plotting.plot_map(values, pvalues=np.ones(N_FS5), hemi=None)


def test_cifti_split_into_surface_and_volume_parts(tmp_path):
    ax_mod = nib.cifti2.cifti2_axes
    vertices = np.arange(0, N_FS5, 7)
    vox = np.zeros((10, 10, 10), bool)
    vox[6:9, 2:5, 5:8] = True
    bm = (ax_mod.BrainModelAxis.from_surface(vertices, N_FS5, "CortexLeft")
          + ax_mod.BrainModelAxis.from_mask(vox, "thalamus_left", AFFINE))
    data = np.zeros(len(bm), np.float32)
    data[np.flatnonzero(bm.vertex == 700)[0]] = 2.0  # a surface hot spot
    data[len(vertices) + np.flatnonzero((bm.voxel[bm.volume_mask] == HOT).all(1))[0]] = 5.0
    img = nib.Cifti2Image(data[None], header=(ax_mod.ScalarAxis(["r"]), bm))
    img.to_filename(tmp_path / "r.dscalar.nii")
    fig = plotting.plot_map(tmp_path / "r.dscalar.nii", views=("lateral",))
    info = fig.neuroprobe_map
    assert info["panels"] == [("left", "lateral")]
    assert info["peak_index"] == HOT
    np.testing.assert_allclose(info["cut_coords"], HOT_XYZ)
    t = plotting.figure_table(fig)
    assert list(t["part"]) == ["left", "volume"] and list(t["vertex"]) == [700, -1]
    np.testing.assert_allclose([t["x"][1], t["y"][1], t["z"][1]], HOT_XYZ)
    bm32 = ax_mod.BrainModelAxis.from_surface(np.arange(10), 32492, "CortexLeft")
    bad = nib.Cifti2Image(np.ones((1, 10), np.float32), header=(ax_mod.ScalarAxis(["r"]), bm32))
    bad.to_filename(tmp_path / "fslr.dscalar.nii")
    with pytest.raises(BrainMapError, match=r"fslr\.dscalar\.nii: the left hemisphere has 32492 "
                       r"vertices but mesh fsaverage5 has 10242"):
        plotting.plot_map(tmp_path / "fslr.dscalar.nii")


def test_two_band_colours_and_maps():
    rgba = plotting.two_band_colors(np.array([1.0, 0.0, 1.0, 0.0, np.nan]),
                                    np.array([0.0, 1.0, 1.0, 0.0, 1.0]))
    np.testing.assert_allclose(rgba[:, [0, 2, 3]], [[1, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 1],
                                                    [0, 0, 0]])
    assert rgba[2, 1] > 0.5 and rgba[0, 1] == 0  # both: light; one: pure
    a = np.zeros((10, 10, 10))
    b = np.zeros((10, 10, 10))
    a[HOT] = 1.0
    b[2, 5, HOT[2]] = 1.0
    fig = plotting.plot_two_band_map(a, b, labels=("conv1", "fc7"))
    panel = [ax for ax in fig.axes if ax.get_title() == f"slice {HOT[2]}"][0]
    img = np.asarray(panel.images[0].get_array())
    np.testing.assert_allclose(img[HOT[1], HOT[0], :3], [1, 0, 0])  # a wins: red
    np.testing.assert_allclose(img[5, 2, :3], [0, 0, 1])  # b wins: blue
    legend = [ax for ax in fig.axes if ax.get_gid() == "two-band-legend"][0]
    assert (legend.get_xlabel(), legend.get_ylabel()) == ("conv1", "fc7")
    with pytest.raises(BrainMapError, match="score_b .* has shape"):
        plotting.plot_two_band_map(a, b[:5])
    sa = np.zeros(2 * N_FS5)
    sa[:N_FS5] = 1.0
    fig = plotting.plot_two_band_map(sa, 1.0 - sa)
    left = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "flat-left"][0]
    np.testing.assert_allclose(left.get_facecolors()[:, :3].mean(0), [1, 0, 0])


def test_without_nilearn_volumes_fall_back_and_surfaces_name_the_extra(monkeypatch):
    from neuroprobe.plotting import maps

    monkeypatch.setattr(maps, "nilearn_available", lambda: False)
    fig = plotting.plot_map(nib.Nifti1Image(_volume(), AFFINE))
    assert HOT[2] in fig.neuroprobe_map["slices"] and "display" not in fig.neuroprobe_map
    with pytest.raises(ImportError, match=r"neuroprobe\[plot\]"):
        plotting.plot_map(np.zeros(2 * N_FS5))
    with pytest.raises(ImportError, match=r"neuroprobe\[plot\]"):
        plotting.plot_map(_volume(), engine="nilearn")


def test_nothing_significant_warns_once_and_draws_an_empty_map():
    from neuroprobe.exceptions import NeuroprobeWarning

    for engine in ("nilearn", "matplotlib"):
        with pytest.warns(NeuroprobeWarning, match="no voxel / vertex has p < 0.05") as record:
            fig = plotting.plot_map(_volume(), pvalues=np.ones((10, 10, 10)), engine=engine)
        assert len(record) == 1
        assert len(plotting.figure_table(fig)["value"]) == 0


def test_gifti_pair_masker_values_land_on_their_vertices(tmp_path):
    paths = []
    for hemi in ("lh", "rh"):
        darray = nib.gifti.GiftiDataArray(np.ones((N_FS5,), np.float32),
                                          intent="NIFTI_INTENT_SHAPE")
        paths.append(tmp_path / f"{hemi}.shape.gii")
        nib.save(nib.gifti.GiftiImage(darrays=[darray]), paths[-1])
    masker = BrainMasker().fit(tuple(paths))
    assert masker.n_features_out_ == 2 * N_FS5
    values = np.zeros(2 * N_FS5)
    values[[5, N_FS5 + 9]] = [2.0, -1.0]  # left vertex 5, right vertex 9
    fig = plotting.plot_map(values, masker, kind="flat")
    assert fig.neuroprobe_map["panels"] == [("left", "flat"), ("right", "flat")]
    t = plotting.figure_table(fig)
    assert list(zip(t["hemi"], t["vertex"], t["value"])) == [("left", 5, 2.0), ("right", 9, -1.0)]
