"""Units chosen for the reader, never fixed in the data (data is always seconds and bytes)."""

from __future__ import annotations

import math


def format_seconds(t: float | None, digits: int = 3) -> str:
    if t is None or (isinstance(t, float) and math.isnan(t)):
        return "-"
    if t == 0:
        return "0 s"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(t) >= scale:
            return f"{t / scale:.{digits}g} {unit}"
    return f"{t / 1e-9:.{digits}g} ns"


def format_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_rate(x: float | None, unit: str = "") -> str:
    """1.23e9 -> '1.23 G<unit>'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}".rstrip()
