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


def compare(cases: Sequence[tuple[str, Callable[[], object], Callable[[], object]]], names: tuple[str, str],
            rounds: int, *, width: int = 24, digits: int = 2) -> tuple[float, float]:
    """Time each case's two ways side by side (`median_seconds`), print one line per case (each
    way's median and how many times longer the second took), and return the two totals."""
    first_total = second_total = 0.0
    print(f"{'model':{width}s} {names[0]:>11s} {names[1]:>11s} {'ratio':>7s}")
    for name, first, second in cases:
        a, b = median_seconds([first, second], rounds)
        first_total, second_total = first_total + a, second_total + b
        print(f"{name:{width}s} {a:10.{digits}f}s {b:10.{digits}f}s {b / a:6.2f}x", flush=True)
    return first_total, second_total
