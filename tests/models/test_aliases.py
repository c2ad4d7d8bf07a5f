"""DNNBrain aliases point at the right modules of the torchvision networks."""

import pytest
import torch
from torch import nn
from torchvision import models

from neuroprobe.models.aliases import aliases_for


def _meta(name):
    with torch.device("meta"):  # structure only: no memory, no initialisation cost
        kwargs = {"init_weights": False} if name == "googlenet" else {}
        return models.get_model(name, weights=None, **kwargs)


def _check(name):
    module = _meta(name)
    aliases = aliases_for(name, module)
    mods = dict(module.named_modules())
    assert aliases and all(v in mods for v in aliases.values())
    return aliases, mods


def test_alexnet_aliases():
    aliases, mods = _check("alexnet")
    convs = [n for n, m in mods.items() if isinstance(m, nn.Conv2d)]
    assert [aliases[f"conv{i}"] for i in range(1, 6)] == convs
    for i in range(1, 6):
        assert isinstance(mods[aliases[f"conv{i}_relu"]], nn.ReLU)
        idx = int(aliases[f"conv{i}_relu"].split(".")[1])
        assert idx == int(aliases[f"conv{i}"].split(".")[1]) + 1
    linears = [n for n, m in mods.items() if isinstance(m, nn.Linear)]
    assert [aliases["fc1"], aliases["fc2"], aliases["fc3"]] == linears
    assert (
        mods[aliases["fc1"]].in_features == 256 * 6 * 6
        and mods[aliases["fc3"]].out_features == 1000
    )
    assert isinstance(mods[aliases["fc2_relu"]], nn.ReLU)
    assert [aliases[p] for p in ("pool1", "pool2", "pool5")] == [
        n for n, m in mods.items() if isinstance(m, nn.MaxPool2d)
    ]


@pytest.mark.parametrize(
    "name, n_conv, blocks",
    [
        ("vgg11", 8, (1, 1, 2, 2, 2)),
        ("vgg16", 13, (2, 2, 3, 3, 3)),
        ("vgg19_bn", 16, (2, 2, 4, 4, 4)),
    ],
)
def test_vgg_aliases(name, n_conv, blocks):
    aliases, mods = _check(name)
    convs = [n for n, m in mods.items() if isinstance(m, nn.Conv2d)]
    assert len(convs) == n_conv
    assert [aliases[f"conv{i}"] for i in range(1, n_conv + 1)] == convs
    block_names = [f"conv{b}_{i}" for b, k in enumerate(blocks, 1) for i in range(1, k + 1)]
    assert [aliases[n] for n in block_names] == convs
    assert isinstance(mods[aliases["conv5_1_relu"]], nn.ReLU)
    if name.endswith("_bn"):
        assert isinstance(mods[aliases["conv1_bn"]], nn.BatchNorm2d)
    assert mods[aliases["fc1"]].in_features == 512 * 7 * 7
    assert mods[aliases["fc3"]].out_features == 1000
    assert len([a for a in aliases if a.startswith("pool")]) == 5


def test_googlenet_and_resnet_aliases():
    g, gm = _check("googlenet")
    assert {"inception3a", "inception5b", "conv1", "fc"} <= set(g)
    assert isinstance(gm[g["pool1"]], nn.MaxPool2d)
    for name in ("resnet18", "resnet50", "resnet152"):
        r, rm = _check(name)
        assert r["conv5_x"] == r["layer4"] == "layer4"
        assert isinstance(rm[r["conv1"]], nn.Conv2d) and isinstance(rm[r["fc"]], nn.Linear)
        assert isinstance(rm[r["conv1_relu"]], nn.ReLU)


def test_other_models_have_no_aliases():
    assert aliases_for("squeezenet1_1", _meta("squeezenet1_1")) == {}
