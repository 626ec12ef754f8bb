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

Of each measurement's samples (block means) a collection keeps the fastest (`fastest`): the
model's fastest over the reference's fastest. On a busy 2-core AMD EPYC machine, of a 24-minute
collection's 312 repeated measurements (the same model and configuration timed again minutes
later), 74.4% agreed within ±10% that way, against 62.8% for the median over rounds of the
model's time over the reference's (the statistic before), 51.0% for raw medians and 73.4% for
raw minimums; ±20%: 84.6%, 78.2%, 66.3%, 83.3%.

The reference is timed in each group of configurations that share a thread pool (torch at 1
thread, ONNX Runtime at 1, torch at 2, ...), and what it measures depends on the group: beside
ONNX Runtime its time differs from beside torch. So a collection's nominal speed is, per kind of
group (`group_kind`), the median of the reference's (fastest) times in groups of that kind; a
model's latency "at the collection's speed" is its relative time times its group kind's nominal.
`fastslow predict --verify` measures the reference beside the model, so it can say both what
it timed and what that is at the speed the predictor was trained at.

Each of the reference's blocks (and each short model's) follows one untimed call of its own
(`TimerConfig.block_warmup_calls`, format 8). Without it, a block began on the caches the model
beside it had just filled, and the bigger the model the slower the reference ran: in a 24-minute
collection on a busy AMD EPYC, its fastest was 91 us beside the fifth of the models with the
shortest calls and 116 us beside the fifth with the longest (ONNX Runtime on one thread; 94
and 104 us beside torch), so a large model's time relative to it came out up to a fifth too
fast. Timed in the collection's groups beside `cnn-large-1` on one thread, three times each
way: the reference's fastest 118 us (torch) and 128 us (ONNX Runtime) from a cold start, 86 and
84 us after an untimed call, about what it runs at alone (81 us); the model's own times moved by
a few percent.

A group timed while the reference ran far off its usual time (`SpeedWatch`) is timed again a
few models later by a collection (`fastslow.predict.collect.RETAKE_AFTER`): dividing by the
reference undoes a machine that is uniformly slow, not a neighbour that slows the model and the
reference by different amounts. In a 24-minute format-8 collection on a busy AMD EPYC, a fifth of
the groups (35% of those on torch's two threads) were timed more than 10% off, and their labels
were the worst of all: `cnn-residual-10`'s two-thread eager times came out 2.8x too fast, where
its reference ran 2.8x slow. Such a neighbour stays for a while (timed again at once, the
reference ran as slow: 171, 171 and 171 us against a usual 93), and is gone minutes later as
often as it is there at any time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fastslow.measure.stats import Measurement
from fastslow.measure.timer import Workload
from fastslow.predict.configs import Config

LABEL = "speed reference"
# How far (|log| of its time over the usual) the reference may run from its usual time for a
# measurement beside it to count as steady: timed again in a collection beyond it, left out of
# training (`PredictorConfig.reference_tolerance`), and of the steady noise floor.
STEADY_TOLERANCE = 0.1


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


def describe_kind(kind: str) -> str:
    """'torch on 2 threads' for "2t-torch" (`group_kind`)."""
    threads, runtime = kind.split("t-", 1)
    return f"{'ONNX Runtime' if runtime == 'onnx' else runtime} on {threads} thread{'s' if threads != '1' else ''}"


def reference_threads(c: Config) -> int:
    """The reference's torch threads beside a configuration: its own in a torch group; 1 beside
    ONNX Runtime, whose threads keep spinning between calls (a second torch pool beside them was
    measured 16x slower than alone on 2 cores, one thread as fast as alone)."""
    return 1 if c.runtime == "onnx" else c.threads


def fastest(samples: list[float]) -> float:
    """What a collection takes of a measurement's samples (each a mean over one block of calls):
    the fastest. The machine's neighbours only ever add time, so the fastest block is the one
    they disturbed least, and it comes back when the same model is timed again more often than
    the median does (see the module's docstring)."""
    return float(min(samples))


def relative(m: Measurement, reference: list[float]) -> float:
    """The model's fastest sample over the reference's fastest, both from the same interleaved
    rounds."""
    return fastest(m.samples_s) / fastest(reference)


def reference_off(reference_s: Any, usual_s: Any) -> Any:
    """How far the speed reference ran from its usual time, as |log(its time / the usual)|: 0.1 is
    about 10% off (arrays or single times)."""
    return np.abs(np.log(np.asarray(reference_s) / np.asarray(usual_s)))


class SpeedWatch:
    """Whether the machine ran at its usual speed while a group of configurations was timed: the
    reference's fastest time beside the group against its usual time in that kind of group
    (`group_kind`). The usual time is the median of every take seen so far (a collection's,
    seeded from the models it already has), known from `min_seen` takes on."""

    def __init__(self, seen: dict[str, list[float]] | None = None, *, tolerance: float = STEADY_TOLERANCE,
                 min_seen: int = 5) -> None:
        self.seen = {k: list(v) for k, v in (seen or {}).items()}
        self.tolerance, self.min_seen = tolerance, min_seen

    def usual(self, kind: str) -> float | None:
        seen = self.seen.get(kind, [])
        return float(np.median(seen)) if len(seen) >= self.min_seen else None

    def off(self, kind: str, reference_s: float) -> float | None:
        """How far a take's reference ran from the usual time (`reference_off`); None while unknown."""
        usual = self.usual(kind)
        return None if usual is None else float(reference_off(reference_s, usual))

    def note(self, kind: str, reference_s: float) -> None:
        self.seen.setdefault(kind, []).append(float(reference_s))
