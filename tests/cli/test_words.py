"""``neuroprobe words`` and ``extract --captions``: the files equal WordFeatureExtractor /
CLIPEmbedder; word timings round-trip and bring the features to the scans through ``encode``;
a resumed file equals an uninterrupted one; bad input gives one line naming what is wrong."""

import csv

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from neuroprobe.cli.main import main  # noqa: E402
from neuroprobe.io.activations import ActivationWriter, open_activations  # noqa: E402
from neuroprobe.io.transcript import read_transcript  # noqa: E402
from neuroprobe.transformers.words import WordFeatureExtractor  # noqa: E402
from tests._tolerance import assert_allclose_dtype  # noqa: E402
from tests.models.test_words import transcript, words_folder  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:model .* RANDOM:UserWarning", "ignore:.*token_id.*:UserWarning"
)


def write_transcript(path, tr, columns=("word", "onset", "offset", "run")):
    values = {"word": tr.words, "onset": tr.onsets, "offset": tr.offsets, "run": tr.runs}
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(columns)
        for i in range(len(tr)):
            out.writerow([values[c][i] for c in columns])
    return str(path)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    d = tmp_path_factory.mktemp("words_cli")
    folder = words_folder(d / "gpt2", "gpt2")
    tr = transcript(n=40)
    return {"dir": d, "model": f"hf:{folder}", "csv": write_transcript(d / "story.csv", tr),
            "transcript": tr}


def _words(lm, out, *extra):
    return main(["words", lm["csv"], "--model", lm["model"], "--weights", "none", "--seed", "0",
                 "--layers", "block0", "block1", "--batch-size", "2", "--out", str(out),
                 "--quiet", *extra])


def _contents(path):
    with open_activations(path) as f:
        return ({la: f.read(la) for la in f.layers}, {c: f.column(c) for c in f.columns},
                list(f.stim_ids), dict(f.attrs))


@pytest.mark.parametrize("context,subword", [("4", "mean"), ("run", "last")])
def test_words_file_equals_word_feature_extractor(lm, tmp_path, context, subword):
    out = tmp_path / "words.act.h5"
    assert _words(lm, out, "--context", context, "--subword", subword) == 0
    ext = WordFeatureExtractor(lm["model"], weights=None, layers=["block0", "block1"],
                               context=None if context == "run" else int(context),
                               word_pooling=subword, batch_size=2, random_state=0)
    want = ext.fit_transform(read_transcript(lm["csv"]))
    layers, columns, ids, attrs = _contents(out)
    assert list(layers) == ["block0", "block1"]
    # 40 words in chunks of 16 * batch_size = 32: other batches than one fit_transform pass
    assert_allclose_dtype(np.hstack([layers["block0"], layers["block1"]]), want, n_terms=64)
    tr = lm["transcript"]
    np.testing.assert_array_equal(columns["onset"], tr.onsets)  # float64, exactly
    np.testing.assert_array_equal(columns["offset"], tr.offsets)
    np.testing.assert_array_equal(columns["word"], tr.words)
    np.testing.assert_array_equal(columns["run"], tr.runs.astype(str))
    assert ids == [f"w{i}" for i in range(len(tr))]
    assert attrs["preprocess"]["context"] == (context if context == "run" else int(context))
    assert attrs["preprocess"]["word_pooling"] == subword


def test_resumed_words_file_equals_uninterrupted(lm, tmp_path, monkeypatch):
    whole = tmp_path / "whole.act.h5"
    assert _words(lm, whole, "--context", "3") == 0
    out = tmp_path / "resumed.act.h5"
    original = ActivationWriter.write
    starts = []

    def interrupt_second(self, start, arrays):
        starts.append(start)
        if len(starts) == 2:
            raise KeyboardInterrupt
        return original(self, start, arrays)

    monkeypatch.setattr(ActivationWriter, "write", interrupt_second)
    assert _words(lm, out, "--context", "3") == 130
    assert (tmp_path / "resumed.act.h5.partial").exists() and not out.exists()
    resumed = []
    monkeypatch.setattr(ActivationWriter, "write",
                        lambda self, s, a: (resumed.append(s), original(self, s, a))[1])
    assert _words(lm, out, "--context", "3") == 0
    assert resumed == [32]  # the first chunk (16 * batch_size words) was kept
    a, b = _contents(whole), _contents(out)
    for la in a[0]:
        np.testing.assert_array_equal(a[0][la], b[0][la])
    for c in a[1]:
        np.testing.assert_array_equal(a[1][c], b[1][c])
    assert a[2] == b[2]


