"""Configurations: the settings that change how fast a model runs but not what it computes —
batch size, thread count, memory format (channels_last, for 4-d inputs of convolutional
models) and runtime (eager PyTorch, ONNX Runtime, dynamic int8 for models with Linear or
recurrent layers). They are the configuration features a ranker joins to the graph."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from fastslow.errors import param_error

RUNTIMES = ("eager", "onnx", "int8-dynamic")
CONFIG_FEATS = 7
BATCHES = (1, 8, 32)
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

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def applicable(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, bool]:
    """Which settings apply: channels_last needs a 4-d input and a convolution; dynamic int8 needs
    a Linear, LSTM or GRU layer to quantize."""
    kinds = {type(m) for m in model.modules()}
    return {"channels_last": len(input_shape) == 3 and any(issubclass(k, nn.Conv2d) for k in kinds),
            "int8-dynamic": any(issubclass(k, (nn.Linear, nn.LSTM, nn.GRU)) for k in kinds)}


def configs_for(model: nn.Module, input_shape: tuple[int, ...], *, batches: tuple[int, ...] = BATCHES,
                threads: tuple[int, ...] = THREADS) -> list[Config]:
    """Every configuration that applies to this model: batches x threads x layouts x runtimes."""
    can = applicable(model, input_shape)
    layouts = (False, True) if can["channels_last"] else (False,)
    runtimes = [r for r in RUNTIMES if r != "int8-dynamic" or can["int8-dynamic"]]
    return [Config(b, t, cl, r) for b in batches for t in threads for cl in layouts for r in runtimes
            if not (cl and r == "onnx")]  # ONNX Runtime chooses its own layout


def runnable(model: nn.Module, example: torch.Tensor, config: Config) -> Callable[[], object]:
    """A zero-argument callable that runs the model on `example` under `config` (the timer sets
    the thread count; ONNX Runtime's session is given it)."""
    from fastslow.optimize import quantize as Q
    from fastslow.optimize import runtime as R

    model = model.eval()
    if config.runtime == "onnx":
        predict, _ = R.onnx_session(model, example, config.threads)
        return lambda: predict(example)
    if config.runtime == "int8-dynamic":
        model = Q.dynamic_int8(model)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)
    return lambda: model(example)
