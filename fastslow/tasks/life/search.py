"""Find the smallest exact life network by searching over widths.

Every candidate of the family in `small_net` is trained from many seeds at once: on the
512 neighbourhoods a 3x3 convolution is a linear map of 9 inputs, so all seeds train as one
batched matrix program (a few ms per epoch for 32 seeds). Candidates are tried in order of
parameter count; the first whose trained network is right on every neighbourhood, with a
safety margin on its logits, wins. It is then copied into real Conv2d layers and checked
again on all neighbourhoods and on random grids against the exact rule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fastslow.cost.counter import params_of
from fastslow.errors import raise_dropped_stop
from fastslow.tasks.life.rules import all_neighbourhoods, random_grid, step_torch
from fastslow.tasks.life.train import accuracy_on_all
from fastslow.zoo.life import small_net

# (embed, hidden) candidates; sorted by parameter count before the search.
CANDIDATES = [(0, 1), (1, 1), (1, 2), (1, 3), (0, 2), (1, 4), (2, 2), (0, 3), (0, 4), (0, 8)]
# Logits must clear zero by this much on every neighbourhood, so that a different summation
# order (shifted adds instead of a matmul) cannot flip a cell.
MIN_MARGIN = 0.05


@dataclass
class Candidate:
    embed: int
    hidden: int
    params: int
    seeds: int
    exact_seeds: int = 0
    best_accuracy: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class SearchResult:
    model: nn.Sequential | None
    embed: int
    hidden: int
    tried: list[Candidate] = field(default_factory=list)
    saved: Any = field(default=None, repr=False)  # where the API stored the run

    def to_dict(self) -> dict[str, Any]:
        return {"embed": self.embed, "hidden": self.hidden,
                "params": params_of(self.model) if self.model is not None else None,
                "tried": [c.to_dict() for c in self.tried]}


def _uniform(shape: tuple[int, ...], fan_in: int, gen: torch.Generator) -> torch.Tensor:
    bound = 1 / math.sqrt(fan_in)  # nn.Linear / nn.Conv2d's default initialisation range
    return ((torch.rand(shape, generator=gen) * 2 - 1) * bound).requires_grad_()


def _train_seeds(embed: int, hidden: int, seeds: int, epochs: int, lr: float, seed: int
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Train `seeds` copies of one candidate together; return weights and per-seed logits."""
    x, y = all_neighbourhoods()
    x = x.view(512, 9)
    gen = torch.Generator().manual_seed(seed)
    w: list[torch.Tensor] = []
    if embed:
        w += [_uniform((seeds, 9, embed), 9, gen), _uniform((seeds, 1, embed), 9, gen)]
        w += [_uniform((seeds, embed, hidden), embed, gen), _uniform((seeds, 1, hidden), embed, gen)]
    else:
        w += [_uniform((seeds, 9, hidden), 9, gen), _uniform((seeds, 1, hidden), 9, gen)]
    w += [_uniform((seeds, hidden, 1), hidden, gen), _uniform((seeds, 1, 1), hidden, gen)]

    def forward() -> torch.Tensor:
        h = torch.baddbmm(w[1], x.expand(seeds, 512, 9), w[0])
        if embed:
            h = torch.baddbmm(w[3], h, w[2])
        return torch.baddbmm(w[-1], torch.relu(h), w[-2]).squeeze(-1)  # (seeds, 512)

    opt = torch.optim.Adam(w, lr=lr)
    target = y.expand(seeds, 512)
    for epoch in range(epochs):
        raise_dropped_stop()  # a Ctrl-C or SIGTERM that Python dropped stops here
        logits = forward()
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if epoch % 100 == 99 and _exact(logits.detach(), y).any():
            break
    with torch.no_grad():
        return [t.detach() for t in w], forward()


def _exact(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    right = ((logits > 0).float() == y).all(dim=1)
    return right & (logits.abs().min(dim=1).values > MIN_MARGIN)


def _to_model(embed: int, hidden: int, w: list[torch.Tensor], s: int) -> nn.Sequential:
    net = small_net(embed, hidden)
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    mats = [(w[i][s], w[i + 1][s]) for i in range(0, len(w), 2)]
    with torch.no_grad():
        for conv, (mat, bias) in zip(convs, mats, strict=True):
            out_ch, in_ch, kh, kw = conv.weight.shape
            conv.weight.copy_(mat.T.reshape(out_ch, in_ch, kh, kw))
            conv.bias.copy_(bias.reshape(-1))
    return net.eval()


def find_min_predictor(
    *, seeds: int = 32, epochs: int = 3000, lr: float = 0.05, seed: int = 0,
    candidates: list[tuple[int, int]] | None = None,
    on_candidate: Callable[[Candidate], None] | None = None,
) -> SearchResult:
    """Search the family from the fewest parameters up; stop at the first exact network."""
    family = sorted(candidates or CANDIDATES, key=lambda eh: params_of(small_net(*eh)))
    result = SearchResult(None, 0, 0)
    _, y = all_neighbourhoods()
    for embed, hidden in family:
        t0 = time.perf_counter()
        w, logits = _train_seeds(embed, hidden, seeds, epochs, lr, seed)
        exact = _exact(logits, y)
        accuracy = ((logits > 0).float() == y).float().mean(dim=1)
        cand = Candidate(embed, hidden, params_of(small_net(embed, hidden)), seeds, int(exact.sum()),
                         float(accuracy.max()), time.perf_counter() - t0)
        result.tried.append(cand)
        if on_candidate:
            on_candidate(cand)
        if exact.any():
            net = _to_model(embed, hidden, w, int(exact.nonzero()[0]))
            if verify_exact(net):
                result.model, result.embed, result.hidden = net, embed, hidden
                return result
    return result


def verify_exact(net: nn.Module, sizes: tuple[int, ...] = (8, 64, 257), steps: int = 3) -> bool:
    """Right on all 512 neighbourhoods and, for a few generations, on random grids."""
    if accuracy_on_all(net) != 1.0:
        return False
    with torch.inference_mode():
        for size in sizes:
            grid = random_grid(size, seed=size)
            for _ in range(steps):
                expected = step_torch(grid)
                got = (net(grid[None, None])[0, 0] > 0).float()
                if not torch.equal(got, expected):
                    return False
                grid = expected
    return True


def save_min(path: Path, result: SearchResult) -> None:
    if result.model is None:
        raise ValueError("no exact network was found; nothing to save")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"embed": result.embed, "hidden": result.hidden,
                "state_dict": result.model.state_dict()}, path)
