"""Terminal output (rich) and JSON files: the only places results are shown or written."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fastslow.errors import UserError
from fastslow.report.units import format_bytes, format_rate, format_seconds

# Piped output gets a wide console rather than rich's 80-column default, so tables stay
# one line per row in logs and in the README.
_PIPE_WIDTH = 160
console = Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPE_WIDTH)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN or infinity
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


def write_json(path: str | None, obj: dict[str, Any]) -> None:
    """Write to PATH ('-' is stdout). The error names the path when it cannot be written."""
    if not path:
        return
    text = json.dumps(_jsonable(obj), indent=2)
    if path == "-":
        sys.stdout.write(text + "\n")
        return
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text + "\n")
    except OSError as e:
        raise UserError(f"--json {path}: cannot write ({e.strerror or e})") from None


def stats_table(title: str, rows: list[dict[str, Any]], param_names: list[str]) -> Table:
    """One row per bench point: params, latency distribution, throughput, memory, error."""
    t = Table(title=title, title_justify="left")
    for name in param_names:
        t.add_column(name, justify="right")
    for col in ("median", "IQR", "p10", "p90", "p99", "n", "items/s", "peak mem"):
        t.add_column(col, justify="right")
    for r in rows:
        params = [str(r["params"].get(n, "")) for n in param_names]
        s = r.get("stats")
        if s is None:
            t.add_row(*params, "[red]failed[/red]", *["-"] * 7)
            continue
        mark = " [yellow]![/yellow]" if r.get("warnings") else ""
        t.add_row(
            *params, format_seconds(s["median_s"]) + mark, format_seconds(s["iqr_s"]),
            format_seconds(s["p10_s"]), format_seconds(s["p90_s"]), format_seconds(s["p99_s"]),
            str(s["n"]), format_rate(r.get("throughput_per_s")),
            format_bytes(r.get("peak_mem_bytes")),
        )
    return t


def print_warnings(rows: list[dict[str, Any]], param_names: list[str]) -> None:
    """Failed points and untrustworthy measurements, one line each, under the table."""
    for r in rows:
        where = ", ".join(f"{n}={r['params'][n]}" for n in param_names if n in r["params"])
        at = f" ({where})" if where else ""
        if r.get("error"):
            err_console.print(f"[red]failed[/red]{at}: {escape(r['error'])}")
        for w in r.get("warnings") or []:
            err_console.print(f"[yellow]warning[/yellow]{at}: {w}")


def describe_fit(fit: dict[str, Any] | None) -> str:
    if not fit:
        return ""
    knee = f"{fit['knee']:.3g}" if fit.get("knee") is not None else "not seen"
    lo, hi = fit["ci95"]
    return (f"time ∝ {fit['symbol']}^{fit['exponent']:.3f}  (95% CI [{lo:.3f}, {hi:.3f}], "
            f"R² {fit['r2']:.4f}, {fit['points_used']} points past the knee; knee {knee})")
