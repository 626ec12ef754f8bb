"""A/B comparison: two workloads timed interleaved, the ratio B/A with a bootstrap interval."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastslow.measure.stats import Measurement
from fastslow.measure.timer import TimerConfig, Workload, measure_interleaved
from fastslow.store.recorder import Saved

BOOTSTRAP_RESAMPLES = 4000


@dataclass
class Comparison:
    """B against A. `ratio` < 1 means B takes less time than A."""

    a: Measurement
    b: Measurement
    ratio: float
    ci95: tuple[float, float]
    saved: Saved | None = field(default=None, repr=False)  # where the API stored the run

    @property
    def verdict(self) -> str:
        lo, hi = self.ci95
        if hi < 1.0:
            return "faster"
        if lo > 1.0:
            return "slower"
        return "indistinguishable"

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.stats(),
            "b": self.b.stats(),
            "ratio": self.ratio,
            "ci95": list(self.ci95),
            "verdict": self.verdict,
            "a_label": self.a.label,
            "b_label": self.b.label,
            "a_samples_s": self.a.samples_s,
            "b_samples_s": self.b.samples_s,
        }


def ratio_ci95(
    a: Measurement, b: Measurement, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """Ratio of medians B/A and its 95% percentile-bootstrap interval.

    Samples taken interleaved are paired by round (the same moment on the machine); when the
    counts match, rounds are resampled as pairs so that shared drift cancels out of the
    ratio instead of widening it. Otherwise each side is resampled on its own.
    """
    xa = np.asarray(a.samples_s)
    xb = np.asarray(b.samples_s)
    ratio = float(np.median(xb) / np.median(xa))
    rng = np.random.default_rng(seed)
    if xa.size == xb.size:
        idx = rng.integers(0, xa.size, size=(resamples, xa.size))
        boot = np.median(xb[idx], axis=1) / np.median(xa[idx], axis=1)
    else:
        ia = rng.integers(0, xa.size, size=(resamples, xa.size))
        ib = rng.integers(0, xb.size, size=(resamples, xb.size))
        boot = np.median(xb[ib], axis=1) / np.median(xa[ia], axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return ratio, (float(lo), float(hi))


def compare(a: Workload, b: Workload, config: TimerConfig | None = None) -> Comparison:
    """Time A and B interleaved in this process and compare them."""
    ma, mb = measure_interleaved([a, b], config)
    ratio, ci = ratio_ci95(ma, mb)
    return Comparison(ma, mb, ratio, ci)
