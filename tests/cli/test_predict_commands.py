"""`predictor train|eval` and `predict` as a user runs them, on a real small collection."""

import dataclasses
import inspect
import json

import pytest
import torch

from fastslow.cli.predict import train as train_command
from fastslow.errors import UserError
from fastslow.measure.bench import ModelSource
from fastslow.predict.dataset import FORMAT_VERSION
from fastslow.predict.predictor import Predictor, PredictorConfig
from fastslow.store.db import ResultsStore
from tests.conftest import drawn, reference_times_set_to, torchrun


@pytest.fixture(scope="module")
def trained(collection, tmp_path_factory):
    """A predictor trained on the small collection (folder, results database)."""
    from fastslow.api.predict import train
    from fastslow.predict.predictor import PredictorConfig

    root = tmp_path_factory.mktemp("trained")
    run = train(collection[0], root / "p", PredictorConfig(hidden=16, layers=2, epochs=20), holdout=0.5,
                store=root / "results.db")
    return run.path.parent, root / "results.db"


def test_train_prints_the_three_methods_side_by_side_and_its_json_is_pure(cli, collection, tmp_path):
    r = cli("predictor", "train", str(collection[0]), "--out", "p", "--epochs", "5", "--hidden", "16",
            "--holdout", "0.5", "--json", "-")
    assert r.code == 0, r.err
    payload = json.loads(r.out)  # stdout is the JSON document alone
    assert set(payload["held_out"]) == {"gnn", "roofline", "operator-sum"}
    assert payload["models_trained"] + payload["models_held_out"] == 4 and payload["epochs"] == 5
    assert "held-out models of seen families" in r.err and "operator sum" in r.err  # the table went to stderr
    assert (tmp_path / "p" / "predictor.pt").is_file()
    assert json.loads((tmp_path / "p" / "metrics.json").read_text())["fingerprint"] == payload["fingerprint"]


def test_train_takes_the_readout_and_the_predictor_keeps_it(cli, collection, tmp_path):
    for readout in ("sum", "roofline"):
        r = cli("predictor", "train", str(collection[0]), "--out", readout, "--epochs", "2", "--hidden", "8",
                "--readout", readout)
        assert r.code == 0, r.err
        p = Predictor.load(tmp_path / readout)
        assert p.ranker.readout == readout and p.info["config"]["readout"] == readout
        assert (p.ranker.roofline is not None) == (readout == "roofline")
        assert p.network.head_out.out_features == (3 if readout == "roofline" else 1)


def test_collect_says_which_groups_were_disturbed_and_how_their_second_take_went(cli, collection, tmp_path):
    import shutil

    out, _, _ = collection
    copy = tmp_path / "data"
    shutil.copytree(out, copy)
    reference_times_set_to(copy, 1e-12)  # every group now looks disturbed
    r = cli("predictor", "collect", "--out", str(copy), "--families", "mlp", "--per-family", "3", "--repeat-every", "0",
            "--batches", "1,2", "--threads", "1", "--budget", "0.01", "--min-samples", "3", "--json", "c.json")
    assert r.code == 0, r.err
    d = json.loads(open("c.json").read())
    new, retaken = d["samples"]
    assert new["name"] == retaken["name"] == "mlp-2" and retaken["retake"] and retaken["kept"] == 0
    assert (f"mlp-2: {new['configs']} configurations (disturbed while timing torch on 1 thread, ONNX Runtime on 1 "
            "thread: timed again later)") in r.err
    assert f"mlp-2 (disturbed groups, again): {retaken['configs']} measurements, 0 steady now" in r.err
    assert ("measurements taken while the machine was disturbed timed again, 0 of them steadily"
            in " ".join(r.out.split()))


def test_recapture_of_an_up_to_date_collection_says_so_and_its_json_is_pure(cli, collection):
    r = cli("predictor", "recapture", str(collection[0]), "--json", "-")
    assert r.code == 0, r.err
    payload = json.loads(r.out)
    assert payload["models"] == 0 and payload["format"] == payload["format_before"]
    assert "nothing to capture" in r.err


def test_predict_without_a_predictor_says_how_to_make_one(cli):
    r = cli("predict", "zoo:mlp")
    assert r.code == 2 and r.err.count("\n") == 1
    assert "no latency predictor has been trained for this machine" in r.err
    assert "fastslow predictor collect --out" in r.err and "minutes" in r.err


