"""DNNFeatureExtractor: equality with torchvision's feature extractor, pooling, batching,
caching."""

import copy
import os

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from neuroprobe.models import LayerError
from neuroprobe.models.hooks import RepeatedCallError
from neuroprobe.transformers.extraction import DNNFeatureExtractor


def _no_inplace(module):
    ref = copy.deepcopy(module)
    for m in ref.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    return ref


def _reference(module, x, names):
    """Independent reference: torchvision's FX feature extractor on a copy without in-place ops."""
    fx = create_feature_extractor(_no_inplace(module).eval(), {n: n for n in names})
    with torch.no_grad():
        return {k: v.numpy() for k, v in fx(x).items()}


@pytest.fixture(scope="module")
def images():
    return torch.randn(6, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def alexnet():
    return DNNFeatureExtractor(
        "alexnet", weights=None,
        layers=["conv1", "conv1_relu", "conv5", "fc2", "classifier.6"],
        random_state=0,
        batch_size=4,
    )


def test_equals_create_feature_extractor_alexnet(images, alexnet):
    ext = clone(alexnet)
    features = ext.fit_transform(images)
    assert features.dtype == np.float32
    ref = _reference(ext.model_.module, images, ext.layers_)
    assert ext.layers_ == [
        "features.0",
        "features.1",
        "features.10",
        "classifier.4",
        "classifier.6",
    ]
    expected = np.concatenate([ref[m].reshape(len(images), -1) for m in ext.layers_], axis=1)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    # the captured conv1 output keeps its negative values despite the in-place ReLU after it
    conv1 = features[:, ext.feature_slices_["conv1"]]
    assert (conv1 < 0).any()
    relu = features[:, ext.feature_slices_["conv1_relu"]]
    np.testing.assert_array_equal(relu, np.maximum(conv1, 0))


def test_equals_create_feature_extractor_resnet18(images):
    ext = DNNFeatureExtractor(
        "resnet18", weights=None, layers=["conv1", "layer2", "layer4.1", "fc"], random_state=0,
        batch_size=3
    )
    features = ext.fit_transform(images[:4])
    ref = _reference(ext.model_.module, images[:4], ext.layers_)
    expected = np.concatenate([ref[m].reshape(4, -1) for m in ext.layers_], axis=1)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)


def test_pooling_matches_numpy(images, alexnet):
    base = clone(alexnet).set_params(layers=["conv2", "fc1"])
    ref = None
    for pooling in ["max", "mean", "median", "l1", "l2"]:
        ext = clone(base).set_params(pooling=pooling)
        features = ext.fit_transform(images)
        if ref is None:
            ref = _reference(ext.model_.module, images, ext.layers_)
            maps = ref["features.3"].reshape(len(images), 192, -1).astype(np.float64)
        expected = {
            "max": maps.max(-1),
            "mean": maps.mean(-1),
            "median": np.median(maps, -1),
            "l1": np.abs(maps).sum(-1),
            "l2": np.sqrt((maps**2).sum(-1)),
        }[pooling]
        np.testing.assert_allclose(features[:, :192], expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(features[:, 192:], ref["classifier.1"], rtol=1e-5, atol=1e-5)
    assert list(ext.get_feature_names_out()[:2]) == ["conv2:c0", "conv2:c1"]
    assert ext.get_feature_names_out()[192] == "fc1:u0"


def test_batch_size_invariance(images, alexnet):
    a = clone(alexnet).set_params(batch_size=1).fit_transform(images)
    b = clone(alexnet).set_params(batch_size=5).fit_transform(images)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_uint8_and_files_go_through_the_model_preprocessing(tmp_path):
    from PIL import Image

    from neuroprobe.stimuli import StimulusSet

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (3, 40, 50, 3), dtype=np.uint8)
    paths = []
    for i, a in enumerate(arr):
        paths.append(str(tmp_path / f"im{i}.png"))
        Image.fromarray(a).save(paths[-1])
    ext = DNNFeatureExtractor(
        "squeezenet1_1", weights=None, layers=["features.3"], pooling="mean", random_state=0
    ).fit(arr)
    manual = torch.stack([ext.model_.preprocess(Image.fromarray(a)) for a in arr])
    from_tensor = ext.transform(manual)
    np.testing.assert_allclose(ext.transform(arr), from_tensor, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ext.transform(paths), from_tensor, rtol=1e-5, atol=1e-6)
    stims = StimulusSet.from_paths(paths)
    np.testing.assert_allclose(
        ext.transform(stims[[2, 0]]), from_tensor[[2, 0]], rtol=1e-5, atol=1e-6
    )


