import numpy as np
import pytest
import torch

from fastslow.tpugraphs.losses import HUBER_DELTA, hinge, listmle, log_huber, log_mse, mse
from fastslow.tpugraphs.metrics import RankingReport, kendall_tau, ordered_pair_accuracy, top_k_slowdown

RUNTIME = torch.tensor([[3.0, 1.0, 2.0, 7.0]])
MASK = torch.tensor([[True, True, True, False]])


def test_listmle_prefers_the_true_order_and_ignores_padding():
    right, wrong = RUNTIME.clone(), -RUNTIME
    assert listmle(right, RUNTIME, MASK) < listmle(wrong, RUNTIME, MASK)
    padded = right.clone()
    padded[0, 3] = -100.0
    assert listmle(padded, RUNTIME, MASK) == pytest.approx(float(listmle(right, RUNTIME, MASK)))
    # exact value for two items in the right order: log(1 + e^(s2 - s1)) with s = -score
    two = listmle(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 2.0]]), torch.ones(1, 2, dtype=torch.bool))
    assert float(two) == pytest.approx(np.log1p(np.exp(-1.0)) / 2)


def test_log_huber_is_squared_near_the_log_runtime_and_absolute_far_from_it():
    runtime = torch.tensor([[1.0, 10.0, 100.0, 5.0]])
    mask = torch.tensor([[True, True, True, False]])
    target = runtime.log()
    near = target + torch.tensor([[0.05, -0.05, 0.0, 9.0]])  # the masked one far off, ignored
    # within the delta: log-MSE's squared error over twice the delta
    squared = float(log_mse(near, runtime, mask))
    assert float(log_huber(near, runtime, mask)) == pytest.approx(squared / (2 * HUBER_DELTA))
    far = target + torch.tensor([[1.0, -2.0, 0.0, 0.0]])
    assert float(log_huber(far, runtime, mask)) == pytest.approx((1.0 + 2.0 - 2 * HUBER_DELTA / 2) / 3)
    # an error far out pulls with the same force however far: the gradient is capped at 1 / n
    scores = far.clone().requires_grad_()
    (grad,) = torch.autograd.grad(log_huber(scores, runtime, mask), scores)
    torch.testing.assert_close(grad, torch.tensor([[1 / 3, -1 / 3, 0.0, 0.0]]))


@pytest.mark.parametrize("spread", [1.0, 200.0])
def test_listmle_is_the_plackett_luce_likelihood(spread):
    g = torch.Generator().manual_seed(0)
    scores = (torch.randn(5, 9, generator=g, dtype=torch.float64) * spread).requires_grad_()
    runtime = torch.rand(5, 9, generator=g, dtype=torch.float64)
    mask = torch.rand(5, 9, generator=g) < 0.7
    mask[:, :2] = True
    expected = []
    for i in range(5):  # the definition, list by list: -sum_k log softmax over the not yet placed
        s = -scores[i][mask[i]][torch.argsort(runtime[i][mask[i]])]
        expected.append((torch.logcumsumexp(s.flip(0), 0).flip(0) - s).mean())
    expected = torch.stack(expected).mean()
    got = listmle(scores, runtime, mask)
    torch.testing.assert_close(got, expected)
    (want,) = torch.autograd.grad(expected, scores)
    (have,) = torch.autograd.grad(got, scores)
    torch.testing.assert_close(have, want)


def test_hinge_and_mse():
    assert float(hinge(RUNTIME, RUNTIME, MASK)) == 0.0
    assert float(hinge(-RUNTIME, RUNTIME, MASK)) > 0
    scaled = (RUNTIME - 1) / 2
    assert float(mse(scaled, RUNTIME, MASK)) == pytest.approx(0.0)


def test_slowdown_score_tau_and_pairs():
    runtime = np.array([5.0, 1.0, 2.0, 4.0, 3.0, 10.0])
    pred = np.array([0.0, 5.0, 1.0, 2.0, 3.0, 4.0])  # ranks the best (index 1) last
    assert top_k_slowdown(pred, runtime, 1) == pytest.approx(5 / 1 - 1)
    assert top_k_slowdown(pred, runtime, 5) == pytest.approx(2 / 1 - 1)
    assert top_k_slowdown(pred, runtime, 6) == 0.0
    assert kendall_tau(runtime, runtime) == pytest.approx(1.0)
    assert kendall_tau(-runtime, runtime) == pytest.approx(-1.0)
    assert ordered_pair_accuracy(runtime, runtime) == 1.0
    r = RankingReport()
    r.add("a", runtime, runtime)
    r.add("b", pred, runtime)
    s = r.summary()
    assert s["score_top5"] == pytest.approx(np.mean([2 - 1, 2 - 2]))
    assert s["slowdown"]["1"] == pytest.approx(np.mean([0, 4]))
    assert [f["file"] for f in s["files"]] == ["a", "b"]


def test_top_k_is_informative_only_where_a_random_ranking_does_worse():
    from fastslow.tpugraphs.metrics import RankingReport

    spread = np.linspace(1.0, 3.0, 50)  # a random pick is far from the best
    flat = np.full(50, 1.0) + np.linspace(0, 1e-4, 50)  # every pick is within a hair of the best
    r = RankingReport()
    r.add("spread", spread, spread)
    assert r.summary()["informative_k"] == ["1", "5", "10"] and r.files[0]["random_slowdown"]["1"] > 0.3
    r = RankingReport()
    r.add("flat", flat, flat)
    assert r.summary()["informative_k"] == []
