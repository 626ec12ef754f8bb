"""Built-in tasks for `optimize`, by name, and `resolve_task` for a user's own."""

from __future__ import annotations

from collections.abc import Callable

from fastslow.errors import UserError
from fastslow.registry import Registry
from fastslow.specs import resolve_callable
from fastslow.tasks.base import Task
from fastslow.tasks.digits import digits_task
from fastslow.tasks.life.task import life_task
from fastslow.tasks.xor.task import xor_task

TASKS: Registry[Callable[[], Task]] = Registry("task")
TASKS.add("digits", digits_task)
TASKS.add("life", life_task)
TASKS.add("xor", xor_task)


def resolve_task(name: str) -> Task:
    """A built-in task by name, or `module:function` returning a Task."""
    if name in TASKS:
        return TASKS.get(name)()
    if ":" not in name:
        raise UserError(f"'task' value '{name}' is unknown (built in: {', '.join(TASKS)}; or module:function)")
    task = resolve_callable(name, what="task")()
    if not isinstance(task, Task):
        raise UserError(f"task '{name}' returned a {type(task).__name__}, not a fastslow.tasks.base.Task")
    return task
