"""The case studies' commands: `life ...`, `xor train`, and `demo` (what `make demo` runs).
Parse, call fastslow.api.tasks, render."""

from __future__ import annotations

import math
import shutil
import sys
from typing import Annotated, Any

import typer

from fastslow.cli.app import (
    CsvOut,
    Db,
    JsonOut,
    MaxTime,
    MinSamples,
    MinTime,
    Threads,
    app,
    progress,
    report_saved,
    say,
    state,
    timer,
    warn_if_busy,
)
from fastslow.errors import UserError

life_app = typer.Typer(no_args_is_help=True, help="The Game of Life predictor study.")
xor_app = typer.Typer(no_args_is_help=True, help="The continuous-XOR tutorial.")
app.add_typer(life_app, name="life")
app.add_typer(xor_app, name="xor")

ModelsDir = Annotated[str | None, typer.Option(
    "--models", help="Folder with percell.pt and fc.pt from `life train` (default: train now).")]
MinWeights = Annotated[str | None, typer.Option(
    "--min-weights", help="Weights from `life search` (default: the shipped zoo:life-min).")]


def _epoch_bar(advance: Any) -> Any:
    return lambda k, e, loss, acc: advance(f"training {k}: epoch {e}, loss {loss:.3g}, accuracy {acc:.3f}")


