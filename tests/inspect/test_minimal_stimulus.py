"""Minimal stimuli: greedy parcel removal keeps the response; parcellations."""

import numpy as np
import pytest
import torch

from neuroprobe.inspect import minimal_stimulus, parcellate
from neuroprobe.inspect.units import Unit as Target
from neuroprobe.inspect.units import unit_values as target_values


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


def _rows(calls):
    """The distinct input images a run sent through the network (as bytes)."""
    return [row.numpy().tobytes() for batch in calls["inputs"] for row in batch]


@pytest.mark.parametrize("metric", ["mean", "max"])
def test_multi_target_equals_one_at_a_time_and_shares_passes(tiny_cnn, metric):
    from tests.inspect.conftest import count_forward

    image = _blocks()
    targets = [("relu3", 4), ("relu2", 1), ("relu3", 4), ("conv3", 4, 3, 3)]
    kwargs = dict(n_segments=9, method="grid", threshold=0.7, batch_size=5, metric=metric)
    with count_forward(tiny_cnn) as joint_calls:
        joint = minimal_stimulus(tiny_cnn, image, targets, **kwargs)
    assert isinstance(joint, list) and len(joint) == 4
    separate_rows = set()
    for t, res in zip(targets, joint):
        with count_forward(tiny_cnn) as calls:
            alone = minimal_stimulus(tiny_cnn, image, t, **kwargs)
        separate_rows.update(_rows(calls))
        np.testing.assert_array_equal(res.kept, alone.kept)
        np.testing.assert_array_equal(res.mask, alone.mask)
        np.testing.assert_allclose(res.trace, alone.trace, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res.input, alone.input, rtol=0, atol=0)
    # every parcel set is evaluated once for all targets: the joint run sends exactly the union
    # of the images the separate runs needed, each once (the repeated target costs nothing)
    joint_rows = _rows(joint_calls)
    assert len(joint_rows) == len(set(joint_rows)) == len(separate_rows)
    assert set(joint_rows) == separate_rows
    # the paths differ between the targets (the test is not trivial)
    assert len({tuple(r.kept) for r in joint}) >= 2
