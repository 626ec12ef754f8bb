"""Feature normalisation, fitted on the training split only.

Raw node features span 0 to ~1e9 (byte counts next to flags), so each value goes through
sign(x)·log1p(|x|) and is then standardised per column with the training split's mean and
standard deviation (columns constant in training become 0). Features that are already on a
log scale (fastslow's latency graphs) are only standardised (`squash=False`): a standardised
log is affine in the log, so a first linear layer can still add log FLOPs to log batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def squash(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


@dataclass
class Standardizer:
    mean: torch.Tensor
    std: torch.Tensor
    squash: bool = True  # sign(x)·log1p(|x|) first

    @classmethod
    def fit(cls, rows: list[torch.Tensor], squash_first: bool = True) -> Standardizer:
        x = torch.cat(rows).double()
        x = squash(x) if squash_first else x
        mean, std = x.mean(0), x.std(0, unbiased=False)
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
        return cls(mean.float(), std.float(), squash_first)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return ((squash(x) if self.squash else x) - self.mean) / self.std

    def to_dict(self) -> dict[str, torch.Tensor | bool]:
        return {"mean": self.mean, "std": self.std, "squash": self.squash}

    @classmethod
    def from_dict(cls, d: dict[str, torch.Tensor]) -> Standardizer:
        return cls(d["mean"], d["std"], bool(d.get("squash", True)))


def config_rows(g) -> torch.Tensor:  # noqa: ANN001  (a TileGraph or a LayoutGraph)
    """Configuration feature rows: (c, 24) for tile, every (config, node) row (c·k, 18) for layout."""
    if hasattr(g, "config_feat"):
        return g.config_feat
    return g.node_config_feat.reshape(-1, g.node_config_feat.shape[-1])


@dataclass
class TileNormalizer:
    """Node and configuration feature standardisers (tile or layout configurations)."""

    node: Standardizer
    config: Standardizer

    @classmethod
    def fit(cls, graphs: list, squash_first: bool = True) -> TileNormalizer:  # training split only
        if not graphs:
            raise ValueError("no training graphs to fit the feature normalisation on")
        return cls(Standardizer.fit([g.node_feat for g in graphs], squash_first),
                   Standardizer.fit([config_rows(g) for g in graphs], squash_first))

    def to_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"node": self.node.to_dict(), "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> TileNormalizer:
        return cls(Standardizer.from_dict(d["node"]), Standardizer.from_dict(d["config"]))
