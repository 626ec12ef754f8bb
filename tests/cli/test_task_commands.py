"""`life`, `xor` and `demo` as a user runs them."""

import csv
import json

import pytest
import torch

from fastslow.zoo.life import fc_net


@pytest.fixture
def life_dir(cli, tmp_path):
    r = cli("life", "train", "--out", "runs/life", "--json", "train.json")
    assert r.code == 0, r.err
    return tmp_path / "runs" / "life"


def test_life_train_writes_checkpoints_curves_and_json(cli, tmp_path, life_dir):
    d = json.loads((tmp_path / "train.json").read_text())
    assert d["percell"]["accuracy"] == 1.0 and d["fc"]["accuracy"] == 1.0
    assert d["percell"]["epochs"] >= 1 and d["fc"]["epochs"] >= 1
    assert d["percell_as_fc_max_abs_diff"] < 1e-4
    assert (life_dir / "percell.pt").exists() and (life_dir / "fc.pt").exists()
    assert (life_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_life_study_json_and_plot(cli, tmp_path, life_dir):
    r = cli("life", "study", "--sizes", "1,4,16", "--models", str(life_dir), "--loop-max-cells", "16",
            "--min-time", "0", "--max-time", "0.02", "--json", "study.json", "--plot", "study.png",
            "--csv", "study.csv")
    assert r.code == 0, r.err
    d = json.loads((tmp_path / "study.json").read_text())
    names = {"rule_numpy", "rule_torch", "percell_loop", "percell_batched", "fc", "min"}
    assert names <= {row["predictor"] for row in d["rows"]}
    for row in d["rows"]:
        assert set(row) >= {"predictor", "size", "median_s", "accuracy", "n", "iqr_s", "flags"}
        assert row["median_s"] is None or row["n"] >= 5  # the minimum number of samples
        assert row["accuracy"] in (None, 1.0)
    assert d["fit"] is not None and d["fit"]["symbol"] == "size"
    assert (tmp_path / "study.png").exists()
    with (tmp_path / "study.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(d["rows"])


@pytest.mark.parametrize("args,fragment", [
    (["life", "study", "--predictors", "rule_torch,bogus"], "--predictors value 'bogus' is unknown"),
    (["life", "study", "--sizes", "8..2"], "--sizes"),
    (["life", "study", "--models", "nowhere"], "nowhere/percell.pt: not found"),
    (["life", "play", "--predictor", "magic"], "--predictor 'magic'"),
    (["life", "play", "--min-weights", "missing.pt"], "missing.pt: not found"),
])
def test_life_bad_input(cli, args, fragment):
    r = cli(*args)
    assert r.code == 2 and fragment in r.err, r.err
    assert "training the per-cell" not in r.err  # refused before training


def test_life_play_check_passes_and_fails(cli, tmp_path, life_dir):
    r = cli("life", "play", "--size", "24", "--steps", "5", "--predictor", "min", "--check", "--no-render",
            "--json", "play.json")
    assert r.code == 0, r.err
    d = json.loads((tmp_path / "play.json").read_text())
    assert d["steps"] == 5 and d["first_mismatch"] is None and d["median_predict_s"] > 0
    # A wrong fc network (untrained weights in place of the trained ones) must be caught.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "percell.pt").write_bytes((life_dir / "percell.pt").read_bytes())
    torch.save({"kind": "fc", "state_dict": fc_net().state_dict()}, bad / "fc.pt")
    r = cli("life", "play", "--size", "24", "--steps", "5", "--predictor", "fc", "--check", "--no-render",
            "--models", str(bad))
    assert r.code == 1 and "generation 1" in r.err


def test_life_play_renders_frames(cli):
    r = cli("life", "play", "--size", "10", "--steps", "2", "--interval", "0")
    assert r.code == 0 and "gen 2/2" in r.out and "\x1b[H" in r.out


def test_life_search_writes_usable_weights(cli, tmp_path, monkeypatch):
    import fastslow.tasks.life.search as search

    monkeypatch.setattr(search, "CANDIDATES", [(1, 2)])  # skip the impossible widths to save time
    r = cli("life", "search", "--seeds", "16", "--epochs", "1500", "--out", "found.pt", "--json", "s.json")
    assert r.code == 0, r.err
    assert json.loads((tmp_path / "s.json").read_text())["params"] == 17
    r = cli("life", "play", "--size", "16", "--steps", "3", "--check", "--no-render", "--min-weights", "found.pt")
    assert r.code == 0, r.err


def test_xor_train_json_and_plot(cli, tmp_path):
    r = cli("xor", "train", "--json", "x.json", "--plot", "x.png")
    assert r.code == 0, r.err
    d = json.loads((tmp_path / "x.json").read_text())
    assert d["epochs"] == 100 and d["test_accuracy"] == 1.0  # the tutorial's figure, seed 0
    assert (tmp_path / "x.png").exists() and (tmp_path / "runs" / "xor" / "xor.pt").exists()
    cli("xor", "train", "--json", "y.json")
    assert json.loads((tmp_path / "y.json").read_text())["test_accuracy"] == d["test_accuracy"]


@pytest.mark.slow
def test_demo_writes_a_self_contained_report(demo_run):
    r, root = demo_run, demo_run.root
    assert r.code == 0, r.err
    d = json.loads((root / "demo.json").read_text())
    assert d["search"]["params"] == 17 and d["xor"]["test_accuracy"] == 1.0
    assert {row["size"] for row in d["study"]["rows"]} == {1, 8, 32}
    page = (root / "rep" / "index.html").read_text()
    assert "report: " in r.out and str(root / "rep" / "index.html") in r.out
    for heading in ("Game of Life: training", "Smallest exact predictor", "time per generation",
                    "Continuous XOR", "measured peaks", "Latency predictor for this machine", "Environment"):
        assert heading in page
    assert page.count("data:image/png;base64,") >= 4  # the predictor's predicted-against-measured plot too
    lp = d["predictor"]
    assert lp["collect"]["models_in_collection"] == 8 and lp["train"]["models_held_out"] == 4
    assert set(lp["train"]["held_out"]) == {"gnn", "roofline", "operator-sum"}
    assert lp["predict"]["model"] == "zoo:convnet" and len(lp["predict"]["measured"]) == len(
        lp["predict"]["predictions"])
    assert "zoo:convnet predicted best:" in r.out
    assert "src=\"http" not in page  # self-contained


def test_life_train_below_100_percent_says_so_and_is_stored_as_partial(cli, tmp_path):
    r = cli("life", "train", "--epochs", "1", "--out", "short", "--json", "t.json")
    assert r.code == 0, r.err
    assert "not exact" in r.out and "stored as partial" in r.out
    cli("history", "--json", "h.json")
    assert json.loads((tmp_path / "h.json").read_text())["runs"][0]["status"] == "partial"
