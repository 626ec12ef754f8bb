"""The Game-of-Life study shown: its table, its plot, and its section of the HTML report."""

from __future__ import annotations

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
    from fastslow.report.html import Section

    s = Section("Game of Life: time per generation against grid side")
    s.table([{k: r[k] for k in ("predictor", "size", "median_s", "per_cell_s", "accuracy", "error")}
             for r in payload["rows"]]).image(plot, "study plot")
    s.table([{"predictor": k, "exponent": f["exponent"], "ci95": f"[{f['ci95'][0]:.3f}, {f['ci95'][1]:.3f}]",
              "r2": f["r2"], "knee": f["knee"]} for k, f in payload["fits"].items()])
    s.table(payload["checks"])
    return s
