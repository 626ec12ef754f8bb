"""The command line as a user runs it: exit codes, one-line errors, JSON, the history."""

import json
import os
import textwrap
from pathlib import Path

import pytest

from fastslow.measure.stats import STAT_KEYS
from tests.conftest import FAST_CLI

FLAKY_MODEL = textwrap.dedent("""
    import torch
    import torch.nn as nn

    class Flaky(nn.Module):
        '''Fails at one size and is interrupted (as by Ctrl-C) at another.'''
        def __init__(self, fail_at=-1, interrupt_at=-1):
            super().__init__()
            self.fail_at, self.interrupt_at = fail_at, interrupt_at
        def forward(self, x):
            if x.shape[-1] == self.fail_at:
                raise RuntimeError("cannot handle this size")
            if x.shape[-1] == self.interrupt_at:
                raise KeyboardInterrupt
            return x * 2
""")


@pytest.fixture
def flaky(tmp_path: Path) -> str:
    f = tmp_path / "flaky.py"
    f.write_text(FLAKY_MODEL)
    return f"{f}:Flaky"


def test_bench_json_has_the_documented_shape(cli, tmp_path):
    r = cli("bench", "zoo:mlp", "--set", "B=4", "--json", "out.json", *FAST_CLI)
    assert r.code == 0, r.err
    d = json.loads((tmp_path / "out.json").read_text())
    assert set(d["env"]) >= {"torch", "device", "threads", "host", "git_commit"}
    (p,) = d["points"]
    assert p["params"] == {"B": 4} and p["error"] is None
    assert set(p["stats"]) == set(STAT_KEYS)
    assert p["throughput_per_s"] == pytest.approx(4 / p["stats"]["median_s"])
    assert p["peak_mem_bytes"] is not None
    assert d["fit"] is None
    assert "stored as run 1" in r.err


def test_sweep_fits_and_plots(cli, tmp_path):
    r = cli("bench", "zoo:convnet", "--sweep", "H=4,8,16,32", "--set", "W=8",
            "--json", "s.json", "--plot", "s.png", *FAST_CLI)
    assert r.code == 0, r.err
    d = json.loads((tmp_path / "s.json").read_text())
    assert [p["params"]["H"] for p in d["points"]] == [4, 8, 16, 32]
    assert set(d["fit"]) >= {"symbol", "exponent", "ci95", "r2", "knee"}
    assert d["fit"]["symbol"] == "H"
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_grid_sweep_fits_against_the_product(cli, tmp_path):
    r = cli("bench", "zoo:convnet", "--sweep", "H=4,8", "--sweep", "W=4,8", "--json", "g.json",
            *FAST_CLI)
    assert r.code == 0, r.err
    d = json.loads((tmp_path / "g.json").read_text())
    assert len(d["points"]) == 4
    assert d["fit"]["symbol"] == "H*W"


def test_failed_point_is_recorded_and_the_sweep_goes_on(cli, tmp_path, flaky):
    r = cli("bench", flaky, "--arg", "fail_at=8", "--input", "N", "--sweep", "N=4,8,16,32",
            "--json", "f.json", *FAST_CLI)
    assert r.code == 0, r.err
    points = json.loads((tmp_path / "f.json").read_text())["points"]
    assert [p["error"] is None for p in points] == [True, False, True, True]
    assert "cannot handle this size" in points[1]["error"]
    assert "failed (N=8)" in r.err
    cli("history", "--json", "h.json")
    assert json.loads((tmp_path / "h.json").read_text())["runs"][0]["status"] == "partial"


def test_interrupt_keeps_the_finished_points(cli, tmp_path, flaky):
    r = cli("bench", flaky, "--arg", "interrupt_at=16", "--input", "N", "--sweep", "N=4,8,16,32",
            "--json", "i.json", *FAST_CLI)
    assert r.code == 130
    d = json.loads((tmp_path / "i.json").read_text())
    assert d["interrupted"] is True
    assert [p["params"]["N"] for p in d["points"]] == [4, 8]
    cli("history", "--json", "h.json")
    run = json.loads((tmp_path / "h.json").read_text())["runs"][0]
    assert run["status"] == "interrupted"


