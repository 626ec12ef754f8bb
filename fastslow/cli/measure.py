"""`bench`, `compare`, `devices`, `history`, `show`, `zoo`: parse, call fastslow.api.measure, render."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fastslow.cli.app import (
    Args,
    CsvOut,
    Db,
    Device,
    Inputs,
    JsonOut,
    MaxTime,
    MinSamples,
    MinTime,
    Precision,
    Sets,
    Threads,
    Weights,
    app,
    progress,
    report_saved,
    say,
    state,
    timer,
    warn_if_busy,
)
from fastslow.errors import Terminated, UserError


def _check_plot_path(plot: str | None, sweeps: dict[str, list[int]]) -> None:
    if plot is None:
        return
    if not sweeps:
        raise UserError("--plot draws time against a swept size: give a --sweep")
    if not plot.lower().endswith(".png"):
        raise UserError(f"--plot {plot}: the plot is a PNG; give a path ending in .png")


@app.command(short_help="Latency, throughput and memory over a sweep, with a fit.")
def bench(
    spec: Annotated[str, typer.Argument(help="zoo:NAME, path/file.py:Attr or package.module:attr")],
    input: Inputs = None,
    arg: Args = None,
    set: Sets = None,
    sweep: Annotated[list[str] | None, typer.Option(
        "--sweep", metavar="NAME=VALUES",
        help="Sweep a symbol: H=32,64,128 or H=1..2048 (doubling). Repeatable: grid.")] = None,
    weights: Weights = None,
    device: Device = "cpu",
    threads: Threads = 1,
    cuda_graph: Annotated[bool, typer.Option("--cuda-graph", help="CUDA: time graph replays.")] = False,
    min_time: MinTime = None,
    max_time: MaxTime = None,
    precision: Precision = None,
    min_samples: MinSamples = None,
    batch_symbol: Annotated[str, typer.Option("--batch-symbol", help="Symbol counted as items for throughput.")
                            ] = "B",
    fit: Annotated[str | None, typer.Option(
        "--fit", help="Swept symbol to fit time = a*n^k against (default: all swept, multiplied).")] = None,
    db: Db = None,
    csv_out: CsvOut = None,
    json_out: JsonOut = None,
    plot: Annotated[str | None, typer.Option("--plot", help="PNG: log-log time against the swept size.")] = None,
) -> None:
    """Latency distribution, throughput and peak memory at each point of a sweep, with a power-law
    fit of time against size."""
    from fastslow.api.measure import bench as run
    from fastslow.measure.bench import ModelSource, RunSettings, fit_symbol_values
    from fastslow.measure.sweep import grid, parse_sets, parse_sweeps
    from fastslow.report import output, tables
    from fastslow.specs import parse_args

    source = ModelSource(spec, list(input or []), parse_args(arg or []), weights)
    settings = RunSettings(device, threads, cuda_graph, parse_sets(set or []))
    sweeps = parse_sweeps(sweep or [])
    _check_plot_path(plot, sweeps)
    output.check_output_path(json_out)
    with progress(len(grid(sweeps)), f"bench {spec}") as advance:
        result = run(source, settings, sweeps, timer("bench", min_time, max_time, precision, min_samples),
                     batch_symbol=batch_symbol, fit_symbol=fit, store=state["db"] or True,
                     on_point=lambda p, i, n: advance(f"bench {spec} {p.params or ''}"))
    payload = result.to_dict()
    names = list(sweeps) or list(settings.sets)
    rows = result.to_dict(samples=False)["points"]
    output.console.print(tables.stats_table(
        f"{spec} on {device}, {threads} thread{'s' if threads != 1 else ''}", rows, names))
    output.print_warnings(rows, names)
    if result.fit:
        output.console.print(output.describe_fit(payload["fit"]))
    elif sweeps:
        output.console.print("no fit: fewer than 3 successful sweep points")
    output.write_json(json_out, payload)
    output.write_csv(csv_out, [{**p["params"], **{k: p.get(k) for k in (
        "n", "iqr_s", "throughput_per_s", "peak_mem_bytes", "flags", "error")}, **(p["stats"] or {})}
        for p in rows])
    if plot:
        from fastslow.report.plots import plot_scaling

        ok = [p for p in result.points if p.measurement]
        data = fit_symbol_values(result.points, list(sweeps), fit)
        if data and ok:
            label, sizes, medians, _ = data
            plot_scaling(plot, sizes, medians, lows_s=[p.measurement.stats()["p10_s"] for p in ok],
                         highs_s=[p.measurement.stats()["p90_s"] for p in ok], fit=payload["fit"], xlabel=label,
                         title=f"{spec} on {device}")
            say(f"plot written to {plot}")
    warn_if_busy()
    report_saved(result.saved, payload, json_out, "bench")
    if result.interrupted:
        raise Terminated() if result.stop_signal == "SIGTERM" else KeyboardInterrupt()
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


@app.command(short_help="A against B, interleaved, with an honest verdict.")
def compare(
    spec_a: Annotated[str, typer.Argument(help="Model A.")],
    spec_b: Annotated[str | None, typer.Argument(help="Model B (default: the same as A).")] = None,
    input: Inputs = None,
    arg: Args = None,
    set: Sets = None,
    a: Annotated[list[str] | None, typer.Option(
        "--a", metavar="KEY=VALUE",
        help="Setting for A only: threads=N, device=D, cuda_graph=1 or SYMBOL=N.")] = None,
    b: Annotated[list[str] | None, typer.Option(
        "--b", metavar="KEY=VALUE", help="Setting for B only (as --a).")] = None,
    weights: Weights = None,
    device: Device = "cpu",
    threads: Threads = 1,
    min_time: MinTime = None,
    max_time: MaxTime = None,
    precision: Precision = None,
    min_samples: MinSamples = None,
    threshold: Annotated[float, typer.Option(
        "--threshold", help="Smallest difference, in percent, that counts as faster or slower.")] = 2.0,
    baseline: Annotated[int | None, typer.Option(
        "--baseline", metavar="RUN", help="Measure SPEC now against stored bench run RUN (same spec, settings and "
                                          "machine).")] = None,
    fail_if_slower: Annotated[float | None, typer.Option(
        "--fail-if-slower", metavar="PCT", help="Exit 1 when B is slower than A by more than PCT percent.")] = None,
    db: Db = None,
    csv_out: CsvOut = None,
    json_out: JsonOut = None,
) -> None:
    """Time A and B interleaved in one process (the first of each round alternating): the ratio
    B/A with a bootstrap 95% CI; faster or slower only when the CI excludes 1 and the difference
    passes --threshold. With --baseline RUN, A is a stored bench run and B is SPEC measured now
    with its settings; --fail-if-slower PCT makes either a regression gate (exit 1)."""
    from fastslow.measure.sweep import parse_sets
    from fastslow.report import output
    from fastslow.specs import parse_args

    if not (0 <= threshold < 100):
        raise UserError(f"--threshold is a percentage in [0, 100) (got {threshold})")
    if fail_if_slower is not None and not (0 <= fail_if_slower < 1e6):
        raise UserError(f"--fail-if-slower is a percentage >= 0 (got {fail_if_slower})")
    output.check_output_path(json_out)
    if baseline is not None:
        if spec_b is not None or a or b:
            raise UserError("--baseline compares SPEC now against a stored run: give one spec and no --a/--b")
        from fastslow.api.measure import compare_to_baseline

        given: dict[str, Any] = {"threads": threads, "device": device} if (threads, device) != (1, "cpu") else {}
        given |= {k: v for k, v in (("inputs", list(input or [])), ("args", parse_args(arg or [])),
                                    ("sets", parse_sets(set or [])), ("weights", weights)) if v}
        with output.err_console.status(f"timing {spec_a} now against run {baseline}"):
            result = compare_to_baseline(baseline, spec_a, given, threshold=threshold / 100, db=state["db"],
                                         store=state["db"] or True)
        labels = (f"run {baseline}", f"{spec_a} now")
    else:
        result, labels = _interleaved(spec_a, spec_b, input, arg, set, a, b, weights, device, threads,
                                      timer("compare", min_time, max_time, precision, min_samples), threshold)
    _show_comparison(result, labels, json_out, csv_out)
    from fastslow.measure.compare import gate

    failed = gate(result, fail_if_slower)
    if failed:
        output.err_console.print(f"fastslow: regression: B is {failed}")
        raise typer.Exit(1)


def _interleaved(spec_a: str, spec_b: str | None, input: list[str] | None, arg: list[str] | None,
                 set: list[str] | None, a: list[str] | None, b: list[str] | None, weights: str | None, device: str,
                 threads: int, the_timer: Any, threshold: float) -> tuple[Any, tuple[str, str]]:
    from fastslow.api.measure import compare as run
    from fastslow.measure.bench import ModelSource, RunSettings
    from fastslow.measure.sweep import parse_sets
    from fastslow.report import output
    from fastslow.specs import parse_args

    args = parse_args(arg or [])
    common_sets = parse_sets(set or [])
    sides = []
    for spec, items, name in ((spec_a, a or [], "a"), (spec_b or spec_a, b or [], "b")):
        o = _side_overrides(items, name)
        settings = RunSettings(o.get("device", device), o.get("threads", threads), o.get("cuda_graph", False),
                               {**common_sets, **o["sets"]})
        sides.append((ModelSource(spec, list(input or []), args, weights), settings))
    labels = (_side_label(spec_a, a), _side_label(spec_b or spec_a, b))
    with output.err_console.status(f"timing {labels[0]} against {labels[1]}, interleaved"):
        result = run(sides[0], sides[1], the_timer, labels=labels, threshold=threshold / 100,
                     store=state["db"] or True)
    return result, labels


def _show_comparison(result: Any, labels: tuple[str, str], json_out: str | None, csv_out: str | None) -> None:
    from fastslow.report import output, tables

    payload = result.to_dict()
    output.console.print(tables.compare_table([(f"A: {labels[0]}", result.a.stats()),
                                               (f"B: {labels[1]}", result.b.stats())]))
    lo, hi = result.ci95
    p = f", U-test p {result.p_value:.2g}" if result.p_value is not None else ""
    output.console.print(f"B/A = {result.ratio:.3f}  (95% CI [{lo:.3f}, {hi:.3f}]{p}): "
                         f"B is [bold]{result.describe()}[/bold]")
    output.print_warnings([{"params": {}, "warnings": m.warnings} for m in (result.a, result.b)], [])
    output.write_json(json_out, payload)
    output.write_csv(csv_out, [
        {"side": tag, "label": m.label, **m.stats(), "flags": m.flags, "ratio_b_over_a": result.ratio,
         "ci95_low": lo, "ci95_high": hi, "p_value": result.p_value, "verdict": result.verdict,
         "threshold": result.threshold} for tag, m in (("A", result.a), ("B", result.b))])
    warn_if_busy()
    report_saved(result.saved, payload, json_out, "compare")


def _side_label(spec: str, items: list[str] | None) -> str:
    return spec + (f" ({', '.join(items)})" if items else "")


@app.command(short_help="The devices here, and their measured peaks.")
def devices(
    peak: Annotated[bool, typer.Option("--peak", help="Measure matmul FLOP/s and bandwidth.")] = False,
    threads: Threads = 1,
    matmul_size: Annotated[int | None, typer.Option("--matmul-size", help="Matrix side for --peak.")] = None,
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """The CPU and any CUDA or MPS devices; with --peak, their measured best rates at --threads
    (stored per device, dtype and thread count)."""
    from fastslow.measure.devices import list_devices
    from fastslow.report import output, tables

    if matmul_size is not None and matmul_size < 1:
        raise UserError(f"--matmul-size must be >= 1 (got {matmul_size})")
    if threads < 1:
        raise UserError(f"--threads must be >= 1 (got {threads})")
    output.check_output_path(json_out)
    if not peak:
        found = list_devices()
        output.console.print(tables.devices_table(found))
        output.write_json(json_out, {"devices": found, "peaks": []})
        return
    from fastslow.api.measure import peaks

    with progress(len(list_devices()), "measuring peaks") as advance:
        result = peaks(threads, matmul_size, store=state["db"] or True, on_device=lambda d: advance())
    output.console.print(tables.devices_table(result.devices))
    output.console.print(tables.peaks_table(result.peaks))
    output.write_json(json_out, result.to_dict())
    warn_if_busy()
    report_saved(result.saved, result.to_dict(), json_out, "devices")


@app.command(short_help="List stored runs, newest first.")
def history(
    command: Annotated[str | None, typer.Option(
        "--command", help="Only runs of this command (bench, compare, devices, optimize and so on).")] = None,
    spec: Annotated[str | None, typer.Option("--spec", help="Substring of the spec.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="ok, partial, failed, interrupted, running, killed.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="ISO date or time (2026-11-01), today, yesterday, or an age: 30m, 12h, 1d, 2w.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Most runs to list, newest first.")] = 20,
    db: Db = None,
    csv_out: CsvOut = None,
    json_out: JsonOut = None,
) -> None:
    """List stored runs, newest first (the database is opened read-only)."""
    from fastslow.api.measure import history as runs_of
    from fastslow.report import output, tables
    from fastslow.store.db import default_db_path

    output.check_output_path(json_out)
    runs = runs_of(state["db"], command=command, spec=spec, status=status, since=since, limit=limit)
    output.console.print(tables.history_table(state["db"] or default_db_path(), runs))
    output.write_json(json_out, {"runs": [
        {"id": r.id, "command": r.command, "spec": r.spec, "created_at": r.created_at, "status": r.status,
         "summary": r.summary, "settings": r.settings, "env": r.env} for r in runs]})
    output.write_csv(csv_out, [
        {"id": r.id, "created_at": r.created_at, "command": r.command, "spec": r.spec, "status": r.status,
         "summary": r.summary, **{k: r.env.get(k) for k in ("device", "threads", "others_cpu_percent", "host",
                                                            "git_commit")}} for r in runs])


@app.command(short_help="Show one stored run.")
def show(
    run_id: Annotated[int, typer.Argument(help="Run id, from `fastslow history`.")],
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """Show one stored run: settings, environment and results (statistics derived from the stored
    samples)."""
    from fastslow.api.measure import bench_from_record
    from fastslow.api.measure import show as get
    from fastslow.report import output, tables

    output.check_output_path(json_out)
    r = get(run_id, state["db"])
    output.console.print(f"[bold]run {r.id}[/bold]: {r.command} {r.spec or ''} ({r.status}) at {r.created_at}")
    output.console.print("environment: " + ", ".join(f"{k}={v}" for k, v in r.env.items()))
    settings = {k: v for k, v in r.settings.items() if k != "timer"}
    output.console.print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    out = r.to_dict()
    if r.command == "bench":
        result = bench_from_record(r)
        rows = result.to_dict(samples=False)["points"]
        names = sorted({n for p in rows for n in p["params"]})
        output.console.print(tables.stats_table("points", rows, names))
        output.print_warnings(rows, names)
        if result.fit:
            output.console.print(output.describe_fit(result.fit.to_dict()))
        out["payload"] = {**r.payload, **result.to_dict()}
        out.pop("points")
    elif r.summary:
        output.console.print(f"summary: {r.summary}")
    output.write_json(json_out, out)


@app.command("zoo", short_help="List the built-in models.")
def zoo_list(
    pattern: Annotated[str, typer.Argument(help="Glob over names.")] = "*",
    json_out: JsonOut = None,
) -> None:
    """List the built-in models (use them as zoo:NAME)."""
    from fastslow.report import output, tables
    from fastslow.zoo import get_entry, list_models

    entries = [get_entry(n) for n in list_models(pattern)]
    output.console.print(tables.zoo_table(entries))
    output.write_json(json_out, {"models": [
        {"spec": f"zoo:{e.name}", "inputs": list(e.inputs), "defaults": e.defaults, "description": e.description}
        for e in entries]})
