import time

import numpy as np
import pytest

from fastslow.errors import UserError
from fastslow.measure.compare import Comparison, compare, ratio_ci95, u_test
from fastslow.measure.stats import Measurement
from fastslow.measure.timer import TimerConfig, Workload


def _noisy(scale: float, n: int, seed: int) -> Measurement:
    rng = np.random.default_rng(seed)
    return Measurement(list(scale * rng.lognormal(0, 0.05, n)))


def test_ratio_and_interval_for_a_known_factor():
    a, b = _noisy(1e-3, 200, 0), _noisy(2e-3, 200, 1)
    ratio, (lo, hi) = ratio_ci95(a, b)
    assert ratio == pytest.approx(2.0, rel=0.05)
    assert lo < ratio < hi
    assert lo > 1.8 and hi < 2.2


def test_same_distribution_is_indistinguishable():
    a, b = _noisy(1e-3, 200, 0), _noisy(1e-3, 200, 1)
    _, (lo, hi) = ratio_ci95(a, b)
    assert lo < 1.0 < hi


def test_pairing_cancels_shared_drift():
    # Both sides drift together by 3x over the run; B is 5% faster in every round.
    drift = np.linspace(1.0, 3.0, 300)
    a = Measurement(list(1e-3 * drift))
    b = Measurement(list(0.95e-3 * drift))
    _, (lo, hi) = ratio_ci95(a, b)
    assert hi < 1.0  # unpaired resampling of drifting samples would straddle 1


def test_compare_real_workloads_gives_a_verdict():
    cfg = TimerConfig(warmup_s=0.0, min_time_s=0.05, max_time_s=0.3, rel_precision=0.02)
    result = compare(Workload(lambda: time.sleep(0.001)), Workload(lambda: time.sleep(0.003)), cfg)
    assert result.verdict == "slower"
    assert result.ratio > 1.5
    d = result.to_dict()
    assert set(d) >= {"a", "b", "ratio", "ci95", "verdict", "threshold", "p_value"}
    assert d["a"]["n"] == d["b"]["n"]



def test_compare_does_not_time_a_side_on_what_the_other_left():
    """B's first call after A is slow (its caches refilled, here a 3 ms sleep), its others as fast
    as A's: B is as fast as A once warm, and the comparison says so. Timed from each block's
    first call, as compare did before, every one-call block of B held the slow call (B/A ~4)."""
    after_a = {"now": True}

    def a() -> None:
        time.sleep(0.001)
        after_a["now"] = True

    def b() -> None:
        time.sleep(0.004 if after_a["now"] else 0.001)
        after_a["now"] = False

    cfg = TimerConfig.preset("compare", min_time_s=0.05, max_time_s=0.3, rel_precision=0.05)
    result = compare(Workload(a, track_memory=False), Workload(b, track_memory=False), cfg)
    assert result.ratio < 1.5 and result.b.median_s < 0.003

@pytest.mark.parametrize("ratio,ci,verdict", [
    (0.90, (0.88, 0.92), "faster"),
    (1.10, (1.08, 1.12), "slower"),
    (1.008, (1.004, 1.012), "indistinguishable"),  # the interval excludes 1, the effect is under 2%
    (0.99, (0.985, 0.995), "indistinguishable"),
    (1.05, (0.99, 1.11), "indistinguishable"),  # a big effect, but the interval includes 1
])
def test_a_verdict_needs_an_interval_excluding_one_and_an_effect_past_the_threshold(ratio, ci, verdict):
    m = _noisy(1e-3, 20, 0)
    c = Comparison(m, m, ratio, ci)
    assert c.verdict == verdict
    assert c.describe() == (verdict if verdict != "indistinguishable" else "indistinguishable (within ±2%)")
    assert Comparison(m, m, ratio, ci, threshold=0.0).verdict == ("indistinguishable" if ci[0] < 1 < ci[1] else
                                                                   "faster" if ratio < 1 else "slower")


def test_u_test_separates_shifted_samples_only():
    assert u_test(_noisy(1e-3, 100, 0), _noisy(1.2e-3, 100, 1)) < 1e-6
    assert u_test(_noisy(1e-3, 100, 0), _noisy(1e-3, 100, 1)) > 0.01
    with pytest.raises(UserError, match="'threshold' must lie in"):
        compare(Workload(lambda: None), Workload(lambda: None), threshold=float("nan"))
