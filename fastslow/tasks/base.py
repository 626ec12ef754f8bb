"""The shape every task has: data, a model factory, a training loop, an evaluation.

`optimize` needs nothing else from a task, so a user's own task is a function returning a
`Task` (`--task mypkg.tasks:make_task`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fastslow.errors import UserError, check_number, param_error, raise_dropped_stop

Predict = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class TaskData:
    train: TensorDataset
    test: TensorDataset
    calibration: TensorDataset  # a few training batches, for static quantization

    def batch(self, size: int) -> torch.Tensor:
        """`size` test inputs (cycled if the test set is smaller): what timing runs on."""
        x = self.test.tensors[0]
        reps = -(-size // x.shape[0])
        return x.repeat(reps, *[1] * (x.dim() - 1))[:size].contiguous()


@dataclass
class FitConfig:
    """How `fit`, the one training loop every task uses, trains."""

    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0
    weight_decay: float = 0.0
    optimizer: str = "adam"  # or "sgd" (the tutorials' loops: plain SGD with momentum)
    momentum: float = 0.0  # sgd only

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise param_error(name, f"must be >= 1 (got {getattr(self, name)})")
        check_number("lr", self.lr)
        check_number("momentum", self.momentum, low_open=False)
        check_number("weight_decay", self.weight_decay, low_open=False)
        if self.optimizer not in ("adam", "sgd"):
            raise param_error("optimizer", f"value '{self.optimizer}' is unknown (known: adam, sgd)")


@dataclass
class Task:
    """A classification task: logits out, `loss` "ce" (classes) or "bce" (one logit)."""

    name: str
    make_model: Callable[[], nn.Module]
    make_data: Callable[[int], TaskData]
    loss: str = "ce"
    train_config: FitConfig = field(default_factory=FitConfig)
    make_student: Callable[[float], nn.Module] | None = None  # width fraction -> smaller model
    description: str = ""

    def __post_init__(self) -> None:
        if self.loss not in ("ce", "bce"):
            raise UserError(f"task {self.name}: 'loss' must be 'ce' or 'bce' (got {self.loss!r})")

    def build_model(self) -> nn.Module:
        """The task's model, initialised from the task's seed (so runs are repeatable)."""
        torch.manual_seed(self.train_config.seed)
        return self.make_model()

    def train(self, model: nn.Module, data: TaskData, cfg: FitConfig | None = None,
              teacher: Predict | None = None, temperature: float = 4.0, alpha: float = 0.9) -> nn.Module:
        return fit(model, data.train, self.loss, cfg or self.train_config, teacher, temperature, alpha)

    def evaluate(self, predict: Predict, data: TaskData) -> float:
        return accuracy(predict, data.test, self.loss)


def task_loss(logits: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "ce":
        return F.cross_entropy(logits, y)
    return F.binary_cross_entropy_with_logits(logits.reshape(-1), y.float().reshape(-1))


def distillation_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor, loss: str,
                      temperature: float, alpha: float) -> torch.Tensor:
    """alpha · soft-target loss at temperature T (scaled by T², Hinton et al. 2015) + (1 - alpha) · hard loss."""
    t = temperature
    if loss == "ce":
        soft = F.kl_div(F.log_softmax(logits / t, -1), F.softmax(teacher_logits / t, -1), reduction="batchmean")
    else:
        soft = F.binary_cross_entropy_with_logits(logits.reshape(-1) / t, torch.sigmoid(teacher_logits.reshape(-1) / t))
    return alpha * soft * t * t + (1 - alpha) * task_loss(logits, y, loss)


def fit(model: nn.Module, train: TensorDataset, loss: str, cfg: FitConfig, teacher: Predict | None = None,
        temperature: float = 4.0, alpha: float = 0.9, *, forward: Callable[[nn.Module, torch.Tensor], torch.Tensor]
        | None = None, on_epoch: Callable[[int, float], bool | None] | None = None) -> nn.Module:
    """The one training loop: minibatches in a seeded order, Adam or SGD on the task loss (or the
    distillation loss when a teacher is given). `forward` turns a batch into logits (default:
    the model's call); `on_epoch(epoch, mean loss)` may return True to stop early."""
    torch.manual_seed(cfg.seed)
    loader = DataLoader(train, batch_size=cfg.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(cfg.seed))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay) if cfg.optimizer == "adam"
           else torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay))
    run = forward or (lambda m, x: m(x))
    model.train()
    for epoch in range(1, cfg.epochs + 1):
        raise_dropped_stop()  # a Ctrl-C or SIGTERM that Python dropped stops here
        total, seen = 0.0, 0
        for x, y in loader:
            logits = run(model, x)
            if teacher is not None:
                with torch.no_grad():
                    t_logits = teacher(x)
                value = distillation_loss(logits, t_logits, y, loss, temperature, alpha)
            else:
                value = task_loss(logits, y, loss)
            opt.zero_grad()
            value.backward()
            opt.step()
            if on_epoch is not None:
                total += value.item() * x.shape[0]
                seen += x.shape[0]
        if on_epoch is not None and on_epoch(epoch, total / max(seen, 1)):
            break
    return model.eval()


def accuracy(predict: Predict, data: TensorDataset, loss: str, batch_size: int = 512) -> float:
    x, y = data.tensors
    correct = 0
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch_size):
            out = predict(x[i : i + batch_size]).float()
            if loss == "ce":
                pred = out.argmax(-1)
            else:
                pred = (out.reshape(-1) > 0).long()
            correct += int((pred == y[i : i + batch_size].reshape(-1).long()).sum())
    return correct / x.shape[0]
