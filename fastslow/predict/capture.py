"""A model as an operator graph, for learned latency prediction: nodes are the operators one run
executes, edges the data flowing between them, and each node carries its operator kind, its
output's shape and dtype, its FLOPs and bytes as `fastslow.cost` counts them, and the arguments
that set an operator's speed beside its FLOPs (its data input's shape; a convolution's kernel,
stride and groups; a recurrent layer's steps, layers and hidden size). Those arguments took a
predictor trained on 152 models from 45% to 48% of held-out predictions within +-10% (52% with
the model's totals joined to the configuration, see fastslow.predict.dataset). Last come the
alignments of the data input's and the output's dimensions (`_alignments`).

Capture is by `torch.export`, then decomposed to core ATen, except that recurrent layers
(aten.lstm, aten.gru) stay one node each: eager PyTorch runs them as one fused kernel per
layer, and decomposed they would be a chain of ~20 operators per time step. On 21 models (the zoo, 8
torchvision and 5 timm families) torch.export and `torch.fx.symbolic_trace` each captured 20;
neither takes zoo:life-min, whose Python branches on weight values. torch.export is used
because every node comes with its output's shape and dtype (fake tensors, no real run) and the
nodes are the ATen operators the dispatcher runs, the ones fastslow.cost's FLOP formulas count:
a captured graph's FLOPs equal `count_cost`'s. symbolic_trace gives module calls without
shapes. A model torch.export cannot take is a one-line error with the exporter's reason and the
line of the model's code it stopped at.

The arrays follow the TpuGraphs tile schema, so `fastslow.tpugraphs`'s loading, batching,
models and metrics can serve both: `node_feat` (nodes, NODE_FEATS) float32, `node_opcode`
(nodes,) uint8 from the stable vocabulary OPS (unknown kinds share code 0), `edge_index`
(edges, 2) int64 with rows [consumer, producer] and nodes in topological order.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fastslow.cost.counter import aliases, tensor_bytes
from fastslow.cost.formulas import FORMULAS, ZERO_FLOP, elementwise_counts
from fastslow.errors import UserError
from fastslow.quiet import quietly

# The operator vocabulary: an index is an opcode and never changes meaning (append only).
OPS = (
    "other", "input", "convolution", "addmm", "mm", "bmm", "relu", "gelu", "silu", "sigmoid", "tanh",
    "hardtanh", "hardswish", "hardsigmoid", "leaky_relu", "elu", "add", "sub", "mul", "div", "neg", "exp",
    "log", "pow", "sqrt", "rsqrt", "mean", "sum", "amax", "var_mean", "_softmax", "_log_softmax",
    "native_layer_norm", "_native_batch_norm_legit_no_training", "native_group_norm", "max_pool2d_with_indices",
    "avg_pool2d", "_adaptive_avg_pool2d", "view", "_unsafe_view", "permute", "expand", "clone", "cat",
    "slice", "select", "split_with_sizes", "squeeze", "unsqueeze", "_to_copy", "constant_pad_nd", "embedding",
    "index_select", "where", "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_efficient_attention",
    "mkldnn_rnn_layer", "lstm", "gru", "rnn_tanh", "upsample_nearest2d", "upsample_bilinear2d", "max_pool1d",
    "convolution_backward", "full", "arange", "zeros", "ones", "clamp", "minimum", "maximum", "erf",
    "any", "eq", "full_like", "logical_not", "as_strided",
)
OPCODE = {name: i for i, name in enumerate(OPS)}
RECURRENT = ("lstm", "gru")  # kept whole by the capture (see _decompositions)
NODE_FEATS = 32
# Where a node's features hold its work, as (column, scale) of log_feature: what the roofline
# readout reads (fastslow.tpugraphs.models). `_features` puts them there.
WORK_COLUMNS = {"flops": (0, 48), "bytes": (1, 48), "weight_bytes": (12, 40)}
DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@dataclass
class OpGraph:
    """One captured model: per-node features and opcodes, edges [consumer, producer], and totals."""

    node_feat: np.ndarray  # (nodes, NODE_FEATS) float32
    node_opcode: np.ndarray  # (nodes,) uint8
    edge_index: np.ndarray  # (edges, 2) int64, rows [consumer, producer]
    names: list[str]  # the operator of each node ("aten.convolution", "input", ...)
    flops: int  # total, as fastslow.cost counts them
    bytes: int  # total read and written by the operators
    unknown: list[str]  # operator names outside the vocabulary (opcode 0)
    node_flops: np.ndarray  # (nodes,) float64: each operator's FLOPs ...
    node_bytes: np.ndarray  # ... bytes read and written ...
    node_weight_bytes: np.ndarray  # ... and of those, the parameters' and buffers' bytes it reads

    @property
    def nodes(self) -> int:
        return int(self.node_opcode.shape[0])


def _reason(e: Exception) -> str:
    """The exporter's first sentence, and the line of the model's code it stopped at."""
    text = " ".join(str(e).split())
    where = re.search(r"Caused by: \(([^)]*)\)", text)
    first = re.split(r"(?<=[.!?]) ", text, maxsplit=1)[0][:200]
    return f"{type(e).__name__}: {first}" + (f" (at {where.group(1)})" if where else "")


def _val(a: Any) -> Any:
    return a.meta.get("val") if isinstance(a, torch.fx.Node) else a


def _tensors(x: Any) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    torch.fx.node.map_aggregate(x, lambda v: out.append(v) if isinstance(v, torch.Tensor) else None)
    return out


def _nbytes(ts: list[torch.Tensor]) -> int:
    return sum(map(tensor_bytes, ts))


def log_feature(x: float, scale: float) -> float:
    """A count as a feature: log2(1 + x) / scale, so that counts of any size land near [0, 1]."""
    return math.log2(1.0 + max(0.0, float(x))) / scale


def _data_input(op: str, args: Any) -> torch.Tensor | None:
    """The tensor an operator computes on (not its weight or bias): the first argument of a
    convolution, a product or a recurrent layer (a GRU's second is its initial state, which can
    be the larger), addmm's second (its first is the bias), else the largest input."""
    ts = [a for a in (args if isinstance(args, (list, tuple)) else ()) if isinstance(a, torch.Tensor)]
    if op in ("convolution", "mm", "bmm", *RECURRENT) and ts:
        return ts[0]
    if op == "addmm" and len(ts) > 1:
        return ts[1]
    return max(ts, key=lambda t: t.numel()) if ts else None


