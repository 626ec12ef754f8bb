"""`optimize`: parse, call fastslow.api.optimize, render the judged variants."""

from __future__ import annotations

from typing import Annotated

import typer

from fastslow.cli.app import (
    Args,
    Db,
    JsonOut,
    MaxTime,
    MinSamples,
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
from fastslow.errors import UserError


@app.command(short_help="Make a model faster; judge each variant by measurement.")
def optimize(
    spec: Annotated[str | None, typer.Argument(help="Model to optimize (default: the task's own, trained).")] = None,
    task: Annotated[str, typer.Option("--task", help="digits, life, xor, or module:function returning a Task.")
                    ] = "digits",
    try_: Annotated[str | None, typer.Option(
        "--try", help="Comma-separated pipelines of '+'-joined steps (default: one of each technique).")] = None,
    arg: Args = None,
    weights: Weights = None,
    batch: Annotated[int, typer.Option("--batch", help="Batch size the variants are timed at.")] = 64,
    threads: Threads = 1,
    max_accuracy_drop: Annotated[float, typer.Option(
        "--max-accuracy-drop", help="Reject variants losing more accuracy points than this.")] = 1.0,
    max_time: MaxTime = None,
    min_samples: MinSamples = None,
    seed: Annotated[int, typer.Option("--seed", help="Data split and training seed.")] = 0,
    save: Annotated[str | None, typer.Option(
        "--save", metavar="DIR",
        help="Write an accepted variant here (it loads with torch or onnxruntime alone).")] = None,
    save_variant: Annotated[str, typer.Option(
        "--save-variant", metavar="WHICH", help="Which accepted variant --save writes: fastest, smallest, or a "
                                                "pipeline's name.")] = "fastest",
    plot: Annotated[str | None, typer.Option("--plot", help="PNG: latency against accuracy.")] = None,
    list_steps: Annotated[bool, typer.Option("--list", help="List the steps and exit.")] = False,
    search: Annotated[bool, typer.Option(
        "--search", help="Find a pipeline: each step of a stated space alone, then combinations of the best.")
                      ] = False,
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """Apply quantization, pruning, distillation, compilation, ONNX Runtime, precision and layout
    changes; judge each by measured latency, size and accuracy against the baseline."""
    from fastslow.api.optimize import optimize as run
    from fastslow.optimize.variants import DEFAULT_TRY, STEPS, parse_pipelines
    from fastslow.report import output, tables

    if list_steps:
        output.console.print(tables.steps_table(STEPS.items()))
        output.console.print(f"default --try: {DEFAULT_TRY}")
        return
    if search and try_ is not None:
        raise UserError("--search chooses the pipelines itself: give --search or --try, not both")
    pipelines = parse_pipelines(DEFAULT_TRY if try_ is None else try_)  # refused here, before any training
    output.check_output_path(json_out)
    with progress(30 if search else len(pipelines), "optimizing") as advance:
        result = run(spec, task, None if search else pipelines, args=list(arg or []), weights=weights, batch=batch,
                     threads=threads, search=search,
                     max_accuracy_drop=max_accuracy_drop,
                     timer=timer("judge", max_time=max_time, min_samples=min_samples), seed=seed,
                     save=save, save_variant=save_variant, store=state["db"] or True, on_training=say,
                     on_variant=lambda r: advance(f"judged {r.name}: {r.verdict}"))
    report = result.report
    output.console.print(tables.optimize_table(report, f"{spec or result.task} on task {result.task}: batch {batch}, "
                                                       f"{threads} thread(s); * = Pareto front (latency, accuracy)"))
    for v in report.variants:
        extra = {k: val for k, val in v.notes.items() if k not in ("onnx_path",)}
        if extra:
            output.console.print(f"  {v.name}: " + ", ".join(
                f"{k}={val:.4g}" if isinstance(val, float) else f"{k}={val}" for k, val in extra.items()))
    best, b = report.best(), report.baseline
    if best:
        output.console.print(f"best accepted: [bold]{best.name}[/bold], {1 / best.latency_ratio:.2f}x faster than "
                             f"fp32 eager, accuracy {100 * best.accuracy:.2f}% (baseline {100 * b['accuracy']:.2f}%)")
    else:
        output.console.print("no variant was accepted")
    if report.search:
        s = report.search
        kept = "; ".join(f"{g}: {', '.join(n) or 'none'}" for g, n in s["kept_per_group"].items())
        say(f"search: {s['singles']} steps alone, then {len(s['combinations'])} combinations of the {s['keep']} "
            f"fastest accepted per group ({kept})")
    if result.manifest:
        say(f"saved {result.manifest['variant']} ({save_variant}) to {save} as {result.manifest['format']}: "
            f"{result.manifest['load']} (see manifest.json)")
    payload = result.to_dict()
    output.write_json(json_out, payload)
    if plot:
        from fastslow.report.plots import plot_latency_accuracy

        plot_latency_accuracy(plot, payload, title=f"{result.task}: batch {batch}, {threads} thread(s)")
        say(f"plot written to {plot}")
    warn_if_busy()
    report_saved(result.saved, payload, json_out, "optimize")
    if result.save_error:  # the results above are shown and stored; only the save failed
        raise UserError(f"--save {save}: {result.save_error}")
