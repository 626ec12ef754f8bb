"""CLI for `cost` (counts, per-module table, roofline) and `arch` (architecture comparison)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from fastslow.cli import Args, Device, Inputs, JsonOut, Sets, Weights, app, store
from fastslow.errors import UserError, one_line


def _model_and_inputs(spec: str, inputs: list[str], args: list[str], sets: list[str], weights: str | None,
                      device: str, extra_values: dict[str, int] | None = None) -> tuple[Any, tuple, Any]:
    from fastslow.measure.bench import ModelSource, RunSettings, example_inputs
    from fastslow.measure.sweep import parse_sets
    from fastslow.specs import parse_args

    source = ModelSource(spec, inputs, parse_args(args), weights)
    settings = RunSettings(device, 1, False, parse_sets(sets))
    resolved, input_specs = source.resolve()
    values = {**resolved.defaults, **(extra_values or {}), **settings.sets}
    tensors = example_inputs(input_specs, values, device)
    return resolved, tensors, input_specs


def _count(spec: str, model: Any, tensors: tuple, train: bool = False) -> Any:
    """count_cost, with a model that rejects its input reported as the user's error."""
    from fastslow.cost.counter import count_cost

    try:
        return count_cost(model, tensors, train=train)
    except Exception as e:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise UserError(f"model '{spec}' rejected input {shapes}: {one_line(e)}") from e


def _fmt_count(n: float) -> str:
    from fastslow.report.units import format_rate

    return format_rate(n) if n else "0"


@app.command()
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
    threads: Annotated[int | None, typer.Option(
        "--threads", help="Threads for the roofline's timings (default: all, as `devices --peak` uses).")] = None,
    json_out: JsonOut = None,
    plot: Annotated[str | None, typer.Option("--plot", help="PNG roofline (implies --roofline).")] = None,
) -> None:
    """Parameters, FLOPs, MACs and bytes per module; with --roofline, time against the device's peaks."""
    from fastslow.cost.counter import modules_to_depth
    from fastslow.env import environment, host_name
    from fastslow.report import output
    from fastslow.report.units import format_bytes, format_seconds
    from fastslow.store.db import Record

    if depth < 0:
        raise UserError(f"--depth must be >= 0 (got {depth})")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1 (got {threads})")
    import torch

    threads = threads or torch.get_num_threads()
    results_store = store()
    resolved, tensors, input_specs = _model_and_inputs(spec, list(input or []), list(arg or []),
                                                       list(set or []), weights, device)
    model = resolved.model.to(device)
    report = _count(spec, model, tensors, train)
    payload = report.to_dict()
    rows = modules_to_depth(report, depth)
    payload["by_module"] = [m.to_dict() for m in rows]
    roof_rows = None
    if roofline or plot:
        from fastslow.cost.roofline import peaks_for
        from fastslow.cost.roofline import roofline as run_roofline
        from fastslow.measure.devices import measure_peaks

        dtype = next((p.dtype for p in model.parameters()), tensors[0].dtype)

        def measure_now() -> dict[tuple[str, str], float]:
            output.err_console.print(f"no stored peaks for {device}: measuring them now "
                                     "(see `fastslow devices --peak`)")
            found = measure_peaks(device)
            results_store.add_peaks(found, host=host_name())
            return {(p.kind, p.dtype): p.value for p in found}

        peaks = peaks_for(device, dtype, results_store.latest_peaks(device, host=host_name()), measure_now)
        with output.err_console.status("timing the model and each module"):
            roof_rows = run_roofline(model, tensors, report, rows, peaks, device=device, threads=threads)
        payload["roofline"] = {"peak_flops_per_s": peaks.flops_per_s, "peak_bytes_per_s": peaks.bytes_per_s,
                               "dtype": peaks.dtype, "peaks_source": peaks.source, "threads": threads,
                               "rows": [r.to_dict() for r in roof_rows]}

    shapes = ", ".join(f"{s.text}={tuple(t.shape)}" for s, t in zip(input_specs, tensors, strict=True))
    cats = ", ".join(f"{k} {_fmt_count(v)}" for k, v in report.flops_by_category.items() if v)
    output.console.print(f"[bold]{spec}[/bold] ({'training' if train else 'inference'} forward, inputs {shapes})")
    output.console.print(f"params {report.params:,} ({report.trainable_params:,} trainable); "
                         f"FLOPs {_fmt_count(report.flops)} ({cats}); MACs {_fmt_count(report.macs)}")
    output.console.print(f"bytes moved at least {format_bytes(report.bytes)} "
                         f"(weights {format_bytes(report.weight_bytes)}, inputs {format_bytes(report.input_bytes)}, "
                         f"written {format_bytes(report.written_bytes)}); "
                         f"intensity {report.intensity:.2f} FLOP/B; size on disk {format_bytes(report.size_bytes)}")
    t = Table(title="by module (cumulative over submodules)", title_justify="left")
    cols = ["module", "type", "params", "FLOPs", "share", "bytes", "FLOP/B"]
    if roof_rows:
        cols += ["bound", "lower bound", "measured", "of peak"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("module", "type") else "right")
    for i, m in enumerate(rows):
        indent = "  " * (m.name.count(".") + 1 if m.name else 0)
        cells = [indent + (m.name or "(model)"), m.type, f"{m.params:,}", _fmt_count(m.flops),
                 f"{100 * m.flops / report.flops:.1f}%" if report.flops else "-", format_bytes(m.bytes),
                 f"{m.flops / m.bytes:.2f}" if m.bytes else "-"]
        if roof_rows:
            r = roof_rows[i]
            cells += [r.bound, format_seconds(r.lower_bound_s), format_seconds(r.measured_s),
                      f"{100 * r.share_of_peak:.1f}%" if r.share_of_peak is not None else "-"]
        t.add_row(*cells)
    output.console.print(t)
    if roof_rows:
        output.console.print(f"peaks ({payload['roofline']['peaks_source']}): {peaks.flops_per_s / 1e9:.1f} GFLOP/s "
                             f"{peaks.dtype} matmul, {peaks.bytes_per_s / 1e9:.1f} GB/s; ridge at "
                             f"{peaks.ridge_intensity:.1f} FLOP/B; timed on {threads} thread(s). The bandwidth roof is "
                             "main memory's: a share above 100% means the data stayed in cache.")
    if report.uncounted:
        output.console.print("uncounted (no formula, not included above): "
                             + ", ".join(f"{op} ×{n}" for op, n in report.uncounted))
    else:
        output.console.print("uncounted: none")
    run_id = results_store.add(Record("cost", spec, {"inputs": list(input or []), "sets": list(set or []),
                                                     "depth": depth, "train": train, "device": device},
                                      environment(device, threads), payload, "ok",
                                      f"{_fmt_count(report.flops)} FLOPs, {report.params:,} params"))
    output.console.print(f"stored as run {run_id} in {results_store.path}")
    output.write_json(json_out, payload)
    if plot and roof_rows:
        from fastslow.report.plots import plot_roofline

        plot_roofline(plot, roof_rows, peaks, title=f"{spec} on {device}")
        output.console.print(f"plot written to {plot}")


