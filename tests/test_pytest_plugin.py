"""The pytest plugin, run as a user's test suite would run it (pytester, a real database)."""

import json

pytest_plugins = ["pytester"]

TEST_FILE = """
import time
from pathlib import Path

def test_speed(fastslow_bench):
    delay = float(Path(r"{delay}").read_text())
    m = fastslow_bench(lambda: time.sleep(delay))
    assert m.n >= 5
"""


def test_the_fixture_times_stores_and_gates(pytester, tmp_path):
    delay = tmp_path / "delay"
    db = tmp_path / "r.db"
    pytester.makepyfile(test_timing=TEST_FILE.format(delay=delay))
    args = ["-p", "no:cacheprovider", f"--fastslow-db={db}", "--fastslow-fail-if-slower=20"]
    delay.write_text("0.002")
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)  # nothing stored before: nothing to compare with
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)  # the same speed: passes the gate
    delay.write_text("0.006")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_speed: slower by *%*more than the 20% allowed, against stored run 2*"])
    from fastslow.store.db import ResultsStore

    with ResultsStore(db, readonly=True) as s:
        runs = s.query(command="pytest")
        assert len(runs) == 3 and all(r.spec == "test_timing.py::test_speed" for r in runs)
        assert json.dumps(s.get(runs[0].id).points[0]["measurement"]["samples_s"])
