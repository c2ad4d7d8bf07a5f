"""prepare_inspection: the common opening of the inspection functions (order of steps, errors)."""

import numpy as np
import pytest
import torch

from neuroprobe.exceptions import DeviceError, UnitError
from neuroprobe.inspect.units import Unit, prepare_inspection, torch_generator
from neuroprobe.models import ModelSpec
from neuroprobe.models.inputs import load_images
from neuroprobe.models.resolve import resolve_model


def test_resolves_units_probe_and_images(tiny_cnn, images):
    job = prepare_inspection(tiny_cnn, images, [("conv1", 2), "conv3:c1:y0:x1"], caller="f")
    assert job.units == [Unit("conv1", 2), Unit("conv3", 1, 0, 1)]
    assert job.single is False
    assert job.device == torch.device("cpu")
    assert job.probe.layer_names == ["conv1", "conv3"]
    assert job.probe.module_names == {"conv1": "conv1", "conv3": "conv3"}
    torch.testing.assert_close(job.x, load_images(images, resolve_model(tiny_cnn)))
    assert job.generator is None
    # the probe runs the same network: its output is the layer's own output
    with torch.no_grad():
        torch.testing.assert_close(job.probe(job.x), tiny_cnn.conv1(job.x))


def test_single_unit_and_no_images(tiny_cnn):
    job = prepare_inspection(tiny_cnn, None, ("conv2", 0), caller="f")
    assert job.single is True
    assert job.units == [Unit("conv2", 0)]
    assert job.x is None


def test_generator_is_seeded_last_from_random_state(tiny_cnn, images):
    job = prepare_inspection(tiny_cnn, images, ("conv1", 0), caller="f", random_state=7,
                             generator=True)
    expected = torch.randn(5, generator=torch_generator(7))
    torch.testing.assert_close(torch.randn(5, generator=job.generator), expected)
    # a RandomState is advanced only when a generator is asked for
    rs = np.random.RandomState(3)
    prepare_inspection(tiny_cnn, images, ("conv1", 0), caller="f", random_state=rs)
    assert rs.randint(2**31) == np.random.RandomState(3).randint(2**31)


def test_errors_name_the_caller_and_come_in_order(tiny_cnn, images):
    audio = ModelSpec(module=torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3)), modality="audio",
                      name="toy_audio")
    with pytest.raises(ValueError, match="my_tool works on image models.*audio"):
        prepare_inspection(audio, None, ("nolayer", 0), caller="my_tool")
    with pytest.raises(DeviceError):
        prepare_inspection(tiny_cnn, images, ("conv9", 0), caller="f", device="nodevice")
    with pytest.raises(UnitError, match="no targets"):
        prepare_inspection(tiny_cnn, images, [], caller="f")
    with pytest.raises(KeyError, match="conv1"):
        prepare_inspection(tiny_cnn, images, ("conv9", 0), caller="f")

    def reject(units):
        raise UnitError(f"rejected {units[0].label}")

    # check_units runs before the probe (so before an unknown layer is noticed) and the images
    with pytest.raises(UnitError, match="rejected conv9:c0"):
        prepare_inspection(tiny_cnn, "missing.png", ("conv9", 0), caller="f",
                           check_units=reject)


def test_shared_parameter_text_is_filled_in():
    import neuroprobe.inspect as insp
    from neuroprobe.inspect.units import DOCS

    for fn in (insp.saliency, insp.occlusion_map, insp.upsampling_map, insp.minimal_stimulus,
               insp.optimal_stimulus):
        assert "%(" not in fn.__doc__
        for key in ("model", "device"):
            first, second = DOCS[key].splitlines()
            assert f"\n    {first}\n    {second}\n" in fn.__doc__, (fn.__name__, key)
