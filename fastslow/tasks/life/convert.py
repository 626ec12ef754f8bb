"""The Game-of-Life study's conversions, which keep the weights and change how the work is done.

* `to_fully_convolutional`: a network applied per window (conv -> flatten -> linear ...)
  becomes one that runs over a whole input at once, linear layers turned into convolutions.
  One call replaces H·W calls; the outputs are the same numbers.
* `predict_per_window_batched`: the per-window network, applied to every window of an input
  in one batched call (the step between a Python loop and a fully-convolutional network).
(Tiny convolutions as shifted adds, used by zoo:life-min, live with the life networks in
`fastslow.zoo.life`.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fastslow.errors import UserError

# Layers that act on each position (or each feature) independently: safe to keep as they are.
POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.Identity,
             nn.Dropout, nn.Hardtanh, nn.ReLU6)


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
