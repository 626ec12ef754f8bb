"""How fast is it: `bench`, `compare`, `peaks`, and the stored history (`history`, `show`).

Each function takes the config objects the CLI builds, measures, stores the run (the row
when it starts, each point as it finishes, the status at the end) and returns the result
with `saved` telling where it went. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastslow.env import environment, others_cpu_percent
from fastslow.errors import UserError
from fastslow.measure.bench import (
    BenchResult,
    ModelSource,
    Point,
    RunSettings,
    fit_symbol_values,
    run_bench,
    run_compare,
)
from fastslow.measure.compare import DEFAULT_THRESHOLD, Comparison, against_baseline
from fastslow.measure.devices import Peak, list_devices, measure_peaks
from fastslow.measure.sweep import fit_power_law
from fastslow.measure.timer import TimerConfig
from fastslow.store.db import Record, ResultsStore
from fastslow.store.recorder import RunRecorder, Saved, open_store

Store = ResultsStore | str | Path | bool | None


def _source(spec: str | ModelSource) -> ModelSource:
    return spec if isinstance(spec, ModelSource) else ModelSource(spec)


def bench(
    source: str | ModelSource,
    settings: RunSettings | None = None,
    sweeps: dict[str, list[int]] | None = None,
    timer: TimerConfig | None = None,
    *,
    batch_symbol: str = "B",
    fit_symbol: str | None = None,
    store: Store = True,
    on_point: Callable[[Point, int, int], None] | None = None,
) -> BenchResult:
    """Time a model at every point of a sweep and store the run point by point.

        >>> r = bench("zoo:mlp", RunSettings(sets={"B": 64}), store=False)
        >>> r.points[0].measurement.median_s  # doctest: +SKIP
    """
    source, settings, sweeps = _source(source), settings or RunSettings(), sweeps or {}
    timer = timer or TimerConfig.preset("bench")
    db = open_store(store)  # before measuring: a database that cannot be written fails here
    others_cpu_percent(refresh=True)
    record = Record("bench", source.spec, {**source.to_dict(), **settings.to_dict(), "sweeps": sweeps,
                                           "fit_symbol": fit_symbol, "batch_symbol": batch_symbol,
                                           "timer": timer.to_dict()},
                    environment(settings.device, settings.threads), {})
    recorder = RunRecorder(db, record)

    def point_done(point: Point, i: int, n: int) -> None:
        recorder.point(i - 1, point.to_record())
        if on_point:
            on_point(point, i, n)

    # The run's row is written once the inputs are known to be valid, just before the first point.
    try:
        result = run_bench(source, settings, sweeps, timer, batch_symbol=batch_symbol, fit_symbol=fit_symbol,
                           on_point=point_done, before_first=recorder.start)
    except BaseException as e:
        if recorder.saved.run_id is not None:
            recorder.finish("failed", f"failed: {type(e).__name__}", {})
        raise
    recorder.finish(result.status, result.summary(), {"fit": result.fit.to_dict() if result.fit else None,
                                                      "interrupted": result.interrupted})
    result.saved = recorder.saved
    return result


def bench_from_record(record: Record) -> BenchResult:
    """A stored bench run rebuilt from its raw samples: every statistic and the fit derived again."""
    points = [Point.from_record(p) for p in record.points]
    sweeps = record.settings.get("sweeps") or {}
    result = BenchResult(record.spec or "", record.env, points, interrupted=record.status == "interrupted")
    data = fit_symbol_values(points, list(sweeps), record.settings.get("fit_symbol"))
    if data:
        result.fit = fit_power_law(*data)
    return result


def compare(
    a: tuple[str | ModelSource, RunSettings],
    b: tuple[str | ModelSource, RunSettings],
    timer: TimerConfig | None = None,
    *,
    labels: tuple[str, str] = ("A", "B"),
    threshold: float = DEFAULT_THRESHOLD,
    store: Store = True,
) -> Comparison:
    """A against B, interleaved in this process: the ratio B/A with its interval and verdict."""
    sides = [(_source(s), settings) for s, settings in (a, b)]
    timer = timer or TimerConfig.preset("compare")
    db = open_store(store)
    others_cpu_percent(refresh=True)
    result = run_compare(sides[0], sides[1], timer, labels=labels, threshold=threshold)
    settings = {"a": {**sides[0][0].to_dict(), **sides[0][1].to_dict()},
                "b": {**sides[1][0].to_dict(), **sides[1][1].to_dict()}, "timer": timer.to_dict()}
    spec = sides[0][0].spec if sides[0][0].spec == sides[1][0].spec else f"{sides[0][0].spec} vs {sides[1][0].spec}"
    record = Record("compare", spec, settings, environment(sides[0][1].device, sides[0][1].threads),
                    result.to_dict(), "ok", f"B/A {result.ratio:.3f} ({result.describe()})")
    result.saved = store_whole(db, record)
    return result


# What must match between a baseline run and the run measured against it.
SAME_MACHINE = ("host", "device_name", "torch")
SAME_SETTINGS = ("inputs", "args", "weights", "device", "threads", "cuda_graph", "sets")


def _baseline_point(record: Record, run_id: int) -> Point:
    if record.command != "bench":
        raise UserError(f"run {run_id} is a {record.command} run; a baseline is a bench run of one point")
    points = [Point.from_record(p) for p in record.points]
    measured = [p for p in points if p.measurement is not None]
    if len(points) != 1 or not measured:
        raise UserError(f"run {run_id} has {len(measured)} measured point(s) of {len(points)}; a baseline is a bench "
                        "run of one measured point (no sweep)")
    return measured[0]


def compare_to_baseline(
    run_id: int,
    spec: str | None = None,
    given: dict[str, Any] | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    db: str | Path | None = None,
    store: Store = True,
) -> Comparison:
    """Measure now what stored bench run `run_id` measured (its spec, inputs, settings and timer)
    and compare: A is the stored run, B is now. `spec` and the settings in `given` (keys of
    SAME_SETTINGS the caller set), when given, must match the stored ones, and so must the
    machine (host, device, torch), else the error names the difference: a regression gate
    compares like with like."""
    with ResultsStore(db, readonly=True) as s:
        record = s.get(run_id)
    baseline = _baseline_point(record, run_id)
    stored = record.settings
    if spec is not None and spec != record.spec:
        raise UserError(f"run {run_id} measured {record.spec}, not {spec}")
    for key, value in (given or {}).items():
        if key in SAME_SETTINGS and stored.get(key) != value:
            raise UserError(f"run {run_id} was measured with {key}={stored.get(key)!r}; this one has {key}={value!r}: "
                            "a baseline compares like with like")
    here = environment(stored.get("device", "cpu"), stored.get("threads"))
    for key in SAME_MACHINE:
        if record.env.get(key) != here.get(key):
            raise UserError(f"run {run_id} was measured with {key} {record.env.get(key)!r}, this machine has "
                            f"{here.get(key)!r}: a baseline compares like with like")
    src = ModelSource(record.spec or "", list(stored.get("inputs", [])), dict(stored.get("args", {})),
                      stored.get("weights"))
    run_settings = RunSettings(stored.get("device", "cpu"), stored.get("threads", 1), stored.get("cuda_graph", False),
                               dict(stored.get("sets", {})))
    timer = TimerConfig(**stored["timer"]) if stored.get("timer") else TimerConfig.preset("bench")
    now = bench(src, run_settings, {}, timer, batch_symbol=stored.get("batch_symbol", "B"), store=False)
    point = now.points[0]
    if point.measurement is None:
        raise UserError(f"model '{src.spec}' failed now where run {run_id} measured it: {point.error}")
    baseline.measurement.label, point.measurement.label = f"run {run_id}", "now"  # type: ignore[union-attr]
    result = against_baseline(baseline.measurement, point.measurement, threshold=threshold)  # type: ignore[arg-type]
    result.saved = store_whole(open_store(store), Record(
        "compare", record.spec, {"baseline_run": run_id, **stored, "threshold": threshold}, here, result.to_dict(),
        "ok", f"now/run {run_id} {result.ratio:.3f} ({result.describe()})"))
    return result


def store_whole(db: ResultsStore | None, record: Record) -> Saved:
    """Store a finished run in one go; a failing database becomes `Saved.error`, not a crash
    (the caller still holds the result)."""
    recorder = RunRecorder(db, record)
    try:
        recorder.start()
    except Exception as e:  # noqa: BLE001  (a StoreError; the result must survive it)
        recorder.saved.error = str(e)
        return recorder.saved
    for i, p in enumerate(record.points):
        recorder.point(i, p)
    recorder.finish(record.status, record.summary, record.payload)
    return recorder.saved


@dataclass
class PeaksResult:
    devices: list[dict[str, Any]]
    peaks: list[Peak] = field(default_factory=list)
    saved: Saved | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"devices": self.devices, "peaks": [p.to_dict() for p in self.peaks]}


def peaks(threads: int = 1, matmul_size: int | None = None, *, store: Store = True,
          on_device: Callable[[str], None] | None = None) -> PeaksResult:
    """Every device's measured best matmul FLOP/s and copy bandwidth at this thread count,
    stored per device, dtype and thread count for the roofline."""
    db = open_store(store)
    others_cpu_percent(refresh=True)
    found = list_devices()
    result = PeaksResult(found)
    for d in found:
        result.peaks += measure_peaks(d["device"], threads=threads, matmul_size=matmul_size)
        if on_device:
            on_device(d["device"])
    env = environment(threads=threads)
    result.saved = store_whole(db, Record("devices", None, {"peak": True, "threads": threads,
                                                            "matmul_size": matmul_size},
                                          env, result.to_dict(), "ok", f"{len(result.peaks)} peaks"))
    if db is not None and result.saved.error is None:
        try:
            db.add_peaks(result.peaks, host=env["host"], run_id=result.saved.run_id)
        except Exception as e:  # noqa: BLE001  (a StoreError)
            result.saved.error = str(e)
    return result


def history(db: str | Path | None = None, *, command: str | None = None, spec: str | None = None,
            status: str | None = None, since: str | None = None, limit: int | None = 20) -> list[Record]:
    """Stored runs, newest first (the database is opened read-only). `since` takes ISO dates,
    'today', 'yesterday' and ages such as '1d'; a run whose process died shows as `killed`."""
    with ResultsStore(db, readonly=True) as s:
        return s.query(command=command, spec=spec, status=status, since=since, limit=limit)


def show(run_id: int, db: str | Path | None = None) -> Record:
    """One stored run, with its points (raw samples) if it has any."""
    with ResultsStore(db, readonly=True) as s:
        return s.get(run_id)


__all__ = ["bench", "bench_from_record", "compare", "history", "peaks", "show", "store_whole"]
