"""Does fastslow's timer agree with torch.utils.benchmark, and what does it cost per call?

For three workloads (a 512x512 matmul, a small conv net at batch 1, a tiny elementwise op)
both timers run interleaved in this process, several rounds each, one thread; the script
prints each median, their ratio, and the timer's own per-call cost on an empty function.
Target: every ratio within 5% of 1.

    .venv/bin/python benchmarks/timer_vs_torch.py [--rounds 12]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils import benchmark as tb

from fastslow.measure.timer import TimerConfig, measure
from fastslow.zoo import create_model


def workloads() -> dict[str, tuple[torch.nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    conv = create_model("convnet").eval()
    return {
        "matmul 512x512": (create_model("matmul", n=512), torch.randn(512, 512)),
        "convnet batch 1": (conv, torch.randn(1, 3, 32, 32)),
        "elementwise 1024": (create_model("elementwise"), torch.randn(1024)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=12, help="interleaved rounds per workload")
    args = ap.parse_args()
    cfg = TimerConfig(min_time_s=0.1, max_time_s=0.3)
    print(f"torch {torch.__version__}, 1 thread, {args.rounds} interleaved rounds per workload "
          "(order alternates each round; ratio = median of per-round ratios)")
    print(f"{'workload':<18} {'fastslow median':>16} {'torch median':>14} {'ratio':>7} "
          f"{'ratio IQR':>17}")
    worst = 0.0
    for name, (model, x) in workloads().items():
        ours, theirs = [], []

        def run_ours(m=model, x=x, ours=ours) -> None:
            ours.append(measure(lambda: m(x), threads=1, config=cfg).median_s)

        def run_theirs(m=model, x=x, theirs=theirs) -> None:
            t = tb.Timer("m(x)", globals={"m": m, "x": x}, num_threads=1)
            theirs.append(t.blocked_autorange(min_run_time=0.1).median)

        with torch.inference_mode():
            for r in range(args.rounds):
                # Alternate who goes first, so slow drift does not favour either timer.
                for step in (run_ours, run_theirs) if r % 2 == 0 else (run_theirs, run_ours):
                    step()
        ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
        ratio = statistics.median(ratios)
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        worst = max(worst, abs(ratio - 1))
        print(f"{name:<18} {statistics.median(ours) * 1e6:>13.2f} us "
              f"{statistics.median(theirs) * 1e6:>11.2f} us {ratio:>7.3f} "
              f"   [{q1:.3f}, {q3:.3f}]")
    print(f"largest disagreement: {100 * worst:.1f}% (target: within 5%)")

    # The timer's own cost: an empty callable, timed in blocks, is loop plus call overhead;
    # the whole measure() call's wall time against the timed work shows its fixed cost.
    t0 = time.perf_counter()
    m = measure(lambda: None, config=TimerConfig(min_time_s=0.2, max_time_s=0.5))
    wall = time.perf_counter() - t0
    timed = sum(m.samples_s) * m.calls_per_sample
    print(f"empty call: {m.median_s * 1e9:.0f} ns per timed call "
          f"({m.calls_per_sample} calls per block, {m.n} blocks); "
          f"measure() wall {wall:.3f} s for {timed:.3f} s timed")


if __name__ == "__main__":
    main()
