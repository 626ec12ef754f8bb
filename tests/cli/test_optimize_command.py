"""`optimize` as a user runs it."""

import json
import textwrap

import pytest


def test_optimize_json_save_plot_and_history(cli, tmp_path):
    r = cli("optimize", "--task", "xor", "--try", "int8-dynamic,prune-l1,onnx", "--max-time", "0.3",
            "--json", "o.json", "--save", "best", "--plot", "o.png")
    assert r.code == 0, r.err
    d = json.loads((tmp_path / "o.json").read_text())
    assert set(d["baseline"]) >= {"median_s", "size_bytes", "params", "flops", "accuracy"}
    assert [v["name"] for v in d["variants"]] == ["int8-dynamic", "prune-l1", "onnx"]
    for v in d["variants"]:
        assert v["verdict"] in ("accepted", "rejected") and isinstance(v["pareto"], bool) and v["reason"]
        assert v["latency_ratio"] == pytest.approx(v["median_s"] / v["baseline_median_s"], rel=1e-9)
    manifest = json.loads((tmp_path / "best" / "manifest.json").read_text())
    assert manifest["task"] == "xor" and manifest["spec"] is None and manifest["chosen_as"] == "fastest"
    assert manifest["format"] in ("onnx", "torch.export", "torchscript")
    assert (tmp_path / "o.png").exists()
    h = cli("history", "--command", "optimize", "--json", "h.json")
    assert h.code == 0 and json.loads((tmp_path / "h.json").read_text())["runs"][0]["spec"] == "task:xor"


def test_a_users_own_task_and_model(cli, tmp_path):
    (tmp_path / "mytask.py").write_text(textwrap.dedent("""
        from torch import nn
        from fastslow.tasks.base import Task, FitConfig
        from fastslow.tasks.xor.task import xor_data

        def wide():
            return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))

        def make_task():
            return Task("mine", wide, xor_data, "bce", FitConfig(epochs=10, lr=1e-2))
    """))
    r = cli("optimize", "--task", "mytask.py:make_task", "--try", "int8-dynamic", "--max-time", "0.2",
            "--json", "u.json")
    assert r.code == 0, r.err
    assert json.loads((tmp_path / "u.json").read_text())["baseline"]["params"] == 2 * 16 + 16 + 16 + 1
    r = cli("optimize", "zoo:xor", "--task", "xor", "--try", "int8-dynamic", "--max-time", "0.2", "--json", "s.json")
    assert r.code == 0, r.err
    assert json.loads((tmp_path / "s.json").read_text())["baseline"]["params"] == 17


@pytest.mark.parametrize("args,fragment", [
    (["--try", "bogus"], "unknown optimization step 'bogus'"),
    (["--task", "nope"], "--task value 'nope' is unknown"),
    (["--batch", "0"], "--batch"),
    (["zoo:mlp", "--task", "xor", "--try", "int8-dynamic"], "rejected the task's input"),
])
def test_optimize_bad_input(cli, args, fragment):
    r = cli("optimize", *args)
    assert r.code == 2 and fragment in r.err, r.err


def test_optimize_lists_steps(cli):
    r = cli("optimize", "--list")
    assert r.code == 0 and "prune-structured" in r.out and "default --try" in r.out


def test_save_variant_by_name_and_size(cli, tmp_path):
    r = cli("optimize", "--task", "xor", "--try", "int8-dynamic,onnx,bf16", "--max-time", "0.2",
            "--max-accuracy-drop", "100", "--seed", "0", "--json", "o.json",
            "--save", "small", "--save-variant", "smallest")
    assert r.code == 0, r.err
    d = json.loads((tmp_path / "o.json").read_text())
    accepted = [v for v in d["variants"] if v["verdict"] == "accepted"]
    smallest = min(accepted, key=lambda v: v["size_bytes"])
    assert json.loads((tmp_path / "small" / "manifest.json").read_text())["variant"] == smallest["name"]
    r = cli("optimize", "--task", "xor", "--try", "onnx", "--save", "x", "--save-variant", "nope")
    assert r.code == 2 and "--save-variant value 'nope' is neither fastest, smallest nor one of" in r.err
    assert "training" not in r.err  # refused before training
