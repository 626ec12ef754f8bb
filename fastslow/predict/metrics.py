"""How good a latency prediction is, in the terms its users ask about.

* within ±10% / ±20%: the share of (model, configuration) predictions whose ratio to the
  measurement lies in [0.9, 1.1] / [0.8, 1.2] (nn-Meter's accuracy metric);
* RMSPE: the root mean squared relative error;
* Kendall's tau of the models' order: for each configuration measured on at least three of the
  models, the models ordered by predicted and by measured time, tau between the two orders,
  averaged over the configurations (what a NAS loop ranking candidates needs);
* top-1 slowdown: per model, the configuration predicted fastest per item, measured against
  the one measured fastest per item (0 when the prediction picked the best); the mean, and the
  share of models within 5%;
* the noise floor: the same (model, configuration) measured twice, some minutes apart: how
  often the two agree within ±10%, and their RMSPE, which bound what any predictor can score;
* the ranking floor: the repeated models' second measurements taken as the prediction of their
  first and scored as above (tau, top-1 slowdown, top-1 within 5%); where a model's fastest
  configurations are within the noise of each other, a second measurement can pick another;
* the ceiling (an estimate): how often a predictor that is exactly right on average would land
  within ±10% / ±20% of one measurement. A pair of measurements differs by the noise of both,
  one measurement from the truth by its own: where the noise is log-normal, a pair's log ratio
  over sqrt(2) is distributed as one measurement's log error. So each repeated pair's log ratio,
  shrunk by sqrt(2), taken with both signs, is one draw of that error; exact for log-normal
  noise, an approximation otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastslow.predict.configs import Config
from fastslow.tpugraphs.metrics import kendall_tau, top_k_slowdown

TOLERANCES = (0.10, 0.20)
TOP1_WITHIN = 0.05
RANKING_KEYS = ("kendall_tau", "top1_slowdown", "top1_within_5")  # what `scores` says of an order


def _within(ratios: np.ndarray, tol: float) -> float:
    return float(np.mean(np.abs(ratios - 1.0) <= tol + 1e-12)) if ratios.size else math.nan


def scores(predicted: list[np.ndarray], measured: list[np.ndarray], configs: list[list[Config]]) -> dict[str, Any]:
    """Every metric above for one method's predictions of these models (seconds per call)."""
    if not measured:
        raise ValueError("no models to score")
    ratios = np.concatenate([p / m for p, m in zip(predicted, measured, strict=True)])
    by_config: dict[Config, list[tuple[float, float]]] = {}
    slowdowns = []
    for p, m, cf in zip(predicted, measured, configs, strict=True):
        for c, pv, mv in zip(cf, p, m, strict=True):
            by_config.setdefault(c, []).append((pv, mv))
        batch = np.asarray([c.batch for c in cf], dtype=np.float64)
        slowdowns.append(top_k_slowdown(p / batch, m / batch, 1))  # per item: batches compared fairly
    taus = [kendall_tau(*map(np.asarray, zip(*pairs, strict=True))) for pairs in by_config.values() if len(pairs) >= 3]
    s = np.asarray(slowdowns)
    return {
        "pairs": int(ratios.size), "models": len(measured),
        "within_10": _within(ratios, 0.10), "within_20": _within(ratios, 0.20),
        "rmspe": float(np.sqrt(np.mean((ratios - 1.0) ** 2))),
        "kendall_tau": float(np.mean(taus)) if taus else math.nan,
        "top1_slowdown": float(s.mean()), "top1_within_5": float(np.mean(s <= TOP1_WITHIN + 1e-12)),
    }


def noise_floor(pairs: list[tuple[float, float]]) -> dict[str, Any]:
    """The agreement of repeated measurements (first, again) of the same model and configuration,
    and the estimated ceiling of a predictor scored against one of them (see above)."""
    if not pairs:
        return {"pairs": 0, "within_10": math.nan, "within_20": math.nan, "rmspe": math.nan,
                "ceiling_10": math.nan, "ceiling_20": math.nan}
    ratios = np.asarray([b / a for a, b in pairs])
    error = np.log(ratios) / math.sqrt(2)
    one = np.exp(np.concatenate([error, -error]))  # a right-on-average prediction over one measurement
    return {"pairs": int(ratios.size), "within_10": _within(ratios, 0.10), "within_20": _within(ratios, 0.20),
            "rmspe": float(np.sqrt(np.mean((ratios - 1.0) ** 2))),
            "ceiling_10": _within(one, 0.10), "ceiling_20": _within(one, 0.20)}
