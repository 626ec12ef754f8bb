"""The results history: one embedded SQLite database (WAL mode, so several processes can write
at once without losing a run: each write is its own IMMEDIATE transaction and waits for the
lock instead of failing).

Nothing measured is lost: a run's row is written when it starts (status `running`), each
point as it finishes (raw samples included), and the final status at the end (`ok`,
`partial`, `failed`, `interrupted`). A row still `running` whose process is gone was killed
(the kernel's OOM killer, SIGKILL, a power cut): readers show it as `killed`, with every
point it finished.

Opening for writing checks that the database can be written before anything is measured;
read-only commands open it read-only, so they work on a read-only file. Every sqlite3 error
becomes a `StoreError`: one line that names the database.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastslow.errors import UserError

DEFAULT_DB = Path(".fastslow") / "results.db"
BUSY_TIMEOUT_MS = 60_000
SCHEMA_VERSION = 1
STATUSES = ("running", "ok", "partial", "failed", "interrupted", "killed")

# Version 0 is round 1's layout (runs and peaks, every point inside the run's payload).
# Version 1 adds the process that owns a running run, and a row per finished point.
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
    payload     TEXT NOT NULL,
    pid         INTEGER,
    updated_at  TEXT
);
CREATE INDEX IF NOT EXISTS runs_command ON runs(command, created_at);
CREATE TABLE IF NOT EXISTS points (
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    idx         INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);
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

MIGRATIONS = {
    # 0 -> 1: the two columns of a running run; the points table comes from SCHEMA.
    1: ["ALTER TABLE runs ADD COLUMN pid INTEGER", "ALTER TABLE runs ADD COLUMN updated_at TEXT"],
}


class StoreError(UserError):
    """The results database cannot be opened, read or written."""


def default_db_path() -> Path:
    return Path(os.environ.get("FASTSLOW_DB") or DEFAULT_DB)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_since(text: str, *, now: datetime | None = None) -> str:
    """An ISO date or time ('2026-11-01', '2026-11-01T12:00'), 'today', 'yesterday', or an age
    ('30m', '12h', '1d', '2w'), as the UTC ISO time that stored runs are compared with."""
    now = now or datetime.now(UTC)
    t = text.strip().lower()
    if t in ("today", "yesterday"):
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        when = day - timedelta(days=1) if t == "yesterday" else day
    elif m := re.fullmatch(r"(\d+(?:\.\d+)?)\s*([mhdw])", t):
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        when = now - timedelta(**{unit: float(m.group(1))})
    else:
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            raise UserError(f"'since' value '{text}' is not a date: give an ISO date or time (2026-11-01, "
                            "2026-11-01T12:00), 'today', 'yesterday', or an age such as 30m, 12h, 1d, 2w") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


@dataclass
class Record:
    """What was run (command, spec, settings, environment) and what came out (payload).

    A run with points (bench) keeps them in `points`, each as its raw dict (what
    `Point.to_record()` gives); `payload` holds the rest.
    """

    command: str
    spec: str | None
    settings: dict[str, Any]
    env: dict[str, Any]
    payload: dict[str, Any]
    status: str = "ok"  # see STATUSES
    summary: str = ""
    id: int | None = None
    created_at: str = field(default_factory=now_iso)
    points: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "command": self.command, "spec": self.spec,
            "created_at": self.created_at, "status": self.status, "summary": self.summary,
            "settings": self.settings, "env": self.env, "payload": self.payload, "points": self.points,
        }


def _json(obj: Any) -> str:
    """Strict JSON: NaN and infinity become null rather than invalid JSON."""

    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(obj), allow_nan=False)


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """Put the database in write-ahead-log mode, waiting as long as the busy timeout for it.
    SQLite answers "database is locked" at once, without its busy handler, when another
    connection holds a write lock on a database not yet in WAL mode (two processes opening a
    fresh database together), so the switch is retried here."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(2 * pause, 0.1)


