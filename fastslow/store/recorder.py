"""Writing a run while it happens: `RunRecorder` puts the run's row in the database when the
run starts, each point as it finishes, and the final status at the end, and keeps going if the
database fails halfway (the caller still has every result, and `error` says what failed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastslow.store.db import Record, ResultsStore, StoreError


@dataclass
class Saved:
    """Where a run went: its id and database, or the store error that stopped it."""

    run_id: int | None = None
    path: Path | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "db": str(self.path) if self.path else None, "error": self.error}


def open_store(store: ResultsStore | str | Path | bool | None) -> ResultsStore | None:
    """What the API functions take as `store`: a ResultsStore, a database path, True (the
    default database), or False/None (do not store)."""
    if store is None or store is False:
        return None
    if isinstance(store, ResultsStore):
        return store
    return ResultsStore(None if store is True else store)


class RunRecorder:
    def __init__(self, store: ResultsStore | None, record: Record) -> None:
        self.store, self.record = store, record
        self.saved = Saved(path=store.path if store else None)

    def _try(self, write: Any, *args: Any) -> None:
        if self.store is None or self.saved.error is not None:
            return
        try:
            write(*args)
        except StoreError as e:
            self.saved.error = str(e)

    def start(self) -> RunRecorder:
        if self.store is not None:
            # The first write is not caught: a database that cannot take the run's row fails
            # the command before anything is measured.
            self.saved.run_id = self.store.start_run(self.record)
        return self

    def point(self, index: int, point: dict[str, Any]) -> None:
        if self.saved.run_id is not None:
            self._try(self.store.add_point, self.saved.run_id, index, point)  # type: ignore[union-attr]

    def finish(self, status: str, summary: str, payload: dict[str, Any]) -> None:
        self.record.status, self.record.summary, self.record.payload = status, summary, payload
        if self.saved.run_id is not None:
            self._try(self.store.finish_run, self.saved.run_id, status, summary, payload)  # type: ignore[union-attr]

    @contextmanager
    def running(self) -> Iterator[RunRecorder]:
        """Start; on an exception that escapes, end the run as `interrupted` (Ctrl-C, SIGTERM) or
        `failed` (anything else) and let it propagate. The body calls `finish` itself."""
        self.start()
        try:
            yield self
        except KeyboardInterrupt:
            self.finish("interrupted", "interrupted", self.record.payload)
            raise
        except BaseException as e:
            self.finish("failed", f"failed: {type(e).__name__}", self.record.payload)
            raise
