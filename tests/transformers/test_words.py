"""WordFeatureExtractor: the transformer over word_features, its inputs, and the scan grid."""

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from sklearn.base import clone  # noqa: E402

from neuroprobe.io.transcript import Transcript  # noqa: E402
from neuroprobe.models import build_model  # noqa: E402
from neuroprobe.models.words import word_features  # noqa: E402
from neuroprobe.transformers import TimeResampler, WordFeatureExtractor  # noqa: E402
from tests.models.test_words import brute_force, transcript, words_folder  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:model .* RANDOM:UserWarning", "ignore:.*token_id.*:UserWarning"
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return words_folder(tmp_path_factory.mktemp("gpt2"), "gpt2")


def test_transformer_equals_brute_force_and_resamples(folder):
    tr = transcript(30)
    ext = WordFeatureExtractor(f"hf:{folder}", weights=None, layers=["block0", "norm"],
                               context=3, word_pooling="mean")
    F = ext.fit_transform(tr)
    assert F.shape == (30, 64) and F.dtype == np.float32
    want = np.concatenate([brute_force(folder, tr, 3, 64, "mean", i) for i in (1, 2)], axis=1)
    np.testing.assert_allclose(F, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(clone(ext).fit(tr).transform(tr), F)
    names = ext.get_feature_names_out()
    assert names[0] == "block0:u0" and names[-1] == "norm:u31" and len(names) == 64
    # the word onsets and runs bring the rows to the scans: equal to the resampler on the rows
    res = TimeResampler(tr=2.0, n_scans=5, times=tr.onsets, runs=tr.runs, method="average")
    scans = res.fit_transform(F)
    first = tr.runs == 1  # sorted labels: run 1 first
    bins = np.floor(tr.onsets[first] / 2.0).astype(int)
    np.testing.assert_allclose(scans[0], F[first][bins == 0].mean(0), rtol=1e-5, atol=1e-6)


def test_inputs(folder, tmp_path):
    pd = pytest.importorskip("pandas")
    words = ["the", "cat", "sat", "on", "a", "mat"]
    ext = WordFeatureExtractor(f"hf:{folder}", weights=None, layers="block1").fit()
    from_list = ext.transform(words)
    frame = pd.DataFrame({"word": words, "onset": np.arange(6.0)})
    np.testing.assert_array_equal(ext.transform(frame), from_list)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    np.testing.assert_array_equal(ext.transform(str(path)), from_list)
    spec = build_model(f"hf:{folder}", weights=None)
    direct = word_features(spec, Transcript(words), ["block1"])["block1"]
    np.testing.assert_array_equal(from_list, direct)
    assert WordFeatureExtractor(f"hf:{folder}", weights=None).fit().layers_ == ["block1"]


def test_parameter_errors(folder):
    with pytest.raises(ValueError, match="context"):
        WordFeatureExtractor(f"hf:{folder}", weights=None, context=-1).fit()
    with pytest.raises(ValueError, match="word_pooling"):
        WordFeatureExtractor(f"hf:{folder}", weights=None, word_pooling="max").fit()
