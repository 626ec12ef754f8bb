"""The continuous-XOR classifier as an `optimize` task."""

from __future__ import annotations

from torch import nn

from fastslow.tasks.base import FitConfig, Task, TaskData
from fastslow.tasks.xor.train import XorConfig, make_data
from fastslow.zoo.models import xor_net


def xor_data(seed: int = 0) -> TaskData:
    cfg = XorConfig(seed=seed)
    train = make_data(cfg.n_train, cfg.noise, cfg.seed, cfg.data)
    return TaskData(train, make_data(cfg.n_test, cfg.noise, cfg.seed + 1, cfg.data), train)


def xor_student(width: float) -> nn.Sequential:
    return xor_net(hidden=max(2, round(4 * width)))


def xor_task() -> Task:
    return Task("xor", xor_net, xor_data, "bce", FitConfig(epochs=60, lr=1e-2, batch_size=32),
                make_student=xor_student, description="continuous XOR (the tutorial's noisy corners), 2-4-1 tanh")
