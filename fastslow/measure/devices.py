"""What hardware is here, and what it can do at best (matmul FLOP/s, memory bandwidth).

The peaks are the tutorial's CPU-against-GPU matmul comparison done with the real timer:
each device is timed where it runs (CUDA events on CUDA), at one size large enough to reach
the plateau, and the result is stored so the roofline can use it later.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from typing import Any

import torch

from fastslow.env import cpu_model_and_flags, device_name
from fastslow.errors import UserError
from fastslow.measure.timer import TimerConfig, measure


def cpu_info() -> dict[str, Any]:
    import psutil

    model, flags = cpu_model_and_flags()
    return {
        "device": "cpu",
        "name": model,
        "arch": platform.machine(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "isa_flags": flags,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "memory_bytes": psutil.virtual_memory().total,
    }


def cuda_info() -> list[dict[str, Any]]:
    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        out.append({
            "device": f"cuda:{i}",
            "name": p.name,
            "capability": f"{p.major}.{p.minor}",
            "multiprocessors": p.multi_processor_count,
            "memory_bytes": p.total_memory,
            "bf16_supported": torch.cuda.is_bf16_supported(),
        })
    return out


def mps_info() -> list[dict[str, Any]]:
    if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
        return []
    return [{"device": "mps", "name": "Apple Metal (MPS)"}]


def list_devices() -> list[dict[str, Any]]:
    return [cpu_info(), *cuda_info(), *mps_info()]


def require_device(device: str) -> torch.device:
    """The device, or a one-line UserError naming --device when it is not a device name or
    this machine has none such."""
    try:
        d = torch.device(device)
    except RuntimeError:
        raise UserError(f"'device' value '{device}' is not a device name") from None
    if not device_available(device):
        raise UserError(f"'device' value '{device}' is not available on this machine")
    return d


def device_available(device: str) -> bool:
    d = torch.device(device)
    if d.type == "cpu":
        return True
    if d.type == "cuda":
        return torch.cuda.is_available() and (d.index or 0) < torch.cuda.device_count()
    if d.type == "mps":
        return bool(mps_info())
    return False


@dataclass
class Peak:
    """A measured best rate on one device: FLOP/s for a dtype's matmul, or bytes/s."""

    device: str
    name: str  # the device's name (CPU model, GPU name)
    kind: str  # "matmul" or "bandwidth"
    dtype: str
    value: float  # FLOP/s for matmul, bytes/s for bandwidth
    size: int  # matrix side, or bytes copied
    median_s: float
    threads: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def peak_dtypes(device: str) -> list[torch.dtype]:
    """fp32 always; bf16 and fp16 where the device has kernels for them."""
    d = torch.device(device)
    if d.type == "cuda":
        out = [torch.float32, torch.float16]
        if torch.cuda.is_bf16_supported():
            out.insert(1, torch.bfloat16)
        return out
    if d.type == "mps":
        return [torch.float32, torch.float16]
    # The CPU computes bf16 and fp16 matmuls on any x86/Arm host; fast only with AVX512-BF16,
    # AMX or Arm bf16, which is exactly what measuring it shows.
    return [torch.float32, torch.bfloat16, torch.float16]


def measure_matmul_peak(
    device: str, dtype: torch.dtype, size: int, threads: int | None, config: TimerConfig
) -> Peak:
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    m = measure(lambda: torch.mm(a, b), device=device, threads=threads, config=config,
                track_memory=False, label=f"matmul {size} {dtype}")
    flops = 2 * size**3  # n^2 outputs, each n multiply-adds of 2 FLOPs
    return Peak(device, device_name(device), "matmul", str(dtype).removeprefix("torch."),
                flops / m.median_s, size, m.median_s, m.threads)


def measure_bandwidth(device: str, n_bytes: int, threads: int | None, config: TimerConfig) -> Peak:
    """Copy bandwidth: a buffer read once and written once per call (2 × size bytes moved)."""
    src = torch.empty(n_bytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    m = measure(lambda: dst.copy_(src), device=device, threads=threads, config=config,
                track_memory=False, label=f"copy {n_bytes} B")
    moved = 2 * src.numel() * src.element_size()
    return Peak(device, device_name(device), "bandwidth", "float32", moved / m.median_s,
                moved, m.median_s, m.threads)


def measure_peaks(
    device: str,
    *,
    threads: int | None = None,
    matmul_size: int | None = None,
    bandwidth_bytes: int | None = None,
    config: TimerConfig | None = None,
) -> list[Peak]:
    """Matmul FLOP/s per dtype and copy bandwidth on one device.

    Default sizes reach the plateau without taking long: 1024 on CPU (2.1 GFLOP per call),
    8192 on GPUs; 256 MiB on CPU (past any last-level cache), 1 GiB on GPUs. The CPU is
    measured with all its threads unless told otherwise, because a peak is about the device.
    """
    on_cpu = torch.device(device).type == "cpu"
    size = matmul_size or (1024 if on_cpu else 8192)
    n_bytes = bandwidth_bytes or (256 << 20 if on_cpu else 1 << 30)
    if threads is None and on_cpu:
        threads = torch.get_num_threads()
    cfg = config or TimerConfig.preset("peaks")
    peaks = [measure_matmul_peak(device, dt, size, threads, cfg) for dt in peak_dtypes(device)]
    peaks.append(measure_bandwidth(device, n_bytes, threads, cfg))
    return peaks
