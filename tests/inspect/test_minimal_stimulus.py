"""Minimal stimuli: greedy parcel removal keeps the response; parcellations."""

import numpy as np
import pytest
import torch

from neuroprobe.inspect import minimal_stimulus, parcellate
from neuroprobe.inspect.targets import Target, target_values


def test_grid_parcellation():
    labels = parcellate(np.zeros((8, 8, 3)), n_segments=4, method="grid")
    assert labels.shape == (8, 8) and set(np.unique(labels)) == {0, 1, 2, 3}
    assert np.all(labels[:4, :4] == labels[0, 0]) and labels[0, 0] != labels[7, 7]


def test_slic_parcellation():
    pytest.importorskip("skimage")
    img = np.zeros((20, 20, 3))
    img[:, 10:] = 1.0
    labels = parcellate(img, n_segments=8, method="slic")
    assert len(np.unique(labels)) >= 2
    # the two halves never share a superpixel
    assert not set(np.unique(labels[:, :10])) & set(np.unique(labels[:, 10:]))


def _blocks():
    """A picture of coloured 4 x 4 blocks plus mild noise (SLIC finds the blocks)."""
    g = torch.Generator().manual_seed(2)
    blocks = torch.randn((3, 4, 4), generator=g).repeat_interleave(4, 1).repeat_interleave(4, 2)
    return blocks + 0.05 * torch.randn((3, 16, 16), generator=g)


@pytest.mark.parametrize("method", ["grid", "auto"])
def test_minimal_stimulus_keeps_response(tiny_cnn, method):
    images = _blocks()[None]
    target = ("relu3", 4)
    res = minimal_stimulus(tiny_cnn, images[0], target, n_segments=9, method=method,
                           threshold=0.8)
    n_parcels = res.segments.max() + 1
    assert n_parcels >= 4 and 1 <= len(res.kept) < n_parcels
    # independent check of the reported response on the returned image
    with torch.no_grad():
        x = torch.from_numpy(res.input)[None]
        h = torch.relu(tiny_cnn.conv3(torch.relu(tiny_cnn.conv2(torch.relu(tiny_cnn.conv1(x))))))
    value = float(target_values(h, Target(*target))[0])
    np.testing.assert_allclose(value, res.response, rtol=1e-5)
    assert res.response >= 0.8 * res.original
    # the removed pixels are filled, the kept ones are the image's
    np.testing.assert_array_equal(res.input[:, ~res.mask], 0.0)
    np.testing.assert_array_equal(res.input[:, res.mask], images[0].numpy()[:, res.mask])
    assert np.array_equal(res.mask, np.isin(res.segments, res.kept))
    # greedy: removing any further parcel would drop below the threshold (or only one is left)
    if len(res.kept) > 1:
        for p in res.kept:
            keep = res.mask & (res.segments != p)
            xx = torch.where(torch.from_numpy(keep), images[0], torch.tensor(0.0))[None]
            with torch.no_grad():
                hh = torch.relu(tiny_cnn.conv3(torch.relu(tiny_cnn.conv2(
                    torch.relu(tiny_cnn.conv1(xx))))))
            assert float(target_values(hh, Target(*target))[0]) < 0.8 * res.original


def test_minimal_stimulus_needs_positive_response(tiny_cnn):
    with pytest.raises(ValueError, match="positive response"):
        minimal_stimulus(tiny_cnn, torch.zeros(3, 16, 16), ("relu3", 0), method="grid")
