"""What every command shares: the typer app, the global options, the options many commands
take, the progress bar, and turning library errors into one line that names the flag.

The command modules (measure, cost, optimize, tasks, tpugraphs) import this one and nothing
of each other; `fastslow.cli` imports them all to register their commands.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

try:  # typer >= 0.2x carries its own copy of click
    import typer._click as click
except ImportError:  # pragma: no cover  (older typer uses click itself)
    import click  # type: ignore[no-redef]
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from fastslow.errors import Terminated, UserError, stop_raised, stop_taken

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
    help="How fast is a PyTorch model, why, and how to make it faster.",
)
state: dict[str, Any] = {"debug": False, "db": None}


def _set_db(value: str | None) -> str | None:
    if value is not None:
        state["db"] = value
    return value


def _csv_target(value: str | None) -> str | None:
    from fastslow.report import output

    output.check_output_path(value, "--csv")
    if value == "-":
        output.send_tables_to_stderr()
    return value


def _json_target(value: str | None) -> str | None:
    """`--json -`: stdout carries the JSON document alone, so tables go to stderr."""
    if value == "-":
        from fastslow.report import output

        output.send_tables_to_stderr()
    return value


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    db: Annotated[str | None, typer.Option(
        "--db", help="Results database (default $FASTSLOW_DB or .fastslow/results.db).", callback=_set_db)] = None,
) -> None:
    state["debug"] = debug


def store(readonly: bool = False) -> Any:
    """The results database the command was pointed at."""
    from fastslow.store.db import ResultsStore

    return ResultsStore(state["db"], readonly=readonly)


# Options shared by several commands (one definition each).
Db = Annotated[str | None, typer.Option(
    "--db", metavar="PATH", help="Results database (as the global --db).", callback=_set_db, show_default=False)]
Inputs = Annotated[list[str] | None, typer.Option(
    "--input", "-i", metavar="SHAPE", help="Input SHAPE[:dtype[:high]], repeatable; symbols allowed (Bx3xHxW).")]
Args = Annotated[list[str] | None, typer.Option(
    "--arg", metavar="NAME=VALUE", help="Constructor argument, repeatable.")]
Sets = Annotated[list[str] | None, typer.Option("--set", metavar="NAME=N", help="Bind a symbol: B=8. Repeatable.")]
Weights = Annotated[str | None, typer.Option(
    "--weights", metavar="FILE", help="State dict file (loaded with weights_only=True).")]
Device = Annotated[str, typer.Option("--device", metavar="DEVICE", help="cpu, cuda, cuda:1, mps.")]
Threads = Annotated[int, typer.Option("--threads", metavar="N", help="Torch intra-op threads (the reproducible 1).")]
MinTime = Annotated[float | None, typer.Option(
    "--min-time", metavar="S", help="Least timed seconds per point.", show_default=False)]
MaxTime = Annotated[float | None, typer.Option(
    "--max-time", metavar="S", help="Most timed seconds per point.", show_default=False)]
Precision = Annotated[float | None, typer.Option(
    "--precision", metavar="F", help="Stop once the median's 95% CI half-width is within this fraction.",
    show_default=False)]
CsvOut = Annotated[str | None, typer.Option(
    "--csv", metavar="PATH", help="Write the table as CSV ('-': stdout, tables go to stderr).", callback=_csv_target)]
MinSamples = Annotated[int | None, typer.Option(
    "--min-samples", metavar="N", help="Least samples per point (default 5), within a per-point cap of 60 s.",
    show_default=False)]
JsonOut = Annotated[str | None, typer.Option(
    "--json", metavar="PATH", help="Write the result as JSON ('-': stdout, tables go to stderr).",
    callback=_json_target)]


def timer(purpose: str, min_time: float | None = None, max_time: float | None = None,
          precision: float | None = None, min_samples: int | None = None) -> Any:
    """The command's timer: its purpose's preset with the user's flags on top."""
    from fastslow.measure.timer import TimerConfig

    return TimerConfig.preset(purpose, min_time_s=min_time, max_time_s=max_time, rel_precision=precision,
                              min_samples=min_samples)


class _TimeLeft(TimeRemainingColumn):
    """The time left: the rate so far times the steps left, or, where the work has a time budget
    that ends sooner, the budget's end, marked "(budget)" (a 4-minute collection of 300 models
    stops at 4 minutes, not at the 40 its rate would take)."""

    def render(self, task: Task) -> Text:
        deadline = task.fields.get("deadline")
        if deadline is not None:
            left = max(0.0, deadline - time.monotonic())
            if task.time_remaining is None or left < task.time_remaining:  # H:MM:SS, as the rate's
                return Text(f"{timedelta(seconds=round(left))} (budget)", style="progress.remaining")
        return super().render(task)


@contextmanager
def progress(total: int | None, description: str, *, budget_s: float | None = None
             ) -> Iterator[Callable[..., None]]:
    """A progress bar with an ETA on stderr (only where stderr is a terminal), which stops at
    `budget_s` from now where the work has such a budget. It yields
    `advance(description=None, *, done=None, total=None)`: one more step done, or `done` steps
    in all, out of `total` where the count is known only once work has begun (start with None)."""
    from fastslow.report.output import err_console

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  _TimeLeft(), console=err_console, transient=True,
                  disable=not err_console.is_terminal) as bar:
        deadline = None if budget_s is None else time.monotonic() + budget_s
        task = bar.add_task(description, total=total, deadline=deadline)

        def advance(desc: str | None = None, *, done: int | None = None, total: int | None = None) -> None:
            bar.update(task, total=total, description=desc or description, refresh=True,  # drawn at each step
                       **({"advance": 1} if done is None else {"completed": done}))

        yield advance


