import time

import pytest
import torch

from fastslow.errors import UserError
from fastslow.measure.stats import Measurement
from fastslow.measure.timer import TimerConfig, Workload, measure, measure_interleaved
from tests.conftest import needs_cuda


def test_sleep_is_measured_at_least_as_long_as_it_sleeps(fast_timer):
    m = measure(lambda: time.sleep(0.002), config=fast_timer)
    assert m.median_s >= 0.002
    assert m.stats()["min_s"] >= 0.002
    assert m.calls_per_sample == 1  # a 2 ms call already fills a 1 ms block


def test_fast_calls_are_timed_in_blocks(fast_timer):
    m = measure(lambda: None, config=fast_timer)
    assert m.calls_per_sample > 10
    assert m.median_s < 1e-4


def test_threads_are_set_while_timing_and_restored():
    before = torch.get_num_threads()
    seen = set()
    measure(lambda: seen.add(torch.get_num_threads()), threads=1,
            config=TimerConfig(min_time_s=0.0, max_time_s=0.02, min_samples=2))
    assert seen == {1}
    assert torch.get_num_threads() == before


def test_runs_under_inference_mode_unless_disabled(fast_timer):
    seen = set()
    measure(lambda: seen.add(torch.is_inference_mode_enabled()), config=fast_timer)
    assert seen == {True}
    seen.clear()
    off = TimerConfig(min_time_s=0.0, max_time_s=0.02, min_samples=2, inference_mode=False)
    measure(lambda: seen.add(torch.is_inference_mode_enabled()), config=off)
    assert seen == {False}


def test_warm_up_runs_before_the_timed_calls():
    calls = []
    cfg = TimerConfig(warmup_s=0.0, warmup_calls=5, min_time_s=0.0, max_time_s=0.01,
                      min_samples=1, block_min_s=0.0)
    m = measure(lambda: calls.append(1), config=cfg)
    assert len(calls) >= 5 + m.total_calls


def test_stops_on_precision_or_budget():
    loose = TimerConfig(min_time_s=0.0, max_time_s=5.0, rel_precision=0.5, min_samples=5)
    m = measure(lambda: time.sleep(0.001), config=loose)
    assert m.stop_reason == "precision" and m.n < 100
    tight = TimerConfig(min_time_s=0.0, max_time_s=0.05, rel_precision=1e-9, min_samples=5)
    m = measure(lambda: time.sleep(0.001), config=tight)
    assert m.stop_reason == "time budget"


