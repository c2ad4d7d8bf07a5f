"""hooks.capture: copies, tuple outputs, repeated calls, early stop, removal on errors."""

import pytest
import torch
from torch import nn

from neuroprobe.models import LayerError
from neuroprobe.models.hooks import RepeatedCallError, capture


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.relu = nn.ReLU(inplace=True)
        self.rnn = nn.GRU(3, 4, batch_first=True)
        self.head = nn.Linear(4, 2)
        self.head_calls = 0

    def forward(self, x):
        y = self.relu(self.conv(x))  # the ReLU overwrites the conv output in place
        seq = y.flatten(2).transpose(1, 2)
        out, _ = self.rnn(seq)  # tuple output
        self.head_calls += 1
        return self.head(out[:, -1])


def _hooks(module):
    return sum(len(m._forward_hooks) for m in module.modules())


def test_inplace_relu_cannot_change_captured_output():
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(2, 2, 6, 6)
    expected = net.conv(x).detach().clone()
    assert (expected < 0).any()
    with torch.no_grad(), capture(net, ["conv", "relu", "rnn"]) as out:
        net(x)
    torch.testing.assert_close(out["conv"], expected)
    torch.testing.assert_close(out["relu"], expected.clamp(min=0))
    # tuple output: the first tensor (the GRU output sequence) is captured
    ref, _ = net.rnn(expected.clamp(min=0).flatten(2).transpose(1, 2))
    torch.testing.assert_close(out["rnn"], ref.detach())
    assert _hooks(net) == 0


def test_without_clone_inplace_op_corrupts():  # shows why the copy is needed
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(2, 2, 6, 6)
    with torch.no_grad(), capture(net, ["conv"], clone=False) as out:
        net(x)
    assert (out["conv"] >= 0).all()


def test_hooks_removed_after_exception():
    net = Net().eval()
    with pytest.raises(ValueError, match="boom"), capture(net, ["conv", "head"]):
        assert _hooks(net) == 2
        raise ValueError("boom")
    assert _hooks(net) == 0


def test_repeated_calls():
    block = nn.Sequential()
    relu = nn.ReLU()
    block.add_module("a", nn.Linear(3, 3))
    block.add_module("r", relu)
    seq = nn.Sequential(block, nn.Linear(3, 3))

    def forward(x):
        return relu(block(x))  # "0.r" runs twice

    x = torch.randn(2, 3)
    with pytest.raises(RepeatedCallError, match="0.r"), capture(seq, ["0.r"]):
        forward(x)
    assert _hooks(seq) == 0
    with capture(seq, ["0.r"], repeat="last") as out:
        y = forward(x)
    torch.testing.assert_close(out["0.r"], y)
    with capture(seq, ["0.r"], repeat="all") as out:
        forward(x)
    assert len(out["0.r"]) == 2 and out.calls["0.r"] == 2


def test_stop_skips_the_rest_of_the_network():
    net = Net().eval()
    x = torch.randn(2, 2, 6, 6)
    with torch.no_grad(), capture(net, ["conv", "relu"], stop=True) as out:
        out.run(x)
        out.run(x)
    assert net.head_calls == 0 and set(out) == {"conv", "relu"}
    with torch.no_grad(), capture(net, ["relu"]) as out:
        out.run(x)
    assert net.head_calls == 1


def test_unknown_layer():
    with pytest.raises(LayerError, match="closest match: 'conv'"):
        with capture(Net(), ["convv"]):
            pass


def test_forward_hook_replaces_output_and_is_removed_also_on_errors():
    from neuroprobe.models.hooks import forward_hook

    net = Net().eval()
    x = torch.randn(1, 2, 5, 5)
    with torch.no_grad():
        plain = net(x)
        with forward_hook(net.head, lambda _m, _i, out: out * 0 + 7):
            assert _hooks(net) == 1
            hooked = net(x)
        assert _hooks(net) == 0
        torch.testing.assert_close(hooked, torch.full_like(plain, 7.0))
        torch.testing.assert_close(net(x), plain)  # the network is unchanged afterwards
    with pytest.raises(ValueError, match="boom"), forward_hook(net.conv, lambda *a: None):
        raise ValueError("boom")
    assert _hooks(net) == 0
