"""The `fastslow` command line: parse, build the configs the Python API takes, call, render.

Bad input raises `UserError`; `main` prints it as one line on stderr and exits with 2
(`--debug` shows the traceback instead).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fastslow.errors import UserError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="How fast is a PyTorch model, why, and how to make it faster.",
)
_state: dict[str, Any] = {"debug": False, "db": None}


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    db: Annotated[str | None, typer.Option(
        "--db", help="Results database (default $FASTSLOW_DB or .fastslow/results.db).")] = None,
) -> None:
    _state["debug"] = debug
    _state["db"] = db


def store():
    from fastslow.store.db import ResultsStore

    return ResultsStore(_state["db"])


# Options shared by the commands that time a model.
Inputs = Annotated[list[str] | None, typer.Option(
    "--input", "-i", help="Input SHAPE[:dtype[:high]], repeatable; symbols allowed (Bx3xHxW).")]
Args = Annotated[list[str] | None, typer.Option(
    "--arg", help="Constructor argument NAME=VALUE, repeatable.")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="Bind a symbol: B=8. Repeatable.")]
Weights = Annotated[str | None, typer.Option(
    "--weights", help="State dict file (loaded with weights_only=True).")]
Device = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps.")]
Threads = Annotated[int, typer.Option("--threads", help="Torch intra-op threads while timing.")]
MinTime = Annotated[float, typer.Option("--min-time", help="Least timed seconds per point.")]
MaxTime = Annotated[float, typer.Option("--max-time", help="Most timed seconds per point.")]
Precision = Annotated[float, typer.Option(
    "--precision", help="Stop once the median's 95% CI half-width is within this fraction.")]
JsonOut = Annotated[str | None, typer.Option("--json", help="Write the result as JSON ('-': stdout).")]


def _timer(min_time: float, max_time: float, precision: float):
    from fastslow.measure.timer import TimerConfig

    return TimerConfig(min_time_s=min_time, max_time_s=max_time, rel_precision=precision)


@contextmanager
def _progress(total: int, description: str):
    from fastslow.report.output import err_console

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True,
                  disable=not err_console.is_terminal) as progress:
        task = progress.add_task(description, total=total)
        yield lambda desc=None: progress.update(task, advance=1, description=desc or description)


@app.command()
def bench(
    spec: Annotated[str, typer.Argument(help="zoo:NAME, path/file.py:Attr or package.module:attr")],
    input: Inputs = None,
    arg: Args = None,
    set: Sets = None,
    sweep: Annotated[list[str] | None, typer.Option(
        "--sweep", help="Sweep a symbol: H=32,64,128 or H=1..2048 (doubling). Repeatable: grid.")] = None,
    weights: Weights = None,
    device: Device = "cpu",
    threads: Threads = 1,
    cuda_graph: Annotated[bool, typer.Option("--cuda-graph", help="CUDA: time graph replays.")] = False,
    min_time: MinTime = 0.2,
    max_time: MaxTime = 2.0,
    precision: Precision = 0.01,
    batch_symbol: Annotated[str, typer.Option(
        "--batch-symbol", help="Symbol counted as items for throughput.")] = "B",
    fit: Annotated[str | None, typer.Option(
        "--fit", help="Swept symbol to fit time = a*n^k against (default: all swept, multiplied).")] = None,
    json_out: JsonOut = None,
    plot: Annotated[str | None, typer.Option("--plot", help="PNG: log-log time against the swept size.")] = None,
) -> None:
    """Latency distribution, throughput and peak memory at each point of a sweep, with a
    power-law fit of time against size."""
    from fastslow.env import environment
    from fastslow.measure.bench import ModelSource, RunSettings, run_bench
    from fastslow.measure.sweep import grid, parse_sets, parse_sweeps
    from fastslow.report import output
    from fastslow.specs import parse_args
    from fastslow.store.db import Record

    source = ModelSource(spec, list(input or []), parse_args(arg or []), weights)
    settings = RunSettings(device, threads, cuda_graph, parse_sets(set or []))
    sweeps = parse_sweeps(sweep or [])
    timer = _timer(min_time, max_time, precision)
    results_store = store()  # open before measuring, so a bad --db fails fast
    total = len(grid(sweeps))
    with _progress(total, f"bench {spec}") as advance:
        result = run_bench(
            source, settings, sweeps, timer, batch_symbol=batch_symbol, fit_symbol=fit,
            on_point=lambda p, i, n: advance(f"bench {spec} {p.params or ''}"),
        )
    payload = result.to_dict()
    ok = [p for p in result.points if p.measurement]
    summary = (f"{len(ok)}/{len(result.points)} points"
               + (f", k={result.fit.exponent:.3f}" if result.fit else ""))
    record = Record("bench", spec, {**source.to_dict(), **settings.to_dict(),
                                   "sweeps": sweeps, "timer": vars(timer)},
                    environment(device, threads), payload, result.status, summary)
    run_id = results_store.add(record)

    names = list(sweeps) or list(settings.sets)
    rows = result.to_dict(samples=False)["points"]
    output.console.print(output.stats_table(
        f"{spec} on {device}, {threads} thread{'s' if threads != 1 else ''}", rows, names))
    output.print_warnings(rows, names)
    if result.fit:
        output.console.print(output.describe_fit(payload["fit"]))
    elif sweeps:
        output.console.print("no fit: fewer than 3 successful sweep points")
    output.console.print(f"stored as run {run_id} in {results_store.path}")
    output.write_json(json_out, payload)
    if plot:
        from fastslow.measure.bench import fit_symbol_values
        from fastslow.report.plots import plot_scaling

        data = fit_symbol_values(result.points, list(sweeps), fit)
        if data is None:
            raise UserError("--plot needs a --sweep")
        label, sizes, medians = data
        lows = [p.measurement.stats()["p10_s"] for p in ok]
        highs = [p.measurement.stats()["p90_s"] for p in ok]
        plot_scaling(plot, sizes, medians, lows_s=lows, highs_s=highs, fit=result.fit,
                     xlabel=label, title=f"{spec} on {device}")
        output.console.print(f"plot written to {plot}")
    if result.interrupted:
        output.err_console.print(f"interrupted: {len(result.points)} finished points kept")
        raise typer.Exit(130)
    if result.status == "failed":
        first = result.points[0]
        raise UserError(f"model '{spec}' failed at {first.params or 'its inputs'}: {first.error}")


def _side_overrides(items: list[str], side: str) -> dict[str, Any]:
    """--a/--b KEY=VALUE: threads, device, cuda_graph, or a symbol's value."""
    from fastslow.measure.sweep import parse_assignment

    out: dict[str, Any] = {"sets": {}}
    for item in items:
        key, value = parse_assignment(item.replace("-", "_", 1) if item.startswith("cuda-") else item,
                                      option=f"--{side}")
        if key == "threads":
            out["threads"] = _int(value, f"--{side} threads")
        elif key == "device":
            out["device"] = value
        elif key == "cuda_graph":
            out["cuda_graph"] = value.lower() in ("1", "true", "yes", "on")
        else:
            out["sets"][key] = _int(value, f"--{side} {key}")
    return out


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{what}: '{value}' is not an integer") from None


