"""`bench` and `compare` as Python functions: spec -> model + inputs -> timer -> results.

The CLI builds these configs and calls these functions; nothing here prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from fastslow.env import environment
from fastslow.errors import Terminated, UserError, one_line, param_error, raise_dropped_stop, stop_taken
from fastslow.measure.compare import DEFAULT_THRESHOLD, Comparison, compare
from fastslow.measure.devices import require_device
from fastslow.measure.stats import Measurement
from fastslow.measure.sweep import PowerLawFit, fit_power_law, grid
from fastslow.measure.timer import TimerConfig, Workload, measure_interleaved
from fastslow.specs import InputSpec, ResolvedModel, parse_input
from fastslow.store.recorder import Saved
from fastslow.zoo import resolve_model


@dataclass
class RunSettings:
    """Where and how a model runs: everything `compare` may vary between its two sides."""

    device: str = "cpu"
    threads: int | None = 1
    cuda_graph: bool = False
    sets: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_device(self.device)
        if self.threads is not None and self.threads < 1:
            raise param_error("threads", f"must be >= 1 (got {self.threads})")
        if self.cuda_graph and not self.device.startswith("cuda"):
            raise param_error("cuda_graph", f"needs a CUDA device (got '{self.device}')")
        for name, value in self.sets.items():
            if value < 1:
                raise param_error("sets", f"{name}={value}: a size must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "threads": self.threads, "cuda_graph": self.cuda_graph,
                "sets": dict(self.sets)}


@dataclass
class ModelSource:
    """What to build: a spec, its constructor arguments, inputs and weights."""

    spec: str
    inputs: list[str] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None

    def __post_init__(self) -> None:
        for text in self.inputs:  # a malformed shape is refused before anything is built or opened
            parse_input(text)

    def resolve(self) -> tuple[ResolvedModel, list[InputSpec]]:
        resolved = resolve_model(self.spec, self.args, self.weights)
        inputs = [parse_input(t) for t in self.inputs] or resolved.inputs
        if not inputs:
            raise param_error("inputs", f"model '{self.spec}' has no default inputs: give SHAPEs such as Bx3x224x224")
        return resolved, inputs

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "inputs": list(self.inputs), "args": dict(self.args),
                "weights": self.weights}


def example_inputs(inputs: list[InputSpec], values: dict[str, int], device: str) -> tuple:
    """The model's inputs at these symbol values: reproducible (input i is drawn with seed i)."""
    return tuple(spec.make(values, device, seed=i) for i, spec in enumerate(inputs))


def make_workload(
    resolved: ResolvedModel, inputs: list[InputSpec], values: dict[str, int],
    settings: RunSettings, label: str = "",
) -> Workload:
    model = resolved.model.to(settings.device)
    tensors = example_inputs(inputs, values, settings.device)
    return Workload(lambda: model(*tensors), settings.device, settings.threads,
                    settings.cuda_graph, label=label or resolved.spec)


def batch_size(inputs: list[InputSpec], values: dict[str, int], batch_symbol: str) -> int:
    """Items per call: the batch symbol's value when an input has that symbol, else the first
    input's leading dimension (a value of the symbol that no input uses counts for nothing)."""
    if any(batch_symbol in spec.symbols for spec in inputs):
        return values[batch_symbol]
    shape = inputs[0].shape(values)
    return shape[0] if shape else 1


# A point's inputs must leave room for an output and one intermediate of the same size.
MEMORY_HEADROOM = 3


def input_bytes(inputs: list[InputSpec], values: dict[str, int]) -> int:
    return sum(math.prod(spec.shape(values)) * spec.itemsize for spec in inputs)


def available_memory(device: str) -> int | None:
    """Bytes that can still be allocated on the device (None where it cannot be asked)."""
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    if device.startswith("cpu"):
        import psutil

        return int(psutil.virtual_memory().available)
    return None


