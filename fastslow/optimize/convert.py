"""Model-to-model conversions that keep the weights and change how the work is done.

* `to_fully_convolutional`: a network applied per window (conv -> flatten -> linear ...)
  becomes one that runs over a whole input at once, linear layers turned into convolutions.
  One call replaces H·W calls; the outputs are the same numbers.
* `predict_per_window_batched`: the per-window network, applied to every window of an input
  in one batched call (the step between a Python loop and a fully-convolutional network).
* `to_shift_convs`: convolutions with very few channels computed as shifted multiply-adds.
  oneDNN and im2col are built for many channels; at 1 or 2 channels a 2048x2048 3x3 conv
  costs ~150 ms on these CPUs, while nine in-place adds over the same tensor cost ~25 ms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fastslow.errors import UserError

# Layers that act on each position (or each feature) independently: safe to keep as they are.
POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.Identity,
             nn.Dropout, nn.Hardtanh, nn.ReLU6)


def _window_size(conv: nn.Conv2d) -> tuple[int, int]:
    kh, kw = conv.kernel_size
    dh, dw = conv.dilation
    return (dh * (kh - 1) + 1, dw * (kw - 1) + 1)


def to_fully_convolutional(
    per_window: nn.Sequential, window: tuple[int, int], in_channels: int = 1, *, same: bool = True
) -> nn.Sequential:
    """Convert a per-window `nn.Sequential` (convs, then Flatten, then Linear layers).

    `window` is the input size the network was built for. With `same=True` the input is
    zero-padded so the output has one value per input position (the window centred on it);
    otherwise only windows that fit inside the input are evaluated ("valid").
    Raises `UserError` naming the first layer it cannot convert.
    """
    if not isinstance(per_window, nn.Sequential):
        raise UserError(f"to_fully_convolutional needs an nn.Sequential (got {type(per_window).__name__})")
    wh, ww = window
    layers: list[nn.Module] = []
    if same:
        layers.append(nn.ZeroPad2d((ww // 2, ww - 1 - ww // 2, wh // 2, wh - 1 - wh // 2)))
    x = torch.zeros(1, in_channels, wh, ww)
    flattened_shape: tuple[int, int, int] | None = None
    first_linear = True
    for i, layer in enumerate(per_window):
        if flattened_shape is None:
            if isinstance(layer, nn.Flatten):
                flattened_shape = tuple(x.shape[1:])  # type: ignore[assignment]
                continue
            if isinstance(layer, nn.Conv2d):
                if layer.stride != (1, 1) or layer.padding not in ((0, 0), "valid"):
                    raise UserError(f"layer {i} ({layer}): only stride-1, unpadded convolutions "
                                    "describe a sliding window")
                layers.append(layer)
            elif isinstance(layer, (*POINTWISE, nn.BatchNorm2d)):
                layers.append(layer)
            elif isinstance(layer, nn.Linear) and x.dim() == 4 and x.shape[2:] == (1, 1):
                flattened_shape = (x.shape[1], 1, 1)  # a linear on a 1x1 map: implicit flatten
                layers.append(_linear_as_conv(layer, flattened_shape))
                first_linear = False
            else:
                raise UserError(f"layer {i} ({type(layer).__name__}) cannot be made fully convolutional")
            with torch.no_grad():
                x = layer(x)
            continue
        if isinstance(layer, nn.Linear):
            shape = flattened_shape if first_linear else (layer.in_features, 1, 1)
            layers.append(_linear_as_conv(layer, shape))
            first_linear = False
        elif isinstance(layer, POINTWISE):
            layers.append(layer)
        elif isinstance(layer, nn.BatchNorm1d):
            bn = nn.BatchNorm2d(layer.num_features, layer.eps, layer.momentum, layer.affine)
            bn.load_state_dict(layer.state_dict())
            layers.append(bn)
        else:
            raise UserError(f"layer {i} ({type(layer).__name__}) after Flatten cannot be made convolutional")
    if flattened_shape is None:
        raise UserError("the per-window network has no Flatten or Linear layer to convert")
    return nn.Sequential(*layers).eval()


def _linear_as_conv(linear: nn.Linear, shape: tuple[int, int, int]) -> nn.Conv2d:
    c, h, w = shape
    if c * h * w != linear.in_features:
        raise UserError(f"{linear}: expects {linear.in_features} features, the map before it has {c}x{h}x{w}")
    conv = nn.Conv2d(c, linear.out_features, (h, w), bias=linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.view(linear.out_features, c, h, w))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


def windows(grid: torch.Tensor, window: tuple[int, int], *, same: bool = True) -> torch.Tensor:
    """Every window of an (N, C, H, W) input as a batch (N·L, C, wh, ww), row-major."""
    n, c, _, _ = grid.shape
    wh, ww = window
    if same:
        grid = F.pad(grid, (ww // 2, ww - 1 - ww // 2, wh // 2, wh - 1 - wh // 2))
    cols = F.unfold(grid, window)  # (N, C*wh*ww, L)
    return cols.transpose(1, 2).reshape(-1, c, wh, ww)


def predict_per_window_batched(
    per_window: nn.Module, grid: torch.Tensor, window: tuple[int, int], *, same: bool = True
) -> torch.Tensor:
    """The per-window network on all windows in one call, shaped like the fully-convolutional
    output: (N, out, H', W')."""
    n, _, h, w = grid.shape
    out = per_window(windows(grid, window, same=same))  # (N·L, out)
    out = out.reshape(n, -1, out.shape[-1]) if out.dim() == 2 else out.reshape(n, -1, 1)
    oh, ow = (h, w) if same else (h - window[0] + 1, w - window[1] + 1)
    return out.transpose(1, 2).reshape(n, -1, oh, ow)


def predict_per_window_loop(
    per_window: nn.Module, grid: torch.Tensor, window: tuple[int, int], *, same: bool = True
) -> torch.Tensor:
    """One call per window, as a naive per-item predictor does: the slow reference."""
    batch = windows(grid, window, same=same)
    out = torch.cat([per_window(batch[i : i + 1]) for i in range(batch.shape[0])])
    n, _, h, w = grid.shape
    oh, ow = (h, w) if same else (h - window[0] + 1, w - window[1] + 1)
    return out.reshape(n, oh * ow, -1).transpose(1, 2).reshape(n, -1, oh, ow)


class ShiftConv2d(nn.Module):
    """A stride-1 Conv2d computed as a sum of shifted, scaled copies of its input.

    Same parameters (and state dict keys) as the Conv2d it replaces; inference only. Costs
    one pass over the input per non-zero weight, so it pays only for tiny channel counts.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.stride != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros":
            raise UserError(f"{conv}: ShiftConv2d handles stride 1, groups 1, zero padding only")
        self.weight = nn.Parameter(conv.weight.detach().clone(), requires_grad=False)
        self.bias = (nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
                     if conv.bias is not None else None)
        self.dilation = conv.dilation
        kh, kw = conv.kernel_size
        if conv.padding == "same":
            eh, ew = _window_size(conv)
            self.pad = ((ew - 1) // 2, ew - 1 - (ew - 1) // 2, (eh - 1) // 2, eh - 1 - (eh - 1) // 2)
        elif conv.padding == "valid":
            self.pad = (0, 0, 0, 0)
        else:
            ph, pw = conv.padding  # type: ignore[misc]
            self.pad = (pw, pw, ph, ph)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad)
        o_ch, i_ch, kh, kw = self.weight.shape
        dh, dw = self.dilation
        oh = x.shape[2] - dh * (kh - 1)
        ow = x.shape[3] - dw * (kw - 1)
        weights = self.weight.tolist()
        biases = self.bias.tolist() if self.bias is not None else [0.0] * o_ch
        out = x.new_empty(x.shape[0], o_ch, oh, ow)
        for o in range(o_ch):
            acc = out[:, o]
            acc.fill_(biases[o])
            for c in range(i_ch):
                for i in range(kh):
                    for j in range(kw):
                        w = weights[o][c][i][j]
                        if w != 0.0:
                            acc.add_(x[:, c, i * dh : i * dh + oh, j * dw : j * dw + ow], alpha=w)
        return out

    def extra_repr(self) -> str:
        o, i, kh, kw = self.weight.shape
        return f"{i}, {o}, kernel_size=({kh}, {kw}), pad={self.pad}"


# Past this many multiply-adds per output position a real convolution kernel wins.
SHIFT_CONV_MAX_TERMS = 64


def to_shift_convs(model: nn.Module, max_terms: int = SHIFT_CONV_MAX_TERMS) -> nn.Module:
    """Replace every small stride-1 Conv2d (out·in·kh·kw <= max_terms) by a ShiftConv2d.

    Works in place on the module tree and returns the model, in eval mode.
    """
    for name, child in list(model.named_children()):
        if (isinstance(child, nn.Conv2d) and child.stride == (1, 1) and child.groups == 1
                and child.padding_mode == "zeros" and child.weight.numel() <= max_terms):
            setattr(model, name, ShiftConv2d(child))
        else:
            to_shift_convs(child, max_terms)
    return model.eval()
