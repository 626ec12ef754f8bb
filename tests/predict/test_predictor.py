"""The latency predictor: its baselines recover what they model, its network's readout sums the
operators' times, it saves and loads whole, and its metrics say what they claim."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from fastslow.errors import UserError
from fastslow.predict.baselines import Costs, OperatorSum, RooflineRegression, costs_of, kind_of
from fastslow.predict.capture import OPS, capture
from fastslow.predict.configs import Config
from fastslow.predict.dataset import load_collection, steady_labels
from fastslow.predict.evaluate import leave_one_family_out, score_methods, scores_by, split_models
from fastslow.predict.metrics import noise_floor, scores
from fastslow.predict.predictor import (
    Predictor,
    PredictorConfig,
    fit,
    operators,
    outside_sizes,
    predict_models,
    size_range,
    unseen_operators,
)
from fastslow.tpugraphs.models import TileRanker


def _costs(rng: np.random.Generator, nodes: int) -> Costs:
    opcode = rng.integers(1, 6, nodes)
    flops = rng.uniform(1e4, 1e7, nodes)
    weight = rng.uniform(0, 1e5, nodes)
    return Costs(opcode, flops, weight + rng.uniform(1e3, 1e6, nodes), weight)


def test_the_operator_sum_recovers_per_operator_costs_and_the_roofline_a_linear_law():
    rng = np.random.default_rng(0)
    fixed, per_flop, per_byte = rng.uniform(2e-6, 9e-6, 6), rng.uniform(1e-11, 5e-11, 6), rng.uniform(1e-10, 4e-10, 6)
    configs = [Config(b, 1, False, "eager") for b in (1, 4, 16)]
    data = []
    for _ in range(60):
        c = _costs(rng, int(rng.integers(5, 30)))
        latency = []
        for cf in configs:
            flops, moved = c.at_batch(cf.batch)
            latency.append(float((fixed[c.opcode] + per_flop[c.opcode] * flops + per_byte[c.opcode] * moved).sum()))
        data.append((c, configs, np.asarray(latency)))
    model = OperatorSum().fit(data)
    test = _costs(rng, 20)
    truth = np.asarray([float((fixed[test.opcode] + per_flop[test.opcode] * test.at_batch(cf.batch)[0]
                               + per_byte[test.opcode] * test.at_batch(cf.batch)[1]).sum()) for cf in configs])
    assert np.allclose(model.predict(test, configs), truth, rtol=0.02)
    # the roofline regression is exact on a model that is a fixed cost plus prices per FLOP and byte
    def law(c: Costs, cf: Config) -> float:
        flops, moved = c.at_batch(cf.batch)
        return 3e-6 + 2e-11 * flops.sum() + 3e-10 * moved.sum()

    roof = RooflineRegression().fit([(c, cf, np.asarray([law(c, x) for x in cf])) for c, cf, _ in data])
    assert np.allclose(roof.predict(test, configs), [law(test, cf) for cf in configs], rtol=0.01)
    # a kind of configuration never fitted falls back to the fit over every kind
    other = Config(1, 2, False, "onnx")
    assert kind_of(other) not in roof.coef and roof.predict(test, [other])[0] > 0


def test_the_sum_readout_is_the_log_of_the_summed_operator_times():
    from fastslow.tpugraphs.batching import GraphBank, Prepared

    torch.manual_seed(0)
    net = TileRanker("early-sage", 8, 2, node_feats=16, config_feats=7, readout="sum").eval()
    graphs = [Prepared(f"g{i}", torch.randn(n, 16), torch.randint(0, 10, (n,)),
                       torch.stack([torch.arange(n - 1), torch.arange(1, n)]), torch.randn(3, 7),
                       torch.rand(3, dtype=torch.float64) + 1, torch.arange(3)) for i, n in enumerate((4, 6))]
    bank = GraphBank(graphs)
    batch, _ = bank.batch(torch.arange(2), torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([3, 3]), early=True)
    with torch.no_grad():
        out = net(batch)
        # the same network, the per-node log times taken before the readout
        h = net.node_in(torch.cat([batch.x, net.opcode(batch.opcode)], -1)).index_select(0, batch.node_copy)
        h = torch.relu(h + net.config_in(batch.config).index_select(0, batch.node_group))
        adj = batch.adjacency(True)
        for i in range(net.layers):
            h = net.norms[i](h + torch.relu(net.convs[i](h, adj)))
        node = net.head_out(torch.relu(net.head_graph(h))).squeeze(-1)
    expected = torch.stack([node[batch.node_group == p].exp().sum().log() for p in range(6)])
    assert torch.allclose(out, expected, atol=1e-5)
    with pytest.raises(UserError, match="sum readout needs each node to see the configuration"):
        TileRanker("late-sage", readout="sum")


def test_the_roofline_readout_costs_each_operator_by_its_own_flops_and_bytes():
    """With the rates fixed (the output layer's weights zero), a model's predicted time is the sum
    over its operators of a fixed time, FLOPs x time per FLOP and bytes x time per byte, with
    the weights read once per call: the readout reads each node's work from the right columns
    through the feature normalisation, and counts it in the predictor's units."""
    from fastslow.predict.capture import WORK_COLUMNS
    from fastslow.predict.predictor import tile_graph_of
    from fastslow.tpugraphs.features import TileNormalizer

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 14 * 14, 10))
    graph = capture(model.eval(), (torch.zeros(1, 3, 16, 16),))
    for key, (column, scale) in WORK_COLUMNS.items():  # the columns hold what the graph's costs say
        amount = {"flops": graph.node_flops, "bytes": graph.node_bytes, "weight_bytes": graph.node_weight_bytes}[key]
        assert np.allclose(2 ** (graph.node_feat[:, column].astype(np.float64) * scale) - 1, amount, rtol=1e-4)
    configs = [Config(b, 1, False, "eager") for b in (1, 4, 16)]
    tile = tile_graph_of("m", graph, configs)
    norm = TileNormalizer.fit([tile, tile_graph_of("n", capture(torch.nn.Linear(4, 4).eval(), (torch.zeros(1, 4),)),
                                                   configs)], squash_first=False)
    ranker = PredictorConfig(hidden=8, layers=1).ranker(norm)
    net = ranker.build().eval()
    rates = torch.tensor([2.0, -3.0, -1.5])  # ln ns: a fixed time, per FLOP, per byte
    with torch.no_grad():
        net.head_out.weight.zero_()
        net.head_out.bias.copy_(rates)
    predictor = Predictor(ranker, net, norm, {}, {})
    got = predictor.predict([tile], [costs_of(graph)], [configs], ("gnn",))["gnn"][0]
    fixed, per_flop, per_byte = rates.double().exp().tolist()
    activations = np.maximum(graph.node_bytes - graph.node_weight_bytes, 0)
    for c, seconds in zip(configs, got, strict=True):
        per_item_ns = (fixed + (1 + graph.node_flops) * per_flop
                       + (1 + activations + graph.node_weight_bytes / c.batch) * per_byte).sum()
        assert seconds == pytest.approx(per_item_ns * c.batch * 1e-9, rel=1e-3)
    with pytest.raises(UserError, match="roofline readout needs the columns"):
        TileRanker("early-sage", readout="roofline")