def test_predict_uses_the_newest_predictor_for_this_machine_and_gives_the_documented_json(cli, trained):
    folder, db = trained
    r = cli("--db", str(db), "predict", "zoo:mlp", "--input", "4x256", "--json", "-")
    assert r.code == 0, r.err
    d = json.loads(r.out)
    assert d["model"] == "zoo:mlp" and d["machine"]["cpu"] and d["measured"] is None
    assert d["predictor"] == str(folder / "predictor.pt")
    configs = [p["config"] for p in d["predictions"]]
    assert {c["batch"] for c in configs} == {4} and {c["runtime"] for c in configs} == {"eager", "onnx",
                                                                                         "int8-dynamic"}
    assert all(p["latency_s"] > 0 for p in d["predictions"])
    best = min(d["predictions"], key=lambda p: p["latency_s"])
    assert d["best"] == best and d["predict_s"] < 5
    # how far to trust it: the network's scores on the predictor's own held-out models
    held = Predictor.load(folder).info["held_out_scores"]["gnn"]
    assert d["held_out"]["models"] == held["models"] == 2
    assert (d["held_out"]["within_10"], d["held_out"]["within_20"]) == (held["within_10"], held["within_20"])


def test_a_search_loop_predicts_modules_it_built_itself_as_their_spec_is_predicted(trained, tmp_path):
    from fastslow.api.predict import predict
    from fastslow.zoo import resolve_model

    folder, _ = trained
    by_spec = predict("zoo:mlp", inputs=["4x256"], predictor=folder, store=False)
    module = resolve_model("zoo:mlp").model.train()  # a candidate the loop built, in training mode
    by_module = predict(module, inputs=["4x256"], predictor=folder, store=tmp_path / "r.db")
    assert by_module.model == f"module:{type(module).__name__}"
    with ResultsStore(tmp_path / "r.db", readonly=True) as db:
        (run,) = db.query(command="predict")
    assert run.spec == by_module.model and run.settings["inputs"] == ["4x256"]
    assert run.env["others_cpu_percent"] is None  # nothing was timed, so the machine's load was not read
    assert by_module.predictions == by_spec.predictions  # the same graph, the same predictions
    assert module.training  # given back in the mode it came in
    with pytest.raises(UserError, match="inputs.*needs its input's shape"):
        predict(module, predictor=folder, store=False)
    with pytest.raises(UserError, match="inputs.*in the ModelSource"):
        predict(ModelSource("zoo:mlp", ["4x256"]), inputs=["4x256"], predictor=folder, store=False)


