"""Losses over groups of configurations of one graph. Scores are predicted costs (lower =
faster); targets are runtimes. Groups are given as a dense (graphs, configs) matrix with a
mask, since graphs contribute different numbers of configurations."""

from __future__ import annotations

from collections.abc import Callable

import torch

from fastslow.registry import Registry


def mse(scores: torch.Tensor, runtime: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The notebook's loss: squared error against each graph's runtimes min-max scaled to [0, 1]."""
    big = torch.finfo(runtime.dtype).max
    lo = torch.where(mask, runtime, torch.full_like(runtime, big)).min(1, keepdim=True).values
    hi = torch.where(mask, runtime, torch.full_like(runtime, -big)).max(1, keepdim=True).values
    target = (runtime - lo) / (hi - lo).clamp_min(1e-12)
    return ((scores - target) ** 2)[mask].mean()


def listmle(scores: torch.Tensor, runtime: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ListMLE (Xia et al. 2008): the negative log-likelihood of the true order (fastest
    first) under a Plackett-Luce model of -score."""
    order = torch.argsort(torch.where(mask, runtime, torch.full_like(runtime, float("inf"))), dim=1)
    s = torch.gather(-scores, 1, order)
    m = torch.gather(mask, 1, order)
    s = torch.where(m, s, torch.full_like(s, -1e9)).double()
    # log of the sum over the configurations not yet placed, a reversed cumulative logsumexp,
    # as exp / cumsum / log after taking out each row's maximum: twice as fast on CPU as
    # torch.logcumsumexp, and in float64 exp underflows only at a score spread of ~700.
    # A tail is never below its own term, which holds the result if that ever happens.
    top = s.max(1, keepdim=True).values.detach()
    tail = torch.maximum((s - top).exp().flip(1).cumsum(1).flip(1).log() + top, s)
    per_graph = ((tail - s) * m).sum(1) / m.sum(1).clamp_min(1)
    return per_graph.mean().to(scores.dtype)


def hinge(scores: torch.Tensor, runtime: torch.Tensor, mask: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Pairwise hinge: for every pair where i is faster than j, max(0, margin - (s_j - s_i))."""
    faster = (runtime.unsqueeze(2) < runtime.unsqueeze(1)) & mask.unsqueeze(2) & mask.unsqueeze(1)
    gap = scores.unsqueeze(1) - scores.unsqueeze(2)  # [g, i, j] = s_j - s_i
    violation = torch.relu(margin - gap)[faster]
    return violation.mean() if violation.numel() else scores.sum() * 0


def log_mse(scores: torch.Tensor, runtime: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Regression of log runtime: squared error between each score and the log of its runtime
    (scores are then predicted log runtimes, on the runtimes' own scale)."""
    return ((scores - runtime.clamp_min(1e-30).log()) ** 2)[mask].mean()


# Where log-huber's error turns from squared to absolute: 0.1 in log time, about 10%.
HUBER_DELTA = 0.1


def log_huber(scores: torch.Tensor, runtime: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Robust regression of log runtime: squared error within HUBER_DELTA of the log of each
    runtime, absolute error beyond, divided by the delta (so an error far out pulls with a
    constant force, not one that grows with it). A measurement a busy neighbour slowed by half
    moves the fit no more than one 10% off."""
    target = runtime.clamp_min(1e-30).log()
    return torch.nn.functional.huber_loss(scores[mask], target[mask], delta=HUBER_DELTA) / HUBER_DELTA


# How much the ranking term counts beside the regression in log-mse+listmle and log-huber+listmle.
RANK_WEIGHT = 0.1


def log_mse_listmle(scores: torch.Tensor, runtime: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Log-runtime regression with a ranking term over each graph's configurations (ListMLE):
    the values right, and their order within a graph most of all."""
    return log_mse(scores, runtime, mask) + RANK_WEIGHT * listmle(scores, runtime, mask)


def log_huber_listmle(scores: torch.Tensor, runtime: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`log_huber` with ListMLE's ranking term, weighted as in log-mse+listmle."""
    return log_huber(scores, runtime, mask) + RANK_WEIGHT * listmle(scores, runtime, mask)


LOSS_FNS: Registry[Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = Registry("loss")
LOSS_FNS.add("mse", mse)
LOSS_FNS.add("listmle", listmle)
LOSS_FNS.add("hinge", hinge)
LOSS_FNS.add("log-mse", log_mse)
LOSS_FNS.add("log-mse+listmle", log_mse_listmle)
LOSS_FNS.add("log-huber", log_huber)
LOSS_FNS.add("log-huber+listmle", log_huber_listmle)
LOSSES = tuple(LOSS_FNS)


def loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    return LOSS_FNS.get(name)
