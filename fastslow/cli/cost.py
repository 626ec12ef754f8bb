"""`cost` (counts per module, roofline) and `arch` (architecture comparison): parse, call
fastslow.api.cost, render."""

from __future__ import annotations

from typing import Annotated

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
    Sets,
    Threads,
    Weights,
    app,
    report_saved,
    say,
    state,
    timer,
    warn_if_busy,
)


@app.command(short_help="Parameters, FLOPs, MACs and bytes per module; a roofline.")
def cost(
    spec: Annotated[str, typer.Argument(help="zoo:NAME, timm:NAME, torchvision:NAME, file.py:Attr, pkg.mod:attr")],
    input: Inputs = None,
    arg: Args = None,
    set: Sets = None,
    weights: Weights = None,
    device: Device = "cpu",
    depth: Annotated[int, typer.Option("--depth", help="Module levels in the table (0: whole model only).")] = 1,
    train: Annotated[bool, typer.Option("--train", help="Count a training-mode forward instead of inference.")] = False,
    roofline: Annotated[bool, typer.Option("--roofline", help="Lower-bound time against measured time.")] = False,
    threads: Threads = 1,
    db: Db = None,
    json_out: JsonOut = None,
    plot: Annotated[str | None, typer.Option("--plot", help="PNG roofline (implies --roofline).")] = None,
) -> None:
    """Parameters, FLOPs, MACs and bytes per module; with --roofline, time against the device's peaks."""
    from fastslow.api.cost import cost as run
    from fastslow.measure.bench import ModelSource
    from fastslow.measure.sweep import parse_sets
    from fastslow.report import output, tables
    from fastslow.report.units import format_bytes
    from fastslow.specs import parse_args

    output.check_output_path(json_out)
    source = ModelSource(spec, list(input or []), parse_args(arg or []), weights)
    with output.err_console.status("counting" + (", timing the model and each module" if roofline or plot else "")):
        result = run(source, parse_sets(set or []), device=device, depth=depth, train=train,
                     roofline=roofline or bool(plot), threads=threads, timer=timer("roofline"),
                     store=state["db"] or True,
                     on_measuring_peaks=lambda: say(f"no stored peaks for {device} at {threads} thread(s): measuring "
                                                    "them now (see `fastslow devices --peak`)"))
    report = result.report
    shapes = ", ".join(f"{text}={shape}" for text, shape in result.inputs)
    cats = ", ".join(f"{k} {tables.format_count(v)}" for k, v in report.flops_by_category.items() if v)
    output.console.print(f"[bold]{spec}[/bold] ({'training' if train else 'inference'} forward, inputs {shapes})")
    output.console.print(f"params {report.params:,} ({report.trainable_params:,} trainable); "
                         f"FLOPs {tables.format_count(report.flops)} ({cats}); MACs {tables.format_count(report.macs)}")
    output.console.print(f"bytes moved at least {format_bytes(report.bytes)} "
                         f"(weights {format_bytes(report.weight_bytes)}, inputs {format_bytes(report.input_bytes)}, "
                         f"written {format_bytes(report.written_bytes)}); "
                         f"intensity {report.intensity:.2f} FLOP/B; size on disk {format_bytes(report.size_bytes)}")
    output.console.print(tables.cost_table(result.rows, report.flops, result.roofline))
    if result.roofline:
        peaks = result.peaks
        output.console.print(f"peaks ({peaks.source}): {peaks.flops_per_s / 1e9:.1f} GFLOP/s {peaks.dtype} matmul, "
                             f"{peaks.bytes_per_s / 1e9:.1f} GB/s; ridge at {peaks.ridge_intensity:.1f} FLOP/B; timed "
                             f"on {threads} thread(s). The bandwidth roof is main memory's: a share above 100% means "
                             "the data stayed in cache.")
    if report.uncounted:
        output.console.print("uncounted (no formula, not included above): "
                             + ", ".join(f"{op} ×{n}" for op, n in report.uncounted))
    else:
        output.console.print("uncounted: none")
    payload = result.to_dict()
    output.write_json(json_out, payload)
    if plot and result.roofline:
        from fastslow.report.plots import plot_roofline

        plot_roofline(plot, result.roofline, result.peaks, title=f"{spec} on {device}")
        say(f"plot written to {plot}")
    warn_if_busy()
    report_saved(result.saved, payload, json_out, "cost")


@app.command(short_help="Compare architectures at one batch size.")
def arch(
    specs: Annotated[list[str], typer.Argument(help="One or more model specs.")],
    input: Inputs = None,
    batch: Annotated[int, typer.Option("--batch", help="Batch size B.")] = 8,
    threads: Threads = 1,
    max_time: MaxTime = None,
    min_samples: MinSamples = None,
    db: Db = None,
    csv_out: CsvOut = None,
    json_out: JsonOut = None,
    plot: Annotated[str | None, typer.Option("--plot", help="PNG: throughput against parameters.")] = None,
) -> None:
    """Params, FLOPs, latency and throughput of each model at one batch size, timed interleaved."""
    from fastslow.api.cost import arch as run
    from fastslow.report import output, tables

    output.check_output_path(json_out)
    with output.err_console.status(f"counting and timing {len(specs)} models interleaved at batch {batch}"):
        result = run(specs, list(input or []), batch=batch, threads=threads,
                     timer=timer("arch", max_time=max_time, min_samples=min_samples), store=state["db"] or True)
    output.console.print(tables.arch_table(result.models, batch, threads))
    payload = result.to_dict()
    output.write_json(json_out, payload)
    output.write_csv(csv_out, result.models)
    if plot:
        from fastslow.report.plots import plot_throughput_vs_params

        plot_throughput_vs_params(plot, result.models, title=f"throughput at batch {batch}, {threads} thread(s)")
        say(f"plot written to {plot}")
    warn_if_busy()
    report_saved(result.saved, payload, json_out, "arch")
