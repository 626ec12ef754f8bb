"""Counting FLOPs, MACs and bytes of one forward pass, per module, at the dispatcher.

Counting at the aten dispatch level (a TorchDispatchMode, as torch.utils.flop_counter does)
sees what really runs, whichever Python API produced it: `q @ k.T`, einsum, F.linear,
scaled_dot_product_attention, or the fused inference kernels of nn.MultiheadAttention and
nn.TransformerEncoderLayer. Where torch's own FlopCounterMode has no formula (SDPA's CPU
kernel, the fused encoder layer, oneDNN's LSTM) `formulas.py` adds one; an operator with no
formula is listed as uncounted with how often it ran.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from fastslow.cost.formulas import FORMULAS, REDUCTIONS, ZERO_FLOP, elementwise_counts

CATEGORIES = ("matmul", "conv", "norm", "pool", "elementwise")
POOLING_MODULES = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AvgPool1d,
                   nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                   nn.AdaptiveMaxPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)


@dataclass
class ModuleCost:
    name: str
    type: str
    params: int
    flops: int = 0
    bytes: int = 0  # the module's weights read once + outputs its ops write
    by_category: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name or "(model)", "type": self.type, "params": self.params,
                "flops": self.flops, "bytes": self.bytes, "flops_by_category": dict(self.by_category)}


@dataclass
class CostReport:
    params: int
    trainable_params: int
    flops_by_category: dict[str, int]
    bytes: int
    size_bytes: int
    by_module: list[ModuleCost]
    uncounted: list[tuple[str, int]]
    input_bytes: int = 0
    weight_bytes: int = 0
    written_bytes: int = 0

    @property
    def flops(self) -> int:
        return sum(self.flops_by_category.values())

    @property
    def macs(self) -> int:
        return (self.flops_by_category["matmul"] + self.flops_by_category["conv"]) // 2

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else 0.0

    def module(self, name: str) -> ModuleCost:
        for m in self.by_module:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params, "trainable_params": self.trainable_params, "flops": self.flops,
            "flops_by_category": dict(self.flops_by_category), "macs": self.macs, "bytes": self.bytes,
            "bytes_breakdown": {"weights": self.weight_bytes, "inputs": self.input_bytes,
                                "written": self.written_bytes},
            "intensity": self.intensity, "size_bytes": self.size_bytes,
            "by_module": [m.to_dict() for m in self.by_module],
            "uncounted": [{"op": op, "count": c} for op, c in self.uncounted],
        }


def tensor_bytes(t: torch.Tensor) -> int:
    """The bytes a tensor's elements take."""
    return t.numel() * t.element_size()


def tensors_in(x: Any) -> list[torch.Tensor]:
    """The tensors of a nested structure (tuples, lists, dicts), in order, other leaves left out."""
    return [t for t in tree_flatten(x)[0] if isinstance(t, torch.Tensor)]


def aliases(op: Any) -> bool:
    """Whether an operator returns a view of its input, which moves no data (view, permute, expand,
    select, ...; `_unsafe_view` too: a view the autograd does not track). One test for the cost
    counter's bytes written and the latency capture's bytes moved."""
    return bool(getattr(op, "is_view", False)) or getattr(op, "_opname", "") == "_unsafe_view"


def operator_name(op: Any) -> str:
    """An ATen operator's name as the FLOP formulas know it: an in-place one's (relu_) is its
    functional form's (relu), which does the same work. One rule for the cost counter and the
    latency capture."""
    name = op.overloadpacket.__name__ if hasattr(op, "overloadpacket") else getattr(op, "__name__", str(op))
    return name[:-1] if name.endswith("_") and not name.startswith("_") else name


def params_of(model: nn.Module) -> int:
    """Parameters of a module (every one, trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def state_dict_size_bytes(model: nn.Module) -> int:
    """Bytes of the serialised state dict: the model's size on disk."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


