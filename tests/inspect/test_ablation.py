"""Ablation: exactly the chosen channels are zeroed, the model is restored; lesion studies."""

import numpy as np
import pytest
import torch

from neuroprobe.inspect import UnitError, ablate, lesion_study


def _capture(net, module, x):
    store = {}
    handle = module.register_forward_hook(lambda m, i, o: store.__setitem__("o", o.clone()))
    with torch.no_grad():
        y = net(x)
    handle.remove()
    return store["o"], y


def test_ablate_zeroes_exactly_the_chosen_channels_and_restores(tiny_cnn, images):
    state = {k: v.clone() for k, v in tiny_cnn.state_dict().items()}
    before, y_before = _capture(tiny_cnn, tiny_cnn.relu2, images)
    with ablate(tiny_cnn, {"relu2": [1, 5]}) as net:
        assert net is tiny_cnn
        during, y_during = _capture(tiny_cnn, tiny_cnn.relu2, images)
    after, y_after = _capture(tiny_cnn, tiny_cnn.relu2, images)
    assert torch.all(during[:, [1, 5]] == 0)
    others = [c for c in range(8) if c not in (1, 5)]
    torch.testing.assert_close(during[:, others], before[:, others], rtol=0, atol=0)
    assert torch.any(before[:, [1, 5]] != 0)  # the ablation changed something
    assert not torch.allclose(y_during, y_before)
    # downstream equals a manual forward pass with the channels zeroed
    with torch.no_grad():
        h = before.clone()
        h[:, [1, 5]] = 0
        manual = tiny_cnn.fc(tiny_cnn.pool(torch.relu(tiny_cnn.conv3(h))).flatten(1))
    torch.testing.assert_close(y_during, manual)
    # restored: same outputs, no hooks left, weights untouched
    torch.testing.assert_close(y_after, y_before, rtol=0, atol=0)
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    assert not tiny_cnn.relu2._forward_hooks
    for k, v in tiny_cnn.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)


def test_ablate_restores_after_error(tiny_cnn, images):
    with pytest.raises(RuntimeError, match="boom"):
        with ablate(tiny_cnn, {"conv1": 0, "conv3": [2]}):
            raise RuntimeError("boom")
    assert not tiny_cnn.conv1._forward_hooks and not tiny_cnn.conv3._forward_hooks


def test_ablate_channel_out_of_range(tiny_cnn, images):
    with pytest.raises(UnitError, match=r"channel 8 .*relu2.*\(8, 8, 8\)"):
        with ablate(tiny_cnn, {"relu2": [8]}):
            tiny_cnn(images)
    with pytest.raises(KeyError, match="relu2"):
        with ablate(tiny_cnn, {"relu9": [0]}):
            pass


def test_lesion_study_output_change(tiny_cnn, images):
    res = lesion_study(tiny_cnn, images, "relu3", channels=[0, 4, 8])
    y = tiny_cnn(images).detach().numpy()
    for k, c in enumerate([0, 4, 8]):
        with ablate(tiny_cnn, {"relu3": [c]}):
            y_c = tiny_cnn(images).detach().numpy()
        np.testing.assert_allclose(res.delta[k], np.linalg.norm(y_c - y) / np.linalg.norm(y),
                                   rtol=1e-5)
    assert res.to_rows()[1]["channel"] == 4


def test_lesion_study_score(tiny_cnn, images):
    def score(outputs):
        return float(outputs[:, 0].mean())

    res = lesion_study(tiny_cnn, images, "relu3", score=score)
    assert len(res.channels) == 10
    base = float(tiny_cnn(images)[:, 0].mean().detach())
    np.testing.assert_allclose(res.baseline, base, rtol=1e-5)
    # ablating one relu3 channel changes logit 0 by -w[0, c] * mean spatial activation
    with torch.no_grad():
        h = torch.relu(tiny_cnn.conv3(torch.relu(tiny_cnn.conv2(torch.relu(
            tiny_cnn.conv1(images)))))).mean(dim=(2, 3))
    expected = (tiny_cnn.fc.weight[0] * h).mean(0).detach().numpy()
    np.testing.assert_allclose(res.delta, expected, rtol=1e-4, atol=1e-6)


def test_lesion_study_output_layer(tiny_cnn, images):
    res = lesion_study(tiny_cnn, images, "relu1", channels=[2], output_layer="relu1")
    out, _ = _capture(tiny_cnn, tiny_cnn.relu1, images)
    expected = out[:, 2].norm() / out.norm()
    np.testing.assert_allclose(res.delta[0], float(expected), rtol=1e-5)


def test_ablate_a_fitted_extractor(tiny_cnn, images):
    from neuroprobe.transformers import DNNFeatureExtractor

    ext = DNNFeatureExtractor(tiny_cnn, layers=["relu2", "relu3"], pooling="mean").fit(images)
    full = ext.transform(images)
    with ablate(ext, {"relu2": [0, 1, 2, 3, 4, 5, 6, 7]}):
        silenced = ext.transform(images)
    np.testing.assert_array_equal(silenced[:, ext.feature_slices_["relu2"]], 0)
    np.testing.assert_allclose(ext.transform(images), full)

    def score(features):
        return float(features[:, ext.feature_slices_["relu3"]].sum())

    res = lesion_study(ext, images, "relu2", channels=[0, 3], score=score)
    for k, c in enumerate([0, 3]):
        with ablate(ext, {"relu2": [c]}):
            np.testing.assert_allclose(res.scores[k], score(ext.transform(images)), rtol=1e-5)
    np.testing.assert_allclose(res.baseline, score(full), rtol=1e-6)
