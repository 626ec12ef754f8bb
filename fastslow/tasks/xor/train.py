"""Continuous XOR, as the tutorial defines it: points drawn at the four corners of {0, 1}²,
labelled 1 where exactly one coordinate is 1, then moved by Gaussian noise of std 0.1; 2,500
training and 500 test points, batches of 128, the 2-4-1 tanh classifier, plain SGD at lr 0.1
for 100 epochs. The classes stay apart, and the tutorial reports 100% test accuracy.

`data="square"` is round 1's variant: points uniform over [-1, 1]², labelled by the signs of
their coordinates before the noise, so labels near the axes are noisy (about 92% is the ceiling).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from fastslow.errors import UserError, check_number
from fastslow.tasks.base import FitConfig, fit
from fastslow.zoo.models import xor_net

DATA_SHAPES = ("corners", "square")


@dataclass
class XorConfig:
    n_train: int = 2500
    n_test: int = 500
    noise: float = 0.1  # std of the Gaussian noise added to each coordinate
    epochs: int = 100
    batch_size: int = 128
    lr: float = 0.1  # plain SGD, as the tutorial's loop
    momentum: float = 0.0
    seed: int = 0
    data: str = "corners"  # the tutorial's; "square": uniform over [-1, 1]^2

    def __post_init__(self) -> None:
        if self.data not in DATA_SHAPES:
            raise UserError(f"'data' value '{self.data}' is unknown (known: {', '.join(DATA_SHAPES)})")
        for name in ("n_train", "n_test", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"'{name}' must be >= 1 (got {getattr(self, name)})")
        check_number("noise", self.noise, low_open=False)
        check_number("lr", self.lr)
        check_number("momentum", self.momentum, low_open=False)


def make_data(n: int, noise: float, seed: int, shape: str = "corners") -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    if shape == "corners":
        x = torch.randint(0, 2, (n, 2), generator=g).float()
        y = (x.sum(1) == 1).float()
    else:
        x = torch.rand(n, 2, generator=g) * 2 - 1
        y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).float()
    return TensorDataset(x + noise * torch.randn(n, 2, generator=g), y)


def evaluate(model: nn.Module, data: TensorDataset) -> float:
    x, y = data.tensors
    with torch.no_grad():
        return float(((model(x).squeeze(1) > 0).float() == y).float().mean())


@dataclass
class XorResult:
    model: nn.Module
    test_accuracy: float
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    test: TensorDataset | None = None
    saved: Any = field(default=None, repr=False)  # where the API stored the run

    def to_dict(self) -> dict[str, Any]:
        return {"test_accuracy": self.test_accuracy, "epochs": self.epochs,
                "final_loss": self.history[-1]["loss"] if self.history else None}


def train_xor(cfg: XorConfig | None = None,
              on_epoch: Callable[[int, float], None] | None = None) -> XorResult:
    """The tutorial's loop, which is the tasks' shared one (`fit`) with SGD and momentum."""
    cfg = cfg or XorConfig()
    torch.manual_seed(cfg.seed)
    train = make_data(cfg.n_train, cfg.noise, cfg.seed, cfg.data)
    test = make_data(cfg.n_test, cfg.noise, cfg.seed + 1, cfg.data)
    model = xor_net()
    history: list[dict[str, float]] = []

    def epoch_done(epoch: int, loss: float) -> None:
        history.append({"epoch": epoch, "loss": loss})
        if on_epoch:
            on_epoch(epoch, loss)

    fit(model, train, "bce", FitConfig(cfg.epochs, cfg.lr, cfg.batch_size, cfg.seed, optimizer="sgd",
                                       momentum=cfg.momentum), on_epoch=epoch_done)
    return XorResult(model, evaluate(model, test), cfg.epochs, history, test)
