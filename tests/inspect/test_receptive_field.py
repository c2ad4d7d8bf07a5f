"""Receptive fields: batched occlusion equals a per-position loop; upsampled maps."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuroprobe.inspect import UnitError, occlusion_map, occlusion_positions, upsampling_map


def _naive_occlusion(net, layer_module, x, channel, window, stride, fill):
    """One forward pass per window position (what DNNBrain does)."""
    store = {}
    handle = layer_module.register_forward_hook(lambda m, i, o: store.__setitem__("o", o.clone()))
    rows, cols = occlusion_positions(x.shape[2], x.shape[3], window, stride)
    out = np.empty((len(x), len(rows), len(cols)), np.float32)
    with torch.no_grad():
        for n in range(len(x)):
            net(x[n : n + 1])
            base = store["o"][0, channel].mean()
            for i, r in enumerate(rows):
                for j, c in enumerate(cols):
                    occluded = x[n : n + 1].clone()
                    occluded[..., r : r + window, c : c + window] = fill
                    net(occluded)
                    out[n, i, j] = base - store["o"][0, channel].mean()
    handle.remove()
    return out


@pytest.mark.parametrize("batch_size", [1, 7, 500])
def test_batched_occlusion_equals_naive_loop(tiny_cnn, images, batch_size):
    x = images[:2]
    got = occlusion_map(tiny_cnn, x, ("relu3", 4), window=5, stride=3, fill=0.0,
                        batch_size=batch_size)
    expected = _naive_occlusion(tiny_cnn, tiny_cnn.relu3, x, 4, 5, 3, 0.0)
    assert got.shape == expected.shape == (2, 4, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert np.abs(got).max() > 0


def test_occlusion_fill_mean_and_unit(tiny_cnn, images):
    x = images[:1]
    m = occlusion_map(tiny_cnn, x, ("conv1", 0, 8, 8), window=3, stride=1, fill="mean")
    # a 3x3 conv unit at (8, 8) only sees pixels 7..9: windows not touching them change nothing
    rows, cols = occlusion_positions(16, 16, 3, 1)
    touches = ((rows[:, None] + 2 >= 7) & (rows[:, None] <= 9)) & ((cols + 2 >= 7) & (cols <= 9))
    assert np.all(m[0][~touches] == 0) and np.all(m[0][touches] != 0)


def test_occlusion_positions_and_bad_window():
    rows, cols = occlusion_positions(10, 12, (4, 3), 3)
    np.testing.assert_array_equal(rows, [0, 3, 6])
    np.testing.assert_array_equal(cols, [0, 3, 6, 9])
    with pytest.raises(ValueError, match="larger than the image"):
        occlusion_positions(10, 10, 11, 1)


def test_upsampling_map(tiny_cnn, images):
    got = upsampling_map(tiny_cnn, images, ("relu2", 3))
    with torch.no_grad():
        fmap = torch.relu(tiny_cnn.conv2(torch.relu(tiny_cnn.conv1(images))))[:, 3:4]
    expected = F.interpolate(fmap, size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
    assert got.shape == (5, 16, 16)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(UnitError, match="whole channel"):
        upsampling_map(tiny_cnn, images, ("relu2", 3, 1, 1))
    with pytest.raises(UnitError, match=r"\(10,\)|no \(row|map"):
        upsampling_map(tiny_cnn, images, ("fc", 0))
