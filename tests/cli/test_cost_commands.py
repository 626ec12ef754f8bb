"""`cost` and `arch` as a user runs them."""

import json
import sys

import pytest


def test_cost_json_has_the_documented_shape(cli, tmp_path):
    r = cli("cost", "zoo:convnet", "--depth", "1", "--json", "c.json")
    assert r.code == 0, r.err
    d = json.loads((tmp_path / "c.json").read_text())
    assert set(d) >= {"params", "trainable_params", "flops", "flops_by_category", "macs", "bytes", "intensity",
                      "size_bytes", "by_module", "uncounted"}
    assert set(d["flops_by_category"]) == {"matmul", "conv", "norm", "pool", "elementwise"}
    assert d["flops"] == sum(d["flops_by_category"].values())
    assert d["macs"] == (d["flops_by_category"]["matmul"] + d["flops_by_category"]["conv"]) // 2
    names = [m["name"] for m in d["by_module"]]
    assert names[0] == "(model)" and "0" in names and "0.0" not in names
    assert set(d["by_module"][1]) >= {"name", "type", "params", "flops", "bytes"}
    assert d["uncounted"] == []
    assert "uncounted: none" in r.out


def test_cost_roofline_with_stored_peaks_and_plot(cli, tmp_path):
    assert cli("devices", "--peak", "--matmul-size", "128").code == 0
    r = cli("cost", "zoo:mlp", "--set", "B=16", "--depth", "1", "--roofline", "--threads", "1",
            "--json", "r.json", "--plot", "roof.png")
    assert r.code == 0, r.err
    roof = json.loads((tmp_path / "r.json").read_text())["roofline"]
    assert roof["peaks_source"] == "stored" and roof["peak_flops_per_s"] > 0
    whole = roof["rows"][0]
    assert whole["name"] == "(model)" and whole["lower_bound_s"] > 0 and whole["measured_s"] > 0
    assert whole["share_of_peak"] == pytest.approx(whole["lower_bound_s"] / whole["measured_s"])
    assert all(row["measured_s"] for row in roof["rows"])  # every layer of a Sequential ran on its own
    assert all(row["n"] >= 5 and row["iqr_s"] is not None and isinstance(row["flags"], list) for row in roof["rows"])
    assert (tmp_path / "roof.png").read_bytes()[:4] == b"\x89PNG"


def test_cost_counts_training_forward(cli, tmp_path):
    cli("cost", "zoo:convnet", "--json", "eval.json")
    cli("cost", "zoo:convnet", "--train", "--json", "train.json")
    ev = json.loads((tmp_path / "eval.json").read_text())["flops_by_category"]
    tr = json.loads((tmp_path / "train.json").read_text())["flops_by_category"]
    assert tr["conv"] == ev["conv"] and tr["norm"] > ev["norm"]  # batch statistics cost more


@pytest.mark.parametrize("args,fragment", [
    (["cost", "zoo:mlp", "--input", "4x3"], "rejected input"),
    (["cost", "zoo:mlp", "--depth", "-1"], "--depth must be >= 0"),
    (["cost", "timm:not_a_model_xyz"], "timm:not_a_model_xyz: no such model"),
    (["arch", "zoo:mlp", "zoo:xor", "--batch", "0"], "--batch"),
    (["arch", "timm:vit_tiny_patch16_224", "zoo:mlp", "--input", "Bx3x64x64"], "rejected input (8, 3, 64, 64)"),
])
def test_cost_and_arch_bad_input(cli, args, fragment):
    r = cli(*args)
    assert r.code == 2 and fragment in r.err, r.err


def test_missing_resolver_package_is_named(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` fail as if not installed
    r = cli("cost", "timm:resnet18")
    assert r.code == 2 and "timm is not installed (pip install 'fastslow[models]')" in r.err


def test_arch_compares_library_models(cli, tmp_path):
    r = cli("arch", "torchvision:resnet18", "timm:vit_tiny_patch16_224", "zoo:convnet",
            "--batch", "2", "--max-time", "0.2", "--json", "a.json", "--plot", "a.png")
    assert r.code == 0, r.err
    models = json.loads((tmp_path / "a.json").read_text())["models"]
    assert [m["spec"] for m in models] == ["torchvision:resnet18", "timm:vit_tiny_patch16_224", "zoo:convnet"]
    for m in models:
        assert set(m) >= {"spec", "params", "flops", "median_s", "throughput_per_s", "n", "iqr_s", "flags"}
        assert m["throughput_per_s"] == pytest.approx(2 / m["median_s"])
    assert models[0]["params"] == 11_689_512  # resnet18, as torchvision documents it
    assert [m["family"] for m in models] == ["convolutional", "transformer", "convolutional"]
    assert (tmp_path / "a.png").exists()
