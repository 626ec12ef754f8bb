"""The Python API, as a user calls it: the same functions and config objects the CLI uses."""

import fastslow.api as fs
from fastslow.measure.bench import RunSettings
from fastslow.store.db import ResultsStore
from tests.conftest import FAST


def test_bench_from_python_measures_and_stores(tmp_path):
    r = fs.bench("zoo:mlp", RunSettings(sets={"B": 8}), timer=FAST, store=tmp_path / "r.db")
    (p,) = r.points
    assert p.measurement.n >= 3 and p.batch == 8 and r.status == "ok"
    assert r.saved.run_id == 1 and r.saved.error is None
    with ResultsStore(tmp_path / "r.db", readonly=True) as s:
        assert s.get(1).spec == "zoo:mlp"
    assert fs.bench("zoo:mlp", timer=FAST, store=False).saved.run_id is None


def test_optimize_from_python_trains_judges_and_saves(tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    run = fs.optimize(task="xor", pipelines="int8-dynamic,onnx", timer=FAST, save=tmp_path / "best",
                      store=tmp_path / "r.db")
    assert list(scratch.iterdir()) == []  # the variants' exports are gone once the run is saved
    assert run.trained and [v.name for v in run.report.variants] == ["int8-dynamic", "onnx"]
    assert run.report.baseline["accuracy"] > 0.5
    best = run.report.best()
    if best is not None:
        assert run.manifest["variant"] == best.name and (tmp_path / "best" / "manifest.json").exists()
    else:  # on a 17-parameter net both can be slower: the save says why, and the run is still stored
        assert run.manifest is None and "no variant was accepted" in run.save_error
    assert run.saved.run_id == 1


def test_a_failed_save_keeps_the_judged_run(tmp_path):
    run = fs.optimize(task="xor", pipelines="prune-l1", timer=FAST, max_accuracy_drop=0.0, save=tmp_path / "x",
                      save_variant="prune-l1", store=tmp_path / "r.db")
    if run.report.variants[0].verdict != "accepted":
        assert "no variant was accepted" in run.save_error and run.manifest is None
    with ResultsStore(tmp_path / "r.db", readonly=True) as s:
        assert s.get(run.saved.run_id).payload["variants"][0]["name"] == "prune-l1"


def test_architecture_family():
    from torch import nn

    assert fs.architecture_family(nn.Sequential(nn.Conv2d(8, 8, 3, groups=8))) == "efficient"
    assert fs.architecture_family(nn.TransformerEncoderLayer(16, 2)) == "transformer"
    assert fs.architecture_family(nn.Sequential(nn.Conv2d(3, 8, 3))) == "convolutional"


def test_verify_times_a_disturbed_group_again_and_keeps_the_take_nearer_the_others():
    import dataclasses

    import torch

    from fastslow.api.predict import _retake_disturbed
    from fastslow.predict.collect import time_configs
    from fastslow.predict.configs import Config, Runners
    from fastslow.predict.reference import fastest, group_kind
    from fastslow.zoo import create_model
    from tests.conftest import SMALL

    torch.set_num_threads(1)
    configs = [Config(2, 1, False, "eager"), Config(2, 1, False, "int8-dynamic"), Config(2, 1, False, "onnx")]
    runners = Runners(create_model("mlp").eval(), (256,))
    try:
        timed = time_configs(runners, configs, SMALL.timer())
        # the collection's usual reference times: those of this take, so every group ran at its speed
        usual = {group_kind(c): fastest(timed[c].extra["reference_samples_s"]) for c in configs}
        assert _retake_disturbed(runners, configs, timed, usual, SMALL.timer(), print) == ([], [])
        # as if a neighbour had slowed the ONNX Runtime group: its reference ran 3x slower than beside torch
        torch_take, first = timed[configs[0]], timed[configs[2]]
        timed[configs[2]] = dataclasses.replace(first, extra={
            **first.extra, "reference_samples_s": [3 * s for s in first.extra["reference_samples_s"]]})
        twice, kept = _retake_disturbed(runners, configs, timed, usual, SMALL.timer(), print)
    finally:
        runners.close()
    assert twice == kept == ["1t-onnx"]  # timed again, and the second take, near the others, is kept
    assert timed[configs[2]] is not first  # a new measurement, beside a reference at about its usual time
    assert fastest(timed[configs[2]].extra["reference_samples_s"]) < 2 * fastest(first.extra["reference_samples_s"])
    assert timed[configs[0]] is torch_take  # the undisturbed groups keep their measurements
