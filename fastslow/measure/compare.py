"""A/B comparison: two workloads timed interleaved, the ratio B/A with a bootstrap interval."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastslow.errors import param_error
from fastslow.measure.stats import Measurement
from fastslow.measure.timer import TimerConfig, Workload, measure_interleaved
from fastslow.store.recorder import Saved

BOOTSTRAP_RESAMPLES = 4000
# Below this relative difference two medians are called indistinguishable even when the
# interval excludes 1: the bootstrap covers sampling within one run, not the run-to-run
# drift of a shared machine (12 A/A runs of identical workloads gave ratios up to 1.0086).
DEFAULT_THRESHOLD = 0.02


@dataclass
class Comparison:
    """B against A. `ratio` < 1 means B takes less time than A."""

    a: Measurement
    b: Measurement
    ratio: float
    ci95: tuple[float, float]
    threshold: float = DEFAULT_THRESHOLD  # smallest relative difference that counts
    p_value: float | None = None  # Mann-Whitney U, two-sided (as Google Benchmark's compare.py)
    saved: Saved | None = field(default=None, repr=False)  # where the API stored the run

    @property
    def verdict(self) -> str:
        """faster / slower only when the interval excludes 1 and the effect passes the threshold."""
        lo, hi = self.ci95
        if hi < 1.0 and self.ratio < 1.0 - self.threshold:
            return "faster"
        if lo > 1.0 and self.ratio > 1.0 + self.threshold:
            return "slower"
        return "indistinguishable"

    def describe(self) -> str:
        """The verdict in words: 'faster', 'slower', or 'indistinguishable (within ±2%)'."""
        if self.verdict != "indistinguishable":
            return self.verdict
        return f"indistinguishable (within ±{100 * self.threshold:g}%)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.stats(),
            "b": self.b.stats(),
            "ratio": self.ratio,
            "ci95": list(self.ci95),
            "verdict": self.verdict,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "a_label": self.a.label,
            "b_label": self.b.label,
            "a_samples_s": self.a.samples_s,
            "b_samples_s": self.b.samples_s,
        }


def ratio_ci95(
    a: Measurement, b: Measurement, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0, paired: bool = True
) -> tuple[float, tuple[float, float]]:
    """Ratio of medians B/A and its 95% percentile-bootstrap interval.

    Samples taken interleaved are paired by round (the same moment on the machine); when the
    counts match, rounds are resampled as pairs so that shared drift cancels out of the
    ratio instead of widening it. Otherwise (or with `paired=False`: samples from different
    runs) each side is resampled on its own.
    """
    xa = np.asarray(a.samples_s)
    xb = np.asarray(b.samples_s)
    ratio = float(np.median(xb) / np.median(xa))
    rng = np.random.default_rng(seed)
    if paired and xa.size == xb.size:
        idx = rng.integers(0, xa.size, size=(resamples, xa.size))
        boot = np.median(xb[idx], axis=1) / np.median(xa[idx], axis=1)
    else:
        ia = rng.integers(0, xa.size, size=(resamples, xa.size))
        ib = rng.integers(0, xb.size, size=(resamples, xb.size))
        boot = np.median(xb[ib], axis=1) / np.median(xa[ia], axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return ratio, (float(lo), float(hi))


def u_test(a: Measurement, b: Measurement) -> float | None:
    """Two-sided Mann-Whitney U p-value of the two sets of samples (None with too few)."""
    from scipy.stats import mannwhitneyu

    if min(a.n, b.n) < 3:
        return None
    return float(mannwhitneyu(a.samples_s, b.samples_s, alternative="two-sided").pvalue)


def compare(a: Workload, b: Workload, config: TimerConfig | None = None, *,
            threshold: float = DEFAULT_THRESHOLD) -> Comparison:
    """Time A and B interleaved in this process (the first of each round alternating) and
    compare them: B/A with its interval, a U-test, and a verdict that needs both an interval
    excluding 1 and an effect above `threshold`."""
    if not (0 <= threshold < 1):
        raise param_error("threshold", f"must lie in [0, 1) as a fraction (got {threshold})")
    ma, mb = measure_interleaved([a, b], config)
    ratio, ci = ratio_ci95(ma, mb)
    return Comparison(ma, mb, ratio, ci, threshold, u_test(ma, mb))


def against_baseline(baseline: Measurement, now: Measurement, *, threshold: float = DEFAULT_THRESHOLD) -> Comparison:
    """A measurement taken now (B) against a stored one (A), from different runs: the samples
    are not paired, so each side is resampled on its own."""
    ratio, ci = ratio_ci95(baseline, now, paired=False)
    return Comparison(baseline, now, ratio, ci, threshold, u_test(baseline, now))


def gate(c: Comparison, fail_if_slower_pct: float | None) -> str | None:
    """Why B fails the regression gate (slower, and by more than the given percentage), or None."""
    if fail_if_slower_pct is None or c.verdict != "slower":
        return None
    slower = 100 * (c.ratio - 1)
    if slower <= fail_if_slower_pct:
        return None
    lo, hi = c.ci95
    return (f"slower by {slower:.1f}% (B/A {c.ratio:.3f}, 95% CI [{lo:.3f}, {hi:.3f}]), more than the "
            f"{fail_if_slower_pct:g}% allowed")
