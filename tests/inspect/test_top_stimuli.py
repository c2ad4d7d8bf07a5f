"""Top stimuli: the streamed running top-k equals an argsort of the full activations."""

import numpy as np
import pytest
import torch

from neuroprobe.exceptions import LayerError
from neuroprobe.inspect import UnitError, top_stimuli
from neuroprobe.inspect.top_stimuli import merge_top_k
from neuroprobe.stimuli import StimulusSet
from neuroprobe.transformers import DNNFeatureExtractor


@pytest.fixture
def stimset():
    g = torch.Generator().manual_seed(5)
    return StimulusSet.from_array(torch.randn((23, 3, 12, 12), generator=g).numpy())


def _reference(scores, k):
    """Best-first indices by a stable argsort of the negated full activation matrix."""
    order = np.argsort(-scores, axis=0, kind="stable")[:k].T
    return order, np.take_along_axis(scores.T, order, 1)


@pytest.mark.parametrize("metric", ["max", "mean"])
def test_equals_argsort_of_full_activations(tiny_cnn, stimset, metric):
    ext = DNNFeatureExtractor(tiny_cnn, layers=["relu2"], batch_size=4).fit(stimset)
    full = ext.transform(stimset).reshape(23, 8, -1)
    scores = full.max(axis=2) if metric == "max" else full.mean(axis=2)
    res = top_stimuli(ext, stimset, "relu2", k=4, metric=metric, chunk_size=5)
    idx, vals = _reference(scores, 4)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.values, vals, rtol=1e-6)
    np.testing.assert_array_equal(res.ids, np.asarray(stimset.ids)[idx])
    assert res.units == [f"c{c}" for c in range(8)]


def test_single_units_and_channel_subset(tiny_cnn, stimset):
    ext = DNNFeatureExtractor(tiny_cnn, layers=["conv1", "relu2"]).fit(stimset)
    full = ext.transform(stimset)[:, ext.feature_slices_["relu2"]].reshape(23, 8, 6, 6)
    res = top_stimuli(ext, stimset, "relu2", units=[3, (5, 2, 4)], k=23, chunk_size=6,
                      metric="max")
    scores = np.stack([full[:, 3].reshape(23, -1).max(1), full[:, 5, 2, 4]], axis=1)
    idx, vals = _reference(scores, 23)
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.values, vals, rtol=1e-6)
    assert res.units == ["c3", "c5:y2:x4"]
    rows = res.to_rows()
    assert rows[0]["unit"] == "c3" and rows[0]["rank"] == 1 and len(rows) == 46


def test_pooled_extractor_and_act_file(tiny_cnn, stimset, tmp_path):
    ext = DNNFeatureExtractor(tiny_cnn, layers=["relu3"], pooling="mean").fit(stimset)
    scores = ext.transform(stimset)
    res = top_stimuli(ext, stimset, "relu3", units=[0, 4, 9], k=3, chunk_size=7)
    idx, vals = _reference(scores[:, [0, 4, 9]], 3)
    np.testing.assert_array_equal(res.indices, idx)
    path = ext.extract_to_file(stimset, tmp_path / "a.act.h5")
    from_file = top_stimuli(path, None, "relu3", units=[0, 4, 9], k=3, chunk_size=4)
    np.testing.assert_array_equal(from_file.indices, idx)
    np.testing.assert_allclose(from_file.values, vals, rtol=1e-6)


def test_unpooled_act_file(tiny_cnn, stimset, tmp_path):
    ext = DNNFeatureExtractor(tiny_cnn, layers=["relu2"]).fit(stimset)
    full = ext.transform(stimset).reshape(23, 8, 6, 6)
    path = ext.extract_to_file(stimset, tmp_path / "b.act.h5")
    res = top_stimuli(path, stimset, "relu2", units=[(1, 0, 3), 6], k=5, chunk_size=3,
                      metric="max")
    scores = np.stack([full[:, 1, 0, 3], full[:, 6].reshape(23, -1).max(1)], axis=1)
    idx, _ = _reference(scores, 5)
    np.testing.assert_array_equal(res.indices, idx)
    # the default metric is the spatial mean, as in every other inspection function
    default = top_stimuli(path, stimset, "relu2", units=[(1, 0, 3), 6], k=5, chunk_size=3)
    scores = np.stack([full[:, 1, 0, 3], full[:, 6].reshape(23, -1).mean(1)], axis=1)
    idx, vals = _reference(scores, 5)
    assert default.metric == "mean"
    np.testing.assert_array_equal(default.indices, idx)
    np.testing.assert_allclose(default.values, vals, rtol=1e-5)
    with pytest.raises(ValueError, match="metric must be one of"):
        top_stimuli(path, stimset, "relu2", metric="sum")


def test_bad_units(tiny_cnn, stimset):
    ext = DNNFeatureExtractor(tiny_cnn, layers=["relu2"]).fit(stimset)
    with pytest.raises(UnitError, match=r"channel 8 .*relu2"):
        top_stimuli(ext, stimset, "relu2", units=[8])
    with pytest.raises(UnitError, match=r"row=9"):
        top_stimuli(ext, stimset, "relu2", units=[(1, 9, 0)])
    with pytest.raises(LayerError, match="not extracted"):  # an unknown layer: LayerError
        top_stimuli(ext, stimset, "relu3")


def test_merge_top_k_ties_prefer_lower_index():
    v, i = merge_top_k(np.empty((1, 0)), np.empty((1, 0), int), np.array([[1.0, 2.0, 2.0]]),
                       np.array([0, 1, 2]), 2)
    np.testing.assert_array_equal(i, [[1, 2]])
    v, i = merge_top_k(v, i, np.array([[2.0, 3.0]]), np.array([3, 4]), 3)
    np.testing.assert_array_equal(i, [[4, 1, 2]])
