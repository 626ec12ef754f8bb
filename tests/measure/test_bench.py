"""bench as a function: right numbers from odd values, sweeps that protect the machine."""

from __future__ import annotations

import pytest

from fastslow.api.measure import bench
from fastslow.errors import UserError
from fastslow.measure.bench import MEMORY_HEADROOM, ModelSource, RunSettings, batch_size, memory_shortfall
from fastslow.measure.sweep import MAX_SIZE, fit_power_law, parse_sets, parse_values
from fastslow.specs import parse_input
from tests.conftest import FAST


def test_throughput_counts_the_batch_symbol_only_where_an_input_has_it():
    with_b = [parse_input("Bx256")]
    fixed = [parse_input("8x256")]
    assert batch_size(with_b, {"B": 64}, "B") == 64
    assert batch_size(fixed, {"B": 64}, "B") == 8  # the zoo default B=64 is not this input's batch
    r = bench(ModelSource("zoo:mlp", ["8x256"]), RunSettings(), timer=FAST, store=False)
    (p,) = r.points
    assert p.batch == 8 and p.throughput_per_s == pytest.approx(8 / p.measurement.median_s)


@pytest.mark.parametrize("text,fragment", [
    ("0x256", "dimension 0 is empty"),
    ("8x0:int64", "dimension 0 is empty"),
])
def test_empty_dimensions_are_refused(text, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_input(text)


def test_sizes_and_sets_are_checked():
    with pytest.raises(UserError, match="goes past 1,099,511,627,776"):
        parse_values("1..99999999999999999999", what="--sweep N")
    assert parse_values("1..1024", what="x")[-1] == 1024 and len(parse_values(f"1..{MAX_SIZE}", what="x")) == 41
    with pytest.raises(UserError, match="sizes must lie in 1.."):
        parse_values("0,16", what="--sweep N")
    with pytest.raises(UserError, match="B is already set to 2"):
        parse_sets(["B=2", "B=3"])
    with pytest.raises(UserError, match="a size must lie in"):
        parse_sets(["B=0"])


def test_a_point_that_would_not_fit_is_recorded_and_the_sweep_goes_on():
    huge = 2**38  # 1 TiB of float32: no machine here has it
    assert memory_shortfall([parse_input("N")], {"N": 16}, "cpu") is None
    why = memory_shortfall([parse_input("N")], {"N": huge}, "cpu")
    assert why.startswith("out of memory (checked before running): the inputs take 1.0 TiB")
    assert f"({MEMORY_HEADROOM}x)" in why and "available on cpu" in why
    r = bench(ModelSource("zoo:elementwise"), RunSettings(), {"N": [16, huge, 32]}, FAST, store=False)
    assert [p.error is None for p in r.points] == [True, False, True]
    assert r.status == "partial" and "checked before running" in r.points[1].error


def test_the_fit_says_which_points_it_used():
    sizes = [1, 2, 4, 8, 16, 32]
    fit = fit_power_law("n", sizes, [1e-3 + 1e-6 * n for n in sizes])  # a knee near n = 1000: past the data
    assert fit.basis in ("all points (no knee seen)", "the largest 3 sizes (fewer than 3 lie past the knee)")
    assert fit.points_used == (6 if fit.basis.startswith("all") else 3)
