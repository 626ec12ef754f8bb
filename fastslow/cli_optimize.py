"""CLI for `optimize`: build each variant, judge it against the baseline, show the table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fastslow.cli import Args, JsonOut, Weights, _progress, app, store
from fastslow.errors import UserError, one_line


@app.command()
def optimize(
    spec: Annotated[str | None, typer.Argument(help="Model to optimize (default: the task's own, trained).")] = None,
    task: Annotated[str, typer.Option("--task", help="digits, life, xor, or module:function returning a Task.")
                    ] = "digits",
    try_: Annotated[str | None, typer.Option(
        "--try", help="Comma-separated pipelines of '+'-joined steps (default: one of each technique).")] = None,
    arg: Args = None,
    weights: Weights = None,
    batch: Annotated[int, typer.Option("--batch", help="Batch size the variants are timed at.")] = 64,
    threads: Annotated[int, typer.Option("--threads", help="Threads while timing.")] = 1,
    max_accuracy_drop: Annotated[float, typer.Option(
        "--max-accuracy-drop", help="Reject variants losing more accuracy points than this.")] = 1.0,
    max_time: Annotated[float, typer.Option("--max-time", help="Most timed seconds per side of each comparison.")
                        ] = 2.0,
    seed: Annotated[int, typer.Option("--seed", help="Data split and training seed.")] = 0,
    save: Annotated[str | None, typer.Option("--save", help="Write the best accepted variant here.")] = None,
    plot: Annotated[str | None, typer.Option("--plot", help="PNG: latency against accuracy.")] = None,
    list_steps: Annotated[bool, typer.Option("--list", help="List the steps and exit.")] = False,
    json_out: JsonOut = None,
) -> None:
    """Apply quantization, pruning, distillation, compilation, ONNX Runtime, precision and layout
    changes; judge each by measured latency, size and accuracy against the baseline."""
    import torch

    from fastslow.env import environment
    from fastslow.measure.timer import TimerConfig
    from fastslow.optimize.judge import optimize as run_optimize
    from fastslow.optimize.variants import DEFAULT_TRY, STEPS, Context, parse_pipelines
    from fastslow.report import output
    from fastslow.report.units import format_bytes, format_seconds
    from fastslow.store.db import Record
    from fastslow.tasks.base import TrainConfig
    from fastslow.tasks.registry import resolve_task

    if list_steps:
        t = Table(title="optimization steps", title_justify="left")
        t.add_column("step")
        t.add_column("what it does")
        for name, s in STEPS.items():
            t.add_row(name, s.help)
        output.console.print(t)
        output.console.print(f"default --try: {DEFAULT_TRY}")
        return
    if batch < 1 or threads < 1 or max_accuracy_drop < 0:
        raise UserError(f"--batch and --threads must be >= 1 and --max-accuracy-drop >= 0 "
                        f"(got {batch}, {threads}, {max_accuracy_drop})")
    pipelines = parse_pipelines(try_ or DEFAULT_TRY)
    results_store = store()
    the_task = resolve_task(task)
    cfg = the_task.train_config
    the_task.train_config = TrainConfig(cfg.epochs, cfg.lr, cfg.batch_size, seed, cfg.weight_decay)
    data = the_task.make_data(seed)
    example = data.batch(batch)
    if spec:
        from fastslow.specs import parse_args
        from fastslow.zoo import resolve_model

        model = resolve_model(spec, parse_args(arg or []), weights).model
    else:
        model = the_task.build_model()
    try:
        with torch.inference_mode():
            model.eval()(example)
    except Exception as e:
        raise UserError(f"model '{spec or the_task.name}' rejected the task's input {tuple(example.shape)}: "
                        f"{one_line(e)}") from e
    if not weights:
        with output.err_console.status(f"training {spec or 'the task model'} on the {the_task.name} task"):
            the_task.train(model, data)
    ctx = Context(the_task, data, model.eval(), example, threads)
    timer = TimerConfig(min_time_s=min(0.3, max_time), max_time_s=max_time, rel_precision=0.02)
    with _progress(len(pipelines), "optimizing") as advance:
        report = run_optimize(ctx, pipelines, max_accuracy_drop=max_accuracy_drop, timer=timer,
                              on_variant=lambda r: advance(f"judged {r.name}: {r.verdict}"))
    payload = report.to_dict()
    b = report.baseline
    t = Table(title=f"{spec or the_task.name} on task {the_task.name}: batch {batch}, {threads} thread(s); "
                    f"* = Pareto front (latency, accuracy)", title_justify="left")
    for col in ("variant", "verdict", "latency", "vs fp32 eager", "95% CI", "size", "params", "accuracy", "max |diff|",
                "reason"):
        t.add_column(col, justify="left" if col in ("variant", "verdict", "reason") else "right",
                     no_wrap=col == "variant")
    t.add_row(("* " if b["pareto"] else "  ") + "baseline (fp32 eager)", "-", format_seconds(b["median_s"]), "1.00",
              "", format_bytes(b["size_bytes"]), f"{b['params']:,}", f"{100 * b['accuracy']:.2f}%", "", "")
    for v in report.variants:
        colour = "green" if v.verdict == "accepted" else "red"
        t.add_row(("* " if v.pareto else "  ") + v.name, f"[{colour}]{v.verdict}[/{colour}]",
                  format_seconds(v.median_s), f"{v.latency_ratio:.2f}" if v.latency_ratio else "-",
                  f"{v.ci95[0]:.2f}-{v.ci95[1]:.2f}" if v.ci95 else "", format_bytes(v.size_bytes),
                  f"{v.params:,}" if v.params is not None else "-",
                  f"{100 * v.accuracy:.2f}%" if v.accuracy is not None else "-",
                  f"{v.max_abs_diff:.2g}" if v.max_abs_diff is not None else "-", v.reason)
    output.console.print(t)
    for v in report.variants:
        extra = {k: val for k, val in v.notes.items() if k not in ("onnx_path",)}
        if extra:
            output.console.print(f"  {v.name}: " + ", ".join(
                f"{k}={val:.4g}" if isinstance(val, float) else f"{k}={val}" for k, val in extra.items()))
    best = report.best()
    if best:
        output.console.print(f"best accepted: [bold]{best.name}[/bold], {1 / best.latency_ratio:.2f}x faster than "
                             f"fp32 eager, accuracy {100 * best.accuracy:.2f}% (baseline {100 * b['accuracy']:.2f}%)")
    else:
        output.console.print("no variant was accepted")
    run_id = results_store.add(Record("optimize", spec or f"task:{the_task.name}",
                                      {"task": the_task.name, "try": try_ or DEFAULT_TRY, "batch": batch,
                                       "threads": threads, "max_accuracy_drop": max_accuracy_drop, "seed": seed},
                                      environment(threads=threads), payload, "ok",
                                      f"best {best.name} {1 / best.latency_ratio:.2f}x" if best else "none accepted"))
    output.console.print(f"stored as run {run_id} in {results_store.path}")
    if save:
        if best is None:
            raise UserError("--save: no variant was accepted, nothing to save")
        from fastslow.optimize.save import save_variant

        manifest = save_variant(Path(save), report.accepted_candidates[best.name], best.to_dict(),
                                {"task": the_task.name, "spec": spec, "seed": seed}, example)
        output.console.print(f"saved {best.name} to {save} as {manifest['format']} (see manifest.json)")
    output.write_json(json_out, payload)
    if plot:
        from fastslow.report.plots import plot_latency_accuracy

        plot_latency_accuracy(plot, payload, title=f"{the_task.name}: batch {batch}, {threads} thread(s)")
        output.console.print(f"plot written to {plot}")
