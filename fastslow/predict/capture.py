"""A model as an operator graph, for learned latency prediction: nodes are the operators one run
executes, edges the data flowing between them, and each node carries its operator kind, its
output's shape and dtype, its FLOPs and bytes as `fastslow.cost` counts them, and the arguments
that set an operator's speed beside its FLOPs (its data input's shape; a convolution's kernel,
stride and groups; a recurrent layer's steps, layers and hidden size). Those arguments took a
predictor trained on 152 models from 45% to 48% of held-out predictions within +-10% (52% with
the model's totals joined to the configuration, see fastslow.predict.dataset). Last come the
alignments of the data input's and the output's dimensions (`_alignments`).

The graph is traced with FX's `make_fx` on fake tensors (shapes and dtypes, no data): the
model is not run, and the nodes are the ATen operators eager PyTorch dispatches for one call,
the ones fastslow.cost's counter counts at the same level, so a captured graph's FLOPs equal
`count_cost`'s. Recurrent layers (nn.LSTM, nn.GRU) are traced as one node each, with
aten.lstm's and aten.gru's arguments: eager PyTorch runs each as one fused kernel per layer, and
traced through they would be a chain of ~20 operators per time step. Formats 4 to 9 captured
by `torch.export` and decomposed the result to core ATen: the same operators, but with the
activations eager runs as one kernel (hardswish, hardsigmoid) spelled out (a MobileNetV3 had 56
clamps for its 19 hardswishes and 9 hardsigmoids), and at ten times the cost: on two models of
each corpus family and two torchvision nets at 224x224 (`benchmarks/capture_speed.py`, one
thread, medians of three alternating runs), this capture took 1.8 s in all and that trace alone
18.7 s; MobileNetV3-small at 224x224, 0.20 s against 1.82 s. That was most of what `predict`
took for a model, and what a search over thousands of candidates would wait for. Both take
the same models: all 27 timm and 24 torchvision architectures of the corpus, and 12 of the
zoo's 16 (not the Game-of-Life nets, whose Python branches on weight values).
`torch.fx.symbolic_trace` gives module calls without shapes. A model the tracer cannot take is
a one-line error with its reason and the line of the model's code it stopped at.

The arrays follow the TpuGraphs tile schema, so `fastslow.tpugraphs`'s loading, batching,
models and metrics can serve both: `node_feat` (nodes, NODE_FEATS) float32, `node_opcode`
(nodes,) uint8 from the stable vocabulary OPS (unknown kinds share code 0), `edge_index`
(edges, 2) int64 with rows [consumer, producer] and nodes in topological order.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from fastslow.cost.counter import aliases, operator_name, tensor_bytes, tensors_in
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
    # format 10: what eager dispatches where core ATen had other names (the trace is no longer
    # decomposed, see the module's docstring)
    "native_batch_norm", "t", "transpose", "split", "unbind", "alias",
)
OPCODE = {name: i for i, name in enumerate(OPS)}
RECURRENT = ("lstm", "gru")  # traced as one node each (see _recurrent_whole)
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


def _reason(e: BaseException) -> str:
    """The tracer's first sentence, and the line of the model's code it stopped at (the last frame
    of the traceback outside torch and this module)."""
    text = " ".join(str(e).split())
    first = re.split(r"(?<=[.!?]) ", text, maxsplit=1)[0][:200]
    torch_dir, here = os.path.dirname(torch.__file__), os.path.abspath(__file__)
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if not f.filename.startswith(torch_dir) and os.path.abspath(f.filename) != here
              and not f.filename.startswith("<")]
    where = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}: {frames[-1].line})" if frames else ""
    return f"{type(e).__name__}: {first}{where}"


def _val(a: Any) -> Any:
    return a.meta.get("val") if isinstance(a, torch.fx.Node) else a


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


# Recurrent layers are traced as one node each (see the module's docstring), through these two
# operators: the same schemas as aten.lstm.input and aten.gru.input, so a node reads as theirs.
@torch.library.custom_op("fastslow_capture::lstm", mutates_args=())
def _lstm(input: torch.Tensor, hx: list[torch.Tensor], params: list[torch.Tensor], has_biases: bool,
          num_layers: int, dropout: float, train: bool, bidirectional: bool,
          batch_first: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    out = torch.ops.aten.lstm.input(input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
                                    batch_first)
    return out[0].clone(), out[1].clone(), out[2].clone()


@_lstm.register_fake
def _lstm_shapes(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):  # noqa: ANN001, ANN202
    h, c = hx
    return _recurrent_output(input, h, bidirectional), h.new_empty(h.shape), c.new_empty(c.shape)


@torch.library.custom_op("fastslow_capture::gru", mutates_args=())
def _gru(input: torch.Tensor, hx: torch.Tensor, params: list[torch.Tensor], has_biases: bool, num_layers: int,
         dropout: float, train: bool, bidirectional: bool, batch_first: bool) -> tuple[torch.Tensor, torch.Tensor]:
    out = torch.ops.aten.gru.input(input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
                                   batch_first)
    return out[0].clone(), out[1].clone()


@_gru.register_fake
def _gru_shapes(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):  # noqa: ANN001, ANN202
    return _recurrent_output(input, hx, bidirectional), hx.new_empty(hx.shape)


def _recurrent_output(x: torch.Tensor, h: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """A recurrent layer's output: its input with the last dimension each direction's hidden size
    (its state's last, which a projection makes smaller than the cell's)."""
    return x.new_empty((*x.shape[:-1], (2 if bidirectional else 1) * h.shape[-1]))


RECURRENT_OPS = {name: getattr(torch.ops.fastslow_capture, name) for name in RECURRENT}


@contextlib.contextmanager
def _recurrent_whole() -> Iterator[None]:
    """While tracing, nn.LSTM and nn.GRU (which call torch._VF.lstm and torch._VF.gru) run as the
    single operators above; a packed sequence takes torch's own path."""
    vf = torch._VF
    saved = {}
    for name, op in RECURRENT_OPS.items():
        eager = getattr(torch._C._VariableFunctions, name)

        def call(*args: Any, _op: Any = op, _eager: Any = eager, **kwargs: Any) -> Any:
            unpacked = len(args) == 9 and not kwargs and isinstance(args[2], (list, tuple))
            return _op(*args) if unpacked else _eager(*args, **kwargs)

        saved[name] = vf.__dict__.get(name)
        setattr(vf, name, call)
    try:
        yield
    finally:
        for name, before in saved.items():
            if before is None:
                delattr(vf, name)
            else:
                setattr(vf, name, before)