def test_a_search_loop_loads_the_predictor_once_while_its_file_is_unchanged(trained, tmp_path):
    import os
    import shutil

    from fastslow.api.predict import load_predictor

    copy = tmp_path / "p"
    shutil.copytree(trained[0], copy)
    first = load_predictor(copy)
    assert load_predictor(copy / "predictor.pt") is first  # the same file, by its folder or by name
    st = (copy / "predictor.pt").stat()
    os.utime(copy / "predictor.pt", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # trained again in place
    again = load_predictor(copy)
    assert again is not first and again.info["held_out"] == first.info["held_out"]
    with pytest.raises(UserError, match="not found"):
        load_predictor(tmp_path / "gone")


def test_verify_measures_every_configuration_and_prints_the_error(cli, trained):
    folder, _ = trained
    r = cli("predict", "zoo:mlp", "--input", "2x256", "--predictor", str(folder), "--batches", "1,2",
            "--runtimes", "eager,int8-dynamic", "--verify", "--json", "out.json")
    assert r.code == 0, r.err
    assert "error" in r.out and "predicted best:" in r.out and "within ±10%" in r.out
    assert "how far to trust it: for 2 held-out models of its families" in r.out
    d = json.loads(open("out.json").read())
    assert len(d["measured"]) == len(d["predictions"]) == 4
    assert {json.dumps(m["config"], sort_keys=True) for m in d["measured"]} == {
        json.dumps(p["config"], sort_keys=True) for p in d["predictions"]}
    assert 0 <= d["verification"]["within_20"] <= 1


def test_verify_warns_of_a_group_whose_speed_reference_ran_off_the_others(cli, trained, tmp_path):
    # as if ONNX Runtime's reference had usually run 3x faster than it did beside the model now,
    # while torch's ran as usual: a neighbour slowed that group alone
    folder, _ = trained
    ckpt = torch.load(folder / "predictor.pt", weights_only=True)
    nominal = ckpt["info"]["reference_s"]
    ckpt["info"]["reference_s"] = {**nominal, "1t-onnx": nominal["1t-onnx"] / 3}
    torch.save(ckpt, tmp_path / "p.pt")
    r = cli("predict", "zoo:mlp", "--input", "2x256", "--predictor", str(tmp_path / "p.pt"), "--verify",
            "--json", "out.json")
    assert r.code == 0, r.err
    warned = [w for w in json.loads(open("out.json").read())["warnings"] if "speed reference ran" in w]
    # timed twice (the second take is as far off: the predictor's usual time is what is off)
    assert len(warned) == 1 and warned[0].startswith("while ONNX Runtime on 1 thread was timed (twice)"), warned
    assert "run --verify again" in warned[0] and "warning" in r.err


def test_a_predictor_from_another_machine_is_a_warning_naming_both(cli, trained, tmp_path):
    folder, _ = trained
    ckpt = torch.load(folder / "predictor.pt", weights_only=True)
    ckpt["machine"] = {**ckpt["machine"], "cpu": "Elsewhere CPU 9000"}
    torch.save(ckpt, tmp_path / "other.pt")
    r = cli("predict", "zoo:mlp", "--predictor", str(tmp_path / "other.pt"))
    assert r.code == 0, r.err
    assert "warning" in r.err and "Elsewhere CPU 9000" in r.err and Predictor.load(folder).machine["cpu"] in r.err


RECURRENT_FILE = """
import torch

class Tagger(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(8, 16, batch_first=True)
        self.head = torch.nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.rnn(x)[0])
"""


def test_operators_the_predictor_never_trained_on_are_a_warning_naming_them(cli, trained):
    folder, _ = trained  # trained on MLPs and squeeze-excite CNNs: no recurrent layer
    open("tagger.py", "w").write(RECURRENT_FILE)
    r = cli("predict", "tagger.py:Tagger", "--input", "1x6x8", "--predictor", str(folder), "--json", "-")
    assert r.code == 0, r.err
    warned = [w for w in json.loads(r.out)["warnings"] if "never trained on" in w]
    assert len(warned) == 1 and "gru (1 node)" in warned[0], warned
    assert "addmm" not in warned[0]  # its Linear head is an operator the MLPs have
    assert "warning" in r.err and "gru (1 node)" in r.err
    r = cli("predict", "zoo:mlp", "--predictor", str(folder), "--json", "-")
    assert r.code == 0, r.err
    assert not [w for w in json.loads(r.out)["warnings"] if "never trained on" in w]


LARGE_FILE = """
import torch

class Large(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(64, 64, 3, padding=1))

    def forward(self, x):
        return self.body(x)
"""


def test_a_model_larger_than_any_the_predictor_trained_on_is_a_warning_naming_its_size(cli, trained):
    from fastslow.measure.bench import ModelSource
    from fastslow.predict.capture import capture

    folder, _ = trained
    open("large.py", "w").write(LARGE_FILE)
    largest = Predictor.load(folder).info["size_range"]["flops"][1]
    model = ModelSource("large.py:Large", ["1x3x128x128"]).resolve()[0].model.eval()
    flops = capture(model, (torch.zeros(1, 3, 128, 128),)).flops
    assert flops > 10 * largest  # the premise: far past the trained sizes
    r = cli("predict", "large.py:Large", "--input", "1x3x128x128", "--predictor", str(folder), "--json", "-")
    assert r.code == 0, r.err
    warned = [w for w in json.loads(r.out)["warnings"] if "outside the sizes" in w]
    assert len(warned) == 1 and f"{flops / 1e9:.3g} GFLOPs per item (its models: " in warned[0], warned
    assert "extrapolate" in warned[0] and "warning" in r.err and "GFLOPs per item" in r.err


def test_a_predictor_trained_on_another_formats_graphs_is_refused_with_what_retrains_it(cli, trained, tmp_path,
                                                                                        recapturable):
    import shutil

    from fastslow.predict.dataset import MANIFEST

    folder, db = trained
    ckpt = torch.load(folder / "predictor.pt", weights_only=True)
    collection = ckpt["info"]["collection"]
    assert ckpt["info"]["format"] == FORMAT_VERSION
    ckpt["info"]["format"] = 5
    torch.save(ckpt, "format5.pt")
    del ckpt["info"]["format"]  # predictors before they recorded it (format 5 and earlier)
    torch.save(ckpt, "older.pt")
    for file, made in (("format5.pt", "format 5"), ("older.pt", "an earlier format")):
        for args in (["predict", "zoo:mlp"], ["predictor", "eval"]):
            r = cli("--db", str(db), *args, *(["--predictor"] if args[0] == "predict" else []), file)
            assert r.code == 2 and r.out == "", (args, r.err)
            assert r.err.count("\n") == 1 and f"predictor {file} was trained on a collection of {made}" in r.err
            assert f"writes format {FORMAT_VERSION}" in r.err
            # its collection is of this format (brought up to date since): training again is enough
            assert r.err.rstrip().endswith(f"train it again (`fastslow predictor train {collection}`)"), r.err
    # what it says depends on what the collection is now: one to recapture first, one to collect again
    for fmt, fix in ((recapturable, "`fastslow predictor recapture {c}`, then `fastslow predictor train {c}`"),
                     (5, "collect again and train on that (`fastslow predictor collect --out DIR`, then `fastslow "
                         "predictor train DIR`; collection {c} is of format 5, which this version cannot bring up")):
        copy = tmp_path / f"format{fmt}"
        shutil.copytree(collection, copy)
        manifest = json.loads((copy / MANIFEST).read_text())
        (copy / MANIFEST).write_text(json.dumps({**manifest, "format": fmt}))
        torch.save({**ckpt, "info": {**ckpt["info"], "collection": str(copy)}}, "moved.pt")
        r = cli("predict", "zoo:mlp", "--predictor", "moved.pt")
        assert r.code == 2 and r.err.count("\n") == 1 and fix.format(c=copy) in r.err, r.err
    torch.save({**ckpt, "info": {**ckpt["info"], "collection": str(tmp_path / "gone")}}, "moved.pt")
    r = cli("predict", "zoo:mlp", "--predictor", "moved.pt")
    assert r.code == 2 and f"collection {tmp_path / 'gone'} is not there" in r.err


@pytest.mark.parametrize("args,message", [
    (["predict", "zoo:mlp", "--batches", "0"], "--batches must be >= 1"),
    (["predict", "zoo:mlp", "--batches", "x"], "--batches value 'x'"),
    (["predict", "zoo:mlp", "--runtimes", "tvm"], "--runtimes value 'tvm' is unknown"),
    (["predict", "zoo:mlp", "--predictor", "nowhere"], "predictor nowhere: not found"),
    (["predictor", "collect", "--out", "d", "--runtimes", "eager,tvm"], "--runtimes value 'tvm' is unknown"),
    (["predictor", "collect", "--out", "d", "--budget", "nan"], "--budget must be a finite number"),
    (["predictor", "collect", "--out", "d", "--threads", "0"], "--threads must be distinct integers >= 1"),
    (["predictor", "collect", "--out", "d", "--retakes", "-1"], "--retakes must be >= 0"),
    (["predictor", "train", "nowhere"], "collection nowhere: not found"),
    (["predictor", "train", "nowhere", "--readout", "max"], "--readout value 'max' is unknown (known: sum, roofline)"),
    (["predictor", "recapture", "nowhere"], "collection nowhere: no collection.json"),
    (["predictor", "train", ".", "--holdout", "1"], "--holdout must be in [0, 1)"),
    (["predictor", "eval", "nowhere", "--jobs", "0"], "--jobs must be >= 1"),
    (["predictor", "train", ".", "--reference-tolerance", "-1"], "--reference-tolerance must be >= 0"),
])
def test_bad_values_are_one_line_and_exit_2(cli, trained, args, message):
    folder, _ = trained
    if args[0] == "predict" and "--predictor" not in args:
        args = [*args, "--predictor", str(folder)]
    r = cli(*args)
    assert r.code == 2 and message in r.err and r.err.count("\n") == 1, r.err


def test_eval_scores_held_out_models_and_families_beside_the_noise_floor(cli, trained):
    folder, db = trained
    r = cli("--db", str(db), "predictor", "eval", str(folder), "--families", "cnn-se", "--json", "e.json")
    assert r.code == 0, r.err
    d = json.loads(open("e.json").read())
    assert set(d["held_out_models"]) == {"gnn", "roofline", "operator-sum"}
    assert list(d["held_out_families"]["families"]) == ["cnn-se"]
    assert d["held_out_families"]["pooled"]["gnn"]["models"] == 2
    # trained on the MLPs alone, the CNNs' convolutions were never seen: the table says so
    unseen = d["held_out_families"]["unseen_operators"]
    assert list(unseen) == ["cnn-se"] and "convolution" in unseen["cnn-se"] and "addmm" not in unseen["cnn-se"]
    assert "operators no other family has" in r.out and "convolution" in r.out
    assert d["noise_floor"]["pairs"] > 0 and 0 <= d["noise_floor"]["within_10"] <= 1
    # one measurement's noise is less than a pair's: the ceiling is never below the agreement of pairs
    assert d["noise_floor"]["within_10"] <= d["noise_floor"]["ceiling_10"] <= 1
    steady = d["noise_floor"]["steady"]  # the pairs measured while the machine ran at its usual speed
    assert steady["within"] == 0.1 and steady["pairs"] <= d["noise_floor"]["pairs"]
    assert "machine steady (reference within 0.1)" in r.out
    ranking = d["noise_floor"]["ranking"]  # the second measurement as the prediction of the first
    assert ranking["models"] > 0 and 0 <= ranking["top1_within_5"] <= 1 and ranking["top1_slowdown"] >= 0
    assert "noise floor: a second measurement as the predictor" in r.out
    for part, values, title in (("runtime", {"eager", "onnx", "int8-dynamic"}, "per runtime"),
                                ("threads", {"1"}, "per thread count")):
        by_value, noise = d[f"held_out_models_by_{part}"], d["noise_floor"][f"by_{part}"]
        assert set(by_value) == values and set(noise) <= set(by_value)
        assert sum(v["gnn"]["pairs"] for v in by_value.values()) == d["held_out_models"]["gnn"]["pairs"]
        assert sum(v["pairs"] for v in noise.values()) == d["noise_floor"]["pairs"]
        assert title in r.out
    assert "noise floor" in r.out and "held-out families" in r.out
    r = cli("predictor", "eval", str(folder), "--families", "cnn-nope")
    assert r.code == 2 and "'cnn-nope' is not in collection" in r.err


def test_eval_counts_its_progress_in_families_left_out(cli, trained, terminal):
    folder, db = trained
    r = cli("--db", str(db), "predictor", "eval", str(folder), "--families", "cnn-se,mlp")
    assert r.code == 0, r.err
    shown = drawn(terminal)
    # two families left out in turn: the bar counts them, the second begun with the first done
    assert "0/?" in shown[0] and any("leaving out mlp (2/2)" in s and "1/2" in s for s in shown), shown
    assert not any("/1 " in s for s in shown), shown
    # with --jobs, both folds train at once and the bar counts each as it finishes
    r = cli("--db", str(db), "predictor", "eval", str(folder), "--families", "cnn-se,mlp", "--jobs", "2",
            "--json", "j.json")
    assert r.code == 0, r.err
    shown = drawn(terminal)
    assert any("(2/2 done)" in s and "2/2" in s for s in shown), shown
    assert list(json.loads(open("j.json").read())["held_out_families"]["families"]) == ["cnn-se", "mlp"]


def test_training_runs_data_parallel_under_torchrun(collection, tmp_path):
    out = torchrun(["--db", str(tmp_path / "r.db"), "predictor", "train", str(collection[0]), "--out",
                    str(tmp_path / "ddp"), "--epochs", "3", "--hidden", "16", "--layers", "1", "--batch-graphs", "2",
                    "--minutes", "60"],  # the ranks agree each epoch whether time is up (it is not)
                   tmp_path)
    p = Predictor.load(tmp_path / "ddp")
    assert len(p.info["history"]) == 3 and out.count("trained on") == 1  # rank 0 alone reports and writes


def test_train_options_default_to_the_predictor_config():
    # the CLI spells the defaults out (it imports the predictor lazily, for a quick start): they
    # must be the config's, or `predictor train` and `fastslow.api.predict.train` train different nets
    options = {name: p.default for name, p in inspect.signature(train_command).parameters.items()}
    shared = [f for f in dataclasses.fields(PredictorConfig) if f.name in options]
    assert len(shared) >= 8
    for f in shared:
        assert options[f.name] == f.default, f.name


def test_collect_options_default_to_the_collections():
    # likewise `predictor collect`: its literals must be `collect`'s and `CollectSettings`'s, and
    # its help must give the tolerance a retake is judged by
    import typing

    from fastslow.cli.predict import collect as collect_command
    from fastslow.predict.collect import CollectSettings, collect
    from fastslow.predict.reference import STEADY_TOLERANCE

    options = {name: p.default for name, p in inspect.signature(collect_command).parameters.items()}
    library = {name: p.default for name, p in inspect.signature(collect).parameters.items()}
    for name in ("per_family", "repeat_every", "retakes"):
        assert options[name] == library[name], name
    s = CollectSettings()
    assert (options["batches"], options["threads"], options["runtimes"], options["budget"]) == (
        ",".join(map(str, s.batches)), ",".join(map(str, s.threads)), ",".join(s.runtimes), s.budget_s)
    retakes = typing.get_type_hints(collect_command, include_extras=True)["retakes"].__metadata__[0]
    assert f"more than {100 * STEADY_TOLERANCE:g}% off" in retakes.help