class ResultsStore:
    """Runs, their points and device peaks in SQLite. Open one per process; it is cheap.

    `readonly=True` never creates, migrates or writes anything, and works on a read-only file.
    """

    def __init__(self, path: str | Path | None = None, *, readonly: bool = False) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.readonly = readonly
        self.version = SCHEMA_VERSION
        with self._errors("cannot open"):
            if readonly:
                self._conn = self._open_readonly()
            else:
                self._conn = self._open_for_writing()
        self._conn.row_factory = sqlite3.Row

    # -- opening ---------------------------------------------------------------------------

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreError(f"results database {self.path}: not found (nothing has been stored there yet)")
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
            self._check(conn)
        except sqlite3.OperationalError:
            # A WAL database on a read-only file or folder: the shared-memory file cannot be
            # made, so read it as an immutable snapshot instead.
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?immutable=1", uri=True)
            self._check(conn)
        return conn

    def _open_for_writing(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"results database {self.path}: cannot create its folder ({e.strerror or e})") from None
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._check(conn)
        _switch_to_wal(conn)
        conn.execute("BEGIN IMMEDIATE")  # proves the file can be written before anything is measured
        try:
            self._migrate(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return conn

    def _check(self, conn: sqlite3.Connection) -> None:
        """Read the header and every table's definition: a file that is not a database, or one
        whose first pages are damaged, fails here rather than halfway through a run."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version > SCHEMA_VERSION:
            raise StoreError(f"results database {self.path}: written by a newer fastslow (schema {version}, "
                             f"this one knows {SCHEMA_VERSION}); upgrade fastslow or use another --db")
        if tables and "runs" not in tables:
            raise StoreError(f"results database {self.path}: an SQLite file, but not a fastslow results database "
                             f"(tables: {', '.join(sorted(tables))})")
        self.version = version if tables else SCHEMA_VERSION
        if self.readonly and tables:
            conn.execute("SELECT count(*) FROM runs").fetchone()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "runs" in tables:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for sql in MIGRATIONS.get(target, []):
                    conn.execute(sql)
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.version = SCHEMA_VERSION

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except sqlite3.Error as e:
            raise StoreError(f"results database {self.path}: {doing} ({e})") from None
        except OSError as e:
            raise StoreError(f"results database {self.path}: {doing} ({e.strerror or e})") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def _write(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> list[int]:
        if self.readonly:
            raise StoreError(f"results database {self.path}: opened read-only")
        ids = []
        with self._errors("cannot write"):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    ids.append(int(self._conn.execute(sql, row).lastrowid))
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return ids

    def start_run(self, record: Record) -> int:
        """Write the run's row now, status `running`, owned by this process."""
        (run_id,) = self._write(
            "INSERT INTO runs (created_at, command, spec, status, summary, host, git_commit, settings, env,"
            " payload, pid, updated_at) VALUES (?, ?, ?, 'running', '', ?, ?, ?, ?, '{}', ?, ?)",
            [(record.created_at, record.command, record.spec, record.env.get("host"), record.env.get("git_commit"),
              _json(record.settings), _json(record.env), os.getpid(), now_iso())],
        )
        record.id = run_id
        return run_id

    def add_point(self, run_id: int, index: int, point: dict[str, Any]) -> None:
        """One finished point, raw samples included, in its own transaction."""
        self._write("INSERT OR REPLACE INTO points (run_id, idx, created_at, data) VALUES (?, ?, ?, ?)",
                    [(run_id, index, now_iso(), _json(point))])

    def finish_run(self, run_id: int, status: str, summary: str, payload: dict[str, Any]) -> None:
        if status not in STATUSES or status == "running":
            raise ValueError(f"a run cannot finish as {status!r}")
        self._write("UPDATE runs SET status = ?, summary = ?, payload = ?, pid = NULL, updated_at = ? WHERE id = ?",
                    [(status, summary, _json(payload), now_iso(), run_id)])

    def add(self, record: Record) -> int:
        """A whole finished run (and its points) at once."""
        run_id = self.start_run(record)
        for i, p in enumerate(record.points):
            self.add_point(run_id, i, p)
        self.finish_run(run_id, record.status, record.summary, record.payload)
        record.id = run_id
        return run_id

    def add_peaks(self, peaks: Iterable[Any], *, host: str, run_id: int | None = None) -> None:
        created = now_iso()
        self._write(
            "INSERT INTO peaks (run_id, created_at, host, device, name, kind, dtype, value,"
            " size, median_s, threads) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, created, host, p.device, p.name, p.kind, p.dtype, p.value, p.size,
              p.median_s, p.threads) for p in peaks],
        )

    # -- reading ---------------------------------------------------------------------------

    def _has_points_table(self) -> bool:
        return self.version >= 1

    def _record(self, row: sqlite3.Row, with_points: bool) -> Record:
        def load(column: str) -> Any:
            try:
                return json.loads(row[column])
            except (TypeError, ValueError) as e:
                raise StoreError(f"results database {self.path}: run {row['id']}: column '{column}' is not "
                                 f"valid JSON ({e})") from None

        status = row["status"]
        keys = row.keys()
        if status == "running" and "pid" in keys and row["pid"] is not None:
            if row["host"] == socket.gethostname() and not _pid_alive(int(row["pid"])):
                status = "killed"
        payload = load("payload")
        points: list[dict[str, Any]] = []
        if with_points:
            if self._has_points_table():
                for p in self._conn.execute("SELECT idx, data FROM points WHERE run_id = ? ORDER BY idx",
                                            (row["id"],)):
                    try:
                        points.append(json.loads(p["data"]))
                    except ValueError as e:
                        raise StoreError(f"results database {self.path}: run {row['id']} point {p['idx']}: "
                                         f"not valid JSON ({e})") from None
            if not points and isinstance(payload, dict) and isinstance(payload.get("points"), list):
                points = payload.pop("points")  # a run stored by round 1: points inside the payload
        return Record(command=row["command"], spec=row["spec"], settings=load("settings"), env=load("env"),
                      payload=payload, status=status, summary=row["summary"], id=row["id"],
                      created_at=row["created_at"], points=points)

    def get(self, run_id: int) -> Record:
        with self._errors("cannot read"):
            row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"run {run_id}: no such run in {self.path}")
            return self._record(row, with_points=True)

    def query(
        self,
        *,
        command: str | None = None,
        spec: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int | None = 50,
    ) -> list[Record]:
        """Newest first. `spec` matches as a substring; `since` as `parse_since` takes it;
        `status` is one of STATUSES (`killed` and `running` are told apart by the process)."""
        if status is not None and status not in STATUSES:
            raise UserError(f"'status' value '{status}' is unknown (known: {', '.join(STATUSES)})")
        if limit is not None and limit < 1:
            raise UserError(f"'limit' must be >= 1 (got {limit})")
        where, args = [], []
        if command:
            where.append("command = ?")
            args.append(command)
        if spec:
            where.append("spec LIKE ?")
            args.append(f"%{spec}%")
        if status:
            where.append("status = ?")
            args.append("running" if status == "killed" else status)
        if since:
            where.append("created_at >= ?")
            args.append(parse_since(since))
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None and status not in ("running", "killed"):  # those two are told apart in Python
            sql += f" LIMIT {int(limit)}"
        with self._errors("cannot read"):
            records = (self._record(r, with_points=False) for r in self._conn.execute(sql, args))
            out = [r for r in records if status is None or r.status == status]
        return out[:limit] if limit is not None else out

    def latest_peaks(self, device: str, *, host: str | None = None,
                     threads: int | None = None) -> dict[tuple[str, str], float]:
        """{(kind, dtype): value} from the newest measurement of each on this device and host
        (and thread count, when given)."""
        sql = "SELECT kind, dtype, value FROM peaks WHERE device = ?"
        args: list[Any] = [device]
        if host is not None:
            sql += " AND host = ?"
            args.append(host)
        if threads is not None:
            sql += " AND threads = ?"
            args.append(threads)
        out: dict[tuple[str, str], float] = {}
        with self._errors("cannot read"):
            for row in self._conn.execute(sql + " ORDER BY id ASC", args):
                out[(row["kind"], row["dtype"])] = float(row["value"])
        return out