@pytest.mark.parametrize("args,fragment", [
    (["bench", "zoo:nope"], "unknown zoo model 'nope'"),
    (["bench", "missing.py:Net"], "missing.py: not found"),
    (["bench", "zoo:mlp", "--input", "8x3"], "mat1 and mat2 shapes cannot be multiplied"),
    (["bench", "zoo:mlp", "--sweep", "B=1,x"], "--sweep value B: '1,x' is not a comma-separated list"),
    (["bench", "zoo:convnet", "--input", "Bx3xHxW:nope"], "unknown dtype 'nope'"),
    (["bench", "zoo:convnet", "--input", "Bx3xQxQ"], "symbol Q has no value"),
    (["bench", "zoo:mlp", "--set", "Z=3"], "symbol Z does not appear"),
    (["bench", "zoo:mlp", "--threads", "0"], "--threads must be >= 1"),
    (["bench", "zoo:mlp", "--device", "cuda:7"], "not available"),
    (["bench", "zoo:mlp", "--weights", "nope.pt"], "nope.pt: not found"),
    (["compare", "zoo:mlp", "--a", "threads"], "--a 'threads' must look like NAME=VALUE"),
    (["show", "42"], "results.db: not found (nothing has been stored there yet)"),
])
def test_bad_input_is_one_line_and_exit_2(cli, args, fragment):
    r = cli(*args, *([] if args[0] == "show" else FAST_CLI))
    assert r.code == 2
    lines = [ln for ln in r.err.splitlines() if ln.startswith("fastslow: error:")]
    assert len(lines) == 1 and fragment in lines[0], r.err
    assert "Traceback" not in r.err


def test_file_that_fails_to_import_is_exit_2(cli, tmp_path):
    (tmp_path / "bad.py").write_text("import not_a_module_anywhere\n")
    r = cli("bench", "bad.py:Net")
    assert r.code == 2 and "bad.py: import failed: ModuleNotFoundError" in r.err


def test_compare_one_spec_under_two_settings(cli, tmp_path):
    r = cli("compare", "zoo:mlp", "--set", "B=8", "--a", "threads=1", "--b", "B=64",
            "--json", "c.json", *FAST_CLI)
    assert r.code == 0, r.err
    d = json.loads((tmp_path / "c.json").read_text())
    assert set(d) >= {"a", "b", "ratio", "ci95", "verdict"}
    assert set(d["a"]) == set(STAT_KEYS)
    assert d["ratio"] > 1 and d["verdict"] in ("slower", "indistinguishable")
    assert d["ci95"][0] <= d["ratio"] <= d["ci95"][1]


def test_history_filters_and_show(cli, tmp_path):
    cli("bench", "zoo:mlp", *FAST_CLI)
    cli("bench", "zoo:elementwise", *FAST_CLI)
    cli("compare", "zoo:elementwise", *FAST_CLI)
    r = cli("history", "--command", "bench", "--json", "h.json")
    assert r.code == 0
    runs = json.loads((tmp_path / "h.json").read_text())["runs"]
    assert [x["spec"] for x in runs] == ["zoo:elementwise", "zoo:mlp"]
    assert set(runs[0]) >= {"id", "command", "spec", "created_at"}
    r = cli("history", "--spec", "mlp", "--json", "-")
    assert [x["spec"] for x in json.loads(r.out[r.out.index("{"):])["runs"]] == ["zoo:mlp"]
    r = cli("show", str(runs[1]["id"]), "--json", "one.json")
    assert r.code == 0 and "zoo:mlp" in r.out
    one = json.loads((tmp_path / "one.json").read_text())
    assert one["payload"]["points"][0]["samples_s"]  # raw samples are kept


