"""timm source: features equal timm's own forward_features / forward_intermediates, token pooling
equals hand-written CLS / mean / last, aliases, offline errors, bad names."""

import copy
import os

import numpy as np
import pytest
import torch

timm = pytest.importorskip("timm")

from PIL import Image  # noqa: E402

from neuroprobe.exceptions import ModelError, WeightsUnavailableError  # noqa: E402
from neuroprobe.models import build_model, list_layers  # noqa: E402
from neuroprobe.models.hooks import capture  # noqa: E402
from neuroprobe.transformers.extraction import DNNFeatureExtractor  # noqa: E402
from tests._tolerance import assert_allclose_dtype  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:model .* RANDOM:UserWarning")


def _random_timm(name, seed=0):
    torch.manual_seed(seed)
    return timm.create_model(name, pretrained=False).eval()


@pytest.fixture(scope="module")
def small_images():
    return torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def vit_images():
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def test_resnet_blocks_equal_forward_intermediates(small_images):
    ext = DNNFeatureExtractor("timm:resnet10t", weights=None, random_state=0,
                              layers=["embed", "block0", "block3", "head"], batch_size=2)
    features = ext.fit_transform(small_images)
    ref = _random_timm("resnet10t")
    with torch.no_grad():
        inter = ref.forward_intermediates(small_images, indices=[0, 1, 4], intermediates_only=True)
        final = ref.forward_features(small_images)
        logits = ref(small_images)
    expected = [inter[0], inter[1], final, logits]
    assert ext.layers_ == ["act1", "layer1", "layer4", "fc"]
    for layer, want in zip(["embed", "block0", "block3", "head"], expected):
        got = features[:, ext.feature_slices_[layer]]
        assert_allclose_dtype(got, want.flatten(1).numpy(), n_terms=512)
    # the same seed builds the same network; another seed another one
    other = build_model("timm:resnet10t", weights=None, random_state=1).module
    same = build_model("timm:resnet10t", weights=None, random_state=0).module
    assert torch.equal(same.fc.weight, ref.fc.weight)
    assert not torch.equal(other.fc.weight, ref.fc.weight)


def test_resnet_modules_equal_timm_feature_hooks(small_images):
    """Module outputs captured by our hooks equal timm's own FeatureHookNet hooks."""
    from timm.models import FeatureHookNet

    names = ["layer2", "layer3"]
    spec = build_model("timm:resnet10t", weights=None)
    ref = FeatureHookNet(_random_timm("resnet10t"), out_indices=(2, 3)).eval()
    with torch.no_grad(), capture(spec.module, names) as out:
        spec.module(small_images)
        want = ref(small_images)
    assert len(want) == 2
    for name, tensor in zip(names, want):
        assert_allclose_dtype(out[name].numpy(), tensor.numpy(), n_terms=512)


def test_preprocessing_is_timm_data_config():
    spec = build_model("timm:resnet10t", weights=None)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    config = timm.data.resolve_data_config({}, model=_random_timm("resnet10t"))
    want = timm.data.create_transform(**config)(image)
    got = spec.preprocess(image)
    assert got.shape == (3, *config["input_size"][1:])
    assert torch.equal(got, want)
    assert spec.preprocess_info["input_size"] == list(config["input_size"])
    assert spec.preprocess_info["crop_pct"] == config["crop_pct"]
    assert spec.weights_id.startswith("random(seed=0,timm=")


@pytest.fixture(scope="module")
def vit_reference(vit_images):
    ref = _random_timm("vit_tiny_patch16_224")
    with torch.no_grad():
        blocks = ref.forward_intermediates(vit_images, indices=[3, 11], norm=False,
                                           output_fmt="NLC", intermediates_only=True)
        # timm drops the prefix (class) token from intermediates: take block outputs with hooks
        final = ref.forward_features(vit_images)
    return ref, blocks, final


