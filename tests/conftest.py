from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from fastslow.measure.timer import TimerConfig

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
