"""Hugging Face language and audio models: features equal ``output_hidden_states=True`` with
hand-written masked mean / CLS / last; batch invariance under padding (both sides, batch sizes
and batch compositions); token_pooling='none' padded to the longest text of the set (length from
the tokenizer itself); .act.h5 round trip and bit-exact resume for a text set; offline errors;
modality errors; CLI on a language model."""

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from neuroprobe.exceptions import ModelError, TruncationWarning  # noqa: E402
from neuroprobe.models import build_model, list_layers  # noqa: E402
from neuroprobe.stimuli import StimulusSet  # noqa: E402
from neuroprobe.transformers.extraction import DNNFeatureExtractor  # noqa: E402
from tests._tolerance import assert_allclose_dtype  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:model .* RANDOM:UserWarning", "ignore:.*token_id.*:UserWarning"
)

WORDS = "the cat sat on a mat dog ran far away and then it was over story of my life".split()
TEXTS = ["the cat sat on a mat", "a dog", "it was over and then the story of my life was over",
         "dog ran far away"]


def make_tokenizer(padding_side="right", max_length=32):
    """A WordLevel tokenizer over WORDS, built in code (no download)."""
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", padding_side=padding_side,
        model_max_length=max_length,
    )


CONFIGS = {
    "gpt2": lambda: transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64,
                                            vocab_size=40, bos_token_id=0, eos_token_id=0),
    "bert": lambda: transformers.BertConfig(num_hidden_layers=2, hidden_size=32,
                                            num_attention_heads=2, intermediate_size=64,
                                            vocab_size=40, max_position_embeddings=64),
    "llama": lambda: transformers.LlamaConfig(num_hidden_layers=2, hidden_size=32,
                                              num_attention_heads=2, num_key_value_heads=2,
                                              intermediate_size=64, vocab_size=40,
                                              max_position_embeddings=64, pad_token_id=0,
                                              bos_token_id=None, eos_token_id=None),
}
#: alias -> index into hidden_states (GPT-2 and Llama apply the final norm to the last state)
HIDDEN = {
    "gpt2": {"embed": 0, "block0": 1, "norm": 2},
    "bert": {"embed": 0, "block0": 1, "block1": 2},
    "llama": {"embed": 0, "block0": 1, "norm": 2},
}


def lm_folder(path, kind, padding_side="right", max_length=32):
    CONFIGS[kind]().save_pretrained(path)
    make_tokenizer(padding_side, max_length).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module", params=list(CONFIGS))
def lm(request, tmp_path_factory):
    return request.param, lm_folder(tmp_path_factory.mktemp(request.param), request.param)


def _hidden_alone(folder, text, seed=0):
    """HF hidden states of one text, run alone (no padding), with a model seeded as ours."""
    config = transformers.AutoConfig.from_pretrained(folder)
    torch.manual_seed(seed)
    model = transformers.AutoModel.from_config(config).eval()
    enc = make_tokenizer()(text, return_tensors="pt")
    with torch.no_grad():
        return model(**enc, output_hidden_states=True).hidden_states


HAND = {  # one text alone: every token is real
    "mean": lambda t: t.mean(0),
    "cls": lambda t: t[0],
    "last": lambda t: t[-1],
}


@pytest.mark.parametrize("how", ["mean", "cls", "last"])
def test_features_equal_hidden_states(lm, how):
    kind, folder = lm
    layers = list(HIDDEN[kind])
    ext = DNNFeatureExtractor(f"hf:{folder}?token_pooling={how}", weights=None, layers=layers,
                              batch_size=4, cache=False)
    features = ext.fit_transform(StimulusSet.from_texts(TEXTS))  # batches padded to the longest
    for i, text in enumerate(TEXTS):
        hidden = _hidden_alone(folder, text)
        want = np.concatenate([HAND[how](hidden[HIDDEN[kind][a]][0]).numpy() for a in layers])
        assert_allclose_dtype(features[i], want, n_terms=64, err_msg=f"{kind} {how} {text!r}")


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("how", ["mean", "last", "cls", "none"])
def test_batch_invariance(tmp_path, side, how):
    """A text's features do not change with the other texts of its batch (padding)."""
    for kind in ("gpt2", "bert"):
        folder = lm_folder(tmp_path / f"{kind}{side}", kind, side)
        model = f"hf:{folder}?token_pooling={how}"
        layers = ["embed", "block0", "block1"]
        stims = StimulusSet.from_texts(TEXTS)
        together = DNNFeatureExtractor(model, weights=None, layers=layers, batch_size=4,
                                       cache=False).fit_transform(stims)
        fitted = DNNFeatureExtractor(model, weights=None, layers=layers, batch_size=1,
                                     cache=False)
        alone = fitted.fit_transform(stims)
        assert_allclose_dtype(together, alone, n_terms=64, err_msg=f"{kind} {side} {how}")
        # another composition: the two short texts share a batch (padded to the set's longest
        # text, fixed at fit, for "none"), in another order
        fitted.set_params(batch_size=2)
        pair = fitted.transform(stims[[3, 1]])
        assert_allclose_dtype(pair, together[[3, 1]], n_terms=64, err_msg=f"{kind} {side} {how}")


