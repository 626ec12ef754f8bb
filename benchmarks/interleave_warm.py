"""Does a small network timed interleaved beside a big one come out slower than it is?

Three convolutional networks on one thread (about 90 us, 0.6 ms and 17 ms a call on a 2-core
AMD EPYC) are timed alone, then in pairs interleaved (as `compare`, `arch` and the optimizer's
judge time them) with each block timed from its first call ("cold", `block_warmup_calls=0`)
and after one untimed call ("warm", the default). Printed: each network's median per round,
and the smaller one's median in a pair over its median alone, per round (1.00: no bias). The
order of cold and warm alternates from round to round.

    .venv/bin/python benchmarks/interleave_warm.py [--rounds 4] [--max-time 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import torch
from torch import nn

from fastslow.measure.timer import TimerConfig, Workload, measure_interleaved
from fastslow.predict.reference import reference_workload


def convnet(width: int, depth: int) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
    for _ in range(depth):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--max-time", type=float, default=4.0, help="most timed seconds per workload and pair")
    args = ap.parse_args()
    torch.set_num_threads(1)
    mid, big = convnet(32, 2), convnet(64, 4)
    x_mid, x_big = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 64, 64)
    work = {"small": reference_workload(1), "mid": Workload(lambda: mid(x_mid), "cpu", 1, label="mid"),
            "big": Workload(lambda: big(x_big), "cpu", 1, label="big")}
    warm = TimerConfig.preset("compare", max_time_s=args.max_time)
    modes = {"cold": dataclasses.replace(warm, block_warmup_calls=0), "warm": warm}
    pairs = (("small", "big"), ("mid", "big"), ("small", "mid"))

    alone: dict[str, list[float]] = {k: [] for k in work}
    beside: dict[tuple[str, str, str], list[float]] = {}
    for r in range(args.rounds):
        for name, w in work.items():
            alone[name].append(measure_interleaved([w], warm)[0].median_s)
        order = list(modes) if r % 2 == 0 else list(reversed(modes))
        for pair in pairs:
            for mode in order:
                ms = measure_interleaved([work[p] for p in pair], modes[mode])
                beside.setdefault((pair[0], pair[1], mode), []).append(ms[0].median_s)
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    print("\nmedian per round, us:")
    for name, values in alone.items():
        print(f"  {name:<6} alone            " + "".join(f"{v * 1e6:>10.1f}" for v in values))
    for (small, other, mode), values in beside.items():
        print(f"  {small:<6} {mode} beside {other:<5}" + "".join(f"{v * 1e6:>10.1f}" for v in values))
    print("\nthe smaller network in a pair over itself alone (same round), median of rounds:")
    for small, other in pairs:
        line = f"  {small} beside {other}:"
        for mode in modes:
            ratios = [b / a for b, a in zip(beside[(small, other, mode)], alone[small], strict=True)]
            line += f"  {mode} {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})"
        print(line)


if __name__ == "__main__":
    main()
