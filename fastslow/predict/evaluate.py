"""Evaluating latency predictors the way they are used: on models they were not trained on.

* held-out models of seen families: a seeded share of each family's models (at least one of
  every family with two or more) is kept out of training; the predictor is scored on them, over
  every configuration and per runtime and thread count (beside each one's noise floor);
* held-out families: leave one family out: train on every other family, score on it; per
  family and pooled over all folds;
* the noise floor: models the collection measured twice (see `fastslow.predict.collect`): how
  often two measurements agree, and how well the second ranks configurations and models when
  taken as the prediction of the first (`ranking_floor`).

The network and both baselines are scored on the same models side by side.
"""

from __future__ import annotations

import math
import multiprocessing
import random
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from fastslow.errors import param_error
from fastslow.measure.stats import Measurement
from fastslow.predict.configs import Config
from fastslow.predict.dataset import ModelData, stored_measurements
from fastslow.predict.metrics import RANKING_KEYS, noise_floor, scores
from fastslow.predict.predictor import METHODS, Predictor, PredictorConfig, fit, operators, predict_models


def split_models(models: list[ModelData], holdout: float, seed: int = 0) -> tuple[list[ModelData], list[ModelData]]:
    """(train, held out): per family, round(holdout x its models) held out, at least one where a
    family has two or more models and `holdout` > 0, and one always left to train on; drawn with
    `seed`."""
    by_family: dict[str, list[ModelData]] = {}
    for m in models:
        by_family.setdefault(m.family, []).append(m)
    train, test = [], []
    for family in sorted(by_family):
        members = sorted(by_family[family], key=lambda m: m.name)
        random.Random(f"{seed}:{family}").shuffle(members)
        n = 0
        if holdout > 0 and len(members) >= 2:
            n = min(len(members) - 1, max(1, round(holdout * len(members))))
        test += members[:n]
        train += members[n:]
    return train, test


def score_methods(predictor: Predictor, models: list[ModelData],
                  methods: tuple[str, ...] = METHODS) -> dict[str, dict[str, Any]]:
    return score_predictions(predict_models(predictor, models, methods), models)


def score_predictions(predicted: dict[str, list[np.ndarray]], models: list[ModelData]) -> dict[str, dict[str, Any]]:
    """{method: scores} of predictions already made (`predict_models`) of `models`."""
    measured = [m.latency_s for m in models]
    configs = [m.configs for m in models]
    return {name: scores(p, measured, configs) for name, p in predicted.items()}


