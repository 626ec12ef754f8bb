"""A pytest plugin (registered through the `pytest11` entry point): the `fastslow_bench`
fixture times a callable with fastslow's timer and stores it in the results history; with
`--fastslow-fail-if-slower PCT` a test fails when its callable is slower than the newest
stored measurement of the same name on this machine by more than PCT percent (the same gate
as `fastslow compare --fail-if-slower`).

    def test_mlp_speed(fastslow_bench):
        model, x = make_mlp(), torch.randn(64, 256)
        m = fastslow_bench(lambda: model(x))
        assert m.median_s < 0.01

    pytest --fastslow-fail-if-slower 10
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fastslow", "fastslow timing")
    group.addoption("--fastslow-db", default=None, metavar="PATH",
                    help="Results database for fastslow_bench (default $FASTSLOW_DB or .fastslow/results.db).")
    group.addoption("--fastslow-fail-if-slower", type=float, default=None, metavar="PCT",
                    help="Fail a test whose fastslow_bench callable got slower than its last stored "
                         "measurement by more than PCT percent.")
    group.addoption("--fastslow-threshold", type=float, default=2.0, metavar="PCT",
                    help="Smallest difference, in percent, that counts as slower (default 2).")


@pytest.fixture
def fastslow_bench(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Time `fn` (a callable of no arguments) and store it; returns the Measurement."""
    from fastslow.env import environment, others_cpu_percent
    from fastslow.measure.bench import Point
    from fastslow.measure.compare import against_baseline, gate
    from fastslow.measure.timer import TimerConfig, measure
    from fastslow.store.db import Record, ResultsStore

    config = request.config
    fail_pct = config.getoption("--fastslow-fail-if-slower")
    threshold = config.getoption("--fastslow-threshold") / 100

    def run(fn: Callable[[], object], *, name: str | None = None, threads: int = 1,
            timer: TimerConfig | None = None) -> Any:
        name = name or request.node.nodeid
        others_cpu_percent(refresh=True)
        m = measure(fn, threads=threads, config=timer or TimerConfig.preset("bench"), label=name)
        env = environment(threads=threads)
        with ResultsStore(config.getoption("--fastslow-db")) as db:
            previous = next((r for r in db.query(command="pytest", spec=name, status="ok", limit=None)
                             if r.spec == name and r.env.get("host") == env["host"]
                             and r.settings.get("threads") == threads), None)
            record = Record("pytest", name, {"threads": threads, "nodeid": request.node.nodeid}, env, {},
                            "ok", f"median {m.median_s:.3g} s", points=[Point({}, m).to_record()])
            db.add(record)
            if previous is not None:
                previous = db.get(previous.id)
        if previous is not None and fail_pct is not None:
            before = Point.from_record(previous.points[0]).measurement
            failed = gate(against_baseline(before, m, threshold=threshold), fail_pct)
            if failed:
                pytest.fail(f"{name}: {failed}, against stored run {previous.id}", pytrace=False)
        return m

    return run
