import pytest
import torch
from torch import nn

from fastslow.errors import UserError
from fastslow.tasks.life.convert import (
    predict_per_window_batched,
    predict_per_window_loop,
    to_fully_convolutional,
    windows,
)
from fastslow.zoo.life import ShiftConv2d, to_shift_convs


def _per_window(c_in: int, k: int, extra_conv: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, 6, k - 2 if extra_conv else k), nn.ReLU()]
    if extra_conv:
        layers += [nn.Conv2d(6, 5, 3), nn.Tanh()]
    layers += [nn.Flatten(), nn.Linear(5 if extra_conv else 6, 4), nn.ReLU(), nn.Linear(4, 2)]
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize("c_in,k,extra_conv,same", [
    (1, 3, False, True), (2, 5, False, True), (1, 5, True, True), (3, 3, False, False),
])
def test_fully_convolutional_equals_per_window(c_in, k, extra_conv, same):
    torch.manual_seed(0)
    net = _per_window(c_in, k, extra_conv)
    fc = to_fully_convolutional(net, (k, k), c_in, same=same)
    x = torch.randn(2, c_in, 9, 11)
    with torch.no_grad():
        a = fc(x)
        b = predict_per_window_batched(net, x, (k, k), same=same)
        c = predict_per_window_loop(net, x, (k, k), same=same)
    expected_hw = (9, 11) if same else (9 - k + 1, 11 - k + 1)
    assert a.shape == (2, 2, *expected_hw)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b, c, atol=1e-5, rtol=1e-5)


def test_the_windows_are_the_neighbourhoods():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    w = windows(x, (3, 3))
    assert w.shape == (12, 1, 3, 3)
    assert w[5, 0].tolist() == x[0, 0, 0:3, 0:3].tolist()  # position (1, 1)
    assert w[0, 0, 0].tolist() == [0, 0, 0]  # zero padding at the corner


def test_unconvertible_layers_are_named():
    with pytest.raises(UserError, match="MaxPool2d"):
        to_fully_convolutional(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(1), nn.Flatten(),
                                             nn.Linear(2, 1)), (3, 3))
    with pytest.raises(UserError, match="stride-1"):
        to_fully_convolutional(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.Flatten(), nn.Linear(2, 1)), (3, 3))
    with pytest.raises(UserError, match="no Flatten or Linear"):
        to_fully_convolutional(nn.Sequential(nn.Conv2d(1, 2, 3)), (3, 3))


@pytest.mark.parametrize("c_in,c_out,k,padding,dilation", [
    (1, 1, 3, 1, 1), (1, 2, 3, 0, 1), (2, 3, 1, 0, 1), (2, 1, 3, "same", 2), (1, 1, 5, 2, 1),
])
def test_shift_conv_equals_conv(c_in, c_out, k, padding, dilation):
    torch.manual_seed(1)
    conv = nn.Conv2d(c_in, c_out, k, padding=padding, dilation=dilation)
    x = torch.randn(3, c_in, 10, 12)
    with torch.no_grad():
        torch.testing.assert_close(ShiftConv2d(conv)(x), conv(x), atol=1e-5, rtol=1e-5)


def test_to_shift_convs_replaces_only_small_convs_and_keeps_state_dict_keys():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 64, 3, padding=1))
    keys = set(net.state_dict())
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        before = net(x)
        to_shift_convs(net)
        after = net(x)
    assert isinstance(net[0], ShiftConv2d) and isinstance(net[2], nn.Conv2d)
    assert set(net.state_dict()) == keys
    torch.testing.assert_close(before, after, atol=1e-5, rtol=1e-5)
