"""How fast will it be without running it, on this machine: `collect` measurements, `train` a
latency predictor on them, `evaluate` it on models and families it has not seen, and `predict`
a model's latency under each configuration without running it.

Predictors live under the results folder (`.fastslow/predictors/`, beside the results
database) unless told otherwise, and every trained one is recorded in the results database
with the machine it is for; `predict` without a predictor takes the newest one for this
machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fastslow.api.measure import Store, store_whole
from fastslow.env import environment, others_cpu_percent
from fastslow.errors import UserError, param_error
from fastslow.measure.bench import ModelSource
from fastslow.measure.stats import Measurement
from fastslow.measure.timer import TimerConfig
from fastslow.predict.baselines import costs_of
from fastslow.predict.capture import capture
from fastslow.predict.collect import RETAKES, CollectResult, CollectSettings, RecaptureResult, time_configs
from fastslow.predict.collect import collect as collect_into
from fastslow.predict.collect import recapture as recapture_into
from fastslow.predict.configs import Config, Runners, configs_for
from fastslow.predict.dataset import (
    FORMAT_VERSION,
    RECAPTURABLE,
    RECAPTURE_COMMAND,
    describe_machine,
    fingerprint,
    load_collection,
    machine,
    read_manifest,
)
from fastslow.predict.evaluate import (
    PARTS,
    check_jobs,
    leave_one_family_out,
    noise,
    score_methods,
    score_predictions,
    scores_by,
    split_models,
)
from fastslow.predict.metrics import scores
from fastslow.predict.predictor import (
    Predictor,
    PredictorConfig,
    fit,
    outside_sizes,
    predict_models,
    tile_graph_of,
    unseen_operators,
)
from fastslow.predict.reference import STEADY_TOLERANCE, describe_kind, fastest, group_kind, reference_off, relative
from fastslow.specs import InputSpec, ResolvedModel, parse_input
from fastslow.store.db import Record, ResultsStore, StoreError, default_db_path
from fastslow.store.recorder import Saved, open_store

TRAIN = "predictor train"
# What a first predictor costs here, for the message that says there is none: a 20-minute
# collection and 3-4 minutes of training (236 s for the 128-wide network on 176 models of a
# 30-minute collection, on a 2-core Intel Xeon).
FIRST_PREDICTOR = ("fastslow predictor collect --out predictor-data --minutes 20 && "
                   "fastslow predictor train predictor-data", 24)


def collect(out: str | Path, settings: CollectSettings | None = None, *, families: list[str] | None = None,
            per_family: int = 30, minutes: float | None = None, repeat_every: int = 10, retakes: int = RETAKES,
            store: Store = True, on_start: Callable[[int], None] | None = None,
            on_sample: Callable[[Any, int, int], None] | None = None) -> CollectResult:
    """Measure corpus models under their configurations into `out` (see fastslow.predict.collect)."""
    return collect_into(out, settings, families=families, per_family=per_family, minutes=minutes,
                        repeat_every=repeat_every, retakes=retakes, store=store, on_start=on_start,
                        on_sample=on_sample)


def recapture(data: str | Path, *, on_model: Callable[[str, int, int], None] | None = None) -> RecaptureResult:
    """Bring a collection of an earlier format up to this version's graph features without
    measuring again (see fastslow.predict.collect.recapture)."""
    return recapture_into(data, on_model=on_model)


def results_folder(db: str | Path | None = None) -> Path:
    return (Path(db) if db else default_db_path()).parent


@dataclass
class TrainRun:
    path: Path | None  # the predictor file (rank 0 only)
    predictor: Predictor
    held_out: dict[str, dict[str, Any]]  # method -> scores on the held-out models of seen families
    trained: int
    held: int
    seconds: float
    saved: Saved | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path) if self.path else None, "machine": self.predictor.machine,
                "fingerprint": fingerprint(self.predictor.machine), "models_trained": self.trained,
                "models_held_out": self.held, "labels": self.predictor.info.get("labels"), "held_out": self.held_out,
                "train_s": self.seconds, "epochs": len(self.predictor.info.get("history", []))}


def train(data: str | Path, out: str | Path | None = None, cfg: PredictorConfig | None = None, *,
          holdout: float = 0.2, device: str = "cpu", store: Store = True, db: str | Path | None = None,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> TrainRun:
    """Train the network and the two baselines on a collection, keeping `holdout` of each family's
    models out to score them on; write the predictor to `out` (default: a new folder under the
    results folder's predictors/) and record it in the results database. Under torchrun the
    network trains data-parallel and rank 0 writes."""
    cfg = cfg or PredictorConfig()
    if not 0 <= holdout < 1:
        raise param_error("holdout", f"must be in [0, 1) (got {holdout})")
    rank0 = int(os.environ.get("RANK", "0")) == 0
    database = open_store(store) if rank0 else None  # a database that cannot be written fails before training
    manifest, models = load_collection(data)
    train_models, held = split_models(models, holdout, cfg.seed)
    t0 = time.perf_counter()
    predictor, _ = fit(train_models, cfg, manifest["machine"], device=device, on_epoch=on_epoch)
    seconds = time.perf_counter() - t0
    scored = score_methods(predictor, held) if held and rank0 else {}  # only rank 0 reports them
    predictor.info.update(collection=str(Path(data).resolve()), format=manifest["format"],
                          settings=manifest["settings"], reference_s=manifest["reference_s"],
                          held_out=[m.name for m in held], holdout=holdout, config=asdict(cfg),
                          held_out_scores=scored, families=sorted({m.family for m in models}))
    run = TrainRun(None, predictor, scored, len(train_models), len(held), seconds)
    if not rank0:
        return run
    folder = Path(out) if out else _new_folder(results_folder(db if db else getattr(database, "path", None)))
    run.path = predictor.save(folder.resolve() / "predictor.pt")
    from fastslow.report.output import write_json

    payload = run.to_dict()
    write_json(str(folder / "metrics.json"), payload)
    summary = f"{len(train_models)} models trained, {len(held)} held out"
    if scored:
        summary += f"; held out within ±10%: {100 * scored['gnn']['within_10']:.0f}%"
    record = Record(TRAIN, str(data), {"config": asdict(cfg), "holdout": holdout, "device": device},
                    {**environment("cpu"), "machine": predictor.machine}, payload, "ok", summary)
    run.saved = store_whole(database, record)
    return run


def _new_folder(results: Path) -> Path:
    """predictors/TIME under the results folder, never one that exists."""
    base = results / "predictors" / datetime.now().strftime("%Y%m%d-%H%M%S")
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


_LOADED: dict[tuple[str, int, int], Predictor] = {}  # the last predictor loaded, by its file's path, time and size


def load_predictor(path: str | Path) -> Predictor:
    """A predictor whose graphs mean what this version's capture means: one trained on another
    format's features (or before predictors recorded theirs) is refused with what retrains it.
    The last one loaded is kept while its file is unchanged: a search loop calls `predict` for
    each candidate, and loading took a third of each call (26 ms of 75 ms for a small CNN)."""
    file = Predictor.file(path)
    try:
        st = file.stat()
        key = (str(file.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None  # not there: Predictor.load says so
    if key in _LOADED:
        return _LOADED[key]
    p = Predictor.load(path)
    trained = p.info.get("format")
    if trained != FORMAT_VERSION:
        made = f"format {trained}" if trained else "an earlier format"
        raise UserError(f"predictor {path} was trained on a collection of {made}, and this version of fastslow "
                        f"writes format {FORMAT_VERSION}, whose features or times it never saw: "
                        f"{_retrain(p.info.get('collection'))}")
    _LOADED.clear()
    if key is not None:
        _LOADED[key] = p
    return p


def _retrain(collection: str | None) -> str:
    """What trains a predictor of an earlier format again, by what its collection is now: train
    on it (already brought up to date), recapture it first, or collect again."""
    manifest = read_manifest(Path(collection)) if collection else None
    now = manifest.get("format") if manifest else None
    if now == FORMAT_VERSION:
        return f"train it again (`fastslow predictor train {collection}`)"
    if now in RECAPTURABLE:
        return (f"train it again (`fastslow {RECAPTURE_COMMAND} {collection}`, then "
                f"`fastslow predictor train {collection}`)")
    where = (f"collection {collection} is of format {now}" if manifest else
             f"collection {collection} is not there" if collection else "its collection is not recorded")
    return ("collect again and train on that (`fastslow predictor collect --out DIR`, then `fastslow predictor "
            f"train DIR`; {where}, which this version cannot bring up to date)")


def find_predictor(db: str | Path | None = None) -> Path:
    """The newest predictor trained for this machine, from the results database's records."""
    here = machine()
    path = Path(db) if db else default_db_path()
    command, minutes = FIRST_PREDICTOR
    missing = (f"no latency predictor has been trained for this machine ({describe_machine(here)}) in {path}: make "
               f"one with `{command}` (about {minutes} minutes on 2 cores), or give --predictor")
    try:
        with ResultsStore(path, readonly=True) as store:
            runs = store.query(command=TRAIN, status="ok", limit=None)
    except StoreError:
        if not path.is_file():
            raise UserError(missing) from None
        raise
    for r in runs:
        file = Path(r.payload.get("path") or "")
        if r.payload.get("fingerprint") == fingerprint(here) and file.is_file():
            return file
    raise UserError(missing)


@dataclass
class PredictResult:
    model: str
    machine: dict[str, Any]
    predictor: str
    predictions: list[tuple[Config, float]]  # (configuration, predicted seconds per call)
    measured: list[tuple[Config, float]] | None = None  # --verify: at the predictor's speed (see below)
    timed: list[tuple[Config, float]] | None = None  # --verify: as timed
    speed: float | None = None  # --verify: the speed reference's time now over the predictor's (2: twice as slow)
    retaken: list[str] = field(default_factory=list)  # --verify: group kinds timed again, whose second take was kept
    warnings: list[str] = field(default_factory=list)
    capture_s: float = 0.0
    predict_s: float = 0.0  # the prediction itself, once the graph is captured
    input_shape: tuple[int, ...] = ()
    held_out: dict[str, Any] | None = None  # the network's scores on the predictor's held-out models
    saved: Saved | None = field(default=None, repr=False)

    @property
    def best(self) -> tuple[Config, float]:
        """The configuration predicted fastest per item (the fastest call, at one batch size)."""
        return min(self.predictions, key=lambda p: p[1] / p[0].batch)

    def verification(self) -> dict[str, Any] | None:
        """With --verify: the predictions scored against the measurements (see fastslow.predict.metrics)."""
        if not self.measured:
            return None
        measured = dict(self.measured)
        kept = [(c, t) for c, t in self.predictions if c in measured]
        return scores([np.asarray([t for _, t in kept])], [np.asarray([measured[c] for c, _ in kept])],
                      [[c for c, _ in kept]])

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"model": self.model, "machine": self.machine, "predictor": self.predictor,
                "input_shape": list(self.input_shape),
                "predictions": [{"config": c.to_dict(), "latency_s": t} for c, t in self.predictions],
                "best": {"config": best[0].to_dict(), "latency_s": best[1]},
                "measured": None if self.measured is None else [
                    {"config": c.to_dict(), "latency_s": t, "timed_s": raw}
                    for (c, t), (_, raw) in zip(self.measured, self.timed or [], strict=True)],
                "speed": self.speed, "retaken": self.retaken,
                "verification": self.verification(), "held_out": self.held_out, "warnings": self.warnings,
                "capture_s": self.capture_s, "predict_s": self.predict_s}


