"""The fast exact life predictor against the exact PyTorch rule and the notebook's network.

At 2048x2048, one thread, the three predictors are timed interleaved in this process:
`rule_torch` (the exact rule on the float grid), `min` (the smallest exact network found by
the width search, tiny convolutions as shifted adds) and `fc` (the notebook's fully-
convolutional network, trained). Targets: min/rule_torch <= 2, fc/min >= 50.

    .venv/bin/python benchmarks/life_2048.py [--size 2048] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch

from fastslow.cost.counter import params_of
from fastslow.measure.compare import ratio_ci95
from fastslow.measure.timer import TimerConfig, Workload, measure_interleaved
from fastslow.tasks.life.rules import random_grid
from fastslow.tasks.life.study import LifeModels, make_step
from fastslow.tasks.life.train import LifeTrainConfig, train_both
from fastslow.zoo.life import min_net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    trained = train_both(LifeTrainConfig())
    models = LifeModels(trained["percell"][0], trained["fc"][0], min_net())
    grid = random_grid(args.size, seed=0)
    names = ("rule_torch", "min", "fc")
    steps = {n: make_step(n, grid, models) for n in names}
    with torch.inference_mode():
        reference = steps["rule_torch"][1](steps["rule_torch"][0]())
        for n in ("min", "fc"):
            assert torch.equal(steps[n][1](steps[n][0]()), reference), f"{n} is not exact"
    cfg = TimerConfig(min_time_s=0.5, max_time_s=15.0, min_samples=5, rel_precision=0.03)
    ms = measure_interleaved([Workload(steps[n][0], threads=args.threads, label=n) for n in names], cfg)
    by = dict(zip(names, ms, strict=True))
    print(f"{args.size}x{args.size} grid, {args.threads} thread(s), torch {torch.__version__}; "
          f"min has {params_of(models.min)} parameters, fc {params_of(models.fc)}; all three exact")
    for n, m in by.items():
        print(f"  {n:<10} median {m.median_s * 1e3:9.2f} ms  (n={m.n}, IQR {m.iqr_s * 1e3:.2f} ms)")
    r, (lo, hi) = ratio_ci95(by["rule_torch"], by["min"])
    print(f"min / rule_torch = {r:.2f}  [95% CI {lo:.2f}, {hi:.2f}]  (target <= 2)")
    r, (lo, hi) = ratio_ci95(by["min"], by["fc"])
    print(f"fc / min         = {r:.1f}  [95% CI {lo:.1f}, {hi:.1f}]  (target >= 50)")


if __name__ == "__main__":
    main()
