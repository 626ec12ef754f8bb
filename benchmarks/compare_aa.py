"""How often does `compare` claim a difference between two identical workloads?

Runs N A/A comparisons (the same model and input on both sides, as `fastslow compare zoo:mlp`
does with no settings changed) over three workloads in turn, with the CLI's default timer, and
prints how many were called faster or slower. Target: at most 5% of them.

For context it also prints how many would have been claimed by the round-1 rule (the
bootstrap interval alone excluding 1, no effect threshold), on the same measurements.

    .venv/bin/python benchmarks/compare_aa.py [--n 45] [--max-time 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fastslow.measure.compare import compare
from fastslow.measure.timer import TimerConfig, Workload
from fastslow.zoo import create_model


def workloads() -> dict[str, tuple[torch.nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    return {
        "zoo:mlp batch 64": (create_model("mlp").eval(), torch.randn(64, 256)),
        "zoo:convnet batch 1": (create_model("convnet").eval(), torch.randn(1, 3, 32, 32)),
        "zoo:elementwise 1024": (create_model("elementwise"), torch.randn(1024)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=45, help="A/A comparisons in all (at least 40)")
    ap.add_argument("--max-time", type=float, default=0.5, help="most timed seconds per side")
    args = ap.parse_args()
    timer = TimerConfig.preset("compare", max_time_s=args.max_time)
    cases = list(workloads().items())
    claimed, old_rule, ratios = [], [], []
    t0 = time.perf_counter()
    for i in range(args.n):
        name, (model, x) = cases[i % len(cases)]
        with torch.inference_mode():
            c = compare(Workload(lambda m=model, x=x: m(x), label="A"), Workload(lambda m=model, x=x: m(x), label="B"),
                        timer)
        ratios.append(c.ratio)
        lo, hi = c.ci95
        old_rule.append(hi < 1 or lo > 1)
        if c.verdict != "indistinguishable":
            claimed.append(f"{name}: B/A {c.ratio:.4f} [{lo:.4f}, {hi:.4f}] {c.verdict}")
        print(f"{i + 1:3d} {name:22s} B/A {c.ratio:.4f} [{lo:.4f}, {hi:.4f}] p={c.p_value:.2g}  {c.describe()}",
              flush=True)
    n = args.n
    print(f"\n{n} A/A comparisons in {time.perf_counter() - t0:.0f} s, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads available, 1 used")
    print(f"B/A ratios: median {statistics.median(ratios):.4f}, min {min(ratios):.4f}, max {max(ratios):.4f}")
    print(f"claimed a difference: {len(claimed)}/{n} = {100 * len(claimed) / n:.1f}% (target: at most 5%)")
    print(f"the round-1 rule (interval alone) would have claimed: {sum(old_rule)}/{n} = "
          f"{100 * sum(old_rule) / n:.1f}%")
    for line in claimed:
        print("  claimed:", line)


if __name__ == "__main__":
    main()
