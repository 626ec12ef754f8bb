"""Training tile rankers: many graphs × sampled configurations per step, Adam with a
one-cycle schedule and gradient clipping; data-parallel under `torchrun` unchanged.

Under torchrun (WORLD_SIZE > 1) each process joins the process group (gloo on CPU, NCCL on
GPU), wraps the model in DistributedDataParallel, and takes its own equal share of each
epoch's shuffled graphs; rank 0 evaluates and writes the checkpoint.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from fastslow.errors import UserError, check_number, one_line, param_error, raise_dropped_stop
from fastslow.measure.devices import require_device
from fastslow.tpugraphs.batching import GraphBank, Prepared, dense_groups, prepare
from fastslow.tpugraphs.data import COLLECTIONS, SCHEMAS, LayoutGraph, TileGraph
from fastslow.tpugraphs.features import TileNormalizer
from fastslow.tpugraphs.losses import LOSS_FNS, loss_fn
from fastslow.tpugraphs.metrics import RankingReport
from fastslow.tpugraphs.models import RANKERS, READOUTS, TileRanker


@dataclass
class RankerConfig:
    collection: str = "tile:xla"
    model: str = "early-sage"
    loss: str = "listmle"
    epochs: int = 20
    lr: float = 3e-3  # the one-cycle peak
    batch_graphs: int = 16  # graphs per step ...
    configs_per_graph: int = 16  # ... each with this many sampled configurations
    hidden: int = 64
    layers: int = 3
    bidirectional: bool = True
    clip: float = 1.0  # gradient norm limit
    seed: int = 0
    data: str = ""  # where the data came from (recorded for eval and predict)
    layout_hops: int = 0  # layout: crop each graph to nodes this near a configurable node (0: whole graph)
    readout: str = "pool"  # "pool" (mean and max, then an MLP), "sum" (per-node log costs, summed), "roofline"
    roofline: dict[str, list[float]] | None = None  # the roofline readout's columns (see models.ROOFLINE_KEYS)

    def __post_init__(self) -> None:
        # TpuGraphs' collections, and the graph kinds registered beside them (each its own collection)
        known = (*COLLECTIONS, *(k for k in SCHEMAS if k not in ("tile", "layout")))
        if self.collection not in known:
            raise param_error("collection", f"value '{self.collection}' is unknown (known: {', '.join(known)})")
        RANKERS.get(self.model)  # unknown names list the known ones
        if self.readout not in READOUTS:
            raise param_error("readout", f"value '{self.readout}' is unknown (known: {', '.join(READOUTS)})")
        LOSS_FNS.get(self.loss)
        for name in ("epochs", "batch_graphs", "configs_per_graph", "hidden", "layers"):
            if getattr(self, name) < 1:
                raise UserError(f"'{name}' must be >= 1 (got {getattr(self, name)})")
        if self.layout_hops < 0:
            raise param_error("layout_hops", f"must be >= 0 (got {self.layout_hops})")
        if self.layout_hops and not self.layout:
            raise param_error("layout_hops", f"crops layout graphs; {self.collection} is not a layout collection")
        check_number("lr", self.lr)
        check_number("clip", self.clip)


    @property
    def layout(self) -> bool:
        return self.collection.startswith("layout:")

    def build(self) -> TileRanker:
        """The untrained model this configuration describes, sized to its collection's features."""
        schema = SCHEMAS.get(self.collection.split(":")[0])
        return TileRanker(self.model, self.hidden, self.layers, bidirectional=self.bidirectional, layout=self.layout,
                          node_feats=schema.node_feats, config_feats=schema.config_feats, readout=self.readout,
                          roofline=self.roofline)


