"""A seeded corpus of varied architectures for learning latency: every sample names its family,
its architecture parameters and its input, and builds the same model from the same seed.

The search space (one function per family, each a registered generator):

* `cnn-plain`, `cnn-residual`, `cnn-depthwise`, `cnn-se`: a stem convolution, then 1-4 stages
  of 1-3 blocks (plain conv-BN-ReLU; a residual pair; a depthwise-separable pair; a plain block
  with squeeze-and-excitation), widths 8-96 doubling or not per stage, kernel 3 or 5, the first
  block of a stage strided 1 or 2, grouped convolutions (groups 1, 2 or 4) in the plain family;
  global pooling and a linear head. Inputs Bx3xHxH with H in 16-96. Draws above
  CNN_MAX_MACS multiply-accumulates per image are drawn again (same seed, next draw), so that
  batch 32 stays a fraction of a second on one core.
* `cnn-large`: the same four kinds of block (one per sample), widths 16-256, at the sizes of
  real image models: inputs of 112-224 pixels, between LARGE_MACS multiply-accumulates per
  image (30M-300M, where the four families above stop at 30M), so that a predictor has seen
  the work of a mobile-class network at 224x224 rather than extrapolating to it.
* `mlp`: 1-5 Linear+ReLU layers, widths 16-1024; inputs BxD with D in 16-512.
* `transformer`: 1-4 encoder layers (torch's TransformerEncoderLayer, batch first), width
  32-256, heads 1-8 dividing it, feed-forward 2x or 4x, sequence length 8-128.
* `rnn`: a one or two layer LSTM or GRU, hidden 16-256, sequence 4-64, features 8-128.
* `zoo`: fastslow's own models that take one float input with a batch dimension, at the
  zoo's default sizes, then at other image sizes.
* `torchvision`, `timm` (where they import): real mobile-class architectures (MobileNets,
  ShuffleNets, RegNets, EfficientNets, ...) with random weights, at 32-64 pixels, each size
  kept below about 40M multiply-accumulates per image.

Batch size is not part of a sample: it is a configuration (see the predictor's configurations).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from fastslow.errors import UserError
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


def _widths(rng: random.Random, stages: int, first: list[int], widest: int) -> list[int]:
    w = rng.choice(first)
    out = []
    for _ in range(stages):
        out.append(min(w, widest))
        w = w * 2 if rng.random() < 0.7 else w
    return out


CNN_MAX_MACS = 30e6
# cnn-large: the same blocks at the sizes of mobile-class image models at 112-224 pixels (MobileNetV2
# at 224x224 is 0.3G): the per-image range it draws from. At 1e9 its batch-16 calls took up to 1.5 s
# on one core, and a 30-minute collection could afford few of them.
LARGE_MACS = (CNN_MAX_MACS, 300e6)


def _cnn_macs(kind: str, p: dict[str, Any]) -> float:
    """Multiply-accumulates of one image through the network `p` describes (convolutions only)."""
    size, c, k = p["size"], p["widths"][0], p["kernel"] ** 2
    macs = size * size * 9 * 3 * c  # the stem
    for s in range(p["stages"]):
        for b in range(p["blocks"][s]):
            out = p["widths"][s]
            if b == 0 and p["strides"][s] == 2:
                size = (size + 1) // 2
            area = size * size
            if kind == "residual":
                macs += area * k * (c * out + out * out) + (area * c * out if c != out or b == 0 else 0)
            elif kind == "depthwise":
                macs += area * (k * c + c * out)
            else:
                macs += area * k * c * out / (p["groups"] if kind == "plain" else 1)
            c = out
    return macs


def _cnn_params(kind: str, rng: random.Random, *, large: bool = False) -> dict[str, Any]:
    (low, high), first, widest, sizes = ((LARGE_MACS, [16, 24, 32, 48, 64], 256, [112, 128, 160, 192, 224]) if large
                                         else ((0.0, CNN_MAX_MACS), [8, 12, 16, 24, 32], 96, [16, 24, 32, 48, 64, 96]))
    while True:
        stages = rng.randint(1, 4)
        p = {"stages": stages, "blocks": [rng.randint(1, 3) for _ in range(stages)],
             "widths": _widths(rng, stages, first, widest),
             "kernel": rng.choice([3, 5]), "strides": [rng.choice([1, 2]) for _ in range(stages)],
             "groups": rng.choice([1, 2, 4]), "size": rng.choice(sizes)}
        if low < _cnn_macs(kind, p) <= high:
            return p


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


def _cnn_model(kind: str, p: dict[str, Any]) -> nn.Module:
    c = p["widths"][0]
    layers: list[nn.Module] = [nn.Conv2d(3, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    for s in range(p["stages"]):
        for b in range(p["blocks"][s]):
            layers.append(_block(kind, c, p["widths"][s], p["kernel"], p["strides"][s] if b == 0 else 1, p["groups"]))
            c = p["widths"][s]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10)]
    return nn.Sequential(*layers)


CNN_KINDS = ("plain", "residual", "depthwise", "se")


def _cnn(kind: str) -> Generator:
    def generate(rng: random.Random, seed: int) -> Sample:
        p = _cnn_params(kind, rng)
        return Sample(f"cnn-{kind}", seed, p, (3, p["size"], p["size"]), lambda: _cnn_model(kind, p))
    return generate


for _kind in CNN_KINDS:
    FAMILIES.add(f"cnn-{_kind}", _cnn(_kind))


@FAMILIES.register("cnn-large")
def _cnn_large(rng: random.Random, seed: int) -> Sample:
    kind = rng.choice(CNN_KINDS)
    p = {"block": kind, **_cnn_params(kind, rng, large=True)}
    return Sample("cnn-large", seed, p, (3, p["size"], p["size"]), lambda: _cnn_model(kind, p))


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


def _zoo_variants() -> list[tuple[str, tuple[int, ...], dict[str, int]]]:
    """(name, input shape after the batch, sizes) for the zoo models with one float input whose
    first dimension is the batch symbol B: at the zoo's defaults, then the image models at
    other sizes."""
    from fastslow.specs import parse_input
    from fastslow.zoo import get_entry, list_models

    first, later = [], []
    for name in list_models():
        entry = get_entry(name)
        spec = parse_input(entry.inputs[0]) if len(entry.inputs) == 1 else None
        if spec is None or not spec.dims or spec.dims[0] != "B" or not spec.dtype.is_floating_point:
            continue
        sizes = {k: v for k, v in entry.defaults.items() if k != "B"}
        first.append((name, spec.shape({**sizes, "B": 1})[1:], sizes))
        if "H" in sizes and "W" in sizes:
            for side in (16, 48, 96):
                if side != sizes["H"]:
                    other = {**sizes, "H": side, "W": side}
                    later.append((name, spec.shape({**other, "B": 1})[1:], other))
    return first + later


@FAMILIES.register("zoo")
def _zoo(rng: random.Random, seed: int) -> Sample:
    from fastslow.zoo import create_model

    name, shape, sizes = _zoo_variants()[seed]
    return Sample("zoo", seed, {"model": name, "sizes": sizes}, tuple(shape), lambda: create_model(name))


# Real architectures at sizes whose multiply-accumulates stay below ~40M per image (the larger
# ones at 32 pixels only), each (model, size) once: a family of fixed members.
TORCHVISION_MODELS = {"mobilenet_v2": (32, 48, 64), "mobilenet_v3_small": (32, 48, 64), "mobilenet_v3_large": (32, 64),
                      "shufflenet_v2_x0_5": (32, 64), "shufflenet_v2_x1_0": (32, 64), "squeezenet1_1": (32, 64),
                      "mnasnet0_5": (32, 64), "regnet_x_400mf": (32, 48), "regnet_y_400mf": (32, 48),
                      "efficientnet_b0": (32, 48), "resnet18": (32,), "googlenet": (32,)}
TIMM_MODELS = {"mobilenetv3_small_050": (32, 64), "mobilenetv3_small_100": (32, 64), "lcnet_050": (32, 64),
               "lcnet_100": (32, 64), "efficientnet_lite0": (32, 48), "resnet10t": (32,), "mixnet_s": (32, 64),
               "tinynet_e": (32, 64), "ghostnet_050": (32, 64), "regnetx_002": (32, 64), "mobilevit_xxs": (32, 64),
               "convnext_atto": (32, 48), "dla46_c": (32, 64), "semnasnet_050": (32, 64)}


def _members(models: dict[str, tuple[int, ...]]) -> list[tuple[str, int]]:
    """(model, size) pairs, every model at its first size before any at its second."""
    rounds = max(len(sizes) for sizes in models.values())
    return [(name, sizes[r]) for r in range(rounds) for name, sizes in models.items() if r < len(sizes)]


def _real(source: str, models: dict[str, tuple[int, ...]]) -> Generator:
    def generate(rng: random.Random, seed: int) -> Sample:
        from fastslow.zoo import resolve_model

        name, size = _members(models)[seed]

        def build() -> nn.Module:
            with warnings.catch_warnings():  # the libraries' notes on their own defaults (googlenet's init)
                warnings.simplefilter("ignore", FutureWarning)
                return resolve_model(f"{source}:{name}").model
        return Sample(source, seed, {"model": f"{source}:{name}", "size": size}, (3, size, size), build)
    return generate


FAMILIES.add("torchvision", _real("torchvision", TORCHVISION_MODELS))
FAMILIES.add("timm", _real("timm", TIMM_MODELS))


def family_size(family: str) -> int | None:
    """How many distinct members a family has (None: as many as there are seeds)."""
    if family == "zoo":
        return len(_zoo_variants())
    if family in ("torchvision", "timm"):
        return len(_members(TORCHVISION_MODELS if family == "torchvision" else TIMM_MODELS))
    return None


SYNTHETIC = ("cnn-plain", "cnn-residual", "cnn-depthwise", "cnn-se", "cnn-large", "mlp", "transformer", "rnn")


def available_families() -> list[str]:
    """Every family that can be built here: timm and torchvision only where they import."""
    from fastslow.zoo.resolvers import import_optional

    out = []
    for name in FAMILIES:
        if name in ("timm", "torchvision"):
            try:
                import_optional(name)
            except UserError:
                continue
        out.append(name)
    return out


def sample(family: str, seed: int) -> Sample:
    """The corpus entry of `family` drawn with `seed`: the same one every time."""
    generate = FAMILIES.get(family)
    size = family_size(family)
    if seed < 0 or (size is not None and seed >= size):
        raise UserError(f"family '{family}' has {size} members: seed {seed} is not one of 0..{(size or 1) - 1}")
    return generate(random.Random(f"{family}:{seed}"), seed)


def corpus(per_family: int, families: list[str] | None = None, *, first_seed: int = 0) -> list[Sample]:
    """`per_family` samples of each family (the synthetic ones by default), interleaved by seed;
    a family with fewer members gives all it has."""
    names = families or list(SYNTHETIC)
    for f in names:
        FAMILIES.get(f)  # an unknown family lists the known ones
    limits = {f: family_size(f) for f in names}
    return [sample(f, s) for s in range(first_seed, first_seed + per_family) for f in names
            if limits[f] is None or s < limits[f]]