def test_a_trained_predictor_saves_loads_and_predicts_the_same(collection, tmp_path):
    out, _, _ = collection
    manifest, models = load_collection(out)
    predictor, result = fit(models, PredictorConfig(hidden=16, layers=2, epochs=30), manifest["machine"])
    assert len(result.history) == 30 and result.history[-1]["loss"] < result.history[0]["loss"]
    before = predict_models(predictor, models)
    path = predictor.save(tmp_path / "p" / "predictor.pt")
    again = Predictor.load(tmp_path / "p")
    after = predict_models(again, models)
    for method in ("gnn", "roofline", "operator-sum"):
        for a, b in zip(before[method], after[method], strict=True):
            assert np.allclose(a, b, rtol=1e-6) and (a > 0).all() and np.isfinite(a).all()
    assert again.machine == manifest["machine"] and again.info["trained_on"] == [m.name for m in models]
    torch.save({"kind": "something else"}, path)
    with pytest.raises(UserError, match="not a fastslow latency predictor"):
        Predictor.load(path)
    with pytest.raises(UserError, match="a roofline readout needs each node to see the configuration"):
        PredictorConfig(model="late-sage")


def test_training_fits_the_measurements_it_saw(collection):
    out, _, _ = collection
    manifest, models = load_collection(out)
    every_label = {"reference_tolerance": 0.0}  # scored on every label, so trained on every one
    untrained, _ = fit(models, PredictorConfig(hidden=32, layers=2, epochs=1, **every_label), manifest["machine"])
    trained, _ = fit(models, PredictorConfig(hidden=32, layers=2, epochs=150, **every_label), manifest["machine"])
    s0, s1 = score_methods(untrained, models)["gnn"], score_methods(trained, models)["gnn"]
    assert s1["rmspe"] < s0["rmspe"] / 2 and s1["within_20"] > s0["within_20"]


