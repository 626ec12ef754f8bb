"""Does `fastslow optimize --search` find a pipeline at least 10x faster than fp32 eager on
digits at batch 64, within 1 accuracy point? Prints every variant the search judged, the best,
and the time the search took.

    .venv/bin/python benchmarks/optimize_search.py [--seed 0] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from fastslow.api.optimize import optimize
from fastslow.optimize.judge import SEARCH_GROUPS, SEARCH_KEEP


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print(f"torch {torch.__version__}; search space {SEARCH_GROUPS}, {SEARCH_KEEP} kept per group")
    t0 = time.perf_counter()
    run = optimize(task="digits", search=True, batch=64, threads=args.threads, seed=args.seed, store=False)
    took = time.perf_counter() - t0
    base = run.report.baseline
    for v in sorted(run.report.variants, key=lambda v: v.latency_ratio or 99):
        speed = f"{1 / v.latency_ratio:6.2f}x" if v.latency_ratio else "     -"
        acc = f"{100 * v.accuracy:.2f}%" if v.accuracy is not None else "-"
        print(f"  {speed}  {acc:>7}  {v.verdict:8}  {v.name}")
    best = run.report.best()
    drop = 100 * (base["accuracy"] - best.accuracy)
    print(f"baseline fp32 eager {1e3 * base['median_s']:.2f} ms, accuracy {100 * base['accuracy']:.2f}%")
    print(f"best: {best.name}: {1 / best.latency_ratio:.1f}x faster (95% CI of B/A {best.ci95[0]:.3f}-"
          f"{best.ci95[1]:.3f}), accuracy drop {drop:.2f} points; target: >= 10x within 1 point: "
          f"{'met' if 1 / best.latency_ratio >= 10 and drop <= 1 else 'NOT met'}")
    print(f"the search judged {len(run.report.variants)} variants in {took:.0f} s (training included)")


if __name__ == "__main__":
    main()
