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
        raise UserError(f"plot file {path}: cannot write ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return path


def _finish(fig: Any, ax: Any, path: str | Path, xlabel: str, ylabel: str, title: str, log: bool = True) -> Path:
    """Labels, grid and legend as every fastslow plot has them, then the PNG."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both" if log else "major", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_scaling(
    path: str | Path, sizes: list[float], medians_s: list[float], *,
    lows_s: list[float] | None = None, highs_s: list[float] | None = None,
    fit: Any | None = None, xlabel: str = "n", title: str = "", label: str = "median (p10–p90)",
    series: dict[str, tuple[list[float], list[float]]] | None = None,
) -> Path:
    """Log-log time against size, p10–p90 bars, the fitted power law (drawn over the range it
    was fitted on, past the knee) and the knee; `series` adds other curves for context."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, (xs, ys) in (series or {}).items():
        ax.loglog(xs, ys, "o-", label=name, alpha=0.8)
    if sizes:
        yerr = None
        if lows_s is not None and highs_s is not None:
            yerr = [np.subtract(medians_s, lows_s), np.subtract(highs_s, medians_s)]
        ax.errorbar(sizes, medians_s, yerr=yerr, fmt="o", capsize=3, label=label)
    if fit is not None and sizes:  # a PowerLawFit's dict: time = coefficient * n^exponent
        knee = fit.get("knee")
        xs = np.geomspace(max(min(sizes), knee or 0), max(sizes), 100)
        lo, hi = fit["ci95"]
        interval = f"[{lo:.2f}, {hi:.2f}]" if lo is not None and np.isfinite(lo) else "(too few points for a CI)"
        ax.loglog(xs, [fit["coefficient"] * x ** fit["exponent"] for x in xs], "-",
                  label=f"fit: t ∝ {fit['symbol']}^{fit['exponent']:.2f} {interval}, R²={fit['r2']:.3f}")
        if knee is not None:
            ax.axvline(knee, ls="--", color="grey", label=f"knee ≈ {knee:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    return _finish(fig, ax, path, xlabel, "time per call (s)", title)


def plot_training_curves(path: str | Path, histories: dict[str, list[dict[str, float]]],
                         title: str = "training") -> Path:
    """Loss (and accuracy, where recorded) per epoch for each named run."""
    has_acc = any("accuracy" in h[0] for h in histories.values() if h)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5.5, 3.8))
    axes = np.atleast_1d(axes)
    for name, h in histories.items():
        epochs = [r["epoch"] for r in h]
        axes[0].plot(epochs, [r["loss"] for r in h], label=name)
        if has_acc and "accuracy" in h[0]:
            axes[1].plot(epochs, [r["accuracy"] for r in h], label=name)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    if has_acc:
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("accuracy")
        axes[1].set_ylim(0, 1.02)
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def plot_decision_boundary(path: str | Path, model: Any, x: Any, y: Any, title: str = "") -> Path:
    """The classifier's probability over the plane, with the test points on top."""
    import torch

    xs = np.linspace(-1.5, 1.5, 200)
    gx, gy = np.meshgrid(xs, xs)
    pts = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    with torch.no_grad():
        prob = torch.sigmoid(model(pts)).reshape(gx.shape).numpy()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    cs = ax.contourf(gx, gy, prob, levels=20, cmap="RdBu_r", alpha=0.7)
    ax.contour(gx, gy, prob, levels=[0.5], colors="k", linewidths=1)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=12, linewidths=0.3)
    fig.colorbar(cs, ax=ax, label="P(class 1)")
    ax.set_title(title)
    ax.set_aspect("equal")
    return _save(fig, path)


def plot_roofline(path: str | Path, rows: list[Any], peaks: Any, title: str = "") -> Path:
    """Attainable FLOP/s against intensity, with the model and each timed module placed on it."""
    pts = [r for r in rows if r.measured_s and r.flops and r.bytes]
    lo = min([r.intensity for r in pts] + [peaks.ridge_intensity / 100]) / 2
    hi = max([r.intensity for r in pts] + [peaks.ridge_intensity * 10]) * 2
    xs = np.geomspace(lo, hi, 200)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.loglog(xs, np.minimum(peaks.flops_per_s, peaks.bytes_per_s * xs), "k-",
              label=f"roof: {peaks.flops_per_s / 1e9:.0f} GFLOP/s, {peaks.bytes_per_s / 1e9:.0f} GB/s")
    for r in pts:
        whole = r.name == ""
        ax.loglog(r.intensity, r.achieved_flops_per_s, "*" if whole else "o", ms=12 if whole else 6)
        ax.annotate(r.name or "(model)", (r.intensity, r.achieved_flops_per_s), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    return _finish(fig, ax, path, "arithmetic intensity (FLOP/byte)", "achieved FLOP/s", title)


def plot_throughput_vs_params(path: str | Path, entries: list[dict[str, Any]], title: str = "") -> Path:
    """The course's figure: throughput against parameter count, coloured by family. Each model is a
    numbered marker explained in the legend (text next to crowded points would overlap)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = {"convolutional": "tab:blue", "efficient": "tab:green", "transformer": "tab:red"}
    for i, e in enumerate(entries, 1):
        fam = e.get("family", "")
        ax.scatter(e["params"] / 1e6, e["throughput_per_s"], s=160, color=colours.get(fam, "tab:grey"),
                   marker=f"${i}$", label=f"{i}: {e['spec']} ({fam})")
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("throughput (items/s)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return _save(fig, path)


def plot_latency_accuracy(path: str | Path, payload: dict[str, Any], title: str = "") -> Path:
    """Each judged variant at (latency, accuracy); accepted filled, rejected hollow, Pareto ringed."""
    fig, ax = plt.subplots(figsize=(7, 5))
    b = payload["baseline"]
    ax.scatter([b["median_s"] * 1e3], [100 * b["accuracy"]], marker="*", s=160, color="k", label="baseline")
    for v in payload["variants"]:
        if v["median_s"] is None or v["accuracy"] is None:
            continue
        ok = v["verdict"] == "accepted"
        ax.scatter([v["median_s"] * 1e3], [100 * v["accuracy"]], s=70 if v["pareto"] else 40,
                   facecolors="tab:green" if ok else "none", edgecolors="k" if v["pareto"] else "tab:red")
        ax.annotate(v["name"], (v["median_s"] * 1e3, 100 * v["accuracy"]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    return _finish(fig, ax, path, "latency per batch (ms, log)", "held-out accuracy (%)", title)


def plot_predicted_vs_measured(path: str | Path, series: dict[str, tuple[list[float], list[float]]],
                               title: str = "") -> Path:
    """Log-log predicted against measured seconds, one colour per method, with the line of
    perfect prediction and the ±10% band around it."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    every = [v for measured, predicted in series.values() for v in (*measured, *predicted) if v > 0]
    if not every:
        raise UserError("nothing to plot: no predictions with measurements")
    lo, hi = min(every) / 1.5, max(every) * 1.5
    xs = np.geomspace(lo, hi, 50)
    ax.loglog(xs, xs, "k-", lw=1, label="prediction = measurement")
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="0.85", label="±10%")
    for (name, (measured, predicted)), marker in zip(series.items(), "os^vD", strict=False):
        ax.loglog(measured, predicted, marker, ms=4, alpha=0.7, label=f"{name} ({len(measured)})", ls="none")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    return _finish(fig, ax, path, "measured seconds per call", "predicted seconds per call", title)
