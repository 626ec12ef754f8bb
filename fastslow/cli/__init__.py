"""The `fastslow` command line: one module per command group (measure, cost, optimize, tasks,
tpugraphs, predict), the shared options in `app`. Each command parses, builds the config objects the
Python API takes (fastslow.api), calls it, and renders the result; it holds no other logic."""

from __future__ import annotations

from fastslow.cli import cost, measure, optimize, predict, tasks, tpugraphs  # noqa: F401  (register their commands)
from fastslow.cli.app import app, run, state

__all__ = ["app", "main", "state"]


def main(argv: list[str] | None = None) -> None:
    from fastslow.report import output

    output.send_tables_to_stdout()  # `--json -` in an earlier in-process call does not carry over
    run(argv)


if __name__ == "__main__":
    main()