def test_channels_selection_and_feature_names(images, alexnet):
    full = clone(alexnet).set_params(layers=["conv5", "fc2"])
    sel = clone(full).set_params(channels={"conv5": [3, 0], "fc2": [10, 11, 4095]})
    f_full, f_sel = full.fit_transform(images), sel.fit_transform(images)
    names_full, names_sel = full.get_feature_names_out(), sel.get_feature_names_out()
    assert len(names_full) == f_full.shape[1] and len(names_sel) == f_sel.shape[1]
    assert names_full[0] == "conv5:c0:y0:x0" and names_full[-1] == "fc2:u4095"
    pos = {n: i for i, n in enumerate(names_full)}
    np.testing.assert_array_equal(f_sel, f_full[:, [pos[n] for n in names_sel]])
    assert names_sel[0] == "conv5:c3:y0:x0" and names_sel[-1] == "fc2:u4095"
    assert sel.feature_slices_["fc2"].stop - sel.feature_slices_["fc2"].start == 3
    with pytest.raises(ValueError, match="conv5"):
        clone(full).set_params(channels={"conv5": [256]}).fit(images)
    with pytest.raises(ValueError, match="conv4"):
        clone(full).set_params(channels={"conv4": [1]}).fit(images)


def test_stops_after_last_requested_layer(images, alexnet):
    ext = clone(alexnet).set_params(layers=["conv2"], batch_size=2).fit(images[:1])
    calls = []
    handle = ext.model_.module.classifier.register_forward_hook(lambda *a: calls.append(1))
    try:
        ext.transform(images)  # 3 batches: only the first runs the whole network
    finally:
        handle.remove()
    assert len(calls) == 1


def test_hooks_removed_after_exception(images, alexnet):
    ext = clone(alexnet).set_params(layers=["conv1", "conv2", "fc1"]).fit(images[:1])
    module = ext.model_.module

    def boom(*args):
        raise RuntimeError("boom")

    handle = module.features[4].register_forward_hook(boom)  # fails mid-pass
    with pytest.raises(RuntimeError, match="boom"):
        ext.transform(images)
    handle.remove()
    assert all(len(m._forward_hooks) == 0 for m in module.modules())


def test_repeated_module_raises():
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(RepeatedCallError, match="layer1.0.relu"):
        DNNFeatureExtractor(
            "resnet18", weights=None, layers=["layer1.0.relu"], random_state=0
        ).fit(x)


def test_errors(images):
    with pytest.raises(LayerError, match="closest match: 'conv5'"):
        DNNFeatureExtractor("alexnet", weights=None, layers=["conv6"], random_state=0).fit(images)
    with pytest.raises(ValueError, match="empty"):
        DNNFeatureExtractor("alexnet", weights=None, random_state=0).fit(
            np.zeros((0, 8, 8, 3), np.uint8)
        )
    with pytest.raises(ValueError, match="The 'pooling' parameter of DNNFeatureExtractor must be"):
        DNNFeatureExtractor("alexnet", weights=None, pooling="sum").fit(images)
    with pytest.raises(ValueError, match="The 'batch_size' parameter of DNNFeatureExtractor"):
        DNNFeatureExtractor("alexnet", weights=None, batch_size=0).fit(images)
    with pytest.raises((FileNotFoundError, ValueError), match="nope.png"):
        DNNFeatureExtractor("alexnet", weights=None, random_state=0, layers=["conv1"]).fit(
            ["/tmp/nope.png"]
        )


def test_clone_and_get_params():
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())
    ext = DNNFeatureExtractor(
        net, layers=["0"], channels={"0": [1]}, batch_size=7, memory=None, random_state=3
    )
    params = ext.get_params()
    assert params["layers"] == ["0"] and params["batch_size"] == 7 and params["model"] is net
    ext.fit(torch.randn(2, 3, 8, 8))
    twin = clone(ext)
    assert not hasattr(twin, "model_")
    assert twin.get_params()["channels"] == {"0": [1]}
    assert twin.get_params()["layers"] == ["0"]
    np.testing.assert_array_equal(
        clone(ext).fit_transform(torch.ones(2, 3, 8, 8)), ext.transform(torch.ones(2, 3, 8, 8))
    )


