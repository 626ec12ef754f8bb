"""A seeded corpus of varied architectures for learning latency: every sample names its family,
its architecture parameters and its input, and builds the same model from the same seed.

The search space (one function per family, each a registered generator):

* `cnn-plain`, `cnn-residual`, `cnn-depthwise`, `cnn-se`: a stem convolution, then 1-4 stages
  of 1-3 blocks (plain conv-BN-ReLU; a residual pair; a depthwise-separable pair; a plain block
  with squeeze-and-excitation), widths 8-96 doubling or not per stage, kernel 3 or 5, the first
  block of a stage strided 1 or 2, grouped convolutions (groups 1, 2 or 4) in the plain family;
  global pooling and a linear head. Inputs Bx3xHxH with H in 16-96.
* `mlp`: 1-5 Linear+ReLU layers, widths 16-1024; inputs BxD with D in 16-512.
* `transformer`: 1-4 encoder layers (torch's TransformerEncoderLayer, batch first), width
  32-256, heads 1-8 dividing it, feed-forward 2x or 4x, sequence length 8-128.
* `rnn`: a one or two layer LSTM or GRU, hidden 16-256, sequence 4-64, features 8-128.

Batch size is not part of a sample: it is a configuration (see the predictor's configurations).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from fastslow.registry import Registry


@dataclass
class Sample:
    """One corpus entry: a family, its parameters, and the input shape without the batch."""

    family: str
    seed: int
    params: dict[str, Any]
    input_shape: tuple[int, ...]  # after the batch dimension
    build: Callable[[], nn.Module] = field(repr=False, compare=False, default=lambda: nn.Identity())

    @property
    def name(self) -> str:
        return f"{self.family}-{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "seed": self.seed, "params": self.params,
                "input_shape": list(self.input_shape)}


Generator = Callable[[random.Random, int], Sample]
FAMILIES: Registry[Generator] = Registry("architecture family")


def _widths(rng: random.Random, stages: int) -> list[int]:
    w = rng.choice([8, 12, 16, 24, 32])
    out = []
    for _ in range(stages):
        out.append(min(w, 96))
        w = w * 2 if rng.random() < 0.7 else w
    return out


def _cnn_params(rng: random.Random) -> dict[str, Any]:
    stages = rng.randint(1, 4)
    return {"stages": stages, "blocks": [rng.randint(1, 3) for _ in range(stages)], "widths": _widths(rng, stages),
            "kernel": rng.choice([3, 5]), "strides": [rng.choice([1, 2]) for _ in range(stages)],
            "groups": rng.choice([1, 2, 4]), "size": rng.choice([16, 24, 32, 48, 64, 96])}


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(4, channels // reduction)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(),
                                  nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x):  # noqa: ANN001, ANN201
        return x * self.gate(x)


class Residual(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, pad, bias=False), nn.BatchNorm2d(c_out),
                                  nn.ReLU(), nn.Conv2d(c_out, c_out, kernel, 1, pad, bias=False), nn.BatchNorm2d(c_out))
        self.skip = (nn.Identity() if c_in == c_out and stride == 1
                     else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x):  # noqa: ANN001, ANN201
        return (self.body(x) + self.skip(x)).relu()


def _block(kind: str, c_in: int, c_out: int, kernel: int, stride: int, groups: int) -> nn.Module:
    pad = kernel // 2
    if kind == "residual":
        return Residual(c_in, c_out, kernel, stride)
    if kind == "depthwise":
        return nn.Sequential(nn.Conv2d(c_in, c_in, kernel, stride, pad, groups=c_in, bias=False), nn.BatchNorm2d(c_in),
                             nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())
    g = groups if kind == "plain" and c_in % groups == 0 and c_out % groups == 0 else 1
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, pad, groups=g, bias=False),
                               nn.BatchNorm2d(c_out), nn.ReLU()]
    if kind == "se":
        layers.append(SqueezeExcite(c_out))
    return nn.Sequential(*layers)


def _cnn(kind: str) -> Generator:
    def generate(rng: random.Random, seed: int) -> Sample:
        p = _cnn_params(rng)

        def build() -> nn.Module:
            c = p["widths"][0]
            layers: list[nn.Module] = [nn.Conv2d(3, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            for s in range(p["stages"]):
                for b in range(p["blocks"][s]):
                    layers.append(_block(kind, c, p["widths"][s], p["kernel"], p["strides"][s] if b == 0 else 1,
                                         p["groups"]))
                    c = p["widths"][s]
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10)]
            return nn.Sequential(*layers)

        return Sample(f"cnn-{kind}", seed, p, (3, p["size"], p["size"]), build)
    return generate


for _kind in ("plain", "residual", "depthwise", "se"):
    FAMILIES.add(f"cnn-{_kind}", _cnn(_kind))


@FAMILIES.register("mlp")
def _mlp(rng: random.Random, seed: int) -> Sample:
    p = {"in": rng.choice([16, 32, 64, 128, 256, 512]),
         "widths": [rng.choice([16, 32, 64, 128, 256, 512, 1024]) for _ in range(rng.randint(1, 5))]}

    def build() -> nn.Module:
        layers: list[nn.Module] = []
        d = p["in"]
        for w in p["widths"]:
            layers += [nn.Linear(d, w), nn.ReLU()]
            d = w
        return nn.Sequential(*layers, nn.Linear(d, 10))

    return Sample("mlp", seed, p, (p["in"],), build)


@FAMILIES.register("transformer")
def _transformer(rng: random.Random, seed: int) -> Sample:
    width = rng.choice([32, 64, 96, 128, 192, 256])
    p = {"layers": rng.randint(1, 4), "width": width, "heads": rng.choice([h for h in (1, 2, 4, 8) if width % h == 0]),
         "ff": rng.choice([2, 4]) * width, "seq": rng.choice([8, 16, 32, 64, 128])}

    def build() -> nn.Module:
        layer = nn.TransformerEncoderLayer(p["width"], p["heads"], p["ff"], dropout=0.0, batch_first=True)
        return nn.TransformerEncoder(layer, p["layers"], enable_nested_tensor=False)

    return Sample("transformer", seed, p, (p["seq"], p["width"]), build)


class _Recurrent(nn.Module):
    def __init__(self, cell: str, features: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(features, hidden, layers, batch_first=True)

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.rnn(x)[0]


@FAMILIES.register("rnn")
def _rnn(rng: random.Random, seed: int) -> Sample:
    p = {"cell": rng.choice(["lstm", "gru"]), "layers": rng.randint(1, 2), "hidden": rng.choice([16, 32, 64, 128, 256]),
         "seq": rng.choice([4, 8, 16, 32, 64]), "features": rng.choice([8, 16, 32, 64, 128])}
    return Sample("rnn", seed, p, (p["seq"], p["features"]),
                  lambda: _Recurrent(p["cell"], p["features"], p["hidden"], p["layers"]))


def sample(family: str, seed: int) -> Sample:
    """The corpus entry of `family` drawn with `seed`: the same one every time."""
    return FAMILIES.get(family)(random.Random(f"{family}:{seed}"), seed)


def corpus(per_family: int, families: list[str] | None = None, *, first_seed: int = 0) -> list[Sample]:
    """`per_family` samples of each family (all registered ones by default), interleaved by seed."""
    names = families or FAMILIES.names()
    return [sample(f, s) for s in range(first_seed, first_seed + per_family) for f in names]