def _last_four(t: torch.Tensor | None) -> list[int]:
    """A tensor's last four dimensions, 0 for each it does not have (and all four for no tensor)."""
    return ([0] * 4 + (list(t.shape) if t is not None else []))[-4:]


def _argument_features(op: str, args: Any, x: torch.Tensor | None) -> list[float]:
    """What makes two operators of one kind and equal FLOPs run at different speeds: the data
    input's last four dimensions (a product's reduction length, a convolution's input channels
    and size), then four that depend on the kind. For a convolution: its kernel's area, stride,
    groups and whether it is depthwise (nn-Meter's kernel features: input size, channels,
    kernel, stride). For a recurrent layer (aten.lstm, aten.gru: one node for all its layers and
    steps): its time steps, layers, hidden size and whether it is bidirectional, since it runs
    step after step, each step a small product with a fixed cost of its own. `x` is the data
    input (`_data_input`)."""
    kind = [0.0] * 4
    if op == "convolution" and x is not None and isinstance(args[1], torch.Tensor):
        g = int(args[8])
        kind = [log_feature(math.prod(args[1].shape[2:]), 8), log_feature(max(args[3]) if args[3] else 1, 4),
                log_feature(g, 12), float(g > 1 and x.dim() > 1 and g == x.shape[1])]
    elif op in RECURRENT and x is not None:
        # (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
        steps = x.shape[1] if x.dim() == 3 and args[8] else x.shape[0]
        hidden = args[2][1].shape[1]  # w_hh of the first layer: (gates x hidden, hidden)
        kind = [log_feature(steps, 12), log_feature(int(args[4]), 4), log_feature(hidden, 12), float(bool(args[7]))]
    return [*[log_feature(d, 16) for d in _last_four(x)], *kind]


ALIGNMENT = 64  # the largest power of two an alignment feature tells apart


def _alignment(d: int) -> float:
    """The largest power of two, up to ALIGNMENT, that divides a dimension: log2 of it over
    log2(ALIGNMENT), so 1 for a multiple of 64 and 0 for an odd size (and for no dimension)."""
    return math.log2(math.gcd(int(d), ALIGNMENT)) / math.log2(ALIGNMENT) if d > 0 else 0.0


def _alignments(x: torch.Tensor | None, out: list[torch.Tensor]) -> list[float]:
    """How the last four dimensions of the data input `x` (`_data_input`) and of
    the output divide by powers of two. Vector units and oneDNN's blocked layouts work on 8 or 16
    channels at a time, so an operator's speed depends on whether its sizes are multiples of
    those, which a log-scaled size does not show; the corpus's convolutional widths (8, 12, 16,
    24, ...) often are not. On a 2-core AMD EPYC's 30-minute collection (153 models trained, 42
    held out, the defaults, seeds 0 and 1) these eight features took held-out predictions within
    +-10% from 46.6% and 46.6% to 55.2% and 54.1%, within +-20% from 72.9% and 68.5% to 80.3%
    and 78.5%, and RMSPE from 27.9% and 28.4% to 21.3% and 22.8%."""
    return [_alignment(d) for d in _last_four(x) + _last_four(out[0] if out else None)]


