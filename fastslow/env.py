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


def environment(device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    from fastslow.measure.devices import _device_name

    return {
        "fastslow": fastslow.__version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": host_name(),
        "device": device,
        "device_name": _device_name(device),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "git_commit": git_commit(),
    }
