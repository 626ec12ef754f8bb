"""`tpugraphs ...`: inspect, synth, train (also under torchrun), eval, predict, ensemble. Parse,
call fastslow.api.tpugraphs, render."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from fastslow.cli.app import Db, Device, JsonOut, app, progress, report_saved, say, state
from fastslow.errors import UserError

tpu_app = typer.Typer(no_args_is_help=True, help="Learned runtime predictors on Google's TpuGraphs data.")
app.add_typer(tpu_app, name="tpugraphs")


@tpu_app.command(short_help="Validate every file and list it.")
def inspect(
    data: Annotated[str, typer.Argument(help="The npz tree, or any folder or file inside it.")],
    json_out: JsonOut = None,
) -> None:
    """Every file found, with its collection and split, validated (keys, shapes, dtypes, finite
    values); bad files are listed with their error, and the exit status is 2 if there are any."""
    from fastslow.api.tpugraphs import inspect as run
    from fastslow.report import output, tables

    output.check_output_path(json_out)
    with progress(1, "reading files") as advance:
        result = run(data, on_file=advance)
    title = f"{len(result.files)} TpuGraphs files under {data}"
    output.console.print(tables.tpugraphs_files_table(result.files, title))
    for r in result.bad:
        output.err_console.print(f"[red]bad file[/red]: {r['error']}")
    output.write_json(json_out, result.to_dict())
    if result.bad:
        raise UserError(f"{len(result.bad)} of {len(result.files)} files under {data} are bad (listed above)")


@tpu_app.command(short_help="Write a synthetic tile data set.")
def synth(
    out: Annotated[str, typer.Option("--out", help="Folder to write the synthetic npz tree into.")],
    train: Annotated[int, typer.Option("--train", help="Training kernels.")] = 200,
    valid: Annotated[int, typer.Option("--valid", help="Validation kernels.")] = 40,
    test: Annotated[int, typer.Option("--test", help="Test kernels (runtimes withheld).")] = 20,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Write a SYNTHETIC tile-format data set (analytic cost model + noise) for tests and benchmarks."""
    from fastslow.report import output
    from fastslow.tpugraphs.synth import write_synthetic

    if min(train, valid, test) < 0 or train < 1:
        raise UserError(f"--train must be >= 1 and --valid, --test >= 0 (got {train}, {valid}, {test})")
    files = write_synthetic(out, train=train, valid=valid, test=test, seed=seed)
    output.console.print(f"wrote {len(files)} SYNTHETIC tile files under {out}/npz/tile/xla "
                         f"(train {train}, valid {valid}, test {test}); cost model in {out}/SYNTHETIC.md")