def _n_tokens(texts, padding_side="right"):
    """Each text's token count by the tokenizer itself (independent of neuroprobe)."""
    return [len(ids) for ids in make_tokenizer(padding_side)(list(texts))["input_ids"]]


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
def test_none_pooling_pads_to_longest_of_set(tmp_path, kind):
    """token_pooling='none': every text padded to the longest text of the set (not the model's
    maximum length), padding zeroed, the mask in layer token_mask; the tokens equal the hidden
    states of the text run alone."""
    folder = lm_folder(tmp_path / "m", kind, "left", max_length=32)
    ext = DNNFeatureExtractor(f"hf:{folder}?token_pooling=none", weights=None,
                              layers=["block0", "token_mask"], batch_size=3, cache=False)
    features = ext.fit_transform(StimulusSet.from_texts(TEXTS))
    n = max(_n_tokens(TEXTS))
    assert n == 12 and ext.n_tokens_ == n
    assert ext.layer_shapes_ == {"block0": (32, n), "token_mask": (n,)}
    assert features.shape == (4, 32 * n + n)
    tokens, mask = features[:, : 32 * n].reshape(4, 32, n), features[:, 32 * n :]
    for i, (text, k) in enumerate(zip(TEXTS, _n_tokens(TEXTS))):
        np.testing.assert_array_equal(mask[i], np.r_[np.zeros(n - k), np.ones(k)])  # left pad
        np.testing.assert_array_equal(tokens[i][:, : n - k], 0)
        want = _hidden_alone(folder, text)[1][0].numpy().T
        assert_allclose_dtype(tokens[i][:, n - k :], want, n_terms=64)
    # a subset: the longest of that set; the fitted length stays for transform
    short = StimulusSet.from_texts([TEXTS[1], TEXTS[3]])
    again = DNNFeatureExtractor(f"hf:{folder}?token_pooling=none", weights=None,
                                layers=["block0"], cache=False)
    assert again.fit_transform(short).shape == (2, 32 * max(_n_tokens([TEXTS[1], TEXTS[3]])))
    assert again.transform(short[[1]]).shape == (1, 32 * 4)
    with pytest.raises(ValueError, match=r"stimulus '0' has 12 tokens .* at most 4 tokens"):
        again.transform(StimulusSet.from_texts([TEXTS[2]]))


def test_none_pooling_cache_keyed_by_length(tmp_path):
    """The in-process cache keeps rows of another token axis apart (a set with a shorter longest
    text gets rows of its own width, equal to an uncached run)."""
    folder = lm_folder(tmp_path / "m", "gpt2", "right")
    model = f"hf:{folder}?token_pooling=none"
    stims = StimulusSet.from_texts(TEXTS)
    cached = DNNFeatureExtractor(model, weights=None, layers=["block1"], batch_size=2)
    cached.fit_transform(stims)
    got = cached.fit_transform(stims[[1, 3]])
    want = DNNFeatureExtractor(model, weights=None, layers=["block1"], batch_size=2,
                               cache=False).fit_transform(stims[[1, 3]])
    assert cached.n_tokens_ == 4 and got.shape == (2, 32 * 4)
    np.testing.assert_array_equal(got, want)


def test_truncation_warns_and_names_stimulus(tmp_path):
    folder = lm_folder(tmp_path / "m", "gpt2", max_length=4)
    stims = StimulusSet.from_texts(["the cat sat on a mat", "a dog"], ids=["long", "short"])
    ext = DNNFeatureExtractor(f"hf:{folder}?token_pooling=last", weights=None,
                              layers=["block0"], cache=False, batch_size=2)
    with pytest.warns(TruncationWarning, match=r"stimulus 'long' has 6 tokens.*at most 4"):
        features = ext.fit_transform(stims)
    hidden = _hidden_alone(folder, "the cat sat on")[1][0]  # truncated on the right
    assert_allclose_dtype(features[0], hidden[-1].numpy(), n_terms=64)


