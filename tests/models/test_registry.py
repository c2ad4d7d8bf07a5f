"""Model registry: building by name / module / factory / file, weights errors, layers and
aliases."""

import sys
import urllib.error

import numpy as np
import pytest
import torch
from torch import nn

from neuroprobe.models import (
    LayerError,
    ModelError,
    ModelSpec,
    WeightsUnavailableError,
    build_model,
    list_layers,
    register_model,
    registry,
    resolve_layer,
)
from neuroprobe.models import weights as weights_mod


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def _params(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_random_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = build_model("squeezenet1_1", weights=None, random_state=0)
    after = torch.rand(3)  # global RNG must be where it was before build_model
    b = build_model("squeezenet1_1", weights=None, random_state=0)
    c = build_model("squeezenet1_1", weights=None, random_state=1)
    assert torch.equal(after, expected_next)
    assert torch.equal(_params(a.module), _params(b.module))
    assert not torch.equal(_params(a.module), _params(c.module))
    assert a.weights_id == b.weights_id != c.weights_id
    assert "seed=0" in a.weights_id
    assert not a.module.training


def test_preprocessing_comes_from_the_weights_enum():
    from PIL import Image
    from torchvision.models import get_model_weights

    spec = build_model("squeezenet1_1", weights=None, random_state=0)
    ref = get_model_weights("squeezenet1_1").DEFAULT.transforms()
    assert spec.preprocess_info["crop"] == list(ref.crop_size)
    assert spec.preprocess_info["resize"] == list(ref.resize_size)
    assert spec.preprocess_info["mean"] == list(ref.mean)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 260, 3), np.uint8))
    out = spec.preprocess(img)
    assert out.shape == (3, ref.crop_size[0], ref.crop_size[0])
    torch.testing.assert_close(out, ref(img))


def test_inception_preprocessing_is_299():
    # metadata only: the preprocessing of inception_v3's weights (resize 342, crop 299)
    from torchvision.models import get_model_weights

    pre = registry.TorchvisionPreprocess(get_model_weights("inception_v3").DEFAULT.transforms())
    assert pre.info["crop"] == [299] and pre.info["resize"] == [342]


@pytest.mark.parametrize("wrap", [None, "state_dict", "model"])
def test_weights_from_a_local_file(tmp_path, wrap):
    src = build_model("squeezenet1_1", weights=None, random_state=3).module
    state = src.state_dict()
    obj = state if wrap is None else {wrap: state, "epoch": 7}
    path = tmp_path / "w.pth"
    torch.save(obj, path)
    spec = build_model("squeezenet1_1", weights=str(path), random_state=0)
    assert torch.equal(_params(spec.module), _params(src))
    assert spec.weights_id.startswith("sha256:")
    assert build_model("squeezenet1_1", weights=path).weights_id == spec.weights_id