@app.command()
def compare(
    spec_a: Annotated[str, typer.Argument(help="Model A.")],
    spec_b: Annotated[str | None, typer.Argument(help="Model B (default: the same as A).")] = None,
    input: Inputs = None,
    arg: Args = None,
    set: Sets = None,
    a: Annotated[list[str] | None, typer.Option(
        "--a", help="Setting for A only: threads=N, device=D, cuda_graph=1 or SYMBOL=N.")] = None,
    b: Annotated[list[str] | None, typer.Option("--b", help="Setting for B only (as --a).")] = None,
    weights: Weights = None,
    device: Device = "cpu",
    threads: Threads = 1,
    min_time: MinTime = 0.5,
    max_time: MaxTime = 4.0,
    precision: Precision = 0.01,
    json_out: JsonOut = None,
) -> None:
    """Time A and B interleaved in one process: the ratio B/A with a bootstrap 95% CI."""
    from fastslow.env import environment
    from fastslow.measure.bench import ModelSource, RunSettings, run_compare
    from fastslow.measure.sweep import parse_sets
    from fastslow.report import output
    from fastslow.report.units import format_seconds
    from fastslow.specs import parse_args
    from fastslow.store.db import Record

    args = parse_args(arg or [])
    common_sets = parse_sets(set or [])
    sides = []
    for spec, items, name in ((spec_a, a or [], "a"), (spec_b or spec_a, b or [], "b")):
        o = _side_overrides(items, name)
        settings = RunSettings(o.get("device", device), o.get("threads", threads),
                               o.get("cuda_graph", False), {**common_sets, **o["sets"]})
        sides.append((ModelSource(spec, list(input or []), args, weights), settings))
    timer = _timer(min_time, max_time, precision)
    results_store = store()
    labels = (_side_label(spec_a, a), _side_label(spec_b or spec_a, b))
    from fastslow.report.output import err_console

    with err_console.status(f"timing {labels[0]} against {labels[1]}, interleaved"):
        result = run_compare(sides[0], sides[1], timer, labels=labels)
    payload = result.to_dict()
    settings_dict = {"a": {**sides[0][0].to_dict(), **sides[0][1].to_dict()},
                     "b": {**sides[1][0].to_dict(), **sides[1][1].to_dict()},
                     "timer": vars(timer)}
    run_id = results_store.add(Record(
        "compare", f"{spec_a} vs {spec_b or spec_a}", settings_dict, environment(device, threads),
        payload, "ok", f"B/A {result.ratio:.3f} ({result.verdict})"))

    t = Table(title="interleaved comparison", title_justify="left")
    for col in ("", "median", "IQR", "p10", "p90", "n"):
        t.add_column(col, justify="right")
    for tag, label, m in (("A", labels[0], result.a), ("B", labels[1], result.b)):
        s = m.stats()
        t.add_row(f"{tag}: {label}", format_seconds(s["median_s"]), format_seconds(s["iqr_s"]),
                  format_seconds(s["p10_s"]), format_seconds(s["p90_s"]), str(s["n"]))
    output.console.print(t)
    lo, hi = result.ci95
    output.console.print(f"B/A = {result.ratio:.3f}  (95% CI [{lo:.3f}, {hi:.3f}]): "
                         f"B is [bold]{result.verdict}[/bold]")
    output.print_warnings([{"params": {}, "warnings": m.warnings} for m in (result.a, result.b)], [])
    output.console.print(f"stored as run {run_id} in {results_store.path}")
    output.write_json(json_out, payload)


