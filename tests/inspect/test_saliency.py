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


def _one_at_a_time(net, x, target, method, metric="mean", n_samples=4, seed=0, guided=False):
    """Brute-force reference: the gradient of one target, one image at a time, by autograd.

    SmoothGrad draws the noise exactly as ``saliency`` documents it (per batch of images,
    ``(n_images, n_samples, C, H, W)`` standard normal times ``noise_level * (max - min)``).
    """
    from neuroprobe.inspect.units import Unit as Target
    from neuroprobe.inspect.units import unit_values as target_values

    t = Target(*target)
    module = dict(net.named_modules())[t.layer]
    if method == "smoothgrad":
        gen = torch.Generator().manual_seed(seed)
        span = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1, 1)
        noise = torch.randn((len(x), n_samples, *x.shape[1:]), generator=gen)
        inputs = x[:, None] + noise * (0.15 * span)
    else:
        inputs = x[:, None]
    out = np.empty(tuple(x.shape), np.float32)
    ctx = guided_relus(net) if guided else torch.enable_grad()
    with ctx:
        for i in range(len(x)):
            grads = []
            for s in range(inputs.shape[1]):
                xi = inputs[i, s : s + 1].clone().requires_grad_(True)
                store = {}

                def hook(_m, _a, o, store=store):
                    store["o"] = o.clone()  # returns None: the module's output is unchanged

                handle = module.register_forward_hook(hook)
                net(xi)
                handle.remove()
                target_values(store["o"], t, metric=metric).sum().backward()
                grads.append(xi.grad[0])
            g = torch.stack(grads).mean(0)
            out[i] = (g * x[i] if method == "gradient_x_input" else g).numpy()
    return out


TARGETS = [("relu2", 3), ("conv3", 1, 2, 5), ("relu3", 6), ("conv1", 0)]


@pytest.mark.parametrize("method", ["vanilla", "guided", "smoothgrad", "gradient_x_input"])
@pytest.mark.parametrize("metric", ["mean", "max"])
def test_multi_target_equals_one_unit_at_a_time(tiny_cnn, images, method, metric):
    x = images[:3]
    got = saliency(tiny_cnn, x, TARGETS, method=method, metric=metric, n_samples=4,
                   random_state=0, batch_size=4)
    assert got.shape == (4, 3, 3, 16, 16)
    for k, t in enumerate(TARGETS):
        ref = _one_at_a_time(tiny_cnn, x, t, method, metric, guided=method == "guided")
        scale = np.abs(ref).max()
        assert scale > 0
        np.testing.assert_allclose(got[k], ref, rtol=1e-4,
                                   atol=64 * np.finfo(np.float32).eps * scale)
        alone = saliency(tiny_cnn, x, t, method=method, metric=metric, n_samples=4,
                         random_state=0, batch_size=4)
        np.testing.assert_allclose(got[k], alone, rtol=1e-5,
                                   atol=16 * np.finfo(np.float32).eps * scale)


def test_forward_passes_do_not_depend_on_targets(tiny_cnn, images):
    from tests.inspect.conftest import count_forward

    counts = []
    for targets in (TARGETS[:1], TARGETS[:3], TARGETS + [("relu3", c) for c in range(10)]):
        for method in ("vanilla", "smoothgrad"):
            with count_forward(tiny_cnn) as calls:
                saliency(tiny_cnn, images, targets, method=method, n_samples=3, batch_size=6,
                         random_state=0)
            counts.append((method, calls["passes"], calls["images"]))
    # vanilla: 5 images in batches of 6 -> 1 pass; smoothgrad: 2 images x 3 samples per pass
    assert counts == [("vanilla", 1, 5), ("smoothgrad", 3, 15)] * 3


def test_result_carries_images_in_the_maps_frame(alexnet_spec):
    from PIL import Image

    rng = np.random.default_rng(0)
    pics = [Image.fromarray(rng.integers(0, 255, (175, 175, 3), dtype=np.uint8)) for _ in range(2)]
    res = saliency(alexnet_spec, pics, ("conv1", 3), metric="max")
    x = torch.stack([alexnet_spec.preprocess(p) for p in pics])
    assert res.maps.shape == tuple(x.shape) and type(res.maps) is np.ndarray
    assert res.images.shape == (2, x.shape[2], x.shape[3], 3) and res.metric == "max"
    # the images are the preprocessed inputs with the normalisation undone
    mean = torch.tensor(alexnet_spec.preprocess_info["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(alexnet_spec.preprocess_info["std"]).view(1, 3, 1, 1)
    expected = (x * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(res.images, expected, rtol=1e-5, atol=1e-6)
    # derived arrays are plain maps: they do not pretend to carry images
    assert res[:1].images is None and (res * 2).images is None


def test_metric_is_checked(tiny_cnn, images):
    with pytest.raises(ValueError, match="metric must be one of"):
        saliency(tiny_cnn, images, ("conv1", 0), metric="median")


def test_plot_saliency_checks_the_frame(alexnet_spec):
    from neuroprobe.plotting import plot_saliency

    rng = np.random.default_rng(1)
    originals = rng.integers(0, 255, (2, 175, 175, 3), dtype=np.uint8)
    res = saliency(alexnet_spec, originals, ("conv1", 3))
    assert res.shape[-2:] != (175, 175)  # the preprocessing resizes
    # the original pictures beside the preprocessed maps: a clear error, not a wrong overlay
    with pytest.raises(ValueError, match=r"175 x 175 pixels but its map is .*preprocessed"):
        plot_saliency(originals, res)
    with pytest.raises(ValueError, match="2 image"):
        plot_saliency(res.images, res.maps[:1])
    with pytest.raises(ValueError, match="SaliencyMaps"):
        plot_saliency(res[:1])
    # the result itself: images in the maps' frame, the target and metric in the titles
    fig = plot_saliency(res)
    titles = [ax.get_title() for ax in fig.axes]
    assert "saliency conv1:c3 (vanilla, mean)" in titles
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), res.images[0])
