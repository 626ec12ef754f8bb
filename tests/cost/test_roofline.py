"""The roofline: lower bounds from peaks, the peaks' source, and the rows it times."""

import pytest
import torch
from torch import nn

from fastslow.cost.counter import count_cost, modules_to_depth
from fastslow.cost.roofline import Peaks, lower_bound_s, peaks_for, roofline
from fastslow.errors import UserError
from tests.conftest import FAST


def test_lower_bound_is_the_slower_roof():
    peaks = Peaks(flops_per_s=1e12, bytes_per_s=1e11, dtype="float32", source="stored")
    assert peaks.ridge_intensity == 10
    assert lower_bound_s(2e12, 1e9, peaks) == (2.0, "compute")  # 2 s of compute against 0.01 s of memory
    assert lower_bound_s(1e9, 5e11, peaks) == (5.0, "memory")


def test_peaks_come_from_the_store_or_are_measured_once():
    stored = {("matmul", "float32"): 2e11, ("bandwidth", "float32"): 3e10}
    p = peaks_for("cpu", torch.float32, stored)
    assert (p.flops_per_s, p.bytes_per_s, p.source) == (2e11, 3e10, "stored")
    calls = []
    p = peaks_for("cpu", torch.bfloat16, stored, lambda: calls.append(1) or {("matmul", "bfloat16"): 9e11})
    assert (p.flops_per_s, p.source, calls) == (9e11, "measured now", [1])
    with pytest.raises(UserError, match="no stored peaks for cpu .float16."):
        peaks_for("cpu", torch.float16, stored)


def test_every_row_gets_a_bound_and_a_measurement():
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 8)).eval()
    x = torch.randn(32, 64)
    report = count_cost(model, (x,))
    rows = modules_to_depth(report, 1)
    out = roofline(model, (x,), report, rows, Peaks(1e11, 1e10, "float32", "stored"), threads=1, timer=FAST)
    assert [r.name for r in out] == [m.name for m in rows]
    for r, m in zip(out, rows, strict=True):
        assert r.flops == m.flops and r.measured_s > 0 and r.lower_bound_s > 0
        assert r.share_of_peak == pytest.approx(r.lower_bound_s / r.measured_s)
    products = 2 * 32 * (64 * 256 + 256 * 8)  # plus the biases and the ReLU, one FLOP per element
    assert out[0].flops == products + 32 * (256 + 256 + 8)
