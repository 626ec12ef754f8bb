"""Collecting a latency data set on this machine: corpus models captured as operator graphs and
timed under each of their configurations with fastslow's own timer.

Per model: build it (seeded), capture its graph at batch 1, then time its configurations. They
are timed in groups that share a thread pool (torch at 1 thread, ONNX Runtime at 1 thread,
torch at 2, ...), the configurations of a group interleaved block by block so that drift hits
them alike, and no group's spinning threads steal another's cores. Each measurement has the
per-measurement budget (`budget_s`) and at least `min_samples` samples.

Nothing measured is lost: every measurement is written as it finishes, with its raw samples,
to the collection's own database (DIR/measurements.db) and to the results database; a model's
npz file is written once all its configurations are timed. A second run continues where the
first stopped (models with a file, or recorded as failed, are not measured again). Ctrl-C and
SIGTERM keep everything finished. A model that cannot be built, captured, exported or run is
recorded with its error and skipped. Every `repeat_every` models, one measured earlier is
timed again, later: the noise floor (how often two measurements of the same thing agree). A
group of configurations timed while a neighbour disturbed the machine (the speed reference
beside it more than 10% off its usual time, `fastslow.predict.reference`) is timed again
`RETAKE_AFTER` models later, up to `retakes` times, and what is then timed steadily replaces it
in the model's file (the last models' at the end of the run, even past its time budget, which
is for starting new models; Ctrl-C leaves the first takes).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow.env import environment, others_cpu_percent
from fastslow.errors import (
    Terminated,
    UserError,
    check_number,
    full_reason,
    param_error,
    raise_dropped_stop,
    stop_taken,
)
from fastslow.measure.bench import Point
from fastslow.measure.stats import Measurement
from fastslow.measure.timer import TimerConfig, Workload, measure_interleaved
from fastslow.predict.capture import OpGraph, capture
from fastslow.predict.configs import BATCHES, RUNTIMES, THREADS, Config, Runners, configs_for
from fastslow.predict.corpus import Sample, available_families, corpus
from fastslow.predict.dataset import (
    COLLECT_COMMAND,
    FORMAT_VERSION,
    MANIFEST,
    MEASUREMENTS,
    RECAPTURABLE,
    RECAPTURE_COMMAND,
    describe_machine,
    fingerprint,
    graph_arrays,
    graph_meta,
    labelled,
    machine,
    npz_path,
    read_manifest,
    read_model_file,
    save_arrays,
    stored_measurements,
    stored_reference_times,
    time_arrays,
    write_model,
)
from fastslow.predict.reference import SpeedWatch, fastest, group_kind, reference_threads, reference_workload
from fastslow.store.db import Record, ResultsStore
from fastslow.store.recorder import RunRecorder, Saved, open_store


@dataclass(frozen=True)
class CollectSettings:
    """What is measured and how: these must stay the same for a collection to be continued."""

    batches: tuple[int, ...] = BATCHES
    threads: tuple[int, ...] = THREADS
    runtimes: tuple[str, ...] = RUNTIMES
    # Timing budget of one measurement, all of it spent (a label is the fastest block, so a
    # precise median is no reason to stop early). 0.05 rather than 0.15 (format 11 and before): on
    # the 30-minute format-11 collection of a 2-core AMD EPYC (648 repeated measurements), labels
    # taken from the first third of each measurement's blocks agreed with their repeats within
    # ±10% as often as labels from all of them (88.1% against 88.0%; a fifth: 85.8%), and the
    # minutes saved measure more models, which is what the network learns from.
    budget_s: float = 0.05
    min_samples: int = 5

    def __post_init__(self) -> None:
        for name in ("batches", "threads"):
            values = getattr(self, name)
            if not values or any(v < 1 for v in values) or len(set(values)) != len(values):
                raise param_error(name, f"must be distinct integers >= 1 (got {', '.join(map(str, values))})")
        if not self.runtimes:
            raise param_error("runtimes", "must name at least one runtime")
        for r in self.runtimes:
            Config(runtime=r)
        check_number("budget_s", self.budget_s)
        if self.min_samples < 1:
            raise param_error("min_samples", f"must be >= 1 (got {self.min_samples})")

    def timer(self) -> TimerConfig:
        # block_warmup_calls, the default, named because format 8 depends on it: without it the
        # speed reference's blocks would start on the caches the model beside it filled
        # (fastslow.predict.reference). min_time_s = max_time_s: the timer's precision target never
        # ends a measurement early (see budget_s).
        return TimerConfig(warmup_s=0.02, warmup_calls=2, min_time_s=self.budget_s, max_time_s=self.budget_s,
                           min_samples=self.min_samples, point_cap_s=max(60.0, self.budget_s), block_warmup_calls=1)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollectSettings:
        return cls(tuple(d["batches"]), tuple(d["threads"]), tuple(d["runtimes"]), float(d["budget_s"]),
                   int(d["min_samples"]))


@dataclass
class SampleResult:
    """One model of this run: how many configurations it measured, or the error that stopped it."""

    name: str
    family: str
    seconds: float
    configs: int = 0
    error: str | None = None
    repeat: bool = False
    capture_s: float = 0.0  # of `seconds`: capturing the graph (none for a repeat)
    export_s: float = 0.0  # of `seconds`: exporting the model for ONNX Runtime
    # kinds of group timed while the machine was disturbed (`_Collector.disturbed`): a model's are
    # timed again a few models later
    disturbed: list[str] = field(default_factory=list)
    retake: bool = False  # this is such a later take of a model's disturbed groups ...
    kept: int = 0  # ... and this many of its measurements, timed steadily, replaced those in the file


@dataclass
class CollectResult:
    out: Path
    machine: dict[str, Any]
    planned: int  # models of the corpus not yet in the collection when this run started
    samples: list[SampleResult] = field(default_factory=list)
    seconds: float = 0.0
    stopped_by_budget: bool = False
    interrupted: bool = False
    stop_signal: str | None = None  # "SIGINT" or "SIGTERM" when interrupted
    total_models: int = 0  # in the collection after this run
    saved: Saved | None = None
    collection_run: int | None = None
    per_family: int | None = None  # what the run planned per family ...
    budget_s: float | None = None  # ... and the time it was given (None: no limit)

    @property
    def measured(self) -> int:
        """Measurements taken by this run (configurations timed, repeats included)."""
        return sum(s.configs for s in self.samples)

    @property
    def left(self) -> int:
        return self.planned - len(self.new)

    @property
    def new(self) -> list[SampleResult]:
        """The models this run measured for the first time (not repeats, not later takes)."""
        return [s for s in self.samples if not (s.repeat or s.retake)]

    def time_spent(self) -> dict[str, float]:
        """Seconds of this run spent capturing graphs, exporting models for ONNX Runtime, timing
        disturbed groups again (all of a later take), and on the rest (building models, timing
        them): what a collection's minutes buy. In a 30-minute collection on a busy 2-core AMD
        EPYC with the default settings (223 models), 27% went to exporting (33% while each export
        built torch.onnx's translation table anew, see fastslow.optimize.runtime.onnx_export), 2%
        to capturing and 10% to timing disturbed groups again."""
        capture = sum(s.capture_s for s in self.samples)
        export = sum(s.export_s for s in self.samples)
        retake = sum(s.seconds for s in self.samples if s.retake)
        return {"capture_s": capture, "export_s": export, "retake_s": retake,
                "rest_s": max(self.seconds - capture - export - retake, 0.0)}

    def summary(self) -> str:
        new = self.new
        failed = sum(1 for s in new if s.error)
        text = (f"{len(new) - failed} models measured ({self.measured} measurements), {failed} failed, "
                f"in {self.seconds / 60:.1f} min")
        spent = self.time_spent()
        parts = [f"{100 * spent[key] / self.seconds:.0f}% {what}" for key, what in
                 (("export_s", "exporting to ONNX"), ("capture_s", "capturing graphs"),
                  ("retake_s", "timing disturbed groups again")) if spent[key] and self.seconds]
        if parts:
            text += f" ({', '.join(parts)})"
        retaken = [s for s in self.samples if s.retake]
        if retaken:
            text += (f"; {sum(s.configs for s in retaken)} measurements taken while the machine was disturbed timed "
                     f"again, {sum(s.kept for s in retaken)} of them steadily")
        if self.left:
            text += f"; {self.left} left for the next run" + (" (time budget)" if self.stopped_by_budget else "")
        elif self.unused_s > 60:
            text += (f"; every model planned ({self.per_family} per family) is measured, {self.unused_s / 60:.0f} min "
                     "before the time budget ran out: plan more per family to use it")
        return text

    @property
    def unused_s(self) -> float:
        """Seconds of the time budget left when the run ran out of models to measure (0 where it
        had no budget, stopped for it, or was interrupted)."""
        if self.budget_s is None or self.left or self.interrupted:
            return 0.0
        return max(self.budget_s - self.seconds, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "machine": self.machine, "planned": self.planned, "left": self.left,
                "measurements": self.measured, "seconds": self.seconds, "stopped_by_budget": self.stopped_by_budget,
                "interrupted": self.interrupted, "models_in_collection": self.total_models,
                "per_family": self.per_family, "unused_budget_s": self.unused_s,
                "time_spent": self.time_spent(), "samples": [asdict(s) for s in self.samples]}


def _groups(configs: list[Config]) -> list[list[Config]]:
    """Configurations that share a thread pool (`group_kind`: threads, torch or ONNX Runtime)."""
    keyed: dict[str, list[Config]] = {}
    for c in configs:
        keyed.setdefault(group_kind(c), []).append(c)
    return list(keyed.values())


def time_configs(runners: Runners, configs: list[Config], timer: TimerConfig, *,
                 on_failure: Callable[[str, BaseException, Config | None], None] | None = None,
                 on_measured: Callable[[Config, Measurement], None] | None = None) -> dict[Config, Measurement]:
    """Time one model's configurations, each group of a thread pool interleaved with the speed
    reference (see the module's docstring and fastslow.predict.reference); each measurement
    carries the reference's samples of the same rounds in `extra["reference_samples_s"]`. Each
    configuration is run once first: one that fails (`on_failure` gets the stage: "export" for an
    ONNX export, "run" for a configuration that will not run, "measure" for a group that failed
    while timed) is left out, and the rest are timed."""
    out: dict[Config, Measurement] = {}

    def failure(stage: str, e: BaseException, c: Config | None) -> None:
        if on_failure:
            on_failure(stage, e, c)

    for group in _groups(configs):
        workloads, timed = [], []
        for c in group:
            try:
                fn = runners(c)
                with torch.inference_mode():
                    fn()
            except Exception as e:  # noqa: BLE001  (an export that fails, an operator that will not run)
                stage = "export" if c.runtime == "onnx" and runners.export_s == 0.0 else "run"
                failure(stage, e, c)
                if stage == "export":
                    break
                continue
            workloads.append(Workload(fn, "cpu", c.threads, track_memory=False, label=c.describe()))
            timed.append(c)
        if not workloads:
            continue
        try:
            *measured, reference = measure_interleaved([*workloads, reference_workload(reference_threads(group[0]))],
                                                       timer)
        except Exception as e:  # noqa: BLE001  (out of memory, say)
            failure("measure", e, None)
            continue
        for c, m in zip(timed, measured, strict=True):
            m.extra["reference_samples_s"] = list(reference.samples_s)
            out[c] = m
            if on_measured:
                on_measured(c, m)
    return out


def _finished(db: ResultsStore) -> tuple[set[str], set[str]]:
    """Names recorded as failed as a whole, and names measured again (repeats), over every run so far."""
    failed, repeated = set(), set()
    for record in db.query(command=COLLECT_COMMAND, limit=None):
        for p in db.get(record.id).points:
            params = p.get("params", {})
            if params.get("stage") in ("build", "capture"):
                failed.add(params["sample"])
            elif params.get("repeat"):
                repeated.add(params["sample"])
    return failed, repeated


def capture_sample(s: Sample, model: torch.nn.Module) -> OpGraph:
    """A corpus model's graph as a collection stores it: captured at batch 1 (collect and
    recapture both capture through here, so that a recaptured file is what collecting gives)."""
    return capture(model, (torch.randn(1, *s.input_shape),), name=s.name)


class _Collector:
    def __init__(self, out: Path, settings: CollectSettings, recorders: list[RunRecorder],
                 watch: SpeedWatch) -> None:
        self.out, self.settings, self.recorders, self.watch = out, settings, recorders, watch
        self.index = 0

    def record(self, point: Point) -> None:
        for r in self.recorders:
            r.point(self.index, point.to_record())
        self.index += 1

    def fail(self, s: Sample, stage: str, error: BaseException | str, t0: float, repeat: bool = False,
             config: Config | None = None, retake: bool = False) -> SampleResult:
        """Record what failed (the whole sample, or one configuration of it) with its reason."""
        reason = error if isinstance(error, str) else full_reason(error, 400)
        params = {"sample": s.name, "family": s.family, "stage": stage, "repeat": int(repeat),
                  **({"retake": 1} if retake else {}), **(config.to_dict() if config else {})}
        self.record(Point(params, error=f"{stage}: {reason}"))
        return SampleResult(s.name, s.family, time.perf_counter() - t0, error=f"{stage}: {reason}", repeat=repeat,
                            retake=retake)

    def disturbed(self, timed: dict[Config, Measurement]) -> list[str]:
        """The kinds of group (`group_kind`) timed while the speed reference ran further than the
        watch's tolerance from its usual time; every group's reference is noted on the way."""
        references = {group_kind(c): fastest(m.extra["reference_samples_s"]) for c, m in timed.items()}
        out = []
        for kind, reference_s in references.items():
            off = self.watch.off(kind, reference_s)
            self.watch.note(kind, reference_s)
            if off is not None and off > self.watch.tolerance:
                out.append(kind)
        return out

    def measure(self, s: Sample, *, repeat: bool = False) -> SampleResult:
        t0 = time.perf_counter()
        try:
            torch.manual_seed(s.seed)
            model = s.build().eval()
        except Exception as e:  # noqa: BLE001  (a sample that cannot be built is recorded and skipped)
            return self.fail(s, "build", e, t0, repeat)
        graph, capture_s = None, 0.0
        if not repeat:
            t_capture = time.perf_counter()
            try:
                graph = capture_sample(s, model)
            except Exception as e:  # noqa: BLE001
                return self.fail(s, "capture", str(e) if isinstance(e, UserError) else e, t0)
            capture_s = time.perf_counter() - t_capture
        configs = configs_for(model, s.input_shape, batches=self.settings.batches, threads=self.settings.threads,
                              runtimes=self.settings.runtimes)

        def failed(stage: str, error: BaseException, config: Config | None) -> None:
            self.fail(s, stage, error, t0, repeat, config)

        def measured(c: Config, m: Measurement) -> None:
            self.record(Point({"sample": s.name, "family": s.family, **c.to_dict(), "repeat": int(repeat)}, m, c.batch))

        runners = Runners(model, s.input_shape, seed=s.seed)
        try:
            timed = time_configs(runners, configs, self.settings.timer(), on_failure=failed, on_measured=measured)
        finally:
            runners.close()
        result = SampleResult(s.name, s.family, time.perf_counter() - t0, len(timed), repeat=repeat,
                              capture_s=capture_s, export_s=runners.export_s, disturbed=self.disturbed(timed))
        if not timed:
            return self.fail(s, "measure", "no configuration could be measured", t0, repeat)
        if graph is not None:
            kept = [c for c in configs if c in timed]
            meta = {**s.to_dict(), "export_s": runners.export_s, "onnx_exporter": runners.exporter}
            write_model(self.out, graph, meta, kept, [timed[c] for c in kept])
        return result

    def retake(self, s: Sample, kinds: list[str]) -> SampleResult:
        """Time again the groups of a model's file that were timed while the machine was disturbed,
        and write into the file those now timed steadily. Every measurement goes to the databases;
        one that is not kept says so (`kept` 0), so that the file's are always the last kept ones
        (`labelled`)."""
        t0 = time.perf_counter()
        path = npz_path(self.out, s.name)
        try:
            arrays, _, stored = read_model_file(path)
            torch.manual_seed(s.seed)
            model = s.build().eval()
        except Exception as e:  # noqa: BLE001  (the file or the model is gone: what was measured stays)
            return self.fail(s, "retake", e, t0, retake=True)
        todo = [c for c in stored if group_kind(c) in kinds]
        runners = Runners(model, s.input_shape, seed=s.seed)
        try:
            timed = time_configs(runners, todo, self.settings.timer(),
                                 on_failure=lambda stage, e, c: self.fail(s, stage, e, t0, config=c, retake=True))
        finally:
            runners.close()
        still = self.disturbed(timed)
        kept = [c for c in todo if c in timed and group_kind(c) not in still]
        for c in todo:
            if c in timed:
                self.record(Point({"sample": s.name, "family": s.family, **c.to_dict(), "repeat": 0, "retake": 1,
                                   "kept": int(c in kept)}, timed[c], c.batch))
        if kept:
            rows = [stored.index(c) for c in kept]
            for key, values in time_arrays(kept, [timed[c] for c in kept]).items():
                arrays[key][rows] = values
            save_arrays(path, arrays)
        return SampleResult(s.name, s.family, time.perf_counter() - t0, len(timed), retake=True, kept=len(kept),
                            disturbed=still)


def _check_manifest(out: Path, here: dict[str, Any], settings: CollectSettings) -> None:
    """A collection is continued only on the machine and with the settings it was started with."""
    manifest = read_manifest(out)
    if manifest is None:
        return
    if manifest.get("format") != FORMAT_VERSION:
        raise UserError(f"collection {out} was measured by another version of fastslow (format "
                        f"{manifest.get('format')}; this one writes {FORMAT_VERSION}), so it cannot be continued: "
                        "collect into another --out")
    if fingerprint(manifest["machine"]) != fingerprint(here):
        raise UserError(f"collection {out} was measured on {describe_machine(manifest['machine'])}; this is "
                        f"{describe_machine(here)}: a predictor is for one machine, so collect into another --out")
    before = CollectSettings.from_dict(manifest["settings"]).to_dict()
    for key, value in settings.to_dict().items():
        if before[key] != value:
            raise param_error(key, f"is {value} here but {before[key]} in collection {out}: a collection is "
                                   "continued with the settings it was started with (or collect into another --out)")


def one_process(command: str) -> None:
    """Refuse to run under torchrun, where each process would measure the same models at once."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError(f"`{command}` runs in one process (its timings would share the cores with the others): "
                        "run it without torchrun")


