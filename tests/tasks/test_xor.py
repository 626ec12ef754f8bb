import pytest
import torch

from fastslow.errors import UserError
from fastslow.tasks.xor import XorConfig, evaluate, make_data, train_xor, xor_net


def test_the_tutorials_data_set_is_noisy_corners():
    x, y = make_data(2000, noise=0.0, seed=0).tensors
    assert set(map(tuple, x.tolist())) == {(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)}
    assert torch.equal(y, (x.sum(1) == 1).float())
    noisy, _ = make_data(2000, noise=0.1, seed=0).tensors
    assert (noisy - x).std().item() == pytest.approx(0.1, rel=0.1)  # the same draws, moved by std-0.1 noise
    cfg = XorConfig()
    tutorial = (2500, 500, 128, 0.1, 0.0, 100)
    assert (cfg.n_train, cfg.n_test, cfg.batch_size, cfg.lr, cfg.momentum, cfg.epochs) == tutorial


def test_the_square_variant_labels_by_signs():
    x, y = make_data(200, noise=0.0, seed=0, shape="square").tensors
    assert torch.equal(y, ((x[:, 0] > 0) ^ (x[:, 1] > 0)).float())
    with pytest.raises(UserError, match="'data' value 'circle' is unknown"):
        XorConfig(data="circle")


def test_the_tutorial_reaches_100_percent_with_seed_0():
    r = train_xor(XorConfig(seed=0))
    assert r.test_accuracy == 1.0 and r.epochs == 100 and len(r.test.tensors[0]) == 500


def test_training_is_deterministic_and_learns():
    cfg = XorConfig(seed=1)
    a, b = train_xor(cfg), train_xor(cfg)
    assert a.test_accuracy == b.test_accuracy > 0.95
    assert evaluate(xor_net(), a.test) < a.test_accuracy  # an untrained net does worse
    assert sum(p.numel() for p in a.model.parameters()) == (2 * 4 + 4) + (4 + 1)
