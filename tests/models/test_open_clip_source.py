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
from neuroprobe.stimuli import StimulusSet  # noqa: E402
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
    assert spec.aliases["block0"] == "token_taps.transformer_resblocks_0"  # a token tap
    layers = ["transformer.resblocks.0", "transformer.resblocks.1", spec.aliases["head"]]
    with torch.no_grad(), capture(spec.module, layers) as out:
        spec.module(tokens)
        want = reference.forward_intermediates(text=tokens, text_indices=[0, 1], normalize=False)
        embedding = reference.encode_text(tokens)
    assert_allclose_dtype(out["embedding"].numpy(), embedding.numpy(), n_terms=32)
    for i in (0, 1):  # the library's module names: the raw (B, T, C)
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
    with pytest.raises(ModelError, match="token_pooling='max'"):
        build_model(f"open_clip:{tiny}?tower=text&token_pooling=max", weights=None)


def _text_reference(tiny, reference):
    """OpenCLIP's own tokens, mask (ids != 0), block outputs, final-norm tokens and embedding."""
    tokens = open_clip.get_tokenizer(tiny)(TEXTS)
    with torch.no_grad():
        want = reference.forward_intermediates(text=tokens, text_indices=[0, 1], normalize=False)
        blocks = [t.numpy() for t in want["text_intermediates"]]
        norm = reference.ln_final(want["text_intermediates"][1]).numpy()
        embedding = reference.encode_text(tokens).numpy()
    lengths = (tokens != 0).sum(1).numpy()
    return tokens, lengths, blocks, norm, embedding


HAND_TEXT = {  # over the real tokens 0 .. n - 1 of each text (start- to end-of-text)
    "mean": lambda t, n: t[:n].mean(0),
    "cls": lambda t, n: t[0],
    "last": lambda t, n: t[n - 1],
}


@pytest.mark.parametrize("how", ["mean", "cls", "last"])
def test_text_tower_token_pooling_is_mask_aware(tiny, reference, how):
    """Text-tower taps pool over the real tokens only; 'last' is the end-of-text token, where
    encode_text pools (argmax of the ids), so norm 'last' @ text_projection is encode_text; the
    features do not depend on the batch size or on the other texts of a batch."""
    tokens, lengths, blocks, norm, embedding = _text_reference(tiny, reference)
    assert len(set(lengths)) == len(TEXTS)  # texts of different lengths: padding differs
    stims = StimulusSet.from_texts(TEXTS)
    layers = ["block0", "block1", "norm", "head"]
    ext = DNNFeatureExtractor(f"open_clip:{tiny}?tower=text&token_pooling={how}", weights=None,
                              layers=layers, batch_size=3, cache=False)
    features = ext.fit_transform(stims)
    assert ext.n_tokens_ is None and ext.layer_shapes_["block0"] == (32,)
    for i, n in enumerate(lengths):
        want = np.concatenate([HAND_TEXT[how](t[i], n) for t in (*blocks, norm)] + [embedding[i]])
        assert_allclose_dtype(features[i], want, n_terms=64, err_msg=f"{how} text {i}")
    if how == "last":
        eot = tokens.argmax(-1).numpy()  # open_clip's text_global_pool(pool_type="argmax")
        np.testing.assert_array_equal(eot, lengths - 1)
        projection = reference.text_projection.detach().numpy()
        pooled = features[:, ext.feature_slices_["norm"]] @ projection
        assert_allclose_dtype(pooled, embedding, n_terms=64)
    alone = DNNFeatureExtractor(f"open_clip:{tiny}?tower=text&token_pooling={how}", weights=None,
                                layers=layers, batch_size=1, cache=False)
    assert_allclose_dtype(alone.fit_transform(stims), features, n_terms=64)
    alone.set_params(batch_size=2)
    assert_allclose_dtype(alone.transform(stims[[2, 0]]), features[[2, 0]], n_terms=64)


def test_text_tower_none_pads_to_longest_of_set(tiny, reference, tmp_path):
    """'none': every token of a batch cut to the longest text of the set (not the context
    length), padding zeroed, mask = ids != 0; batch invariant; encode_text unchanged; the
    .act.h5 file equals the in-memory features and stores the mask."""
    from neuroprobe.io.activations import open_activations

    tokens, lengths, blocks, norm, embedding = _text_reference(tiny, reference)
    n = int(lengths.max())
    assert n < tokens.shape[1]  # shorter than the context: the cut is visible
    stims = StimulusSet.from_texts(TEXTS)
    layers = ["block1", "norm", "token_mask", "head"]
    model = f"open_clip:{tiny}?tower=text"
    ext = DNNFeatureExtractor(model, weights=None, layers=layers, batch_size=2, cache=False)
    features = ext.fit_transform(stims)
    assert ext.n_tokens_ == n
    assert ext.layer_shapes_ == {"block1": (32, n), "norm": (32, n), "token_mask": (n,),
                                 "head": (16,)}
    mask = (tokens[:, :n] != 0).numpy()
    for name, want in (("block1", blocks[1]), ("norm", norm)):
        got = features[:, ext.feature_slices_[name]].reshape(3, 32, n)
        want = np.where(mask[:, None], want[:, :n].transpose(0, 2, 1), 0)
        assert_allclose_dtype(got, want, n_terms=64, err_msg=name)
    np.testing.assert_array_equal(features[:, ext.feature_slices_["token_mask"]], mask)
    assert_allclose_dtype(features[:, ext.feature_slices_["head"]], embedding, n_terms=64)
    one = DNNFeatureExtractor(model, weights=None, layers=layers, batch_size=1, cache=False)
    assert_allclose_dtype(one.fit_transform(stims), features, n_terms=64)
    one.set_params(batch_size=2)
    assert_allclose_dtype(one.transform(stims[[1, 0]]), features[[1, 0]], n_terms=64)
    path = ext.extract_to_file(stims, tmp_path / "text.act.h5")
    with open_activations(path) as f:
        assert f.shape("block1") == (3, 32, n)
        np.testing.assert_array_equal(f.read("block1.token_mask"), mask)
        stored = np.concatenate([f.read(la).reshape(3, -1) for la in layers], axis=1)
    np.testing.assert_array_equal(stored, features)


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
