import multiprocessing as mp
import sqlite3
import threading

import pytest

from fastslow.errors import UserError
from fastslow.measure.devices import Peak
from fastslow.store.db import Record, ResultsStore

WRITES_PER_PROCESS = 40


def _record(i: int, command: str = "bench") -> Record:
    return Record(command, f"zoo:m{i}", {"threads": 1}, {"host": "h", "git_commit": "abc"},
                  {"fit": None}, summary=f"#{i}", points=[{"samples_s": [0.001 * i]}])


def test_round_trip_and_query(tmp_path):
    with ResultsStore(tmp_path / "r.db") as s:
        ids = [s.add(_record(i)) for i in range(3)]
        s.add(_record(9, command="compare"))
        r = s.get(ids[1])
        assert r.payload == {"fit": None} and r.points == [{"samples_s": [0.001]}]
        assert r.settings == {"threads": 1} and r.env["git_commit"] == "abc"
        assert [x.id for x in s.query(command="bench")] == ids[::-1]
        assert [x.spec for x in s.query(spec="m9")] == ["zoo:m9"]
        assert len(s.query(limit=2)) == 2
        assert s.query(since="2999-01-01") == []
        with pytest.raises(UserError, match="no such run"):
            s.get(999)


def test_wal_mode(tmp_path):
    ResultsStore(tmp_path / "r.db").close()
    conn = sqlite3.connect(tmp_path / "r.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _writer(path: str, offset: int) -> None:
    with ResultsStore(path) as s:
        for i in range(WRITES_PER_PROCESS):
            s.add(_record(offset + i))


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "r.db")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, k * 1000)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with ResultsStore(path) as s:
        runs = s.query(limit=None)
    assert len(runs) == 2 * WRITES_PER_PROCESS
    assert len({r.spec for r in runs}) == 2 * WRITES_PER_PROCESS


def test_opening_waits_for_a_writer_on_a_database_not_yet_in_wal_mode(tmp_path):
    """Another connection holds a write lock on a database in rollback mode (as when two
    processes open a fresh database together): SQLite refuses the switch to WAL at once,
    without its busy handler, so the store must wait for the lock and not fail."""
    path = tmp_path / "r.db"
    ResultsStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: conn.execute("COMMIT"))
    release.start()
    try:
        with ResultsStore(path) as s:
            s.add(_record(1))
    finally:
        release.join()
        conn.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_peaks_latest_per_kind(tmp_path):
    with ResultsStore(tmp_path / "r.db") as s:
        p = Peak("cpu", "x", "matmul", "float32", 1e9, 64, 1e-3, 1)
        s.add_peaks([p], host="h")
        s.add_peaks([Peak("cpu", "x", "matmul", "float32", 2e9, 64, 1e-3, 1)], host="h")
        assert s.latest_peaks("cpu", host="h") == {("matmul", "float32"): 2e9}
        assert s.latest_peaks("cuda:0") == {}


def test_unreadable_database_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="bad.db"):
        ResultsStore(bad)