class _Counter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = [""]
        self.module_types: dict[str, type] = {}
        self.flops: dict[str, Counter[str]] = defaultdict(Counter)  # module -> category -> FLOPs
        self.written: Counter[str] = Counter()  # module -> bytes written
        self.uncounted: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        base = operator_name(func)
        counts = self._counts(base, func, args, kwargs, out)
        written = 0
        if not aliases(func):
            written = sum(map(tensor_bytes, tensors_in(out)))
        for module in self.stack:
            for cat, n in (counts or {}).items():
                if n:
                    self.flops[module][cat] += int(n)
            self.written[module] += written
        return out

    def _counts(self, base: str, func: Any, args: tuple, kwargs: dict, out: Any) -> dict[str, int] | None:
        if base in FORMULAS:
            try:
                return FORMULAS[base](args, kwargs, out)
            except (NotImplementedError, IndexError, AttributeError, TypeError):
                self.uncounted[f"{func.overloadpacket.__name__} (unsupported arguments)"] += 1
                return None
        counts = elementwise_counts(base, args, out)
        if counts is not None:
            if base in REDUCTIONS and isinstance(self.module_types.get(self.stack[-1]), type) and issubclass(
                    self.module_types[self.stack[-1]], POOLING_MODULES):
                return {"pool": counts["elementwise"]}  # AdaptiveAvgPool2d(1) runs as mean
            return counts
        if base in ZERO_FLOP:
            return None
        self.uncounted[func.overloadpacket.__name__] += 1
        return None


@contextmanager
def _track_modules(model: nn.Module, counter: _Counter) -> Iterator[None]:
    names = {id(m): n for n, m in model.named_modules()}
    counter.module_types = {n: type(m) for n, m in model.named_modules()}

    def pre(module: nn.Module, args: Any) -> None:
        name = names.get(id(module))
        if name is not None and name != "":
            counter.stack.append(name)

    def post(module: nn.Module, args: Any, output: Any) -> None:
        name = names.get(id(module))
        if name is not None and name != "" and counter.stack[-1] == name:
            counter.stack.pop()

    handles = [m.register_forward_pre_hook(pre) for m in model.modules()]
    handles += [m.register_forward_hook(post, always_call=True) for m in model.modules()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def count_cost(model: nn.Module, inputs: tuple[Any, ...], *, train: bool = False) -> CostReport:
    """Run one forward pass of `model(*inputs)` and count it.

    `train=False` (the default) counts inference as deployed: eval mode, no autograd, so the
    fused fast paths run. `train=True` counts a training-mode forward (dropout on, batch-norm
    statistics, autograd recording) without a backward pass.
    """
    was_training = model.training
    model.train(train)
    counter = _Counter()
    try:
        with torch.set_grad_enabled(train), _track_modules(model, counter), counter:
            model(*inputs)
    finally:
        model.train(was_training)

    params = {n: sum(p.numel() for p in m.parameters()) for n, m in model.named_modules()}
    weight_bytes_of = {
        n: sum(tensor_bytes(t) for t in [*m.parameters(), *m.buffers()]) for n, m in model.named_modules()
    }
    rows = []
    for name, module in model.named_modules():
        cats = {c: counter.flops[name][c] for c in CATEGORIES}
        rows.append(ModuleCost(name, type(module).__name__, params[name], sum(cats.values()),
                               weight_bytes_of[name] + counter.written[name], cats))
    input_bytes = sum(map(tensor_bytes, tensors_in(inputs)))
    total = {c: counter.flops[""][c] for c in CATEGORIES}
    weights = weight_bytes_of[""]
    written = counter.written[""]
    rows[0].bytes += input_bytes
    return CostReport(
        params=params[""],
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        flops_by_category=total,
        bytes=weights + input_bytes + written,
        size_bytes=state_dict_size_bytes(model),
        by_module=rows,
        uncounted=sorted(counter.uncounted.items(), key=lambda kv: -kv[1]),
        input_bytes=input_bytes, weight_bytes=weights, written_bytes=written,
    )


def modules_to_depth(report: CostReport, depth: int) -> list[ModuleCost]:
    """The whole model, then every module at most `depth` levels down (depth 1: children)."""
    return [m for m in report.by_module if m.name == "" or m.name.count(".") + 1 <= depth]