def architecture_family(model: Any) -> str:
    """transformer (has attention), efficient (depthwise convolutions), or convolutional."""
    from torch import nn

    names = {type(m).__name__.lower() for m in model.modules()}
    if any(isinstance(m, nn.MultiheadAttention) for m in model.modules()) or any("attention" in n for n in names):
        return "transformer"
    if any(isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules()):
        return "efficient"
    return "convolutional"


@app.command()
def arch(
    specs: Annotated[list[str], typer.Argument(help="Two or more model specs.")],
    input: Inputs = None,
    batch: Annotated[int, typer.Option("--batch", help="Batch size B.")] = 8,
    threads: Annotated[int, typer.Option("--threads", help="Threads while timing.")] = 1,
    max_time: Annotated[float, typer.Option("--max-time", help="Most timed seconds per model.")] = 3.0,
    json_out: JsonOut = None,
    plot: Annotated[str | None, typer.Option("--plot", help="PNG: throughput against parameters.")] = None,
) -> None:
    """Params, FLOPs, latency and throughput of each model at one batch size, timed interleaved."""
    from fastslow.env import environment
    from fastslow.measure.timer import TimerConfig, Workload, measure_interleaved
    from fastslow.report import output
    from fastslow.report.units import format_seconds
    from fastslow.store.db import Record

    if batch < 1 or threads < 1:
        raise UserError(f"--batch and --threads must be >= 1 (got {batch}, {threads})")
    results_store = store()
    entries, workloads = [], []
    with output.err_console.status("building and counting models"):
        for spec in specs:
            resolved, tensors, _ = _model_and_inputs(spec, list(input or []), [], [], None, "cpu", {"B": batch})
            model = resolved.model.eval()
            report = _count(spec, model, tensors)
            entries.append({"spec": spec, "family": architecture_family(model), "params": report.params,
                            "flops": report.flops, "batch": batch})
            workloads.append(Workload(lambda m=model, x=tensors: m(*x), "cpu", threads, label=spec))
    with output.err_console.status(f"timing {len(specs)} models interleaved at batch {batch}"):
        timer = TimerConfig(min_time_s=min(0.5, max_time), max_time_s=max_time, rel_precision=0.03, min_samples=3)
        ms = measure_interleaved(workloads, timer)
    for e, m in zip(entries, ms, strict=True):
        e.update(median_s=m.median_s, throughput_per_s=batch / m.median_s, iqr_s=m.iqr_s, n=m.n)
    t = Table(title=f"architectures at batch {batch}, {threads} thread(s)", title_justify="left")
    for c in ("model", "family", "params", "GFLOPs", "median", "items/s"):
        t.add_column(c, justify="left" if c in ("model", "family") else "right")
    for e in entries:
        t.add_row(e["spec"], e["family"], f"{e['params'] / 1e6:.1f} M", f"{e['flops'] / 1e9:.1f}",
                  format_seconds(e["median_s"]), f"{e['throughput_per_s']:.1f}")
    output.console.print(t)
    payload = {"models": entries, "batch": batch, "threads": threads}
    run_id = results_store.add(Record("arch", " ".join(specs), {"batch": batch, "threads": threads},
                                      environment(threads=threads), payload, "ok", f"{len(specs)} models"))
    output.console.print(f"stored as run {run_id} in {results_store.path}")
    output.write_json(json_out, payload)
    if plot:
        from fastslow.report.plots import plot_throughput_vs_params

        plot_throughput_vs_params(plot, entries, title=f"throughput at batch {batch}, {threads} thread(s)")
        output.console.print(f"plot written to {plot}")
