"""Tiny networks and images shared by the inspection tests."""

import contextlib

import pytest
import torch
from torch import nn


class TinyCNN(nn.Module):
    """Three convolutions, ReLU modules (not functional), a linear head."""

    def __init__(self, n_classes=2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1, stride=2)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(8, 10, 3, padding=1)
        self.relu3 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(10, n_classes)

    def forward(self, x):
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        x = self.relu3(self.conv3(x))
        return self.fc(self.flatten(self.pool(x)))


def make_tiny_cnn(seed=0, n_classes=2):
    torch.manual_seed(seed)
    return TinyCNN(n_classes).eval()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny networks run fastest on one thread (intra-op threads thrash on a loaded machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def tiny_cnn():
    return make_tiny_cnn()


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(1)
    return torch.randn((5, 3, 16, 16), generator=g)


@pytest.fixture(scope="session")
def alexnet_spec():
    """Random-weight AlexNet (seeded); feed it 64 x 64 tensors to keep tests fast."""
    from neuroprobe.models import build_model

    return build_model("alexnet", weights=None, random_state=0)


@contextlib.contextmanager
def count_forward(module):
    """Count the forward passes of ``module`` (and the images they carry) with a pre-hook.

    A pre-hook runs even when the pass is stopped early (after the last needed layer).
    """
    calls = {"passes": 0, "images": 0, "inputs": []}

    def hook(_module, args):
        calls["passes"] += 1
        calls["images"] += len(args[0])
        calls["inputs"].append(args[0].detach().clone())

    handle = module.register_forward_pre_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()