def _reference_at(models, factors):
    """The models with the speed reference beside each configuration at its usual time times a
    factor: factors[i] for model i (one per configuration), 1 where not given."""
    out = []
    for i, m in enumerate(models):
        f = np.asarray(factors.get(i, [1.0] * len(m.configs)))
        out.append(dataclasses.replace(m, reference_s=m.nominal_s * f))
    return out


def test_labels_measured_while_the_reference_ran_off_its_usual_time_are_left_out(collection):
    _, models = load_collection(collection[0])
    n0, n1 = len(models[0].configs), len(models[1].configs)
    off = [1.0] * n0
    off[0], off[-1] = 1.25, 0.85  # 22% and 16% off (log 0.22, 0.16)
    models = _reference_at(models, {0: off, 1: [1.5 + 0.1 * k for k in range(n1)]})
    kept, left_out = steady_labels(models, 0.1)
    assert left_out == 2 + (n1 - 2)
    assert [m.name for m in kept] == [m.name for m in models]  # every graph stays ...
    assert kept[0].configs == models[0].configs[1:-1]
    assert np.array_equal(kept[0].latency_s, models[0].latency_s[1:-1])
    assert kept[0].graph.runtime.shape == (n0 - 2,) and kept[0].graph.config_feat.shape[0] == n0 - 2
    assert kept[1].configs == models[1].configs[:2]  # ... with at least the two labels nearest the usual speed
    assert kept[2:] == models[2:]
    assert steady_labels(models, 0.0) == (models, 0)  # 0 keeps everything


def test_training_leaves_out_the_disturbed_labels_and_says_how_many(collection):
    manifest, models = load_collection(collection[0])
    off = [1.0] * len(models[0].configs)
    off[0] = 2.0
    models = _reference_at(models, {0: off})
    predictor, _ = fit(models, PredictorConfig(hidden=8, layers=1, epochs=2), manifest["machine"])
    total = sum(len(m.configs) for m in models)
    assert predictor.info["labels"] == {"trained": total - 1, "left_out": 1, "tolerance": 0.1}
    predictor, _ = fit(models, PredictorConfig(hidden=8, layers=1, epochs=2, reference_tolerance=0.0),
                       manifest["machine"])
    assert predictor.info["labels"] == {"trained": total, "left_out": 0, "tolerance": 0.0}
    with pytest.raises(UserError, match="reference_tolerance"):
        PredictorConfig(reference_tolerance=-0.1)


