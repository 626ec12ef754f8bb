"""The progress bar every long command draws on a terminal: its count and the time it says is left."""

import re
import time

from fastslow.cli.app import progress
from tests.conftest import drawn


def test_a_time_budget_that_ends_first_is_the_time_left(terminal):
    with progress(100, "collecting", budget_s=10) as advance:
        time.sleep(0.3)
        advance()
        time.sleep(0.3)
        advance("collecting: two")  # at this rate the 98 steps left would take about 29 s
    last = drawn(terminal)[-1]
    left = re.search(r"(\d+):(\d\d):(\d\d) \(budget\)", last)
    assert last.startswith("collecting: two") and "2/100" in last and left, last
    assert 5 <= int(left[2]) * 60 + int(left[3]) <= 10


def test_without_a_budget_the_time_left_is_the_rates(terminal):
    with progress(3, "training") as advance:
        for _ in range(2):
            time.sleep(0.2)
            advance()
    last = drawn(terminal)[-1]
    assert "2/3" in last and "budget" not in last, last


def test_a_count_known_once_work_has_begun_is_set_with_the_steps_done(terminal):
    with progress(None, "evaluating") as advance:
        advance("leaving out a (1/3)", done=0, total=3)
        advance("leaving out b (2/3)", done=1, total=3)
    shown = drawn(terminal)
    assert "0/?" in shown[0]  # nothing known yet
    assert "leaving out b (2/3)" in shown[-1] and "1/3" in shown[-1], shown
