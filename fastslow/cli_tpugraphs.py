"""CLI for TpuGraphs: inspect, synth, train (also under torchrun), eval, predict, ensemble."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fastslow.cli import Device, JsonOut, _progress, app, store
from fastslow.errors import UserError

tpu_app = typer.Typer(no_args_is_help=True, help="Learned runtime predictors on Google's TpuGraphs data.")
app.add_typer(tpu_app, name="tpugraphs")

CACHE_DIR = Path(".fastslow") / "tpugraphs-cache"


def _is_rank0() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0


@tpu_app.command()
def inspect(
    data: Annotated[str, typer.Argument(help="The npz tree, or any folder or file inside it.")],
    json_out: JsonOut = None,
) -> None:
    """Every file found, with its collection and split, validated (keys, shapes, dtypes, values)."""
    from concurrent.futures import ThreadPoolExecutor

    from fastslow.report import output
    from fastslow.tpugraphs.data import find_files, load_arrays

    infos = find_files(data)
    rows: list[dict[str, Any]] = []

    def one(info: Any) -> dict[str, Any]:
        a = load_arrays(info)
        return {"path": str(info.path), "collection": info.collection, "split": info.split,
                "nodes": int(a["node_feat"].shape[0]), "edges": int(a["edge_index"].shape[0]),
                "configs": int(a["config_runtime"].shape[0]), "labelled": bool((a["config_runtime"] > 0).any())}

    with _progress(len(infos), "reading files") as advance, ThreadPoolExecutor(4) as pool:
        for row in pool.map(one, infos):
            rows.append(row)
            advance()
    t = Table(title=f"{len(rows)} TpuGraphs files under {data}", title_justify="left")
    for col in ("file", "collection", "split", "nodes", "edges", "configs", "labelled"):
        t.add_column(col, justify="left" if col in ("file", "collection", "split") else "right")
    for r in rows:
        t.add_row(Path(r["path"]).name, r["collection"], r["split"], f"{r['nodes']:,}", f"{r['edges']:,}",
                  f"{r['configs']:,}", "yes" if r["labelled"] else "no")
    output.console.print(t)
    output.write_json(json_out, {"files": rows})


@tpu_app.command()
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


def _load_collection(data: str, collection: str, splits: tuple[str, ...], cache: bool) -> dict[str, list]:
    from fastslow.tpugraphs.data import find_files, load_graphs

    infos = [i for i in find_files(data) if i.collection == collection and i.split in splits]
    if not infos:
        raise UserError(f"--data {data}: no {collection} files in splits {', '.join(splits)}")
    with _progress(len(infos), f"loading {collection}") as advance:
        graphs = load_graphs(infos, cache_dir=CACHE_DIR if cache else None, on_file=lambda i: advance())
    return {s: [g for g in graphs if g.split == s] for s in splits}


@tpu_app.command("train")
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
    json_out: JsonOut = None,
) -> None:
    """Train a configuration ranker (tile; or layout, with an early-join model). Under
    `torchrun --nproc-per-node N -m fastslow tpugraphs train ...` it trains data-parallel."""
    from fastslow.env import environment
    from fastslow.measure.devices import require_device
    from fastslow.report import output
    from fastslow.store.db import Record
    from fastslow.tpugraphs.batching import prepare
    from fastslow.tpugraphs.features import TileNormalizer
    from fastslow.tpugraphs.train import TrainConfig, save_run, train

    cfg = TrainConfig(collection, model, loss, epochs, lr, batch_graphs, configs_per_graph, hidden, layers,
                      True, 1.0, seed, str(Path(data).resolve()), layout_hops)
    require_device(device)  # before the data, which can take minutes to load
    split = _load_collection(data, collection, ("train", "valid"), cache)
    if not split["train"]:
        raise UserError(f"--data {data}: no {collection} training files")
    norm = TileNormalizer.fit(split["train"])  # training split only
    valid = [g for g in split["valid"] if g.labelled]
    rank0 = _is_rank0()

    def show(row: dict[str, Any]) -> None:
        extra = f", valid top-5 score {row['valid_score_top5']:.4f}" if "valid_score_top5" in row else ""
        output.console.print(f"epoch {row['epoch']}/{epochs}: loss {row['loss']:.4f}{extra}")

    train_p, valid_p = prepare(split["train"], norm, layout_hops), prepare(valid, norm, layout_hops)
    if layout_hops and rank0:
        before = sum(g.node_feat.shape[0] for g in split["train"])
        after = sum(g.x.shape[0] for g in train_p)
        output.console.print(f"layout graphs cropped to nodes within {layout_hops} hops of a configurable node: "
                             f"{before:,} -> {after:,} training nodes")
    result = train(cfg, train_p, valid_p, on_epoch=show, device=device)
    if not rank0:
        return
    path = save_run(Path(out), cfg, norm, result)
    payload = {"config": cfg.__dict__, "history": result.history, "configs_per_s": result.configs_per_s,
               "train_s": result.seconds, "device": device, "out": str(path)}
    (Path(out) / "metrics.json").write_text(json.dumps(payload, indent=2) + "\n")
    output.console.print(f"trained {model} with {loss} for {len(result.history)} epochs: {result.configs_per_s:,.0f} "
                         f"configurations scored per second of training; checkpoint {path}")
    results_store = store()
    results_store.add(Record("tpugraphs train", collection, cfg.__dict__, environment(device), payload, "ok",
                             f"{model}/{loss}"))
    output.write_json(json_out, payload)


@tpu_app.command("eval")
def eval_cmd(
    run: Annotated[str, typer.Argument(help="Run folder (or model.pt) from train or ensemble.")],
    split: Annotated[str, typer.Option("--split")] = "valid",
    data: Annotated[str | None, typer.Option("--data", help="Default: where the run was trained.")] = None,
    json_out: JsonOut = None,
) -> None:
    """Top-1/5/10 slowdown, the competition's top-5 score, Kendall tau, per file."""
    from fastslow.report import output
    from fastslow.tpugraphs.metrics import RankingReport
    from fastslow.tpugraphs.train import load_ranker, load_run, members, scores_for

    ckpt = load_run(run)
    cfg = members(ckpt)[0]["config"]
    graphs = _load_collection(data or cfg["data"], cfg["collection"], (split,), cache=True)[split]
    graphs = [g for g in graphs if g.labelled]
    if not graphs:
        raise UserError(f"split {split}: no labelled {cfg['collection']} files to evaluate on")
    report = RankingReport()
    ranker = load_ranker(ckpt)
    for g in graphs:
        report.add(g.name, scores_for(ranker, g), g.runtime.numpy())
    s = report.summary()
    output.console.print(f"{run} on {cfg['collection']} {split} ({len(graphs)} files): top-5 score "
                         f"{s['score_top5']:.4f}; slowdown top-1 {s['slowdown']['1']:.4f}, top-5 "
                         f"{s['slowdown']['5']:.4f}, top-10 {s['slowdown']['10']:.4f}; Kendall tau "
                         f"{s['kendall_tau']:.3f}")
    t = Table(title="per file (worst top-5 slowdown first)", title_justify="left")
    for col in ("file", "configs", "slowdown@1", "slowdown@5", "slowdown@10", "Kendall tau"):
        t.add_column(col, justify="left" if col == "file" else "right")
    for f in sorted(s["files"], key=lambda f: -f["slowdown"]["5"])[:15]:
        t.add_row(f["file"], str(f["configs"]), f"{f['slowdown']['1']:.4f}", f"{f['slowdown']['5']:.4f}",
                  f"{f['slowdown']['10']:.4f}", f"{f['kendall_tau']:.3f}")
    output.console.print(t)
    output.write_json(json_out, s)


