"""fastslow's FLOP counts against torch.utils.flop_counter.FlopCounterMode, and against formulas
derived by hand, for attention written three ways and for a ViT-B/16 (timm) and a fused
nn.TransformerEncoder, all in inference (no_grad, eval) as deployed.

    .venv/bin/python benchmarks/flop_counters.py
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fastslow.cost.counter import count_cost
from fastslow.zoo.resolvers import import_optional


class Attention(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        if self.kind == "explicit q@k":
            return ((q @ q.transpose(-1, -2)) / math.sqrt(q.shape[-1])).softmax(-1) @ q
        if self.kind == "einsum":
            s = torch.einsum("bhle,bhse->bhls", q, q) / math.sqrt(q.shape[-1])
            return torch.einsum("bhls,bhse->bhle", s.softmax(-1), q)
        return F.scaled_dot_product_attention(q, q, q)


def torch_count(model: nn.Module, x: torch.Tensor) -> int:
    mode = FlopCounterMode(display=False)
    with torch.no_grad(), mode:
        model.eval()(x)
    return mode.get_total_flops()


def main() -> None:
    cases = []
    q = torch.randn(1, 12, 197, 64)
    for kind in ("explicit q@k", "einsum", "sdpa"):
        cases.append((f"attention, {kind}", Attention(kind), q, 2 * 2 * 12 * 197 * 197 * 64))
    timm = import_optional("timm")
    n, d = 197, 768
    vit_products = 2 * 196 * d * 768 + 12 * (2 * n * d * 3 * d + 4 * n * n * d + 2 * n * d * d + 4 * n * d * 3072) \
        + 2 * d * 1000
    cases.append(("timm vit_base_patch16_224", timm.create_model("vit_base_patch16_224", pretrained=False),
                  torch.randn(1, 3, 224, 224), vit_products))
    layer = nn.TransformerEncoderLayer(d, 12, 3072, batch_first=True)
    enc = nn.TransformerEncoder(layer, 12, enable_nested_tensor=False)
    enc_products = 12 * (2 * n * d * 3 * d + 4 * n * n * d + 2 * n * d * d + 4 * n * d * 3072)
    cases.append(("nn.TransformerEncoder (fused)", enc, torch.randn(1, n, d), enc_products))
    print("products (matmul + conv FLOPs) of one inference forward; hand = formula by hand")
    print(f"{'model':<32} {'hand':>12} {'fastslow':>12} {'FlopCounterMode':>16} {'torch low by':>13}")
    for name, model, x, hand in cases:
        r = count_cost(model, (x,))
        ours = r.flops_by_category["matmul"] + r.flops_by_category["conv"]
        theirs = torch_count(model, x)
        print(f"{name:<32} {hand:>12.4g} {ours:>12.4g} {theirs:>16.4g} {100 * (1 - theirs / hand):>12.1f}%"
              + ("" if ours == hand else "  (fastslow differs from hand!)"))


if __name__ == "__main__":
    main()