@tpu_app.command("train", short_help="Train a configuration ranker.")
def train_cmd(
    data: Annotated[str, typer.Option("--data", help="The npz tree (or a folder inside it).")],
    out: Annotated[str, typer.Option("--out", help="Run folder to write model.pt and metrics.json into.")],
    collection: Annotated[str, typer.Option("--collection")] = "tile:xla",
    model: Annotated[str, typer.Option("--model", help="late-sage (the notebook's), early-sage, early-gcn, early-gat.")
                     ] = "early-sage",
    loss: Annotated[str, typer.Option("--loss", help="mse (the notebook's), listmle, hinge.")] = "listmle",
    epochs: Annotated[int, typer.Option("--epochs")] = 20,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate of the one-cycle schedule.")] = 3e-3,
    batch_graphs: Annotated[int, typer.Option("--batch-graphs", help="Graphs per step.")] = 16,
    configs_per_graph: Annotated[int, typer.Option("--configs-per-graph", help="Configurations sampled per graph.")
                                 ] = 16,
    hidden: Annotated[int, typer.Option("--hidden")] = 64,
    layers: Annotated[int, typer.Option("--layers")] = 3,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    layout_hops: Annotated[int, typer.Option(
        "--layout-hops", help="Layout: keep only nodes within this many hops of a configurable node (0: all).")] = 0,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Reuse processed data across runs.")] = True,
    device: Device = "cpu",
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """Train a configuration ranker (tile; or layout, with an early-join model). Under
    `torchrun --nproc-per-node N -m fastslow tpugraphs train ...` it trains data-parallel."""
    from fastslow.api.tpugraphs import train as run
    from fastslow.report import output
    from fastslow.tpugraphs.train import RankerConfig

    cfg = RankerConfig(collection, model, loss, epochs, lr, batch_graphs, configs_per_graph, hidden, layers, True,
                       1.0, seed, str(Path(data).resolve()), layout_hops)
    output.check_output_path(json_out)
    rank0 = int(os.environ.get("RANK", "0")) == 0

    def show(row: dict[str, Any]) -> None:
        output.console.print(f"epoch {row['epoch']}/{epochs}: loss {row['loss']:.4f}" + _valid_line(row, cfg.layout))

    result = run(cfg, data, out, device=device, cache=cache, db=state["db"], store=state["db"] or True,
                 on_epoch=show)
    if not rank0:
        return
    if result.cropped_nodes:
        before, after = result.cropped_nodes
        say(f"layout graphs cropped to nodes within {layout_hops} hops of a configurable node: "
            f"{before:,} -> {after:,} training nodes")
    output.console.print(f"trained {model} with {loss} for {len(result.result.history)} epochs: "
                         f"{result.result.configs_per_s:,.0f} configurations scored per second of training; "
                         f"checkpoint {result.path}")
    payload = result.to_dict()
    output.write_json(json_out, payload)
    report_saved(result.saved, payload, json_out, "tpugraphs train")


def _valid_line(row: dict[str, Any], layout: bool) -> str:
    """Layout leads with Kendall's tau and ordered-pair accuracy (the competition's layout
    metric); a top-5 score is shown only where a random ranking would score measurably worse."""
    if "valid_score_top5" not in row:
        return ""
    parts = []
    if layout and row.get("valid_kendall_tau") is not None:
        parts.append(f"valid Kendall tau {row['valid_kendall_tau']:.3f}, ordered-pair accuracy "
                     f"{row['valid_pair_accuracy']:.3f}")
    if "5" in row.get("valid_informative_k", ["5"]):
        parts.append(f"valid top-5 score {row['valid_score_top5']:.4f}")
    return ", " + ", ".join(parts) if parts else ""


@tpu_app.command("eval", short_help="Ranking metrics of a run on a split.")
def eval_cmd(
    run: Annotated[str, typer.Argument(help="Run folder (or model.pt) from train or ensemble.")],
    split: Annotated[str, typer.Option("--split")] = "valid",
    data: Annotated[str | None, typer.Option("--data", help="Default: where the run was trained.")] = None,
    db: Db = None,
    json_out: JsonOut = None,
) -> None:
    """Top-1/5/10 slowdown, the competition's top-5 score, Kendall tau, per file."""
    from fastslow.api.tpugraphs import evaluate
    from fastslow.report import output, tables

    output.check_output_path(json_out)
    s = evaluate(run, split=split, data=data, db=state["db"])
    head = f"{run} on {s['collection']} {split} ({s['files_evaluated']} files): "
    order = f"Kendall tau {s['kendall_tau']:.3f}, ordered-pair accuracy {s['pair_accuracy']:.3f}"
    informative = s["informative_k"]
    topk = "; ".join([f"top-5 score {s['score_top5']:.4f}"] * ("5" in informative)
                     + [f"slowdown top-{k} {s['slowdown'][k]:.4f} (random {s['random_slowdown'][k]:.4f})"
                        for k in informative])
    if s["collection"].startswith("layout:"):
        output.console.print(head + order + (f"; {topk}" if topk else ""))
    else:
        output.console.print(head + (topk or "top-K figures uninformative here") + f"; {order}")
    if len(informative) < 3:
        shown = ", ".join(f"top-{k}" for k in ("1", "5", "10") if k not in informative)
        output.console.print(f"{shown} not shown: a random ranking does as well there (within 1% of the best "
                             "runtime on average)")
    output.console.print(tables.ranking_files_table(s["files"], s["informative_k"]))
    output.write_json(json_out, s)


@tpu_app.command(short_help="Write a Kaggle submission.")
def predict(
    runs: Annotated[list[str], typer.Argument(help="One or more runs; several for one collection are averaged.")],
    data: Annotated[str, typer.Option("--data", help="The npz tree whose test files to predict.")],
    submission: Annotated[str, typer.Option("--submission", help="CSV to write (ID,TopConfigs).")],
) -> None:
    """A complete submission: every test file under --data. Collections no run covers keep the
    identity ranking, with a warning."""
    from fastslow.api.tpugraphs import submission as run
    from fastslow.report import output

    with progress(1, "predicting") as advance:
        result = run(runs, data, submission, on_file=advance)
    for coll, count in result.uncovered.items():
        output.err_console.print(f"[yellow]warning[/yellow]: no run covers {coll}: its {count} test files keep "
                                 "the identity ranking")
    output.console.print(f"wrote {len(result.rows)} rows to {submission}")


@tpu_app.command(short_help="Average several runs into one.")
def ensemble(
    runs: Annotated[list[str], typer.Argument(help="Two or more runs of the same collection.")],
    out: Annotated[str, typer.Option("--out", help="Run folder for the ensemble.")],
) -> None:
    """Average several runs (scores standardised per graph, then summed) into one run."""
    from fastslow.api.tpugraphs import ensemble as run
    from fastslow.report import output

    parts = run(runs, out)
    output.console.print(f"ensemble of {len(parts)} models ({', '.join(m['config']['model'] for m in parts)}) "
                         f"written to {Path(out) / 'model.pt'}")
