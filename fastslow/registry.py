"""One small registry helper for every named, pluggable thing in fastslow: zoo models, model
sources (zoo:, timm:, ...), optimization steps, tasks, TpuGraphs rankers and losses.

    STEPS = Registry("optimization step")

    @STEPS.register("int8-dynamic")
    def int8_dynamic(...): ...

    STEPS.get("int8-dynamik")  # UserError: unknown optimization step 'int8-dynamik' (known: int8-dynamic, ...)
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from fastslow.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named objects of one kind, in registration order. Registering a name twice is a bug
    (ValueError); asking for an unknown name is the user's error and lists the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, obj: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj
        return obj

    def remove(self, name: str) -> T:
        """Take a registration back (tests register throw-away entries)."""
        return self._items.pop(name)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""
        return lambda obj: self.add(name, obj)

    def get(self, name: str) -> T:
        if name not in self._items:
            raise self.unknown(name)
        return self._items[name]

    def unknown(self, name: str) -> UserError:
        close = difflib.get_close_matches(name, list(self._items), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return UserError(f"unknown {self.kind} '{name}' (known: {', '.join(self._items)}){hint}")

    def names(self, pattern: str = "*") -> list[str]:
        return [n for n in self._items if fnmatch.fnmatch(n, pattern)]

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