def _source(source: str | ModelSource | nn.Module, inputs: list[str] | None) -> ModelSource | ResolvedModel:
    """What `predict` was given: a spec or ModelSource (resolved later, once the predictor is
    found), or a module built in Python (a search loop's candidate), named by its class."""
    if isinstance(source, nn.Module):
        if not inputs:
            raise param_error("inputs", f"a model given as a module ({type(source).__name__}) needs its input's "
                                        "shape, such as inputs=['1x3x32x32']")
        return ResolvedModel(f"module:{type(source).__name__}", source, [parse_input(t) for t in inputs])
    if isinstance(source, ModelSource):
        if inputs:
            raise param_error("inputs", "give them in the ModelSource, not beside it")
        return source
    return ModelSource(source, inputs=list(inputs or []))


def predict(source: str | ModelSource | nn.Module, *, inputs: list[str] | None = None,
            predictor: str | Path | None = None, batches: list[int] | None = None,
            threads: list[int] | None = None, runtimes: list[str] | None = None, verify: bool = False,
            store: Store = True, db: str | Path | None = None) -> PredictResult:
    """Predicted seconds per call of a model under each configuration that applies to it, without
    running it; with `verify`, each is also measured (as the collection measures). The model is a
    spec (`inputs` as on the command line, else its defaults), a ModelSource, or an nn.Module with
    `inputs`, such as a search loop's candidate (predicted in eval mode, and left in the mode it
    came in). The batch is the input's first dimension (`batches` lists others to rank)."""
    given = _source(source, inputs)
    path = Path(predictor) if predictor else find_predictor(db)
    p = load_predictor(path)
    database = open_store(store)
    if isinstance(given, ModelSource):
        resolved, specs = given.resolve()
        described = given.to_dict()
    else:
        resolved, specs = given, given.inputs
        described = {"spec": given.spec, "inputs": [s.text for s in specs]}
    training = resolved.model.training
    try:
        return _predict(given.spec, described, resolved, specs, p, path, batches, threads, runtimes, verify,
                        database)
    finally:
        resolved.model.train(training)