@torch.no_grad()
def predict_graph(model: TileRanker, g: Prepared, chunk: int | None = None) -> torch.Tensor:
    """A score for every configuration of one graph, in chunks of about 50k node copies."""
    model.eval()
    chunk = chunk or max(1, min(256, 50_000 // g.x.shape[0]))
    device = next(model.parameters()).device
    bank, first = GraphBank([g], device), torch.zeros(1, dtype=torch.long, device=device)
    out = []
    for start in range(0, g.config.shape[0], chunk):
        rows = torch.arange(start, min(start + chunk, g.config.shape[0]), device=device)
        out.append(model(bank.batch(first, rows, rows.new_tensor([rows.numel()]), model.early)[0]))
    return torch.cat(out).cpu()


def evaluate(model: TileRanker, graphs: list[Prepared]) -> dict[str, Any]:
    report = RankingReport()
    for g in graphs:
        report.add(g.name, predict_graph(model, g).double().numpy(), g.runtime.numpy())
    return report.summary()


def _distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, this process's device): under torchrun on CUDA each process takes
    the GPU of its local rank and the group talks NCCL; on CPU, gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    return rank, world, device


def _all_agree_to_stop(mine: bool, world: int, device: torch.device) -> bool:
    """Whether any rank's clock has run out: every rank must leave the epoch loop together, or
    the one that stays waits in its next gradient all-reduce for a peer that has left (rank 0,
    which also evaluates, runs out first)."""
    if world == 1:
        return mine
    flag = torch.tensor([float(mine)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def epoch_order(graphs: int, seed: int, epoch: int) -> torch.Tensor:
    """The epoch's shuffled graph order: a function of (seed, epoch) alone, so every rank of a
    data-parallel job computes the same one and their shards of it never overlap, however many
    random draws each rank has made since."""
    return torch.randperm(graphs, generator=torch.Generator().manual_seed(seed * 1_000_003 + 999_983 + epoch))


@dataclass
class RankerResult:
    model: TileRanker
    history: list[dict[str, Any]] = field(default_factory=list)
    configs_scored: int = 0
    seconds: float = 0.0  # spent in training steps (evaluation excluded)

    @property
    def configs_per_s(self) -> float:
        return self.configs_scored / self.seconds if self.seconds else 0.0


def train(cfg: RankerConfig, train_graphs: list[Prepared], valid_graphs: list[Prepared] | None = None, *,
          on_epoch: Callable[[dict[str, Any]], None] | None = None, time_budget_s: float | None = None,
          device: str = "cpu", init_bias: float | None = None,
          validate: Callable[[TileRanker, list[Prepared]], dict[str, Any]] | None = None) -> RankerResult:
    """Train on `device` ("cpu", "cuda", "cuda:1"; under torchrun "cuda" means each process's
    own GPU). Evaluation runs there too; the returned model stays there. `init_bias` starts the
    output layer's bias there (a regression's typical target); `validate` replaces the ranking
    metrics computed on `valid_graphs` each epoch (its keys are reported with a `valid_` prefix)."""
    rank, world, dev = _distributed(require_device(device))
    torch.manual_seed(cfg.seed)
    model = cfg.build()
    if init_bias is not None:
        model.init_output(init_bias)
    model = model.to(dev)
    trained = (torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)
               if world > 1 else model)
    labelled = [g for g in train_graphs if g.runtime.numel() > 1 and float(g.runtime.max()) > 0]
    if not labelled:
        raise UserError("no labelled training graphs with two or more configurations")
    bank = GraphBank(labelled, dev)
    per_rank = max(1, len(labelled) // world)
    steps_per_epoch = math.ceil(per_rank / cfg.batch_graphs)
    # One fused update for all parameters, on the devices that have one.
    opt = torch.optim.Adam(trained.parameters(), lr=cfg.lr, fused=dev.type in ("cpu", "cuda"))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    criterion = loss_fn(cfg.loss)
    draws = torch.Generator().manual_seed(cfg.seed * 1_000_003 + rank)  # each rank's own configuration draws
    result = RankerResult(model)
    t0 = time.perf_counter()
    train_s = 0.0  # training steps only: throughput excludes evaluation
    for epoch in range(1, cfg.epochs + 1):
        raise_dropped_stop()  # a Ctrl-C or SIGTERM that Python dropped stops here
        t_epoch = time.perf_counter()
        order = epoch_order(len(labelled), cfg.seed, epoch).to(dev)
        mine = order[rank * per_rank : (rank + 1) * per_rank]
        trained.train()
        loss_sum = torch.zeros((), device=dev)  # summed where it is computed: no wait per step
        for step in range(steps_per_epoch):
            ids = mine[step * cfg.batch_graphs : (step + 1) * cfg.batch_graphs]
            rows, counts = bank.sample(ids, cfg.configs_per_graph, draws)
            batch, runtime = bank.batch(ids, rows, counts, model.early)
            scores, mask = dense_groups(trained(batch), counts)
            y, _ = dense_groups(runtime.float(), counts)
            loss = criterion(scores, y, mask)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained.parameters(), cfg.clip, foreach=True)
            opt.step()
            sched.step()
            loss_sum += loss.detach()
            result.configs_scored += rows.numel()
        epoch_loss = float(loss_sum) / steps_per_epoch
        if not math.isfinite(epoch_loss):
            raise UserError(f"training diverged: the loss is {epoch_loss} in epoch {epoch} (lr {cfg.lr}); lower "
                            "the learning rate or check the data with `fastslow tpugraphs inspect`")
        train_s += time.perf_counter() - t_epoch
        row: dict[str, Any] = {"epoch": epoch, "loss": epoch_loss, "train_s": train_s, "lr": sched.get_last_lr()[0]}
        if rank == 0 and valid_graphs and validate is not None:
            row.update({f"valid_{k}": v for k, v in validate(model, valid_graphs).items()})
        elif rank == 0 and valid_graphs:
            summary = evaluate(model, valid_graphs)
            row.update(valid_score_top5=summary["score_top5"], valid_slowdown=summary["slowdown"],
                       valid_kendall_tau=summary["kendall_tau"], valid_pair_accuracy=summary["pair_accuracy"],
                       valid_informative_k=summary["informative_k"])
        result.history.append(row)
        if on_epoch and rank == 0:
            on_epoch(row)
        if time_budget_s is not None and _all_agree_to_stop(time.perf_counter() - t0 >= time_budget_s, world, dev):
            break
    result.seconds = train_s
    result.configs_scored *= world  # every rank scores the same number: report the whole job
    if world > 1:
        # The wrapper goes first, while the group and every peer are there. Destroyed after them
        # (as this function returned), it left rank 1 hanging after rank 0 had finished: 2 jobs
        # of 8 with both processes on one core (`predictor train`, tiny), none of 32 since.
        del trained
        gc.collect()
        dist.barrier()  # rank 0 may still be evaluating; leave together
        dist.destroy_process_group()
    return result


def save_run(out: Path, cfg: RankerConfig, norm: TileNormalizer, result: RankerResult) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.pt"
    state = {k: v.cpu() for k, v in result.model.state_dict().items()}  # loadable without the training device
    torch.save({"kind": "tile-ranker", "config": asdict(cfg), "normalizer": norm.to_dict(),
                "state_dict": state, "history": result.history}, path)
    return path


def load_run(path: str | Path) -> dict[str, Any]:
    """A run folder (or its model.pt); an ensemble holds its members' checkpoints."""
    from fastslow.specs import load_torch_file

    p = Path(path)
    if not p.exists():
        raise UserError(f"run {path}: not found (expected a run folder holding model.pt)")
    ckpt = load_torch_file(p / "model.pt" if p.is_dir() else p, "run checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("kind") not in ("tile-ranker", "ensemble"):
        raise UserError(f"run {path}: not a fastslow tpugraphs checkpoint")
    return ckpt


def members(ckpt: dict[str, Any]) -> list[dict[str, Any]]:
    return ckpt["members"] if ckpt["kind"] == "ensemble" else [ckpt]


def model_from(ckpt: dict[str, Any]) -> tuple[TileRanker, TileNormalizer, RankerConfig]:
    try:
        cfg = RankerConfig(**ckpt["config"])
        model = cfg.build()
        model.load_state_dict(ckpt["state_dict"])
    except (TypeError, KeyError, RuntimeError) as e:
        raise UserError(f"run checkpoint does not fit this version of fastslow ({one_line(e)}); retrain it") from None
    return model.eval(), TileNormalizer.from_dict(ckpt["normalizer"]), cfg


# A run's models (one, or an ensemble's members), each with its normaliser and layout crop.
Ranker = list[tuple[TileRanker, TileNormalizer, int]]


def load_ranker(ckpt: dict[str, Any]) -> Ranker:
    """Build a run's models once; score as many graphs with them as needed."""
    return [(model, norm, cfg.layout_hops) for model, norm, cfg in map(model_from, members(ckpt))]


def standardized_sum(scores: list[np.ndarray]) -> np.ndarray:
    """Sum of score vectors, each standardised within its graph first (so no model's scale dominates)."""
    return sum((s - s.mean()) / (s.std() + 1e-12) for s in scores)  # type: ignore[return-value]


def scores_for(ranker: Ranker, graph: TileGraph | LayoutGraph) -> np.ndarray:
    """Predicted costs for every configuration of a graph: one model's, or the standardised
    sum of an ensemble's members'."""
    scores = [predict_graph(model, prepare([graph], norm, hops)[0]).double().numpy() for model, norm, hops in ranker]
    return scores[0] if len(scores) == 1 else standardized_sum(scores)


def rank_configs(rankers: list[Ranker], graph: TileGraph | LayoutGraph, n_configs: int) -> list[int]:
    """A file's configuration indices, best first, by the standardised sum of several runs' scores
    (merged duplicate tile configurations follow at the end, in file order)."""
    total = standardized_sum([scores_for(r, graph) for r in rankers])
    chosen = [int(graph.config_index[i]) for i in np.argsort(total, kind="stable")]
    placed = set(chosen)
    return chosen + [i for i in range(n_configs) if i not in placed]