def _trace(model: nn.Module, inputs: tuple[Any, ...]) -> tuple[torch.fx.Graph, set[str], set[str]]:
    """The operators one call of `model` dispatches, as an FX graph traced on fake tensors
    (`make_fx`): the graph, the names of the nodes that hold its weights, and its inputs'. The
    parameters and buffers come in as inputs (through `functional_call`), so that they are fake
    too; a tensor the model keeps otherwise (a plain attribute, a torch.tensor(...) in forward)
    is a constant of the graph, read like a weight, with its value as the node's."""
    from torch.fx.experimental.proxy_tensor import make_fx

    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}

    def call(weights: dict[str, torch.Tensor], *xs: Any) -> Any:
        return torch.func.functional_call(model, weights, xs)

    with torch.no_grad(), _recurrent_whole():
        module = make_fx(call, tracing_mode="fake", _allow_non_fake_inputs=True)(state, *inputs)
    graph = module.graph
    placeholders = [n.name for n in graph.nodes if n.op == "placeholder"]
    constants = set()
    for node in graph.nodes:
        if node.op == "get_attr":
            node.meta.setdefault("val", getattr(module, str(node.target)))
            constants.add(node.name)
    return graph, set(placeholders[:len(state)]) | constants, set(placeholders[len(state):])


def capture(model: nn.Module, inputs: tuple[Any, ...], *, name: str = "model") -> OpGraph:
    """The operator graph of one forward pass of `model` on `inputs` (eval mode, no gradients),
    traced on fake tensors: the model is not run."""
    try:  # torch's fake-tensor logger prints the traceback of an operator that fails through a
        # handler made before any redirect: keep it, and anything the model prints, off the screen
        with quietly(stderr=True, logs=True):
            graph, weights, user_inputs = _trace(model.eval(), tuple(inputs))
    except Exception as e:  # the tracer's reason, and the line of the model's code it stopped at
        raise UserError(f"model '{name}' cannot be captured as an operator graph: {_reason(e)}") from None
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
            if not node.users and not node.all_input_nodes:
                continue  # an allocation nothing reads (batch norm's empty workspace in eval mode)
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
        out = tensors_in(node.meta.get("val"))
        if node.op == "placeholder":
            op, flops, read, weight, args = "input", 0, 0, 0, ()
        else:
            op = operator_name(node.target)
            args = torch.fx.node.map_aggregate(node.args, _val)
            kwargs = torch.fx.node.map_aggregate(node.kwargs, _val)
            value = node.meta.get("val")
            counts = FORMULAS[op](args, kwargs, value) if op in FORMULAS else (
                None if op in ZERO_FLOP else elementwise_counts(op, args, value))
            flops = int(sum((counts or {}).values()))
            read = _nbytes(tensors_in(args)) + _nbytes(tensors_in(kwargs))
            weight = sum(_nbytes(tensors_in(_val(a))) for a in node.all_input_nodes if a.name in weights)
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