def test_onsets_and_runs_bring_the_words_to_the_scans_in_encode(lm, tmp_path):
    """The documented route: encode --resample --times OUT:onset --runs OUT:run, on responses
    planted from the resampled features (an independent TimeResampler call)."""
    from neuroprobe.io.transcript import Transcript
    from neuroprobe.transformers.resample import TimeResampler

    base = transcript(n=120, seed=1)  # 3 runs of 40 words, 0.3 s apart: 12 s = 20 scans of 0.6 s
    onsets = np.tile(np.arange(40) * 0.3, 3)
    tr = Transcript(base.words, onsets, onsets + 0.2, np.repeat(["b", "a", "c"], 40))
    story = write_transcript(tmp_path / "long.csv", tr)
    out = tmp_path / "words.act.h5"
    assert main(["words", story, "--model", lm["model"], "--weights", "none", "--layers",
                 "block0", "--context", "5", "--out", str(out), "--quiet"]) == 0
    with open_activations(out) as f:
        F = f.read("block0")
    n_scans = [20, 20, 20]
    X = TimeResampler(tr=0.6, n_scans=n_scans, times=tr.onsets, runs=tr.runs,
                      method="lanczos").fit_transform(F)
    rng = np.random.default_rng(0)
    Y = X @ rng.normal(size=(X.shape[1], 5)) + 0.05 * X.std() * rng.normal(size=(len(X), 5))
    np.save(tmp_path / "bold.npy", Y.astype(np.float32))
    common = [str(out), "--layer", "block0", "--resample", "lanczos", "--runs", f"{out}:run",
              "--tr", "0.6", "--n-scans", "20", "20", "20",
              "--targets", str(tmp_path / "bold.npy"), "--alphas", "0.01,1,100", "--quiet"]
    assert main(["encode", *common, "--times", f"{out}:onset",
                 "--out", str(tmp_path / "r.npy")]) == 0
    r = np.load(tmp_path / "r.npy")
    # the same responses against the words placed at the wrong times: the map drops
    np.save(tmp_path / "wrong.npy", tr.onsets * 0.5)
    assert main(["encode", *common, "--times", str(tmp_path / "wrong.npy"),
                 "--out", str(tmp_path / "r_wrong.npy")]) == 0
    assert r.shape == (5,) and r.min() > 0.9
    assert np.load(tmp_path / "r_wrong.npy").mean() < r.mean() - 0.2


