"""Configurations: the settings that change how fast a model runs but not what it computes —
batch size, thread count, memory format (channels_last, for 4-d inputs of convolutional
models) and runtime (eager PyTorch, ONNX Runtime, dynamic int8 where Linear or recurrent
layers hold most of the weights). They are the configuration features a ranker joins to the
graph."""

from __future__ import annotations

import copy
import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fastslow.errors import UserError, param_error

RUNTIMES = ("eager", "onnx", "int8-dynamic")
CONFIG_FEATS = 7
BATCH_COLUMN = (0, 8)  # the batch size's (column, scale) in `Config.features`: log2(batch) / 8
BATCHES = (1, 4, 16)
THREADS = (1, 2)


@dataclass(frozen=True)
class Config:
    batch: int = 1
    threads: int = 1
    channels_last: bool = False
    runtime: str = "eager"

    def __post_init__(self) -> None:
        if self.batch < 1 or self.threads < 1:
            raise param_error("batch" if self.batch < 1 else "threads", "must be >= 1")
        if self.runtime not in RUNTIMES:
            raise param_error("runtime", f"value '{self.runtime}' is unknown (known: {', '.join(RUNTIMES)})")

    def features(self) -> np.ndarray:
        """batch and threads on a log scale, channels_last, the runtime one-hot (CONFIG_FEATS floats)."""
        return np.asarray([math.log2(self.batch) / 8, math.log2(self.threads) / 4, float(self.channels_last),
                           *[float(self.runtime == r) for r in RUNTIMES], 1.0], dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        return cls(int(d["batch"]), int(d["threads"]), bool(d["channels_last"]), str(d["runtime"]))

    def describe(self) -> str:
        """'batch 8, 2 threads, channels_last, onnx': how tables name it."""
        parts = [f"batch {self.batch}", f"{self.threads} thread{'s' if self.threads > 1 else ''}"]
        return ", ".join(parts + (["channels_last"] if self.channels_last else []) + [self.runtime])


# Dynamic int8 quantizes these; it is offered where they hold at least this share of the weights
# (a conv net's linear head alone is not worth a configuration: int8 would leave it as it is).
QUANTIZABLE = (nn.Linear, nn.LSTM, nn.GRU)
INT8_MIN_WEIGHT_SHARE = 0.5


# torch's encoder and decoder layers take an inference fast path that reads their Linear layers'
# weights as tensors, which a dynamically quantized Linear does not have: they cannot run int8.
NOT_INT8 = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


def applicable(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, bool]:
    """Which settings apply: channels_last needs a 4-d input (3 dimensions after the batch) and a
    2-d convolution; dynamic int8 needs Linear, LSTM or GRU layers that hold most of the weights
    (and no layer that cannot run them quantized)."""
    modules = list(model.modules())
    total = sum(p.numel() for p in model.parameters())
    quantizable = sum(p.numel() for m in modules if isinstance(m, QUANTIZABLE) for p in m.parameters(recurse=False))
    return {"channels_last": len(input_shape) == 3 and any(isinstance(m, nn.Conv2d) for m in modules),
            "int8-dynamic": (total > 0 and quantizable >= INT8_MIN_WEIGHT_SHARE * total
                             and not any(isinstance(m, NOT_INT8) for m in modules))}


def configs_for(model: nn.Module, input_shape: tuple[int, ...], *, batches: tuple[int, ...] = BATCHES,
                threads: tuple[int, ...] = THREADS, runtimes: tuple[str, ...] = RUNTIMES) -> list[Config]:
    """Every configuration that applies to this model: batches x threads x layouts x runtimes."""
    for r in runtimes:
        Config(runtime=r)  # an unknown runtime is refused by name
    can = applicable(model, input_shape)
    layouts = (False, True) if can["channels_last"] else (False,)
    usable = [r for r in runtimes if r != "int8-dynamic" or can["int8-dynamic"]]
    return [Config(b, t, cl, r) for b in batches for t in threads for cl in layouts for r in usable
            if not (cl and r == "onnx")]  # ONNX Runtime chooses its own layout


class Runners:
    """The callables that run one model under each of its configurations, sharing what they
    can: one input per batch size (seeded), one ONNX export (dynamic batch) and one ONNX Runtime
    session per thread count for every batch size, one dynamic-int8 copy. `close()` removes the
    export.

    One session per thread count, as a deployment would run one: each session owns a pool of
    intra-op threads that keep spinning after a run, so sessions timed in turn fight over the
    cores. Measured on a 2-core EPYC, three corpus models at batches 1, 4 and 16 on 2 threads,
    timed interleaved for 200 s: with a session per batch size their times relative to the speed
    reference varied by 36% (sd of the log; 49% of rounds within ±10% of their median) and ran
    up to 3.1x slower; with one shared session, by 3.5% (97%)."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], *, seed: int = 0) -> None:
        self.model, self.input_shape, self.seed = model.eval(), tuple(input_shape), seed
        self._inputs: dict[int, torch.Tensor] = {}
        self._models: dict[tuple[str, bool], nn.Module] = {("eager", False): self.model}
        self._onnx: Path | None = None
        self._sessions: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {}  # threads -> session
        self.export_s = 0.0
        self.exporter: str | None = None  # which torch.onnx exporter made the ONNX file, once made

    def example(self, batch: int) -> torch.Tensor:
        if batch not in self._inputs:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + batch)
            self._inputs[batch] = torch.randn(batch, *self.input_shape, generator=gen)
        return self._inputs[batch]

    def _onnx_path(self) -> Path:
        from fastslow.optimize.runtime import onnx_export

        if self._onnx is None:
            # Exported at batch 2: a batch of 1 would let the exporter fix that dimension at 1.
            out = Path(tempfile.mkdtemp(prefix="fastslow-predict-"))
            try:
                export = onnx_export(self.model, self.example(2), out)
                self._onnx, self.export_s, self.exporter = export.path, export.seconds, export.exporter
            except BaseException:
                shutil.rmtree(out, ignore_errors=True)  # a failed export leaves nothing behind
                raise
        return self._onnx

    def __call__(self, config: Config) -> Callable[[], object]:
        """A zero-argument callable that runs the model under `config` (the timer sets torch's
        thread count; ONNX Runtime's session is given it)."""
        from fastslow.optimize import quantize as Q
        from fastslow.optimize.runtime import onnx_predict

        x = self.example(config.batch)
        if config.runtime == "onnx":
            if config.threads not in self._sessions:
                self._sessions[config.threads] = onnx_predict(self._onnx_path(), config.threads)
            predict = self._sessions[config.threads]
            return lambda: predict(x)
        if config.channels_last and x.dim() != 4:
            raise UserError(f"channels_last needs a 4-d input (got shape {tuple(x.shape)})")
        key = (config.runtime, config.channels_last)
        if key not in self._models:  # each variant its own copy, so no configuration changes another's weights
            base = self.model if config.runtime == "eager" else Q.dynamic_int8(self.model)
            self._models[key] = (copy.deepcopy(base).to(memory_format=torch.channels_last) if config.channels_last
                                 else base)
        model = self._models[key]
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return lambda: model(x)

    def close(self) -> None:
        self._sessions.clear()
        if self._onnx is not None:
            shutil.rmtree(self._onnx.parent, ignore_errors=True)
            self._onnx = None


def runnable(model: nn.Module, example: torch.Tensor, config: Config) -> Callable[[], object]:
    """One configuration's callable on a given input (see `Runners` for many of one model)."""
    runners = Runners(model, tuple(example.shape[1:]))
    runners._inputs[config.batch] = example
    try:
        return runners(config)
    finally:
        runners.close()  # an ONNX Runtime session holds its model in memory: the export can go
