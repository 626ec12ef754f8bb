"""What people read: human units, tables from result dicts, JSON that is JSON."""

import json
import math

import pytest
from rich.console import Console

from fastslow.errors import UserError
from fastslow.report import output, tables
from fastslow.report.units import format_bytes, format_seconds


def _text(renderable) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_units():
    assert format_seconds(1.342e-05) == "13.4 us" and format_seconds(0.0021) == "2.1 ms"
    assert format_bytes(4 * 2**20) == "4.0 MiB"


def test_report_cells_and_environment_are_in_human_units(tmp_path):
    from fastslow.report.html import cell, write_report

    assert cell("median_s", 1.342e-05) == "13.4 us" and cell("test_accuracy", 1) == "100.0%"
    assert cell("others_cpu_percent", 100.0) == "100%" and cell("ratio", 1.23456) == "1.23"
    page = write_report(tmp_path / "r.html", "t", [], {"others_cpu_percent": 52.4, "git_commit": None}).read_text()
    assert "<td>52%</td>" in page and "<td>-</td>" in page and "52.4" not in page


def test_stats_table_marks_wide_spread_and_failed_points():
    stats = {"median_s": 1e-3, "iqr_s": 2e-4, "p10_s": 9e-4, "p90_s": 1.2e-3, "p99_s": 1.3e-3, "n": 40}
    rows = [{"params": {"B": 1}, "stats": stats, "throughput_per_s": 1000.0, "peak_mem_bytes": 2048,
             "warnings": ["spread too wide"]},
            {"params": {"B": 2}, "stats": None, "error": "boom"}]
    text = _text(tables.stats_table("t", rows, ["B"]))
    assert "1 ms !" in text and "failed" in text and "2.0 KiB" in text


def test_write_json_is_strict_and_checks_its_target(tmp_path, capsys):
    output.write_json("-", {"a": math.nan, "b": [math.inf, 1.0]})
    assert json.loads(capsys.readouterr().out) == {"a": None, "b": [None, 1.0]}
    with pytest.raises(UserError, match="is a directory"):
        output.check_output_path(str(tmp_path))
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        output.check_output_path(str(tmp_path / "f" / "out.json"))


def test_tables_go_to_stderr_when_stdout_carries_json():
    try:
        output.send_tables_to_stderr()
        assert output.console is output.err_console
    finally:
        output.send_tables_to_stdout()
    assert output.console is not output.err_console
