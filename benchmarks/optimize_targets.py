"""The optimize targets, measured side by side in one run (1 thread unless --threads):

1. digits CNN at batch 64: the best accepted variant against fp32 eager (target >= 2x faster,
   <= 1 accuracy point lost);
2. dynamic int8 on a Linear-heavy model (zoo:mlp): file size against fp32 (target <= 30%);
3. 50% structured pruning + fine-tuning on digits: parameters removed (target >= 40%),
   accuracy lost (target <= 2 points), measured speed-up at batch 1 and 64;
4. distillation: a student with <= 30% of the teacher's parameters, trained with and without
   the teacher's soft targets, mean test accuracy over 3 seeds (target: distilled higher).

    .venv/bin/python benchmarks/optimize_targets.py [--threads 1] [--skip-compile]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from fastslow.cost.counter import params_of, state_dict_size_bytes
from fastslow.measure.compare import compare
from fastslow.measure.timer import TimerConfig, Workload
from fastslow.optimize.judge import optimize
from fastslow.optimize.quantize import dynamic_int8
from fastslow.optimize.variants import DEFAULT_TRY, Context, build, parse_pipelines
from fastslow.tasks.base import FitConfig
from fastslow.tasks.registry import resolve_task
from fastslow.zoo import create_model

TIMER = TimerConfig.preset("judge")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-compile", action="store_true", help="leave torch.compile out (it takes ~25 s cold)")
    args = ap.parse_args()
    task = resolve_task("digits")
    data = task.make_data(0)
    teacher = task.train(task.build_model(), data)
    exports = tempfile.TemporaryDirectory(prefix="fastslow-bench-")  # removed when the script ends
    ctx = Context(task, data, teacher, data.batch(64), args.threads, Path(exports.name))
    print(f"torch {torch.__version__}, {args.threads} thread(s); digits teacher: {params_of(teacher):,} params, "
          f"test accuracy {100 * task.evaluate(teacher, data):.2f}%")

    tries = DEFAULT_TRY.replace(",compile", "") if args.skip_compile else DEFAULT_TRY
    report = optimize(ctx, parse_pipelines(tries), max_accuracy_drop=1.0, timer=TIMER)
    print("\n1. every variant at batch 64 (ratio = variant / fp32 eager time, interleaved):")
    for v in report.variants:
        ratio = f"{v.latency_ratio:.2f} [{v.ci95[0]:.2f}, {v.ci95[1]:.2f}]" if v.ci95 else "-"
        acc = f"{100 * v.accuracy:.2f}%" if v.accuracy is not None else "-"
        print(f"   {v.name:<32} {v.verdict:<9} ratio {ratio:<20} accuracy {acc:<8} {v.reason}")
    best = report.best()
    base_acc = report.baseline["accuracy"]
    if best:
        print(f"   best accepted: {best.name}: {1 / best.latency_ratio:.2f}x faster, "
              f"{100 * (base_acc - best.accuracy):+.2f} points lost (targets: >= 2x, <= 1 point)")

    mlp = create_model("mlp").eval()
    fp32, int8 = state_dict_size_bytes(mlp), state_dict_size_bytes(dynamic_int8(mlp))
    print(f"\n2. zoo:mlp ({params_of(mlp):,} params) dynamic int8 file: {int8:,} B vs fp32 {fp32:,} B = "
          f"{100 * int8 / fp32:.1f}% (target <= 30%)")

    pruned = build(parse_pipelines("prune-structured:0.5+finetune")[0], ctx)
    removed = 1 - params_of(pruned.module) / params_of(teacher)
    drop = 100 * (base_acc - task.evaluate(pruned.predict, data))
    print(f"\n3. 50% structured pruning + fine-tuning: {100 * removed:.1f}% of parameters removed (target >= 40%), "
          f"{drop:+.2f} points lost (target <= 2)")
    for batch in (1, 64):
        x = data.batch(batch)
        c = compare(Workload(lambda x=x: teacher(x), threads=args.threads),
                    Workload(lambda x=x: pruned.module(x), threads=args.threads), TIMER)
        print(f"   batch {batch:>2}: pruned / dense time {c.ratio:.2f} [{c.ci95[0]:.2f}, {c.ci95[1]:.2f}] "
              f"= {1 / c.ratio:.2f}x faster ({c.verdict})")

    print("\n4. distillation (T=4, alpha=0.9, student trained 2x the teacher's epochs), 3 seeds:")
    for width in (0.125, 0.25):
        scores: dict[str, list[float]] = {"distilled": [], "without": []}
        for seed in range(3):
            task.train_config = FitConfig(epochs=15, lr=2e-3, seed=seed)
            d = task.make_data(seed)
            t = task.train(task.build_model(), d)
            for kind in scores:
                torch.manual_seed(seed)
                student = task.make_student(width)
                task.train(student, d, FitConfig(epochs=30, lr=2e-3, seed=seed),
                           teacher=t if kind == "distilled" else None)
                scores[kind].append(task.evaluate(student, d))
        share = params_of(task.make_student(width)) / params_of(task.make_model())
        means = {k: statistics.mean(v) for k, v in scores.items()}
        print(f"   width {width}: {100 * share:.1f}% of the teacher's params; distilled "
              f"{100 * means['distilled']:.2f}% {[round(100 * a, 2) for a in scores['distilled']]} vs without "
              f"{100 * means['without']:.2f}% {[round(100 * a, 2) for a in scores['without']]}: "
              f"{'distilled higher' if means['distilled'] > means['without'] else 'distilled NOT higher'}")


if __name__ == "__main__":
    main()