def _predict(name: str, described: dict[str, Any], resolved: ResolvedModel, inputs: list[InputSpec], p: Predictor,
             path: Path, batches: list[int] | None, threads: list[int] | None, runtimes: list[str] | None,
             verify: bool, database: ResultsStore | None) -> PredictResult:
    """`predict` once the model and the predictor are in hand (`name` and `described` are what
    its result and run record call the model)."""
    if len(inputs) != 1:
        raise param_error("inputs", f"a latency prediction takes a model with one input (got {len(inputs)})")
    shape = inputs[0].shape(resolved.defaults)
    if not inputs[0].dtype.is_floating_point or len(shape) < 2:
        raise param_error("inputs", f"'{inputs[0].text}': a latency prediction takes one float input with a "
                                    "batch dimension first")
    settings = CollectSettings.from_dict(p.info["settings"])
    for b in batches or []:
        if b < 1:
            raise param_error("batches", f"must be >= 1 (got {b})")
    for t in threads or []:
        if t < 1:
            raise param_error("threads", f"must be >= 1 (got {t})")
    for r in runtimes or []:
        Config(runtime=r)  # an unknown runtime is refused by name
    here = machine()
    warnings = []
    if fingerprint(here) != fingerprint(p.machine):
        warnings.append(f"predictor {path} was trained on {describe_machine(p.machine)}; this is "
                        f"{describe_machine(here)}: its predictions are for that machine")
    model, item_shape = resolved.model.eval(), tuple(shape[1:])
    configs = configs_for(model, item_shape, batches=tuple(batches or [shape[0]]),
                          threads=tuple(threads or settings.threads), runtimes=tuple(runtimes or settings.runtimes))
    outside = sorted({c.batch for c in configs if not min(settings.batches) <= c.batch <= max(settings.batches)}
                     | {c.threads for c in configs if c.threads not in settings.threads})
    if outside:
        warnings.append(f"the predictor was measured at batches {list(settings.batches)} and threads "
                        f"{list(settings.threads)}: {outside} lie outside them, so those predictions extrapolate")
    t0 = time.perf_counter()
    graph = capture(model, (torch.zeros(1, *item_shape),), name=name)
    capture_s = time.perf_counter() - t0
    unseen = unseen_operators(p.info["operators"], graph)
    if unseen:
        listed = ", ".join(f"{op} ({n} node{'s' if n > 1 else ''})" for op, n in sorted(unseen.items()))
        warnings.append(f"the predictor was never trained on some of this model's operators: {listed}; what it "
                        "predicts for them is a guess, so expect large errors (collect models that have them, "
                        "or check with --verify)")
    costs = costs_of(graph)
    larger = outside_sizes(p.info["size_range"], costs)
    if larger:
        warnings.append(f"this model is outside the sizes the predictor was trained on: {'; '.join(larger)}; its "
                        "predictions extrapolate, so expect larger errors (check them with --verify)")
    t0 = time.perf_counter()
    latency = p.predict([tile_graph_of(name, graph, configs)], [costs], [configs], ("gnn",))["gnn"][0]
    predict_s = time.perf_counter() - t0
    result = PredictResult(name, here, str(path), list(zip(configs, map(float, latency), strict=True)),
                           warnings=warnings, capture_s=capture_s, predict_s=predict_s, input_shape=tuple(shape),
                           held_out=(p.info.get("held_out_scores") or {}).get("gnn"))
    if verify:
        others_cpu_percent(refresh=True)
        runners = Runners(model, item_shape)
        failures: list[str] = []

        def failed(stage: str, e: BaseException, c: Config | None) -> None:
            failures.append(f"{c.describe() if c else 'a group'}: {stage} failed ({e})")

        # Each measurement comes with the speed reference timed beside it: taken at the predictor's
        # speed, it is comparable with what the predictor learned (fastslow.predict.reference).
        nominal = p.info.get("reference_s") or {}
        try:
            timed = time_configs(runners, configs, settings.timer(), on_failure=failed)
            done = [c for c in configs if c in timed]
            referred = all(group_kind(c) in nominal for c in done)
            twice: list[str] = []
            if referred:
                twice, result.retaken = _retake_disturbed(runners, done, timed, nominal, settings.timer(), failed)
        finally:
            runners.close()
        result.timed = [(c, fastest(timed[c].samples_s)) for c in done]  # as a collection takes it
        if referred:
            result.measured = [(c, relative(timed[c], timed[c].extra["reference_samples_s"]) * nominal[group_kind(c)])
                               for c in done]
            speeds = _speeds(done, timed, nominal)
            result.speed = float(np.median(speeds))
            result.warnings += _disturbed_groups(done, speeds, twice)
        else:  # a configuration kind the collection never timed: no speed to refer it to
            result.measured = list(result.timed)
        result.warnings += failures
    env = {**environment("cpu", max(c.threads for c in configs), timed=verify), "machine": here}
    record = Record("predict", name, {**described, "predictor": str(path), "verify": verify,
                                      "configs": [c.to_dict() for c in configs]}, env, result.to_dict(), "ok",
                    f"best {result.best[0].describe()}: {result.best[1] * 1e3:.3g} ms predicted")
    result.saved = store_whole(database, record)
    return result


