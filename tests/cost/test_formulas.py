"""The per-operator formulas, called the way the counter calls them."""

import pytest
import torch

from fastslow.cost.formulas import FORMULAS, elementwise_counts


def _counts(name, *args, **kwargs):
    op = getattr(torch.ops.aten, name).default
    out = op(*args, **kwargs)
    return FORMULAS[name](args, kwargs, out)


def test_matmul_family():
    a, b = torch.randn(4, 6), torch.randn(6, 5)
    assert _counts("mm", a, b) == {"matmul": 2 * 4 * 6 * 5}  # a multiply-add is 2 FLOPs
    assert _counts("addmm", torch.randn(5), a, b) == {"matmul": 2 * 4 * 6 * 5, "elementwise": 4 * 5}  # + bias
    x, y = torch.randn(3, 4, 6), torch.randn(3, 6, 5)
    assert _counts("bmm", x, y) == {"matmul": 2 * 3 * 4 * 6 * 5}


def test_convolution_counts_groups_and_output_size():
    x, w = torch.randn(2, 8, 10, 10), torch.randn(16, 4, 3, 3)
    c = _counts("convolution", x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 2)
    assert c["conv"] == 2 * (2 * 16 * 10 * 10) * 4 * 3 * 3  # per output: in/groups x kernel multiply-adds


@pytest.mark.parametrize("name,flops_per_element", [("add", 1), ("mul", 1), ("relu", 1)])
def test_elementwise_ops_cost_one_flop_per_output(name, flops_per_element):
    x = torch.randn(7, 9)
    counts = elementwise_counts(name, (x, x) if name != "relu" else (x,), x)
    assert counts is not None and sum(counts.values()) == flops_per_element * x.numel()