def _side_label(spec: str, items: list[str] | None) -> str:
    return spec + (f" ({', '.join(items)})" if items else "")


@app.command()
def devices(
    peak: Annotated[bool, typer.Option("--peak", help="Measure matmul FLOP/s and bandwidth.")] = False,
    threads: Annotated[int | None, typer.Option(
        "--threads", help="CPU threads for --peak (default: all torch uses).")] = None,
    matmul_size: Annotated[int | None, typer.Option("--matmul-size", help="Matrix side for --peak.")] = None,
    json_out: JsonOut = None,
) -> None:
    """The CPU and any CUDA or MPS devices; with --peak, their measured best rates (stored)."""
    from fastslow.env import environment
    from fastslow.measure.devices import list_devices, measure_peaks
    from fastslow.report import output
    from fastslow.report.units import format_bytes, format_rate, format_seconds
    from fastslow.store.db import Record

    if matmul_size is not None and matmul_size < 1:
        raise UserError(f"--matmul-size must be >= 1 (got {matmul_size})")
    found = list_devices()
    t = Table(title="devices", title_justify="left")
    for col in ("device", "name", "details"):
        t.add_column(col)
    for d in found:
        details = {k: v for k, v in d.items() if k not in ("device", "name")}
        if "memory_bytes" in details:
            details["memory_bytes"] = format_bytes(details["memory_bytes"])
        if "isa_flags" in details:
            details["isa_flags"] = " ".join(details["isa_flags"])
        t.add_row(d["device"], d["name"], "\n".join(f"{k}: {v}" for k, v in details.items()))
    output.console.print(t)
    payload: dict[str, Any] = {"devices": found, "peaks": []}
    if peak:
        results_store = store()
        peaks = []
        with _progress(len(found), "measuring peaks") as advance:
            for d in found:
                peaks += measure_peaks(d["device"], threads=threads, matmul_size=matmul_size)
                advance()
        env = environment()
        payload["peaks"] = [p.to_dict() for p in peaks]
        run_id = results_store.add(Record("devices", None, {"peak": True, "threads": threads},
                                          env, payload, "ok", f"{len(peaks)} peaks"))
        results_store.add_peaks(peaks, host=env["host"], run_id=run_id)
        pt = Table(title="measured peaks", title_justify="left")
        for col in ("device", "what", "dtype", "rate", "size", "median", "threads"):
            pt.add_column(col, justify="right")
        for p in peaks:
            rate = format_rate(p.value, "FLOP/s" if p.kind == "matmul" else "B/s")
            size = f"{p.size}²" if p.kind == "matmul" else format_bytes(p.size)
            pt.add_row(p.device, p.kind, p.dtype, rate, size, format_seconds(p.median_s),
                       str(p.threads or "-"))
        output.console.print(pt)
        output.console.print(f"stored as run {run_id} in {results_store.path}")
    output.write_json(json_out, payload)