def _interrupt_then_resume(monkeypatch, ext, stims, path):
    """``extract_to_file`` interrupted at its second batch, then rerun; returns the rows at which
    the rerun wrote its batches."""
    from neuroprobe.io.activations import ActivationWriter

    original = ActivationWriter.write
    writes = []

    def fail_second(self, start, arrays):
        writes.append(start)
        if len(writes) == 2:
            raise KeyboardInterrupt
        return original(self, start, arrays)

    monkeypatch.setattr(ActivationWriter, "write", fail_second)
    with pytest.raises(KeyboardInterrupt):
        ext.extract_to_file(stims, path)
    resumed = []
    monkeypatch.setattr(ActivationWriter, "write",
                        lambda self, s, a: (resumed.append(s), original(self, s, a))[1])
    ext.extract_to_file(stims, path)
    monkeypatch.setattr(ActivationWriter, "write", original)
    return resumed


def test_act_h5_round_trip_and_resume(tmp_path, monkeypatch):
    from neuroprobe.io.activations import open_activations

    folder = lm_folder(tmp_path / "m", "gpt2")
    stims = StimulusSet.from_texts(TEXTS, ids=["a", "b", "c", "d"])
    model = f"hf:{folder}?token_pooling=mean"
    ext = DNNFeatureExtractor(model, weights=None, layers=["block0", "norm"], batch_size=2,
                              cache=False)
    want = ext.fit_transform(stims)
    path = tmp_path / "text.act.h5"
    assert _interrupt_then_resume(monkeypatch, ext, stims, path) == [2]  # first batch kept
    with open_activations(path) as f:
        assert list(f.stim_ids) == ["a", "b", "c", "d"]
        assert f.attrs["preprocess"]["kind"] == "transformers.AutoTokenizer"
        stored = np.concatenate([f.read("block0"), f.read("norm")], axis=1)
    np.testing.assert_array_equal(stored, want)


def test_none_mask_stored_beside_layer(tmp_path):
    from neuroprobe.io.activations import open_activations

    folder = lm_folder(tmp_path / "m", "gpt2", max_length=20)
    ext = DNNFeatureExtractor(f"hf:{folder}?token_pooling=none", weights=None,
                              layers=["block0"], batch_size=2)
    path = ext.extract_to_file(StimulusSet.from_texts(TEXTS), tmp_path / "none.act.h5")
    n = max(_n_tokens(TEXTS))
    with open_activations(path) as f:
        assert f.shape("block0") == (4, 32, n) and f.attrs["preprocess"]["n_tokens"] == n
        mask = f.read("block0.token_mask")
    np.testing.assert_array_equal(mask.sum(1), _n_tokens(TEXTS))


@pytest.mark.parametrize("side", ["right", "left"])
def test_none_act_h5_resume_is_bit_exact(tmp_path, monkeypatch, side):
    """token_pooling='none' into an .act.h5 file: the longest text is in the first batch, so a
    resume that measured only the texts left would pad them shorter; the resumed file equals an
    uninterrupted one bit for bit, and the in-memory features."""
    from neuroprobe.io.activations import open_activations

    folder = lm_folder(tmp_path / "m", "gpt2", side)
    order = [2, 0, 1, 3]  # 12 and 6 tokens first, then 2 and 4
    stims = StimulusSet.from_texts([TEXTS[i] for i in order], ids=["c", "a", "b", "d"])
    model = f"hf:{folder}?token_pooling=none"
    ext = DNNFeatureExtractor(model, weights=None, layers=["block0", "norm"], batch_size=2,
                              cache=False)
    whole = ext.extract_to_file(stims, tmp_path / "whole.act.h5")
    path = tmp_path / "resumed.act.h5"
    assert _interrupt_then_resume(monkeypatch, ext, stims, path) == [2]  # first batch kept
    n = max(_n_tokens(TEXTS))
    features = ext.fit_transform(stims)
    with open_activations(whole) as a, open_activations(path) as b:
        assert a.layers == b.layers and "block0.token_mask" in a.layers
        for layer in a.layers:
            np.testing.assert_array_equal(b.read(layer), a.read(layer), err_msg=layer)
        assert b.shape("block0") == (4, 32, n) and b.shape("norm.token_mask") == (4, n)
        stored = np.concatenate([b.read("block0").reshape(4, -1), b.read("norm").reshape(4, -1)],
                                axis=1)
    np.testing.assert_array_equal(stored, features)


