"""OpenCLIP source: features equal the library's encode_image / encode_text and its
forward_intermediates, preprocessing equals OpenCLIP's transforms and tokenizer, weights files,
offline errors naming the cache folders, bad names."""

import os

import numpy as np
import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from PIL import Image  # noqa: E402

from neuroprobe.exceptions import ModelError, WeightsUnavailableError  # noqa: E402
from neuroprobe.models import build_model, list_layers  # noqa: E402
from neuroprobe.models.hooks import capture  # noqa: E402
from neuroprobe.transformers.extraction import DNNFeatureExtractor  # noqa: E402
from tests._tiny_clip import register_tiny_clip  # noqa: E402
from tests._tolerance import assert_allclose_dtype  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:model .* RANDOM:UserWarning")]

TEXTS = ["a photo of a cat", "a dog", "two red apples on a wooden table, seen from above"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return register_tiny_clip(tmp_path_factory.mktemp("clipcfg"))


@pytest.fixture(scope="module")
def reference(tiny):
    torch.manual_seed(0)
    return open_clip.create_model(tiny, pretrained=None).eval()


@pytest.fixture(scope="module")
def pil_images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40 + 5 * k, 50, 3), dtype=np.uint8))
            for k in range(3)]


def test_image_tower_equals_encode_image_and_intermediates(tiny, reference, pil_images):
    _, _, preprocess_val = open_clip.create_model_and_transforms(tiny, pretrained=None)
    array = np.stack([np.asarray(im.resize((50, 40))) for im in pil_images])
    x = torch.stack([preprocess_val(Image.fromarray(a)) for a in array])
    ext = DNNFeatureExtractor(f"open_clip:{tiny}", weights=None, random_state=0, batch_size=2,
                              layers=["head", "block0", "block1"])
    features = ext.fit_transform(array)
    with torch.no_grad():
        want = reference.forward_intermediates(
            image=x, image_indices=[0, 1], normalize=False, image_output_fmt="NLC",
            image_output_extra_tokens=True)
        embedding = reference.encode_image(x)
    assert ext.layers_ == ["embedding", "token_taps.visual_transformer_resblocks_0",
                           "token_taps.visual_transformer_resblocks_1"]
    assert_allclose_dtype(features[:, ext.feature_slices_["head"]], embedding.numpy(), n_terms=32)
    for i in (0, 1):
        tokens = torch.cat([want["image_intermediates_prefix"][i],
                            want["image_intermediates"][i]], 1)  # (B, T, C), class token first
        tokens = tokens.transpose(1, 2)  # the aliases give tokens channel first (B, C, T)
        got = features[:, ext.feature_slices_[f"block{i}"]]
        assert_allclose_dtype(got, tokens.numpy().reshape(3, -1), n_terms=32)
    assert ext.model_.weights_id.startswith("random(seed=0,open_clip=")


def test_preprocessing_is_open_clip_transform(tiny, pil_images):
    spec = build_model(f"open_clip:{tiny}", weights=None)
    _, _, preprocess_val = open_clip.create_model_and_transforms(tiny, pretrained=None)
    for image in pil_images:
        assert torch.equal(spec.preprocess(image), preprocess_val(image))
    assert spec.preprocess_info["input_shape"] == [3, 32, 32]
    assert spec.preprocess_info["kind"] == "open_clip.image_transform_v2"
    # a tag's preprocessing (mean/std of its training data) is used also with random weights
    tagged = build_model("open_clip:ViT-B-32/laion2b_s34b_b79k", weights=None)
    cfg = open_clip.get_pretrained_cfg("ViT-B-32", "laion2b_s34b_b79k")
    assert tagged.preprocess_info["mean"] == list(cfg["mean"])


def test_text_tower_equals_encode_text(tiny, reference):
    spec = build_model(f"open_clip:{tiny}?tower=text", weights=None, random_state=0)
    tokens = open_clip.get_tokenizer(tiny)(TEXTS)
    assert torch.equal(spec.preprocess.batch(TEXTS), tokens)
    assert torch.equal(spec.preprocess(TEXTS[1]), tokens[1])
    assert spec.modality == "text" and spec.name.endswith("?tower=text")
    layers = [spec.aliases[a] for a in ("block0", "block1", "head")]
    with torch.no_grad(), capture(spec.module, layers) as out:
        spec.module(tokens)
        want = reference.forward_intermediates(text=tokens, text_indices=[0, 1], normalize=False)
        embedding = reference.encode_text(tokens)
    assert_allclose_dtype(out["embedding"].numpy(), embedding.numpy(), n_terms=32)
    for i in (0, 1):
        assert_allclose_dtype(out[layers[i]].numpy(), want["text_intermediates"][i].numpy(),
                              n_terms=32)
    # token ids carried as floats (an extractor's float batch) give the same embedding
    with torch.no_grad():
        assert torch.equal(spec.module(tokens.float()), spec.module(tokens))
    with pytest.raises(ModelError, match="takes strings"):
        spec.preprocess(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ModelError, match="image tower takes images.*tower=text"):
        build_model(f"open_clip:{tiny}", weights=None).preprocess("a cat")