@app.command()
def history(
    command: Annotated[str | None, typer.Option("--command", help="bench, compare, devices, ...")] = None,
    spec: Annotated[str | None, typer.Option("--spec", help="Substring of the spec.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="ok, partial, failed, interrupted.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO date or time, e.g. 2026-11-01.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Most runs to list, newest first.")] = 20,
    json_out: JsonOut = None,
) -> None:
    """List stored runs, newest first."""
    from fastslow.report import output

    if limit < 1:
        raise UserError(f"--limit must be >= 1 (got {limit})")
    with store() as s:
        runs = s.query(command=command, spec=spec, status=status, since=since, limit=limit)
        path = s.path
    t = Table(title=f"runs in {path}", title_justify="left")
    for col in ("id", "when (UTC)", "command", "spec", "status", "summary", "device", "commit"):
        t.add_column(col)
    for r in runs:
        commit = (r.env.get("git_commit") or "-")[:12]
        t.add_row(str(r.id), r.created_at[:19].replace("T", " "), r.command, r.spec or "-",
                  r.status, r.summary, r.env.get("device", "-"), commit)
    output.console.print(t)
    output.write_json(json_out, {"runs": [
        {"id": r.id, "command": r.command, "spec": r.spec, "created_at": r.created_at,
         "status": r.status, "summary": r.summary, "settings": r.settings, "env": r.env}
        for r in runs]})


@app.command()
def show(
    run_id: Annotated[int, typer.Argument(help="Run id, from `fastslow history`.")],
    json_out: JsonOut = None,
) -> None:
    """Show one stored run: settings, environment and results."""
    from fastslow.report import output

    with store() as s:
        r = s.get(run_id)
    output.console.print(f"[bold]run {r.id}[/bold]: {r.command} {r.spec or ''} "
                         f"({r.status}) at {r.created_at}")
    output.console.print("environment: " + ", ".join(f"{k}={v}" for k, v in r.env.items()))
    settings = {k: v for k, v in r.settings.items() if k != "timer"}
    output.console.print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    if r.command == "bench":
        names = sorted({n for p in r.payload["points"] for n in p["params"]})
        output.console.print(output.stats_table("points", r.payload["points"], names))
        if r.payload.get("fit"):
            output.console.print(output.describe_fit(r.payload["fit"]))
    elif r.summary:
        output.console.print(f"summary: {r.summary}")
    output.write_json(json_out, r.to_dict())


@app.command("zoo")
def zoo_list(
    pattern: Annotated[str, typer.Argument(help="Glob over names.")] = "*",
    json_out: JsonOut = None,
) -> None:
    """List the built-in models (use them as zoo:NAME)."""
    from fastslow.report import output
    from fastslow.zoo import get_entry, list_models

    entries = [get_entry(n) for n in list_models(pattern)]
    t = Table(title="zoo", title_justify="left")
    for col in ("spec", "inputs", "defaults", "description"):
        t.add_column(col)
    for e in entries:
        t.add_row(f"zoo:{e.name}", " ".join(e.inputs),
                  " ".join(f"{k}={v}" for k, v in e.defaults.items()), e.description)
    output.console.print(t)
    output.write_json(json_out, {"models": [
        {"spec": f"zoo:{e.name}", "inputs": list(e.inputs), "defaults": e.defaults,
         "description": e.description} for e in entries]})


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="fastslow")
    except UserError as e:
        if _state["debug"]:
            raise
        message = " ".join(str(e).split())  # always one line
        print(f"fastslow: error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()


import fastslow.cli_cost  # noqa: E402,F401  (registers `cost` and `arch`)
import fastslow.cli_optimize  # noqa: E402,F401  (registers `optimize`)
import fastslow.cli_tasks  # noqa: E402,F401  (registers `life`, `xor` and `demo`)
import fastslow.cli_tpugraphs  # noqa: E402,F401  (registers `tpugraphs`)
