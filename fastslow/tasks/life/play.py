"""`life play`: run the simulation with a chosen predictor and draw it in the terminal.

Two cells per character (upper and lower half blocks), a status line with the predict time
against the frame budget, and an optional check of every generation against the exact rule.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import torch

from fastslow.measure.timer import time_once
from fastslow.tasks.life.rules import random_grid, step_torch
from fastslow.tasks.life.study import LifeModels, make_step

PLAY_PREDICTORS = ("rule", "percell", "fc", "min")
_STUDY_NAME = {"rule": "rule_torch", "percell": "percell_batched", "fc": "fc", "min": "min"}
_BLOCKS = {(0, 0): " ", (1, 0): "▀", (0, 1): "▄", (1, 1): "█"}


def render(grid: torch.Tensor, max_cols: int, max_rows: int) -> str:
    """The top-left corner of the grid that fits the terminal, two rows per text line."""
    g = grid[: 2 * max_rows, :max_cols].to(torch.uint8).tolist()
    if len(g) % 2:
        g.append([0] * len(g[0]))
    return "\n".join("".join(_BLOCKS[(top, bottom)] for top, bottom in zip(g[r], g[r + 1], strict=True))
                     for r in range(0, len(g), 2))


@dataclass
class PlayResult:
    steps: int
    predict_s: list[float]
    first_mismatch: int | None = None  # generation where the predictor first differed
    mismatched_cells: int = 0

    def to_dict(self) -> dict[str, object]:
        s = sorted(self.predict_s)
        return {"steps": self.steps, "median_predict_s": s[len(s) // 2] if s else None,
                "max_predict_s": s[-1] if s else None, "first_mismatch": self.first_mismatch,
                "mismatched_cells": self.mismatched_cells}


def play(
    models: LifeModels, predictor: str, *, size: int, steps: int, interval_s: float = 0.1,
    check: bool = False, draw: bool = True, seed: int = 0, density: float = 0.35,
    out: TextIO = sys.stdout, terminal_size: tuple[int, int] = (80, 24),
    on_step: Callable[[int, float], None] | None = None,
) -> PlayResult:
    grid = random_grid(size, density, seed)
    result = PlayResult(0, [])
    cols, rows = terminal_size
    if draw:
        out.write("\x1b[2J")  # clear once; each frame then redraws from the top
    for gen in range(1, steps + 1):
        frame_start = time.perf_counter()
        step, to_grid = make_step(_STUDY_NAME[predictor], grid, models)
        with torch.inference_mode():
            raw, predict_s = time_once(step)
            nxt = to_grid(raw)
        result.predict_s.append(predict_s)
        result.steps = gen
        if check:
            expected = step_torch(grid)
            diff = int((nxt != expected).sum())
            if diff:
                result.first_mismatch, result.mismatched_cells = gen, diff
                return result
        grid = nxt
        if on_step:
            on_step(gen, predict_s)
        if draw:
            budget = f"{predict_s * 1e3:.2f} ms of {interval_s * 1e3:.0f} ms frame"
            over = " OVER BUDGET" if predict_s > interval_s else ""
            status = (f"gen {gen}/{steps}  {predictor}  {size}x{size}  live {int(grid.sum())}  "
                      f"predict {budget}{over}")
            out.write("\x1b[H" + render(grid, cols, rows - 2) + "\n" + status[:cols] + "\x1b[K\n")
            out.flush()
            time.sleep(max(0.0, interval_s - (time.perf_counter() - frame_start)))
    return result
