"""Batched tile-ranker training against the source notebook's loop, on the same SYNTHETIC
data and machine, measured side by side.

The notebook's loop: one graph per step, its tensors built from the stored numpy arrays at
each step (the notebook kept them in a pandas frame), features normalised in the step, the
late-join GraphSAGE scoring all of the graph's configurations, MSE on min-max-scaled
targets, Adam with a one-cycle schedule. fastslow: many graphs × sampled configurations per
step, cut from graphs packed once (GraphBank). Both run the same model code (TileRanker),
so the ratio is what batching buys. The throughput ratio is measured in interleaved rounds
(both sides back to back, order alternating), since this machine's speed drifts over
minutes; a sweep over graphs per step shows how it grows (its one-graph point is the
notebook's loop without the per-step numpy work). Then each contender trains for the same
wall time: the configurations scored per second of training, and the top-5 tile score on
the validation split.

    .venv/bin/python benchmarks/tpugraphs_training.py [--seconds 60] [--rounds 6] [--round-seconds 4]
                                                      [--train 300] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from fastslow.tpugraphs.batching import GraphBank, Prepared, prepare
from fastslow.tpugraphs.data import find_files, load_arrays, load_tile_graphs
from fastslow.tpugraphs.features import TileNormalizer
from fastslow.tpugraphs.losses import mse
from fastslow.tpugraphs.models import TileRanker
from fastslow.tpugraphs.synth import write_synthetic
from fastslow.tpugraphs.train import RankerConfig, evaluate, train


def notebook_loop(infos, norm: TileNormalizer, seconds: float, steps_hint: int) -> tuple[TileRanker, int, float]:
    torch.manual_seed(0)
    model = TileRanker("late-sage", 64, 3)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps_hint)
    frame = [load_arrays(i) for i in infos]  # the notebook's frame: raw arrays, one row per file
    rng = np.random.default_rng(0)
    scored, step, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds and step < steps_hint:
        a = frame[int(rng.integers(len(frame)))]
        runtime = torch.tensor(a["config_runtime"] / a["config_runtime_normalizers"], dtype=torch.float32)

        g = Prepared("", norm.node(torch.tensor(a["node_feat"])), torch.tensor(a["node_opcode"].astype(np.int64)),
                     torch.tensor(a["edge_index"]).t().flip(0).contiguous(),
                     norm.config(torch.tensor(a["config_feat"])), runtime.double(), torch.arange(runtime.numel()))
        rows = torch.arange(runtime.numel())
        scores = model(GraphBank([g]).batch(torch.zeros(1, dtype=torch.long), rows, rows[-1:] + 1, early=False)[0])
        loss = mse(scores[None], runtime[None], torch.ones(1, runtime.numel(), dtype=torch.bool))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        scored += runtime.numel()
        step += 1
    return model.eval(), scored, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="training wall time for each contender")
    ap.add_argument("--train", type=int, default=300, help="synthetic training kernels")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads for both")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved throughput rounds (each side per round)")
    ap.add_argument("--round-seconds", type=float, default=4.0, help="training time per side per round")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = tempfile.mkdtemp(prefix="fastslow-synth-")
    write_synthetic(root, train=args.train, valid=60, test=0, seed=0)
    infos = find_files(root)
    graphs = load_tile_graphs(infos)
    train_g = [g for g in graphs if g.split == "train"]
    valid_g = [g for g in graphs if g.split == "valid"]
    norm = TileNormalizer.fit(train_g)
    ptrain, pvalid = prepare(train_g, norm), prepare(valid_g, norm)
    print(f"SYNTHETIC data: {len(train_g)} train / {len(valid_g)} valid kernels, "
          f"{np.mean([g.n_configs for g in train_g]):.0f} configurations each on average; "
          f"{args.seconds:.0f} s of training each, {args.threads} thread(s), torch {torch.__version__}")
    train_infos = [i for i in infos if i.split == "train"]
    # The one-cycle schedule needs its length: probe the loop's speed, then size it to the budget.
    _, probe_scored, probe_s = notebook_loop(train_infos, norm, 3.0, 10**9)
    steps = int(args.seconds * probe_scored / probe_s / np.mean([g.n_configs for g in train_g]))
    model, scored, secs = notebook_loop(train_infos, norm, args.seconds, max(steps, 10))
    base_rate = scored / secs
    base_score = evaluate(model, pvalid)["score_top5"]
    print(f"  notebook loop (late-sage, mse, 1 graph/step): {base_rate:>9,.0f} configs/s, valid top-5 score "
          f"{base_score:.4f}")
    # The throughput ratio, interleaved: this machine's speed drifts by tens of percent over
    # minutes, so each round times both sides back to back (order alternating) and the ratio
    # is taken within the round. Same model and loss as the notebook: late-sage, MSE.
    batched = RankerConfig(model="late-sage", loss="mse", batch_graphs=128, configs_per_graph=128, epochs=10**6)
    ratios = []
    for r in range(args.rounds):
        rates = {}
        for side in (("loop", "batched") if r % 2 == 0 else ("batched", "loop")):
            if side == "loop":
                _, scored, secs = notebook_loop(train_infos, norm, args.round_seconds, 10**9)
                rates[side] = scored / secs
            else:
                rates[side] = train(batched, ptrain, time_budget_s=args.round_seconds).configs_per_s
        ratios.append(rates["batched"] / rates["loop"])
    print(f"  throughput ratio, batched 128 x 128 / notebook loop, {args.rounds} interleaved rounds of "
          f"{args.round_seconds:.0f} s a side: median {np.median(ratios):.1f}x (min {min(ratios):.1f}x, "
          f"max {max(ratios):.1f}x)")
    # How the batched step's throughput grows with graphs per step: short runs of at least 8
    # steps each, throughput only.
    sweep = []
    for graphs_per_step in (1, 8, 32, 64, 128, 256):
        cfg = RankerConfig(model="late-sage", loss="mse", batch_graphs=graphs_per_step, configs_per_graph=128,
                          epochs=max(2, 8 * graphs_per_step // len(ptrain)))
        sweep.append(f"{graphs_per_step}: {train(cfg, ptrain).configs_per_s:,.0f}")
    print(f"  fastslow late-sage + mse, configs/s by graphs per step: {'; '.join(sweep)}")
    contenders = [
        ("late-sage, mse, 128 graphs x 128 configs", RankerConfig(model="late-sage", loss="mse", batch_graphs=128,
                                                                 configs_per_graph=128, epochs=10**6)),
        ("late-sage, listmle, 128 x 128", RankerConfig(model="late-sage", loss="listmle", batch_graphs=128,
                                                      configs_per_graph=128, epochs=10**6)),
        ("early-sage, listmle, 16 x 16", RankerConfig(model="early-sage", loss="listmle", epochs=10**6)),
        ("early-sage, hinge, 16 x 16", RankerConfig(model="early-sage", loss="hinge", epochs=10**6)),
    ]
    for name, cfg in contenders:
        # The one-cycle schedule needs a length: size it to what fits in the time budget.
        probe = train(RankerConfig(**{**cfg.__dict__, "epochs": 1}), ptrain)
        cfg.epochs = max(1, int(args.seconds / max(probe.seconds, 1e-3)))
        result = train(cfg, ptrain, time_budget_s=args.seconds)
        score = evaluate(result.model, pvalid)["score_top5"]
        print(f"  fastslow {name:<39}: {result.configs_per_s:>9,.0f} configs/s "
              f"({result.configs_per_s / base_rate:5.1f}x), valid top-5 score {score:.4f} "
              f"(notebook {base_score:.4f}), {len(result.history)} epochs in {result.seconds:.0f} s")


if __name__ == "__main__":
    main()