def test_truncated_contexts_are_reported_on_one_line(lm, tmp_path, capsys):
    out = tmp_path / "cut.act.h5"
    assert main(["words", lm["csv"], "--model", lm["model"], "--weights", "none", "--layers",
                 "block0", "--max-tokens", "6", "--batch-size", "2", "--out", str(out)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1, err  # one line for the whole transcript, not one per chunk
    assert err[0].startswith("neuroprobe words: warning: the contexts of ")
    assert "max_tokens=6" in err[0] and "word " in err[0]


@pytest.mark.parametrize("case", ["no_onset", "prefix", "vision", "context"])
def test_bad_words_arguments_give_one_line(lm, tmp_path, capsys, case):
    tr = lm["transcript"]
    story, model = lm["csv"], lm["model"]
    if case == "no_onset":
        story = write_transcript(tmp_path / "no_onset.csv", tr, ("word", "offset"))
    elif case == "prefix":
        model = "nosuch:gpt2"
    elif case == "vision":
        model = "shapes-cnn"
    argv = ["words", story, "--model", model, "--weights", "none", "--out",
            str(tmp_path / "x.act.h5")]
    if case == "context":
        with pytest.raises(SystemExit):  # argparse: usage line and the reason
            main([*argv, "--context", "-2"])
        assert "preceding words >= 0 or 'run'" in capsys.readouterr().err
        return
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuroprobe words: error:"), err
    expected = {"no_onset": ["no_onset.csv", "'onset'", "found columns 'word', 'offset'"],
                "prefix": ["unknown model source 'nosuch'"],
                "vision": ["need a language model", "'shapes-cnn'"]}[case]
    for text in expected:
        assert text in err[0], err[0]
    assert not (tmp_path / "x.act.h5").exists()


def test_report_names_model_layers_context_and_subword(lm, tmp_path):
    from neuroprobe.report.build import build
    from neuroprobe.report.results import find_results

    assert _words(lm, tmp_path / "words.act.h5", "--context", "7", "--subword", "mean") == 0
    (result,) = find_results(tmp_path)
    assert result.kind == "activations" and result.metadata["words"]["context"] == 7
    paths = build(tmp_path, tmp_path / "report")
    text = open(paths["markdown"]).read()
    for part in ("block0 and block1", lm["model"], "7 preceding words", "mean of its subword",
                 "40 words"):
        assert part in text, part
    # the Python object gives the same sentence from its parameters
    from neuroprobe.report.methods import describe_estimator

    own = describe_estimator(WordFeatureExtractor(lm["model"], layers=["block0"], context=None,
                                                  word_pooling="last")).text
    assert "whole of its run" in own and "its last subword token" in own


# ------------------------------------------------------------------------- captions (CLIP)
@pytest.fixture
def clip_stims(tmp_path):
    pytest.importorskip("open_clip")
    from PIL import Image

    from tests._tiny_clip import register_tiny_clip

    rng = np.random.default_rng(0)
    rows = ["stim_id,path,caption"]
    captions = ["a red square", "a green circle on grey", "noise", "two dots"]
    for k, caption in enumerate(captions):
        Image.fromarray(rng.integers(0, 256, (36, 44, 3), np.uint8)).save(tmp_path / f"{k}.png")
        rows.append(f"s{k},{k}.png,{caption}")
    (tmp_path / "stims.csv").write_text("\n".join(rows) + "\n")
    # the same captions in another file, other row order, matched by stim_id
    other = ["stim_id,text"] + [f"s{k},{captions[k]}" for k in (2, 0, 3, 1)]
    (tmp_path / "captions.csv").write_text("\n".join(other) + "\n")
    return {"model": f"open_clip:{register_tiny_clip(tmp_path)}", "csv": tmp_path / "stims.csv",
            "captions": tmp_path / "captions.csv"}


def test_extract_captions_equals_clip_embedder(clip_stims, tmp_path):
    from neuroprobe.stimuli import StimulusSet
    from neuroprobe.transformers import CLIPEmbedder

    def extract(out, captions, *extra):
        return main(["extract", "--model", clip_stims["model"], "--weights", "none", "--seed",
                     "0", "--layers", "head", "--stimuli", str(clip_stims["csv"]),
                     "--captions", captions, "--batch-size", "3", "--out", str(out), "--quiet",
                     *extra])

    out = tmp_path / "clip.act.h5"
    assert extract(out, f"{clip_stims['csv']}:caption", "--text-layers", "head", "block1") == 0
    emb = CLIPEmbedder(clip_stims["model"], weights=None, image_layers="head",
                       text_layers=["head", "block1"], batch_size=3, random_state=0)
    want = emb.fit_transform(StimulusSet.from_csv(clip_stims["csv"]))
    layers, _, ids, _ = _contents(out)
    assert list(layers) == ["image:head", "text:head", "text:block1"]
    assert ids == ["s0", "s1", "s2", "s3"]
    for name, block in layers.items():
        assert_allclose_dtype(block.reshape(len(ids), -1), want[:, emb.feature_slices_[name]],
                              n_terms=32, err_msg=name)
    # captions from another CSV, rows in another order: matched by stim_id, same file contents
    other = tmp_path / "clip_other.act.h5"
    assert extract(other, f"{clip_stims['captions']}:text", "--text-layers", "head",
                   "block1") == 0
    for name, block in _contents(other)[0].items():
        np.testing.assert_array_equal(block, layers[name])


def test_bad_captions_give_one_line(clip_stims, tmp_path, capsys):
    base = ["extract", "--weights", "none", "--layers", "head", "--stimuli",
            str(clip_stims["csv"]), "--out", str(tmp_path / "c.act.h5")]
    cases = {
        "'shapes-cnn' is not one": ["--model", "shapes-cnn", "--captions",
                                    f"{clip_stims['csv']}:caption"],
        "columns: stim_id, path, caption": ["--model", clip_stims["model"], "--captions",
                                            f"{clip_stims['csv']}:no_such_column"],
        "apply to --captions": ["--model", clip_stims["model"], "--text-layers", "head"],
    }
    for expected, args in cases.items():
        assert main([*base, *args]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("neuroprobe extract: error:"), err
        assert expected in err[0], err[0]
