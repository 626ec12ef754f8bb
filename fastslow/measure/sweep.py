"""Sweeps over symbol values, and the power-law fit time = a * n^k with its knee.

Small inputs are dominated by a fixed per-call cost (Python, dispatch, kernel launch), so a
straight line through every point of a log-log plot understates the exponent. We first fit
t = c + a*n^k; its knee, n* = (c/a)^(1/k), is where the variable part equals the fixed
part. The reported exponent is the ordinary least-squares slope on log-log over the points
at or past the knee, with a t-distribution 95% interval from the slope's standard error.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fastslow.errors import UserError

MIN_FIT_POINTS = 3
# No dimension of a swept input gets larger than this (2^40): past it no machine has the
# memory, and a doubling range with no such bound would run until the kernel kills it.
MAX_SIZE = 2**40


def parse_values(text: str, *, what: str) -> list[int]:
    """'32,64,128' -> [32, 64, 128]; '1..2048' -> 1, 2, 4, ..., 2048 (doubling from LO). Every
    value is a size: an integer from 1 to MAX_SIZE."""
    text = text.strip()
    m = re.fullmatch(r"(\d+)\.\.(\d+)", text)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if lo < 1 or hi < lo:
            raise UserError(f"{what}: range '{text}' must be LO..HI with 1 <= LO <= HI")
        if hi > MAX_SIZE:
            raise UserError(f"{what}: range '{text}' goes past {MAX_SIZE:,} (2^40), more than any machine's "
                            "memory holds; give a smaller HI")
        values = []
        v = lo
        while v <= hi:
            values.append(v)
            v *= 2
        return values
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(
            f"{what}: '{text}' is not a comma-separated list of integers or a LO..HI range"
        ) from None
    if not values:
        raise UserError(f"{what}: no values given")
    bad = [v for v in values if not 1 <= v <= MAX_SIZE]
    if bad:
        raise UserError(f"{what}: sizes must lie in 1..{MAX_SIZE:,} (got {bad[0]})")
    return values


def parse_assignment(text: str, *, option: str) -> tuple[str, str]:
    """'H=32' -> ('H', '32'), with an error that names the option."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name or not value.strip():
        raise UserError(f"{option} '{text}' must look like NAME=VALUE")
    if not name.isidentifier():
        raise UserError(f"{option} '{text}': '{name}' is not a valid symbol name")
    return name, value.strip()


def parse_sweeps(items: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for item in items:
        name, value = parse_assignment(item, option="'sweeps' value")
        if name in out:
            raise UserError(f"'sweeps' value '{item}': symbol {name} is swept twice")
        out[name] = parse_values(value, what=f"'sweeps' value {name}")
    return out


def parse_sets(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, value = parse_assignment(item, option="'sets' value")
        if name in out:
            raise UserError(f"'sets' value '{item}': {name} is already set to {out[name]}; give each symbol once")
        try:
            out[name] = int(value)
        except ValueError:
            raise UserError(f"'sets' value '{item}': '{value}' is not an integer") from None
        if not 1 <= out[name] <= MAX_SIZE:
            raise UserError(f"'sets' value '{item}': a size must lie in 1..{MAX_SIZE:,}")
    return out


def grid(sweeps: dict[str, list[int]]) -> list[dict[str, int]]:
    """Every combination of swept values, in the order given (the last symbol varies fastest)."""
    if not sweeps:
        return [{}]
    names = list(sweeps)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*sweeps.values())]


@dataclass
class PowerLawFit:
    symbol: str
    exponent: float
    ci95: tuple[float, float]
    r2: float
    knee: float | None  # below this the fixed per-call cost dominates; None when none is seen
    coefficient: float  # a in t = a * n^k, seconds
    fixed_cost_s: float  # c in t = c + a * n^k
    points_used: int
    basis: str = "past the knee"  # which points the exponent was fitted on, in words
    excluded: list[float] = field(default_factory=list)  # sizes left out for a flagged measurement
    ci_note: str = ""  # why there is no interval, when ci95 is (nan, nan)

    def predict_s(self, n: float) -> float:
        return self.coefficient * n**self.exponent

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci95"] = list(self.ci95)
        return d