def say(message: str) -> None:
    from fastslow.report.output import err_console

    err_console.print(message)


def warn_if_busy() -> None:
    """Say so when the machine was busy with other work as timing began (the figure is stored
    with the run's environment as others_cpu_percent)."""
    from fastslow.env import busy_warning

    line = busy_warning()
    if line:
        say(f"[yellow]warning[/yellow]: {line}")


def report_saved(saved: Any, payload: dict[str, Any], json_out: str | None, command: str) -> None:
    """After the results are shown: where the run was stored or, when the database failed
    during the run, where the results are instead (an error, exit 2)."""
    from fastslow.report import output

    if saved is None:
        return
    if saved.error is None:
        if saved.run_id is not None:
            say(f"stored as run {saved.run_id} in {saved.path}")
        return
    if json_out and json_out != "-":
        where = json_out
    else:
        from datetime import datetime

        where = f"fastslow-unsaved-{command.replace(' ', '-')}-{datetime.now():%Y%m%d-%H%M%S}.json"
        output.write_json(where, payload)
    raise UserError(f"{saved.error}; the results were not stored, they are in {Path(where).resolve()}")


# Library errors name parameters as the library does ('max_time_s'); these are the ones whose
# flag is not simply the name with dashes.
FLAG_ALIASES = {
    "min_time_s": "--min-time", "max_time_s": "--max-time", "rel_precision": "--precision",
    "sets": "--set", "sweeps": "--sweep", "fit_symbol": "--fit", "inputs": "--input", "args": "--arg",
    "pipelines": "--try", "since": "--since", "status": "--status", "budget_s": "--budget",
    "runtime": "--runtimes",
}


def flagged(message: str, flags: dict[str, str]) -> str:
    """'threads' must be >= 1 -> --threads must be >= 1: a library error that leads with a quoted
    parameter name gets the flag that set it; so do the library-only names anywhere in it
    ('max_time_s' is below 'min_time_s' -> --max-time is below --min-time). Other quoted words are
    the user's values and stay as they are."""
    import re

    def swap(m: re.Match[str]) -> str:
        return FLAG_ALIASES.get(m.group(1)) or m.group(0)

    lead = re.match(r"'([a-z][a-z0-9_]*)'", message)
    if lead and (lead.group(1) in FLAG_ALIASES or lead.group(1) in flags):
        message = (FLAG_ALIASES.get(lead.group(1)) or flags[lead.group(1)]) + message[lead.end():]
    return re.sub(r"'([a-z][a-z0-9_]*_s|rel_precision|fit_symbol)'", swap, message)


def _terminate(signum: int, frame: Any) -> None:
    state["terminated"] = True  # typer turns any KeyboardInterrupt into exit 130; this says which it was
    raise stop_raised(Terminated())


def _interrupt(signum: int, frame: Any) -> None:
    raise stop_raised(KeyboardInterrupt())


@contextmanager
def stop_signals() -> Iterator[None]:
    """SIGTERM raises Terminated and Ctrl-C KeyboardInterrupt where the program is, each noted so
    that a long loop raises it again if Python dropped it (fastslow.errors.stop_raised). Ctrl-C
    keeps its disposition where it is not Python's own handler (ignored in a background job)."""
    previous_term = signal.signal(signal.SIGTERM, _terminate)
    own_int = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    previous_int = signal.signal(signal.SIGINT, _interrupt) if own_int else None
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if own_int:
            signal.signal(signal.SIGINT, previous_int)
        stop_taken()


def run(argv: list[str] | None = None) -> None:
    """Run the app: bad input is one line on stderr and exit 2; Ctrl-C exits 130 and SIGTERM 143,
    after the command has stored what it finished."""
    state["terminated"] = False
    command = typer.main.get_command(app)
    with stop_signals():
        try:
            code = command.main(args=argv, prog_name="fastslow", standalone_mode=False)
        except UserError as e:
            if state["debug"]:
                raise
            message = flagged(" ".join(str(e).split()), _collect_flags(command))  # always one line
            print(f"fastslow: error: {message}", file=sys.stderr)
            sys.exit(2)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            code = 130
    if code == 130:  # Ctrl-C or SIGTERM: what the command finished is stored (and shown)
        terminated = state["terminated"]
        print(f"fastslow: {'terminated (SIGTERM)' if terminated else 'interrupted'}: finished work was kept",
              file=sys.stderr)
        sys.exit(143 if terminated else 130)
    if isinstance(code, int) and code:
        sys.exit(code)


def _collect_flags(group: click.Command) -> dict[str, str]:
    """Every option's python name -> its longest flag, over all commands (names agree across them)."""
    out: dict[str, str] = {}
    stack = [group]
    while stack:
        cmd = stack.pop()
        for p in cmd.params:
            if getattr(p, "param_type_name", "") == "option" and p.name:
                out.setdefault(p.name, max(p.opts, key=len))
        stack.extend(getattr(cmd, "commands", {}).values())
    return out