def test_none_sharded_equals_one_file(tmp_path):
    """Shards of a text set pad to the longest text of the whole set."""
    from neuroprobe.io.activations import open_activations
    from neuroprobe.transformers.sharded import extract_to_file_sharded

    folder = lm_folder(tmp_path / "m", "bert", "right")
    ext = DNNFeatureExtractor(f"hf:{folder}?token_pooling=none", weights=None,
                              layers=["block1"], batch_size=2, cache=False)
    stims = StimulusSet.from_texts(TEXTS)
    one = ext.extract_to_file(stims, tmp_path / "one.act.h5")
    sharded = extract_to_file_sharded(ext, stims, tmp_path / "sharded.act.h5", n_shards=2)
    with open_activations(one) as a, open_activations(sharded) as b:
        for layer in ("block1", "block1.token_mask"):
            np.testing.assert_array_equal(b.read(layer), a.read(layer))


def test_errors(tmp_path):
    transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=40).save_pretrained(
        tmp_path / "notok"
    )
    with pytest.raises(ModelError, match=f"folder '{tmp_path / 'notok'}' holds no tokenizer"):
        build_model(f"hf:{tmp_path / 'notok'}", weights=None)
    folder = lm_folder(tmp_path / "m", "gpt2")
    images = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ModelError, match="takes text stimuli, got Image"):
        DNNFeatureExtractor(f"hf:{folder}", weights=None, layers=["block0"]).fit_transform(images)
    texts = StimulusSet.from_texts(["a cat"])
    with pytest.raises(ModelError, match="takes image stimuli, got text"):
        DNNFeatureExtractor("resnet18", weights=None, layers=["fc"]).fit_transform(texts)


def test_text_stimulus_sets(tmp_path):
    (tmp_path / "a.txt").write_text("the cat sat\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("a dog", encoding="utf-8")
    files = StimulusSet.from_folder(tmp_path)
    assert files.modality == "text" and [files.load(i) for i in range(2)] == ["the cat sat",
                                                                              "a dog"]
    table = tmp_path / "texts.csv"
    table.write_text('stim_id,text,label\ns1,"the cat, sat",1\ns2,a dog,0\n', encoding="utf-8")
    stims = StimulusSet.from_csv(table)
    assert stims.modality == "text" and stims.load(0) == "the cat, sat"
    assert stims.load(0).stim_id == "s1" and stims.column("label").tolist() == [1, 0]
    stims.write_csv(tmp_path / "again.csv")
    again = StimulusSet.from_csv(tmp_path / "again.csv")
    assert again.texts.tolist() == stims.texts.tolist()
    assert stims[[1]].load(0) == "a dog"


def test_list_layers_and_cli(tmp_path, capsys):
    from neuroprobe.cli.main import main
    from neuroprobe.io.activations import open_activations

    folder = lm_folder(tmp_path / "m", "gpt2")
    model = f"hf:{folder}?token_pooling=mean"
    shapes = dict(list_layers(model))
    assert shapes["token_taps.h_1"] == (32,) and shapes["h.1"][-1] == 32
    assert main(["layers", "--model", model, "--weights", "none"]) == 0
    listing = capsys.readouterr().out
    assert "block1" in listing and "token_taps.h_1" in listing
    assert "token axis" not in listing
    none = f"hf:{folder}?token_pooling=none"
    assert main(["layers", "--model", none, "--weights", "none"]) == 0
    listing = capsys.readouterr().out
    assert "longest tokenised text of the stimulus set" in listing
    assert dict(list_layers(none))["token_taps.h_1"] == (32, 8)  # the dummy input's 8 tokens
    table = tmp_path / "texts.csv"
    table.write_text("stim_id,text\n" + "".join(f"t{i},{t}\n" for i, t in enumerate(TEXTS)))
    out = tmp_path / "lm.act.h5"
    code = main(["extract", "--model", model, "--weights", "none", "--seed", "0",
                 "--layers", "block1", "--stimuli", str(table), "--out", str(out), "--quiet"])
    assert code == 0
    want = DNNFeatureExtractor(model, weights=None, layers=["block1"], random_state=0,
                               cache=False).fit_transform(StimulusSet.from_csv(table))
    with open_activations(out) as f:
        assert_allclose_dtype(f.read("block1"), want, n_terms=64)


# ------------------------------------------------------------------------------------ audio
def _wav2vec2_folder(path):
    transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    ).save_pretrained(path)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(path)
    return str(path)


