"""Nothing measured is lost: runs written as they happen, killed runs found, bad databases refused
before measuring, a database that fails mid-run leaves the results in a file. Real processes,
real signals, real SQLite files."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastslow.api.measure import bench_from_record
from fastslow.errors import UserError
from fastslow.measure.bench import ModelSource, RunSettings
from fastslow.store.db import SCHEMA_VERSION, Record, ResultsStore, StoreError, parse_since
from tests.conftest import FAST, FAST_CLI, default_sigint

FASTSLOW = [sys.executable, "-m", "fastslow"]
# A sweep long enough to be stopped halfway: each point is timed for about 0.3 s.
LONG_SWEEP = ["bench", "zoo:mlp", "--sweep", "B=1..4096", "--min-time", "0.3", "--max-time", "0.3"]


def _start(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "FASTSLOW_DB": str(tmp_path / "r.db"), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([*FASTSLOW, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)


def _points_stored(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as c:
        try:
            return c.execute("SELECT count(*) FROM points").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def _wait_for_points(db: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while _points_stored(db) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "no points were stored in time"
        time.sleep(0.05)


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_keeps_every_finished_point(tmp_path, sig, code):
    proc = _start(tmp_path, *LONG_SWEEP)
    _wait_for_points(tmp_path / "r.db", 2, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    with ResultsStore(tmp_path / "r.db", readonly=True) as s:
        (run,) = s.query()
        assert run.status == "interrupted"
        full = s.get(run.id)
    assert len(full.points) >= 2 and all(p["measurement"]["samples_s"] for p in full.points)
    assert "zoo:mlp on cpu" in out  # the finished points were also shown


def test_a_killed_run_shows_as_killed_with_its_points(tmp_path, cli):
    proc = _start(tmp_path, *LONG_SWEEP)
    _wait_for_points(tmp_path / "r.db", 2, proc)
    proc.kill()  # SIGKILL, as the kernel's out-of-memory killer sends
    proc.communicate(timeout=30)
    r = cli("--db", str(tmp_path / "r.db"), "history", "--json", "h.json")
    assert r.code == 0, r.err
    (run,) = json.loads((tmp_path / "h.json").read_text())["runs"]
    assert run["status"] == "killed"
    r = cli("show", str(run["id"]), "--db", str(tmp_path / "r.db"), "--json", "s.json")
    shown = json.loads((tmp_path / "s.json").read_text())
    assert len(shown["payload"]["points"]) >= 2 and shown["status"] == "killed"
    assert cli("history", "--db", str(tmp_path / "r.db"), "--status", "killed").code == 0


def test_a_stored_run_rebuilds_to_the_same_measurements(tmp_path):
    from fastslow.api.measure import bench

    result = bench(ModelSource("zoo:mlp"), RunSettings(sets={}), {"B": [1, 4, 16]}, FAST, store=tmp_path / "r.db")
    with ResultsStore(tmp_path / "r.db", readonly=True) as s:
        record = s.get(result.saved.run_id)
    rebuilt = bench_from_record(record)
    assert record.status == "ok" and len(rebuilt.points) == 3
    for a, b in zip(result.points, rebuilt.points, strict=True):
        assert a.params == b.params and a.batch == b.batch
        assert a.measurement.stats() == b.measurement.stats()  # every statistic, exactly
        assert a.measurement.warnings == b.measurement.warnings
        assert a.throughput_per_s == b.throughput_per_s
    assert rebuilt.fit.to_dict() == result.fit.to_dict()
    assert "stats" not in record.points[0]["measurement"]  # stored raw, derived on the way out


def test_corrupt_and_foreign_databases_are_refused_before_measuring(tmp_path, cli):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 1000)
    r = cli("bench", "zoo:mlp", "--db", str(garbage), *FAST_CLI)
    assert r.code == 2 and "garbage.db" in r.err and "zoo:mlp on cpu" not in r.out, r.out
    for command in (["history"], ["show", "1"]):
        r = cli(*command, "--db", str(garbage))
        assert r.code == 2 and "garbage.db" in r.err and "Traceback" not in r.err
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as c:
        c.execute("CREATE TABLE t (x)")
    r = cli("bench", "zoo:mlp", "--db", str(foreign), *FAST_CLI)
    assert r.code == 2 and "not a fastslow results database" in r.err


def test_a_corrupt_row_is_a_one_line_error(tmp_path, cli):
    db = tmp_path / "r.db"
    assert cli("bench", "zoo:mlp", "--db", str(db), *FAST_CLI).code == 0
    with sqlite3.connect(db) as c:
        c.execute("UPDATE runs SET env = '{not json'")
    for command in (["history"], ["show", "1"]):
        r = cli(*command, "--db", str(db))
        assert r.code == 2 and "run 1: column 'env' is not valid JSON" in r.err, r.err


def test_reading_a_missing_database_creates_nothing(tmp_path, cli):
    r = cli("history", "--db", "typo/results.db")
    assert r.code == 2 and "typo/results.db: not found" in r.err
    assert not (tmp_path / "typo").exists()


@pytest.fixture
def read_only(tmp_path):
    """Make paths read-only for this process, root included: chmod where we are not root,
    the immutable attribute (chattr +i) where we are (root writes through file modes)."""
    made: list[Path] = []

    def protect(*paths: Path) -> None:
        for p in paths:
            if os.geteuid() == 0:
                r = subprocess.run(["chattr", "+i", str(p)], capture_output=True, text=True)
                if r.returncode != 0:
                    pytest.skip(f"cannot make {p} read-only as root here: {r.stderr.strip()}")
            else:
                p.chmod(0o555 if p.is_dir() else 0o444)
            made.append(p)

    yield protect
    for p in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(p)], capture_output=True)
        p.chmod(0o755 if p.is_dir() else 0o644)


def test_a_read_only_database_is_read_but_not_written(tmp_path, cli, read_only):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "r.db"
    with ResultsStore(db) as s:
        s.add(Record("bench", "zoo:mlp", {}, {"host": "h"}, {}, summary="kept"))
    for extra in folder.glob("r.db-*"):  # checkpointed on close; WAL leftovers would be writable
        extra.unlink()
    read_only(db, folder)
    r = cli("history", "--db", str(db))
    assert r.code == 0 and "kept" in r.out, r.err
    r = cli("show", "1", "--db", str(db))
    assert r.code == 0, r.err
    r = cli("bench", "zoo:mlp", "--db", str(db), *FAST_CLI)
    assert r.code == 2 and "r.db" in r.err and "zoo:mlp on cpu" not in r.out, r.err  # refused before measuring


def test_a_database_that_fails_mid_run_leaves_the_results_in_a_file(tmp_path, monkeypatch, cli):
    real_add_point = ResultsStore.add_point

    def failing(self, run_id, index, point):  # the disk fills after the first point
        if index >= 1:
            raise StoreError(f"results database {self.path}: cannot write (database or disk is full)")
        return real_add_point(self, run_id, index, point)

    monkeypatch.setattr(ResultsStore, "add_point", failing)
    r = cli("bench", "zoo:mlp", "--sweep", "B=1,2,4", *FAST_CLI)
    assert r.code == 2 and "database or disk is full" in r.err
    assert "zoo:mlp on cpu" in r.out  # the results were shown
    (saved,) = tmp_path.glob("fastslow-unsaved-bench-*.json")
    assert str(saved.resolve()) in r.err
    assert len(json.loads(saved.read_text())["points"]) == 3
    r = cli("bench", "zoo:mlp", "--sweep", "B=1,2", "--json", "mine.json", *FAST_CLI)
    assert r.code == 2 and str((tmp_path / "mine.json").resolve()) in r.err
    assert len(json.loads((tmp_path / "mine.json").read_text())["points"]) == 2


def test_a_round_one_database_is_migrated(tmp_path, cli):
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as c:  # round 1's schema, with a run whose points sit in its payload
        c.executescript("""
            CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, command TEXT NOT NULL,
                spec TEXT, status TEXT NOT NULL, summary TEXT NOT NULL DEFAULT '', host TEXT, git_commit TEXT,
                settings TEXT NOT NULL, env TEXT NOT NULL, payload TEXT NOT NULL);
            CREATE TABLE peaks (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER, created_at TEXT NOT NULL,
                host TEXT, device TEXT NOT NULL, name TEXT, kind TEXT NOT NULL, dtype TEXT NOT NULL,
                value REAL NOT NULL, size INTEGER, median_s REAL, threads INTEGER);""")
        payload = {"points": [{"params": {"B": 2}, "samples_s": [0.001, 0.002, 0.003], "calls_per_sample": 4,
                               "stats": {"median_s": 99.0}, "batch": 2, "error": None}], "fit": None}
        c.execute("INSERT INTO runs (created_at, command, spec, status, settings, env, payload) VALUES "
                  "('2026-11-01T00:00:00+00:00', 'bench', 'zoo:mlp', 'ok', '{}', '{}', ?)", (json.dumps(payload),))
    r = cli("show", "1", "--db", str(db), "--json", "s.json")  # read-only: no migration, still readable
    assert r.code == 0, r.err
    point = json.loads((tmp_path / "s.json").read_text())["payload"]["points"][0]
    assert point["stats"]["median_s"] == 0.002  # derived from the samples, not the stored 99
    assert cli("bench", "zoo:mlp", "--db", str(db), *FAST_CLI).code == 0  # writing migrates
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert c.execute("SELECT count(*) FROM runs").fetchone()[0] == 2


def test_a_newer_database_is_refused(tmp_path):
    db = tmp_path / "new.db"
    ResultsStore(db).close()
    with sqlite3.connect(db) as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(UserError, match="written by a newer fastslow"):
        ResultsStore(db)


def test_since_and_status_are_checked(tmp_path, cli):
    assert cli("bench", "zoo:mlp", *FAST_CLI).code == 0
    for since in ("yesterday", "1d", "today", "2026-01-01", "12h"):
        r = cli("history", "--since", since, "--json", "h.json")
        assert r.code == 0 and len(json.loads((tmp_path / "h.json").read_text())["runs"]) == 1, (since, r.err)
    r = cli("history", "--since", "2999-01-01", "--json", "h.json")
    assert r.code == 0 and json.loads((tmp_path / "h.json").read_text())["runs"] == []
    r = cli("history", "--since", "notadate")
    assert r.code == 2 and "--since value 'notadate' is not a date" in r.err
    r = cli("history", "--status", "bogus")
    assert r.code == 2 and "--status value 'bogus' is unknown (known: running, ok" in r.err


def test_parse_since_relative_to_now():
    from datetime import UTC, datetime

    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_since("1d", now=now) == "2026-11-24T12:00:00.000+00:00"
    assert parse_since("yesterday", now=now) == "2026-11-24T00:00:00.000+00:00"
    assert parse_since("30m", now=now) == "2026-11-25T11:30:00.000+00:00"
