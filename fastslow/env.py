"""The environment a result was measured in, attached to every stored run."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
from typing import Any

import torch

import fastslow


@functools.cache
def git_commit(cwd: str | None = None) -> str | None:
    """The commit of the working directory's repository (with '-dirty' if modified), or None."""
    cwd = cwd or os.getcwd()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha or None


def host_name() -> str:
    return socket.gethostname()


# Above this share of the machine's CPU used by other processes, timings are warned about.
BUSY_WARNING_PERCENT = 25.0
_LOAD: tuple[float, float] | None = None  # (when, percent): one reading serves a whole command


def others_cpu_percent(refresh: bool = False, interval_s: float = 0.25) -> float:
    """The share of all CPUs (0-100) that other processes used over a short window: system-wide
    use minus this process's. Read when asked to `refresh` (the API does so just before it
    times anything) or when there is no reading yet; otherwise the last reading."""
    import time

    import psutil

    global _LOAD
    if _LOAD is not None and not refresh:
        return _LOAD[1]
    me = psutil.Process()
    me.cpu_percent(None)
    psutil.cpu_percent(None)
    time.sleep(interval_s)
    total = psutil.cpu_percent(None)
    mine = me.cpu_percent(None) / (psutil.cpu_count() or 1)
    _LOAD = (time.monotonic(), round(max(0.0, total - mine), 1))
    return _LOAD[1]


def busy_warning() -> str | None:
    """A line to print when other processes were using the CPU as timing began, else None."""
    busy = _LOAD[1] if _LOAD is not None else None
    if busy is None or busy < BUSY_WARNING_PERCENT:
        return None
    return (f"other processes were using {busy:.0f}% of this machine's CPU ({os.cpu_count()} logical cores) when "
            "timing began: expect noise, and trust ratios measured side by side more than absolute times")


def environment(device: str = "cpu", threads: int | None = None, *, timed: bool = True) -> dict[str, Any]:
    """What a result was measured on, stored with every run; `others_cpu_percent` is how busy
    the machine was with other work just before (see `others_cpu_percent`), None for a run that
    timed nothing (`timed=False`: a prediction, which need not wait the quarter second it takes
    to read)."""
    return {
        "fastslow": fastslow.__version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": host_name(),
        "device": device,
        "device_name": device_name(device),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "git_commit": git_commit(),
        "others_cpu_percent": others_cpu_percent() if timed else None,
    }


# Flags worth showing from /proc/cpuinfo: the vector and matrix extensions kernels use.
INTERESTING_CPU_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
    "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
    "asimd", "sve", "sve2", "bf16", "i8mm",
)


def cpu_model_and_flags() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features"):
                    flags.update(value.split())
    except OSError:
        pass
    return model, [f for f in INTERESTING_CPU_FLAGS if f in flags]


def device_name(device: str) -> str:
    d = torch.device(device)
    if d.type == "cuda":
        return torch.cuda.get_device_name(d.index or 0)
    if d.type == "mps":
        return "Apple Metal (MPS)"
    return cpu_model_and_flags()[0]
