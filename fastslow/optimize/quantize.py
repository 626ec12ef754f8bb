"""Quantization: the per-tensor affine scheme as an API, and three ways to get an int8 model.

* `quantize_tensor` / `dequantize_tensor`: q = clamp(round(x / scale) + zero_point), with
  scale and zero point chosen from the tensor's range (asymmetric, uint8 or int8);
* dynamic int8 (torch.ao `quantize_dynamic`): weights int8 ahead of time, activations
  quantized on the fly; Linear and LSTM;
* static int8 after calibration, through FX graph mode with the x86 backend (oneDNN/FBGEMM
  int8 kernels: the path that runs on x86 CPUs in this torch; the PT2E flow lives in torchao now);
* quantization-aware training: fake-quantized training for a few epochs, then converted.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from fastslow.tasks.base import FitConfig, Task, TaskData


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch 2.13 deprecates its quantized tensor types in favour of torchao; the notices repeat
    on every conversion and say nothing about the result. Silenced here only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"torch\.ao\.")
        warnings.filterwarnings("ignore", message=r".*quantiz.*", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


@dataclass
class QuantizedTensor:
    values: torch.Tensor  # integers
    scale: float
    zero_point: int
    dtype: torch.dtype

    def dequantize(self) -> torch.Tensor:
        return (self.values.float() - self.zero_point) * self.scale


def quantize_tensor(x: torch.Tensor, dtype: torch.dtype = torch.uint8) -> QuantizedTensor:
    """Per-tensor affine quantization covering [min(x, 0), max(x, 0)] (zero stays exact)."""
    info = torch.iinfo(dtype)
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / (info.max - info.min) or 1.0
    zero_point = int(round(info.min - lo / scale))
    zero_point = max(info.min, min(info.max, zero_point))
    q = torch.clamp(torch.round(x / scale) + zero_point, info.min, info.max).to(dtype)
    return QuantizedTensor(q, scale, zero_point, dtype)


def quantization_error(x: torch.Tensor, dtype: torch.dtype = torch.uint8) -> dict[str, float]:
    """Scale, zero point and the round-trip error (max and RMS) of quantizing x."""
    q = quantize_tensor(x, dtype)
    err = q.dequantize() - x
    return {"scale": q.scale, "zero_point": q.zero_point, "max_abs_error": float(err.abs().max()),
            "rms_error": float(err.pow(2).mean().sqrt())}


def dynamic_int8(model: nn.Module) -> nn.Module:
    from torch.ao.quantization import quantize_dynamic

    with _quiet():
        return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear, nn.LSTM, nn.GRU}, dtype=torch.qint8)


def _example(data: TaskData) -> tuple[torch.Tensor]:
    return (data.calibration.tensors[0][:8],)


def static_int8(model: nn.Module, data: TaskData) -> nn.Module:
    """FX graph-mode post-training quantization, calibrated on the task's calibration set."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with _quiet():
        prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping("x86"), _example(data))
        with torch.inference_mode():
            x = data.calibration.tensors[0]
            for i in range(0, x.shape[0], 64):
                prepared(x[i : i + 64])
        return convert_fx(prepared)


def qat_int8(model: nn.Module, task: Task, data: TaskData, epochs: int = 3) -> nn.Module:
    """Fake-quantized fine-tuning (a tenth of the task's learning rate), then int8."""
    from torch.ao.quantization import get_default_qat_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_qat_fx

    with _quiet():
        prepared = prepare_qat_fx(copy.deepcopy(model).train(), get_default_qat_qconfig_mapping("x86"), _example(data))
        cfg = task.train_config
        task.train(prepared, data, FitConfig(epochs=epochs, lr=cfg.lr / 10, batch_size=cfg.batch_size, seed=cfg.seed))
        return convert_fx(prepared.eval())
