"""Word features equal a brute-force loop that runs the model once per word on its context."""

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from neuroprobe.exceptions import ModelError, TruncationWarning  # noqa: E402
from neuroprobe.io.transcript import Transcript  # noqa: E402
from neuroprobe.models import build_model  # noqa: E402
from neuroprobe.models.words import is_causal, word_features, word_token_spans  # noqa: E402
from tests._tolerance import assert_allclose_dtype  # noqa: E402
from tests.models.test_hf_language import CONFIGS  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:model .* RANDOM:UserWarning", "ignore:.*token_id.*:UserWarning"
)

WHOLE = "the cat sat on a mat dog ran far and then it was".split()
SPLIT = {"story": ["sto", "##ry"], "away": ["a", "##way"], "lifetime": ["life", "##ti", "##me"]}


def subword_tokenizer(max_length=64):
    """A WordPiece tokenizer in code: some words are one token, others several."""
    vocab = {"[PAD]": 0, "[UNK]": 1}
    for piece in WHOLE + [p for parts in SPLIT.values() for p in parts]:
        vocab.setdefault(piece, len(vocab))
    tok = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", model_max_length=max_length
    )


def words_folder(path, kind, max_length=64):
    CONFIGS[kind]().save_pretrained(path)
    subword_tokenizer(max_length).save_pretrained(path)
    return str(path)


def transcript(n=40, seed=0):
    rng = np.random.default_rng(seed)
    words = rng.choice(WHOLE + list(SPLIT), n).tolist()
    runs = np.repeat([3, 1], [n // 2, n - n // 2])  # labels out of order: kept by appearance
    onsets = np.r_[np.arange(n // 2), np.arange(n - n // 2)] * 0.3  # each run its own clock
    return Transcript(words, onsets=onsets, offsets=onsets + 0.2, runs=runs)


def brute_force(folder, tr, context, max_tokens, pooling, hidden_index):
    """Run the model once per word on ``" ".join(context words + word)``."""
    config = transformers.AutoConfig.from_pretrained(folder)
    torch.manual_seed(0)
    model = transformers.AutoModel.from_config(config).eval()
    tok = subword_tokenizer()
    rows = []
    for k in range(len(tr)):
        same = np.flatnonzero(tr.runs == tr.runs[k])
        pos = int(np.flatnonzero(same == k)[0])
        first = 0 if context is None else max(pos - context, 0)
        text = " ".join(tr.words[same[first : pos + 1]])
        ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"][:, -max_tokens:]
        n_word = len(tok(str(tr.words[k]), add_special_tokens=False)["input_ids"])
        with torch.no_grad():
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[hidden_index]
        word = hidden[0, -n_word:]
        rows.append((word[-1] if pooling == "last" else word.mean(0)).numpy())
    return np.stack(rows)


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
@pytest.mark.parametrize("context,max_tokens", [(None, 64), (4, 64), (None, 9)])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_equal_brute_force(tmp_path, kind, context, max_tokens, pooling):
    folder = words_folder(tmp_path / kind, kind)
    tr = transcript()
    spec = build_model(f"hf:{folder}", weights=None)
    assert is_causal(spec) == (kind == "gpt2")
    with pytest.warns(TruncationWarning) if max_tokens == 9 else _nothing():
        feats = word_features(spec, tr, ["block0"], context=context, max_tokens=max_tokens,
                              word_pooling=pooling, batch_size=5)
    want = brute_force(folder, tr, context, max_tokens, pooling, 1)
    assert feats["block0"].shape == (len(tr), 32)
    assert_allclose_dtype(feats["block0"], want, n_terms=64)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_token_spans_follow_subwords():
    ids, starts, stops = word_token_spans(subword_tokenizer(), ["the", "story", "lifetime", "a"])
    assert (stops - starts).tolist() == [1, 2, 3, 1] and starts[0] == 0 and stops[-1] == len(ids)


def test_truncation_message_and_errors(tmp_path):
    folder = words_folder(tmp_path / "m", "gpt2", max_length=16)
    spec = build_model(f"hf:{folder}", weights=None)
    tr = Transcript(["the", "cat"] * 10)
    with pytest.warns(TruncationWarning, match=r"contexts of 4 of 20 words .* max_tokens=16"):
        word_features(spec, tr, ["block0"])
    with pytest.raises(ModelError, match="max_tokens=32 is longer than model .* allows \\(16"):
        word_features(spec, tr, ["block0"], max_tokens=32)
    with pytest.raises(ModelError, match="word 0 \\('lifetime'\\) alone has 3 tokens"):
        word_features(spec, Transcript(["lifetime"]), ["block0"], max_tokens=2)
    image = build_model("resnet18", weights=None)
    with pytest.raises(ModelError, match="need a language model"):
        word_features(image, tr, ["fc"])


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
def test_rows_are_computed_with_their_full_context(tmp_path, kind):
    """``rows=`` (chunked writing) gives the rows of the whole call, each word still seen with
    the words before it; ``truncated_contexts`` is the warning of the whole call."""
    import warnings

    from neuroprobe.models.words import truncated_contexts

    folder = words_folder(tmp_path / kind, kind)
    tr = transcript()
    spec = build_model(f"hf:{folder}", weights=None)
    with pytest.warns(TruncationWarning) as whole_warning:
        whole = word_features(spec, tr, ["block0"], context=None, max_tokens=9, batch_size=4)
    rows = np.array([0, 3, 17, 20, 21, 39])  # across both runs, first words included
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)  # warn=False: nothing
        part = word_features(spec, tr, ["block0"], context=None, max_tokens=9, batch_size=4,
                             rows=rows, warn=False)
    assert part["block0"].shape == (rows.size, 32)
    assert_allclose_dtype(part["block0"], whole["block0"][rows], n_terms=64)
    found = truncated_contexts(spec, tr, context=None, max_tokens=9)
    assert str(found) == str(whole_warning[0].message) and found.items
    assert truncated_contexts(spec, tr, context=2, max_tokens=64) is None
    with pytest.raises(ValueError, match="increasing word indices"):
        word_features(spec, tr, ["block0"], rows=[3, 1])