def leave_one_family_out(models: list[ModelData], cfg: PredictorConfig, machine: dict[str, Any], *,
                         families: list[str] | None = None, device: str = "cpu", jobs: int = 1,
                         on_fold: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Per held-out family: each method's scores; and every fold's predictions pooled. With
    `jobs` > 1 on the CPU, that many folds train at once, each in its own process on one thread
    (on another device, one after another); `on_fold(family, i, n)` is then called as fold i
    finishes rather than as it begins.
    The scores do not depend on `jobs` beyond the last digits of floating point: each fold is
    seeded alike either way."""
    check_jobs(jobs)
    names = [f for f in (families or sorted({m.family for m in models}))
             if any(m.family == f for m in models) and sum(m.family != f for m in models) >= 2]
    folds: dict[str, tuple[dict[str, list[np.ndarray]], list[str]]] = {}
    if not (names and in_parallel(jobs, device)):
        for i, family in enumerate(names):
            if on_fold:
                on_fold(family, i, len(names))
            folds[family] = _fold(models, cfg, machine, family, device)
    else:
        context = multiprocessing.get_context("spawn")  # a forked child would inherit torch's thread pools
        with ProcessPoolExecutor(min(jobs, len(names)), mp_context=context, initializer=_fold_worker,
                                 initargs=(models, cfg, machine)) as pool:
            pending = {pool.submit(_fold_in_worker, f): f for f in names}
            for i, done in enumerate(as_completed(pending)):
                folds[pending[done]] = done.result()
                if on_fold:
                    on_fold(pending[done], i, len(names))
    pooled: dict[str, list[np.ndarray]] = {k: [] for k in METHODS}
    measured: list[np.ndarray] = []
    configs: list[list[Config]] = []
    per_family: dict[str, dict[str, Any]] = {}
    for family in names:  # in the families' order, whatever order the folds finished in
        predicted, _ = folds[family]
        held = [m for m in models if m.family == family]
        per_family[family] = {k: scores(predicted[k], [m.latency_s for m in held], [m.configs for m in held])
                              for k in METHODS}
        for k in METHODS:
            pooled[k] += predicted[k]
        measured += [m.latency_s for m in held]
        configs += [m.configs for m in held]
    return {"families": per_family,
            "pooled": {k: scores(pooled[k], measured, configs) for k in METHODS} if measured else {},
            "unseen_operators": {f: folds[f][1] for f in names if folds[f][1]}}


def check_jobs(jobs: int) -> None:
    """`jobs` (folds trained at once) must be at least 1."""
    if jobs < 1:
        raise param_error("jobs", f"must be >= 1 (got {jobs})")


def in_parallel(jobs: int, device: str) -> bool:
    """Whether `leave_one_family_out` trains its folds in worker processes (and so reports each
    as it finishes)."""
    return jobs > 1 and device == "cpu"


def _fold(models: list[ModelData], cfg: PredictorConfig, machine: dict[str, Any], family: str, device: str
          ) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """One fold: trained on every family but `family`, the predictions of its models by each
    method, and the operator kinds they have that no other family has."""
    held = [m for m in models if m.family == family]
    predictor, _ = fit([m for m in models if m.family != family], cfg, machine, device=device)
    unseen = sorted(operators([m.node_opcode for m in held]) - set(predictor.info["operators"]))
    return predict_models(predictor, held), unseen


_WORKER: dict[str, Any] = {}  # a fold worker's models, configuration and machine, sent once


def _fold_worker(models: list[ModelData], cfg: PredictorConfig, machine: dict[str, Any]) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.update(models=models, cfg=cfg, machine=machine)


def _fold_in_worker(family: str) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    return _fold(_WORKER["models"], _WORKER["cfg"], _WORKER["machine"], family, "cpu")


def repeated_pairs(collection: Path, models: list[ModelData], reference_s: dict[str, float] | None = None, *,
                   steady_within: float | None = None) -> list[tuple[Config, float, float]]:
    """(configuration, the latency a model's file holds, the same configuration measured again
    later) for every repeated measurement the collection made: at the collection's speed
    (`reference_s`, see fastslow.predict.reference), or as timed when `reference_s` is None.
    With `steady_within`, only the pairs whose speed reference ran within that of its usual
    time both times (`ModelData.reference_off`): the machine's noise when nothing disturbed it."""
    return [(c, a, b) for _, c, a, b in _pairs(_repeats(collection), models, reference_s, steady_within)]


def _repeats(collection: Path) -> list[tuple[str, Config, Measurement]]:
    """(sample, configuration, measurement) of every repeated measurement in the collection's database."""
    return [(params["sample"], c, m) for params, c, m in stored_measurements(collection) if params.get("repeat")]


def ranking_floor(repeats: list[tuple[str, Config, Measurement]], models: list[ModelData],
                  reference_s: dict[str, float]) -> dict[str, Any]:
    """The repeated models' second measurements taken as the prediction of their first (the
    labels), scored as a predictor is (`fastslow.predict.metrics.scores`): Kendall's tau of the
    models' order, the top-1 slowdown and the share of models whose best is within 5%: what
    measuring again would score. Where a model's fastest configurations lie within the noise of
    each other, the second measurement picks another one than the first. It is not a ceiling: a
    predictor right on average is off one measurement by that one's noise alone, a second
    measurement by both (see `fastslow.predict.metrics`)."""
    return _ranking(_pairs(repeats, models, reference_s, None))


def _ranking(pairs: list[tuple[str, Config, float, float]]) -> dict[str, Any]:
    """`ranking_floor` of pairs already made (`_pairs`)."""
    by_sample: dict[str, list[tuple[str, Config, float, float]]] = {}
    for p in pairs:
        by_sample.setdefault(p[0], []).append(p)
    again, first, configs = [], [], []
    for mine in by_sample.values():
        if len(mine) < 2:  # nothing to rank
            continue
        configs.append([c for _, c, _, _ in mine])
        first.append(np.asarray([a for *_, a, _ in mine]))
        again.append(np.asarray([b for *_, b in mine]))
    if not first:
        return {"models": 0, **dict.fromkeys(RANKING_KEYS, math.nan)}
    scored = scores(again, first, configs)
    return {"models": scored["models"], **{k: scored[k] for k in RANKING_KEYS}}


def _pairs(repeats: list[tuple[str, Config, Measurement]], models: list[ModelData],
           reference_s: dict[str, float] | None, steady_within: float | None
           ) -> list[tuple[str, Config, float, float]]:
    """`repeated_pairs` of repeats already read, each with its sample's name first."""
    from fastslow.predict.reference import fastest, group_kind, reference_off, relative

    first = {(m.name, c): (float(t if reference_s else raw), float(off), float(usual))
             for m in models
             for c, t, raw, off, usual in zip(m.configs, m.latency_s, m.timed_s, m.reference_off, m.nominal_s,
                                              strict=True)}
    pairs = []
    for sample, c, m in repeats:
        if (sample, c) not in first:
            continue
        t, off, usual = first[(sample, c)]
        reference = m.extra["reference_samples_s"]
        if steady_within is not None and max(off, float(reference_off(fastest(reference), usual))) > steady_within:
            continue
        again = relative(m, reference) * reference_s[group_kind(c)] if reference_s else fastest(m.samples_s)
        pairs.append((sample, c, t, again))
    return pairs


# The parts of a configuration that held-out scores and the noise floor are also given for, one
# value at a time: where a value's repeated measurements disagree more (two threads on a busy
# 2-core machine, where a neighbour takes one of the cores), no method can score higher there.
PARTS = ("runtime", "threads")


def _value(c: Config, part: str) -> str:
    return str(getattr(c, part))


def _values(configs: Iterable[Config], part: str) -> list[str]:
    """The values of `part` among `configs`, in their own order (2 threads before 16), as keys."""
    return [str(v) for v in sorted({getattr(c, part) for c in configs})]


def noise(collection: Path, models: list[ModelData], reference_s: dict[str, float], *,
          steady_within: float = 0.0) -> dict[str, Any]:
    """The noise floor at the collection's speed, and as timed (`raw`), over every repeated
    measurement and per value of each of `PARTS` (`by_runtime`, `by_threads`); with
    `steady_within` (> 0), also over the pairs measured while the machine ran at its usual speed
    (`steady`, see `repeated_pairs`); and how well a second measurement ranks (`ranking`, see
    `ranking_floor`)."""
    repeats = _repeats(collection)  # read once: the database holds every measurement's samples
    pairs = _pairs(repeats, models, reference_s, None)
    out = {**noise_floor([(a, b) for *_, a, b in pairs]),
           "raw": noise_floor([(a, b) for *_, a, b in _pairs(repeats, models, None, None)])}
    if steady_within > 0:
        steady = _pairs(repeats, models, reference_s, steady_within)
        out["steady"] = {**noise_floor([(a, b) for *_, a, b in steady]), "within": steady_within}
    out["ranking"] = _ranking(pairs)
    for part in PARTS:
        values = _values((c for _, c, _, _ in pairs), part)
        out[f"by_{part}"] = {v: noise_floor([(a, b) for _, c, a, b in pairs if _value(c, part) == v]) for v in values}
    return out


def scores_by(predicted: dict[str, list[np.ndarray]], models: list[ModelData], part: str
              ) -> dict[str, dict[str, dict[str, Any]]]:
    """`score_predictions` on the configurations with each value of `part` (one of `PARTS`) alone:
    {value: {method: scores}}, so each can be read beside that value's noise floor."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for value in _values((c for m in models for c in m.configs), part):
        keep = [np.asarray([_value(c, part) == value for c in m.configs]) for m in models]
        idx = [i for i, k in enumerate(keep) if k.any()]
        out[value] = {name: scores([predicted[name][i][keep[i]] for i in idx],
                                   [models[i].latency_s[keep[i]] for i in idx],
                                   [[c for c, k in zip(models[i].configs, keep[i], strict=True) if k] for i in idx])
                      for name in predicted}
    return out
