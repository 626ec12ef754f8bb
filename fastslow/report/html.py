"""A self-contained HTML report: a summary of the headline figures, tables in human units,
PNG plots inlined as data URIs, the environment."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastslow.report.units import format_bytes, format_seconds

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #555; font-size: 0.9em; } code { background: #f6f6f6; padding: 0 0.2em; }
.summary { background: #f5f8ff; border: 1px solid #cdd8f0; padding: 0.6em 1.2em; border-radius: 6px; }
.summary dt { font-weight: 600; margin-top: 0.4em; } .summary dd { margin-left: 1.2em; }
h3 { margin-bottom: 0.2em; font-size: 1em; }
"""


@dataclass
class Section:
    title: str
    parts: list[str] = field(default_factory=list)

    def text(self, s: str, cls: str = "") -> Section:
        self.parts.append(f"<p{' class=' + repr(cls) if cls else ''}>{html.escape(s)}</p>")
        return self

    def heading(self, s: str) -> Section:
        self.parts.append(f"<h3>{html.escape(s)}</h3>")
        return self

    def table(self, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Section:
        """Rows of values, each shown in human units chosen by its column's name (see `cell`)."""
        if not rows:
            return self.text("(nothing to show)", "note")
        columns = columns or list(rows[0])
        head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell(c, r.get(c)))}</td>" for c in columns) + "</tr>"
            for r in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")
        return self

    def image(self, path: Path, alt: str) -> Section:
        data = base64.b64encode(Path(path).read_bytes()).decode()
        self.parts.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
        return self


def cell(column: str, v: Any) -> str:
    """A value in human units, by its column: times (`*_s`) as 1.34 ms, bytes as KiB/MiB,
    accuracies as percentages, `*percent` to whole percents, intervals as [lo, hi], other numbers to
    3 significant figures."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list | tuple):
        if column.startswith("ci") and len(v) == 2:
            return f"[{cell('', v[0])}, {cell('', v[1])}]"
        return ", ".join(str(x) for x in v) or "-"
    if isinstance(v, int | float):
        if column.endswith("_s") or column in ("median", "time"):
            return format_seconds(float(v))
        if column.endswith("bytes"):
            return format_bytes(int(v))
        if "accuracy" in column:
            return f"{100 * v:.1f}%"
        if column.endswith("percent"):
            return f"{v:.0f}%"
        if isinstance(v, int):
            return f"{v:,}"
        return f"{v:.3g}"
    return str(v)


def write_report(path: Path, title: str, sections: list[Section], env: dict[str, Any],
                 summary: list[tuple[str, str]] | None = None) -> Path:
    """The page: `summary` (label, figure) pairs first, then the sections, then the environment."""
    env_rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(cell(str(k), v))}</td></tr>"
                       for k, v in env.items())
    top = ""
    if summary:
        items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in summary)
        top = f"<section class='summary'><h2>Summary</h2><dl>{items}</dl></section>"
    body = "".join(f"<h2>{html.escape(s.title)}</h2>{''.join(s.parts)}" for s in sections)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{top}{body}"
            f"<h2>Environment</h2><table>{env_rows}</table></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
