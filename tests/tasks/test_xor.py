import torch

from fastslow.tasks.xor import XorConfig, evaluate, make_data, train_xor, xor_net


def test_clean_labels_are_xor_of_signs():
    x, y = make_data(200, noise=0.0, seed=0).tensors
    assert torch.equal(y, ((x[:, 0] > 0) ^ (x[:, 1] > 0)).float())


def test_training_learns_xor_deterministically():
    cfg = XorConfig(epochs=30, seed=1)
    a, b = train_xor(cfg), train_xor(cfg)
    assert a.test_accuracy == b.test_accuracy
    assert a.test_accuracy > 0.85
    assert evaluate(xor_net(), a.test) < a.test_accuracy  # an untrained net does worse
    assert sum(p.numel() for p in a.model.parameters()) == (2 * 4 + 4) + (4 + 1)