# How many times a group timed while the machine was disturbed is timed again, by default, and
# after how many more models. On a busy 2-core AMD EPYC, where the speed reference beside torch's
# two threads ran more than 10% off its usual time for 21-35% of the groups, the group of that
# kind timed next was steady 50-62% of the time, five to twenty models later 58-82% (three
# collections, in the order the groups were timed); timed again at once, 6 of 27 such groups
# (the neighbour was still there). Timed again five models later, 117 of 165 measurements were
# steady; of those still disturbed, timed a second time, 6 of 48, so once is the default.
RETAKES = 1
RETAKE_AFTER = 5

LOCK = ".writing"  # held by the one process that writes into a collection folder


@contextlib.contextmanager
def sole_writer(out: Path, command: str) -> Iterator[None]:
    """Hold the collection folder's lock while `command` writes into it. A second writer is
    refused: two collections into one folder would time the same models twice, on cores the
    other is using."""
    with open(out / LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise UserError(f"collection {out}: {f.read().strip() or 'another process'} is writing into it; "
                            "wait for it to end or stop it") from None
        f.seek(0)
        f.truncate()
        f.write(f"`{command}` (pid {os.getpid()})")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def collect(
    out: str | Path,
    settings: CollectSettings | None = None,
    *,
    families: list[str] | None = None,
    per_family: int = 30,
    minutes: float | None = None,
    repeat_every: int = 10,
    retakes: int = RETAKES,
    store: ResultsStore | str | Path | bool | None = True,
    on_start: Callable[[int], None] | None = None,
    on_sample: Callable[[SampleResult, int, int], None] | None = None,
) -> CollectResult:
    """Measure `per_family` models of each family (all that can be built here by default) into
    `out`, continuing what is there; stop starting models after `minutes`. Returns what this run
    measured (also when Ctrl-C or SIGTERM stopped it: then `interrupted` is set); `store` is the
    results database the measurements also go to."""
    one_process(COLLECT_COMMAND)
    settings = settings or CollectSettings()
    known = available_families()
    families = list(families or known)
    for f in families:
        if f not in known:
            raise param_error("families", f"value '{f}' cannot be collected here (available: {', '.join(known)})")
    if per_family < 1:
        raise param_error("per_family", f"must be >= 1 (got {per_family})")
    if minutes is not None:
        check_number("minutes", minutes)
    if repeat_every < 0:
        raise param_error("repeat_every", f"must be >= 0 (got {repeat_every})")
    if retakes < 0:
        raise param_error("retakes", f"must be >= 0 (got {retakes})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise param_error("out", f"{out} is a file, not a folder")
    here = machine()
    _check_manifest(out, here, settings)
    out.mkdir(parents=True, exist_ok=True)
    with sole_writer(out, COLLECT_COMMAND):
        own = ResultsStore(out / MEASUREMENTS)  # before anything is measured: both databases must take writes
        results = open_store(store)
        if results is not None and results.path.resolve() == own.path.resolve():
            results = None
        (out / MANIFEST).write_text(json.dumps({"format": FORMAT_VERSION, "machine": here,
                                                "settings": settings.to_dict()}, indent=2))
        failed, repeated = _finished(own)
        plan = [s for s in corpus(per_family, families)
                if s.name not in failed and not npz_path(out, s.name).is_file()]
        others_cpu_percent(refresh=True)
        env = {**environment("cpu", max(settings.threads)), "machine": here}
        record_settings = {"out": str(out.resolve()), "families": families, "per_family": per_family,
                           "minutes": minutes, "repeat_every": repeat_every, "retakes": retakes,
                           **settings.to_dict()}
        recorders = [RunRecorder(db, Record(COLLECT_COMMAND, str(out), record_settings, env, {}))
                     for db in (own, results) if db is not None]
        result = CollectResult(out, here, len(plan), per_family=per_family,
                               budget_s=None if minutes is None else minutes * 60)
        collector = _Collector(out, settings, recorders, SpeedWatch(stored_reference_times(out)))
        t0 = time.perf_counter()
        for r in recorders:
            r.start()
        if on_start:
            on_start(len(plan))
        status = "ok"
        try:
            done_names: list[Sample] = []
            pick = random.Random(0)
            per_model_s = 0.0
            later: list[tuple[int, Sample, list[str], int]] = []  # (due after model i, sample, kinds, takes so far)

            def retake_due(i: int) -> None:
                for due in [d for d in later if d[0] <= i]:
                    raise_dropped_stop()
                    later.remove(due)
                    _, s, kinds, takes = due
                    again = collector.retake(s, kinds)
                    result.samples.append(again)
                    if on_sample:
                        on_sample(again, i + 1, len(plan))
                    if again.disturbed and takes < retakes:
                        later.append((i + RETAKE_AFTER, s, again.disturbed, takes + 1))

            for i, s in enumerate(plan):
                raise_dropped_stop()  # a Ctrl-C that Python dropped stops here
                elapsed = time.perf_counter() - t0
                if minutes is not None and i and elapsed + per_model_s > minutes * 60:
                    result.stopped_by_budget = True
                    break
                one = collector.measure(s)
                result.samples.append(one)
                per_model_s = (time.perf_counter() - t0) / (i + 1)
                if on_sample:
                    on_sample(one, i + 1, len(plan))
                if one.error is None:
                    done_names.append(s)
                    if one.disturbed and retakes:
                        later.append((i + RETAKE_AFTER, s, one.disturbed, 1))
                retake_due(i)
                # The noise floor: now and then, a model measured a while ago is timed again (which one
                # is drawn, so that no family is always the one repeated).
                n = len(done_names)
                if repeat_every and n >= 2 and n % repeat_every == 0 and one.error is None:
                    earlier = done_names[-1 - pick.randrange(1, max(2, min(repeat_every, n)))]  # 1.. back
                    if earlier.name not in repeated:
                        again = collector.measure(earlier, repeat=True)
                        repeated.add(earlier.name)
                        result.samples.append(again)
            while later:  # the last models' disturbed groups (no new model: the time budget allows them)
                retake_due(min(d[0] for d in later))
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: everything finished is stored; say so and return it
            stop_taken()
            result.interrupted = True
            result.stop_signal = "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
            status = "interrupted"
        finally:
            result.seconds = time.perf_counter() - t0
            result.total_models = len(list((out / "npz").glob("*.npz"))) if (out / "npz").is_dir() else 0
            if status == "ok" and (result.left or any(s.error for s in result.samples)):
                status = "partial"
            for r in recorders:
                r.finish(status, result.summary(), result.to_dict())
            result.collection_run = recorders[0].saved.run_id
            result.saved = recorders[-1].saved if results is not None else None
            own.close()
        return result


@dataclass
class RecaptureResult:
    out: Path
    before: int  # the collection's format before
    models: int  # files captured again by this run
    seconds: float
    format: int = FORMAT_VERSION  # the collection's format now

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "format_before": self.before, "format": self.format, "models": self.models,
                "seconds": self.seconds}


def recapture(out: str | Path, *, on_model: Callable[[str, int, int], None] | None = None) -> RecaptureResult:
    """Capture every model of a collection again with this version's graph features, and take its
    times again from the samples its database stored, as this version takes them: each file's
    graph arrays, pair features and times are rewritten, and nothing is measured. Each model is
    rebuilt from the corpus (family, seed), which must still draw the same architecture. A file
    is rewritten whole or not at all, and the manifest's format changes last, so an interrupted
    run is continued by running it again."""
    from fastslow.predict.corpus import sample as corpus_sample

    one_process(RECAPTURE_COMMAND)
    out = Path(out)
    manifest = read_manifest(out) if out.is_dir() else None
    if manifest is None:
        raise UserError(f"collection {out}: no {MANIFEST} (not made by `fastslow predictor collect`)")
    before = manifest.get("format")
    if before != FORMAT_VERSION and before not in RECAPTURABLE:
        raise UserError(f"collection {out} is of format {before}: its measurements were taken differently, so it "
                        f"cannot be brought up to format {FORMAT_VERSION} (collect again into another --out)")
    with sole_writer(out, RECAPTURE_COMMAND):
        t0 = time.perf_counter()
        files = sorted((out / "npz").glob("*.npz"))
        measured: dict[tuple[str, Config], Measurement] | None = None
        done = 0
        for i, path in enumerate(files):
            try:
                arrays, meta, configs = read_model_file(path)
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise UserError(f"{path}: not a fastslow latency file ({full_reason(e, 200)})") from None
            if meta.get("format") == FORMAT_VERSION:
                continue
            s = corpus_sample(meta["family"], int(meta["seed"]))
            if json.loads(json.dumps(s.params)) != meta["params"] or list(s.input_shape) != meta["input_shape"]:
                raise UserError(f"{path}: the corpus no longer draws the model that was measured ({meta['name']}): "
                                "collect again into another --out")
            if measured is None:  # oldest first, so each (model, configuration) keeps its last labelled
                # measurement: the one its file was written from
                measured = {(p["sample"], c): m for p, c, m in stored_measurements(out) if labelled(p)}
            missing = [c.describe() for c in configs if (meta["name"], c) not in measured]
            if missing:
                raise UserError(f"{path}: {out / MEASUREMENTS} holds no measurement of {meta['name']} at "
                                f"{', '.join(missing)}: collect again into another --out")
            torch.manual_seed(s.seed)
            graph = capture_sample(s, s.build().eval())
            arrays.update(graph_arrays(graph, configs))
            arrays.update(time_arrays(configs, [measured[(meta["name"], c)] for c in configs]))
            arrays["meta"] = np.asarray(json.dumps({**meta, **graph_meta(graph)}))
            save_arrays(path, arrays)
            done += 1
            if on_model:
                on_model(meta["name"], i + 1, len(files))
        if before != FORMAT_VERSION:
            (out / MANIFEST).write_text(json.dumps({**manifest, "format": FORMAT_VERSION}, indent=2))
        return RecaptureResult(out, before, done, time.perf_counter() - t0)