@tpu_app.command()
def predict(
    runs: Annotated[list[str], typer.Argument(help="One or more runs; several for one collection are averaged.")],
    data: Annotated[str, typer.Option("--data", help="The npz tree whose test files to predict.")],
    submission: Annotated[str, typer.Option("--submission", help="CSV to write (ID,TopConfigs).")],
) -> None:
    """A complete submission: every test file under --data. Collections no run covers keep the
    identity ranking, with a warning."""
    from fastslow.report import output
    from fastslow.tpugraphs.data import build_graph, find_files, load_arrays
    from fastslow.tpugraphs.train import load_ranker, load_run, members

    by_collection: dict[str, list[Any]] = {}  # collection -> the rankers of the runs covering it
    for r in runs:
        ckpt = load_run(r)
        by_collection.setdefault(members(ckpt)[0]["config"]["collection"], []).append(load_ranker(ckpt))
    tests = [i for i in find_files(data) if i.split == "test"]
    if not tests:
        raise UserError(f"--data {data}: no test files found")
    uncovered: dict[str, int] = {}
    rows = []
    with _progress(len(tests), "predicting") as advance:
        for info in tests:
            arrays = load_arrays(info)
            n_configs = int(arrays["config_runtime"].shape[0])
            rankers = by_collection.get(info.collection)
            if not rankers:
                uncovered[info.collection] = uncovered.get(info.collection, 0) + 1
                ranking = list(range(n_configs))
            else:
                ranking = _rank(rankers, build_graph(info, arrays), n_configs)
            if info.kind == "tile":
                ranking = ranking[:5]
            rows.append((info.submission_id, ";".join(str(i) for i in ranking)))
            advance()
    for coll, count in uncovered.items():
        output.err_console.print(f"[yellow]warning[/yellow]: no run covers {coll}: its {count} test files keep "
                                 "the identity ranking")
    path = Path(submission)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["ID", "TopConfigs"])
            w.writerows(rows)
    except OSError as e:
        raise UserError(f"--submission {submission}: cannot write ({e.strerror or e})") from None
    output.console.print(f"wrote {len(rows)} rows to {submission}")


def _rank(rankers: list[Any], graph: Any, n_configs: int) -> list[int]:
    """The file's configuration indices, best first (merged tile duplicates follow at the end)."""
    import numpy as np

    from fastslow.tpugraphs.train import scores_for, standardized_sum

    total = standardized_sum([scores_for(r, graph) for r in rankers])
    chosen = [int(graph.config_index[i]) for i in np.argsort(total, kind="stable")]
    placed = set(chosen)
    return chosen + [i for i in range(n_configs) if i not in placed]


@tpu_app.command()
def ensemble(
    runs: Annotated[list[str], typer.Argument(help="Two or more runs of the same collection.")],
    out: Annotated[str, typer.Option("--out", help="Run folder for the ensemble.")],
) -> None:
    """Average several runs (scores standardised per graph, then summed) into one run."""
    import torch

    from fastslow.report import output
    from fastslow.tpugraphs.train import load_run, members

    if len(runs) < 2:
        raise UserError("ensemble needs two or more runs")
    parts = [m for r in runs for m in members(load_run(r))]
    collections = {m["config"]["collection"] for m in parts}
    if len(collections) > 1:
        raise UserError(f"ensemble members cover different collections: {', '.join(sorted(collections))}")
    Path(out).mkdir(parents=True, exist_ok=True)
    torch.save({"kind": "ensemble", "members": parts}, Path(out) / "model.pt")
    output.console.print(f"ensemble of {len(parts)} models ({', '.join(m['config']['model'] for m in parts)}) "
                         f"written to {Path(out) / 'model.pt'}")