@dataclass
class EvalRun:
    predictor: str
    held_out: dict[str, dict[str, Any]]  # method -> scores on the held-out models of seen families
    families: dict[str, Any]  # leave one family out: {"families": {family: {method: scores}}, "pooled": {...}}
    noise: dict[str, Any]
    seconds: float
    # held-out scores per value of each configuration part (evaluate.PARTS): part -> value -> method -> scores
    by_part: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    saved: Saved | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"predictor": self.predictor, "held_out_models": self.held_out,
                **{f"held_out_models_by_{part}": by for part, by in self.by_part.items()},
                "held_out_families": self.families,
                "noise_floor": self.noise, "seconds": self.seconds}


def evaluate(run: str | Path, *, data: str | Path | None = None, families: list[str] | None = None,
             leave_family_out: bool = True, device: str = "cpu", jobs: int = 1, store: Store = True,
             on_fold: Callable[[str, int, int], None] | None = None) -> EvalRun:
    """Score a predictor on its held-out models, retrain it once per family with that family left
    out and score it there (`jobs` folds at a time, see `leave_one_family_out`), and read the
    collection's noise floor; the network and both baselines side by side."""
    check_jobs(jobs)  # before anything is loaded
    p = load_predictor(run)
    database = open_store(store)
    collection = Path(data or p.info["collection"])
    manifest, models = load_collection(collection)
    known = sorted({m.family for m in models})
    for f in families or []:
        if f not in known:
            raise param_error("families", f"value '{f}' is not in collection {collection} (families: "
                                          f"{', '.join(known)})")
    t0 = time.perf_counter()
    held = [m for m in models if m.name in set(p.info.get("held_out", []))]
    predicted = predict_models(p, held) if held else {}  # once, for the scores overall and per part
    held_scores = score_predictions(predicted, held)
    lofo: dict[str, Any] = {"families": {}, "pooled": {}, "unseen_operators": {}}
    # a predictor trained before reference_tolerance existed was trained on every label
    cfg = PredictorConfig(**{"reference_tolerance": 0.0, **p.info["config"]})
    if leave_family_out:
        lofo = leave_one_family_out(models, cfg, p.machine, families=families, device=device, jobs=jobs,
                                    on_fold=on_fold)
    floor = noise(collection, models, manifest["reference_s"], steady_within=cfg.reference_tolerance)
    result = EvalRun(str(run), held_scores, lofo, floor, time.perf_counter() - t0,
                     {part: scores_by(predicted, held, part) for part in PARTS})
    record = Record("predictor eval", str(run), {"data": str(collection), "families": families,
                                                 "leave_family_out": leave_family_out, "jobs": jobs},
                    {**environment("cpu"), "machine": p.machine}, result.to_dict(), "ok",
                    _eval_summary(result))
    result.saved = store_whole(database, record)
    return result


