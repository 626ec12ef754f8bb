"""Conway's Game of Life, exactly: the reference every predictor is checked against.

Cells outside the grid are dead (zero padding), which is also what a 3x3 convolution with
padding 1 sees, so the networks and the rule agree on the border.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def next_state(centre: int, neighbours_alive: int) -> int:
    """B3/S23: born with exactly 3 live neighbours, survives with 2 or 3."""
    return int(neighbours_alive == 3 or (centre == 1 and neighbours_alive == 2))


def step_cell(neighbourhood: np.ndarray) -> int:
    """The next state of the centre of one 3x3 neighbourhood (the notebook's per-cell rule)."""
    centre = int(neighbourhood[1, 1])
    return next_state(centre, int(neighbourhood.sum()) - centre)


def step_cells_python(grid: np.ndarray) -> np.ndarray:
    """The per-cell rule applied to every cell in a Python loop."""
    padded = np.pad(grid, 1)
    out = np.empty_like(grid)
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            out[r, c] = step_cell(padded[r : r + 3, c : c + 3])
    return out


def step_numpy(grid: np.ndarray) -> np.ndarray:
    """One generation, vectorised: eight shifted slices summed (grid of 0/1, any int dtype)."""
    p = np.pad(grid, 1)
    n = (p[:-2, :-2] + p[:-2, 1:-1] + p[:-2, 2:] + p[1:-1, :-2] + p[1:-1, 2:]
         + p[2:, :-2] + p[2:, 1:-1] + p[2:, 2:])
    return ((n == 3) | ((grid == 1) & (n == 2))).astype(grid.dtype)


def step_torch(grid: torch.Tensor) -> torch.Tensor:
    """One generation on a float (H, W) grid of 0/1, the representation the networks take.

    Shifted slices beat F.conv2d with a ones kernel here (86 ms against 167 ms at 2048x2048
    on one thread of these CPUs): a one-channel convolution is a poor fit for oneDNN.
    """
    p = F.pad(grid, (1, 1, 1, 1))
    n = (p[:-2, :-2] + p[:-2, 1:-1] + p[:-2, 2:] + p[1:-1, :-2] + p[1:-1, 2:]
         + p[2:, :-2] + p[2:, 1:-1] + p[2:, 2:])
    return ((n == 3) | ((grid > 0) & (n == 2))).to(grid.dtype)


def all_neighbourhoods() -> tuple[torch.Tensor, torch.Tensor]:
    """Every 3x3 neighbourhood (512 of them) as (512, 1, 3, 3) floats, and the centre's next
    state as (512,) floats. Row i is the binary expansion of i, most significant bit first."""
    bits = (torch.arange(512)[:, None] >> torch.arange(8, -1, -1)) & 1
    x = bits.float().view(512, 1, 3, 3)
    centre = x[:, 0, 1, 1]
    alive = x.sum(dim=(1, 2, 3)) - centre
    y = ((alive == 3) | ((centre == 1) & (alive == 2))).float()
    return x, y


def random_grid(size: int, density: float = 0.35, seed: int = 0) -> torch.Tensor:
    """A (size, size) float grid of 0/1 with the given live fraction, reproducible by seed."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(size, size, generator=g) < density).float()
