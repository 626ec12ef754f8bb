"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download) and a small CNN."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from fastslow.errors import UserError
from fastslow.tasks.base import Task, TaskData, TrainConfig
from fastslow.zoo import register_model

TEST_FRACTION = 0.25


def digits_data(seed: int = 0) -> TaskData:
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise UserError("the digits task needs scikit-learn (pip install 'fastslow[optimize]')") from None
    ds = load_digits()
    x = torch.tensor(ds.images, dtype=torch.float32).unsqueeze(1) / 16.0  # pixel values 0..16
    y = torch.tensor(ds.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(range(len(y)), test_size=TEST_FRACTION, random_state=seed,
                                           stratify=ds.target)
    train = TensorDataset(x[idx_train], y[idx_train])
    return TaskData(train, TensorDataset(x[idx_test], y[idx_test]), TensorDataset(*(t[:256] for t in train.tensors)))


@register_model("digits-cnn", inputs=("Bx1x8x8",), defaults={"B": 64})
def digits_cnn(width: float = 1.0) -> nn.Sequential:
    """A small CNN for 8x8 digits: two conv-BN-ReLU blocks, max-pool, two linear layers."""
    c1, c2, hidden = max(1, round(32 * width)), max(1, round(64 * width)), max(1, round(128 * width))
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 16, hidden), nn.ReLU(), nn.Linear(hidden, 10),
    )


def digits_task() -> Task:
    return Task("digits", digits_cnn, digits_data, "ce", TrainConfig(epochs=15, lr=2e-3),
                make_student=lambda width: digits_cnn(width),
                description="sklearn 8x8 digits, small CNN teacher")
