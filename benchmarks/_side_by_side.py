"""Timing two ways of doing one thing side by side, for the benchmark scripts: each round runs
them in turn, every other round in the opposite order, so that a machine that speeds up or
slows down during a run weighs on both alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def median_seconds(fns: Sequence[Callable[[], object]], rounds: int) -> list[float]:
    """The median wall time of each of `fns` over `rounds` alternating rounds."""
    times: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    for r in range(rounds):
        for i in order if r % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]
