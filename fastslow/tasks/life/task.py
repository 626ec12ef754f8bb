"""The life per-cell predictor as an `optimize` task: train and test on all 512 neighbourhoods
(the whole input space, so test accuracy is exactness)."""

from __future__ import annotations

from torch import nn
from torch.utils.data import TensorDataset

from fastslow.tasks.base import FitConfig, Task, TaskData
from fastslow.tasks.life.rules import all_neighbourhoods
from fastslow.zoo.life import HIDDEN, HIDDEN2, percell_net


def life_data(seed: int = 0) -> TaskData:
    x, y = all_neighbourhoods()
    full = TensorDataset(x, y)
    return TaskData(full, full, full)


def life_student(width: float) -> nn.Sequential:
    h1, h2 = max(2, round(HIDDEN * width)), max(2, round(HIDDEN2 * width))
    return nn.Sequential(nn.Conv2d(1, h1, 3), nn.ReLU(), nn.Flatten(), nn.Linear(h1, h2), nn.ReLU(),
                         nn.Linear(h2, 1))


def life_task() -> Task:
    return Task("life", percell_net, life_data, "bce", FitConfig(epochs=300, lr=1e-2, batch_size=64),
                make_student=life_student, description="Game of Life per-cell network on all 512 neighbourhoods")
