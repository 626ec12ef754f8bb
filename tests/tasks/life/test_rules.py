import numpy as np
import pytest
import torch

from fastslow.tasks.life.rules import (
    all_neighbourhoods,
    next_state,
    random_grid,
    step_cell,
    step_cells_python,
    step_numpy,
    step_torch,
)


def test_b3_s23():
    assert [next_state(0, n) for n in range(9)] == [0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert [next_state(1, n) for n in range(9)] == [0, 0, 1, 1, 0, 0, 0, 0, 0]
    assert step_cell(np.array([[1, 1, 0], [0, 0, 0], [0, 0, 1]])) == 1  # born with 3
    assert step_cell(np.array([[1, 1, 1], [1, 1, 0], [0, 0, 0]])) == 0  # dies of 4


def test_blinker_oscillates_and_glider_moves():
    g = np.zeros((5, 5), np.uint8)
    g[2, 1:4] = 1
    g1 = step_numpy(g)
    assert g1[1:4, 2].tolist() == [1, 1, 1] and g1.sum() == 3
    assert np.array_equal(step_numpy(g1), g)
    glider = np.zeros((8, 8), np.uint8)
    glider[0, 1] = glider[1, 2] = glider[2, 0] = glider[2, 1] = glider[2, 2] = 1
    g4 = glider
    for _ in range(4):
        g4 = step_numpy(g4)
    assert np.array_equal(g4[1:, 1:], glider[:-1, :-1])  # one cell down and right


@pytest.mark.parametrize("size", [1, 2, 7, 33])
def test_all_implementations_agree(size):
    grid = random_grid(size, seed=size)
    as_np = grid.numpy().astype(np.uint8)
    expected = step_cells_python(as_np)
    assert np.array_equal(step_numpy(as_np), expected)
    assert torch.equal(step_torch(grid), torch.from_numpy(expected).float())


def test_all_neighbourhoods():
    x, y = all_neighbourhoods()
    assert x.shape == (512, 1, 3, 3)
    assert len({tuple(r.flatten().tolist()) for r in x}) == 512
    # born: centre dead with 3 of 8 neighbours, C(8,3) = 56; survive: C(8,2) + C(8,3) = 84
    assert int(y.sum()) == 56 + 84
    for i in (0, 7, 186, 511):
        assert y[i] == step_cell(x[i, 0].numpy())
