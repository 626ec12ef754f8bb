"""Metrics as the TpuGraphs paper and the Kaggle competition define them.

* top-K slowdown of one kernel: (best runtime among the K configurations ranked first) /
  (best runtime overall) - 1; 0 when the best is among them (the paper's "top-K error");
* the competition's tile score: the mean over kernels of 2 - (best runtime among the 5
  chosen) / (best runtime overall), i.e. 1 - mean top-5 slowdown;
* Kendall's tau and ordered-pair accuracy between predicted and true orders: the layout
  collections' metrics, since many layout configurations run within a hair of the best and
  any top-5 choice scores near 1 there;
* a top-K slowdown is informative only where a random ranking would do measurably worse: the
  report carries what random rankings score (`random_slowdown`) and `informative_k` says which
  K pass (a random choice at least 1% slower than the best, on average).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def top_k_slowdown(pred: np.ndarray, runtime: np.ndarray, k: int) -> float:
    chosen = np.argsort(pred, kind="stable")[:k]
    return float(runtime[chosen].min() / runtime.min() - 1.0)


def kendall_tau(pred: np.ndarray, runtime: np.ndarray) -> float:
    if len(pred) < 2:
        return float("nan")
    from scipy import stats  # here, not at the top: scipy adds 0.9 s to every command that loads this module

    tau = stats.kendalltau(pred, runtime).statistic
    return float(tau) if np.isfinite(tau) else 0.0


PAIR_SAMPLE = 4000  # larger files are scored on a seeded sample of this many configurations
RANDOM_RANKINGS = 20
INFORMATIVE_SLOWDOWN = 0.01


def ordered_pair_accuracy(pred: np.ndarray, runtime: np.ndarray) -> float:
    """The share of pairs with different runtimes that the prediction orders the same way."""
    if len(pred) > PAIR_SAMPLE:
        keep = np.random.default_rng(0).choice(len(pred), PAIR_SAMPLE, replace=False)
        pred, runtime = pred[keep], runtime[keep]
    dp = np.sign(pred[:, None] - pred[None, :])
    dr = np.sign(runtime[:, None] - runtime[None, :])
    valid = dr != 0
    return float((dp[valid] == dr[valid]).mean()) if valid.any() else float("nan")


@dataclass
class RankingReport:
    files: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, pred: np.ndarray, runtime: np.ndarray) -> None:
        rng = np.random.default_rng(0)
        randoms = [rng.permutation(len(runtime)).astype(np.float64) for _ in range(RANDOM_RANKINGS)]
        self.files.append({
            "file": name, "configs": int(len(runtime)),
            "slowdown": {str(k): top_k_slowdown(pred, runtime, k) for k in (1, 5, 10)},
            "random_slowdown": {str(k): float(np.mean([top_k_slowdown(r, runtime, k) for r in randoms]))
                                for k in (1, 5, 10)},
            "kendall_tau": kendall_tau(pred, runtime),
            "pair_accuracy": ordered_pair_accuracy(pred, runtime),
        })

    def summary(self) -> dict[str, Any]:
        if not self.files:
            return {"score_top5": None, "slowdown": {}, "random_slowdown": {}, "informative_k": [],
                    "kendall_tau": None, "pair_accuracy": None, "files": []}
        slow = {k: float(np.mean([f["slowdown"][k] for f in self.files])) for k in ("1", "5", "10")}
        taus = [f["kendall_tau"] for f in self.files if np.isfinite(f["kendall_tau"])]
        pairs = [f["pair_accuracy"] for f in self.files
                 if f["pair_accuracy"] is not None and np.isfinite(f["pair_accuracy"])]
        random = {k: float(np.mean([f["random_slowdown"][k] for f in self.files])) for k in ("1", "5", "10")}
        return {"score_top5": float(np.mean([2 - (1 + f["slowdown"]["5"]) for f in self.files])),
                "slowdown": slow, "random_slowdown": random,
                "informative_k": [k for k in ("1", "5", "10") if random[k] >= INFORMATIVE_SLOWDOWN],
                "kendall_tau": float(np.mean(taus)) if taus else None,
                "pair_accuracy": float(np.mean(pairs)) if pairs else None, "files": self.files}
