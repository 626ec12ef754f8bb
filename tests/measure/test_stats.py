import math

import numpy as np
import pytest

from fastslow.measure.stats import STAT_KEYS, Measurement


def test_stats_are_derived_from_the_samples():
    rng = np.random.default_rng(1)
    samples = list(rng.lognormal(mean=-7, sigma=0.2, size=501))
    m = Measurement(samples, calls_per_sample=10)
    s = m.stats()
    assert set(s) == set(STAT_KEYS)
    assert s["median_s"] == pytest.approx(np.median(samples))
    assert s["mean_s"] == pytest.approx(np.mean(samples))
    assert s["p99_s"] == pytest.approx(np.percentile(samples, 99))
    assert s["iqr_s"] == pytest.approx(np.percentile(samples, 75) - np.percentile(samples, 25))
    assert s["min_s"] == min(samples) and s["max_s"] == max(samples)
    assert s["cv"] == pytest.approx(np.std(samples, ddof=1) / np.mean(samples))
    assert s["n"] == 501
    assert m.total_calls == 5010


def test_round_trip_keeps_every_sample():
    m = Measurement([3e-3, 1e-3, 2e-3], calls_per_sample=4, device="cpu", threads=2,
                    label="x", stop_reason="precision", peak_mem_bytes=123)
    back = Measurement.from_dict(m.to_dict())
    assert back.samples_s == m.samples_s
    assert back.stats() == m.stats()
    assert (back.calls_per_sample, back.threads, back.peak_mem_bytes) == (4, 2, 123)


def test_warns_when_spread_is_too_wide_and_not_when_tight():
    tight = Measurement([1.0, 1.01, 0.99, 1.0, 1.005, 0.995])
    wide = Measurement([1.0, 2.0, 0.5, 1.5, 3.0, 0.7])
    assert tight.warnings == []
    assert any("spread too wide" in w for w in wide.warnings)
    assert any("samples" in w for w in Measurement([1.0, 1.0]).warnings)


def test_median_interval_brackets_the_median_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = Measurement(list(rng.normal(1.0, 0.1, 30)))
    large = Measurement(list(rng.normal(1.0, 0.1, 3000)))
    for m in (small, large):
        lo, hi = m.median_ci95()
        assert lo <= m.median_s <= hi
    assert large.relative_precision() < small.relative_precision()
    assert math.isinf(Measurement([1.0, 2.0]).relative_precision())


def test_rejects_empty_samples():
    with pytest.raises(ValueError):
        Measurement([])
