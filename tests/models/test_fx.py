"""fx nodes as layers: equal torchvision's create_feature_extractor, combined with module layers in
one forward pass (equal to separate runs, one forward per batch), listed by list_layers(nodes=True),
clear errors for untraceable networks and unknown nodes."""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from neuroprobe.exceptions import LayerError, TraceError
from neuroprobe.models import list_layers
from neuroprobe.models.hooks import forward_hook
from neuroprobe.transformers.extraction import DNNFeatureExtractor
from tests._tolerance import assert_allclose_dtype

NODES = ["relu", "layer1.0.add", "layer1.0.relu_1", "layer2.0.add", "layer3.1.relu",
         "layer4.1.add", "flatten"]


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return resnet18().eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def _reference(net, images, nodes):
    """torchvision's extractor on a copy whose ReLUs are not in place: with in-place ReLUs the
    tensor it returns for an addition is overwritten by the ReLU after it."""
    ref = copy.deepcopy(net)
    for m in ref.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    with torch.no_grad():
        return create_feature_extractor(ref, nodes)(images)


def test_nodes_equal_create_feature_extractor(net, images):
    ext = DNNFeatureExtractor(net, layers=[f"fx:{n}" for n in NODES], batch_size=2, cache=False)
    features = ext.fit_transform(images)
    want = _reference(net, images, NODES)
    for node in NODES:
        got = features[:, ext.feature_slices_[f"fx:{node}"]]
        assert_allclose_dtype(got, want[node].flatten(1).numpy(), n_terms=512)
    # the addition before its in-place ReLU is not the ReLU's output (the taps copy it in time)
    add = features[:, ext.feature_slices_["fx:layer1.0.add"]]
    assert (add < 0).any()
    assert ext.get_feature_names_out()[0] == "fx:relu:c0:y0:x0"


def test_fx_and_modules_in_one_pass_equal_separate_runs(net, images):
    layers = ["fx:layer1.0.add", "layer2", "fx:layer3.0.add", "layer3.0.conv1", "avgpool"]
    ext = DNNFeatureExtractor(net, layers=layers, pooling="mean", batch_size=2, cache=False)
    ext.fit(images[:1])
    calls = []
    with forward_hook(ext.model_.module.conv1, lambda *a: calls.append("conv1")), \
            forward_hook(ext.model_.module.fc, lambda *a: calls.append("fc")):
        together = ext.transform(images)
    assert calls.count("conv1") == 3  # one forward per batch of 2 (5 images)
    assert calls.count("fc") == 1  # the first pass runs whole, the next stop after avgpool
    for layer in layers:
        alone = DNNFeatureExtractor(net, layers=[layer], pooling="mean", cache=False)
        assert_allclose_dtype(together[:, ext.feature_slices_[layer]], alone.fit_transform(images),
                              n_terms=512)


def test_list_layers_nodes(net):
    listed = list_layers(net, nodes=True, input_shape=(3, 64, 64))
    names = [n for n, _ in listed]
    nodes = [n[3:] for n in names if n.startswith("fx:")]
    assert nodes == get_graph_node_names(net)[1][1:]  # torchvision's, without the input 'x'
    shapes = dict(listed)
    assert shapes["fx:layer1.0.add"] == (64, 16, 16) and shapes["fx:flatten"] == (512,)
    assert shapes["layer1"] == (64, 16, 16)  # modules first, as before
    assert "fx:layer1.0.add" not in dict(list_layers(net, input_shape=(3, 64, 64)))


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: does not trace
            return self.conv(x)
        return -self.conv(x)


def test_errors(net, images):
    with pytest.raises(TraceError, match="does not trace with torch.fx.*module names.*conv"):
        DNNFeatureExtractor(_Branchy(), layers=["fx:conv"]).fit(images[:1])
    with pytest.raises(TraceError, match="does not trace"):
        list_layers(_Branchy(), nodes=True, input_shape=(3, 8, 8))
    with pytest.raises(LayerError, match="unknown layer 'fx:layer1.0.ad'.*'fx:layer1.0.add'"):
        DNNFeatureExtractor(net, layers=["fx:layer1.0.ad"]).fit(images[:1])
    with pytest.raises(LayerError, match="inside the requested module layer 'layer1'"):
        DNNFeatureExtractor(net, layers=["layer1", "fx:layer1.0.add"]).fit(images[:1])
    # module layers alone still run the network itself (no trace)
    ext = DNNFeatureExtractor(_Branchy(), layers=["conv"], pooling="max").fit(images[:1])
    assert ext._runner is None and np.isfinite(ext.transform(images)).all()


def test_hooks_added_after_fit_still_run(net, images):
    """An ablation hook on a module that the trace went through (layer1) changes the fx nodes
    after it, as it changes the module outputs."""
    ext = DNNFeatureExtractor(net, layers=["fx:layer2.1.relu_1"], cache=False).fit(images[:1])
    plain = DNNFeatureExtractor(net, layers=["layer2"], cache=False).fit(images[:1])
    before = ext.transform(images[:2])
    with forward_hook(ext.model_.module.layer1, lambda m, i, o: o * 0), \
            forward_hook(plain.model_.module.layer1, lambda m, i, o: o * 0):
        ablated = ext.transform(images[:2])
        want = plain.transform(images[:2])
    assert_allclose_dtype(ablated, want, n_terms=512)
    assert not np.allclose(ablated, before)
    assert_allclose_dtype(ext.transform(images[:2]), before, n_terms=512)  # hook gone
