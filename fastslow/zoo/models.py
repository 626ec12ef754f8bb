"""Small built-in models: enough to exercise every part of fastslow without downloads, and the
models of the xor and digits tasks (the tasks import them from here)."""

from __future__ import annotations

import torch
from torch import nn

from fastslow.zoo import register_model


@register_model("mlp", inputs=("Bx256",), defaults={"B": 64})
def mlp(in_features: int = 256, hidden: int = 512, depth: int = 3, classes: int = 10) -> nn.Module:
    """A Linear-heavy MLP (ReLU between layers)."""
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth - 1):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


@register_model("convnet", inputs=("Bx3xHxW",), defaults={"B": 1, "H": 32, "W": 32})
def convnet(channels: int = 32, classes: int = 10) -> nn.Module:
    """A small conv net: three conv-BN-ReLU blocks, global pooling, a linear head."""
    c = channels
    return nn.Sequential(
        nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
        nn.Conv2d(c, 2 * c, 3, padding=1, stride=2), nn.BatchNorm2d(2 * c), nn.ReLU(),
        nn.Conv2d(2 * c, 4 * c, 3, padding=1, stride=2), nn.BatchNorm2d(4 * c), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * c, classes),
    )


class MatMul(nn.Module):
    """x @ W for a square weight: the tutorial's matmul, as a model."""

    def __init__(self, n: int = 512) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, n) / n**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


@register_model("matmul", inputs=("Nx512",), defaults={"N": 512})
def matmul(n: int = 512) -> nn.Module:
    """x @ W with a square n×n weight."""
    return MatMul(n)


class Scale(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2.0 + 1.0


@register_model("elementwise", inputs=("N",), defaults={"N": 1024})
def elementwise() -> nn.Module:
    """x * 2 + 1: a tiny elementwise op, dominated by per-call overhead."""
    return Scale()


@register_model("xor", inputs=("Bx2",), defaults={"B": 32})
def xor_net(hidden: int = 4) -> nn.Sequential:
    """The tutorial's 2-4-1 classifier: tanh hidden layer, one logit out."""
    return nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 1))


@register_model("digits-cnn", inputs=("Bx1x8x8",), defaults={"B": 64})
def digits_cnn(width: float = 1.0) -> nn.Sequential:
    """A small CNN for 8x8 digits: two conv-BN-ReLU blocks, max-pool, two linear layers."""
    c1, c2, hidden = max(1, round(32 * width)), max(1, round(64 * width)), max(1, round(128 * width))
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 16, hidden), nn.ReLU(), nn.Linear(hidden, 10),
    )