@pytest.mark.parametrize("how", ["cls", "mean", "last", "none"])
def test_vit_token_pooling_equals_hand_written(vit_images, vit_reference, how):
    ref, blocks, final = vit_reference
    ext = DNNFeatureExtractor(f"timm:vit_tiny_patch16_224?token_pooling={how}", weights=None,
                              layers=["norm", "block3"], batch_size=2)
    features = ext.fit_transform(vit_images)
    got_norm = features[:, ext.feature_slices_["norm"]]
    got_block = features[:, ext.feature_slices_["block3"]]
    hand = {
        "cls": lambda t: t[:, 0],
        "mean": lambda t: t[:, 1:].mean(1),
        "last": lambda t: t[:, -1],
        "none": lambda t: t.transpose(1, 2).flatten(1),
    }[how]
    assert_allclose_dtype(got_norm, hand(final).numpy(), n_terms=192)
    if how in ("mean", "last"):  # blocks' patch tokens (no class token) from timm itself
        assert_allclose_dtype(got_block, hand(torch.cat([final[:, :1], blocks[0]], 1)).numpy(),
                              n_terms=192)
    expected_width = {"none": 192 * 197}.get(how, 192)
    assert got_norm.shape == (2, expected_width)


def test_vit_aliases_and_list_layers():
    spec = build_model("timm:vit_tiny_patch16_224?token_pooling=cls", weights=None)
    assert [f"block{i}" for i in range(12)] == [a for a in spec.aliases if a.startswith("block")]
    assert {"embed", "norm", "head"} <= set(spec.aliases)
    assert spec.aliases["head"] == "head"
    assert spec.preprocess_info["token_pooling"] == "cls"
    shapes = dict(list_layers("timm:vit_tiny_patch16_224?token_pooling=cls"))
    for alias, module in spec.aliases.items():
        assert module in shapes, alias
    assert shapes[spec.aliases["block0"]] == (192,)
    assert shapes["blocks.0"] == (197, 192)  # the library's module name: raw tokens
    assert shapes["head"] == (1000,)
    # a deep copy keeps its taps on its own blocks
    clone = copy.deepcopy(spec.module)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad(), capture(clone, [spec.aliases["block5"], "blocks.5"]) as out:
        clone(x)
    assert torch.equal(out[spec.aliases["block5"]], out["blocks.5"][:, 0])


def test_offline_error_names_cache_folder(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(WeightsUnavailableError) as info:
        build_model("timm:resnet10t")  # weights="DEFAULT": pretrained, never downloaded
    message = str(info.value)
    assert "'resnet10t'" in message
    assert str(tmp_path) in message
    assert "HF_HUB_CACHE" in message and "weights=None" in message
    assert str(tmp_path / "torch") in message  # torch.hub's checkpoints folder too
    # the offline switch is set for the call only
    assert constants.HF_HUB_OFFLINE is False
    assert "HF_HUB_OFFLINE" not in os.environ


def test_bad_names():
    with pytest.raises(ModelError, match="unknown model source 'nope'.*hf:<name>.*timm:<name>"):
        build_model("nope:resnet10t", weights=None)
    with pytest.raises(ModelError, match="unknown timm model 'resnet10'.*'resnet10t'"):
        build_model("timm:resnet10", weights=None)
    with pytest.raises(ModelError, match="token_pooling='avg'.*cls, mean, last, none"):
        build_model("timm:resnet10t?token_pooling=avg", weights=None)
    with pytest.raises(ModelError, match="unknown option 'pool=cls'"):
        build_model("timm:resnet10t?pool=cls", weights=None)
    with pytest.raises(ModelError, match="expected 'DEFAULT'"):
        build_model("timm:resnet10t", weights="IMAGENET1K_V1")


def test_weights_file(tmp_path, small_images):
    ref = _random_timm("resnet10t", seed=3)
    path = tmp_path / "w.pth"
    torch.save(ref.state_dict(), path)
    spec = build_model("timm:resnet10t", weights=str(path))
    assert spec.weights_id.startswith("sha256:")
    with torch.no_grad():
        assert torch.equal(spec.module(small_images), ref(small_images))
