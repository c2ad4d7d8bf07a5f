"""models.layers: one lookup rule (module names, aliases) and one LayerError for unknown names."""

import pytest
import torch
from torch import nn

from neuroprobe.exceptions import LayerError
from neuroprobe.models import ModelSpec, registry, resolve_layer
from neuroprobe.models import layers as layers_mod


def _net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Sequential(nn.Linear(2, 2)))


def test_names_and_aliases_resolve():
    net = _net()
    spec = ModelSpec(module=net, name="tiny", aliases={"conv1": "0", "fc": "2.0"})
    assert resolve_layer(spec, "conv1") == "0"
    assert resolve_layer(spec, "2.0") == "2.0"
    assert resolve_layer(net, "1") == "1"
    assert layers_mod.layer_names(net) == ["0", "1", "2", "2.0"] == spec.layer_names()


def test_unknown_layer_lists_valid_names_and_closest():
    spec = ModelSpec(module=_net(), name="tiny", aliases={"conv1": "0"})
    with pytest.raises(LayerError) as err:
        resolve_layer(spec, "conv2")
    text = str(err.value)
    assert "'conv2'" in text and "model 'tiny'" in text and "closest match: 'conv1'" in text
    assert text.endswith("Valid names: conv1, 0, 1, 2, 2.0")
    assert isinstance(err.value, KeyError)  # callers catching KeyError keep working
    with pytest.raises(LayerError, match="model 'Sequential'"):
        resolve_layer(_net(), "nope")


def test_data_parallel_like_module_is_a_module_not_a_spec():
    """A module with a ``.module`` attribute (DataParallel) is still looked up as a module."""
    inner = _net()
    wrapper = nn.Module()
    wrapper.module = inner
    assert resolve_layer(wrapper, "module.0") == "module.0"


def test_registry_and_package_reexport_the_same_functions():
    assert registry.resolve_layer is layers_mod.resolve_layer is resolve_layer
    assert registry.LayerError is LayerError


def test_list_layers_shapes_match_a_forward_pass():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    got = dict(registry.list_layers(net, input_shape=(3, 8, 8)))
    x = torch.zeros(1, 3, 8, 8)
    expected = {}
    for name, layer in net.named_children():
        x = layer(x)
        expected[name] = tuple(x.shape[1:])
    assert got == expected
