"""Why is it fast or slow: `cost` (counts per module, roofline) and `arch` (architectures
compared at one batch size)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fastslow.api.measure import Store, store_whole
from fastslow.cost.counter import CostReport, ModuleCost, count_cost, modules_to_depth
from fastslow.env import environment, host_name, others_cpu_percent
from fastslow.errors import UserError, one_line, param_error
from fastslow.measure.bench import ModelSource, example_inputs
from fastslow.measure.devices import require_device
from fastslow.measure.timer import TimerConfig, Workload, measure_interleaved
from fastslow.specs import InputSpec, ResolvedModel
from fastslow.store.db import Record
from fastslow.store.recorder import Saved, open_store


def model_and_inputs(source: ModelSource, sets: dict[str, int] | None = None, device: str = "cpu",
                     extra_values: dict[str, int] | None = None) -> tuple[ResolvedModel, tuple, list[InputSpec]]:
    """The model (on `device`) and its example input tensors at the given symbol values."""
    require_device(device)
    resolved, specs = source.resolve()
    values = {**resolved.defaults, **(extra_values or {}), **(sets or {})}
    tensors = example_inputs(specs, values, device)
    resolved.model.to(device)
    return resolved, tensors, specs


def count(spec: str, model: nn.Module, tensors: tuple, train: bool = False) -> CostReport:
    """count_cost, with a model that rejects its input reported as the user's error."""
    try:
        return count_cost(model, tensors, train=train)
    except Exception as e:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise UserError(f"model '{spec}' rejected input {shapes}: {one_line(e)}") from e


@dataclass
class CostResult:
    spec: str
    inputs: list[tuple[str, tuple[int, ...]]]  # (input spec, shape)
    report: CostReport
    rows: list[ModuleCost]  # modules down to the asked depth
    train: bool = False
    roofline: list[Any] | None = None  # RooflineRow per row, when asked
    peaks: Any = None
    threads: int = 1
    saved: Saved | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = self.report.to_dict()
        d["by_module"] = [m.to_dict() for m in self.rows]
        if self.roofline is not None:
            d["roofline"] = {"peak_flops_per_s": self.peaks.flops_per_s, "peak_bytes_per_s": self.peaks.bytes_per_s,
                             "dtype": self.peaks.dtype, "peaks_source": self.peaks.source, "threads": self.threads,
                             "rows": [r.to_dict() for r in self.roofline]}
        return d


def cost(
    source: str | ModelSource,
    sets: dict[str, int] | None = None,
    *,
    device: str = "cpu",
    depth: int = 1,
    train: bool = False,
    roofline: bool = False,
    threads: int = 1,
    timer: TimerConfig | None = None,
    store: Store = True,
    on_measuring_peaks: Callable[[], None] | None = None,
) -> CostResult:
    """Parameters, FLOPs, MACs and bytes per module; with `roofline`, each module's lower-bound time
    from the device's stored peaks at this thread count (measured now if none are stored) against
    its measured time."""
    from fastslow.cost.roofline import peaks_for
    from fastslow.cost.roofline import roofline as run_roofline
    from fastslow.measure.devices import measure_peaks

    source = source if isinstance(source, ModelSource) else ModelSource(source)
    if depth < 0:
        raise param_error("depth", f"must be >= 0 (got {depth})")
    if threads < 1:
        raise param_error("threads", f"must be >= 1 (got {threads})")
    db = open_store(store)
    resolved, tensors, specs = model_and_inputs(source, sets, device)
    report = count(source.spec, resolved.model, tensors, train)
    result = CostResult(source.spec, [(s.text, tuple(t.shape)) for s, t in zip(specs, tensors, strict=True)],
                        report, modules_to_depth(report, depth), train, threads=threads)
    if roofline:
        others_cpu_percent(refresh=True)
        dtype = next((p.dtype for p in resolved.model.parameters()), tensors[0].dtype)

        def measure_now() -> dict[tuple[str, str], float]:
            if on_measuring_peaks:
                on_measuring_peaks()
            found = measure_peaks(device, threads=threads)
            if db is not None:
                db.add_peaks(found, host=host_name())
            return {(p.kind, p.dtype): p.value for p in found}

        stored = db.latest_peaks(device, host=host_name(), threads=threads) if db is not None else {}
        result.peaks = peaks_for(device, dtype, stored, measure_now)
        result.roofline = run_roofline(resolved.model, tensors, report, result.rows, result.peaks, device=device,
                                       threads=threads, timer=timer)
    result.saved = store_whole(db, Record(
        "cost", source.spec, {**source.to_dict(), "sets": dict(sets or {}), "depth": depth, "train": train,
                              "device": device, "roofline": roofline},
        environment(device, threads), result.to_dict(), "ok", f"{report.flops:.3g} FLOPs, {report.params:,} params"))
    return result


def architecture_family(model: nn.Module) -> str:
    """transformer (has attention), efficient (depthwise convolutions), or convolutional."""
    names = {type(m).__name__.lower() for m in model.modules()}
    if any(isinstance(m, nn.MultiheadAttention) for m in model.modules()) or any("attention" in n for n in names):
        return "transformer"
    if any(isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules()):
        return "efficient"
    return "convolutional"


@dataclass
class ArchResult:
    models: list[dict[str, Any]]
    batch: int
    threads: int
    saved: Saved | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"models": self.models, "batch": self.batch, "threads": self.threads}


def arch(specs: list[str], inputs: list[str] | None = None, *, batch: int = 8, threads: int = 1,
         timer: TimerConfig | None = None, store: Store = True) -> ArchResult:
    """Params, FLOPs, latency and throughput of each model at one batch size (symbol B), all timed
    interleaved in this process."""
    if batch < 1 or threads < 1:
        raise param_error("batch" if batch < 1 else "threads", f"must be >= 1 (got {min(batch, threads)})")
    if len(specs) < 1:
        raise UserError("arch needs one or more model specs")
    db = open_store(store)
    entries, workloads = [], []
    for spec in specs:
        resolved, tensors, _ = model_and_inputs(ModelSource(spec, list(inputs or [])), extra_values={"B": batch})
        model = resolved.model.eval()
        report = count(spec, model, tensors)
        entries.append({"spec": spec, "family": architecture_family(model), "params": report.params,
                        "flops": report.flops, "batch": batch})
        workloads.append(Workload(lambda m=model, x=tensors: m(*x), "cpu", threads, label=spec))
    others_cpu_percent(refresh=True)
    with torch.inference_mode():
        ms = measure_interleaved(workloads, timer or TimerConfig.preset("arch"))
    for e, m in zip(entries, ms, strict=True):
        e.update(median_s=m.median_s, throughput_per_s=batch / m.median_s, iqr_s=m.iqr_s, n=m.n, flags=m.flags)
    result = ArchResult(entries, batch, threads)
    result.saved = store_whole(db, Record("arch", " ".join(specs), {"batch": batch, "threads": threads,
                                                                    "inputs": list(inputs or [])},
                                          environment(threads=threads), result.to_dict(), "ok",
                                          f"{len(specs)} models"))
    return result


__all__ = ["ArchResult", "CostResult", "architecture_family", "arch", "cost", "count", "model_and_inputs"]
