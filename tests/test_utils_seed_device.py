"""_utils.seed_from (one seed rule) and resolve_device (one device rule) where they are used."""

import numpy as np
import pytest
import torch

from neuroprobe._utils import resolve_device, seed_from
from neuroprobe.exceptions import DeviceError


def test_seed_from():
    assert seed_from(5) == 5 and seed_from(np.int64(7)) == 7
    assert seed_from(None, default=0) == 0
    a, b = np.random.RandomState(3), np.random.RandomState(3)
    assert seed_from(a) == int(b.randint(0, 2**31 - 1))  # draws like the RandomState does
    fresh = {seed_from(None) for _ in range(5)}
    assert all(0 <= s < 2**31 - 1 for s in fresh) and len(fresh) > 1
    with pytest.raises(ValueError, match="random_state must be None, an int or a RandomState"):
        seed_from("3")


def test_inspect_and_models_share_the_seed_rule():
    from neuroprobe.inspect import targets

    assert targets.seed_from is seed_from
    g1, g2 = targets.torch_generator(4), torch.Generator().manual_seed(4)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == auto
    with pytest.raises(DeviceError, match="not a device torch understands"):
        resolve_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_missing_cuda_is_a_device_error_everywhere():
    from torch import nn

    from neuroprobe.inspect.ablation import lesion_study
    from neuroprobe.inspect.minimal_stimulus import minimal_stimulus
    from neuroprobe.inspect.receptive_field import occlusion_map
    from neuroprobe.inspect.saliency import saliency
    from neuroprobe.inspect.synthesis import optimal_stimulus
    from neuroprobe.transfer import finetune

    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    images = torch.rand(2, 3, 8, 8)
    calls = [
        lambda: saliency(net, images, "0:0", device="cuda"),
        lambda: minimal_stimulus(net, images[:1], "0:0", device="cuda"),
        lambda: occlusion_map(net, images, "0:0", device="cuda"),
        lambda: optimal_stimulus(net, "0:0", input_shape=(3, 8, 8), device="cuda"),
        lambda: lesion_study(net, images, "0", channels=[0], device="cuda"),
        lambda: finetune(net, images, np.array([0, 1]), device="cuda", epochs=1),
    ]
    for call in calls:
        with pytest.raises(DeviceError, match="CUDA is not available"):
            call()
