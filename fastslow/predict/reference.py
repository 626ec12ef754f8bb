"""The machine's speed at the time a measurement was taken, so that measurements taken minutes
apart can be compared.

On the shared 2-core machines fastslow is built on, the same model measured a minute apart
often differs by 1.5-2x: the whole machine runs fast or slow for stretches of seconds to
minutes (all workloads at once, by the same factor). A latency data set collected over half an
hour carries that drift in its labels, and no predictor can learn it. So every group of
configurations is timed interleaved with a small fixed network, the *speed reference* (a
convolution, a ReLU and two Linear layers: a few operators, so it has dispatch overhead and
arithmetic both), and each configuration's time is also kept relative to it, block by block
(the timer pairs samples by round). Measured here, over a minute of such swings: raw medians
of three corpus models agreed with their own median within ±10% 21-54% of the time; relative
to the reference, 69-95%.

The reference is timed in each group of configurations that share a thread pool (torch at 1
thread, ONNX Runtime at 1, torch at 2, ...), and what it measures depends on the group: beside
ONNX Runtime its time differs from beside torch. So a collection's nominal speed is, per kind of
group (`group_kind`), the median of the reference's times in groups of that kind; a model's
latency "at the collection's speed" is its relative time times its group kind's nominal.
`fastslow predict --verify` measures the reference beside the model, so it can say both what
it timed and what that is at the speed the predictor was trained at.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fastslow.measure.stats import Measurement
from fastslow.measure.timer import Workload
from fastslow.predict.configs import Config

LABEL = "speed reference"


class SpeedReference(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(16, 16, 3, padding=1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16 * 16, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.head(torch.relu(self.conv(x)))


def reference_workload(threads: int) -> Workload:
    """The speed reference on `threads` torch threads, seeded: the same network everywhere."""
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = SpeedReference().eval()
    x = torch.randn(1, 16, 16, 16, generator=gen)
    return Workload(lambda: model(x), "cpu", threads, track_memory=False, label=LABEL)


def group_kind(c: Config) -> str:
    """Which thread pool a configuration runs on: its threads and torch or ONNX Runtime ("1t-torch")."""
    return f"{c.threads}t-{'onnx' if c.runtime == 'onnx' else 'torch'}"


def reference_threads(c: Config) -> int:
    """The reference's torch threads beside a configuration: its own in a torch group; 1 beside
    ONNX Runtime, whose threads keep spinning between calls (a second torch pool beside them was
    measured 16x slower than alone on 2 cores, one thread as fast as alone)."""
    return 1 if c.runtime == "onnx" else c.threads


def relative(m: Measurement, reference: list[float]) -> float:
    """The median over rounds of the model's sample over the reference's sample of the same round."""
    n = min(len(m.samples_s), len(reference))
    return float(np.median(np.asarray(m.samples_s[:n]) / np.asarray(reference[:n])))