def _speeds(configs: list[Config], timed: dict[Config, Measurement], nominal: dict[str, float]) -> list[float]:
    """How slow the machine ran beside each configuration: the speed reference's time beside it
    over its time in the predictor's collection (2: twice as slow)."""
    return [fastest(timed[c].extra["reference_samples_s"]) / nominal[group_kind(c)] for c in configs]


def _off(configs: list[Config], speeds: list[float]) -> dict[str, float]:
    """{group kind: the reference's time beside it over its median beside all} for the groups
    further off than STEADY_TOLERANCE: where a neighbour slowed that group by another factor than
    the reference. Measured against the other groups, not the collection's usual time, since a
    machine uniformly slower today is what the reference corrects for."""
    speed = float(np.median(speeds))
    ratios = {group_kind(c): s / speed for c, s in zip(configs, speeds, strict=True)}
    return {k: r for k, r in ratios.items() if reference_off(r, 1.0) > STEADY_TOLERANCE}


def _retake_disturbed(runners: Runners, configs: list[Config], timed: dict[Config, Measurement],
                      nominal: dict[str, float], timer: TimerConfig,
                      failed: Callable[[str, BaseException, Config | None], None]) -> tuple[list[str], list[str]]:
    """Time each disturbed group (`_off`) once more, at once, and keep whichever take's reference
    ran nearer the other groups' (the measurements that disagree least with the machine's speed
    now). `timed` is updated in place; returns the kinds timed again, and those whose second take
    was kept."""
    speeds = _speeds(configs, timed, nominal)
    disturbed = _off(configs, speeds)
    if not disturbed:
        return [], []
    again = time_configs(runners, [c for c in configs if group_kind(c) in disturbed], timer, on_failure=failed)
    speed = float(np.median(speeds))
    kept = []
    for kind, before in sorted(disturbed.items()):
        group = [c for c in configs if group_kind(c) == kind]
        if all(c in again for c in group) and (reference_off(_speeds(group[:1], again, nominal)[0], speed)
                                               < reference_off(before, 1.0)):
            timed.update({c: again[c] for c in group})
            kept.append(kind)
    return sorted(disturbed), kept


