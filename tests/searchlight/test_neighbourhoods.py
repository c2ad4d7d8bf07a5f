"""Searchlight neighbourhoods vs rsatoolbox (volume) and brute-force Dijkstra (surface)."""

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from neuroprobe.searchlight import surface_neighbourhoods, volume_neighbourhoods
from neuroprobe.searchlight.surface import mesh_graph

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.util.searchlight import get_volume_searchlight  # noqa: E402


def _mask(seed=0, shape=(9, 10, 8)):
    return np.random.default_rng(seed).random(shape) > 0.3


def _same(centers, neighbors, nb):
    assert np.array_equal(centers, nb.centers)
    assert len(neighbors) == len(nb)
    for i, a in enumerate(neighbors):
        assert np.array_equal(np.sort(a), nb.members(i)), i


@pytest.mark.parametrize("radius", [1.5, 2, 3])
@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_volume_whole_sphere_equals_rsatoolbox(radius, threshold):
    m = _mask()
    c, n = get_volume_searchlight(m, radius=radius, threshold=threshold)
    _same(c, n, volume_neighbourhoods(m, radius, threshold=threshold,
                                      truncate_at_boundary=False, chunk_size=37))


@pytest.mark.parametrize("radius", [2, 3])
def test_volume_mask_restricted_equals_rsatoolbox(radius):
    """rsatoolbox's threshold is vacuous with truncation (members are all in the mask)."""
    m = _mask(1)
    c, n = get_volume_searchlight(m, radius=radius, threshold=1.0, truncate_at_boundary=True)
    nb = volume_neighbourhoods(m, radius, threshold=0.0)
    _same(c, n, nb)
    assert np.all(m.ravel()[nb.indices])


def test_volume_mm_radius_and_stride():
    m = _mask(2, (8, 8, 8))
    aff = np.diag([2.0, 2.0, 3.0, 1.0])
    nb = volume_neighbourhoods(m, 4.5, affine=aff, threshold=0, stride=2)
    coords = np.argwhere(m)
    assert np.all(np.unravel_index(nb.centers, m.shape)[0] % 2 == 0)
    assert len(nb) == np.sum(np.all(coords % 2 == 0, axis=1))
    mm = coords * np.array([2.0, 2.0, 3.0])
    flat = np.ravel_multi_index(coords.T, m.shape)
    for i in range(0, len(nb), 7):  # brute force: every mask voxel closer than 4.5 mm
        c = np.array(np.unravel_index(nb.centers[i], m.shape)) * np.array([2.0, 2.0, 3.0])
        expect = np.sort(flat[np.linalg.norm(mm - c, axis=1) < 4.5])
        assert np.array_equal(nb.members(i), expect)


def test_to_columns():
    m = _mask(3)
    nb = volume_neighbourhoods(m, 2).to_columns(np.flatnonzero(m))
    assert nb.indices.max() < m.sum() and nb.centers.max() < m.sum()


def test_volume_bad_input():
    m = _mask()
    with pytest.raises(ValueError, match="radius must be > 0"):
        volume_neighbourhoods(m, 0)
    assert len(volume_neighbourhoods(m, 2)) == m.sum()  # default: every mask voxel
    with pytest.raises(ValueError, match="no centre of the mask"):
        volume_neighbourhoods(np.pad(np.ones((1, 1, 1)), 2), 2, threshold=0.5)
    with pytest.raises(ValueError, match="mask must be a 3-D"):
        volume_neighbourhoods(m[0], 2)
    with pytest.raises(ValueError, match="stride"):
        volume_neighbourhoods(m, 2, stride=0)


def _mid(v, cache, a, b):
    key = (min(a, b), max(a, b))
    if key not in cache:
        m = v[a] + v[b]
        v.append(m / np.linalg.norm(m))
        cache[key] = len(v) - 1
    return cache[key]


def _icosphere(level=3, r=50.0):
    t = (1 + 5 ** 0.5) / 2
    v = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t),
         (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
         (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8),
         (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    v = [np.array(x, float) / np.linalg.norm(x) for x in v]
    for _ in range(level):
        cache, nf = {}, []
        for a, b, c in f:
            ab, bc, ca = _mid(v, cache, a, b), _mid(v, cache, b, c), _mid(v, cache, c, a)
            nf += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        f = nf
    return r * np.array(v), np.array(f)


@pytest.mark.parametrize("radius", [9.0, 20.0])
def test_surface_equals_brute_force_dijkstra(radius):
    coords, faces = _icosphere()
    mask = np.random.default_rng(0).random(len(coords)) > 0.2
    nb = surface_neighbourhoods(coords, faces, radius, mask=mask, chunk_size=50)
    D = dijkstra(mesh_graph(coords, faces), directed=False)  # all pairs, no limit
    assert np.array_equal(nb.centers, np.flatnonzero(mask))
    for i, c in enumerate(nb.centers):
        assert np.array_equal(nb.members(i), np.flatnonzero((D[c] <= radius) & mask))
    assert nb.sizes.min() >= 1 and nb.sizes.max() > 5


def test_surface_bad_input():
    coords, faces = _icosphere(1)
    with pytest.raises(ValueError, match="n_vertices: the data have 10 vertices but the mesh"):
        surface_neighbourhoods(coords, faces, 5.0, n_vertices=10)
    with pytest.raises(ValueError, match="mask must have one entry per mesh vertex"):
        surface_neighbourhoods(coords, faces, 5.0, mask=np.ones(3, bool))
    with pytest.raises(ValueError, match="faces index vertices outside"):
        surface_neighbourhoods(coords, faces + 1000, 5.0)
