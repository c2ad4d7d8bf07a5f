"""Saliency: vanilla = autograd, guided backprop by hand, SmoothGrad, gradient x input."""

import numpy as np
import pytest
import torch
from torch import nn

from neuroprobe.inspect import guided_relus, saliency


def _direct_gradient(net, x, channel):
    """d mean(relu(conv2(relu(conv1(x))))[:, channel]) / dx, written out by hand."""
    x = x.clone().requires_grad_(True)
    h = torch.relu(net.conv2(torch.relu(net.conv1(x))))
    h[:, channel].mean(dim=(1, 2)).sum().backward()
    return x.grad.numpy()


def test_vanilla_equals_autograd(tiny_cnn, images):
    got = saliency(tiny_cnn, images, ("relu2", 3), batch_size=2)
    assert got.shape == (5, 3, 16, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, _direct_gradient(tiny_cnn, images, 3), rtol=1e-5, atol=1e-7)


def test_unit_target_gradient(tiny_cnn, images):
    got = saliency(tiny_cnn, images, ("conv1", 2, 5, 7))
    x = images.clone().requires_grad_(True)
    tiny_cnn.conv1(x)[:, 2, 5, 7].sum().backward()
    np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-5, atol=1e-7)
    # a 3x3 convolution unit only sees a 3x3 patch
    assert np.all(got[:, :, :4] == 0) and np.all(got[:, :, 7:] == 0)


def test_gradient_x_input(tiny_cnn, images):
    vanilla = saliency(tiny_cnn, images, ("conv3", 1))
    gxi = saliency(tiny_cnn, images, ("conv3", 1), method="gradient_x_input")
    np.testing.assert_allclose(gxi, vanilla * images.numpy(), rtol=1e-5, atol=1e-7)


def _mlp():
    torch.manual_seed(3)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 6), nn.ReLU(),
                         nn.Linear(6, 4)).eval()


def test_guided_backprop_by_hand():
    net = _mlp()
    x = torch.randn(3, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    c = 1
    guided = saliency(net, x, ("5", c), method="guided")
    vanilla = saliency(net, x, ("5", c))
    w1, w2, w3 = net[1].weight, net[3].weight, net[5].weight
    with torch.no_grad():
        h1 = net[1](x.flatten(1))
        h2 = net[3](torch.relu(h1))
        g2 = (h2 > 0) * w3[c].clamp(min=0)  # into ReLU 2's input: positive part only
        g1 = (h1 > 0) * (g2 @ w2).clamp(min=0)  # into ReLU 1's input
        expected = (g1 @ w1).view_as(x).numpy()
        plain = (((h1 > 0) * (((h2 > 0) * w3[c]) @ w2)) @ w1).view_as(x).numpy()
    np.testing.assert_allclose(guided, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vanilla, plain, rtol=1e-5, atol=1e-6)
    assert not np.allclose(guided, vanilla)


def test_guided_restores_inplace_relus_and_hooks(tiny_cnn, images):
    assert tiny_cnn.relu1.inplace
    with guided_relus(tiny_cnn) as n:
        assert n == 3 and not tiny_cnn.relu1.inplace
    assert tiny_cnn.relu1.inplace and not tiny_cnn.relu1._backward_hooks
    before = saliency(tiny_cnn, images, ("conv3", 0))
    g = saliency(tiny_cnn, images, ("conv3", 0), method="guided")
    assert g.shape == before.shape and not np.allclose(g, before)
    np.testing.assert_array_equal(saliency(tiny_cnn, images, ("conv3", 0)), before)


def test_smoothgrad_leaves_input_unchanged(tiny_cnn, images):
    original = images.clone()
    sg = saliency(tiny_cnn, images, ("conv3", 2), method="smoothgrad", n_samples=6,
                  random_state=0, batch_size=8)
    torch.testing.assert_close(images, original, rtol=0, atol=0)
    vanilla = saliency(tiny_cnn, images, ("conv3", 2))
    assert not np.allclose(sg, vanilla)
    # reproducible with a seed, different with another
    again = saliency(tiny_cnn, images, ("conv3", 2), method="smoothgrad", n_samples=6,
                     random_state=0, batch_size=3)
    np.testing.assert_allclose(sg, again, rtol=1e-5, atol=1e-7)
    # zero noise: the mean of identical gradients is the vanilla gradient
    zero = saliency(tiny_cnn, images, ("conv3", 2), method="smoothgrad", n_samples=3,
                    noise_level=0.0)
    np.testing.assert_allclose(zero, vanilla, rtol=1e-5, atol=1e-7)


def test_smoothgrad_of_linear_model_is_its_gradient():
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3)).eval()
    x = torch.randn(2, 3, 8, 8)
    sg = saliency(net, x, ("2", 1), method="smoothgrad", n_samples=5, random_state=1)
    np.testing.assert_allclose(sg, saliency(net, x, ("2", 1)), rtol=1e-4, atol=1e-6)


def test_bad_method(tiny_cnn, images):
    with pytest.raises(ValueError, match="method must be one of"):
        saliency(tiny_cnn, images, ("conv1", 0), method="deconv")


def test_alexnet_alias_guided(alexnet_spec):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    g = saliency(alexnet_spec, x, ("conv2", 5), method="guided")
    v = saliency(alexnet_spec, x, ("conv2", 5))
    assert g.shape == (2, 3, 64, 64) and np.abs(v).sum() > 0 and not np.allclose(g, v)
