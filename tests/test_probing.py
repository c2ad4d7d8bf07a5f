"""probe_layers against a manual cross_val_score per layer."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neuroprobe.metrics import correlation_score
from neuroprobe.model_selection import probe_layers


def _layers(seed=0, n=60):
    rng = np.random.RandomState(seed)
    y = np.repeat([0, 1], n // 2)
    noise = {"early": 3.0, "late": 0.3}
    feats = {
        name: rng.randn(n, 8) + (y[:, None] * np.r_[1.0, np.zeros(7)]) / s
        for name, s in noise.items()
    }
    return feats, y


def test_classes_equal_manual_cross_validation_with_confusion():
    feats, y = _layers()
    table = probe_layers(feats, y, cv=4)
    assert list(table.index) == ["early", "late"]
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    # the default splitter: shuffled, stratified, seed 0 (the CLI's --seed default)
    splitter = StratifiedKFold(4, shuffle=True, random_state=0)
    assert set(table["cv"]) == {"StratifiedKFold(n_splits=4, random_state=0, shuffle=True)"}
    for layer, X in feats.items():
        ref = cross_val_score(est, X, y, cv=splitter, scoring="accuracy")
        np.testing.assert_allclose(table.loc[layer, "scores"], ref)
        pred = cross_val_predict(est, X, y, cv=splitter)
        np.testing.assert_array_equal(table.attrs["confusion"][layer], confusion_matrix(y, pred))
    assert table.loc["late", "mean_score"] > table.loc["early", "mean_score"]


def test_values_groups_and_custom_estimator():
    feats, _ = _layers()
    rng = np.random.RandomState(1)
    values = feats["late"][:, 0] + 0.1 * rng.randn(60)
    groups = np.repeat(np.arange(5), 12)
    table = probe_layers(feats, values, estimator=Ridge(alpha=1.0), cv=5, groups=groups)
    for layer, X in feats.items():
        scores = [
            correlation_score(values[te], Ridge(alpha=1.0).fit(X[tr], values[tr]).predict(X[te]))
            for tr, te in GroupKFold(5).split(X, values, groups)
        ]
        np.testing.assert_allclose(table.loc[layer, "scores"], scores)
    assert table.attrs["confusion"] == {}


def test_extractor_runs_once_and_act_h5(tmp_path):
    torch = pytest.importorskip("torch")
    extraction = pytest.importorskip("neuroprobe.transformers.extraction")
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
    calls = []
    net.register_forward_hook(lambda *a: calls.append(1))
    images = torch.randn(20, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    y = np.repeat([0, 1], 10)
    ext = extraction.DNNFeatureExtractor(net, layers=["0", "2"], pooling="mean", batch_size=20)
    table = probe_layers(ext, y, stimuli=images, cv=2, random_state=0)
    assert list(table.index) == ["0", "2"] and len(calls) == 1
    feats = ext.fit_transform(images)
    manual = probe_layers({"0": feats[:, :4], "2": feats[:, 4:]}, y, cv=2, random_state=0)
    np.testing.assert_allclose(np.stack(table["scores"]), np.stack(manual["scores"]))
    path = tmp_path / "acts.act.h5"
    ext.extract_to_file(images, path)
    from_file = probe_layers(str(path), y, cv=2, random_state=0)
    np.testing.assert_allclose(np.stack(from_file["scores"]), np.stack(manual["scores"]), atol=1e-6)


def test_probing_module_is_a_deprecated_shim():
    import importlib
    import sys
    import warnings

    import neuroprobe
    from neuroprobe import model_selection

    sys.modules.pop("neuroprobe.probing", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probing = importlib.import_module("neuroprobe.probing")
    assert any(issubclass(w.category, DeprecationWarning) and "model_selection" in str(w.message)
               for w in caught)
    assert probing.probe_layers is model_selection.probe_layers
    assert probing.layer_features is model_selection.layer_features
    assert neuroprobe.probe_layers is model_selection.probe_layers


def test_unknown_layer_of_a_dict_is_a_layer_error():
    from neuroprobe.exceptions import LayerError

    with pytest.raises(LayerError, match=r"layers \['conv9'\] not in the given dict"):
        probe_layers({"conv1": np.zeros((6, 2))}, np.arange(6) % 2, layers=["conv9"])
    with pytest.raises(KeyError):  # LayerError stays a KeyError
        probe_layers({"conv1": np.zeros((6, 2))}, np.arange(6) % 2, layers=["conv9"])