def _features(out: list[torch.Tensor], flops: int, read: int, written: int, weight: int, n_in: int,
              fan_out: int, dense: bool) -> list[float]:
    first = out[0] if out else None
    dtype = first.dtype if first is not None else torch.float32
    return [
        log_feature(flops, 48), log_feature(read + written, 48),
        log_feature(first.numel() if first is not None else 0, 32),
        *[log_feature(d, 16) for d in _last_four(first)], len(first.shape) / 8 if first is not None else 0.0,
        *[float(dtype == d) for d in DTYPES], float(first is not None and not dtype.is_floating_point),
        log_feature(weight, 40), float(dense), n_in / 8, fan_out / 8,
    ]


def _decompositions() -> Any:
    table = torch.export.default_decompositions()
    for name in RECURRENT:
        table.pop(getattr(torch.ops.aten, name).input, None)
    return table


def capture(model: nn.Module, inputs: tuple[Any, ...], *, name: str = "model") -> OpGraph:
    """The operator graph of one forward pass of `model` on `inputs` (eval mode, no gradients)."""
    try:  # the exporter prints the graph it got so far when it fails, and logs the traceback of the
        # operator it stopped at through handlers made before any redirect: keep both off the screen
        with quietly(stderr=True, logs=True):
            program = torch.export.export(model.eval(), tuple(inputs)).run_decompositions(_decompositions())
    except Exception as e:  # the exporter's reason names the operator or construct it stopped at
        raise UserError(f"model '{name}' cannot be captured as an operator graph: {_reason(e)}") from None
    graph = program.graph
    sig = program.graph_signature
    weights = set(sig.inputs_to_parameters) | set(sig.inputs_to_buffers)
    user_inputs = set(sig.user_inputs)
    index: dict[torch.fx.Node, int] = {}
    alias: dict[torch.fx.Node, torch.fx.Node] = {}  # getitem of a tuple -> the operator that made it
    kept: list[torch.fx.Node] = []
    for node in graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            index[node] = len(kept)
            kept.append(node)
        elif node.op == "call_function":
            if node.target.__name__ == "getitem" and isinstance(node.args[0], torch.fx.Node):
                alias[node] = alias.get(node.args[0], node.args[0])
                continue
            index[node] = len(kept)
            kept.append(node)
    fan_out = {n: 0 for n in kept}
    edges: list[tuple[int, int]] = []
    producers: dict[torch.fx.Node, list[torch.fx.Node]] = {}
    for node in kept:
        seen = []
        for src in node.all_input_nodes:
            src = alias.get(src, src)
            if src in index and src not in seen:
                seen.append(src)
                fan_out[src] += 1
        producers[node] = seen
    feats, codes, names, unknown, costs = [], [], [], [], []
    total_flops = total_bytes = 0
    for node in kept:
        out = _tensors(node.meta.get("val"))
        if node.op == "placeholder":
            op, flops, read, weight, args = "input", 0, 0, 0, ()
        else:
            op = node.target._opname if hasattr(node.target, "_opname") else str(node.target)
            args = torch.fx.node.map_aggregate(node.args, _val)
            kwargs = torch.fx.node.map_aggregate(node.kwargs, _val)
            value = node.meta.get("val")
            counts = FORMULAS[op](args, kwargs, value) if op in FORMULAS else (
                None if op in ZERO_FLOP else elementwise_counts(op, args, value))
            flops = int(sum((counts or {}).values()))
            read = _nbytes(_tensors(args)) + _nbytes(_tensors(kwargs))
            weight = sum(_nbytes(_tensors(_val(a))) for a in node.all_input_nodes if a.name in weights)
        moves = node.op != "placeholder" and not aliases(node.target)
        if not moves:
            if weight:  # a view of a weight (a Linear's transposed matrix) is that weight to its readers
                weights.add(node.name)
            read = weight = 0
        written = _nbytes(out) if moves else 0
        total_flops += flops
        total_bytes += read + written
        costs.append((flops, read + written, weight))
        if op not in OPCODE:
            unknown.append(op)
        dense = op in ("convolution", "addmm", "mm", "bmm")
        x = _data_input(op, args)
        feats.append(_features(out, flops, read, written, weight, len(producers[node]), fan_out[node], dense)
                     + _argument_features(op, args, x) + _alignments(x, out))
        codes.append(OPCODE.get(op, 0))
        names.append(op)
        edges += [(index[node], index[p]) for p in producers[node]]
    cost = np.asarray(costs, dtype=np.float64).reshape(-1, 3)
    return OpGraph(np.asarray(feats, dtype=np.float32).reshape(-1, NODE_FEATS), np.asarray(codes, dtype=np.uint8),
                   np.asarray(edges, dtype=np.int64).reshape(-1, 2), names, total_flops, total_bytes,
                   sorted(set(unknown)), cost[:, 0], cost[:, 1], cost[:, 2])