def _disturbed_groups(configs: list[Config], speeds: list[float], twice: list[str]) -> list[str]:
    """A warning for each group of configurations (`group_kind`) beside which the speed reference
    (its time over the predictor's, `speeds`, one per configuration) still ran further than
    STEADY_TOLERANCE from where it ran beside the others (`_off`): a neighbour slowed that group,
    so its measurements are off by more than the predictor may be. `twice`: the kinds timed
    again (`_retake_disturbed`)."""
    return [f"while {describe_kind(k)} was timed{' (twice)' if k in twice else ''}, the speed reference ran "
            f"{ratio:.2f}x its time beside the other groups: a neighbour was disturbing the machine, so "
            "those measurements are less sure than the others (run --verify again when the machine is quieter)"
            for k, ratio in sorted(_off(configs, speeds).items())]


def _eval_summary(r: EvalRun) -> str:
    parts = []
    if r.held_out:
        parts.append(f"held-out models within ±10%: {100 * r.held_out['gnn']['within_10']:.0f}%")
    pooled = r.families.get("pooled") or {}
    if pooled:
        parts.append(f"held-out families within ±20%: {100 * pooled['gnn']['within_20']:.0f}%")
    return "; ".join(parts) or "nothing to score"



@dataclass
class DemoPredictor:
    """The demo's short run: what was collected, the predictor's held-out scores, one prediction."""

    collected: CollectResult
    trained: TrainRun
    prediction: PredictResult
    plot: Path


