"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download), learned by
zoo:digits-cnn."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from fastslow.errors import UserError
from fastslow.tasks.base import FitConfig, Task, TaskData
from fastslow.zoo.models import digits_cnn

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


def digits_task() -> Task:
    return Task("digits", digits_cnn, digits_data, "ce", FitConfig(epochs=15, lr=2e-3),
                make_student=lambda width: digits_cnn(width),
                description="sklearn 8x8 digits, small CNN teacher")
