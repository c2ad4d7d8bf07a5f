"""Fine-tuning: beats chance on held-out data; the checkpoint round-trips through build_model."""

import numpy as np
import pytest
import torch

from neuroprobe.models import build_model
from neuroprobe.models.finetune import finetune
from neuroprobe.stimuli import StimulusSet
from neuroprobe.transformers import DNNFeatureExtractor
from tests.inspect.conftest import make_tiny_cnn


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _two_class(n, seed):
    """Class 1: the left half is brighter; class 0: the right half. Plus strong pixel noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = rng.normal(0, 1.0, (n, 3, 16, 16)).astype(np.float32)
    sign = np.where(labels == 1, 1.0, -1.0)[:, None, None, None]
    x[..., :8] += 0.5 * sign
    x[..., 8:] -= 0.5 * sign
    return x, np.array(["right", "left"])[labels]


def _accuracy(module, x, labels, classes):
    with torch.no_grad():
        pred = module(torch.from_numpy(x)).argmax(1).numpy()
    return float(np.mean(classes[pred] == labels))


def test_finetune_beats_chance_and_checkpoint_round_trips(tmp_path):
    x, labels = _two_class(96, 0)
    stims = StimulusSet(data=x, attributes={"label": labels})
    net = make_tiny_cnn(seed=0, n_classes=2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = finetune(net, stims, trainable="all", epochs=12, lr=1e-2, batch_size=16,
                   checkpoint=tmp_path / "tiny.pt", random_state=0, verbose=0, patience=5)
    x_test, y_test = _two_class(200, 1)
    acc = _accuracy(res.module, x_test, y_test, res.classes)
    assert acc >= 0.8, acc  # chance is 0.5
    assert res.task == "classification" and list(res.classes) == ["left", "right"]
    assert res.head == "fc" and 1 <= res.best_epoch <= len(res.history["val_loss"])
    assert res.history["val_loss"][res.best_epoch - 1] == min(res.history["val_loss"])
    # the input model is untouched
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    # round trip: a fresh module of the same architecture loads the checkpoint
    spec = build_model(make_tiny_cnn(seed=7, n_classes=2), weights=tmp_path / "tiny.pt")
    xt = torch.from_numpy(x_test[:10])
    with torch.no_grad():
        torch.testing.assert_close(spec.module(xt), res.module(xt))
    ext = DNNFeatureExtractor(make_tiny_cnn(seed=3), weights=str(tmp_path / "tiny.pt"),
                              layers=["fc"]).fit(xt)
    with torch.no_grad():
        np.testing.assert_allclose(ext.transform(xt), res.module(xt).numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_only_chosen_layers_train():
    x, labels = _two_class(40, 2)
    net = make_tiny_cnn(seed=0)
    res = finetune(net, x, labels, trainable=["conv3"], epochs=2, validation_fraction=0,
                   random_state=0, verbose=0)
    for name in ("conv1", "conv2"):
        torch.testing.assert_close(getattr(res.module, name).weight, getattr(net, name).weight)
    assert not torch.allclose(res.module.conv3.weight, net.conv3.weight)
    assert res.module.fc.out_features == 2 and np.isnan(res.history["val_score"]).all()
    head_only = finetune(net, x, labels, epochs=1, validation_fraction=0, random_state=0,
                         verbose=0)
    torch.testing.assert_close(head_only.module.conv3.weight, net.conv3.weight)


def test_regression_and_seed_reproducible():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3, 16, 16)).astype(np.float32)
    values = x[:, 0, :8].mean(axis=(1, 2)).astype(np.float64)
    kw = dict(epochs=3, random_state=4, verbose=0, trainable="all")
    a = finetune(make_tiny_cnn(), x, values, **kw)
    b = finetune(make_tiny_cnn(), x, values, **kw)
    assert a.task == "regression" and a.module.fc.out_features == 1
    assert a.history == b.history
    torch.testing.assert_close(a.module.fc.weight, b.module.fc.weight)


def test_bad_input():
    x, labels = _two_class(10, 0)
    with pytest.raises(ValueError, match="at least two classes"):
        finetune(make_tiny_cnn(), x, np.zeros(10, int), verbose=0)
    with pytest.raises(ValueError, match="give y"):
        finetune(make_tiny_cnn(), x, verbose=0)
    with pytest.raises(ValueError, match="10 stimuli but 9"):
        finetune(make_tiny_cnn(), x, labels[:9], verbose=0)
    nolinear = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.Flatten())
    with pytest.raises(ValueError, match="no nn.Linear"):
        finetune(nolinear, x, labels, verbose=0)


def test_torchvision_checkpoint_round_trip(tmp_path):
    x, labels = _two_class(12, 0)
    x64 = torch.nn.functional.interpolate(torch.from_numpy(x), size=(64, 64))
    res = finetune("mobilenet_v3_small", x64, labels, weights=None, epochs=1, random_state=0,
                   verbose=0, validation_fraction=0, checkpoint=tmp_path / "m.pt", batch_size=6)
    assert res.head == "classifier.3" and res.module.classifier[3].out_features == 2
    spec = build_model("mobilenet_v3_small", weights=str(tmp_path / "m.pt"))
    with torch.no_grad():
        torch.testing.assert_close(spec.module(x64[:3]), res.module(x64[:3]))


def test_transfer_module_is_a_deprecated_shim():
    import importlib
    import sys
    import warnings

    import neuroprobe
    from neuroprobe.models import finetune as finetune_mod

    sys.modules.pop("neuroprobe.transfer", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        transfer = importlib.import_module("neuroprobe.transfer")
    assert any(issubclass(w.category, DeprecationWarning) and "models.finetune" in str(w.message)
               for w in caught)
    for name in ("finetune", "FinetuneResult", "replace_head", "save_checkpoint"):
        assert getattr(transfer, name) is getattr(finetune_mod, name)
    assert neuroprobe.finetune is finetune_mod.finetune