# The demo's collection: four families, a few models each, two batch sizes, eager and int8 (an
# ONNX export costs seconds per model), on the demo's one thread: about a minute.
DEMO_FAMILIES = ["cnn-plain", "cnn-se", "mlp", "transformer"]


def demo_predictor(out: Path, *, per_family: int = 4, threads: int = 1, store: Store = True,
                   db: str | Path | None = None, say: Callable[[str], None] = lambda s: None) -> DemoPredictor:
    """A short collection, training and prediction (with --verify) for the demo report, and a
    predicted-against-measured plot of the held-out models and the predicted model."""
    from fastslow.predict.dataset import load_collection
    from fastslow.report.plots import plot_predicted_vs_measured

    settings = CollectSettings(batches=(1, 4), threads=(threads,), runtimes=("eager", "int8-dynamic"),
                               budget_s=0.05, min_samples=5)
    collected = collect(out / "predictor-data", settings, families=DEMO_FAMILIES, per_family=per_family,
                        minutes=1.0, repeat_every=4, store=store)
    say(f"    collected: {collected.summary()}")
    trained = train(out / "predictor-data", out / "predictor",
                    PredictorConfig(hidden=32, layers=2, epochs=60, minutes=0.3), holdout=0.25, store=store, db=db)
    _, models = load_collection(out / "predictor-data")
    held = [m for m in models if m.name in set(trained.predictor.info["held_out"])]
    predicted = predict_models(trained.predictor, held) if held else {}
    prediction = predict("zoo:convnet", predictor=trained.path, verify=True, store=store, db=db)
    from fastslow.report.tables import PREDICTOR_METHODS

    series = {f"{PREDICTOR_METHODS[name]}, held-out models": ([float(v) for m in held for v in m.latency_s],
                                                              [float(v) for p in predicted[name] for v in p])
              for name in predicted}
    measured = dict(prediction.measured or [])
    series["graph network, zoo:convnet"] = ([measured[c] for c, _ in prediction.predictions if c in measured],
                                            [t for c, t in prediction.predictions if c in measured])
    plot = plot_predicted_vs_measured(out / "predictor.png", series, "latency predictor: predicted against measured")
    return DemoPredictor(collected, trained, prediction, plot)
