"""Searchlights over masked data: CIFTI dense files (surface + volume parts), GIFTI surfaces,
fsaverage5 geodesic discs vs a brute-force Dijkstra."""

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from neuroprobe.rsa import compare_rdms, compute_rdm
from neuroprobe.searchlight import (
    Searchlight,
    line_neighbourhoods,
    load_mesh,
    masker_neighbourhoods,
    surface_neighbourhoods,
)
from neuroprobe.transformers import BrainMasker
from tests.searchlight.test_neighbourhoods import _icosphere

nib = pytest.importorskip("nibabel")


def _graph(coords, faces):
    """The mesh graph built independently (a dict of edges), for the brute force."""
    w = {}
    for f in faces:
        for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])):
            a, b = min(a, b), max(a, b)
            w[(a, b)] = np.linalg.norm(coords[a] - coords[b])
    (rows, cols), vals = zip(*w.keys()), list(w.values())
    n = len(coords)
    g = sparse.coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsr()
    return g + g.T


def _cifti(tmp_path, n=7, seed=0):
    r = np.random.default_rng(seed)
    coords, faces = _icosphere(2, r=20.0)  # 162 vertices, edges ~ 6 mm
    axes = nib.cifti2.cifti2_axes
    vmask = r.random(len(coords)) > 0.2
    surf = axes.BrainModelAxis.from_mask(vmask, name="CortexLeft")
    vol_mask = r.random((5, 6, 4)) > 0.4
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    vol = axes.BrainModelAxis.from_mask(vol_mask, name="ThalamusLeft", affine=aff)
    bm = surf + vol
    data = r.normal(size=(n, len(bm))).astype(np.float32)
    img = nib.Cifti2Image(data, header=(axes.ScalarAxis([f"s{i}" for i in range(n)]), bm))
    path = tmp_path / "betas.dscalar.nii"
    img.to_filename(path)
    return path, coords, faces, vmask, vol_mask, bm, data


def test_cifti_parts_geodesic_and_spheres(tmp_path):
    path, coords, faces, vmask, vol_mask, bm, data = _cifti(tmp_path)
    masker = BrainMasker().fit(path)
    X = masker.transform(path).astype(np.float64)
    radius = 7.0
    nb = masker_neighbourhoods(masker, radius, mesh={"CORTEX_LEFT": (coords, faces)})
    D = dijkstra(_graph(coords, faces), directed=False)
    n_surf = int(vmask.sum())
    verts = np.flatnonzero(vmask)
    ijk = bm.voxel[n_surf:] * 2.0  # mm
    assert np.array_equal(nb.centers, np.arange(len(bm)))
    for c in range(len(bm)):
        if c < n_surf:  # geodesic disc over the vertices present in the file
            expect = np.flatnonzero(D[verts[c], verts] <= radius)
        else:  # sphere (mm) over the voxels of the volume part
            expect = n_surf + np.flatnonzero(np.linalg.norm(ijk - ijk[c - n_surf], axis=1)
                                             < radius)
        assert np.array_equal(nb.members(c), expect), c
    model = compute_rdm(np.random.default_rng(1).normal(size=(X.shape[0], 3)))
    sl = Searchlight(masker=masker, radius=radius, mesh={"CORTEX_LEFT": (coords, faces)},
                     model_rdms=model).fit(X)
    big = np.flatnonzero(nb.sizes >= 3)
    picks = [big[big < n_surf][:3], big[big >= n_surf][:3]]
    assert all(len(p) == 3 for p in picks)
    for c in np.concatenate(picks):
        m = nb.members(c)
        assert sl.score_map_[c, 0] == pytest.approx(compare_rdms(compute_rdm(X[:, m]), model))
    img = sl.to_image()
    assert isinstance(img, nib.Cifti2Image) and img.header.get_axis(1) == bm
    np.testing.assert_allclose(np.asarray(img.dataobj)[0], sl.score_map_[:, 0], rtol=1e-6)


