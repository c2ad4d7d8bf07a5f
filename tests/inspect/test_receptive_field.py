"""Receptive fields: batched occlusion equals a per-position loop; upsampled maps."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuroprobe.inspect import UnitError, occlusion_map, occlusion_positions, upsampling_map


def _naive_occlusion(net, layer_module, x, channel, window, stride, fill, unit=None,
                     metric="mean"):
    """One forward pass per window position and unit (what DNNBrain does)."""
    store = {}
    handle = layer_module.register_forward_hook(lambda m, i, o: store.__setitem__("o", o.clone()))
    rows, cols = occlusion_positions(x.shape[2], x.shape[3], window, stride)
    out = np.empty((len(x), len(rows), len(cols)), np.float32)

    def value():
        o = store["o"][0, channel]
        if unit is not None:
            return o[unit]
        return o.max() if metric == "max" else o.mean()

    with torch.no_grad():
        for n in range(len(x)):
            net(x[n : n + 1])
            base = value()
            for i, r in enumerate(rows):
                for j, c in enumerate(cols):
                    occluded = x[n : n + 1].clone()
                    occluded[..., r : r + window, c : c + window] = (
                        x[n].mean(dim=(1, 2))[:, None, None] if fill == "mean" else fill)
                    net(occluded)
                    out[n, i, j] = base - value()
    handle.remove()
    return out


def _tol(reference):
    """float32 tolerance scaled to the size of the values compared."""
    return dict(rtol=1e-4, atol=64 * np.finfo(np.float32).eps * max(1.0, np.abs(reference).max()))


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
    # a 3x3 conv unit at (8, 8) only sees pixels 7..9: windows not touching them change nothing.
    # "Nothing" up to float32 rounding: the unoccluded and occluded values come from batches of
    # different sizes, which BLAS may block differently (5.96e-08 with OpenBLAS' Haswell
    # kernel), so the tolerance is a few float32 ulps of the activations' magnitude.
    with torch.no_grad():
        conv1 = tiny_cnn.conv1(x)[0, 0]
        scale = float(conv1.abs().max()) + float(tiny_cnn.conv1.bias[0].abs())
    tol = 16 * np.finfo(np.float32).eps * scale
    rows, cols = occlusion_positions(16, 16, 3, 1)
    touches = ((rows[:, None] + 2 >= 7) & (rows[:, None] <= 9)) & ((cols + 2 >= 7) & (cols <= 9))
    assert np.all(np.abs(m[0][~touches]) <= tol)
    assert np.all(np.abs(m[0][touches]) > 100 * tol)
    np.testing.assert_allclose(
        m[0], _naive_occlusion(tiny_cnn, tiny_cnn.conv1, x, 0, 3, 1, "mean", unit=(8, 8))[0],
        rtol=1e-4, atol=tol)


@pytest.mark.parametrize("fill", [0.0, "mean"])
@pytest.mark.parametrize("metric", ["mean", "max"])
def test_multi_target_occlusion_equals_per_unit_loop(tiny_cnn, images, metric, fill):
    """Several units in two layers from the same passes == each unit with the brute-force loop."""
    x = images[:3]
    targets = [("relu3", 4), ("relu3", 7), ("conv2", 1, 3, 2), ("relu2", 5)]
    modules = {"relu3": tiny_cnn.relu3, "conv2": tiny_cnn.conv2, "relu2": tiny_cnn.relu2}
    got = occlusion_map(tiny_cnn, x, targets, window=5, stride=3, fill=fill, batch_size=7,
                        metric=metric)
    assert got.shape == (4, 3, 4, 4) and got.dtype == np.float32
    for k, (layer, channel, *unit) in enumerate(targets):
        ref = _naive_occlusion(tiny_cnn, modules[layer], x, channel, 5, 3, fill,
                               unit=tuple(unit) or None, metric=metric)
        np.testing.assert_allclose(got[k], ref, **_tol(ref))
        # and equal to the single-target call
        alone = occlusion_map(tiny_cnn, x, targets[k], window=5, stride=3, fill=fill,
                              metric=metric, batch_size=64)
        np.testing.assert_allclose(got[k], alone, **_tol(ref))
        assert np.abs(ref).max() > 0
    # the metrics give different maps (the parameter is used)
    other = occlusion_map(tiny_cnn, x, targets[0], window=5, stride=3, fill=fill,
                          metric="max" if metric == "mean" else "mean")
    assert not np.allclose(other, got[0])


def test_occlusion_forward_passes_do_not_depend_on_units(tiny_cnn, images):
    from tests.inspect.conftest import count_forward

    counts = []
    for targets in ([("relu3", 4)], [("relu3", c) for c in range(3)],
                    [("relu3", c) for c in range(10)] + [("conv1", 0, 2, 2), ("relu2", 1)]):
        with count_forward(tiny_cnn) as calls:
            occlusion_map(tiny_cnn, images, targets, window=4, stride=4, batch_size=8)
        counts.append((calls["passes"], calls["images"]))
    # 5 images x 16 positions = 80 occluded copies in batches of 8, + 1 pass of the 5 originals
    assert counts == [(11, 85)] * 3


def test_upsampling_several_targets_one_pass(tiny_cnn, images):
    from tests.inspect.conftest import count_forward

    targets = [("relu2", 3), ("relu1", 0), ("relu2", 6)]
    with count_forward(tiny_cnn) as calls:
        got = upsampling_map(tiny_cnn, images, targets, batch_size=2)
    assert calls["passes"] == 3 and got.shape == (3, 5, 16, 16)
    for k, t in enumerate(targets):
        np.testing.assert_allclose(got[k], upsampling_map(tiny_cnn, images, t), rtol=1e-5,
                                   atol=1e-6)


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