def _counting_net(counter_file):
    class Counted(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.c1 = nn.Conv2d(3, 4, 3)
            self.c2 = nn.Conv2d(4, 4, 3)
            self.c3 = nn.Conv2d(4, 4, 3)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.counter_file = counter_file

        def forward(self, x):
            with open(self.counter_file, "a") as fh:
                fh.write(f"{x.shape[0]}\n")
            return self.pool(self.c3(torch.relu(self.c2(torch.relu(self.c1(x))))))

    return Counted()


def _rows(counter_file):
    if not os.path.exists(counter_file):
        return 0
    with open(counter_file) as fh:
        return sum(int(line) for line in fh if line.strip())


@pytest.mark.parametrize("n_jobs", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_grid_search_runs_network_once_per_stimulus_and_layer(tmp_path, n_jobs):
    counter = str(tmp_path / "count.txt")
    net = _counting_net(counter)
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.normal(size=(30, 3, 10, 10)).astype(np.float32))
    y = np.arange(30) % 2
    layers = ["c1", "c2", "c3"]
    pipe = Pipeline(
        [
            (
                "dnn",
                DNNFeatureExtractor(
                    net, layers=["c1"], pooling="mean", batch_size=8, memory=str(tmp_path / "cache")
                ),
            ),
            ("clf", LogisticRegression(max_iter=200)),
        ]
    )
    search = GridSearchCV(pipe, {"dnn__layers": [[la] for la in layers]}, cv=5, n_jobs=n_jobs)
    search.fit(X, y)
    assert _rows(counter) == len(X) * len(layers)  # each (stimulus, layer) computed once
    # cached features equal a direct, uncached extraction
    direct = DNNFeatureExtractor(
        _counting_net(str(tmp_path / "other.txt")), layers=layers, pooling="mean"
    ).fit_transform(X)
    cached = DNNFeatureExtractor(
        net, layers=layers, pooling="mean", memory=str(tmp_path / "cache")
    ).fit_transform(X)
    np.testing.assert_allclose(cached, direct, rtol=1e-5, atol=1e-6)
    assert _rows(counter) == len(X) * len(layers)  # nothing recomputed


def test_prefetch_gives_one_pass_per_stimulus(tmp_path):
    counter = str(tmp_path / "count.txt")
    net = _counting_net(counter)
    X = torch.randn(12, 3, 10, 10, generator=torch.Generator().manual_seed(1))
    ext = DNNFeatureExtractor(net, layers=["c1"], memory=str(tmp_path / "cache"), batch_size=5)
    ext.prefetch(X, layers=["c1", "c2", "c3"])
    assert _rows(counter) == len(X)
    for layer in ["c3", "c2", "c1"]:
        clone(ext).set_params(layers=[layer]).fit_transform(torch.flip(X, [0]))
    assert _rows(counter) == len(X)


def test_fit_without_data_uses_the_model_input_size():
    ext = DNNFeatureExtractor(
        "squeezenet1_1", weights=None, layers=["features.0", "classifier.1"], random_state=0
    ).fit()
    # squeezenet1_1's weights preprocess to 224 x 224: features.0 is a stride-2 3x3 conv -> 111
    assert ext.layer_shapes_["features.0"] == (64, 111, 111)
    assert ext.layer_shapes_["classifier.1"] == (1000, 13, 13)
    assert ext.n_features_out_ == 64 * 111 * 111 + 1000 * 13 * 13


@pytest.mark.gpu
def test_cuda_equals_cpu(images):
    layers = ["conv1", "conv5", "fc2"]
    cpu = DNNFeatureExtractor("alexnet", weights=None, layers=layers, pooling="max", random_state=0)
    gpu = clone(cpu).set_params(device="cuda")
    a, b = cpu.fit_transform(images), gpu.fit_transform(images)
    assert gpu.model_.module.features[0].weight.is_cuda and b.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    auto = clone(cpu).set_params(device="auto").fit(images[:1])
    assert auto.device_.type == "cuda"


def test_clones_with_random_state_none_are_the_same_network(images, monkeypatch):
    """Issue 13: clones inside GridSearchCV were different random networks (r = -0.008)."""
    from neuroprobe.transformers import _activation_cache

    # cache=False: no activation cache either, so each clone really runs its own network
    base = DNNFeatureExtractor("alexnet", weights=None, layers=["fc2"], batch_size=6, cache=False)
    feats = []
    for _ in range(2):  # no in-process model cache: each clone really builds its network
        monkeypatch.setattr(_activation_cache, "_BUILT", type(_activation_cache._BUILT)())
        monkeypatch.setattr(_activation_cache, "_SEEN", set())
        feats.append(clone(base).fit_transform(images))
    # bit-exact by design: same seed, same input, same batch
    np.testing.assert_array_equal(feats[0], feats[1])
    seeded = DNNFeatureExtractor("alexnet", weights=None, layers=["fc2"], random_state=0,
                                 batch_size=6, cache=False)
    np.testing.assert_array_equal(seeded.fit_transform(images), feats[0])
    other = clone(seeded).set_params(random_state=1).fit_transform(images)
    assert abs(np.corrcoef(other.ravel(), feats[0].ravel())[0, 1]) < 0.99


def test_default_weights_raise_the_offline_error(images, tmp_path, monkeypatch):
    import urllib.error

    import torchvision.models._api as api

    from neuroprobe.models import WeightsUnavailableError

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    ext = DNNFeatureExtractor("alexnet", layers=["fc2"])
    assert ext.get_params()["weights"] == "DEFAULT"
    with pytest.raises(WeightsUnavailableError, match="alexnet-owt-7be5be79.pth"):
        ext.fit_transform(images)
    assert not hasattr(ext, "model_")
