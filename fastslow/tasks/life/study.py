"""The notebook's measurements, redone with the engine: every predictor, over grid sizes.

Each predictor is a function that builds, for one grid, a zero-argument step (what is timed)
and a way to read its output as a 0/1 grid (what is checked against the exact rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from fastslow.errors import UserError
from fastslow.measure.compare import compare
from fastslow.measure.sweep import PowerLawFit, fit_power_law
from fastslow.measure.timer import TimerConfig, Workload, measure
from fastslow.tasks.life.convert import predict_per_window_batched, windows
from fastslow.tasks.life.rules import random_grid, step_cells_python, step_numpy, step_torch

PREDICTORS = ("rule_cell", "rule_numpy", "rule_torch", "percell_loop", "percell_batched", "fc", "min")
LOOPED = ("rule_cell", "percell_loop")  # one Python call per cell: capped by `loop_max_cells`
DEFAULT_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


@dataclass
class LifeModels:
    percell: nn.Module
    fc: nn.Module
    min: nn.Module


Step = tuple[Callable[[], Any], Callable[[Any], torch.Tensor]]


def make_step(name: str, grid: torch.Tensor, models: LifeModels) -> Step:
    """(step, to_grid) for one predictor on one (H, W) float grid of 0/1."""
    if name == "rule_cell":
        g = grid.numpy().astype(np.uint8)
        return (lambda: step_cells_python(g)), (lambda out: torch.from_numpy(out).float())
    if name == "rule_numpy":
        g = grid.numpy().astype(np.uint8)
        return (lambda: step_numpy(g)), (lambda out: torch.from_numpy(out).float())
    if name == "rule_torch":
        return (lambda: step_torch(grid)), (lambda out: out)
    x = grid[None, None]
    if name == "percell_loop":
        batch = windows(x, (3, 3))
        net = models.percell

        def loop() -> torch.Tensor:
            return torch.cat([net(batch[i : i + 1]) for i in range(batch.shape[0])])
        return loop, lambda out: (out.view(grid.shape) > 0).float()
    if name == "percell_batched":
        return ((lambda: predict_per_window_batched(models.percell, x, (3, 3))),
                lambda out: (out[0, 0] > 0).float())
    if name in ("fc", "min"):
        net = getattr(models, name)
        return (lambda: net(x) > 0), lambda out: out[0, 0].float()
    raise UserError(f"predictor '{name}': unknown (known: {', '.join(PREDICTORS)})")


@dataclass
class StudyRow:
    predictor: str
    size: int
    median_s: float | None = None
    accuracy: float | None = None
    stats: dict[str, float] | None = None
    error: str | None = None
    estimated_s: float | None = None  # for skipped loop rows: per-cell time × cells
    flags: list[str] = field(default_factory=list)  # the measurement's (few_samples, wide_spread)

    @property
    def per_cell_s(self) -> float | None:
        return self.median_s / self.size**2 if self.median_s is not None else None

    def to_dict(self) -> dict[str, Any]:
        s = self.stats or {}
        return {"predictor": self.predictor, "size": self.size, "median_s": self.median_s,
                "per_cell_s": self.per_cell_s, "n": s.get("n"), "iqr_s": s.get("iqr_s"), "flags": self.flags,
                "accuracy": self.accuracy, "stats": self.stats, "error": self.error, "estimated_s": self.estimated_s}


@dataclass
class StudyResult:
    rows: list[StudyRow]
    fits: dict[str, PowerLawFit] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    threads: int = 1
    saved: Any = field(default=None, repr=False)  # where the API stored the run

    @property
    def fit(self) -> PowerLawFit | None:
        """The notebook's question: how the fully-convolutional network scales."""
        return self.fits.get("fc") or next(iter(self.fits.values()), None)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows],
                "fit": self.fit.to_dict() if self.fit else None,
                "fits": {k: v.to_dict() for k, v in self.fits.items()},
                "checks": self.checks, "threads": self.threads}


def check_study(sizes: tuple[int, ...], predictors: tuple[str, ...]) -> None:
    unknown = [p for p in predictors if p not in PREDICTORS]
    if unknown:
        raise UserError(f"'predictors' value '{unknown[0]}' is unknown (known: {', '.join(PREDICTORS)})")
    if not predictors:
        raise UserError("'predictors' is empty")
    bad = [s for s in sizes if s < 1]
    if bad:
        raise UserError(f"'sizes' must all be >= 1 (got {bad[0]})")


def run_study(
    models: LifeModels, *, sizes: tuple[int, ...] = DEFAULT_SIZES,
    predictors: tuple[str, ...] = PREDICTORS, threads: int = 1, loop_max_cells: int = 64 * 64,
    timer: TimerConfig | None = None, check_size: int | None = 64, untrained_fc: nn.Module | None = None,
    on_row: Callable[[StudyRow], None] | None = None,
) -> StudyResult:
    """Time and check every predictor at every size; fit time against grid side per predictor."""
    check_study(sizes, predictors)
    timer = timer or TimerConfig.preset("study")
    result = StudyResult([], threads=threads)
    per_cell: dict[str, float] = {}
    for size in sizes:
        grid = random_grid(size, seed=size)
        expected = step_torch(grid)
        for name in predictors:
            row = StudyRow(name, size)
            if name in LOOPED and size * size > loop_max_cells:
                row.error = f"skipped: {size * size} cells > loop limit {loop_max_cells}"
                if name in per_cell:
                    row.estimated_s = per_cell[name] * size * size
            else:
                step, to_grid = make_step(name, grid, models)
                with torch.inference_mode():
                    row.accuracy = float((to_grid(step()) == expected).float().mean())
                m = measure(step, threads=threads, config=timer, label=f"{name} {size}")
                row.median_s, row.stats, row.flags = m.median_s, m.stats(), m.flags
                per_cell[name] = m.median_s / (size * size)
            result.rows.append(row)
            if on_row:
                on_row(row)
    for name in predictors:
        done = [r for r in result.rows if r.predictor == name and r.median_s]
        fit = fit_power_law("size", [r.size for r in done], [r.median_s for r in done], [bool(r.flags) for r in done])
        if fit:
            result.fits[name] = fit
    if check_size:
        result.checks = run_checks(models, check_size, threads, timer, untrained_fc)
    return result


def run_checks(models: LifeModels, size: int, threads: int, timer: TimerConfig,
               untrained_fc: nn.Module | None) -> list[dict[str, Any]]:
    """The notebook's two observations, tested interleaved: trained vs untrained weights, and
    a random grid vs an empty one, time the same."""
    grid = random_grid(size, seed=1)
    x, empty = grid[None, None], torch.zeros(1, 1, size, size)
    fc = models.fc
    pairs = [("fc: untrained (B) vs trained (A) weights", fc, x, untrained_fc, x),
             ("fc: empty grid (B) vs random grid (A)", fc, x, fc, empty)]
    out = []
    for name, net_a, xa, net_b, xb in pairs:
        if net_b is None:
            continue
        c = compare(Workload(lambda n=net_a, x=xa: n(x), threads=threads),
                    Workload(lambda n=net_b, x=xb: n(x), threads=threads), timer)
        out.append({"check": name, "size": size, "ratio": c.ratio, "ci95": list(c.ci95),
                    "verdict": c.verdict})
    return out
