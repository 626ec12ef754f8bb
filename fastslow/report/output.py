"""Terminal output (rich) and JSON files: the only places results are shown or written."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from fastslow.errors import UserError

# Piped output gets a wide console rather than rich's 80-column default, so tables stay
# one line per row in logs and in the README.
_PIPE_WIDTH = 160
_stdout_console = Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPE_WIDTH)
console = _stdout_console  # where tables and results go: stdout, or stderr under `--json -`


def send_tables_to_stderr() -> None:
    """Keep stdout for one JSON document (`--json -`): everything else goes to stderr."""
    global console
    console = err_console


def send_tables_to_stdout() -> None:
    global console
    console = _stdout_console


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN or infinity
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


def check_output_path(path: str | None, flag: str = "--json") -> None:
    """Refuse an output target that cannot be written, before anything is measured."""
    if not path or path == "-":
        return
    p = Path(path)
    if p.is_dir():
        suffix = "json" if flag == "--json" else "csv"
        raise UserError(f"{flag} {path}: is a directory; give a file path such as {p / f'result.{suffix}'}")
    parent = next((a for a in [p.parent, *p.parent.parents] if a.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UserError(f"{flag} {path}: {parent} is a file, not a folder")


def write_json(path: str | None, obj: dict[str, Any]) -> None:
    """Write to PATH ('-' is stdout). The error names the path when it cannot be written."""
    if not path:
        return
    text = json.dumps(_jsonable(obj), indent=2, allow_nan=False)
    if path == "-":
        sys.stdout.write(text + "\n")
        return
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text + "\n")
    except OSError as e:
        raise UserError(f"--json {path}: cannot write ({e.strerror or e})") from None


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
    lo, hi = fit["ci95"]
    interval = (f"95% CI [{lo:.3f}, {hi:.3f}]" if lo is not None and math.isfinite(lo)
                else fit.get("ci_note") or "no interval")
    knee = f"; knee {fit['knee']:.3g}" if fit.get("knee") is not None else ""
    left_out = ""
    if fit.get("excluded"):
        left_out = "; left out for few samples or wide spread: " + ", ".join(f"{n:g}" for n in fit["excluded"])
    return (f"time ∝ {fit['symbol']}^{fit['exponent']:.3f}  ({interval}, R² {fit['r2']:.4f}, "
            f"{fit['points_used']} points: {fit.get('basis', 'past the knee')}{knee}{left_out})")


def write_csv(path: str | None, rows: list[dict[str, Any]]) -> None:
    """One CSV row per dict, columns in first-seen order; lists joined with ';', NaN and None
    empty. PATH '-' is stdout."""
    import csv
    import io

    if not path:
        return
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]

    def cell(v: Any) -> Any:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return ""
        if isinstance(v, list | tuple):
            return ";".join(str(x) for x in v)
        if isinstance(v, dict):
            return ";".join(f"{k}={x}" for k, x in v.items())
        return v

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows({k: cell(r.get(k)) for k in columns} for r in rows)
    if path == "-":
        sys.stdout.write(buf.getvalue())
        return
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(buf.getvalue())
    except OSError as e:
        raise UserError(f"--csv {path}: cannot write ({e.strerror or e})") from None
