"""CLI for the case studies: `life ...`, `xor train`, and `demo` (what `make demo` runs)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fastslow.cli import JsonOut, MaxTime, MinTime, _progress, app, store
from fastslow.errors import UserError

life_app = typer.Typer(no_args_is_help=True, help="The Game of Life predictor study.")
xor_app = typer.Typer(no_args_is_help=True, help="The continuous-XOR tutorial.")
app.add_typer(life_app, name="life")
app.add_typer(xor_app, name="xor")

ModelsDir = Annotated[str | None, typer.Option(
    "--models", help="Folder with percell.pt and fc.pt from `life train` (default: train now).")]
MinWeights = Annotated[str | None, typer.Option(
    "--min-weights", help="Weights from `life search` (default: the shipped zoo:life-min).")]


def _say(msg: str) -> None:
    from fastslow.report.output import err_console

    err_console.print(msg)


def _train_life_models(cfg: Any, out: Path | None) -> dict[str, Any]:
    from fastslow.tasks.life.train import train_both

    with _progress(2 * cfg.epochs, "training life networks") as advance:
        return train_both(cfg, out, on_epoch=lambda k, e, loss, acc: advance(
            f"training {k}: epoch {e}, loss {loss:.3g}, accuracy {acc:.3f}"))


def load_life_models(models_dir: str | None, min_weights: str | None, seed: int = 0,
                     with_untrained: bool = False) -> tuple[Any, Any]:
    """The trained per-cell and fc networks (from a folder, or trained now) and the min one."""
    from fastslow.tasks.life.study import LifeModels
    from fastslow.tasks.life.train import LifeTrainConfig, load_checkpoint
    from fastslow.zoo.life import fc_net, min_net

    if models_dir:
        nets = {}
        for kind in ("percell", "fc"):
            loaded_kind, model = load_checkpoint(Path(models_dir) / f"{kind}.pt")
            if loaded_kind != kind:
                raise UserError(f"checkpoint {Path(models_dir) / f'{kind}.pt'}: holds a {loaded_kind} network")
            nets[kind] = model
    else:
        _say("no --models given: training the per-cell and fc networks now (seconds)")
        trained = _train_life_models(LifeTrainConfig(seed=seed), None)
        nets = {k: m for k, (m, _) in trained.items()}
    minimal = min_net(min_weights) if min_weights else min_net()
    untrained = None
    if with_untrained:
        import torch

        torch.manual_seed(seed + 1)
        untrained = fc_net().eval()
    return LifeModels(nets["percell"], nets["fc"], minimal), untrained


@life_app.command("train")
def life_train(
    out: Annotated[str, typer.Option("--out", help="Folder for checkpoints and curves.")] = "runs/life",
    epochs: Annotated[int, typer.Option("--epochs", help="At most this many epochs.")] = 1000,
    lr: Annotated[float, typer.Option("--lr")] = 0.1,
    momentum: Annotated[float, typer.Option("--momentum")] = 0.9,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    json_out: JsonOut = None,
) -> None:
    """Train the per-cell and fully-convolutional networks on all 512 neighbourhoods."""
    import torch

    from fastslow.cost.counter import params_of
    from fastslow.env import environment
    from fastslow.report import output
    from fastslow.report.plots import plot_training_curves
    from fastslow.store.db import Record
    from fastslow.tasks.life.convert import predict_per_window_batched, to_fully_convolutional
    from fastslow.tasks.life.rules import random_grid
    from fastslow.tasks.life.train import LifeTrainConfig

    cfg = LifeTrainConfig(epochs, lr, momentum, batch_size, seed)
    results_store = store()
    out_dir = Path(out)
    trained = _train_life_models(cfg, out_dir)
    curves = plot_training_curves(out_dir / "curves.png", {k: r.history for k, (_, r) in trained.items()},
                                  "life networks on all 512 neighbourhoods")
    # The per-cell network, made fully convolutional with the same weights, must agree with
    # itself applied window by window.
    percell = trained["percell"][0]
    grid = random_grid(64, seed=seed)[None, None]
    with torch.inference_mode():
        diff = float((to_fully_convolutional(percell, (3, 3))(grid)
                      - predict_per_window_batched(percell, grid, (3, 3))).abs().max())
    payload: dict[str, Any] = {k: r.to_dict() for k, (_, r) in trained.items()}
    payload["percell_as_fc_max_abs_diff"] = diff
    payload["out"] = str(out_dir)
    t = Table(title="life networks", title_justify="left")
    for col in ("network", "params", "epochs", "accuracy (512 neighbourhoods)", "checkpoint"):
        t.add_column(col, justify="right")
    for k, (m, r) in trained.items():
        t.add_row(k, str(params_of(m)), str(r.epochs), f"{100 * r.accuracy:.1f}%", str(out_dir / f"{k}.pt"))
    output.console.print(t)
    output.console.print(f"per-cell net made fully convolutional: max |difference| {diff:.2e} on a 64x64 grid")
    output.console.print(f"curves written to {curves}")
    run_id = results_store.add(Record("life train", None, {"config": vars(cfg), "out": str(out_dir)},
                                      environment(), payload, "ok",
                                      ", ".join(f"{k} {r.accuracy:.3f}" for k, (_, r) in trained.items())))
    output.console.print(f"stored as run {run_id} in {results_store.path}")
    output.write_json(json_out, payload)


def _study_table(rows: list[dict[str, Any]]) -> Table:
    from fastslow.report.units import format_seconds

    t = Table(title="life predictors: time per generation", title_justify="left")
    for col in ("predictor", "size", "median", "per cell", "accuracy", "note"):
        t.add_column(col, justify="right")
    for r in rows:
        note = r["error"] or ""
        if r.get("estimated_s"):
            note += f" (estimated {format_seconds(r['estimated_s'])})"
        acc = f"{100 * r['accuracy']:.1f}%" if r["accuracy"] is not None else "-"
        t.add_row(r["predictor"], str(r["size"]), format_seconds(r["median_s"]),
                  format_seconds(r["per_cell_s"]), acc, note)
    return t


@life_app.command("study")
def life_study(
    sizes: Annotated[str, typer.Option("--sizes", help="Grid sides: 1..2048 (doubling) or 8,64,512.")] = "1..2048",
    predictors: Annotated[str, typer.Option(
        "--predictors", help="Comma list from rule_cell, rule_numpy, rule_torch, percell_loop, "
                             "percell_batched, fc, min.")] = "rule_cell,rule_numpy,rule_torch,percell_loop,"
                                                             "percell_batched,fc,min",
    threads: Annotated[int, typer.Option("--threads")] = 1,
    loop_max_cells: Annotated[int, typer.Option(
        "--loop-max-cells", help="Largest grid (in cells) for one-call-per-cell predictors.")] = 4096,
    models: ModelsDir = None,
    min_weights: MinWeights = None,
    min_time: MinTime = 0.1,
    max_time: MaxTime = 1.0,
    json_out: JsonOut = None,
    plot: Annotated[str | None, typer.Option("--plot", help="PNG: time against grid side.")] = None,
) -> None:
    """Time every predictor over grid sizes (the notebook's study), check each against the exact
    rule, fit the scaling exponent, and test trained-vs-untrained and data independence."""
    from fastslow.env import environment
    from fastslow.measure.sweep import parse_values
    from fastslow.measure.timer import TimerConfig
    from fastslow.report import output
    from fastslow.store.db import Record
    from fastslow.tasks.life.study import run_study

    if threads < 1:
        raise UserError(f"--threads must be >= 1 (got {threads})")
    size_list = tuple(parse_values(sizes, what="--sizes"))
    names = tuple(p.strip() for p in predictors.split(",") if p.strip())
    results_store = store()
    life_models, untrained = load_life_models(models, min_weights, with_untrained=True)
    timer = TimerConfig(min_time_s=min_time, max_time_s=max_time, rel_precision=0.02)
    with _progress(len(size_list) * len(names), "life study") as advance:
        result = run_study(life_models, sizes=size_list, predictors=names, threads=threads,
                           loop_max_cells=loop_max_cells, timer=timer, untrained_fc=untrained,
                           on_row=lambda r: advance(f"life study: {r.predictor} at {r.size}"))
    payload = result.to_dict()
    _print_study(payload)
    run_id = results_store.add(Record("life study", None, {"sizes": size_list, "predictors": names,
                                                           "threads": threads}, environment(threads=threads),
                                      payload, "ok", f"{len(result.rows)} rows"))
    output.console.print(f"stored as run {run_id} in {results_store.path}")
    output.write_json(json_out, payload)
    if plot:
        _plot_study(plot, payload)
        output.console.print(f"plot written to {plot}")


def _print_study(payload: dict[str, Any]) -> None:
    from fastslow.report import output

    output.console.print(_study_table(payload["rows"]))
    for name, fit in payload["fits"].items():
        output.console.print(f"{name}: " + output.describe_fit(fit))
    for c in payload["checks"]:
        lo, hi = c["ci95"]
        output.console.print(f"{c['check']} at {c['size']}x{c['size']}: B/A {c['ratio']:.3f} "
                             f"[{lo:.3f}, {hi:.3f}]: {c['verdict']}")


def _plot_study(path: str | Path, payload: dict[str, Any]) -> Path:
    from fastslow.measure.sweep import PowerLawFit
    from fastslow.report.plots import plot_scaling

    series: dict[str, tuple[list[float], list[float]]] = {}
    for r in payload["rows"]:
        if r["median_s"]:
            xs, ys = series.setdefault(r["predictor"], ([], []))
            xs.append(r["size"])
            ys.append(r["median_s"])
    fit = payload.get("fits", {}).get("fc")
    fit_obj = PowerLawFit(**{**fit, "ci95": tuple(fit["ci95"])}) if fit else None
    fc_sizes, fc_medians = series.pop("fc", ([], []))
    return plot_scaling(path, fc_sizes, fc_medians, fit=fit_obj, series=series, label="fc",
                        xlabel="grid side (cells)", title="Game of Life: time per generation")


@life_app.command("search")
def life_search(
    out: Annotated[str, typer.Option("--out", help="Where to save the network found.")] = "runs/life/life_min.pt",
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds trained per candidate.")] = 32,
    epochs: Annotated[int, typer.Option("--epochs", help="Most epochs per candidate.")] = 3000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    json_out: JsonOut = None,
) -> None:
    """Find the smallest network that is right on all 512 neighbourhoods (a width search)."""
    from fastslow.env import environment
    from fastslow.report import output
    from fastslow.store.db import Record
    from fastslow.tasks.life.search import find_min_predictor, save_min

    if seeds < 1 or epochs < 1:
        raise UserError(f"--seeds and --epochs must be >= 1 (got {seeds}, {epochs})")
    results_store = store()
    with _progress(10, "searching widths") as advance:
        result = find_min_predictor(seeds=seeds, epochs=epochs, seed=seed,
                                    on_candidate=lambda c: advance(f"tried embed={c.embed} hidden={c.hidden}"))
    t = Table(title="candidates, fewest parameters first", title_justify="left")
    for col in ("embed", "hidden", "params", "exact seeds", "best accuracy", "time"):
        t.add_column(col, justify="right")
    for c in result.tried:
        t.add_row(str(c.embed), str(c.hidden), str(c.params), f"{c.exact_seeds}/{c.seeds}",
                  f"{100 * c.best_accuracy:.2f}%", f"{c.seconds:.1f} s")
    output.console.print(t)
    payload = result.to_dict()
    if result.model is None:
        output.write_json(json_out, payload)
        raise UserError("no candidate reached 100% accuracy; try more --seeds or --epochs")
    save_min(Path(out), result)
    payload["out"] = out
    output.console.print(f"smallest exact network: {payload['params']} parameters "
                         f"(embed {result.embed}, hidden {result.hidden}), saved to {out}")
    output.console.print(f"use it with: fastslow life study --min-weights {out}")
    run_id = results_store.add(Record("life search", None, {"seeds": seeds, "epochs": epochs, "seed": seed},
                                      environment(), payload, "ok", f"{payload['params']} params"))
    output.console.print(f"stored as run {run_id} in {results_store.path}")
    output.write_json(json_out, payload)


@life_app.command("play")
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
    from fastslow.report import output
    from fastslow.report.units import format_seconds
    from fastslow.tasks.life.play import PLAY_PREDICTORS, play

    if predictor not in PLAY_PREDICTORS:
        raise UserError(f"--predictor '{predictor}': unknown (known: {', '.join(PLAY_PREDICTORS)})")
    if size < 1 or steps < 1 or interval < 0:
        raise UserError(f"--size and --steps must be >= 1 and --interval >= 0 (got {size}, {steps}, {interval})")
    needs_trained = predictor in ("percell", "fc")
    life_models, _ = load_life_models(models, min_weights) if needs_trained else (None, None)
    if life_models is None:
        from fastslow.tasks.life.study import LifeModels
        from fastslow.zoo.life import min_net

        life_models = LifeModels(None, None, min_net(min_weights) if min_weights else min_net())  # type: ignore[arg-type]
    term = shutil.get_terminal_size((80, 24))
    result = play(life_models, predictor, size=size, steps=steps, interval_s=0 if no_render else interval,
                  check=check, draw=not no_render, seed=seed, out=sys.stdout,
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


@xor_app.command("train")
def xor_train(
    seed: Annotated[int, typer.Option("--seed")] = 0,
    epochs: Annotated[int, typer.Option("--epochs")] = 60,
    noise: Annotated[float, typer.Option("--noise", help="Std of the jitter on each coordinate.")] = 0.1,
    lr: Annotated[float, typer.Option("--lr")] = 0.1,
    out: Annotated[str, typer.Option("--out", help="Folder for the checkpoint.")] = "runs/xor",
    plot: Annotated[str | None, typer.Option("--plot", help="PNG: the decision boundary.")] = None,
    json_out: JsonOut = None,
) -> None:
    """Train the 2-4-1 tanh classifier on noisy continuous XOR; report test accuracy."""
    import torch

    from fastslow.env import environment
    from fastslow.report import output
    from fastslow.report.plots import plot_decision_boundary
    from fastslow.store.db import Record
    from fastslow.tasks.xor import XorConfig, train_xor

    cfg = XorConfig(epochs=epochs, noise=noise, lr=lr, seed=seed)
    results_store = store()
    with _progress(epochs, "training xor") as advance:
        result = train_xor(cfg, on_epoch=lambda e, loss: advance(f"training xor: epoch {e}, loss {loss:.3f}"))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": result.model.state_dict(), "config": vars(cfg)}, out_dir / "xor.pt")
    payload = result.to_dict()
    output.console.print(f"xor 2-4-1 tanh: test accuracy {100 * result.test_accuracy:.1f}% after {epochs} epochs "
                         f"(noise {noise}, seed {seed}); checkpoint {out_dir / 'xor.pt'}")
    if plot:
        x, y = result.test.tensors  # type: ignore[union-attr]
        plot_decision_boundary(plot, result.model, x.numpy(), y.numpy(),
                               f"XOR decision boundary, test accuracy {100 * result.test_accuracy:.1f}%")
        output.console.print(f"plot written to {plot}")
    run_id = results_store.add(Record("xor train", "zoo:xor", vars(cfg), environment(), payload, "ok",
                                      f"test accuracy {result.test_accuracy:.3f}"))
    output.console.print(f"stored as run {run_id} in {results_store.path}")
    output.write_json(json_out, payload)


@app.command()
def demo(
    out: Annotated[str, typer.Option("--out", help="Folder for the report.")] = "fastslow-report",
    sizes: Annotated[str, typer.Option("--sizes", help="Grid sides for the reduced study.")] = "1..512",
    search_seeds: Annotated[int, typer.Option("--search-seeds", help="Seeds per candidate in the search.")] = 32,
    threads: Annotated[int, typer.Option("--threads", help="Threads for the timings.")] = 1,
    matmul_size: Annotated[int | None, typer.Option("--matmul-size", help="Matrix side for the peaks.")] = None,
    json_out: JsonOut = None,
) -> None:
    """The main job: train the life predictors, run a reduced study, find the smallest exact
    predictor, train XOR, measure device peaks, and write an HTML report."""
    import torch

    from fastslow.cost.counter import params_of
    from fastslow.env import environment
    from fastslow.measure.devices import list_devices, measure_peaks
    from fastslow.measure.sweep import parse_values
    from fastslow.measure.timer import TimerConfig
    from fastslow.report import output
    from fastslow.report.html import Section, write_report
    from fastslow.report.plots import plot_decision_boundary, plot_training_curves
    from fastslow.store.db import Record
    from fastslow.tasks.life.search import find_min_predictor, save_min
    from fastslow.tasks.life.study import LifeModels, run_study
    from fastslow.tasks.life.train import LifeTrainConfig
    from fastslow.tasks.xor import XorConfig, train_xor
    from fastslow.zoo.life import fc_net, to_shift_convs

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    size_list = tuple(parse_values(sizes, what="--sizes"))
    results_store = store()
    env = environment(threads=threads)
    sections = []

    _say("[bold]1/5[/bold] training the life networks on all 512 neighbourhoods")
    trained = _train_life_models(LifeTrainConfig(), out_dir / "life")
    plot_training_curves(out_dir / "life_curves.png", {k: r.history for k, (_, r) in trained.items()},
                         "life networks")
    sections.append(Section("Game of Life: training").table(
        [{"network": k, "params": params_of(m), "epochs": r.epochs, "accuracy": r.accuracy}
         for k, (m, r) in trained.items()]).image(out_dir / "life_curves.png", "training curves"))

    _say("[bold]2/5[/bold] searching for the smallest exact predictor")
    with _progress(10, "searching widths") as advance:
        found = find_min_predictor(seeds=search_seeds,
                                   on_candidate=lambda c: advance(f"tried embed={c.embed} hidden={c.hidden}"))
    if found.model is None:
        raise UserError("the width search found no exact network; rerun with more --search-seeds")
    save_min(out_dir / "life" / "life_min.pt", found)
    sections.append(Section("Smallest exact predictor (width search)").text(
        f"Found: {params_of(found.model)} parameters ({found.model}); checked on all 512 neighbourhoods and on "
        "random grids against the exact rule. Tiny convolutions run as shifted adds (to_shift_convs).").table(
        [c.to_dict() for c in found.tried]))

    _say(f"[bold]3/5[/bold] timing every predictor over grid sides {list(size_list)}")
    torch.manual_seed(1)  # the untrained fc network's weights
    models = LifeModels(trained["percell"][0], trained["fc"][0], to_shift_convs(found.model))
    timer = TimerConfig(min_time_s=0.05, max_time_s=0.5, rel_precision=0.03)
    names = ("rule_cell", "rule_numpy", "rule_torch", "percell_loop", "percell_batched", "fc", "min")
    with _progress(len(size_list) * len(names), "life study") as advance:
        study = run_study(models, sizes=size_list, predictors=names, threads=threads, timer=timer,
                          untrained_fc=fc_net().eval(), loop_max_cells=32 * 32,
                          on_row=lambda r: advance(f"life study: {r.predictor} at {r.size}"))
    payload = study.to_dict()
    _print_study(payload)
    _plot_study(out_dir / "life_study.png", payload)
    s = Section("Game of Life: time per generation against grid side")
    s.table([{k: r[k] for k in ("predictor", "size", "median_s", "per_cell_s", "accuracy", "error")}
             for r in payload["rows"]]).image(out_dir / "life_study.png", "study plot")
    s.table([{"predictor": k, "exponent": f["exponent"], "ci95": f"[{f['ci95'][0]:.3f}, {f['ci95'][1]:.3f}]",
              "r2": f["r2"], "knee": f["knee"]} for k, f in payload["fits"].items()])
    s.table(payload["checks"])
    sections.append(s)
    results_store.add(Record("life study", None, {"sizes": size_list, "threads": threads, "demo": True},
                             env, payload, "ok", f"{len(study.rows)} rows"))

    _say("[bold]4/5[/bold] training the continuous-XOR classifier")
    with _progress(XorConfig().epochs, "training xor") as advance:
        xr = train_xor(XorConfig(), on_epoch=lambda e, loss: advance(f"training xor: epoch {e}, loss {loss:.3f}"))
    x, y = xr.test.tensors  # type: ignore[union-attr]
    plot_decision_boundary(out_dir / "xor.png", xr.model, x.numpy(), y.numpy(),
                           f"test accuracy {100 * xr.test_accuracy:.1f}%")
    sections.append(Section("Continuous XOR (2-4-1 tanh)").table([xr.to_dict()]).image(out_dir / "xor.png", "xor"))
    output.console.print(f"xor: test accuracy {100 * xr.test_accuracy:.1f}%")

    _say("[bold]5/5[/bold] measuring device peaks (matmul FLOP/s, copy bandwidth)")
    devices = list_devices()
    peaks = [p for d in devices for p in measure_peaks(d["device"], matmul_size=matmul_size)]
    results_store.add_peaks(peaks, host=env["host"])
    sections.append(Section("Devices and measured peaks").table(
        [{"device": d["device"], "name": d["name"]} for d in devices]).table([p.to_dict() for p in peaks]))
    for p in peaks:
        unit = "FLOP/s" if p.kind == "matmul" else "B/s"
        output.console.print(f"peak {p.device} {p.kind} {p.dtype}: {p.value:.3g} {unit}")

    report = write_report(out_dir / "index.html", "fastslow demo report", sections, env)
    output.console.print(f"report: {report.resolve()}")
    output.write_json(json_out, {
        "life_train": {k: r.to_dict() for k, (_, r) in trained.items()}, "search": found.to_dict(),
        "study": payload, "xor": xr.to_dict(), "peaks": [p.to_dict() for p in peaks],
        "report": str(report.resolve())})