def test_held_out_models_come_from_every_family_with_enough_members(collection):
    _, models = load_collection(collection[0])
    train, test = split_models(models, 0.5, seed=0)  # two of each: one held out, one to train on
    assert sorted(m.family for m in test) == ["cnn-se", "mlp"]
    assert sorted(m.family for m in train) == ["cnn-se", "mlp"]
    assert not {m.name for m in train} & {m.name for m in test}
    assert split_models(models, 0.5, seed=0) == (train, test)  # seeded
    many = models * 5  # ten of each family: two held out of each at 0.2
    _, test = split_models(many, 0.2)
    assert sorted(m.family for m in test) == ["cnn-se"] * 2 + ["mlp"] * 2
    everything, none = split_models(models, 0.0)
    assert none == [] and sorted(m.name for m in everything) == sorted(m.name for m in models)


def test_families_left_out_in_parallel_processes_score_as_they_do_one_after_another(collection):
    manifest, models = load_collection(collection[0])
    cfg = PredictorConfig(hidden=8, layers=1, epochs=3)
    done: list[tuple[str, int, int]] = []
    one = leave_one_family_out(models, cfg, manifest["machine"])
    two = leave_one_family_out(models, cfg, manifest["machine"], jobs=2, on_fold=lambda *a: done.append(a))
    assert list(two["families"]) == list(one["families"]) == ["cnn-se", "mlp"]  # in order, however they finished
    # counted as they finished: the i-th fold to finish is called with i, whichever family it was
    assert sorted(f for f, _, _ in done) == ["cnn-se", "mlp"] and [(i, n) for _, i, n in done] == [(0, 2), (1, 2)]
    for family, by_method in one["families"].items():
        for method, s in by_method.items():
            for key in ("within_10", "rmspe", "kendall_tau"):
                assert two["families"][family][method][key] == pytest.approx(s[key], rel=1e-4, nan_ok=True), (
                    family, method, key)
    assert list(two["unseen_operators"].items()) == list(one["unseen_operators"].items())  # in the families' order
    assert "convolution" in one["unseen_operators"]["cnn-se"]
    done.clear()  # one family with jobs: trained in a worker all the same, reported as it finishes
    alone = leave_one_family_out(models, cfg, manifest["machine"], families=["mlp"], jobs=2,
                                 on_fold=lambda *a: done.append(a))
    assert done == [("mlp", 0, 1)] and list(alone["families"]) == ["mlp"]
    with pytest.raises(UserError, match="'jobs' must be >= 1"):
        leave_one_family_out(models, cfg, manifest["machine"], jobs=0)


def test_scores_on_known_predictions():
    configs = [[Config(1), Config(4), Config(1, 2)], [Config(1), Config(4), Config(1, 2)],
               [Config(1), Config(4), Config(1, 2)]]
    measured = [np.array([1.0, 2.0, 0.8]), np.array([2.0, 4.0, 3.0]), np.array([3.0, 9.0, 2.0])]
    # exact but for one prediction 15% high and one 30% low; the second model's best per item is batch 4
    predicted = [np.array([1.0, 2.0, 0.8 * 1.15]), np.array([2.0, 4.0, 3.0]), np.array([3.0, 9.0 * 0.7, 2.0])]
    s = scores(predicted, measured, configs)
    assert s["pairs"] == 9 and s["models"] == 3
    assert s["within_10"] == pytest.approx(7 / 9) and s["within_20"] == pytest.approx(8 / 9)
    assert s["rmspe"] == pytest.approx(math.sqrt((0.15 ** 2 + 0.3 ** 2) / 9))
    # model 3: 9 x 0.7 / 4 = 1.58 per item beats 2.0 at batch 1 threads 2, whose measured per item is best
    assert s["top1_slowdown"] == pytest.approx((9 / 4 / 2 - 1) / 3)
    assert s["top1_within_5"] == pytest.approx(2 / 3)
    assert s["kendall_tau"] == pytest.approx(1.0)  # each configuration orders the three models right
    n = noise_floor([(1.0, 1.05), (1.0, 1.3), (2.0, 1.7)])
    assert n["pairs"] == 3 and n["within_10"] == pytest.approx(1 / 3) and n["within_20"] == pytest.approx(2 / 3)