def _loglog_ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float, tuple[float, float], float]:
    from scipy import stats  # scipy is imported where a fit needs it: at the top it cost every command 0.9 s

    lx, ly = np.log(x), np.log(y)
    res = stats.linregress(lx, ly)
    dof = x.size - 2
    if dof > 0 and math.isfinite(res.stderr):
        t = stats.t.ppf(0.975, dof)
        ci = (float(res.slope - t * res.stderr), float(res.slope + t * res.stderr))
    else:
        ci = (math.nan, math.nan)
    return float(res.slope), float(math.exp(res.intercept)), ci, float(res.rvalue**2)


# An interval from fewer residual degrees of freedom than this is too wide to mean anything
# (with 3 points, 1 degree: t = 12.7 multiplies the standard error).
MIN_CI_DOF = 2


def fit_power_law(symbol: str, sizes: list[float], times_s: list[float],
                  flagged: list[bool] | None = None) -> PowerLawFit | None:
    """Fit time = a·n^k past the knee; None with fewer than three distinct positive points.

    Points whose measurement is flagged (`flagged[i]`: few samples or wide spread) are left
    out while at least three others remain, and listed in `excluded`; the 95% interval is
    given only with MIN_CI_DOF residual degrees of freedom, else `ci_note` says why not."""
    flagged = flagged or [False] * len(sizes)
    valid = [(float(n), float(t), f) for n, t, f in zip(sizes, times_s, flagged, strict=True)
             if n > 0 and t > 0 and math.isfinite(t)]
    clean = [(n, t) for n, t, f in valid if not f]
    excluded: list[float] = []
    if len({n for n, _ in clean}) >= MIN_FIT_POINTS and len(clean) < len(valid):
        excluded = sorted(n for n, _, f in valid if f)
        pairs = sorted(clean)
    else:
        pairs = sorted((n, t) for n, t, _ in valid)
    x = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs])
    if np.unique(x).size < MIN_FIT_POINTS:
        return None

    from scipy import optimize

    # Fixed cost plus power law, fitted on log residuals so every point weighs alike.
    k0, a0, _, _ = _loglog_ols(x, y)
    c0 = max(float(y.min()) / 2, 1e-12)

    def model(n: np.ndarray, log_c: float, log_a: float, k: float) -> np.ndarray:
        return np.log(np.exp(log_c) + np.exp(log_a) * n**k)

    knee: float | None = None
    c, a = 0.0, a0
    try:
        with warnings.catch_warnings():  # the covariance is not used; its warning is noise
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            (log_c, log_a, k_full), _ = optimize.curve_fit(
                model, x, np.log(y), p0=(math.log(c0), math.log(a0), max(k0, 0.1)), maxfev=20000
            )
        c, a = math.exp(log_c), math.exp(log_a)
        if k_full > 0:
            knee_n = (c / a) ** (1 / k_full)
            if knee_n > x.min():  # a knee below the smallest point was never observed
                knee = float(knee_n)
    except (RuntimeError, ValueError, OverflowError):
        pass  # no separable fixed cost: fall back to a straight line through all points

    mask = x >= knee if knee is not None else np.ones_like(x, dtype=bool)
    basis = "past the knee" if knee is not None else "all points (no knee seen)"
    if np.unique(x[mask]).size < MIN_FIT_POINTS:
        mask = x >= np.unique(x)[-MIN_FIT_POINTS]  # too few past the knee: use the largest three
        basis = f"the largest {MIN_FIT_POINTS} sizes (fewer than {MIN_FIT_POINTS} lie past the knee)"
    k, a_fit, ci, r2 = _loglog_ols(x[mask], y[mask])
    dof = int(mask.sum()) - 2
    ci_note = ""
    if dof < MIN_CI_DOF:
        ci = (math.nan, math.nan)
        ci_note = (f"no interval: {int(mask.sum())} points leave {dof} degree{'s' if dof != 1 else ''} of freedom "
                   f"(an interval needs {MIN_CI_DOF + 2} points)")
    return PowerLawFit(
        symbol=symbol,
        exponent=k,
        ci95=ci,
        r2=r2,
        knee=knee,
        coefficient=a_fit,
        fixed_cost_s=c,
        points_used=int(mask.sum()),
        basis=basis,
        excluded=excluded,
        ci_note=ci_note,
    )