def test_mismatched_weights_file_names_the_file(tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(Tiny().state_dict(), path)
    with pytest.raises(ModelError, match="tiny.pth"):
        build_model("squeezenet1_1", weights=str(path))


def test_offline_pretrained_weights_error_names_file_and_directory(tmp_path, monkeypatch):
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    with pytest.raises(WeightsUnavailableError) as info:
        build_model("squeezenet1_1", weights="DEFAULT")
    message = str(info.value)
    assert "squeezenet1_1-b8a52dc0.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message


def test_unknown_weights_name_lists_valid_ones():
    with pytest.raises(ModelError, match="IMAGENET1K_V1"):
        build_model("squeezenet1_1", weights="IMAGENET42")


def test_unknown_model_suggests_closest():
    with pytest.raises(ModelError) as info:
        build_model("alexnett", weights=None)
    assert "'alexnet'" in str(info.value)


def test_user_module_and_factory():
    net = Tiny()
    spec = build_model(net)
    assert spec.module is net and spec.name == "Tiny" and spec.modality == "image"
    assert spec.weights_id.startswith("sha256:")
    # default preprocessing: RGB in [0, 1], ImageNet-normalised, native size
    from PIL import Image

    arr = np.random.default_rng(1).integers(0, 255, (9, 7, 3), np.uint8)
    x = spec.preprocess(Image.fromarray(arr))
    mean = np.array(registry.IMAGENET_MEAN)[:, None, None]
    std = np.array(registry.IMAGENET_STD)[:, None, None]
    np.testing.assert_allclose(x.numpy(), (arr.transpose(2, 0, 1) / 255 - mean) / std, rtol=1e-5)
    a, b = build_model(Tiny, random_state=4), build_model(Tiny, random_state=4)
    assert torch.equal(_params(a.module), _params(b.module))
    assert a.weights_id == b.weights_id
    custom = build_model(net, preprocess=lambda img: torch.zeros(3, 4, 4))
    assert custom.preprocess(None).shape == (3, 4, 4)


def test_register_model_and_lazy_module(tmp_path, monkeypatch):
    def factory(weights, random_state):
        torch.manual_seed(random_state or 0)
        return ModelSpec(module=Tiny().eval(), name="tiny_registered", weights_id="x")

    register_model("tiny_registered", factory)
    assert isinstance(build_model("Tiny_Registered", weights=None).module, Tiny)

    (tmp_path / "np_plugin_mod.py").write_text(
        "from torch import nn\n"
        "from neuroprobe.models import register_model, ModelSpec\n"
        "register_model('lazy_tiny',\n"
        "               lambda w, r: ModelSpec(module=nn.Linear(2, 2), name='lazy_tiny'))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.LAZY_MODULES, "lazy_tiny", "np_plugin_mod")
    spec = build_model("lazy_tiny", weights=None)
    assert isinstance(spec.module, nn.Linear) and "np_plugin_mod" in sys.modules


def test_resolve_layer_aliases_and_error():
    spec = build_model("alexnet", weights=None, random_state=0)
    assert resolve_layer(spec, "conv5") == "features.10"
    assert resolve_layer(spec, "features.10") == "features.10"
    with pytest.raises(LayerError) as info:
        resolve_layer(spec, "conv6")
    text = str(info.value)
    assert "closest match: 'conv5'" in text and "features.12" in text and "fc2_relu" in text
    assert isinstance(info.value, KeyError)


def test_list_layers_shapes_match_a_manual_forward():
    layers = dict(list_layers(Tiny(), input_shape=(3, 8, 8)))
    assert layers["conv"] == (4, 6, 6)
    assert layers["pool"] == (4, 2, 2)
    assert layers["fc"] == (5,)


# ---------------------------------------------------------------- defaults (issue 13, section 4)
def _offline(monkeypatch, tmp_path):
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))


def test_default_weights_are_pretrained_never_silently_random(tmp_path, monkeypatch):
    _offline(monkeypatch, tmp_path)
    monkeypatch.setattr(weights_mod, "_RANDOM_WARNED", set())
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(WeightsUnavailableError) as info:
            build_model("squeezenet1_1")  # no weights=: pretrained, as on the CLI
    message = str(info.value)
    assert "squeezenet1_1-b8a52dc0.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message and "weights=None" in message
    assert not [w for w in caught if "RANDOM" in str(w.message)]  # no random network built


def test_random_weights_warn_once_per_model_and_seed_zero_by_default(monkeypatch):
    import warnings

    monkeypatch.setattr(weights_mod, "_RANDOM_WARNED", set())
    with pytest.warns(UserWarning, match="RANDOM, untrained weights"):
        a = build_model("squeezenet1_1", weights=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        b = build_model("squeezenet1_1", weights="random")
        c = build_model("squeezenet1_1", weights=None, random_state=1)
    assert not [w for w in caught if "RANDOM" in str(w.message)]  # once per model name
    assert a.weights_id.startswith("random(seed=0,") and b.weights_id == a.weights_id
    sa, sb, sc = a.module.state_dict(), b.module.state_dict(), c.module.state_dict()
    # random_state=None is a fixed seed (0): the same network every time (bit-exact by design)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    ref = build_model("squeezenet1_1", weights=None, random_state=0).module.state_dict()
    assert all(torch.equal(sa[k], ref[k]) for k in sa)


def test_list_layers_does_not_warn(monkeypatch):
    import warnings

    monkeypatch.setattr(weights_mod, "_RANDOM_WARNED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list_layers("squeezenet1_1")
    assert not [w for w in caught if "RANDOM" in str(w.message)]


def test_module_keeps_its_weights_under_the_default():
    torch.manual_seed(3)
    net = Tiny()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    spec = build_model(net)  # weights="DEFAULT": a module keeps its own weights
    assert all(torch.equal(before[k], v) for k, v in spec.module.state_dict().items())
