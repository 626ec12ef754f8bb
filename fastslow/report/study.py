"""The Game-of-Life study shown: its table, its plot, and its section of the HTML report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.table import Table

from fastslow.report.units import format_seconds


def study_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="life predictors: time per generation", title_justify="left")
    for col in ("predictor", "size", "median", "IQR", "n", "per cell", "accuracy", "note"):
        t.add_column(col, justify="right")
    for r in rows:
        note = r["error"] or ""
        if r.get("estimated_s"):
            note += f" (estimated {format_seconds(r['estimated_s'])})"
        if r.get("flags"):
            note = (note + " " if note else "") + ", ".join(f.replace("_", " ") for f in r["flags"])
        acc = f"{100 * r['accuracy']:.1f}%" if r["accuracy"] is not None else "-"
        mark = " [yellow]![/yellow]" if r.get("flags") else ""
        t.add_row(r["predictor"], str(r["size"]), format_seconds(r["median_s"]) + (mark if r["median_s"] else ""),
                  format_seconds(r.get("iqr_s")), str(r["n"]) if r.get("n") else "-",
                  format_seconds(r["per_cell_s"]), acc, note)
    return t


def study_lines(payload: dict[str, Any]) -> list[str]:
    """The fits and the checks, a line each."""
    from fastslow.report.output import describe_fit

    lines = [f"{name}: " + describe_fit(fit) for name, fit in payload["fits"].items()]
    for c in payload["checks"]:
        lo, hi = c["ci95"]
        lines.append(f"{c['check']} at {c['size']}x{c['size']}: B/A {c['ratio']:.3f} [{lo:.3f}, {hi:.3f}]: "
                     f"{c['verdict']}")
    return lines


def plot_study(path: str | Path, payload: dict[str, Any]) -> Path:
    from fastslow.report.plots import plot_scaling

    series: dict[str, tuple[list[float], list[float]]] = {}
    for r in payload["rows"]:
        if r["median_s"]:
            xs, ys = series.setdefault(r["predictor"], ([], []))
            xs.append(r["size"])
            ys.append(r["median_s"])
    fc_sizes, fc_medians = series.pop("fc", ([], []))
    return plot_scaling(path, fc_sizes, fc_medians, fit=payload.get("fits", {}).get("fc"), series=series, label="fc",
                        xlabel="grid side (cells)", title="Game of Life: time per generation")


def study_sections(payload: dict[str, Any], plot: Path) -> Any:
    """The plot, the fits, the checks, then one table per predictor."""
    from fastslow.report.html import Section

    s = Section("Game of Life: time per generation against grid side").image(plot, "study plot")
    s.heading("Scaling: time = a·side^k fitted per predictor")
    s.table([{"predictor": k, "exponent k": f["exponent"],
              "ci95": list(f["ci95"]) if f["ci95"][0] is not None and math.isfinite(f["ci95"][0]) else f["ci_note"],
              "R²": f["r2"], "points": f["points_used"], "fitted on": f["basis"],
              "left out": [f"{n:g}" for n in f.get("excluded", [])]}
             for k, f in payload["fits"].items()])
    s.heading("Checks (interleaved A/B)")
    s.table([{"check": c["check"], "size": c["size"], "B/A": c["ratio"], "ci95": c["ci95"], "verdict": c["verdict"]}
             for c in payload["checks"]])
    for name in dict.fromkeys(r["predictor"] for r in payload["rows"]):
        s.heading(f"{name}")
        s.table([{"side": r["size"], "median_s": r["median_s"], "iqr_s": r.get("iqr_s"), "n": r.get("n"),
                  "per_cell_s": r["per_cell_s"], "accuracy": r["accuracy"], "flags": r.get("flags") or [],
                  "note": r["error"] or ""} for r in payload["rows"] if r["predictor"] == name])
    return s
