"""The results history: one embedded SQLite database, in WAL mode so that several processes
can write at once without losing a run (each write is its own IMMEDIATE transaction and waits
for the lock instead of failing)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastslow.errors import UserError

DEFAULT_DB = Path(".fastslow") / "results.db"
BUSY_TIMEOUT_MS = 60_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT NOT NULL,
    command     TEXT NOT NULL,
    spec        TEXT,
    status      TEXT NOT NULL,
    summary     TEXT NOT NULL DEFAULT '',
    host        TEXT,
    git_commit  TEXT,
    settings    TEXT NOT NULL,
    env         TEXT NOT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_command ON runs(command, created_at);
CREATE TABLE IF NOT EXISTS peaks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER REFERENCES runs(id),
    created_at  TEXT NOT NULL,
    host        TEXT,
    device      TEXT NOT NULL,
    name        TEXT,
    kind        TEXT NOT NULL,
    dtype       TEXT NOT NULL,
    value       REAL NOT NULL,
    size        INTEGER,
    median_s    REAL,
    threads     INTEGER
);
"""


def default_db_path() -> Path:
    return Path(os.environ.get("FASTSLOW_DB") or DEFAULT_DB)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Record:
    """What was run (command, spec, settings, environment) and what came out (payload)."""

    command: str
    spec: str | None
    settings: dict[str, Any]
    env: dict[str, Any]
    payload: dict[str, Any]
    status: str = "ok"  # ok | partial (some points failed) | failed | interrupted
    summary: str = ""
    id: int | None = None
    created_at: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "command": self.command, "spec": self.spec,
            "created_at": self.created_at, "status": self.status, "summary": self.summary,
            "settings": self.settings, "env": self.env, "payload": self.payload,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        return cls(command=d["command"], spec=d.get("spec"), settings=d.get("settings", {}),
                   env=d.get("env", {}), payload=d.get("payload", {}),
                   status=d.get("status", "ok"), summary=d.get("summary", ""), id=d.get("id"),
                   created_at=d.get("created_at") or now_iso())


class ResultsStore:
    """Runs and device peaks in SQLite. Open one per process; it is cheap."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                         isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as e:
            raise UserError(f"results database {self.path}: cannot open ({e})") from None
        self._conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> list[int]:
        ids = []
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                ids.append(int(self._conn.execute(sql, row).lastrowid))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return ids

    def add(self, record: Record) -> int:
        (run_id,) = self._write(
            "INSERT INTO runs (created_at, command, spec, status, summary, host, git_commit,"
            " settings, env, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(record.created_at, record.command, record.spec, record.status, record.summary,
              record.env.get("host"), record.env.get("git_commit"),
              json.dumps(record.settings), json.dumps(record.env), json.dumps(record.payload))],
        )
        record.id = run_id
        return run_id

    def get(self, run_id: int) -> Record:
        row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UserError(f"run {run_id}: no such run in {self.path}")
        return self._record(row)

    @staticmethod
    def _record(row: sqlite3.Row) -> Record:
        return Record(command=row["command"], spec=row["spec"],
                      settings=json.loads(row["settings"]), env=json.loads(row["env"]),
                      payload=json.loads(row["payload"]), status=row["status"],
                      summary=row["summary"], id=row["id"], created_at=row["created_at"])

    def query(
        self,
        *,
        command: str | None = None,
        spec: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int | None = 50,
    ) -> list[Record]:
        """Newest first. `spec` matches as a substring; `since` is an ISO date or time."""
        where, args = [], []
        if command:
            where.append("command = ?")
            args.append(command)
        if spec:
            where.append("spec LIKE ?")
            args.append(f"%{spec}%")
        if status:
            where.append("status = ?")
            args.append(status)
        if since:
            where.append("created_at >= ?")
            args.append(since)
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [self._record(r) for r in self._conn.execute(sql, args)]

    def add_peaks(self, peaks: Iterable[Any], *, host: str, run_id: int | None = None) -> None:
        created = now_iso()
        self._write(
            "INSERT INTO peaks (run_id, created_at, host, device, name, kind, dtype, value,"
            " size, median_s, threads) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, created, host, p.device, p.name, p.kind, p.dtype, p.value, p.size,
              p.median_s, p.threads) for p in peaks],
        )

    def latest_peaks(self, device: str, *, host: str | None = None) -> dict[tuple[str, str], float]:
        """{(kind, dtype): value} from the newest measurement of each on this device and host."""
        sql = "SELECT kind, dtype, value FROM peaks WHERE device = ?"
        args: list[Any] = [device]
        if host is not None:
            sql += " AND host = ?"
            args.append(host)
        out: dict[tuple[str, str], float] = {}
        for row in self._conn.execute(sql + " ORDER BY id ASC", args):
            out[(row["kind"], row["dtype"])] = float(row["value"])
        return out
