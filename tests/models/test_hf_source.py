"""Hugging Face source: features equal ``output_hidden_states=True``, token pooling equals
hand-written CLS / mean / last, folders and the hub cache, offline errors."""

import numpy as np
import pytest
import torch
from PIL import Image

transformers = pytest.importorskip("transformers")

from neuroprobe.exceptions import ModelError, WeightsUnavailableError  # noqa: E402
from neuroprobe.models import build_model, list_layers  # noqa: E402
from neuroprobe.transformers.extraction import DNNFeatureExtractor  # noqa: E402
from tests._tolerance import assert_allclose_dtype  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:model .* RANDOM:UserWarning")

_TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             image_size=32, patch_size=8)


def _folder(path, kind="vit", weights=False, seed=5):
    """A save_pretrained folder: config + image processor (+ weights of a seeded model)."""
    config = (transformers.ViTConfig if kind == "vit" else transformers.Dinov2Config)(**_TINY)
    config.save_pretrained(path)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    if weights:
        torch.manual_seed(seed)
        transformers.AutoModel.from_config(config).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module", params=["vit", "dinov2"])
def folder(request, tmp_path_factory):
    return _folder(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(scope="module")
def images():
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _reference(folder, images, seed=0):
    config = transformers.AutoConfig.from_pretrained(folder)
    torch.manual_seed(seed)
    model = transformers.AutoModel.from_config(config).eval()
    with torch.no_grad():
        out = model(images, output_hidden_states=True)
    return out


_HAND = {
    "cls": lambda t: t[:, 0],
    "mean": lambda t: t[:, 1:].mean(1),
    "last": lambda t: t[:, -1],
    "none": lambda t: t.transpose(1, 2).flatten(1),
}


@pytest.mark.parametrize("how", ["cls", "mean", "last", "none"])
def test_features_equal_hidden_states(folder, images, how):
    ext = DNNFeatureExtractor(f"hf:{folder}?token_pooling={how}", weights=None, random_state=0,
                              layers=["embed", "block0", "block1", "norm"], batch_size=2)
    features = ext.fit_transform(images)
    out = _reference(folder, images)
    hidden = out.hidden_states
    assert len(hidden) == 3
    want = {"embed": hidden[0], "block0": hidden[1], "block1": hidden[2],
            "norm": out.last_hidden_state}
    for layer, tokens in want.items():
        got = features[:, ext.feature_slices_[layer]]
        assert_allclose_dtype(got, _HAND[how](tokens).numpy(), n_terms=32, err_msg=layer)
    assert ext.model_.preprocess_info["token_pooling"] == how


def test_pretrained_folder_and_preprocessing(tmp_path, images):
    path = _folder(tmp_path, weights=True, seed=5)
    spec = build_model(f"hf:{path}?token_pooling=cls")  # weights="DEFAULT": the folder's weights
    assert spec.weights_id.startswith("sha256:")
    saved = transformers.AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        want = saved(images).last_hidden_state[:, 0]
    ext = DNNFeatureExtractor(f"hf:{path}?token_pooling=cls", layers=["norm"])
    assert_allclose_dtype(ext.fit_transform(images), want.numpy(), n_terms=32)
    random = build_model(f"hf:{path}", weights=None)
    assert not torch.equal(random.module.embeddings.patch_embeddings.projection.weight,
                           saved.embeddings.patch_embeddings.projection.weight)
    # the image processor of the folder, per image
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    processor = transformers.AutoImageProcessor.from_pretrained(path)
    assert torch.equal(spec.preprocess(image),
                       processor(images=image, return_tensors="pt")["pixel_values"][0])
    assert spec.preprocess_info["image_mean"] == [0.5, 0.5, 0.5]


def test_aliases_and_list_layers(folder):
    spec = build_model(f"hf:{folder}?token_pooling=mean", weights=None)
    assert [a for a in spec.aliases] == ["embed", "block0", "block1", "norm", "head"][
        : len(spec.aliases)]
    shapes = dict(list_layers(f"hf:{folder}?token_pooling=mean"))
    for alias in ("embed", "block0", "block1", "norm"):
        assert shapes[spec.aliases[alias]] == (32,), alias
    raw = spec.aliases["block1"].replace("token_taps.", "").replace("_", ".")
    assert shapes[raw] == (17, 32)  # library module name: raw (tokens, channels)


def test_errors(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(WeightsUnavailableError) as info:
        build_model("hf:neuroprobe-tests/not-a-model", weights=None)
    message = str(info.value)
    assert "'neuroprobe-tests/not-a-model'" in message and str(tmp_path / "hub") in message
    assert "models--neuroprobe-tests--not-a-model" in message
    with pytest.raises(ModelError, match="model folder not found"):
        build_model(f"hf:{tmp_path}/missing", weights=None)
    transformers.ViTConfig(**_TINY).save_pretrained(tmp_path / "noproc")
    with pytest.raises(ModelError, match="no image processor"):
        build_model(f"hf:{tmp_path / 'noproc'}", weights=None)
    with pytest.raises(ModelError, match="holds no model weights"):
        build_model(f"hf:{_folder(tmp_path / 'cfg')}")
    with pytest.raises(ModelError, match="token_pooling='max'"):
        build_model(f"hf:{tmp_path / 'cfg'}?token_pooling=max", weights=None)


def test_cli_layers_and_extract(tmp_path, capsys):
    from neuroprobe.cli.main import main
    from neuroprobe.io.activations import open_activations
    from neuroprobe.stimuli import StimulusSet

    path = _folder(tmp_path / "model")
    model = f"hf:{path}?token_pooling=cls"
    assert main(["layers", "--model", model, "--weights", "none"]) == 0
    listing = capsys.readouterr().out
    assert "block1" in listing and "token_taps.layers_1" in listing
    stims = tmp_path / "stims"
    stims.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(stims / f"{k}.png")
    out = tmp_path / "hf.act.h5"
    code = main(["extract", "--model", model, "--weights", "none", "--seed", "0",
                 "--layers", "block1", "--stimuli", str(stims), "--out", str(out), "--quiet"])
    assert code == 0
    ext = DNNFeatureExtractor(model, weights=None, layers=["block1"], random_state=0)
    want = ext.fit_transform(StimulusSet.from_folder(stims))
    with open_activations(out) as f:
        stored = f.read("block1")
        assert f.attrs["model"] == ext.model_.name
        assert "random(seed=0,transformers=" in str(dict(f.attrs))
    assert_allclose_dtype(stored, want, n_terms=32)


def test_model_output_gives_hidden_state(folder, images):
    """A ModelOutput (an ordered dict) gives its first tensor: the last hidden state."""
    from neuroprobe.models.hooks import first_tensor

    spec = build_model(f"hf:{folder}", weights=None)
    with torch.no_grad():
        out = spec.module(images, output_hidden_states=True)
    assert isinstance(out, transformers.utils.ModelOutput)
    assert torch.equal(first_tensor(out), out.last_hidden_state)