def test_scores_per_thread_count_split_every_models_pairs_by_their_configurations(collection):
    _, models = load_collection(collection[0])
    # the same measurements, taken as if on 2 threads and every other one on 16
    models = [dataclasses.replace(m, configs=[dataclasses.replace(c, threads=2 + 14 * (i % 2)) for i, c in
                                              enumerate(m.configs)]) for m in models]
    predicted = {"exact": [m.latency_s.copy() for m in models], "high": [m.latency_s * 1.15 for m in models]}
    for p in predicted["exact"]:
        p[1::2] *= 1.3  # wrong on the 16-thread configurations alone
    by = scores_by(predicted, models, "threads")
    assert list(by) == ["2", "16"]  # in their own order, not the strings'
    assert by["2"]["exact"]["within_10"] == 1.0 and by["16"]["exact"]["within_20"] == 0.0
    assert by["2"]["high"]["within_10"] == 0.0 and by["2"]["high"]["within_20"] == 1.0
    total = sum(len(m.configs) for m in models)
    assert by["2"]["exact"]["pairs"] + by["16"]["exact"]["pairs"] == total
    assert by["2"]["exact"]["models"] == len(models)
    assert list(scores_by(predicted, models, "runtime")) == ["eager", "int8-dynamic", "onnx"]


def test_the_ceiling_takes_one_measurements_noise_as_a_pairs_over_root_two():
    # A pair 1.1^sqrt(2) apart is one measurement 10% from the truth (each way): inside the ceiling's
    # ±10%, though the pair itself disagrees by 14%; a pair 20% apart puts each 13.7% from it: outside.
    n = noise_floor([(1.0, 1.1 ** math.sqrt(2) - 1e-9), (1.0, 1.2)])
    assert n["within_10"] == 0.0 and n["ceiling_10"] == pytest.approx(0.5) and n["ceiling_20"] == 1.0
    assert math.isnan(noise_floor([])["ceiling_10"])


class _Cumulative(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x):  # noqa: ANN001, ANN201
        return torch.relu(self.fc(x)).cumsum(-1)  # aten.cumsum is outside the operator vocabulary


def test_unseen_operators_are_counted_by_kind_and_those_outside_the_vocabulary_by_name():
    graph = capture(_Cumulative(), (torch.zeros(1, 8),))
    kinds = {OPS[int(c)] for c in graph.node_opcode}
    assert {"addmm", "relu", "other"} <= kinds
    assert unseen_operators(sorted(kinds), graph) == {}
    assert unseen_operators(["input", "addmm", "t"], graph) == {"relu": 1, "cumsum": 1}  # Linear: t, addmm
    # the kinds a set of graphs holds, by the vocabulary's names
    assert operators([graph.node_opcode]) == kinds


def test_a_model_outside_the_trained_sizes_is_named_with_its_size_and_the_range():
    def mlp(width: int) -> Costs:
        return costs_of(capture(torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU()),
                                (torch.zeros(1, width),)))

    small, large = mlp(16), mlp(64)
    trained = size_range([small, large])
    flops = [float(c.flops.sum()) for c in (small, large)]
    assert trained["flops"] == flops and trained["bytes"] == [float(c.bytes.sum()) for c in (small, large)]
    assert outside_sizes(trained, mlp(32)) == [] and outside_sizes(trained, mlp(64)) == []
    huge = mlp(512)  # 64x the FLOPs of the largest
    said = outside_sizes(trained, huge)
    assert said[0] == f"{huge.flops.sum() / 1e3:.3g} kFLOPs per item (its models: {flops[0]:.3g} FLOPs to " \
                      f"{flops[1] / 1e3:.3g} kFLOPs)"
    assert len(said) == 2 and " MiB moved per item (its models: " in said[1] and said[1].endswith(" KiB)")
    tiny = outside_sizes(trained, mlp(4))  # smaller than half the smallest is outside too
    assert tiny and "FLOPs per item" in tiny[0]
