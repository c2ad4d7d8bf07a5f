"""CLIPEmbedder: image and caption embeddings of the same stimuli equal OpenCLIP's encode_image /
encode_text; one .act.h5 holds both; bad input names the argument."""

import numpy as np
import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from PIL import Image  # noqa: E402

from neuroprobe.exceptions import StimulusError  # noqa: E402
from neuroprobe.stimuli import StimulusSet  # noqa: E402
from neuroprobe.transformers import ActivationReader, CLIPEmbedder  # noqa: E402
from tests._tiny_clip import register_tiny_clip  # noqa: E402
from tests._tolerance import assert_allclose_dtype  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:model .* RANDOM:UserWarning")

CAPTIONS = ["a red square", "a green circle on grey", "noise"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return register_tiny_clip(tmp_path_factory.mktemp("clipcfg"))


@pytest.fixture
def stims(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["stim_id,path,caption"]
    for k, caption in enumerate(CAPTIONS):
        Image.fromarray(rng.integers(0, 256, (36, 44, 3), np.uint8)).save(tmp_path / f"{k}.png")
        rows.append(f"s{k},{k}.png,{caption}")
    (tmp_path / "stims.csv").write_text("\n".join(rows) + "\n")
    return StimulusSet.from_csv(tmp_path / "stims.csv")


def _reference(tiny, stims, normalize):
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(tiny, pretrained=None)
    model.eval()
    images = torch.stack([preprocess(stims.load(i)) for i in range(len(stims))])
    tokens = open_clip.get_tokenizer(tiny)(CAPTIONS)
    with torch.no_grad():
        return (model.encode_image(images, normalize=normalize).numpy(),
                model.encode_text(tokens, normalize=normalize).numpy())


@pytest.mark.parametrize("normalize", [False, True])
def test_embeddings_equal_encode_image_and_text(tiny, stims, normalize):
    emb = CLIPEmbedder(f"open_clip:{tiny}", weights=None, normalize=normalize, batch_size=2)
    features = emb.fit_transform(stims)
    image, text = _reference(tiny, stims, normalize)
    assert features.shape == (3, 32) and features.dtype == np.float32
    assert_allclose_dtype(features[:, emb.feature_slices_["image:head"]], image, n_terms=32)
    assert_allclose_dtype(features[:, emb.feature_slices_["text:head"]], text, n_terms=32)
    names = emb.get_feature_names_out()
    assert names[0] == "image:head:u0" and names[16] == "text:head:u0"
    # transform after fit gives the same rows
    assert_allclose_dtype(emb.transform(stims), features, n_terms=32)


def test_one_act_h5_holds_both(tiny, stims, tmp_path):
    emb = CLIPEmbedder(f"open_clip:{tiny}", weights=None, batch_size=2,
                       image_layers=["head", "block1"], pooling="mean")
    path = emb.extract_to_file(stims, tmp_path / "clip.act.h5")
    want = emb.fit_transform(stims)
    got = np.concatenate(
        [ActivationReader(path, layer).fit(stims).transform(stims)
         for layer in ["image:head", "image:block1", "text:head"]], axis=1)
    assert_allclose_dtype(got, want, n_terms=32)
    image, text = _reference(tiny, stims, False)
    assert_allclose_dtype(ActivationReader(path, "text:head").fit().transform(stims), text,
                          n_terms=32)


def test_text_only_from_strings(tiny, stims):
    emb = CLIPEmbedder(f"open_clip:{tiny}", weights=None, towers="text")
    _, text = _reference(tiny, stims, False)
    assert_allclose_dtype(emb.fit_transform(CAPTIONS), text, n_terms=32)
    # padding never changes a caption's embedding: alone or in a batch
    assert_allclose_dtype(emb.transform(CAPTIONS[2:]), text[2:], n_terms=32)


def test_bad_input(tiny, stims):
    with pytest.raises(StimulusError, match="no text column 'label'"):
        CLIPEmbedder(f"open_clip:{tiny}", weights=None, text_column="label").fit(stims)
    with pytest.raises(StimulusError, match="StimulusSet of images"):
        CLIPEmbedder(f"open_clip:{tiny}", weights=None).fit(CAPTIONS)
    with pytest.raises(ValueError, match="without options"):
        CLIPEmbedder(f"open_clip:{tiny}?tower=text", weights=None).fit(stims)
    with pytest.raises(ValueError, match="towers"):
        CLIPEmbedder(f"open_clip:{tiny}", weights=None, towers="audio").fit(stims)


def test_text_only_file_from_strings(tiny, stims, tmp_path):
    emb = CLIPEmbedder(f"open_clip:{tiny}", weights=None, towers="text", batch_size=2)
    path = emb.extract_to_file(CAPTIONS, tmp_path / "text.act.h5")
    _, text = _reference(tiny, stims, False)
    reader = ActivationReader(path, "text:head").fit()
    assert list(reader.stim_ids_) == ["0", "1", "2"]
    assert_allclose_dtype(reader.transform(np.arange(3)), text, n_terms=32)
