from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fastslow.measure.timer import TimerConfig
from fastslow.predict.collect import CollectSettings
from fastslow.predict.corpus import FAMILIES, Sample

# Short budgets: tests check behaviour, not speed.
FAST = TimerConfig(warmup_s=0.0, warmup_calls=1, min_time_s=0.01, max_time_s=0.1,
                   rel_precision=0.05, min_samples=3)
FAST_CLI = ["--min-time", "0.01", "--max-time", "0.1", "--precision", "0.05"]

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def fast_timer() -> TimerConfig:
    return FAST


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self, path: Path) -> dict:
        return json.loads(path.read_text())


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> Callable[..., CliResult]:
    """Run `fastslow ARGS...` in-process, in a fresh working directory with its own database."""
    from fastslow.cli import main, state

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FASTSLOW_DB", raising=False)

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        state.update(debug=False, db=None)
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def recapturable(monkeypatch):
    """The format before this one, as a version that changed only the capture would list it as
    one `recapture` brings up to date (format 10 had been such a version for 8 and 9; format 11
    changed what ONNX Runtime runs, so no earlier format is now)."""
    import importlib

    from fastslow.predict.dataset import FORMAT_VERSION

    for name in ("fastslow.predict.dataset", "fastslow.predict.collect", "fastslow.api.predict"):
        monkeypatch.setattr(importlib.import_module(name), "RECAPTURABLE", (FORMAT_VERSION - 1,))
    return FORMAT_VERSION - 1


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr's console as a terminal that keeps what was drawn on it (progress bars are drawn
    only on a terminal); read it with `drawn`."""
    from fastslow.report.output import err_console

    screen = io.StringIO()
    monkeypatch.setattr(err_console, "_file", screen)
    monkeypatch.setattr(err_console, "_force_terminal", True)
    monkeypatch.setattr(err_console, "is_interactive", True)
    return screen


def drawn(screen: io.StringIO) -> list[str]:
    """The lines drawn on a `terminal`, without the control codes that redraw them."""
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "\n", screen.getvalue())
    return [line.strip() for line in text.splitlines() if line.strip()]


def default_sigint() -> None:
    """`preexec_fn` of a child that a test stops with Ctrl-C (SIGINT). A shell that runs a job in
    the background (`make test &`, `nohup`) ignores SIGINT in it, every child inherits that, and
    Python installs no KeyboardInterrupt handler where SIGINT starts out ignored: the child would
    run to its end whatever the test sends. This gives the child the default disposition first."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc), children before their own children."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def torchrun(args: list[str], cwd: Path, *, processes: int = 2, timeout_s: float = 240) -> str:
    """`torchrun --standalone -m fastslow ARGS...` on `processes` CPU processes; its stdout. On a
    hang, every process of the job dumps its Python stacks into the failure: torchrun starts its
    workers in sessions of their own, so each is signalled by pid, not through the agent's group."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
           "-m", "fastslow", *args]
    job = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        out, err = job.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        everyone = [*descendants(job.pid), job.pid]
        for pid in everyone:  # workers first: the agent would otherwise stop them before they dump
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGABRT)
        try:
            out, err = job.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            for pid in everyone:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            out, err = job.communicate()
        pytest.fail(f"torchrun hung; its stacks:\n{err[-12000:]}\nstdout:\n{out[-1000:]}")
    assert job.returncode == 0, err[-2000:]
    return out


# ---- the latency predictor: one small real collection, shared by its tests and the CLI's

SMALL = CollectSettings(batches=(1, 2), threads=(1,), runtimes=("eager", "onnx", "int8-dynamic"), budget_s=0.01,
                        min_samples=3)


def reference_times_set_to(folder: Path, seconds: float) -> None:
    """Rewrite a collection's files as if its speed reference had always run in `seconds`: at a
    picosecond, every group a continued collection times looks disturbed."""
    from fastslow.predict.dataset import save_arrays

    for path in sorted((folder / "npz").glob("*.npz")):
        with np.load(path, allow_pickle=False) as z:
            arrays = dict(z.items())
        arrays["config_reference"] = np.full_like(arrays["config_reference"], seconds * 1e9)
        save_arrays(path, arrays)


class DataDependent(nn.Module):
    """Branches on a value: torch.export cannot capture it."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return self.lin(x) if x.sum() > 0 else x


def _broken(rng: random.Random, seed: int) -> Sample:
    return Sample("broken", seed, {}, (4,), DataDependent)


@pytest.fixture(scope="session")
def broken_family():
    """A throw-away family whose models cannot be captured."""
    FAMILIES.add("broken", _broken)
    yield "broken"
    FAMILIES.remove("broken")


@pytest.fixture(scope="session")
def collection(tmp_path_factory: pytest.TempPathFactory, broken_family: str) -> tuple[Path, Path, object]:
    """(collection folder, its results database, the CollectResult) of 2 MLPs, 2 squeeze-excite CNNs
    and 2 models that cannot be captured."""
    from fastslow.predict.collect import collect

    root = tmp_path_factory.mktemp("collection")
    torch.set_num_threads(1)
    result = collect(root / "data", SMALL, families=["mlp", "cnn-se", broken_family], per_family=2,
                     repeat_every=2, store=root / "results.db")
    return root / "data", root / "results.db", result


@dataclass
class DemoRun:
    root: Path
    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`fastslow demo` as a user runs it (reduced sizes, a small predictor), once for every test
    that reads what it prints, stores and writes (the report)."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("demo")
    cmd = [sys.executable, "-m", "fastslow", "--db", str(root / "r.db"), "demo", "--out", "rep", "--sizes", "1,8,32",
           "--search-seeds", "16", "--matmul-size", "256", "--predictor-models", "2", "--json", "demo.json"]
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
    return DemoRun(root, r.returncode, r.stdout, r.stderr)
