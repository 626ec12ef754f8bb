"""How to make it faster: `optimize` builds each pipeline of steps, judges every variant
against the baseline (measured speed, size, accuracy), stores the run, and can save one."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fastslow.api.measure import Store, store_whole
from fastslow.env import environment, others_cpu_percent
from fastslow.errors import UserError, one_line, param_error
from fastslow.measure.timer import TimerConfig
from fastslow.optimize.judge import OptimizeReport, VariantResult
from fastslow.optimize.judge import optimize as judge_all
from fastslow.optimize.variants import DEFAULT_TRY, Context, Pipeline, parse_pipelines, pipeline_name
from fastslow.specs import parse_args
from fastslow.store.db import Record
from fastslow.store.recorder import Saved, open_store
from fastslow.tasks.base import FitConfig, Task
from fastslow.tasks.registry import resolve_task


@dataclass
class OptimizeRun:
    """The judged variants (`report`), on which task and model, and where it was stored/saved."""

    report: OptimizeReport
    task: str
    spec: str | None
    trained: bool  # the model was trained here (no weights were given)
    manifest: dict[str, Any] | None = None  # what `save` wrote
    save_error: str | None = None  # why `save` wrote nothing (no accepted variant, say)
    saved: Saved | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {**self.report.to_dict(), "task": self.task, "spec": self.spec, "trained": self.trained,
                "saved_variant": self.manifest, "save_error": self.save_error}


def optimize(
    spec: str | None = None,
    task: str | Task = "digits",
    pipelines: str | list[Pipeline] | None = None,
    *,
    args: dict[str, Any] | list[str] | None = None,
    weights: str | None = None,
    batch: int = 64,
    threads: int = 1,
    max_accuracy_drop: float = 1.0,
    timer: TimerConfig | None = None,
    seed: int = 0,
    save: str | Path | None = None,
    save_variant: str = "fastest",
    search: bool = False,
    store: Store = True,
    on_variant: Callable[[VariantResult], None] | None = None,
    on_training: Callable[[str], None] | None = None,
) -> OptimizeRun:
    """Optimize `spec` (default: the task's own model) on `task`: the model is trained with the
    task's loop unless `weights` are given; every pipeline is built and judged; with `save`, the
    accepted variant chosen by `save_variant` ("fastest", "smallest" on disk, or a pipeline's
    name) is written there as judged, loadable with torch or onnxruntime alone. With `search`,
    the pipelines are not given but found: fastslow.optimize.judge.search tries each step of a
    stated space alone, then combinations of the best ones.

        >>> run = optimize(task="xor", pipelines="int8-dynamic,onnx", store=False)  # doctest: +SKIP
        >>> run.report.best().name  # doctest: +SKIP
    """
    if batch < 1:
        raise param_error("batch", f"must be >= 1 (got {batch})")
    if threads < 1:
        raise param_error("threads", f"must be >= 1 (got {threads})")
    if not math.isfinite(max_accuracy_drop) or max_accuracy_drop < 0:
        raise param_error("max_accuracy_drop", f"must be a finite number >= 0 (got {max_accuracy_drop})")
    parsed = parse_pipelines(DEFAULT_TRY if pipelines is None else pipelines) if not isinstance(pipelines, list) \
        else pipelines
    if search and pipelines is not None:
        raise param_error("pipelines", "and a search cannot be asked for together: the search chooses the pipelines")
    names = [pipeline_name(p) for p in parsed]
    if save_variant not in ("fastest", "smallest") and save_variant not in names and not search:
        raise param_error("save_variant", f"value '{save_variant}' is neither fastest, smallest nor one of the "
                                          f"pipelines tried ({', '.join(names)})")
    timer = timer or TimerConfig.preset("judge")
    db = open_store(store)
    the_task = resolve_task(task) if isinstance(task, str) else task
    cfg = the_task.train_config
    the_task.train_config = FitConfig(cfg.epochs, cfg.lr, cfg.batch_size, seed, cfg.weight_decay)
    data = the_task.make_data(seed)
    example = data.batch(batch)
    if spec:
        from fastslow.zoo import resolve_model

        model = resolve_model(spec, parse_args(args) if isinstance(args, list) else args, weights).model
    else:
        model = the_task.build_model()
    try:
        with torch.inference_mode():
            model.eval()(example)
    except Exception as e:
        raise UserError(f"model '{spec or the_task.name}' rejected the task's input {tuple(example.shape)}: "
                        f"{one_line(e)}") from e
    trained = not weights
    if trained:
        if on_training:
            on_training(f"training {spec or 'the task model'} on the {the_task.name} task")
        the_task.train(model, data)
    with tempfile.TemporaryDirectory(prefix="fastslow-optimize-") as work:  # the variants' exports, until saved
        ctx = Context(the_task, data, model.eval(), example, threads, Path(work))
        others_cpu_percent(refresh=True)
        if search:
            from fastslow.optimize.judge import search as run_search

            report = run_search(ctx, max_accuracy_drop=max_accuracy_drop, timer=timer, on_variant=on_variant)
        else:
            report = judge_all(ctx, parsed, max_accuracy_drop=max_accuracy_drop, timer=timer, on_variant=on_variant)
        run = OptimizeRun(report, the_task.name, spec, trained)
        best = report.best()
        if save is not None:  # a variant that cannot be saved costs the save, never the judged results
            from fastslow.optimize.save import save_variant as write

            try:
                chosen = report.choose(save_variant)
                run.manifest = write(Path(save), report.accepted_candidates[chosen.name], chosen.to_dict(),
                                     {"spec": spec, "task": task if isinstance(task, str) else the_task.name,
                                      "chosen_as": save_variant, "seed": seed, "weights": weights, "batch": batch},
                                     example)
            except UserError as e:
                run.save_error = str(e)
    run.saved = store_whole(db, Record(
        "optimize", spec or f"task:{the_task.name}",
        {"task": the_task.name, "try": "search" if search else ",".join(names), "batch": batch, "threads": threads,
         "max_accuracy_drop": max_accuracy_drop, "seed": seed, "weights": weights},
        environment(threads=threads), run.to_dict(), "ok",
        f"best {best.name} {1 / best.latency_ratio:.2f}x" if best else "none accepted"))
    return run