def memory_shortfall(inputs: list[InputSpec], values: dict[str, int], device: str) -> str | None:
    """Why a point would not fit in memory, or None: checked before its tensors are made, so
    a sweep that outgrows the machine records a failed point instead of being killed."""
    from fastslow.report.units import format_bytes

    need = input_bytes(inputs, values)
    free = available_memory(device)
    if free is not None and need * MEMORY_HEADROOM > free:
        return (f"out of memory (checked before running): the inputs take {format_bytes(need)}, and with room "
                f"for an output and an intermediate as large ({MEMORY_HEADROOM}x) that is "
                f"{format_bytes(need * MEMORY_HEADROOM)}; {format_bytes(free)} is available on {device}")
    return None


@dataclass
class Point:
    """One point of a sweep: its symbol values and its measurement, or the error that stopped it."""

    params: dict[str, int]
    measurement: Measurement | None = None
    batch: int = 1
    error: str | None = None

    @property
    def throughput_per_s(self) -> float | None:
        if self.measurement is None:
            return None
        return self.batch / self.measurement.median_s

    def to_record(self) -> dict[str, Any]:
        """What is stored: the raw samples and settings, nothing derived (see `from_record`)."""
        return {"params": dict(self.params), "batch": self.batch, "error": self.error,
                "measurement": self.measurement.raw() if self.measurement else None}

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Point:
        """Rebuild a point from `to_record()` (or from a round-1 payload point, which kept the
        samples beside derived statistics); every statistic is derived again."""
        raw = d.get("measurement")
        if raw is None and d.get("samples_s"):
            raw = d  # round 1's layout
        return cls(dict(d.get("params", {})), Measurement.from_dict(raw) if raw else None,
                   int(d.get("batch", 1)), d.get("error"))

    def to_dict(self, samples: bool = True) -> dict[str, Any]:
        """The JSON shape: params, stats, throughput, memory, warnings, and the raw samples."""
        m = self.measurement
        d: dict[str, Any] = {
            "params": dict(self.params),
            "stats": m.stats() if m else None,
            "throughput_per_s": self.throughput_per_s,
            "peak_mem_bytes": m.peak_mem_bytes if m else None,
            "batch": self.batch,
            "error": self.error,
        }
        d["n"] = m.n if m else None
        d["iqr_s"] = m.iqr_s if m else None
        if m:
            d["flags"] = m.flags
            d["warnings"] = m.warnings
            d["stop_reason"] = m.stop_reason
            if samples:
                d["samples_s"] = m.samples_s
                d["calls_per_sample"] = m.calls_per_sample
        return d


@dataclass
class BenchResult:
    spec: str
    env: dict[str, Any]
    points: list[Point]
    fit: PowerLawFit | None = None
    interrupted: bool = False
    stop_signal: str | None = None  # "SIGINT" or "SIGTERM" when interrupted
    saved: Saved | None = field(default=None, repr=False)  # where the API stored the run

    @property
    def status(self) -> str:
        if self.interrupted:
            return "interrupted"
        failed = sum(p.error is not None for p in self.points)
        if failed == len(self.points):
            return "failed"
        return "partial" if failed else "ok"

    def to_dict(self, samples: bool = True) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "env": self.env,
            "points": [p.to_dict(samples) for p in self.points],
            "fit": self.fit.to_dict() if self.fit else None,
            "interrupted": self.interrupted,
        }

    def summary(self) -> str:
        ok = [p for p in self.points if p.measurement]
        return f"{len(ok)}/{len(self.points)} points" + (f", k={self.fit.exponent:.3f}" if self.fit else "")


def _point_error(e: BaseException) -> str:
    if isinstance(e, torch.OutOfMemoryError):
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return f"out of memory: {str(e).splitlines()[0] if str(e) else ''}".strip()
    if isinstance(e, UserError):
        return str(e)
    return one_line(e)


def fit_symbol_values(
    points: list[Point], swept: list[str], fit_symbol: str | None
) -> tuple[str, list[float], list[float], list[bool]] | None:
    """(label, sizes, median times, flagged) for the power-law fit; None when nothing is swept.

    With one swept symbol the fit is against it; with several and no `fit_symbol` chosen,
    against their product (H and W swept together: time against H·W cells). `flagged` marks
    the points whose measurement has a flag (few samples, wide spread).
    """
    if not swept:
        return None
    names = [fit_symbol] if fit_symbol else swept
    ok = [p for p in points if p.measurement is not None]
    sizes = [float(math.prod(p.params[n] for n in names)) for p in ok]
    times = [p.measurement.median_s for p in ok]  # type: ignore[union-attr]
    flagged = [bool(p.measurement.flags) for p in ok]  # type: ignore[union-attr]
    return "*".join(names), sizes, times, flagged