def _whisper_folder(path):
    transformers.WhisperConfig(
        d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=16,
        max_source_positions=50, max_target_positions=16, vocab_size=60, pad_token_id=0,
        bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
    ).save_pretrained(path)
    transformers.WhisperFeatureExtractor(feature_size=16, chunk_length=1).save_pretrained(path)
    return str(path)


@pytest.mark.parametrize("kind", ["wav2vec2", "whisper"])
def test_audio_features_equal_hidden_states(tmp_path, kind):
    folder = (_wav2vec2_folder if kind == "wav2vec2" else _whisper_folder)(tmp_path / kind)
    rng = np.random.default_rng(0)
    waves = [(rng.standard_normal(4000).astype(np.float32), 8000) for _ in range(2)]
    spec = build_model(f"hf:{folder}?token_pooling=mean", weights=None)
    assert spec.modality == "audio"
    layers = ["block0", "block1"] + (["norm"] if kind == "whisper" else [])
    batch = torch.stack([spec.preprocess(w) for w in waves])
    features = DNNFeatureExtractor(spec, layers=layers, cache=False).fit_transform(batch)
    config = transformers.AutoConfig.from_pretrained(folder)
    torch.manual_seed(0)
    reference = transformers.AutoModel.from_config(config).eval()
    if kind == "whisper":
        reference = reference.get_encoder()
        assert type(spec.module).__name__ == "WhisperEncoder"  # the encoder only
    extractor = transformers.AutoFeatureExtractor.from_pretrained(folder)
    import torchaudio

    raw = [torchaudio.functional.resample(torch.from_numpy(w), 8000, 16000).numpy()
           for w, _ in waves]
    inputs = extractor(raw, sampling_rate=16000, return_tensors="pt")
    key = "input_values" if kind == "wav2vec2" else "input_features"
    assert_allclose_dtype(batch.numpy(), inputs[key].numpy(), n_terms=64)
    with torch.no_grad():
        hidden = reference(inputs[key], output_hidden_states=True).hidden_states
    index = {"block0": 1, "block1": 2, "norm": 2}
    if kind == "whisper":
        index["block1"] = None  # the last state is after the final layer norm
    want = np.concatenate(
        [hidden[index[a]].mean(1).numpy() if index[a] is not None else features[:, 32:64]
         for a in layers], axis=1)
    assert_allclose_dtype(features, want, n_terms=64)
    with pytest.raises(ModelError, match="takes audio stimuli but got text"):
        spec.preprocess("a text")
    with pytest.raises(ModelError, match="no class token"):
        build_model(f"hf:{folder}?token_pooling=cls", weights=None)


def test_pretrained_folder_copies_and_cache(tmp_path):
    """weights='DEFAULT' loads the folder's weights (identity: their sha256); a deep copy (the
    build cache) and the in-process activation cache give the same features."""
    import copy

    folder = lm_folder(tmp_path / "m", "gpt2")
    torch.manual_seed(3)
    trained = transformers.AutoModel.from_config(transformers.AutoConfig.from_pretrained(folder))
    trained.save_pretrained(folder)
    spec = build_model(f"hf:{folder}?token_pooling=last")
    assert spec.weights_id.startswith("sha256:")
    stims = StimulusSet.from_texts(TEXTS)
    features = DNNFeatureExtractor(spec, layers=["norm"], cache=False).fit_transform(stims)
    for i, text in enumerate(TEXTS):
        with torch.no_grad():
            hidden = trained.eval()(**make_tokenizer()(text, return_tensors="pt")).last_hidden_state
        assert_allclose_dtype(features[i], hidden[0, -1].numpy(), n_terms=64)
    twin = copy.deepcopy(spec)
    again = DNNFeatureExtractor(twin, layers=["norm"], cache=False).fit_transform(stims)
    np.testing.assert_array_equal(again, features)
    cached = DNNFeatureExtractor(f"hf:{folder}?token_pooling=last", layers=["norm"])
    first = cached.fit_transform(stims)
    np.testing.assert_array_equal(cached.transform(stims[[2, 0]]), first[[2, 0]])
    np.testing.assert_array_equal(first, features)
