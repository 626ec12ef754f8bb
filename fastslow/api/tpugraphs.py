"""Learned runtime predictors on TpuGraphs as functions: `inspect`, `train`, `evaluate`,
`submission`, `ensemble`."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fastslow.api.measure import Store, store_whole
from fastslow.env import environment
from fastslow.errors import UserError
from fastslow.measure.devices import require_device
from fastslow.store.db import Record, default_db_path
from fastslow.store.recorder import Saved, open_store
from fastslow.tpugraphs.data import FileInfo, build_graph, find_files, load_arrays, load_graphs
from fastslow.tpugraphs.train import RankerConfig, RankerResult, load_ranker, load_run, members, rank_configs


def cache_dir(db: str | Path | None = None) -> Path:
    """Processed TpuGraphs data is cached beside the results database (its folder follows --db and
    FASTSLOW_DB), or where FASTSLOW_TPUGRAPHS_CACHE says."""
    if os.environ.get("FASTSLOW_TPUGRAPHS_CACHE"):
        return Path(os.environ["FASTSLOW_TPUGRAPHS_CACHE"])
    return (Path(db) if db else default_db_path()).parent / "tpugraphs-cache"


@dataclass
class InspectResult:
    files: list[dict[str, Any]]  # one per file; a bad one carries its "error"

    @property
    def bad(self) -> list[dict[str, Any]]:
        return [f for f in self.files if f.get("error")]

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "bad": len(self.bad)}


def inspect(data: str | Path, *, on_file: Callable[[], None] | None = None) -> InspectResult:
    """Every file found, validated (keys, shapes, dtypes, finite values); a bad file is reported
    with its error and the others are still read."""
    from concurrent.futures import ThreadPoolExecutor

    def one(info: FileInfo) -> dict[str, Any]:
        row: dict[str, Any] = {"path": str(info.path), "collection": info.collection, "split": info.split}
        try:
            a = load_arrays(info)
        except UserError as e:
            return {**row, "error": str(e)}
        return {**row, "nodes": int(a["node_feat"].shape[0]), "edges": int(a["edge_index"].shape[0]),
                "configs": int(a["config_runtime"].shape[0]), "labelled": bool((a["config_runtime"] > 0).any()),
                "error": None}

    rows = []
    with ThreadPoolExecutor(4) as pool:
        for row in pool.map(one, find_files(data)):
            rows.append(row)
            if on_file:
                on_file()
    return InspectResult(rows)


def load_collection(data: str | Path, collection: str, splits: tuple[str, ...], *, cache: Path | None,
                    on_file: Callable[[Any], None] | None = None) -> dict[str, list[Any]]:
    infos = [i for i in find_files(data) if i.collection == collection and i.split in splits]
    if not infos:
        raise UserError(f"data folder {data}: no {collection} files in splits {', '.join(splits)}")
    graphs = load_graphs(infos, cache_dir=cache, on_file=on_file)
    return {s: [g for g in graphs if g.split == s] for s in splits}


@dataclass
class TrainRun:
    config: RankerConfig
    result: RankerResult
    path: Path | None  # the checkpoint (rank 0 only)
    cropped_nodes: tuple[int, int] | None = None  # (before, after) with layout_hops
    saved: Saved | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.__dict__, "history": self.result.history,
                "configs_per_s": self.result.configs_per_s, "train_s": self.result.seconds,
                "out": str(self.path) if self.path else None}


def train(cfg: RankerConfig, data: str | Path, out: str | Path, *, device: str = "cpu", cache: bool = True,
          db: str | Path | None = None, store: Store = True, on_file: Callable[[Any], None] | None = None,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> TrainRun:
    """Train a configuration ranker on the training split, validating each epoch on the valid
    split; rank 0 writes model.pt and metrics.json to `out`. Runs data-parallel under torchrun."""
    from fastslow.tpugraphs.batching import prepare
    from fastslow.tpugraphs.features import TileNormalizer
    from fastslow.tpugraphs.train import save_run
    from fastslow.tpugraphs.train import train as fit

    require_device(device)  # before the data, which can take minutes to load
    rank0 = int(os.environ.get("RANK", "0")) == 0
    database = open_store(store) if rank0 else None
    split = load_collection(data, cfg.collection, ("train", "valid"), cache=cache_dir(db) if cache else None,
                            on_file=on_file)
    if not split["train"]:
        raise UserError(f"data folder {data}: no {cfg.collection} training files")
    norm = TileNormalizer.fit(split["train"])  # training split only
    valid = [g for g in split["valid"] if g.labelled]
    train_p, valid_p = prepare(split["train"], norm, cfg.layout_hops), prepare(valid, norm, cfg.layout_hops)
    cropped = None
    if cfg.layout_hops:
        cropped = (sum(g.node_feat.shape[0] for g in split["train"]), sum(g.x.shape[0] for g in train_p))
    result = fit(cfg, train_p, valid_p, on_epoch=on_epoch, device=device)
    run = TrainRun(cfg, result, None, cropped)
    if not rank0:
        return run
    run.path = save_run(Path(out), cfg, norm, result)
    payload = {**run.to_dict(), "device": device}
    # Strict JSON: a NaN that got this far is a bug, and it must not make metrics.json unreadable.
    (Path(out) / "metrics.json").write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
    run.saved = store_whole(database, Record("tpugraphs train", cfg.collection, cfg.__dict__, environment(device),
                                             payload, "ok", f"{cfg.model}/{cfg.loss}"))
    return run


def evaluate(run: str | Path, *, split: str = "valid", data: str | Path | None = None, db: str | Path | None = None,
             on_file: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """A run's ranking metrics on a labelled split: top-K slowdowns, the top-5 score and Kendall's
    tau, per file and in summary."""
    from fastslow.tpugraphs.metrics import RankingReport
    from fastslow.tpugraphs.train import scores_for

    ckpt = load_run(run)
    cfg = members(ckpt)[0]["config"]
    graphs = load_collection(data or cfg["data"], cfg["collection"], (split,), cache=cache_dir(db),
                             on_file=on_file)[split]
    graphs = [g for g in graphs if g.labelled]
    if not graphs:
        raise UserError(f"split {split}: no labelled {cfg['collection']} files to evaluate on")
    report = RankingReport()
    ranker = load_ranker(ckpt)
    for g in graphs:
        report.add(g.name, scores_for(ranker, g), g.runtime.numpy())
    return {**report.summary(), "collection": cfg["collection"], "split": split, "files_evaluated": len(graphs)}


@dataclass
class Submission:
    rows: list[tuple[str, str]]
    uncovered: dict[str, int]  # collection -> test files that kept the identity ranking
    path: Path


def submission(runs: list[str | Path], data: str | Path, path: str | Path, *,
               on_file: Callable[[], None] | None = None) -> Submission:
    """A complete Kaggle submission (ID,TopConfigs) for every test file under `data`; collections
    no run covers keep the identity ranking. Several runs of one collection are averaged."""
    by_collection: dict[str, list[Any]] = {}
    for r in runs:
        ckpt = load_run(r)
        by_collection.setdefault(members(ckpt)[0]["config"]["collection"], []).append(load_ranker(ckpt))
    tests = [i for i in find_files(data) if i.split == "test"]
    if not tests:
        raise UserError(f"data folder {data}: no test files found")
    uncovered: dict[str, int] = {}
    rows = []
    for info in tests:
        arrays = load_arrays(info)
        n_configs = int(arrays["config_runtime"].shape[0])
        rankers = by_collection.get(info.collection)
        if not rankers:
            uncovered[info.collection] = uncovered.get(info.collection, 0) + 1
            ranking = list(range(n_configs))
        else:
            ranking = rank_configs(rankers, build_graph(info, arrays), n_configs)
        if info.kind == "tile":
            ranking = ranking[:5]
        rows.append((info.submission_id, ";".join(str(i) for i in ranking)))
        if on_file:
            on_file()
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["ID", "TopConfigs"])
            w.writerows(rows)
    except OSError as e:
        raise UserError(f"submission file {path}: cannot write ({e.strerror or e})") from None
    return Submission(rows, uncovered, out)


def ensemble(runs: list[str | Path], out: str | Path) -> list[dict[str, Any]]:
    """Several runs of one collection as one run (scores standardised per graph, then summed)."""
    if len(runs) < 2:
        raise UserError("an ensemble needs two or more runs")
    parts = [m for r in runs for m in members(load_run(r))]
    collections = {m["config"]["collection"] for m in parts}
    if len(collections) > 1:
        raise UserError(f"ensemble members cover different collections: {', '.join(sorted(collections))}")
    Path(out).mkdir(parents=True, exist_ok=True)
    torch.save({"kind": "ensemble", "members": parts}, Path(out) / "model.pt")
    return parts


__all__ = ["cache_dir", "ensemble", "evaluate", "inspect", "submission", "train"]
