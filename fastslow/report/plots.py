"""PNG plots (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fastslow.errors import UserError  # noqa: E402


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as e:
        raise UserError(f"--plot {path}: cannot write ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return path


def plot_scaling(
    path: str | Path, sizes: list[float], medians_s: list[float], *,
    lows_s: list[float] | None = None, highs_s: list[float] | None = None,
    fit: Any | None = None, xlabel: str = "n", title: str = "",
    series: dict[str, tuple[list[float], list[float]]] | None = None,
) -> Path:
    """Log-log time against size, p10–p90 bars, the fitted power law and its knee."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, (xs, ys) in (series or {}).items():
        ax.loglog(xs, ys, "o-", label=name, alpha=0.8)
    if sizes:
        yerr = None
        if lows_s is not None and highs_s is not None:
            yerr = [np.subtract(medians_s, lows_s), np.subtract(highs_s, medians_s)]
        ax.errorbar(sizes, medians_s, yerr=yerr, fmt="o", capsize=3, label="median (p10–p90)")
    if fit is not None and sizes:
        xs = np.geomspace(min(sizes), max(sizes), 100)
        ax.loglog(xs, [fit.predict_s(x) for x in xs], "-",
                  label=f"fit: t ∝ {fit.symbol}^{fit.exponent:.2f} "
                        f"[{fit.ci95[0]:.2f}, {fit.ci95[1]:.2f}], R²={fit.r2:.3f}")
        if fit.knee is not None:
            ax.axvline(fit.knee, ls="--", color="grey", label=f"knee ≈ {fit.knee:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("time per call (s)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
