import math

import numpy as np
import pytest

from fastslow.errors import UserError
from fastslow.measure.sweep import (
    fit_power_law,
    grid,
    parse_sets,
    parse_sweeps,
    parse_values,
)


def test_parse_values_lists_and_doubling_ranges():
    assert parse_values("32,64,128", what="x") == [32, 64, 128]
    assert parse_values("1..16", what="x") == [1, 2, 4, 8, 16]
    assert parse_values("3..20", what="x") == [3, 6, 12]


@pytest.mark.parametrize("bad", ["H", "H=", "=3", "H=a,b", "H=8..2", "1H=3"])
def test_malformed_sweeps_name_the_problem(bad):
    with pytest.raises(UserError, match="'sweeps' value"):
        parse_sweeps([bad])


def test_sets_and_grid():
    assert parse_sets(["B=8"]) == {"B": 8}
    with pytest.raises(UserError, match="not an integer"):
        parse_sets(["B=x"])
    g = grid({"H": [1, 2], "W": [3, 4, 5]})
    assert len(g) == 6 and g[0] == {"H": 1, "W": 3} and g[-1] == {"H": 2, "W": 5}
    assert grid({}) == [{}]


def test_pure_power_law_is_recovered():
    n = np.array([16, 32, 64, 128, 256, 512, 1024])
    rng = np.random.default_rng(0)
    t = 3e-9 * n**2.0 * rng.lognormal(0, 0.02, n.size)
    fit = fit_power_law("n", list(n), list(t))
    assert fit is not None
    assert fit.ci95[0] < 2.0 < fit.ci95[1]
    assert fit.exponent == pytest.approx(2.0, abs=0.05)
    assert fit.r2 > 0.999


def test_knee_marks_where_fixed_cost_stops_dominating():
    n = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192])
    t = 1e-4 + 1e-8 * n**1.5  # knee at (1e-4/1e-8)^(1/1.5) ~ 464
    fit = fit_power_law("n", list(n), list(t))
    assert fit is not None and fit.knee is not None
    assert 200 < fit.knee < 1000
    assert fit.points_used < len(n)
    assert fit.exponent > 1.2  # a line through every point would say ~0.6
    naive = np.polyfit(np.log(n), np.log(t), 1)[0]
    assert naive < 0.8


def test_too_few_points_give_no_fit():
    assert fit_power_law("n", [1, 2], [1.0, 2.0]) is None
    assert fit_power_law("n", [4, 4, 4, 8], [1.0, 1.0, 1.0, 2.0]) is None


def test_a_fit_leaves_out_flagged_points_and_says_which():
    sizes = [2.0 ** k for k in range(4, 11)]
    times = [1e-6 * n for n in sizes]
    times[-1] *= 5  # a noisy point
    flagged = [i == len(sizes) - 1 for i in range(len(sizes))]
    fit = fit_power_law("n", sizes, times, flagged)
    assert fit.excluded == [sizes[-1]] and fit.exponent == pytest.approx(1.0, abs=1e-6)
    assert fit_power_law("n", sizes, times).exponent != pytest.approx(1.0, abs=1e-3)  # kept, it bends the fit


def test_an_interval_needs_degrees_of_freedom():
    three = fit_power_law("n", [8, 16, 32], [1e-3, 2.1e-3, 3.9e-3])
    assert all(map(math.isnan, three.ci95)) and "3 points leave 1 degree of freedom" in three.ci_note
    five = fit_power_law("n", [8, 16, 32, 64, 128], [1e-3, 2.1e-3, 3.9e-3, 8.2e-3, 15.8e-3])
    assert five.ci95[0] < five.exponent < five.ci95[1] and five.ci_note == ""
