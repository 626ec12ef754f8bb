"""Built-in tasks for `optimize`, by name."""

from __future__ import annotations

from collections.abc import Callable

from fastslow.tasks.base import Task


def _digits() -> Task:
    from fastslow.tasks.digits import digits_task

    return digits_task()


def _life() -> Task:
    from fastslow.tasks.life.task import life_task

    return life_task()


def _xor() -> Task:
    from fastslow.tasks.xor.task import xor_task

    return xor_task()


TASKS: dict[str, Callable[[], Task]] = {"digits": _digits, "life": _life, "xor": _xor}