def test_interleaving_alternates_blocks_and_pairs_samples(fast_timer):
    order = []
    cfg = TimerConfig(warmup_s=0.0, warmup_calls=1, min_time_s=0.0, max_time_s=0.05,
                      min_samples=5, block_min_s=0.0, block_warmup_calls=0)
    ma, mb = measure_interleaved(
        [Workload(lambda: order.append("a"), track_memory=False),
         Workload(lambda: order.append("b"), track_memory=False)], cfg)
    assert ma.n == mb.n >= 5
    timed = order[2:]  # after one warm-up call each
    # One block each per round, and the first of each round alternates: no side always goes first.
    assert timed[: 2 * ma.n] == ["a", "b", "b", "a"] * (ma.n // 2) + ["a", "b"] * (ma.n % 2)


def test_interleaving_can_warm_each_block_up_with_untimed_calls():
    order = []
    cfg = TimerConfig(warmup_s=0.0, warmup_calls=1, min_time_s=0.0, max_time_s=0.05, min_samples=5,
                      block_min_s=0.0, block_warmup_calls=1)
    ma, mb = measure_interleaved(
        [Workload(lambda: order.append("a"), track_memory=False),
         Workload(lambda: order.append("b"), track_memory=False)], cfg)
    timed = order[2:]  # after one warm-up call each
    # each one-call block follows one untimed call of its own, the first of each round alternating
    assert ma.calls_per_sample == 1 and timed[: 4 * ma.n] == ["a", "a", "b", "b", "b", "b", "a", "a"] * (
        ma.n // 2) + ["a", "a", "b", "b"] * (ma.n % 2)


def test_a_block_warmed_up_does_not_start_on_what_the_other_workload_left():
    """A workload whose first call after the other one is slow (its caches refilled, here a 20 ms
    sleep): timed from its first call, the blocks that follow the other's carry that call;
    after an untimed call, none does."""
    cold = {"now": True}

    def other() -> None:
        cold["now"] = True

    def mine() -> None:
        if cold["now"]:
            time.sleep(0.02)
            cold["now"] = False

    blocks = {}
    for warm_ups in (0, 1):
        cfg = TimerConfig(warmup_s=0.0, warmup_calls=2, min_time_s=0.0, max_time_s=0.1, min_samples=6,
                          block_warmup_calls=warm_ups)
        _, m = measure_interleaved([Workload(other, track_memory=False), Workload(mine, track_memory=False)], cfg)
        blocks[warm_ups] = [s * m.calls_per_sample for s in m.samples_s]  # each timed block's length
    assert max(blocks[0]) >= 0.02  # a block that began right after the other workload's
    assert max(blocks[1]) < 0.02  # no timed block held a cold call


def test_peak_memory_sees_a_large_temporary_allocation(fast_timer):
    m = measure(lambda: torch.ones(16 << 20).sum(), config=fast_timer)  # 64 MiB temporary
    assert m.peak_mem_bytes is not None and 64 << 20 <= m.peak_mem_bytes < 65 << 20


def test_peak_memory_does_not_depend_on_what_ran_before(fast_timer):
    """A 2048x512 float32 output is 4 MiB at every point of a sweep, however much memory the
    process already holds from earlier calls (the resident set would not grow for it)."""
    w = torch.randn(512, 512)
    peaks = []
    for n in (2048, 16, 2048, 4096, 2048):
        x = torch.randn(n, 512)
        peaks.append(measure(lambda x=x: x @ w, config=fast_timer).peak_mem_bytes)
        big = [torch.randn(n, 512) for _ in range(4)]  # leave freed blocks for malloc to reuse
        del big
    assert peaks[0] == peaks[2] == peaks[4] == 2048 * 512 * 4
    assert peaks[1] == 16 * 512 * 4 and peaks[3] == 4096 * 512 * 4


@pytest.mark.parametrize("field,value", [("max_time_s", 0.0), ("rel_precision", 0.0),
                                         ("min_samples", 0), ("warmup_calls", -1),
                                         ("block_warmup_calls", -1)])
def test_config_rejects_out_of_range_values_by_name(field, value):
    with pytest.raises(UserError, match=field):
        TimerConfig(**{field: value})


def test_workload_rejects_cuda_graph_on_cpu():
    with pytest.raises(UserError, match="cuda_graph"):
        Workload(lambda: None, device="cpu", cuda_graph=True)


@needs_cuda
def test_cuda_events_and_graph_replay(fast_timer):
    a = torch.randn(1024, 1024, device="cuda")
    plain = measure(lambda: a @ a, device="cuda", config=fast_timer)
    graphed = measure(lambda: a @ a, device="cuda", cuda_graph=True, config=fast_timer)
    assert plain.median_s > 0 and graphed.median_s > 0
    assert plain.peak_mem_bytes is not None and plain.peak_mem_bytes >= 4 << 20


def test_every_point_reaches_the_minimum_number_of_samples():
    slow = TimerConfig(warmup_s=0.0, warmup_calls=0, min_time_s=0.0, max_time_s=0.01, min_samples=5)
    m = measure(lambda: time.sleep(0.01), config=slow, track_memory=False)
    assert m.n >= 5 and "few_samples" not in m.flags  # past max_time_s, to the minimum


def test_the_per_point_cap_ends_a_point_below_the_minimum_and_flags_it():
    capped = TimerConfig(warmup_s=0.0, warmup_calls=0, min_time_s=0.0, max_time_s=0.01, min_samples=50,
                         point_cap_s=0.1)
    m = measure(lambda: time.sleep(0.01), config=capped, track_memory=False)
    assert m.n < 50 and m.stop_reason == "point cap" and "few_samples" in m.flags
    assert any("fewer than the minimum of 50" in w for w in m.warnings)
    assert "few_samples" in Measurement.from_dict(m.to_dict()).flags  # the minimum is stored with it