def test_db_location_from_env_and_option(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTSLOW_DB", str(tmp_path / "env.db"))
    cli("bench", "zoo:elementwise", *FAST_CLI)
    assert (tmp_path / "env.db").exists()
    cli("--db", str(tmp_path / "opt.db"), "bench", "zoo:elementwise", *FAST_CLI)
    assert (tmp_path / "opt.db").exists()
    assert not (tmp_path / ".fastslow").exists()


def test_devices_peak_is_stored(cli, tmp_path):
    r = cli("devices", "--peak", "--threads", "1", "--matmul-size", "64", "--json", "d.json")
    assert r.code == 0, r.err
    d = json.loads((tmp_path / "d.json").read_text())
    assert d["devices"][0]["device"] == "cpu"
    assert {p["kind"] for p in d["peaks"]} == {"matmul", "bandwidth"}
    from fastslow.store.db import ResultsStore

    with ResultsStore(tmp_path / ".fastslow" / "results.db") as s:
        assert ("matmul", "float32") in s.latest_peaks("cpu")


def test_zoo_lists_models(cli):
    r = cli("zoo")
    assert r.code == 0 and "zoo:mlp" in r.out and "zoo:convnet" in r.out


@pytest.mark.parametrize("args,fragment", [
    (["bench", "zoo:mlp", "--min-time", "nan"], "--min-time is out of range (got nan)"),
    (["bench", "zoo:mlp", "--max-time", "inf"], "--max-time is out of range (got inf)"),
    (["bench", "zoo:mlp", "--precision", "nan"], "--precision is out of range (got nan)"),
    (["compare", "zoo:mlp", "--max-time", "-inf"], "is out of range (got -inf)"),
    (["bench", "zoo:mlp", "--input", "0x256"], "dimension 0 is empty"),
    (["bench", "zoo:mlp", "--set", "B=2", "--set", "B=3"], "B is already set to 2"),
    (["bench", "zoo:mlp", "--sweep", "B=1..99999999999999999999"], "goes past"),
    (["bench", "zoo:mlp", "--json", "."], "--json .: is a directory"),
    (["bench", "zoo:mlp", "--plot", "p.png"], "--plot draws time against a swept size: give a --sweep"),
    (["bench", "zoo:mlp", "--sweep", "B=0,16", "--plot", "p.png"], "sizes must lie in 1.."),
    (["optimize", "--task", "xor", "--max-accuracy-drop", "nan"], "--max-accuracy-drop must be a finite number"),
    (["optimize", "--task", "xor", "--try", "prune-random:abc"], "the amount must be a number"),
    (["optimize", "--task", "xor", "--try", ""], "--try has no steps"),
    (["life", "play", "--interval", "nan", "--no-render"], "--interval a finite number"),
    (["xor", "train", "--lr", "nan"], "--lr must be a finite number > 0"),
    (["life", "train", "--lr", "inf"], "--lr must be a finite number > 0"),
])
def test_bad_values_are_refused_before_any_work(cli, tmp_path, args, fragment):
    r = cli(*args)
    assert r.code == 2, r.out + r.err
    lines = [ln for ln in r.err.splitlines() if ln.startswith("fastslow: error:")]
    assert len(lines) == 1 and fragment in lines[0], r.err
    assert not (tmp_path / ".fastslow").exists()  # nothing was measured, trained or stored


def test_json_dash_is_one_json_document_on_stdout(cli):
    for args in (["zoo"], ["bench", "zoo:xor", *FAST_CLI], ["history"], ["show", "1"], ["devices"]):
        r = cli(*args, "--json", "-")
        assert r.code == 0, r.err
        json.loads(r.out)


def test_a_busy_machine_is_warned_about_and_recorded(cli, tmp_path):
    import subprocess
    import sys

    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        r = cli("bench", "zoo:xor", *FAST_CLI, "--json", "b.json")
    finally:
        for h in hogs:
            h.kill()
    assert r.code == 0, r.err
    assert "other processes were using" in r.err and "of this machine's CPU" in r.err
    busy = json.loads((tmp_path / "b.json").read_text())["env"]["others_cpu_percent"]
    assert busy >= 25
    cli("history", "--json", "h.json")
    assert json.loads((tmp_path / "h.json").read_text())["runs"][0]["env"]["others_cpu_percent"] == busy


def test_help_reads_well(cli):
    """Flags show no '<bool>', and the command list gives whole short sentences, not cut ones."""
    import typer

    from fastslow.cli import app

    group = typer.main.get_command(app)
    paths = [[]] + [[name] for name in group.commands]
    paths += [[name, sub] for name, cmd in group.commands.items() for sub in getattr(cmd, "commands", {})]
    for path in paths:
        r = cli(*path, "--help")
        assert r.code == 0, (path, r.err)
        assert "<bool>" not in r.out, path
        described = [ln for ln in r.out.splitlines() if not ln.startswith("Usage:")]
        assert not any(ln.rstrip().endswith("...") for ln in described), (path, r.out)


def test_csv_for_the_tabular_commands(cli, tmp_path):
    import csv

    r = cli("bench", "zoo:mlp", "--sweep", "B=1,4", *FAST_CLI, "--csv", "b.csv")
    assert r.code == 0, r.err
    rows = list(csv.DictReader((tmp_path / "b.csv").open()))
    assert [row["B"] for row in rows] == ["1", "4"] and all(float(row["median_s"]) > 0 for row in rows)
    assert {"n", "iqr_s", "flags", "p90_s", "throughput_per_s"} <= set(rows[0])
    r = cli("compare", "zoo:mlp", *FAST_CLI, "--csv", "-")
    assert r.code == 0, r.err
    rows = list(csv.DictReader(r.out.splitlines()))  # stdout holds the CSV alone
    assert [row["side"] for row in rows] == ["A", "B"] and rows[0]["verdict"] in ("faster", "slower",
                                                                                    "indistinguishable")
    r = cli("history", "--csv", "h.csv")
    assert [row["command"] for row in csv.DictReader((tmp_path / "h.csv").open())] == ["compare", "bench"]
    r = cli("arch", "zoo:mlp", "zoo:convnet", "--input", "Bx3x32x32", "--max-time", "0.1", "--csv", "a.csv")
    assert r.code == 2  # mlp rejects an image: refused, and no CSV half-written
    assert not (tmp_path / "a.csv").exists()
    assert cli("bench", "zoo:mlp", "--csv", ".").code == 2


def test_a_regression_gate_against_a_stored_run(cli, tmp_path):
    (tmp_path / "slow.py").write_text(textwrap.dedent("""
        import time
        from pathlib import Path
        import torch

        class Net(torch.nn.Module):
            def forward(self, x):
                time.sleep(float(Path("delay").read_text()))
                return x
        """))
    (tmp_path / "delay").write_text("0.002")
    gate = ["--input", "4", "--max-time", "0.2", "--min-time", "0.1"]
    assert cli("bench", "slow.py:Net", *gate).code == 0
    r = cli("compare", "slow.py:Net", "--baseline", "1", "--fail-if-slower", "20", "--json", "same.json")
    assert r.code == 0, r.err  # the same delay: within the 20% the gate allows
    assert json.loads((tmp_path / "same.json").read_text())["ratio"] < 1.2
    (tmp_path / "delay").write_text("0.006")
    r = cli("compare", "slow.py:Net", "--baseline", "1", "--fail-if-slower", "20")
    assert r.code == 1 and "fastslow: regression: B is slower by" in r.err and "more than the 20% allowed" in r.err
    assert "B is slower" in r.out
    for args, fragment in [(["zoo:mlp"], "run 1 measured slow.py:Net, not zoo:mlp"),
                           (["slow.py:Net", "--threads", "2"], "run 1 was measured with threads=1; this one has "
                                                               "threads=2"),
                           (["slow.py:Net", "--input", "8"], "inputs=['4']"),
                           (["slow.py:Net", "zoo:mlp"], "give one spec and no --a/--b")]:
        r = cli("compare", *args, "--baseline", "1")
        assert r.code == 2 and fragment in r.err, r.err
    assert cli("compare", "slow.py:Net", "--baseline", "4").code == 2  # a compare run, not a bench run