def run_bench(
    source: ModelSource,
    settings: RunSettings,
    sweeps: dict[str, list[int]] | None = None,
    timer: TimerConfig | None = None,
    *,
    batch_symbol: str = "B",
    fit_symbol: str | None = None,
    on_point: Callable[[Point, int, int], None] | None = None,
    before_first: Callable[[], object] | None = None,
) -> BenchResult:
    """Time the model at every point of the sweep grid. A failing point is recorded and the
    sweep goes on; Ctrl-C (or SIGTERM, through the CLI) stops it and keeps the finished points
    (`interrupted` is set). `before_first` runs once the inputs are checked, before any work."""
    sweeps = sweeps or {}
    overlap = set(sweeps) & set(settings.sets)
    if overlap:
        raise param_error("sweeps", f"symbol {sorted(overlap)[0]} is both set and swept")
    if fit_symbol and fit_symbol not in sweeps:
        raise param_error("fit_symbol", f"value '{fit_symbol}' is not a swept symbol (swept: "
                                        f"{', '.join(sweeps) or 'none'})")
    resolved, inputs = source.resolve()
    needed = {s for spec in inputs for s in spec.symbols}
    unknown = (set(sweeps) | set(settings.sets)) - needed - {batch_symbol}
    if unknown:
        raise UserError(f"symbol {sorted(unknown)[0]} does not appear in any input "
                        f"({', '.join(s.text for s in inputs)})")
    bound = {**resolved.defaults, **settings.sets, **sweeps}
    for spec in inputs:  # every symbol bound before the first point, not found missing halfway
        spec.shape({name: 1 for name in bound})
    result = BenchResult(source.spec, environment(settings.device, settings.threads), [])
    combos = grid(sweeps)
    if before_first:
        before_first()
    try:
        for i, combo in enumerate(combos):
            raise_dropped_stop()  # a Ctrl-C that Python dropped stops here
            values = {**resolved.defaults, **settings.sets, **combo}
            point = Point(params=combo or dict(settings.sets))
            try:
                point.batch = batch_size(inputs, values, batch_symbol)
                point.error = memory_shortfall(inputs, values, settings.device)
                if point.error is None:
                    workload = make_workload(resolved, inputs, values, settings)
                    point.measurement = measure_interleaved([workload], timer)[0]
            except KeyboardInterrupt:
                raise
            except UserError:
                raise  # an unbound symbol is the user's input, not a failed point
            except Exception as e:  # a failed point is data: record it and go on
                point.error = _point_error(e)
            result.points.append(point)
            if on_point:
                on_point(point, i + 1, len(combos))
    except KeyboardInterrupt as e:
        stop_taken()
        result.interrupted = True
        result.stop_signal = "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
    fit_data = fit_symbol_values(result.points, list(sweeps), fit_symbol)
    if fit_data:
        result.fit = fit_power_law(*fit_data)
    return result


def run_compare(
    a: tuple[ModelSource, RunSettings],
    b: tuple[ModelSource, RunSettings],
    timer: TimerConfig | None = None,
    *,
    labels: tuple[str, str] = ("A", "B"),
    threshold: float = DEFAULT_THRESHOLD,
) -> Comparison:
    """Two models, or one model under two settings, timed interleaved in this process."""
    workloads = []
    for (source, settings), label in zip((a, b), labels, strict=True):
        resolved, inputs = source.resolve()
        values = {**resolved.defaults, **settings.sets}
        try:
            w = make_workload(resolved, inputs, values, settings, label=label)
            with torch.inference_mode():
                w.fn()  # fail here, with a clear message, rather than inside the timer
        except UserError:
            raise
        except Exception as e:
            shapes = ", ".join(str(s.shape(values)) for s in inputs)
            raise UserError(f"model '{source.spec}' rejected input {shapes}: {_point_error(e)}") from e
        workloads.append(w)
    return compare(workloads[0], workloads[1], timer, threshold=threshold)
