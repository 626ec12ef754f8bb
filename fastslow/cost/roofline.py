"""The roofline: the least time FLOPs and bytes allow on a device, beside the measured time.

lower bound = max(FLOPs / peak FLOP/s, bytes / peak bandwidth), with the peaks that
`fastslow devices --peak` measured (the matmul peak of the model's dtype: elementwise work
rarely reaches it, so the bound is optimistic for it, as a bound should be).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fastslow.cost.counter import CostReport, ModuleCost
from fastslow.errors import UserError
from fastslow.measure.stats import Measurement
from fastslow.measure.timer import TimerConfig, Workload, measure_interleaved


@dataclass
class Peaks:
    flops_per_s: float
    bytes_per_s: float
    dtype: str
    source: str  # "stored" or "measured now"

    @property
    def ridge_intensity(self) -> float:
        """FLOP/byte where memory-bound turns compute-bound."""
        return self.flops_per_s / self.bytes_per_s


@dataclass
class RooflineRow:
    name: str
    flops: int
    bytes: int
    lower_bound_s: float
    measured_s: float | None
    bound: str  # "compute" or "memory"
    n: int | None = None  # the measurement's samples, spread and flags
    iqr_s: float | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else 0.0

    @property
    def share_of_peak(self) -> float | None:
        """How close the measurement comes to the bound (1.0 = at the roof)."""
        if not self.measured_s:
            return None
        return self.lower_bound_s / self.measured_s

    @property
    def achieved_flops_per_s(self) -> float | None:
        return self.flops / self.measured_s if self.measured_s else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name or "(model)", "flops": self.flops, "bytes": self.bytes,
                "intensity": self.intensity, "lower_bound_s": self.lower_bound_s,
                "measured_s": self.measured_s, "share_of_peak": self.share_of_peak, "bound": self.bound,
                "achieved_flops_per_s": self.achieved_flops_per_s, "n": self.n, "iqr_s": self.iqr_s,
                "flags": self.flags}


def peaks_for(device: str, dtype: torch.dtype, stored: dict[tuple[str, str], float],
              measure_missing: Callable[[], dict[tuple[str, str], float]] | None = None) -> Peaks:
    key = str(dtype).removeprefix("torch.")
    source = "stored"
    if ("matmul", key) not in stored or ("bandwidth", "float32") not in stored:
        if measure_missing is None:
            raise UserError(f"no stored peaks for {device} ({key}); run `fastslow devices --peak` first")
        stored = {**stored, **measure_missing()}
        source = "measured now"
    if ("matmul", key) not in stored:
        raise UserError(f"no matmul peak for dtype {key} on {device}")
    return Peaks(stored[("matmul", key)], stored[("bandwidth", "float32")], key, source)


def lower_bound_s(flops: int, n_bytes: int, peaks: Peaks) -> tuple[float, str]:
    compute, memory = flops / peaks.flops_per_s, n_bytes / peaks.bytes_per_s
    return (compute, "compute") if compute >= memory else (memory, "memory")


def capture_module_inputs(model: nn.Module, inputs: tuple[Any, ...], names: set[str]
                          ) -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    """The arguments each named module receives in one eval forward pass."""
    captured: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    handles = []
    for name, module in model.named_modules():
        if name in names:
            def hook(m: nn.Module, args: tuple, kwargs: dict, name: str = name) -> None:
                captured.setdefault(name, (args, kwargs))
            handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        with torch.inference_mode():
            model.eval()(*inputs)
    finally:
        for h in handles:
            h.remove()
    return captured


def roofline(
    model: nn.Module, inputs: tuple[Any, ...], report: CostReport, modules: list[ModuleCost],
    peaks: Peaks, *, device: str = "cpu", threads: int | None = 1, timer: TimerConfig | None = None,
) -> list[RooflineRow]:
    """Lower bound and measured time for the whole model and each listed module.

    Each module is timed on its own, with the arguments it received in a real forward pass;
    a module that a fused kernel skipped (it never ran on its own) has no measured time.
    """
    timer = timer or TimerConfig.preset("roofline")
    named = dict(model.named_modules())
    captured = capture_module_inputs(model, inputs, {m.name for m in modules if m.name})
    rows = []
    for m in modules:
        bound, kind = lower_bound_s(m.flops, m.bytes, peaks)
        measured: Measurement | None = None
        if m.name == "":
            measured = measure_interleaved([Workload(lambda: model(*inputs), device, threads)], timer)[0]
        elif m.name in captured:
            mod, (args, kwargs) = named[m.name], captured[m.name]
            measured = measure_interleaved(
                [Workload(lambda mod=mod, a=args, k=kwargs: mod(*a, **k), device, threads,
                          track_memory=False)], timer)[0]
        rows.append(RooflineRow(m.name, m.flops, m.bytes, bound, measured.median_s if measured else None, kind,
                                measured.n if measured else None, measured.iqr_s if measured else None,
                                measured.flags if measured else []))
    return rows
