"""`Measurement`: raw timing samples, with every statistic derived from them on demand.

A sample is the mean time of one call inside one timed block (a block runs the callable
`calls_per_sample` times back to back so that the clock's own cost disappears, as in
torch.utils.benchmark's blocked_autorange). Keeping the samples themselves means a stored
measurement can be re-analysed later with nothing lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Above this IQR/median the spread is too wide for the median to mean much; torch.utils.benchmark
# uses the same kind of test (its `has_warnings` checks IQR against the median).
SPREAD_WARNING_IQR_OVER_MEDIAN = 0.10
# Fewer samples than this and the percentiles are not worth quoting (the timer's default minimum).
FEW_SAMPLES_WARNING = 5
FLAGS = ("few_samples", "wide_spread")  # what `Measurement.flags` can hold

STAT_KEYS = (
    "median_s", "mean_s", "iqr_s", "p10_s", "p90_s", "p99_s", "min_s", "max_s", "cv", "n",
)


@dataclass
class Measurement:
    """Per-call times in seconds, one per timed block, plus what is needed to read them."""

    samples_s: list[float]
    calls_per_sample: int = 1
    device: str = "cpu"
    threads: int | None = None
    label: str = ""
    stop_reason: str = ""  # why the timer stopped: "precision", "time budget", "max samples"
    peak_mem_bytes: int | None = None  # memory one call adds at its peak (see the timer)
    extra: dict[str, Any] = field(default_factory=dict)
    min_samples: int = FEW_SAMPLES_WARNING  # fewer than this is flagged `few_samples`

    def __post_init__(self) -> None:
        if not self.samples_s:
            raise ValueError("a Measurement needs at least one sample")
        if self.calls_per_sample < 1:
            raise ValueError(f"'calls_per_sample' must be >= 1 (got {self.calls_per_sample})")

    @property
    def _array(self) -> np.ndarray:
        return np.asarray(self.samples_s, dtype=np.float64)

    def _pct(self, q: float) -> float:
        return float(np.percentile(self._array, q))

    @property
    def n(self) -> int:
        return len(self.samples_s)

    @property
    def median_s(self) -> float:
        return float(np.median(self._array))

    @property
    def mean_s(self) -> float:
        return float(self._array.mean())

    @property
    def iqr_s(self) -> float:
        return self._pct(75) - self._pct(25)

    @property
    def cv(self) -> float:
        """Coefficient of variation (std / mean) of the samples."""
        a = self._array
        return float(a.std(ddof=1) / a.mean()) if a.size > 1 and a.mean() > 0 else 0.0

    @property
    def total_calls(self) -> int:
        return self.n * self.calls_per_sample

    def median_ci95(self) -> tuple[float, float]:
        """Distribution-free 95% interval for the median from order statistics.

        With n samples the rank of the sample median is Binomial(n, 1/2); the ranks
        n/2 ± 1.96·√n/2 bracket the true median with ~95% probability.
        """
        s = np.sort(self._array)
        n = s.size
        half = 1.96 * math.sqrt(n) / 2
        lo = max(0, int(math.floor(n / 2 - half)))
        hi = min(n - 1, int(math.ceil(n / 2 + half)) - 1)
        return float(s[lo]), float(s[hi])

    def relative_precision(self) -> float:
        """Half-width of the median's 95% interval over the median (inf with < 3 samples)."""
        if self.n < 3:
            return math.inf
        lo, hi = self.median_ci95()
        med = self.median_s
        return (hi - lo) / (2 * med) if med > 0 else math.inf

    def stats(self) -> dict[str, float | int]:
        a = self._array
        p = np.percentile(a, [10, 25, 50, 75, 90, 99])
        return {
            "median_s": float(p[2]),
            "mean_s": float(a.mean()),
            "iqr_s": float(p[3] - p[1]),
            "p10_s": float(p[0]),
            "p90_s": float(p[4]),
            "p99_s": float(p[5]),
            "min_s": float(a.min()),
            "max_s": float(a.max()),
            "cv": self.cv,
            "n": int(a.size),
        }

    @property
    def flags(self) -> list[str]:
        """Machine-readable reasons not to trust the median: `few_samples` (below the minimum the
        timer was asked for) and `wide_spread` (IQR above 10% of the median)."""
        out = []
        med = self.median_s
        if self.n < self.min_samples:
            out.append("few_samples")
        if med > 0 and self.iqr_s / med > SPREAD_WARNING_IQR_OVER_MEDIAN:
            out.append("wide_spread")
        return out

    @property
    def warnings(self) -> list[str]:
        """The flags in words, empty when there are none."""
        out = []
        if "wide_spread" in self.flags:
            out.append(
                f"spread too wide to trust: IQR is {100 * self.iqr_s / self.median_s:.0f}% of the median "
                f"(threshold {100 * SPREAD_WARNING_IQR_OVER_MEDIAN:.0f}%)"
            )
        if "few_samples" in self.flags:
            out.append(f"only {self.n} samples, fewer than the minimum of {self.min_samples}: the per-point "
                       "cap ran out (percentiles are rough)")
        return out

    def raw(self) -> dict[str, Any]:
        """What was measured, with nothing derived: `from_dict` rebuilds the same Measurement."""
        return {
            "samples_s": list(self.samples_s),
            "calls_per_sample": self.calls_per_sample,
            "device": self.device,
            "threads": self.threads,
            "label": self.label,
            "stop_reason": self.stop_reason,
            "peak_mem_bytes": self.peak_mem_bytes,
            "extra": dict(self.extra),
            "min_samples": self.min_samples,
        }

    def to_dict(self) -> dict[str, Any]:
        """`raw()` plus the derived statistics, flags and warnings (recomputed on every call)."""
        return {**self.raw(), "stats": self.stats(), "flags": self.flags, "warnings": self.warnings}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        """Rebuild from `to_dict` output; derived fields ("stats", "warnings") are recomputed."""
        return cls(
            samples_s=[float(x) for x in d["samples_s"]],
            calls_per_sample=int(d.get("calls_per_sample", 1)),
            device=d.get("device", "cpu"),
            threads=d.get("threads"),
            label=d.get("label", ""),
            stop_reason=d.get("stop_reason", ""),
            peak_mem_bytes=d.get("peak_mem_bytes"),
            extra=dict(d.get("extra", {})),
            min_samples=int(d.get("min_samples", FEW_SAMPLES_WARNING)),
        )

    def __repr__(self) -> str:
        from fastslow.report.units import format_seconds

        return (
            f"Measurement({self.label or 'unnamed'}: median {format_seconds(self.median_s)}, "
            f"IQR {format_seconds(self.iqr_s)}, n={self.n} x {self.calls_per_sample} calls)"
        )
