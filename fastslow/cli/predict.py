"""`predictor collect|train|eval` and `predict`: parse, call fastslow.api.predict, render."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from fastslow.cli.app import (
    Args,
    Db,
    Device,
    Inputs,
    JsonOut,
    MinSamples,
    Weights,
    app,
    progress,
    report_saved,
    say,
    state,
    warn_if_busy,
)
from fastslow.errors import Terminated, UserError

predictor_app = typer.Typer(no_args_is_help=True, short_help="Learn latency predictors for this machine.", help=(
    "Latency predictors for this machine: collect measurements, train on them, evaluate on unseen models."))
app.add_typer(predictor_app, name="predictor")


def _ints(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{flag} value '{text}': give comma-separated integers such as 1,4,16") from None
    if not values:
        raise UserError(f"{flag} value '{text}': give at least one integer")
    return values


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [v.strip() for v in text.split(",") if v.strip()] or None


@predictor_app.command(short_help="Measure corpus models under their configurations.")
def collect(
    out: Annotated[str, typer.Option("--out", metavar="DIR", help="Collection folder (continued if it exists).")],
    minutes: Annotated[float | None, typer.Option(
        "--minutes", metavar="MIN", help="Start no new model after this long.", show_default=False)] = None,
    per_family: Annotated[int, typer.Option("--per-family", help="Models of each family.")] = 30,
    families: Annotated[str | None, typer.Option(
        "--families", metavar="NAMES", help="Comma-separated families (default: every one that can be built here).",
        show_default=False)] = None,
    batches: Annotated[str, typer.Option("--batches", metavar="LIST", help="Batch sizes.")] = "1,4,16",
    threads: Annotated[str, typer.Option("--threads", metavar="LIST", help="Thread counts.")] = "1,2",
    runtimes: Annotated[str, typer.Option(
        "--runtimes", metavar="LIST", help="eager, onnx, int8-dynamic.")] = "eager,onnx,int8-dynamic",
    budget: Annotated[float, typer.Option(
        "--budget", metavar="S", help="Timing budget of one measurement, all of it used.")] = 0.05,
    min_samples: MinSamples = None,
    repeat_every: Annotated[int, typer.Option(
        "--repeat-every", metavar="N", help="Every N models, time an earlier one again (the noise floor); 0: never.")
    ] = 10,
    retakes: Annotated[int, typer.Option(
        "--retakes", metavar="N", help="Time a group again a few models later, up to N times, when the speed "
                                       "reference beside it ran more than 10% off its usual time (a neighbour "
                                       "disturbed the machine); 0: never.")
    ] = 1,
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """Build seeded models of every family (convolutional, MLP, transformer, recurrent, the zoo,
    and timm and torchvision where they import), capture each as an operator graph, and time it
    under each configuration (batch, threads, layout, runtime). Everything measured is stored as it
    finishes; run it again to continue, Ctrl-C keeps what is done."""
    from fastslow.api.predict import collect as run
    from fastslow.predict.collect import CollectSettings
    from fastslow.predict.reference import describe_kind
    from fastslow.report import output

    settings = CollectSettings(tuple(_ints(batches, "--batches") or ()), tuple(_ints(threads, "--threads") or ()),
                               tuple(_names(runtimes) or ()), budget, min_samples or 5)
    output.check_output_path(json_out)
    bar: dict[str, Any] = {}

    def start(total: int) -> None:
        say(f"collecting {total} models into {out}" + (f" for at most {minutes:g} min" if minutes else ""))
        bar["cm"] = progress(total, "collecting", budget_s=minutes * 60 if minutes else None)
        bar["advance"] = bar["cm"].__enter__()

    def sample_done(s: Any, i: int, n: int) -> None:
        what = f"[red]failed[/red] ({s.error})" if s.error else f"{s.configs} configurations"
        if s.retake and not s.error:
            what = f"{s.configs} measurements, {s.kept} steady now"
        elif s.disturbed and not s.repeat and retakes:
            what += f" (disturbed while timing {', '.join(map(describe_kind, s.disturbed))}: timed again later)"
        again = " (again)" if s.repeat else " (disturbed groups, again)" if s.retake else ""
        say(f"{i}/{n} {s.name}{again}: {what}, {s.seconds:.1f} s")
        if not (s.repeat or s.retake):
            bar["advance"](f"collecting: {s.name}")

    try:
        result = run(out, settings, families=_names(families), per_family=per_family, minutes=minutes,
                     repeat_every=repeat_every, retakes=retakes, store=state["db"] or True, on_start=start,
                     on_sample=sample_done)
    finally:
        if "cm" in bar:
            bar["cm"].__exit__(None, None, None)
    output.console.print(f"{out}: {result.summary()}; {result.total_models} models in the collection, measured on "
                         f"{result.machine['cpu']} ({result.machine['logical_cpus']} logical CPUs)")
    payload = result.to_dict()
    output.write_json(json_out, payload)
    warn_if_busy()
    report_saved(result.saved, payload, json_out, "predictor collect")
    if result.interrupted:
        raise Terminated() if result.stop_signal == "SIGTERM" else KeyboardInterrupt()


@predictor_app.command(short_help="Bring a collection up to this version's graph features.")
def recapture(
    data: Annotated[str, typer.Argument(metavar="DIR", help="Collection folder from `predictor collect`.")],
    json_out: JsonOut = None,
) -> None:
    """Capture every model of a collection again with this version's operator features, keeping
    its measurements: a collection made by an earlier version whose measurements are taken as
    this one takes them trains again in minutes instead of being collected again in half an
    hour. Run it again to finish an interrupted one."""
    from fastslow.api.predict import recapture as run
    from fastslow.report import output

    output.check_output_path(json_out)
    bar: dict[str, Any] = {}

    def captured(name: str, i: int, n: int) -> None:
        if "cm" not in bar:  # the count is known once the collection has been read
            bar["cm"] = progress(n, "capturing")
            bar["advance"] = bar["cm"].__enter__()
        bar["advance"](f"capturing: {name}")

    try:
        result = run(data, on_model=captured)
    finally:
        if "cm" in bar:
            bar["cm"].__exit__(None, None, None)
    if result.models:
        output.console.print(f"{data}: {result.models} models captured again in {result.seconds:.0f} s (format "
                             f"{result.before} -> {result.format}), their times taken again from the samples "
                             "it stored; nothing was measured again")
    else:
        output.console.print(f"{data}: already of format {result.format}, nothing to capture")
    output.write_json(json_out, result.to_dict())


@predictor_app.command(short_help="Train a latency predictor on a collection.")
def train(
    data: Annotated[str, typer.Argument(metavar="DIR", help="Collection folder from `predictor collect`.")],
    out: Annotated[str | None, typer.Option(
        "--out", metavar="DIR", help="Predictor folder (default: a new one under the results folder's predictors/).",
        show_default=False)] = None,
    model: Annotated[str, typer.Option("--model", help="early-sage, early-gcn, early-gat.")] = "early-sage",
    epochs: Annotated[int, typer.Option("--epochs")] = 120,
    minutes: Annotated[float | None, typer.Option(
        "--minutes", metavar="MIN", help="Stop training after this long.", show_default=False)] = None,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate of the one-cycle schedule.")] = 3e-3,
    hidden: Annotated[int, typer.Option("--hidden", help="Width of the network (PredictorConfig.hidden).")] = 128,
    layers: Annotated[int, typer.Option("--layers")] = 3,
    readout: Annotated[str, typer.Option(
        "--readout", help="roofline (each operator's time from its FLOPs and bytes at learned rates) or sum (each "
                          "operator's time learned outright).")] = "roofline",
    batch_graphs: Annotated[int, typer.Option("--batch-graphs", help="Models per step.")] = 16,
    reference_tolerance: Annotated[float, typer.Option(
        "--reference-tolerance", metavar="LOG",
        help="Leave out training labels measured while the speed reference ran further than this from its usual "
             "time (|log| of the ratio: 0.1 is about 10%); 0 keeps them all.")] = 0.1,
    holdout: Annotated[float, typer.Option(
        "--holdout", help="Share of each family's models kept out of training and scored.")] = 0.2,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Device = "cpu",
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """Train a graph network (early join of the configuration, per-operator times summed) to
    predict log latency with a ranking term across configurations, and fit the two baselines
    (roofline regression; per-operator sum, as nn-Meter) beside it; score all three on the
    held-out models. Under `torchrun --nproc-per-node N -m fastslow predictor train ...` the
    network trains data-parallel."""
    from fastslow.api.predict import train as run
    from fastslow.predict.predictor import PredictorConfig
    from fastslow.report import output, tables

    cfg = PredictorConfig(model=model, hidden=hidden, layers=layers, epochs=epochs, lr=lr, batch_graphs=batch_graphs,
                          seed=seed, minutes=minutes, readout=readout, reference_tolerance=reference_tolerance)
    output.check_output_path(json_out)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    with progress(epochs, "training", budget_s=minutes * 60 if minutes else None) as advance:
        result = run(data, out, cfg, holdout=holdout, device=device, store=state["db"] or True, db=state["db"],
                     on_epoch=lambda row: advance(f"training: epoch {row['epoch']}, loss {row['loss']:.4f}"))
    if not rank0:
        return
    output.console.print(f"trained on {result.trained} models in {result.seconds:.0f} s "
                         f"({len(result.predictor.info['history'])} epochs); predictor {result.path}")
    labels = result.predictor.info["labels"]
    if labels["left_out"]:
        output.console.print(f"left out {labels['left_out']:,} of {labels['trained'] + labels['left_out']:,} labels, "
                             f"taken while the machine was disturbed (--reference-tolerance {labels['tolerance']:g})")
    if result.held_out:
        output.console.print(tables.predictor_scores_table(
            f"held-out models of seen families ({result.held})", result.held_out))
    payload = result.to_dict()
    output.write_json(json_out, payload)
    report_saved(result.saved, payload, json_out, "predictor train")


@predictor_app.command("eval", short_help="Score a predictor on unseen models and families.")
def eval_cmd(
    run: Annotated[str, typer.Argument(
        metavar="RUN", help="Predictor folder (or predictor.pt) from `predictor train`.")],
    data: Annotated[str | None, typer.Option(
        "--data", metavar="DIR", help="Collection (default: the one it was trained on).", show_default=False)] = None,
    families: Annotated[str | None, typer.Option(
        "--families", metavar="NAMES", help="Families to leave out one at a time (default: all).",
        show_default=False)] = None,
    leave_family_out: Annotated[bool, typer.Option(
        "--leave-family-out/--no-leave-family-out", help="Retrain once per family left out.")] = True,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", metavar="N",
        help="Families left out trained at once, each in its own process on one thread (CPU only).")] = 1,
    device: Device = "cpu",
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """The network and both baselines side by side: on the held-out models of seen families, on
    each family left out of training (retrained once per family), pooled over those, and the
    collection's noise floor (the same models measured twice)."""
    from fastslow.api.predict import evaluate
    from fastslow.predict.evaluate import in_parallel
    from fastslow.report import output, tables

    output.check_output_path(json_out)
    names = _names(families)
    with progress(None, "evaluating") as advance:
        # A fold is one family left out: as fold i begins, i are done (the count is known once the
        # data is read); folds trained in parallel (--jobs) are reported as they finish.
        def fold(f: str, i: int, n: int) -> None:
            if in_parallel(jobs, device):
                advance(f"left out {f} ({i + 1}/{n} done)", done=i + 1, total=n)
            else:
                advance(f"leaving out {f} ({i + 1}/{n})", done=i, total=n)

        result = evaluate(run, data=data, families=names, leave_family_out=leave_family_out, device=device,
                          jobs=jobs, store=state["db"] or True, on_fold=fold)
    if result.held_out:
        output.console.print(tables.predictor_scores_table("held-out models of seen families", result.held_out))
        for part, by_value in result.by_part.items():
            output.console.print(tables.part_scores_table(part, by_value, result.noise.get(f"by_{part}", {})))
    if result.families.get("families"):
        output.console.print(tables.family_scores_table(result.families["families"],
                                                        result.families["unseen_operators"]))
        output.console.print(tables.predictor_scores_table("held-out families, pooled", result.families["pooled"]))
    output.console.print(tables.noise_table(result.noise))
    output.console.print(tables.ranking_floor_table(result.noise["ranking"]))
    payload = result.to_dict()
    output.write_json(json_out, payload)
    report_saved(result.saved, payload, json_out, "predictor eval")


