import time

import pytest

from fastslow.cost.counter import params_of
from fastslow.measure.timer import TimerConfig
from fastslow.optimize import variants as V
from fastslow.optimize.judge import optimize, pareto_front
from fastslow.tasks.registry import resolve_task

FAST = TimerConfig(warmup_s=0.0, min_time_s=0.05, max_time_s=0.3, rel_precision=0.03)


@pytest.fixture(scope="module")
def xor_ctx(tmp_path_factory) -> V.Context:
    task = resolve_task("xor")
    data = task.make_data(0)
    model = task.train(task.build_model(), data)
    return V.Context(task, data, model, data.batch(64), threads=1, workdir=tmp_path_factory.mktemp("exports"))


def test_pareto_front():
    assert pareto_front([(1.0, 0.9), (0.5, 0.9), (0.4, 0.8), (0.6, 0.95)]) == [False, True, True, True]


@pytest.fixture
def slow_step():
    @V.register_step("test-sleep", "adds 5 ms per call")
    def step(c: V.Candidate, ctx: V.Context, arg: str | None) -> V.Candidate:
        def predict(x, inner=c.predict):
            time.sleep(0.005)
            return inner(x)
        return V.Candidate(c.name, predict, None, c.float_module, None, dict(c.notes))
    yield
    V.STEPS.remove("test-sleep")


def test_verdicts_reasons_and_failures(xor_ctx, slow_step):
    report = optimize(xor_ctx, V.parse_pipelines("test-sleep,prune-global:0.99,int8-dynamic,fp16"),
                      max_accuracy_drop=1.0, timer=FAST)
    by = {v.name: v for v in report.variants}
    assert by["test-sleep"].verdict == "rejected" and "slower than the baseline" in by["test-sleep"].reason
    assert by["test-sleep"].latency_ratio > 1
    assert by["prune-global:0.99"].verdict == "rejected" and "accuracy points" in by["prune-global:0.99"].reason
    assert by["prune-global:0.99"].notes["sparsity"] > 0.9
    q = by["int8-dynamic"]  # on a 17-parameter net, quantization overhead outweighs everything
    assert q.accuracy is not None and q.max_abs_diff is not None and q.size_bytes is not None
    assert (q.verdict == "rejected") == (q.ci95[0] > 1 or "accuracy" in q.reason)
    assert set(report.baseline) >= {"median_s", "size_bytes", "params", "flops", "accuracy"}
    d = report.to_dict()["variants"][0]
    assert set(d) >= {"name", "median_s", "latency_ratio", "ci95", "size_bytes", "params", "flops", "accuracy",
                      "max_abs_diff", "verdict", "pareto", "reason", "n", "iqr_s", "flags"}
    assert d["n"] >= 3


def test_distilled_and_plain_students_have_the_same_size(xor_ctx):
    d = V.build([("distill", 0.5)], xor_ctx)
    s = V.build([("student", 0.5)], xor_ctx)
    assert params_of(d.module) == params_of(s.module) < params_of(xor_ctx.baseline)
    assert d.notes["distilled"] and not s.notes["distilled"]


def test_search_tries_each_step_then_combines_the_best_of_each_group(xor_ctx, monkeypatch):
    from fastslow.optimize import judge

    monkeypatch.setattr(judge, "SEARCH_GROUPS", {"model": ["distill:0.5"], "int8": ["int8-dynamic"],
                                                 "runtime": ["onnx", "channels-last"]})
    report = judge.search(xor_ctx, max_accuracy_drop=5.0, timer=FAST)
    s = report.search
    names = [v.name for v in report.variants]
    assert names[:4] == ["distill:0.5", "int8-dynamic", "onnx", "channels-last"] and s["singles"] == 4
    by = {v.name: v for v in report.variants}
    for group, kept in s["kept_per_group"].items():  # only accepted steps that were faster alone
        assert all(by[n].verdict == "accepted" and by[n].latency_ratio < 1 for n in kept), group
    kept = {n for names in s["kept_per_group"].values() for n in names}
    for combo in s["combinations"]:  # each combination is made of kept steps, two or more groups
        assert combo in names and "+" in combo and set(combo.split("+")) <= kept | {"finetune"}
    assert s["best"] == (report.best().name if report.best() else None)
