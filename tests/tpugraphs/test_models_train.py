
import pytest
import torch

from fastslow.errors import UserError
from fastslow.tpugraphs.batching import GraphBank, prepare
from fastslow.tpugraphs.data import find_files, load_tile_graphs
from fastslow.tpugraphs.features import TileNormalizer
from fastslow.tpugraphs.models import MODELS, TileRanker
from fastslow.tpugraphs.train import (
    RankerConfig,
    epoch_order,
    evaluate,
    load_run,
    model_from,
    predict_graph,
    save_run,
    train,
)
from tests.conftest import needs_cuda, torchrun


@pytest.fixture(scope="module")
def prepared(synthetic):
    graphs = load_tile_graphs(find_files(synthetic))
    train_g = [g for g in graphs if g.split == "train"]
    norm = TileNormalizer.fit(train_g)
    return norm, prepare(train_g, norm), prepare([g for g in graphs if g.split == "valid"], norm)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_scores_every_pair_and_sees_the_config(prepared, name):
    _, graphs, _ = prepared
    torch.manual_seed(0)
    model = TileRanker(name, hidden=16, layers=2).eval()
    bank = GraphBank(graphs[:2])
    batch, _ = bank.batch(torch.tensor([0, 1]), torch.tensor([0, 1, 2, 0, 1, 2, 3]), torch.tensor([3, 4]), model.early)
    nodes = sum(g.x.shape[0] * (k if model.early else 1) for g, k in zip(graphs[:2], (3, 4), strict=True))
    assert batch.node_group.shape[0] == nodes and int(batch.edge_index.max()) < nodes
    with torch.no_grad():
        out = model(batch)
        assert out.shape == (7,)
        changed, _ = bank.batch(torch.tensor([0]), torch.arange(3), torch.tensor([3]), model.early)
        changed.config = changed.config + 1.0
        assert not torch.allclose(model(changed), out[:3])


def test_bidirectional_has_its_own_weights():
    one = sum(p.numel() for p in TileRanker("early-sage", 16, 2, bidirectional=False).parameters())
    two = sum(p.numel() for p in TileRanker("early-sage", 16, 2, bidirectional=True).parameters())
    assert two > one
    with pytest.raises(UserError, match="unknown ranker 'nope' \\(known: late-sage, early-sage"):
        TileRanker("nope")


def test_training_learns_to_rank_and_checkpoints_round_trip(prepared, tmp_path):
    norm, train_g, valid_g = prepared
    untrained = evaluate(TileRanker("early-sage", 32, 2), valid_g)
    cfg = RankerConfig(model="early-sage", loss="hinge", epochs=6, hidden=32, layers=2, batch_graphs=8)
    result = train(cfg, train_g, valid_g)
    trained = evaluate(result.model, valid_g)
    assert trained["kendall_tau"] > 0.5 > untrained["kendall_tau"]
    assert trained["slowdown"]["5"] <= untrained["slowdown"]["5"]
    assert result.configs_scored == 6 * len(train_g) * 16 or result.configs_scored > 0
    assert "valid_score_top5" in result.history[-1] and result.history[-1]["lr"] < cfg.lr
    save_run(tmp_path / "run", cfg, norm, result)
    model, norm2, cfg2 = model_from(load_run(tmp_path / "run"))
    assert cfg2 == cfg
    torch.testing.assert_close(predict_graph(model, valid_g[0]), predict_graph(result.model, valid_g[0]))


def test_every_rank_computes_the_same_epoch_order():
    torch.manual_seed(123)
    first = epoch_order(50, 0, 3)
    torch.rand(1000)  # draws elsewhere (another rank's sampling) must not move it
    assert torch.equal(first, epoch_order(50, 0, 3)) and sorted(first.tolist()) == list(range(50))
    assert not torch.equal(first, epoch_order(50, 0, 4)) and not torch.equal(first, epoch_order(50, 1, 3))


@needs_cuda
def test_training_on_cuda_gives_a_checkpoint_that_scores_on_cpu(prepared, tmp_path):
    norm, train_g, valid_g = prepared
    cfg = RankerConfig(model="late-sage", loss="listmle", epochs=2, hidden=16, layers=2, batch_graphs=8)
    result = train(cfg, train_g, valid_g, device="cuda")
    assert next(result.model.parameters()).is_cuda and "valid_score_top5" in result.history[-1]
    save_run(tmp_path / "run", cfg, norm, result)
    model, _, _ = model_from(load_run(tmp_path / "run"))
    torch.testing.assert_close(predict_graph(model, valid_g[0]), predict_graph(result.model, valid_g[0]),
                               rtol=1e-4, atol=1e-4)


def test_training_on_a_missing_device_is_refused(prepared):
    _, train_g, _ = prepared
    with pytest.raises(UserError, match="'device' value .cuda:99. is not available"):
        train(RankerConfig(epochs=1), train_g, device="cuda:99")


def test_config_rejects_what_is_not_supported():
    with pytest.raises(UserError, match="unknown"):
        RankerConfig(collection="layout:tpu:default")
    with pytest.raises(UserError, match="must be joined early"):
        TileRanker("late-sage", layout=True)
    with pytest.raises(UserError, match="unknown loss 'l1'"):
        RankerConfig(loss="l1")
    with pytest.raises(UserError, match="'epochs' must be >= 1"):
        RankerConfig(epochs=0)


@pytest.mark.slow
def test_data_parallel_under_torchrun(synthetic, tmp_path):
    out = torchrun(["--db", str(tmp_path / "r.db"), "tpugraphs", "train", "--data", str(synthetic), "--out",
                    str(tmp_path / "ddp"), "--epochs", "2", "--hidden", "16", "--layers", "1", "--no-cache"], tmp_path)
    assert "epoch 2/2" in out
    ckpt = load_run(tmp_path / "ddp")
    assert ckpt["config"]["epochs"] == 2 and len(ckpt["history"]) == 2
