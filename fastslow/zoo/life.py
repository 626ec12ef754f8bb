"""The Game of Life networks, registered in the zoo: the notebook's per-cell and
fully-convolutional networks, the family the minimum-size search walks, and the smallest
exact one it found (shipped as life_min.pt), with its tiny convolutions as shifted adds.

All of them output a logit per cell (alive when > 0). `to_shift_convs` lives here because
zoo:life-min is defined by it: oneDNN and im2col are built for many channels; at 1 or 2
channels a 2048x2048 3x3 conv costs ~150 ms on these CPUs, while nine in-place adds over the
same tensor cost ~25 ms.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fastslow.errors import UserError
from fastslow.specs import load_torch_file
from fastslow.zoo import register_model

HIDDEN = 85  # the notebook's first layer width
HIDDEN2 = 10  # its second
MIN_WEIGHTS = Path(__file__).with_name("life_min.pt")  # shipped result of `fastslow life search`


@register_model("life-percell", inputs=("Bx1x3x3",), defaults={"B": 1})
def percell_net() -> nn.Sequential:
    """Per-cell predictor: one 3x3 neighbourhood in, the centre's next-state logit out."""
    return nn.Sequential(
        nn.Conv2d(1, HIDDEN, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(HIDDEN, HIDDEN2), nn.ReLU(), nn.Linear(HIDDEN2, 1),
    )


@register_model("life-fc", inputs=("Bx1xHxW",), defaults={"B": 1, "H": 64, "W": 64})
def fc_net() -> nn.Sequential:
    """Fully-convolutional predictor: a whole grid in, a logit per cell out."""
    return nn.Sequential(
        nn.Conv2d(1, HIDDEN, 3, padding=1), nn.ReLU(),
        nn.Conv2d(HIDDEN, HIDDEN2, 1), nn.ReLU(),
        nn.Conv2d(HIDDEN2, 1, 1),
    )


def small_net(embed: int, hidden: int) -> nn.Sequential:
    """The family the minimum-size search walks: [3x3 conv to `embed` channels, linear] ->
    1x1 conv to `hidden` -> ReLU -> 1x1 conv to one logit. embed=0 drops the first layer
    (a 3x3 conv straight to `hidden`)."""
    if embed == 0:
        return nn.Sequential(nn.Conv2d(1, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, 1, 1))
    return nn.Sequential(
        nn.Conv2d(1, embed, 3, padding=1), nn.Conv2d(embed, hidden, 1), nn.ReLU(),
        nn.Conv2d(hidden, 1, 1),
    )


@register_model("life-min", inputs=("Bx1xHxW",), defaults={"B": 1, "H": 64, "W": 64})
def min_net(weights: str | None = None, fast: bool = True) -> nn.Module:
    """The smallest exact predictor found by `fastslow life search`, tiny convs as shifts."""
    path = Path(weights) if weights else MIN_WEIGHTS
    ckpt = load_torch_file(path, "life-min weights")
    try:
        net = small_net(int(ckpt["embed"]), int(ckpt["hidden"]))
        net.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise UserError(f"life-min weights {path}: not a `life search` result ({type(e).__name__}: {e})") from None
    net.eval()
    return to_shift_convs(net) if fast else net


def window_size(conv: nn.Conv2d) -> tuple[int, int]:
    kh, kw = conv.kernel_size
    dh, dw = conv.dilation
    return (dh * (kh - 1) + 1, dw * (kw - 1) + 1)


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
            eh, ew = window_size(conv)
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