@app.command(short_help="Predicted latency per configuration, without running the model.")
def predict(
    spec: Annotated[str, typer.Argument(
        help="zoo:NAME, timm:NAME, torchvision:NAME, path/file.py:Attr or package.module:attr")],
    input: Inputs = None,
    arg: Args = None,
    weights: Weights = None,
    predictor: Annotated[str | None, typer.Option(
        "--predictor", metavar="RUN", help="Predictor folder (default: the newest trained for this machine).",
        show_default=False)] = None,
    batches: Annotated[str | None, typer.Option(
        "--batches", metavar="LIST", help="Batch sizes to rank (default: the input's first dimension).",
        show_default=False)] = None,
    threads: Annotated[str | None, typer.Option(
        "--threads", metavar="LIST", help="Thread counts (default: the predictor's).", show_default=False)] = None,
    runtimes: Annotated[str | None, typer.Option(
        "--runtimes", metavar="LIST", help="Runtimes (default: the predictor's).", show_default=False)] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Also measure each configuration.")] = False,
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """Predicted time of one call under each configuration that applies (batch, threads, layout,
    runtime) and the predicted best per item, from a predictor trained on this machine; the model
    is captured as a graph, not run. --verify measures them too and prints the error. A time is
    what the collection measured: the fastest of repeated blocks of calls, taken at the speed
    the collection ran at."""
    from fastslow.api.predict import predict as run
    from fastslow.measure.bench import ModelSource
    from fastslow.report import output, tables
    from fastslow.specs import parse_args

    source = ModelSource(spec, list(input or []), parse_args(arg or []), weights)
    output.check_output_path(json_out)
    with output.err_console.status("capturing the graph and predicting" + (", then measuring" if verify else "")):
        result = run(source, predictor=predictor, batches=_ints(batches, "--batches"),
                     threads=_ints(threads, "--threads"), runtimes=_names(runtimes), verify=verify,
                     store=state["db"] or True, db=state["db"])
    for w in result.warnings:
        say(f"[yellow]warning[/yellow]: {w}")
    payload = result.to_dict()
    shape = "x".join(map(str, result.input_shape))
    output.console.print(f"{spec}, input {shape}; predictor {result.predictor}")
    output.console.print(tables.predictions_table("predicted time of one call", payload["predictions"],
                                                  payload["measured"], payload["best"]))
    best, latency = result.best
    line = (f"predicted best: {best.describe()}, {latency * 1e3:.3g} ms per call "
            f"(graph captured in {result.capture_s:.2f} s, predicted in {1e3 * result.predict_s:.0f} ms)")
    output.console.print(line)
    if result.held_out:
        h = result.held_out
        output.console.print(f"how far to trust it: for {h['models']} held-out models of its families, "
                             f"{100 * h['within_10']:.0f}% of its predictions were within ±10%, "
                             f"{100 * h['within_20']:.0f}% within ±20% (`predictor eval` scores unseen families)")
    s = result.verification()
    if result.speed is not None:
        output.console.print(f"the machine ran at {1 / result.speed:.2f}x the speed the predictor was measured at "
                             "(its speed reference, timed beside the model); 'measured' is the time at that speed")
    if result.retaken:
        from fastslow.predict.reference import describe_kind

        output.console.print(f"timed again: {', '.join(map(describe_kind, result.retaken))} (a neighbour disturbed "
                             "the first timing, the second ran nearer the machine's speed now and is shown)")
    if s is not None:
        slowdown = s["top1_slowdown"]
        verdict = ("is the measured best" if slowdown < 5e-4 else
                   f"is {100 * slowdown:.1f}% slower per item than the measured best")
        output.console.print(f"measured: {100 * s['within_10']:.0f}% of predictions within ±10%, "
                             f"{100 * s['within_20']:.0f}% within ±20%; the predicted best {verdict}")
        warn_if_busy()
    output.write_json(json_out, payload)
    report_saved(result.saved, payload, json_out, "predict")