@life_app.command("train", short_help="Train the per-cell and fully-convolutional networks.")
def life_train(
    out: Annotated[str, typer.Option("--out", help="Folder for checkpoints and curves.")] = "runs/life",
    epochs: Annotated[int, typer.Option("--epochs", help="At most this many epochs.")] = 1000,
    lr: Annotated[float, typer.Option("--lr")] = 0.1,
    momentum: Annotated[float, typer.Option("--momentum")] = 0.9,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """Train the per-cell and fully-convolutional networks on all 512 neighbourhoods."""
    from fastslow.api.tasks import life_train as run
    from fastslow.report import output, tables
    from fastslow.tasks.life.train import LifeTrainConfig

    cfg = LifeTrainConfig(epochs, lr, momentum, batch_size, seed)
    output.check_output_path(json_out)
    with progress(2 * cfg.epochs, "training life networks") as advance:
        result = run(cfg, out, store=state["db"] or True, on_epoch=_epoch_bar(advance))
    output.console.print(tables.life_networks_table(result.rows(), out))
    for k, (_, r) in result.trained.items():
        if r.accuracy < 1.0:
            output.console.print(f"[yellow]warning[/yellow]: {k} ended at {100 * r.accuracy:.1f}%, not exact, after "
                                 f"{r.epochs} epochs: stored as partial (try more --epochs or another --seed)")
    output.console.print(f"per-cell net made fully convolutional: max |difference| "
                         f"{result.percell_as_fc_max_abs_diff:.2e} on a 64x64 grid")
    output.console.print(f"curves written to {out}/curves.png")
    payload = result.to_dict()
    output.write_json(json_out, payload)
    report_saved(result.saved, payload, json_out, "life train")


@life_app.command("study", short_help="Time every predictor over grid sizes, with fits.")
def life_study(
    sizes: Annotated[str, typer.Option("--sizes", help="Grid sides: 1..2048 (doubling) or 8,64,512.")] = "1..2048",
    predictors: Annotated[str, typer.Option(
        "--predictors", help="Comma list from rule_cell, rule_numpy, rule_torch, percell_loop, "
                             "percell_batched, fc, min.")] = "rule_cell,rule_numpy,rule_torch,percell_loop,"
                                                             "percell_batched,fc,min",
    threads: Threads = 1,
    loop_max_cells: Annotated[int, typer.Option(
        "--loop-max-cells", help="Largest grid (in cells) for one-call-per-cell predictors.")] = 4096,
    models: ModelsDir = None,
    min_weights: MinWeights = None,
    min_time: MinTime = None,
    max_time: MaxTime = None,
    min_samples: MinSamples = None,
    db: Db = None,
    csv_out: CsvOut = None,
    json_out: JsonOut = None,
    plot: Annotated[str | None, typer.Option("--plot", help="PNG: time against grid side.")] = None,
) -> None:
    """Time every predictor over grid sizes (the notebook's study), check each against the exact
    rule, fit the scaling exponent, and test trained-vs-untrained and data independence."""
    from fastslow.api.tasks import life_models
    from fastslow.api.tasks import life_study as run
    from fastslow.measure.sweep import parse_values
    from fastslow.report import output
    from fastslow.report.study import plot_study, study_lines, study_table
    from fastslow.tasks.life.study import check_study

    if threads < 1:
        raise UserError(f"--threads must be >= 1 (got {threads})")
    size_list = tuple(parse_values(sizes, what="--sizes"))
    names = tuple(p.strip() for p in predictors.split(",") if p.strip())
    check_study(size_list, names)  # before the networks are trained
    output.check_output_path(json_out)
    the_timer = timer("study", min_time, max_time, min_samples=min_samples)
    if not models:
        say("no --models given: training the per-cell and fc networks now (seconds)")
    trained = life_models(models, min_weights)
    with progress(len(size_list) * len(names), "life study") as advance:
        result = run(trained, sizes=size_list, predictors=names, threads=threads, loop_max_cells=loop_max_cells,
                     timer=the_timer, store=state["db"] or True,
                     on_row=lambda r: advance(f"life study: {r.predictor} at {r.size}"))
    payload = result.to_dict()
    output.console.print(study_table(payload["rows"]))
    for line in study_lines(payload):
        output.console.print(line)
    output.write_json(json_out, payload)
    output.write_csv(csv_out, [{k: r[k] for k in ("predictor", "size", "median_s", "iqr_s", "n", "per_cell_s",
                                                  "accuracy", "flags", "error", "estimated_s")}
                               for r in payload["rows"]])
    if plot:
        plot_study(plot, payload)
        say(f"plot written to {plot}")
    warn_if_busy()
    report_saved(result.saved, payload, json_out, "life study")


@life_app.command("search", short_help="Find the smallest exact network.")
def life_search(
    out: Annotated[str, typer.Option("--out", help="Where to save the network found.")] = "runs/life/life_min.pt",
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds trained per candidate.")] = 32,
    epochs: Annotated[int, typer.Option("--epochs", help="Most epochs per candidate.")] = 3000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Threads = 1,
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """Find the smallest network that is right on all 512 neighbourhoods (a width search)."""
    from fastslow.api.tasks import life_search as run
    from fastslow.report import output, tables

    output.check_output_path(json_out)
    with progress(10, "searching widths") as advance:
        result = run(seeds=seeds, epochs=epochs, seed=seed, out=out, threads=threads, store=state["db"] or True,
                     on_candidate=lambda c: advance(f"tried embed={c.embed} hidden={c.hidden}"))
    output.console.print(tables.search_table(result.tried))
    payload = result.to_dict()
    output.write_json(json_out, payload)
    if result.model is None:
        report_saved(result.saved, payload, json_out, "life search")
        raise UserError("no candidate reached 100% accuracy; try more --seeds or --epochs")
    output.console.print(f"smallest exact network: {payload['params']} parameters "
                         f"(embed {result.embed}, hidden {result.hidden}), saved to {out}")
    output.console.print(f"use it with: fastslow life study --min-weights {out}")
    report_saved(result.saved, payload, json_out, "life search")


@life_app.command("play", short_help="Run the simulation, drawn live.")
def life_play(
    size: Annotated[int, typer.Option("--size", help="Grid side.")] = 48,
    steps: Annotated[int, typer.Option("--steps", help="Generations to run.")] = 100,
    predictor: Annotated[str, typer.Option("--predictor", help="rule, percell, fc or min.")] = "min",
    interval: Annotated[float, typer.Option("--interval", help="Seconds per frame (the display budget).")] = 0.1,
    check: Annotated[bool, typer.Option("--check", help="Verify every generation against the exact rule.")] = False,
    no_render: Annotated[bool, typer.Option("--no-render", help="Do not draw; for scripts.")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    models: ModelsDir = None,
    min_weights: MinWeights = None,
    json_out: JsonOut = None,
) -> None:
    """Run the simulation with a predictor, drawn live in the terminal."""
    from fastslow.api.tasks import life_models
    from fastslow.report import output
    from fastslow.report.units import format_seconds
    from fastslow.tasks.life.play import PLAY_PREDICTORS, play
    from fastslow.tasks.life.study import LifeModels
    from fastslow.zoo.life import min_net

    if predictor not in PLAY_PREDICTORS:
        raise UserError(f"--predictor '{predictor}': unknown (known: {', '.join(PLAY_PREDICTORS)})")
    if size < 1 or steps < 1 or not (math.isfinite(interval) and interval >= 0):
        raise UserError(f"--size and --steps must be >= 1 and --interval a finite number >= 0 "
                        f"(got {size}, {steps}, {interval})")
    if predictor in ("percell", "fc"):
        the_models = life_models(models, min_weights)
    else:
        the_models = LifeModels(None, None, min_net(min_weights) if min_weights else min_net())  # type: ignore[arg-type]
    term = shutil.get_terminal_size((80, 24))
    result = play(the_models, predictor, size=size, steps=steps, interval_s=0 if no_render else interval,
                  check=check, draw=not no_render, seed=seed, out=sys.stderr if json_out == "-" else sys.stdout,
                  terminal_size=(term.columns, term.lines))
    payload = result.to_dict() | {"predictor": predictor, "size": size, "interval_s": interval}
    output.write_json(json_out, payload)
    med = payload["median_predict_s"]
    verdict = "within" if med is not None and med <= interval else "over"
    output.console.print(f"{result.steps} generations with {predictor} at {size}x{size}: median predict "
                         f"{format_seconds(med)}, max {format_seconds(payload['max_predict_s'])} "
                         f"({verdict} the {format_seconds(interval)} frame budget)"
                         + (", every generation matched the exact rule" if check and result.first_mismatch is None
                            else ""))
    if result.first_mismatch is not None:
        output.err_console.print(f"fastslow: mismatch: generation {result.first_mismatch}: "
                                 f"{result.mismatched_cells} cells differ from the exact rule")
        raise typer.Exit(1)


@xor_app.command("train", short_help="Train the tutorial's XOR classifier.")
def xor_train(
    seed: Annotated[int, typer.Option("--seed")] = 0,
    epochs: Annotated[int, typer.Option("--epochs")] = 100,
    noise: Annotated[float, typer.Option("--noise", help="Std of the Gaussian noise on each coordinate.")] = 0.1,
    lr: Annotated[float, typer.Option("--lr", help="Plain SGD's learning rate.")] = 0.1,
    data: Annotated[str, typer.Option(
        "--data", help="corners: the tutorial's noisy {0,1}^2 corners; square: uniform over [-1,1]^2.")] = "corners",
    out: Annotated[str, typer.Option("--out", help="Folder for the checkpoint.")] = "runs/xor",
    plot: Annotated[str | None, typer.Option("--plot", help="PNG: the decision boundary.")] = None,
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """Train the tutorial's 2-4-1 tanh classifier on continuous XOR (2,500 training and 500 test
    points, batches of 128, SGD); report test accuracy."""
    from fastslow.api.tasks import xor_train as run
    from fastslow.report import output
    from fastslow.tasks.xor import XorConfig

    cfg = XorConfig(epochs=epochs, noise=noise, lr=lr, seed=seed, data=data)
    output.check_output_path(json_out)
    with progress(epochs, "training xor") as advance:
        result = run(cfg, out, store=state["db"] or True,
                     on_epoch=lambda e, loss: advance(f"training xor: epoch {e}, loss {loss:.3f}"))
    output.console.print(f"xor 2-4-1 tanh on {data} data: test accuracy {100 * result.test_accuracy:.1f}% on "
                         f"{cfg.n_test} points after {epochs} epochs (noise {noise}, seed {seed}); "
                         f"checkpoint {out}/xor.pt")
    if plot:
        from fastslow.report.plots import plot_decision_boundary

        x, y = result.test.tensors  # type: ignore[union-attr]
        plot_decision_boundary(plot, result.model, x.numpy(), y.numpy(),
                               f"XOR decision boundary, test accuracy {100 * result.test_accuracy:.1f}%")
        say(f"plot written to {plot}")
    payload = result.to_dict()
    output.write_json(json_out, payload)
    report_saved(result.saved, payload, json_out, "xor train")


@app.command(short_help="The main job: train, study, search, report.")
def demo(
    out: Annotated[str, typer.Option("--out", help="Folder for the report.")] = "fastslow-report",
    sizes: Annotated[str, typer.Option("--sizes", help="Grid sides for the reduced study.")] = "1..512",
    search_seeds: Annotated[int, typer.Option("--search-seeds", help="Seeds per candidate in the search.")] = 32,
    threads: Threads = 1,
    matmul_size: Annotated[int | None, typer.Option("--matmul-size", help="Matrix side for the peaks.")] = None,
    predictor_models: Annotated[int, typer.Option(
        "--predictor-models", metavar="N", help="Models of each family for the latency predictor (0: none).")] = 4,
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """The main job: train the life predictors, find the smallest exact predictor, run a reduced
    study, train XOR, measure device peaks, make a small latency predictor for this machine, and
    write an HTML report."""
    from fastslow.api.tasks import demo as run
    from fastslow.measure.sweep import parse_values
    from fastslow.report import output, tables
    from fastslow.report.study import study_lines, study_table

    size_list = tuple(parse_values(sizes, what="--sizes"))
    output.check_output_path(json_out)
    with progress(1, "demo") as advance:
        result = run(out, sizes=size_list, search_seeds=search_seeds, threads=threads, matmul_size=matmul_size,
                     predictor_models=predictor_models, store=state["db"] or True, say=say,
                     on_epoch=_epoch_bar(advance),
                     on_candidate=lambda c: advance(f"tried embed={c.embed} hidden={c.hidden}"),
                     on_row=lambda r: advance(f"life study: {r.predictor} at {r.size}"))
    study = result.study.to_dict()
    output.console.print(study_table(study["rows"]))
    for line in study_lines(study):
        output.console.print(line)
    output.console.print(f"xor: test accuracy {100 * result.xor.test_accuracy:.1f}%")
    output.console.print(tables.peaks_table(result.peaks))
    if result.predictor is not None:
        lp = result.predictor
        if lp.trained.held_out:
            output.console.print(tables.predictor_scores_table(
                f"latency predictor: {lp.trained.trained} models trained, {lp.trained.held} held out",
                lp.trained.held_out))
        best, latency = lp.prediction.best
        output.console.print(f"zoo:convnet predicted best: {best.describe()}, {latency * 1e3:.3g} ms per call")
    output.console.print(f"report: {result.report.resolve()}")
    payload = result.to_dict()
    output.write_json(json_out, payload)
    warn_if_busy()
    report_saved(result.saved, payload, json_out, "demo")
