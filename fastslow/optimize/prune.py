"""Pruning: unstructured (random, L1, global), made permanent and stored sparse; structured
(whole channels removed with Torch-Pruning, so the dense kernels really get smaller).

Unstructured pruning leaves the tensors dense: zeros cost the same time. Its only gain is
storage, and only with a compact format: COO (`.to_sparse()`) is larger than dense for 50%
zeros (two int64 indices per value); here a bitmask (1 bit per weight) plus the non-zero
values is used, and the true file size is what gets reported.
"""

from __future__ import annotations

import copy
import io

import torch
import torch.nn.utils.prune as torch_prune
from torch import nn

from fastslow.errors import UserError

# The course's per-layer-type amounts.
DEFAULT_AMOUNTS = {nn.Conv2d: 0.2, nn.Linear: 0.4}


def _prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def prune_unstructured(model: nn.Module, method: str, amount: float | None = None) -> nn.Module:
    """A pruned copy. method: random | l1 (per layer: `amount`, else conv 0.2 / linear 0.4) |
    global (L1 over all conv and linear weights together, `amount` default 0.5).
    The pruning stays as masks (so fine-tuning keeps the zeros) until `make_permanent`."""
    if amount is not None and not 0 < amount < 1:
        raise UserError(f"pruning amount must be between 0 and 1 (got {amount})")
    model = copy.deepcopy(model)
    targets = _prunable(model)
    if method == "global":
        torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured,
                                        amount=amount if amount is not None else 0.5)
        return model
    for module, name in targets:
        share = amount if amount is not None else DEFAULT_AMOUNTS[type(module)]
        if method == "random":
            torch_prune.random_unstructured(module, name, amount=share)
        elif method == "l1":
            torch_prune.l1_unstructured(module, name, amount=share)
        else:
            raise UserError(f"unknown unstructured pruning method '{method}' (random, l1, global)")
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every pruning mask into its weight (the zeros stay; the hooks go)."""
    for module in model.modules():
        for name in [n[: -len("_orig")] for n, _ in module.named_parameters(recurse=False) if n.endswith("_orig")]:
            torch_prune.remove(module, name)
    return model


def sparsity(model: nn.Module) -> float:
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    total = sum(p.numel() for p in weights)
    return sum(int((p == 0).sum()) for p in weights) / total if total else 0.0


def to_compact(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each tensor with zeros as {name}.mask (packed bits, uint8) + {name}.values; others as they are."""
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        if t.is_floating_point() and t.numel() >= 64 and int((t == 0).sum()) * 2 > t.numel() // 8:
            flat = t.flatten()
            mask = flat != 0
            bits = torch.zeros(((mask.numel() + 7) // 8) * 8, dtype=torch.uint8)
            bits[: mask.numel()] = mask.to(torch.uint8)
            packed = (bits.view(-1, 8) << torch.arange(8, dtype=torch.uint8)).sum(1, dtype=torch.uint8)
            out[f"{name}.mask"] = packed
            out[f"{name}.values"] = flat[mask].clone()
            out[f"{name}.shape"] = torch.tensor(t.shape, dtype=torch.int64)
        else:
            out[name] = t
    return out


def from_compact(packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, t in packed.items():
        if name.endswith(".mask"):
            base = name[: -len(".mask")]
            shape = tuple(packed[f"{base}.shape"].tolist())
            n = int(torch.tensor(shape).prod())
            bits = ((t.unsqueeze(1) >> torch.arange(8, dtype=torch.uint8)) & 1).flatten()[:n].bool()
            dense = torch.zeros(n, dtype=packed[f"{base}.values"].dtype)
            dense[bits] = packed[f"{base}.values"]
            out[base] = dense.view(shape)
        elif not name.endswith((".values", ".shape")):
            out[name] = t
    return out


def serialized_size(obj: object) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.tell()


def prune_structured(model: nn.Module, example: torch.Tensor, ratio: float) -> nn.Module:
    """Remove `ratio` of the channels of every conv and linear layer (by L1 magnitude) except
    the output layer, with Torch-Pruning following the dependencies between layers."""
    if not 0 < ratio < 1:
        raise UserError(f"structured pruning ratio must be between 0 and 1 (got {ratio})")
    try:
        import torch_pruning as tp
    except ImportError:
        raise UserError("structured pruning needs torch-pruning (pip install 'fastslow[optimize]')") from None
    model = copy.deepcopy(model).eval()
    layers = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    pruner = tp.pruner.MetaPruner(model, example, importance=tp.importance.MagnitudeImportance(p=1),
                                  pruning_ratio=ratio, ignored_layers=layers[-1:])
    pruner.step()
    return model