def test_cifti_and_gifti_mesh_errors(tmp_path):
    path, coords, faces, *_ = _cifti(tmp_path)
    masker = BrainMasker().fit(path)
    small, small_f = _icosphere(1)
    with pytest.raises(ValueError, match=r"mesh\[CIFTI_STRUCTURE_CORTEX_LEFT\]: the mesh has 42 "
                                         "vertices but the data have 162"):
        masker_neighbourhoods(masker, 5.0, mesh={"CORTEX_LEFT": (small, small_f)})
    with pytest.raises(ValueError, match="no mesh was given for it"):
        masker_neighbourhoods(masker, 5.0)
    gii = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
        np.random.default_rng(0).normal(size=len(coords)).astype(np.float32),
        intent="NIFTI_INTENT_SHAPE", datatype="NIFTI_TYPE_FLOAT32") for _ in range(5)])
    gpath = tmp_path / "lh.func.gii"
    gii.to_filename(gpath)
    gm = BrainMasker().fit(gpath)
    with pytest.raises(ValueError, match="mesh: the mesh has 42 vertices but the data have 162"):
        Searchlight(masker=gm, mesh=(small, small_f)).fit(gm.transform(gpath), np.arange(5.0))
    with pytest.raises(ValueError, match="surface .GIFTI. data need the mesh"):
        masker_neighbourhoods(gm, 5.0)


def test_gifti_map_round_trip_with_surf_gii(tmp_path):
    coords, faces = _icosphere(2, r=20.0)
    mesh = nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(coords.astype(np.float32), intent="NIFTI_INTENT_POINTSET"),
        nib.gifti.GiftiDataArray(faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE")])
    mpath = tmp_path / "lh.sphere.surf.gii"
    mesh.to_filename(mpath)
    c2, f2 = load_mesh(str(mpath))
    np.testing.assert_allclose(c2, coords, rtol=1e-6)
    r = np.random.default_rng(2)
    data = r.normal(size=(6, len(coords))).astype(np.float32)
    gii = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
        row, intent="NIFTI_INTENT_SHAPE", datatype="NIFTI_TYPE_FLOAT32") for row in data])
    gpath = tmp_path / "lh.func.gii"
    gii.to_filename(gpath)
    masker = BrainMasker().fit(gpath)
    X = masker.transform(gpath)
    F = r.normal(size=(6, 2))
    sl = Searchlight(masker=masker, mesh=str(mpath), radius=6.0).fit(X, F)
    expect = surface_neighbourhoods(coords, faces, 6.0)
    assert np.array_equal(sl.neighbourhoods_.indices, expect.indices)
    out = sl.to_image()
    np.testing.assert_allclose(out.darrays[0].data, sl.score_map_[:, 0], rtol=1e-6)


def test_fsaverage5_discs_equal_brute_force_dijkstra():
    datasets = pytest.importorskip("nilearn.datasets")
    mesh = datasets.load_fsaverage("fsaverage5")["pial"].parts["left"]
    coords, faces = load_mesh(mesh)
    assert coords.shape == (10242, 3)
    centres = np.random.default_rng(0).choice(10242, 12, replace=False)
    D = dijkstra(_graph(coords, faces), directed=False, indices=centres)  # no limit
    nb = surface_neighbourhoods(coords, faces, 10.0)  # every vertex a centre (the 10 mm)
    assert len(nb) == 10242
    for k, c in enumerate(centres):
        assert np.array_equal(nb.members(c), np.flatnonzero(D[k] <= 10.0))
    assert nb.sizes.min() >= 1 and np.median(nb.sizes) > 10


def test_line_neighbourhoods():
    nb = line_neighbourhoods(10, 3)
    assert nb.members(0).tolist() == [0, 1, 2] and nb.members(5).tolist() == [3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="radius must be > 0"):
        line_neighbourhoods(10, 0)


def test_gifti_pair_hemispheres_offset(tmp_path):
    coords, faces = _icosphere(2, r=20.0)
    r = np.random.default_rng(3)
    paths = []
    for h in ("lh", "rh"):
        gii = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
            r.normal(size=len(coords)).astype(np.float32), intent="NIFTI_INTENT_SHAPE",
            datatype="NIFTI_TYPE_FLOAT32") for _ in range(5)])
        paths.append(tmp_path / f"{h}.func.gii")
        gii.to_filename(paths[-1])
    masker = BrainMasker().fit(tuple(str(p) for p in paths))
    nb = masker_neighbourhoods(masker, 7.0, mesh=((coords, faces), (coords, faces)))
    one = surface_neighbourhoods(coords, faces, 7.0)
    n = len(coords)
    assert len(nb) == 2 * n
    for c in (0, 17, n + 5, 2 * n - 1):
        expect = one.members(c % n) + (n if c >= n else 0)
        assert np.array_equal(nb.members(c), expect)
    with pytest.raises(ValueError, match="need a pair"):
        masker_neighbourhoods(masker, 7.0, mesh=(coords, faces))