def test_token_pooling_cls_and_mean(tiny, reference):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = reference.forward_intermediates(
            image=x, image_indices=[1], normalize=False, image_output_fmt="NLC",
            image_output_extra_tokens=True)
    for how, hand in [("cls", want["image_intermediates_prefix"][0][:, 0]),
                      ("mean", want["image_intermediates"][0].mean(1))]:
        ext = DNNFeatureExtractor(f"open_clip:{tiny}?token_pooling={how}", weights=None,
                                  layers=["block1"])
        assert_allclose_dtype(ext.fit_transform(x), hand.numpy(), n_terms=32)
    with pytest.raises(ModelError, match="text tower takes token_pooling='none'"):
        build_model(f"open_clip:{tiny}?tower=text&token_pooling=cls", weights=None)


def test_seeds_and_checkpoint_file(tiny, reference, tmp_path):
    same = build_model(f"open_clip:{tiny}", weights=None, random_state=0).module
    other = build_model(f"open_clip:{tiny}", weights=None, random_state=1).module
    w = "visual.conv1.weight"
    assert torch.equal(same.state_dict()[w], reference.state_dict()[w])
    assert not torch.equal(other.state_dict()[w], reference.state_dict()[w])
    path = tmp_path / "clip.pt"
    torch.save(reference.state_dict(), path)
    spec = build_model(f"open_clip:{tiny}?tower=text", weights=str(path))
    assert spec.weights_id.startswith("sha256:")
    tokens = open_clip.get_tokenizer(tiny)(TEXTS)
    with torch.no_grad():
        assert_allclose_dtype(spec.module(tokens).numpy(), reference.encode_text(tokens).numpy(),
                              n_terms=32)


def test_layers_listing(tiny):
    image = dict(list_layers(f"open_clip:{tiny}"))
    assert image["embedding"] == (16,) and image["visual.ln_post"] == (17, 32)
    text = dict(list_layers(f"open_clip:{tiny}?tower=text"))
    assert text["embedding"] == (16,) and text["ln_final"] == (16, 32)


def test_offline_error_names_cache_folders(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(WeightsUnavailableError) as info:
        build_model("open_clip:ViT-B-32/laion2b_s34b_b79k")  # never downloaded
    message = str(info.value)
    assert "'ViT-B-32'" in message and "'laion2b_s34b_b79k'" in message
    assert str(tmp_path / "hub") in message and str(tmp_path / ".cache" / "clip") in message
    assert "models--laion--" in message and "weights=None" in message
    assert constants.HF_HUB_OFFLINE is False and "HF_HUB_OFFLINE" not in os.environ
    import open_clip.pretrained as pretrained

    assert pretrained.download_pretrained_from_url.__name__ == "download_pretrained_from_url"


def test_bad_names(tiny):
    with pytest.raises(ModelError, match="unknown OpenCLIP architecture 'ViT-B-33'.*ViT-B-32"):
        build_model("open_clip:ViT-B-33/openai")
    with pytest.raises(ModelError, match="unknown pretrained tag 'nope'.*laion2b_s34b_b79k"):
        build_model("open_clip:ViT-B-32/nope")
    with pytest.raises(ModelError, match="names no pretrained tag"):
        build_model(f"open_clip:{tiny}")
    with pytest.raises(ModelError, match="unknown option 'towers=text'"):
        build_model(f"open_clip:{tiny}?towers=text", weights=None)
    with pytest.raises(ModelError, match="tower='audio'"):
        build_model(f"open_clip:{tiny}?tower=audio", weights=None)
    with pytest.raises(ModelError, match="weights file not found"):
        build_model(f"open_clip:{tiny}", weights="/no/such/file.pt")


def test_local_dir_schema(tiny, reference, tmp_path):
    import json

    from tests._tiny_clip import TINY_CONFIG

    folder = tmp_path / "clipdir"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CONFIG}))
    torch.save(reference.state_dict(), folder / "open_clip_pytorch_model.bin")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    tokens = open_clip.get_tokenizer(tiny)(TEXTS)
    image = build_model(f"open_clip:local-dir:{folder}")
    text = build_model(f"open_clip:local-dir:{folder}?tower=text")
    assert image.weights_id.startswith("sha256:") and text.modality == "text"
    with torch.no_grad():
        assert_allclose_dtype(image.module(x).numpy(), reference.encode_image(x).numpy(),
                              n_terms=32)
        assert_allclose_dtype(text.module(tokens).numpy(), reference.encode_text(tokens).numpy(),
                              n_terms=32)
    random = build_model(f"open_clip:local-dir:{folder}", weights=None, random_state=1)
    assert random.weights_id.startswith("random(seed=1")
    assert not torch.equal(random.module.visual.conv1.weight, image.module.visual.conv1.weight)
    with pytest.raises(ModelError, match="holds no open_clip_config.json"):
        build_model(f"open_clip:local-dir:{tmp_path}")


def test_hf_hub_schema_offline_error(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(WeightsUnavailableError) as info:
        build_model("open_clip:hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    message = str(info.value)
    assert str(tmp_path / "hub") in message
    assert "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" in message
