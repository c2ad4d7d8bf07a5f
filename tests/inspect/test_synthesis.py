"""Optimal stimuli: activation maximisation raises the target, TV smooths the image."""

import numpy as np
import pytest
import torch

from neuroprobe.inspect import optimal_stimulus, total_variation
from neuroprobe.inspect.units import Unit as Target
from neuroprobe.inspect.units import unit_values as target_values
from neuroprobe.models.resolve import resolve_model


def _value(spec, inputs, target):
    info = resolve_model(spec)
    _, module = info.layer(target.layer)
    store = {}
    handle = module.register_forward_hook(lambda m, i, o: store.setdefault("o", o.clone()))
    with torch.no_grad():
        info.module(torch.from_numpy(inputs))
    handle.remove()
    return target_values(store["o"], target).numpy()


@pytest.mark.parametrize("parameterization", ["fourier", "pixel"])
def test_raises_activation_tenfold(alexnet_spec, parameterization):
    targets = [("conv4_relu", 0), ("conv4_relu", 15)]
    res = optimal_stimulus(alexnet_spec, targets, n_iter=40, input_shape=(3, 64, 64), jitter=1,
                           parameterization=parameterization, random_state=0)
    assert res.images.shape == (2, 3, 64, 64) and res.trace.shape == (41, 2)
    assert res.images.min() >= 0 and res.images.max() <= 1
    start, end = res.trace[0], res.trace[-1]
    assert np.all(start > 0)
    assert np.all(end >= 10 * start), (start, end)
    # the trace's last value is the activation of the returned input, recomputed independently
    for i, t in enumerate(targets):
        np.testing.assert_allclose(_value(alexnet_spec, res.inputs[i : i + 1], Target(*t)),
                                   end[i], rtol=1e-4)


def test_total_variation_penalty_smooths(tiny_cnn):
    common = dict(n_iter=40, input_shape=(3, 24, 24), parameterization="pixel", random_state=0,
                  lr=0.1)
    plain = optimal_stimulus(tiny_cnn, ("relu2", 3), **common)
    smooth = optimal_stimulus(tiny_cnn, ("relu2", 3), tv=0.3, **common)
    tv_plain = total_variation(torch.from_numpy(plain.images))
    tv_smooth = total_variation(torch.from_numpy(smooth.images))
    assert float(tv_smooth) < 0.5 * float(tv_plain)
    # the smoother image still drives the unit well above its start
    assert smooth.trace[-1, 0] > 3 * smooth.trace[0, 0] > 0


def test_total_variation_definition():
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0
    # 4 vertical + 4 horizontal unit differences... 2 per direction, over 6 pairs each
    np.testing.assert_allclose(total_variation(x).numpy(), [2 / 6 + 2 / 6])


def test_regularisers_and_blur_run(tiny_cnn):
    res = optimal_stimulus(tiny_cnn, "relu2:c1", n_iter=6, input_shape=(3, 20, 20), l2=0.1,
                           jitter=2, blur_every=2, parameterization="pixel", random_state=1)
    assert np.isfinite(res.trace).all() and res.targets[0].channel == 1
    with pytest.raises(ValueError, match="blur_every"):
        optimal_stimulus(tiny_cnn, ("relu2", 1), n_iter=2, blur_every=2)


def test_weights_untouched(tiny_cnn):
    before = {k: v.clone() for k, v in tiny_cnn.state_dict().items()}
    optimal_stimulus(tiny_cnn, ("conv2", 0), n_iter=3, input_shape=(3, 16, 16), random_state=0)
    for k, v in tiny_cnn.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert all(p.requires_grad for p in tiny_cnn.parameters())


def test_targets_in_several_layers_one_pass_per_step(tiny_cnn):
    from tests.inspect.conftest import count_forward

    targets = [("relu2", 1), ("relu3", 1, 2, 2), ("conv3", 4)]
    with count_forward(tiny_cnn) as calls:
        res = optimal_stimulus(tiny_cnn, targets, n_iter=4, input_shape=(3, 16, 16),
                               random_state=0, metric="max")
    # one pass for the start value, then per step one for the ascent and one for the trace
    assert calls["passes"] == 1 + 2 * 4 and calls["images"] == 3 * (1 + 2 * 4)
    # each row of the trace is the value of its own target on its own image
    with torch.no_grad():
        x = torch.from_numpy(res.inputs)
        h2 = torch.relu(tiny_cnn.conv2(torch.relu(tiny_cnn.conv1(x))))
        c3 = tiny_cnn.conv3(h2)
    expected = [h2[0, 1].max(), torch.relu(c3)[1, 1, 2, 2], c3[2, 4].max()]
    np.testing.assert_allclose(res.trace[-1], [float(v) for v in expected], rtol=1e-5,
                               atol=1e-6)
