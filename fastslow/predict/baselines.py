"""The two baselines a learned latency predictor must beat, fitted on the same measurements.

* `RooflineRegression`: per kind of configuration (threads, layout, runtime), the time of one
  call as a fixed cost plus one price per FLOP and one per byte moved,
  t = a + b * FLOPs + c * bytes, with the model's totals at the configuration's batch size
  (FLOPs scale with the batch; bytes are the weights plus the batch's share of the rest).
* `OperatorSum`: nn-Meter's idea (Zhang et al., MobiSys 2021): a model's latency is the sum
  of its operators' latencies, each predicted from the operator's own costs. nn-Meter measures
  kernels one by one and fits a random forest per kernel type; here the per-operator costs are
  fitted from whole-model measurements, per kind of configuration: each operator kind has a
  fixed cost, a price per FLOP and one per byte, t = sum over nodes of (a_op + b_op * FLOPs +
  c_op * bytes).

Both are fitted by non-negative least squares on relative error (each row weighted by 1 / its
measurement, so a 10 us model counts as much as a 10 ms one), with a small ridge term.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastslow.predict.configs import Config

OPCODES = 256
RIDGE = 1e-4


def kind_of(c: Config) -> str:
    """The part of a configuration a baseline fits separately (the batch scales its inputs)."""
    return f"{c.threads}t{'-cl' if c.channels_last else ''}-{c.runtime}"


@dataclass
class Costs:
    """A model's operator costs at batch 1: per node opcode, FLOPs, bytes and weight bytes."""

    opcode: np.ndarray
    flops: np.ndarray
    bytes: np.ndarray
    weight_bytes: np.ndarray

    def at_batch(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-node FLOPs and bytes at `batch`: the weights are read once, the rest scales."""
        activation = np.maximum(self.bytes - self.weight_bytes, 0.0)
        return self.flops * batch, self.weight_bytes + activation * batch


def costs_of(m: Any) -> Costs:
    """The costs of an OpGraph or a ModelData (both carry per-node opcodes, FLOPs and bytes)."""
    return Costs(np.asarray(m.node_opcode, dtype=np.int64), m.node_flops, m.node_bytes, m.node_weight_bytes)


def _solve(rows: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative least squares on relative error, columns scaled to 1, with a ridge term;
    columns that are zero in every row (operators never seen) get 0."""
    scale = np.abs(rows).max(0)
    used = scale > 0
    a = rows[:, used] / scale[used] / target[:, None]
    a = np.vstack([a, np.sqrt(RIDGE) * np.eye(a.shape[1])])
    b = np.concatenate([np.ones(rows.shape[0]), np.zeros(a.shape[1])])
    from scipy.optimize import nnls  # only when fitting (importing scipy costs `predict` 0.9 s)

    fitted, _ = nnls(a, b, maxiter=50 * a.shape[1])
    coef = np.zeros(rows.shape[1])
    coef[used] = fitted / scale[used]
    return coef


@dataclass
class _PerKind:
    """A linear model of time per configuration kind, with one fitted on every kind as fallback."""

    coef: dict[str, np.ndarray] = field(default_factory=dict)

    def features(self, costs: Costs, config: Config) -> np.ndarray:
        raise NotImplementedError

    def fit(self, data: list[tuple[Costs, list[Config], np.ndarray]]) -> _PerKind:
        rows: dict[str, list[np.ndarray]] = {}
        targets: dict[str, list[float]] = {}
        for costs, configs, latency in data:
            for c, t in zip(configs, latency, strict=True):
                for key in (kind_of(c), "*"):
                    rows.setdefault(key, []).append(self.features(costs, c))
                    targets.setdefault(key, []).append(float(t))
        self.coef = {k: _solve(np.stack(rows[k]), np.asarray(targets[k])) for k in rows}
        return self

    def predict(self, costs: Costs, configs: list[Config]) -> np.ndarray:
        """Seconds per call for each configuration."""
        out = []
        for c in configs:
            coef = self.coef.get(kind_of(c), self.coef["*"])
            out.append(float(self.features(costs, c) @ coef))
        return np.maximum(np.asarray(out), 1e-9)

    def to_dict(self) -> dict[str, Any]:
        return {k: v.tolist() for k, v in self.coef.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _PerKind:
        return cls({k: np.asarray(v, dtype=np.float64) for k, v in d.items()})


class RooflineRegression(_PerKind):
    """Each kind's prices come from the models that have that kind, and they are not the same
    mix: dynamic int8 applies only where a model has Linear or recurrent layers, so its kinds are
    fitted mostly on MLPs and recurrent nets, whose fixed cost is large and FLOPs cheap. A
    convolutional net with a Linear classifier (timm's, torchvision's) is then priced at those
    rates: on a 2-core AMD EPYC's 30-minute collection (42 held-out models) this baseline picked
    batch 16 on two threads with int8 for 5 such nets, which ran 3-12x slower there than at their
    best (ONNX Runtime): its mean top-1 slowdown was 95%, though 27 of its 42 picks were within 5%."""

    def features(self, costs: Costs, config: Config) -> np.ndarray:
        flops, moved = costs.at_batch(config.batch)
        return np.asarray([1.0, flops.sum(), moved.sum()])


class OperatorSum(_PerKind):
    def features(self, costs: Costs, config: Config) -> np.ndarray:
        flops, moved = costs.at_batch(config.batch)
        out = np.zeros((3, OPCODES))
        np.add.at(out[0], costs.opcode, 1.0)
        np.add.at(out[1], costs.opcode, flops)
        np.add.at(out[2], costs.opcode, moved)
        return out.reshape(-1)


BASELINES: dict[str, type[_PerKind]] = {"roofline": RooflineRegression, "operator-sum": OperatorSum}
