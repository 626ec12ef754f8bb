"""Training a life network on all 512 neighbourhoods, to 100% accuracy, deterministically."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from fastslow.errors import UserError, check_number
from fastslow.specs import load_torch_file
from fastslow.tasks.base import FitConfig, fit
from fastslow.tasks.life.rules import all_neighbourhoods
from fastslow.zoo.life import fc_net, percell_net


@dataclass
class LifeTrainConfig:
    """Plain SGD with momentum on BCE-with-logits, as the notebook trains."""

    epochs: int = 1000  # at most; training stops once every neighbourhood is right
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"'{name}' must be >= 1 (got {getattr(self, name)})")
        check_number("lr", self.lr)
        check_number("momentum", self.momentum, low_open=False)


@dataclass
class LifeTrainResult:
    accuracy: float
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: loss, accuracy

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "epochs": self.epochs}


def neighbourhood_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One logit per (N, 1, 3, 3) neighbourhood from either network shape: the per-cell net
    gives (N, 1); a fully-convolutional net gives a 3x3 map whose centre sees exactly the
    neighbourhood (its padding lies outside the centre's window)."""
    out = model(x)
    if out.dim() == 4:
        out = out[:, :, out.shape[2] // 2, out.shape[3] // 2]
    return out.reshape(-1)


def accuracy_on_all(model: nn.Module) -> float:
    x, y = all_neighbourhoods()
    with torch.no_grad():
        return float(((neighbourhood_logits(model, x) > 0).float() == y).float().mean())


def train_life(
    model: nn.Module, cfg: LifeTrainConfig | None = None,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> LifeTrainResult:
    """Train in place with the tasks' shared loop (`fit`: plain SGD with momentum on BCE, as the
    notebook trains) until every one of the 512 neighbourhoods is predicted right."""
    cfg = cfg or LifeTrainConfig()
    torch.manual_seed(cfg.seed)
    for m in model.modules():
        if hasattr(m, "reset_parameters") and m is not model:
            m.reset_parameters()  # seeded initialisation, whatever the model was before
    history: list[dict[str, float]] = []

    def epoch_done(epoch: int, loss: float) -> bool:
        acc = accuracy_on_all(model)
        history.append({"epoch": epoch, "loss": loss, "accuracy": acc})
        if on_epoch:
            on_epoch(epoch, loss, acc)
        return acc == 1.0

    x, y = all_neighbourhoods()
    fit(model, TensorDataset(x, y), "bce", FitConfig(cfg.epochs, cfg.lr, cfg.batch_size, cfg.seed,
                                                     optimizer="sgd", momentum=cfg.momentum),
        forward=neighbourhood_logits, on_epoch=epoch_done)
    return LifeTrainResult(history[-1]["accuracy"], len(history), history)


def save_checkpoint(path: Path, kind: str, model: nn.Module, result: LifeTrainResult,
                    cfg: LifeTrainConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"kind": kind, "state_dict": model.state_dict(), "config": asdict(cfg),
                "accuracy": result.accuracy, "epochs": result.epochs}, path)


FACTORIES = {"percell": percell_net, "fc": fc_net}


def load_checkpoint(path: Path) -> tuple[str, nn.Module]:
    ckpt = load_torch_file(path, "checkpoint")
    try:
        kind = ckpt["kind"]
        model = FACTORIES[kind]()
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, RuntimeError, TypeError) as e:
        raise UserError(f"checkpoint {path}: not a life checkpoint ({type(e).__name__}: {e})") from None
    return kind, model.eval()


def train_both(cfg: LifeTrainConfig, out: Path | None = None,
               on_epoch: Callable[[str, int, float, float], None] | None = None,
               ) -> dict[str, tuple[nn.Module, LifeTrainResult]]:
    """Train the per-cell and the fully-convolutional network; save checkpoints under `out`."""
    trained = {}
    for kind, factory in FACTORIES.items():
        model = factory()
        result = train_life(model, cfg, (lambda e, loss, a, k=kind: on_epoch(k, e, loss, a)) if on_epoch else None)
        if out is not None:
            save_checkpoint(out / f"{kind}.pt", kind, model, result, cfg)
        trained[kind] = (model, result)
    return trained
