"""DNNBrain-style layer aliases for the classic networks (torchvision implementations).

An alias maps a short, paper-style name onto the module name of ``named_modules()``:

* AlexNet: ``conv1`` ... ``conv5`` (the convolutions, *before* ReLU), ``conv1_relu`` ...
  ``conv5_relu``, ``pool1``, ``pool2``, ``pool5``, ``fc1``, ``fc1_relu``, ``fc2``, ``fc2_relu``,
  ``fc3`` (logits).
* VGG11/13/16/19 (and ``_bn``): ``conv1`` ... ``convN`` numbered through the network, the block
  names ``conv<block>_<i>`` (``conv5_3``), ``_relu`` / ``_bn`` suffixes, ``pool1`` ... ``pool5``,
  ``fc1``, ``fc1_relu``, ``fc2``, ``fc2_relu``, ``fc3``.
* GoogLeNet: ``conv1`` ... ``conv3``, ``pool1`` ... ``pool4``, ``inception3a`` ... ``inception5b``,
  ``avgpool``, ``fc`` (mostly the module names themselves).
* ResNets (18/34/50/101/152, ResNeXt, wide): ``conv1``, ``bn1``, ``conv1_relu``, ``pool1``,
  ``layer1`` ... ``layer4`` (also ``conv2_x`` ... ``conv5_x`` as in the paper), ``avgpool``, ``fc``.

Because torchvision's ReLUs are ``inplace=True``, capturing ``conv1`` and ``conv1_relu`` in one pass
is only correct because captured outputs are copied (see :mod:`neuroprobe.models.hooks`).
"""

from __future__ import annotations

__all__ = ["aliases_for"]


def _sequential_aliases(module, block_names=True):
    """Aliases for ``features`` + ``classifier`` networks (AlexNet, VGG)."""
    import torch.nn as nn

    aliases = {}
    conv, block, in_block = 0, 1, 0
    labels = []
    for idx, layer in enumerate(module.features):
        name = f"features.{idx}"
        if isinstance(layer, nn.Conv2d):
            conv += 1
            in_block += 1
            labels = [f"conv{conv}"] + ([f"conv{block}_{in_block}"] if block_names else [])
            for label in labels:
                aliases[label] = name
        elif isinstance(layer, nn.BatchNorm2d):
            for label in labels:
                aliases[f"{label}_bn"] = name
        elif isinstance(layer, nn.ReLU):
            for label in labels:
                aliases[f"{label}_relu"] = name
        elif isinstance(layer, nn.MaxPool2d):
            aliases[f"pool{block if block_names else conv}"] = name
            block += 1
            in_block = 0
    if hasattr(module, "avgpool"):
        aliases["avgpool"] = "avgpool"
    fc = 0
    for idx, layer in enumerate(module.classifier):
        name = f"classifier.{idx}"
        if isinstance(layer, nn.Linear):
            fc += 1
            aliases[f"fc{fc}"] = name
        elif isinstance(layer, nn.ReLU) and fc:
            aliases[f"fc{fc}_relu"] = name
    return aliases


def _alexnet_aliases(module):
    # pools are named after the conv they follow: pool1, pool2, pool5
    return _sequential_aliases(module, block_names=False)


def _googlenet_aliases(module):
    aliases = {
        "conv1": "conv1",
        "conv2": "conv2",
        "conv3": "conv3",
        "pool1": "maxpool1",
        "pool2": "maxpool2",
        "pool3": "maxpool3",
        "pool4": "maxpool4",
        "avgpool": "avgpool",
        "fc": "fc",
    }
    for name, _ in module.named_children():
        if name.startswith("inception"):
            aliases[name] = name
    return aliases


def _resnet_aliases(module):
    return {
        "conv1": "conv1",
        "bn1": "bn1",
        "conv1_relu": "relu",
        "pool1": "maxpool",
        "layer1": "layer1",
        "layer2": "layer2",
        "layer3": "layer3",
        "layer4": "layer4",
        "conv2_x": "layer1",
        "conv3_x": "layer2",
        "conv4_x": "layer3",
        "conv5_x": "layer4",
        "avgpool": "avgpool",
        "fc": "fc",
    }


def aliases_for(name, module):
    """DNNBrain-style aliases of torchvision model ``name`` (empty dict for other models).

    Parameters
    ----------
    name : str
        torchvision model name (``"alexnet"``, ``"vgg16_bn"``, ``"resnet50"``, ...).
    module : torch.nn.Module
        The built network (aliases are derived from its structure).

    Returns
    -------
    dict of str -> str
        alias -> module name; every value is a module name of ``module``.
    """
    name = name.lower()
    if name == "alexnet":
        aliases = _alexnet_aliases(module)
    elif name.startswith("vgg"):
        aliases = _sequential_aliases(module)
    elif name == "googlenet":
        aliases = _googlenet_aliases(module)
    elif name.startswith(("resnet", "resnext", "wide_resnet")):
        aliases = _resnet_aliases(module)
    else:
        return {}
    valid = {n for n, _ in module.named_modules()}
    return {k: v for k, v in aliases.items() if v in valid}
