"""Judging: the one function that decides what a variant bought and what it cost.

Every variant is timed against the baseline interleaved in this process (ratio of medians
with a bootstrap interval), at the user's batch size and thread count, on the same input
batch; then its size on disk, parameters, FLOPs, held-out accuracy and largest output
deviation from the baseline are taken. A variant slower than the baseline (the interval
lies above 1) or losing more than `max_accuracy_drop` points is rejected, with the reason.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from fastslow.cost.counter import count_cost, params_of, state_dict_size_bytes
from fastslow.errors import UserError, full_reason, raise_dropped_stop
from fastslow.measure.compare import compare
from fastslow.measure.timer import TimerConfig, Workload
from fastslow.optimize.variants import Candidate, Context, Pipeline, build, parse_pipelines, pipeline_name


@dataclass
class VariantResult:
    name: str
    verdict: str = "rejected"
    reason: str = ""
    median_s: float | None = None
    latency_ratio: float | None = None
    ci95: tuple[float, float] | None = None
    size_bytes: int | None = None
    params: int | None = None
    flops: int | None = None
    accuracy: float | None = None
    max_abs_diff: float | None = None
    pareto: bool = False
    notes: dict[str, Any] = field(default_factory=dict)
    baseline_median_s: float | None = None  # the baseline, as timed beside this variant
    n: int | None = None  # the variant's samples, spread and flags
    iqr_s: float | None = None
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci95"] = list(self.ci95) if self.ci95 else None
        return d


@dataclass
class OptimizeReport:
    baseline: dict[str, Any]
    variants: list[VariantResult]
    batch: int
    threads: int | None
    max_accuracy_drop: float
    # The built models of the accepted variants, by name, so the chosen one can be saved exactly
    # as judged (not part of the JSON).
    accepted_candidates: dict[str, Candidate] = field(default_factory=dict, repr=False)
    search: dict[str, Any] | None = None  # what `search` kept and tried

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "variants": [v.to_dict() for v in self.variants], "batch": self.batch,
                "threads": self.threads, "max_accuracy_drop": self.max_accuracy_drop, "search": self.search}

    def best(self) -> VariantResult | None:
        """The fastest accepted variant (ties: the more accurate)."""
        ok = [v for v in self.variants if v.verdict == "accepted" and v.median_s]
        return min(ok, key=lambda v: (v.latency_ratio, -(v.accuracy or 0))) if ok else None

    def choose(self, which: str) -> VariantResult:
        """The accepted variant to save: "fastest", "smallest" (on disk), or one by name."""
        ok = [v for v in self.variants if v.verdict == "accepted" and v.median_s]
        if not ok:
            raise UserError("'save': no variant was accepted, nothing to save")
        if which == "fastest":
            return self.best()  # type: ignore[return-value]
        if which == "smallest":
            return min(ok, key=lambda v: (v.size_bytes or 0, v.latency_ratio))
        named = [v for v in ok if v.name == which]
        if not named:
            verdict = next((f"{v.verdict}: {v.reason}" for v in self.variants if v.name == which), "not tried")
            raise UserError(f"'save_variant' value '{which}' was not accepted ({verdict}); accepted: "
                            f"{', '.join(v.name for v in ok)}")
        return named[0]


def _flops(module: nn.Module, x: torch.Tensor) -> int | None:
    try:
        return count_cost(module, (x,)).flops
    except Exception:  # a structure the counter cannot run (it never blocks judging)
        return None


def max_abs_diff(predict: Callable[[torch.Tensor], torch.Tensor], baseline: nn.Module, x: torch.Tensor,
                 batch: int = 512) -> float:
    """The largest output difference from the baseline over the whole test set."""
    worst = 0.0
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch):
            part = x[i : i + batch]
            worst = max(worst, float((predict(part).float() - baseline(part).float()).abs().max()))
    return worst


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """(latency, accuracy) pairs: True where no other point is as fast and as accurate, and better in one."""
    out = []
    for i, (t, a) in enumerate(points):
        dominated = any(t2 <= t and a2 >= a and (t2 < t or a2 > a) for j, (t2, a2) in enumerate(points) if j != i)
        out.append(not dominated)
    return out


def judge_candidate(c: Candidate, ctx: Context, baseline_accuracy: float, max_accuracy_drop: float,
                    timer: TimerConfig) -> VariantResult:
    r = VariantResult(c.name, notes=dict(c.notes))
    x = ctx.example
    r.max_abs_diff = max_abs_diff(c.predict, ctx.baseline, ctx.data.test.tensors[0])
    r.accuracy = ctx.task.evaluate(c.predict, ctx.data)
    comparison = compare(Workload(lambda: ctx.baseline(x), threads=ctx.threads, label="baseline"),
                         Workload(lambda: c.predict(x), threads=ctx.threads, label=c.name), timer)
    r.median_s, r.baseline_median_s = comparison.b.median_s, comparison.a.median_s
    r.n, r.iqr_s, r.flags = comparison.b.n, comparison.b.iqr_s, comparison.b.flags
    r.latency_ratio, r.ci95 = comparison.ratio, comparison.ci95
    r.params = params_of(c.float_module)
    r.flops = _flops(c.float_module, x)
    r.size_bytes = c.size_bytes if c.size_bytes is not None else state_dict_size_bytes(c.module or c.float_module)
    if "compile_s" in r.notes and r.baseline_median_s and r.median_s and r.median_s < r.baseline_median_s:
        r.notes["break_even_calls"] = math.ceil(r.notes["compile_s"] / (r.baseline_median_s - r.median_s))
    drop_points = 100 * (baseline_accuracy - r.accuracy)
    if comparison.verdict == "slower":
        r.reason = f"slower than the baseline ({comparison.ratio:.2f}x, 95% CI {comparison.ci95[0]:.2f}-" \
                   f"{comparison.ci95[1]:.2f})"
    elif drop_points > max_accuracy_drop:
        r.reason = f"loses {drop_points:.2f} accuracy points (limit {max_accuracy_drop})"
    else:
        r.verdict = "accepted"
        r.reason = "faster" if comparison.verdict == "faster" else "not slower (speed indistinguishable)"
    return r


def _judge_all(ctx: Context, pipelines: list[Pipeline], base_acc: float, max_accuracy_drop: float,
               timer: TimerConfig, on_variant: Callable[[VariantResult], None] | None,
               cache: dict[str, Candidate] | None = None) -> tuple[list[VariantResult], dict[str, Candidate]]:
    results, kept = [], {}
    for pipeline in pipelines:
        raise_dropped_stop()  # a Ctrl-C or SIGTERM that Python dropped stops here
        name = pipeline_name(pipeline)
        try:
            candidate = build(pipeline, ctx, cache)
            result = judge_candidate(candidate, ctx, base_acc, max_accuracy_drop, timer)
            if result.verdict == "accepted":
                kept[name] = candidate
        except Exception as e:  # a technique that does not apply to this model is a finding, not a crash
            result = VariantResult(name, reason=f"failed: {full_reason(e)}")
        results.append(result)
        if on_variant:
            on_variant(result)
    return results, kept


def _report(ctx: Context, results: list[VariantResult], kept: dict[str, Candidate], base_acc: float,
            max_accuracy_drop: float) -> OptimizeReport:
    baseline_medians = [r.baseline_median_s for r in results if r.baseline_median_s]
    baseline = {
        "median_s": sorted(baseline_medians)[len(baseline_medians) // 2] if baseline_medians else None,
        "size_bytes": state_dict_size_bytes(ctx.baseline), "params": params_of(ctx.baseline),
        "flops": _flops(ctx.baseline, ctx.example), "accuracy": base_acc,
    }
    accepted = [r for r in results if r.verdict == "accepted"]
    front = pareto_front([(1.0, base_acc)] + [(r.latency_ratio, r.accuracy) for r in accepted])  # type: ignore[misc]
    baseline["pareto"] = front[0]
    for r, on in zip(accepted, front[1:], strict=True):
        r.pareto = on
    return OptimizeReport(baseline, results, int(ctx.example.shape[0]), ctx.threads, max_accuracy_drop, kept)


def optimize(ctx: Context, pipelines: list[Pipeline], *, max_accuracy_drop: float = 1.0,
             timer: TimerConfig | None = None, on_variant: Callable[[VariantResult], None] | None = None
             ) -> OptimizeReport:
    """Build and judge every pipeline against the baseline; a pipeline that fails is rejected with its error."""
    timer = timer or TimerConfig.preset("judge")
    base_acc = ctx.task.evaluate(ctx.baseline, ctx.data)
    results, kept = _judge_all(ctx, pipelines, base_acc, max_accuracy_drop, timer, on_variant)
    return _report(ctx, results, kept, base_acc, max_accuracy_drop)


# The search space: steps in three groups, applied in this order (a smaller or pruned model,
# then int8, then a runtime). Each step is first judged alone; the SEARCH_KEEP fastest accepted
# ones of each group are then combined, one per group, two or three groups at a time, in
# every order the steps can follow each other.
SEARCH_GROUPS: dict[str, list[str]] = {
    "model": ["distill", "prune-structured:0.5+finetune"],
    "int8": ["int8-static", "int8-dynamic"],
    "runtime": ["onnx", "compile", "channels-last", "bf16"],
}
SEARCH_KEEP = 2


def search(ctx: Context, *, max_accuracy_drop: float = 1.0, timer: TimerConfig | None = None,
           on_variant: Callable[[VariantResult], None] | None = None) -> OptimizeReport:
    """Every step of SEARCH_GROUPS alone, then combinations of the best of each group; the report
    holds every variant judged, and `search` says what was kept and tried."""
    timer = timer or TimerConfig.preset("judge")
    base_acc = ctx.task.evaluate(ctx.baseline, ctx.data)
    cache: dict[str, Candidate] = {}
    singles = [parse_pipelines(text)[0] for texts in SEARCH_GROUPS.values() for text in texts]
    results, kept = _judge_all(ctx, singles, base_acc, max_accuracy_drop, timer, on_variant, cache)
    by_name = {r.name: r for r in results}
    chosen: dict[str, list[str]] = {}
    for group, texts in SEARCH_GROUPS.items():
        names = [pipeline_name(parse_pipelines(t)[0]) for t in texts]
        ok = [n for n in names if by_name[n].verdict == "accepted" and (by_name[n].latency_ratio or 2) < 1]
        chosen[group] = sorted(ok, key=lambda n: by_name[n].latency_ratio)[:SEARCH_KEEP]  # type: ignore[arg-type,return-value]
    combos = []
    for parts in itertools.product(*[[None, *names] for names in chosen.values()]):
        picked = [p for p in parts if p is not None]
        if len(picked) < 2:
            continue
        try:
            combos.append(parse_pipelines("+".join(picked))[0])
        except UserError:
            continue  # steps that cannot follow each other (int8 then compile/channels-last ...)
    more, more_kept = _judge_all(ctx, combos, base_acc, max_accuracy_drop, timer, on_variant, cache)
    report = _report(ctx, results + more, {**kept, **more_kept}, base_acc, max_accuracy_drop)
    best = report.best()
    report.search = {"groups": SEARCH_GROUPS, "kept_per_group": chosen, "keep": SEARCH_KEEP,
                     "singles": len(singles), "combinations": [pipeline_name(c) for c in combos],
                     "best": best.name if best else None}
    return report
