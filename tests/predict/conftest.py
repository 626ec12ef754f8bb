"""One small real collection for the predictor's tests: corpus models captured and timed on this
machine (tiny budgets: the tests check behaviour, not speed)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from torch import nn

from fastslow.predict.collect import CollectSettings
from fastslow.predict.corpus import FAMILIES, Sample

SMALL = CollectSettings(batches=(1, 2), threads=(1,), runtimes=("eager", "onnx", "int8-dynamic"), budget_s=0.01,
                        min_samples=3)


class DataDependent(nn.Module):
    """Branches on a value: torch.export cannot capture it."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return self.lin(x) if x.sum() > 0 else x


def _broken(rng: random.Random, seed: int) -> Sample:
    return Sample("broken", seed, {}, (4,), DataDependent)


@pytest.fixture(scope="session")
def broken_family():
    """A throw-away family whose models cannot be captured."""
    FAMILIES.add("broken", _broken)
    yield "broken"
    FAMILIES.remove("broken")


@pytest.fixture(scope="session")
def collection(tmp_path_factory: pytest.TempPathFactory, broken_family: str) -> tuple[Path, Path, object]:
    """(collection folder, its results database, the CollectResult) of 2 MLPs, 2 squeeze-excite CNNs,
    2 transformers and a model that cannot be captured."""
    from fastslow.predict.collect import collect

    root = tmp_path_factory.mktemp("collection")
    torch.set_num_threads(1)
    result = collect(root / "data", SMALL, families=["mlp", "cnn-se", "transformer", broken_family], per_family=2,
                     repeat_every=2, store=root / "results.db")
    return root / "data", root / "results.db", result
