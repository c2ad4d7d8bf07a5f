"""Units: parsing, validation with the layer's shape, image inputs (grayscale / RGBA)."""

import numpy as np
import pytest
import torch
from PIL import Image

from neuroprobe.inspect import Unit, UnitError, parse_unit, saliency
from neuroprobe.inspect.units import unit_values
from neuroprobe.models.inputs import load_images
from neuroprobe.models.resolve import resolve_model


def test_parse_unit_forms():
    assert parse_unit(("conv1", 3)) == Unit("conv1", 3)
    assert parse_unit(("conv1", 3, 1, 2)) == Unit("conv1", 3, 1, 2)
    assert parse_unit("conv5:c3:y1:x2") == Unit("conv5", 3, 1, 2)
    assert parse_unit("features.0:c7") == Unit("features.0", 7)
    assert parse_unit(4, layer="fc") == Unit("fc", 4)
    for bad in ["conv1", ("conv1",), ("conv1", -1), ("conv1", 1, 2), (3, 1), "conv1:z3"]:
        with pytest.raises(UnitError):
            parse_unit(bad)


def test_target_value_is_channel_mean_or_unit():
    out = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    np.testing.assert_allclose(unit_values(out, Unit("l", 1)), out[:, 1].mean(dim=(1, 2)))
    np.testing.assert_allclose(unit_values(out, Unit("l", 2, 3, 4)), out[:, 2, 3, 4])


def test_channel_out_of_range_names_layer_shape(tiny_cnn, images):
    with pytest.raises(UnitError, match=r"channel 6 .*conv1.*\(6, 16, 16\)"):
        saliency(tiny_cnn, images, ("conv1", 6))
    with pytest.raises(UnitError, match=r"row=16.*\(6, 16, 16\)"):
        saliency(tiny_cnn, images, ("conv1", 0, 16, 0))
    with pytest.raises(UnitError, match=r"no \(row, col\) map"):
        saliency(tiny_cnn, images, ("fc", 0, 0, 0))


def test_unknown_layer_lists_valid_names(tiny_cnn, images):
    with pytest.raises(KeyError, match="conv1"):
        saliency(tiny_cnn, images, ("conv9", 0))


def test_grayscale_and_rgba_converted_like_rgb(tiny_cnn):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full((16, 16, 1), 255, np.uint8)], axis=2)
    info = resolve_model(tiny_cnn)
    ref = load_images(rgb, info)
    assert ref.shape == (1, 3, 16, 16)
    for img in (gray, rgba, Image.fromarray(gray), Image.fromarray(rgba)):
        torch.testing.assert_close(load_images(img, info), ref)


def test_image_files_grayscale_rgba(tmp_path, tiny_cnn):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    Image.fromarray(rgba).save(tmp_path / "a.png")
    info = resolve_model(tiny_cnn)
    x = load_images([str(tmp_path / "g.png"), str(tmp_path / "a.png")], info)
    torch.testing.assert_close(x[0], x[1])
    # saliency runs on those files
    assert saliency(tiny_cnn, [str(tmp_path / "g.png")], ("conv2", 1)).shape == (1, 3, 16, 16)


def test_tensor_with_wrong_channel_count(tiny_cnn):
    with pytest.raises(ValueError, match="1 channel.*expects 3"):
        saliency(tiny_cnn, torch.zeros(2, 1, 16, 16), ("conv1", 0))


def test_non_image_model_rejected():
    from neuroprobe.models import ModelSpec

    spec = ModelSpec(module=torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3)), modality="audio",
                     name="toy_audio")
    with pytest.raises(ValueError, match="image models.*audio"):
        saliency(spec, torch.zeros(1, 1, 1, 10), ("0", 0))


class _Argmax(torch.nn.Module):
    def forward(self, x):
        return x.argmax(dim=1, keepdim=True).float()


def test_layer_with_no_gradient_rejected():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), _Argmax(), torch.nn.Conv2d(1, 2, 1))
    with pytest.raises(ValueError, match="not differentiable"):
        saliency(net, torch.randn(1, 3, 8, 8), ("2", 0))


def test_model_by_name_module_and_extractor_agree(images):
    from neuroprobe.models import build_model
    from neuroprobe.transformers import DNNFeatureExtractor

    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    by_name = saliency("alexnet", x, ("conv1", 3), weights=None, random_state=0)
    spec = build_model("alexnet", weights=None, random_state=0)
    by_module = saliency(spec.module, x, ("features.0", 3))
    ext = DNNFeatureExtractor("alexnet", weights=None, layers=["conv1"], random_state=0).fit(x)
    by_ext = saliency(ext, x, ("conv1", 3))
    np.testing.assert_allclose(by_name, by_module, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(by_ext, by_module, rtol=1e-5, atol=1e-8)


def test_unfitted_extractor_rejected(images):
    from neuroprobe.transformers import DNNFeatureExtractor

    with pytest.raises(ValueError, match="not fitted"):
        saliency(DNNFeatureExtractor("alexnet", weights=None), images, ("conv1", 0))


def test_stimulus_set_with_rgba_files(tmp_path, tiny_cnn):
    from neuroprobe.stimuli import StimulusSet

    rgb = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([rgb, np.full((16, 16), 255, np.uint8)])).save(tmp_path / "rgba.png")
    stims = StimulusSet.from_paths([tmp_path / "rgb.png", tmp_path / "rgba.png"])
    g = saliency(tiny_cnn, stims, ("conv2", 0))
    np.testing.assert_allclose(g[0], g[1])


@pytest.mark.parametrize("method", ["saliency", "occlusion_map", "upsampling_map",
                                    "optimal_stimulus", "minimal_stimulus"])
def test_image_methods_reject_audio_models(method):
    import neuroprobe.inspect as insp
    from neuroprobe.models import ModelSpec

    spec = ModelSpec(module=torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3)), modality="audio",
                     name="toy_audio")
    fn = getattr(insp, method)
    args = (spec, ("0", 0)) if method == "optimal_stimulus" else (spec, torch.zeros(1, 1, 1, 9),
                                                                   ("0", 0))
    with pytest.raises(ValueError, match=f"{method} works on image models.*audio"):
        fn(*args)


def test_old_names_stay_importable():
    """inspect.targets is the old home: every name it had is the same object in its new one."""
    import neuroprobe.inspect as inspect_pkg
    from neuroprobe.inspect import targets, units
    from neuroprobe.models import inputs
    from neuroprobe.models import resolve as resolve_mod

    assert targets.Target is units.Unit is inspect_pkg.Target is Unit
    assert targets.parse_target is units.parse_unit is inspect_pkg.parse_target
    assert targets.parse_targets is units.parse_units
    assert targets.target_values is units.unit_values
    assert targets.load_images is inputs.load_images
    assert targets.to_display is inputs.to_display
    assert targets.resolve_model is resolve_mod.resolve_model is inspect_pkg.resolve_model
    assert targets.InspectedModel is resolve_mod.InspectedModel
    assert targets.seed_from is resolve_mod.seed_from
    for name in ("LayerProbe", "METRICS", "check_metric", "require_differentiable",
                 "require_image_model", "torch_generator", "UnitError"):
        assert getattr(targets, name) is not None
    assert parse_unit("conv5:c3") == targets.Target("conv5", 3)


def test_resolve_model_goes_through_resolve_device():
    from neuroprobe.exceptions import DeviceError

    with pytest.raises(DeviceError, match="not a device torch understands"):
        resolve_model(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3)), device="gpu0")
    info = resolve_model(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3)), device="auto")
    assert info.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
