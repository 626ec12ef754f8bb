"""FLOP formulas per aten operator, split into categories.

Conventions (stated once, used everywhere):
* a multiply-add is 2 FLOPs; MACs are reported beside FLOPs as (matmul + conv FLOPs) / 2;
* `matmul` holds the products of matrix multiplications, wherever they happen: mm, bmm,
  addmm, linear, einsum (which reaches the dispatcher as bmm), and the products inside fused
  attention, fused multi-head attention, fused encoder layers and recurrent gates;
* `conv` holds the products of convolutions (transposed: each input element times the
  kernel);
* a bias addition, an activation, a residual addition, softmax, scaling: `elementwise`,
  one FLOP per output element (softmax 5: max, subtract, exp, sum, divide), a reduction one
  per input element;
* `norm`: batch norm 4 FLOPs per element in eval (subtract, scale, weight, bias), 7 in
  training (plus mean and variance); layer/group norm 7 (mean 1, variance 2, normalise 2,
  affine 2; 5 without affine); RMS norm 4;
* `pool`: one FLOP per element of each window (a compare or an add);
* causal attention is counted dense, as the explicit `q @ k.T` form computes it;
* data movement and creation (views, copies, cat, indexing, embedding lookup) are 0 FLOPs
  but their outputs count as bytes written.
Every other operator is reported as uncounted, never silently zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

Counts = dict[str, int]
Formula = Callable[[tuple[Any, ...], dict[str, Any], Any], Counts]

SOFTMAX_FLOPS_PER_ELEMENT = 5
BATCH_NORM_EVAL_FLOPS = 4
BATCH_NORM_TRAIN_FLOPS = 7
LAYER_NORM_FLOPS = 7
LAYER_NORM_NO_AFFINE_FLOPS = 5
RMS_NORM_FLOPS = 4
LSTM_CELL_FLOPS_PER_UNIT = 9  # 3 sigmoid + 1 tanh on gates, c = f*c + i*g (3), h = o*tanh(c) (2)
GRU_CELL_FLOPS_PER_UNIT = 8  # 2 sigmoid + 1 tanh, r * (W h + b) (1), h = (1 - z) * n + z * h (3)

FORMULAS: dict[str, Formula] = {}


def formula(*names: str) -> Callable[[Formula], Formula]:
    def wrap(fn: Formula) -> Formula:
        for n in names:
            FORMULAS[n] = fn
        return fn
    return wrap


def _n(t: Any) -> int:
    return t.numel() if isinstance(t, torch.Tensor) else 0


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any = None) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


# ---- matrix products -------------------------------------------------------------------

@formula("mm")
def _mm(args, kwargs, out) -> Counts:
    a, b = args[0], args[1]
    return {"matmul": 2 * a.shape[0] * a.shape[1] * b.shape[1]}


@formula("addmm")
def _addmm(args, kwargs, out) -> Counts:
    c = _mm(args[1:], kwargs, out)
    return {**c, "elementwise": _n(out)}


@formula("bmm")
def _bmm(args, kwargs, out) -> Counts:
    a, b = args[0], args[1]
    return {"matmul": 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]}


@formula("baddbmm")
def _baddbmm(args, kwargs, out) -> Counts:
    return {**_bmm(args[1:], kwargs, out), "elementwise": _n(out)}


@formula("mv")
def _mv(args, kwargs, out) -> Counts:
    return {"matmul": 2 * _n(args[0])}


@formula("addmv")
def _addmv(args, kwargs, out) -> Counts:
    return {"matmul": 2 * _n(args[1]), "elementwise": _n(out)}


@formula("dot", "vdot")
def _dot(args, kwargs, out) -> Counts:
    return {"matmul": 2 * _n(args[0])}


@formula("linear")
def _linear(args, kwargs, out) -> Counts:
    w = args[1]
    bias = _arg(args, kwargs, 2, "bias")
    return {"matmul": 2 * _n(out) * w.shape[-1], "elementwise": _n(out) if bias is not None else 0}


@formula("_addmm_activation")
def _addmm_act(args, kwargs, out) -> Counts:
    return {**_mm(args[1:], kwargs, out), "elementwise": 2 * _n(out)}


@formula("matmul")
def _matmul(args, kwargs, out) -> Counts:
    return {"matmul": 2 * _n(out) * args[0].shape[-1]}


# ---- convolution -----------------------------------------------------------------------

@formula("convolution", "_convolution", "conv2d", "conv1d", "conv3d")
def _convolution(args, kwargs, out) -> Counts:
    x, w = args[0], args[1]
    bias = _arg(args, kwargs, 2, "bias")
    transposed = bool(_arg(args, kwargs, 6, "transposed", False))
    groups = int(_arg(args, kwargs, 8, "groups", 1) or 1)
    kernel = math.prod(w.shape[2:])
    if transposed:  # weight is (Cin, Cout/groups, k...): every input element meets the kernel
        products = 2 * _n(x) * w.shape[1] * kernel
    else:  # weight is (Cout, Cin/groups, k...)
        products = 2 * _n(out) * w.shape[1] * kernel
    del groups  # already in the weight's shape
    return {"conv": products, "elementwise": _n(out) if bias is not None else 0}


# ---- attention ---------------------------------------------------------------------------

@formula("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
         "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
         "scaled_dot_product_attention", "_scaled_dot_product_fused_attention_overrideable")
def _sdpa(args, kwargs, out) -> Counts:
    q, k, v = args[0], args[1], args[2]
    batch = math.prod(q.shape[:-2])
    length, e = q.shape[-2], q.shape[-1]
    s, ev = k.shape[-2], v.shape[-1]
    scores = batch * length * s
    mask = kwargs.get("attn_mask")
    if mask is None and len(args) > 3 and isinstance(args[3], torch.Tensor):
        mask = args[3]  # the efficient kernel takes its bias positionally
    elementwise = SOFTMAX_FLOPS_PER_ELEMENT * scores + batch * length * e  # softmax, scaling q
    if mask is not None:
        elementwise += scores
    return {"matmul": 2 * scores * e + 2 * scores * ev, "elementwise": elementwise}


@formula("_native_multi_head_attention")
def _native_mha(args, kwargs, out) -> Counts:
    q, k = args[0], args[1]
    d, heads = int(args[3]), int(args[4])
    b, length = q.shape[0], q.shape[1]
    s = k.shape[1]
    qkv_bias = _arg(args, kwargs, 6, "qkv_bias")
    proj_bias = _arg(args, kwargs, 8, "proj_bias")
    need_weights = bool(_arg(args, kwargs, 10, "need_weights", True))
    average = bool(_arg(args, kwargs, 11, "average_attn_weights", True))
    scores = b * heads * length * s
    matmul = 2 * b * length * d * d + 2 * b * s * d * 2 * d  # q, then k and v projections
    matmul += 2 * 2 * b * length * s * d  # q·k and attention·v, over all heads
    matmul += 2 * b * length * d * d  # output projection
    elementwise = SOFTMAX_FLOPS_PER_ELEMENT * scores + b * length * d  # softmax, scaling
    if qkv_bias is not None:
        elementwise += b * length * d + 2 * b * s * d
    if proj_bias is not None:
        elementwise += b * length * d
    if need_weights and average:
        elementwise += scores
    return {"matmul": matmul, "elementwise": elementwise}


@formula("_transformer_encoder_layer_fwd")
def _encoder_layer(args, kwargs, out) -> Counts:
    src = args[0]
    if src.is_nested:
        raise NotImplementedError("nested-tensor input")
    d, heads = int(args[1]), int(args[2])
    ffn = args[14].shape[0]
    b, length = src.shape[0], src.shape[1]
    tokens = b * length
    scores = b * heads * length * length
    matmul = (2 * tokens * d * 3 * d + 2 * 2 * b * length * length * d + 2 * tokens * d * d
              + 2 * tokens * d * ffn * 2)
    elementwise = (tokens * 3 * d + tokens * d + tokens * ffn + tokens * d  # biases
                   + tokens * d + SOFTMAX_FLOPS_PER_ELEMENT * scores  # scaling, softmax
                   + tokens * ffn + 2 * tokens * d)  # activation, two residual additions
    return {"matmul": matmul, "elementwise": elementwise, "norm": 2 * LAYER_NORM_FLOPS * tokens * d}


# ---- recurrent -------------------------------------------------------------------------

@formula("mkldnn_rnn_layer")
def _mkldnn_rnn_layer(args, kwargs, out) -> Counts:
    x, w_ih, w_hh = args[0], args[1], args[2]
    has_biases = bool(args[12])
    gates, hidden = w_ih.shape[0], w_hh.shape[1]
    steps_x_batch = _n(x) // x.shape[-1]
    matmul = 2 * steps_x_batch * gates * (w_ih.shape[1] + hidden)
    elementwise = steps_x_batch * (gates * (1 + 2 * has_biases) + LSTM_CELL_FLOPS_PER_UNIT * hidden)
    return {"matmul": matmul, "elementwise": elementwise}


@formula("lstm", "gru")
def _rnn(args, kwargs, out) -> Counts:
    """A whole multi-layer aten.lstm / aten.gru (the graph capture keeps them whole): per layer
    and direction, the gate products over every step, the biases and the cell's elementwise work,
    as `mkldnn_rnn_layer` counts one layer."""
    x, params, has_biases = args[0], list(args[2]), bool(args[3])
    per_layer = 4 if has_biases else 2  # w_ih, w_hh[, b_ih, b_hh]
    steps_x_batch = _n(x) // x.shape[-1]
    gates_per_unit = params[0].shape[0] // params[1].shape[1]
    cell = LSTM_CELL_FLOPS_PER_UNIT if gates_per_unit == 4 else GRU_CELL_FLOPS_PER_UNIT
    matmul = elementwise = 0
    for w_ih, w_hh in zip(params[0::per_layer], params[1::per_layer], strict=True):
        gates, hidden = w_ih.shape[0], w_hh.shape[1]
        matmul += 2 * steps_x_batch * gates * (w_ih.shape[1] + hidden)
        elementwise += steps_x_batch * (gates * (1 + 2 * has_biases) + cell * hidden)
    return {"matmul": matmul, "elementwise": elementwise}


# ---- normalisation and pooling -----------------------------------------------------------

@formula("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
         "batch_norm", "_batch_norm_impl_index", "cudnn_batch_norm", "miopen_batch_norm")
def _batch_norm(args, kwargs, out) -> Counts:
    name_training = kwargs.get("training")
    training = bool(name_training) if name_training is not None else any(
        a is True for a in args[5:6])
    per = BATCH_NORM_TRAIN_FLOPS if training else BATCH_NORM_EVAL_FLOPS
    return {"norm": per * _n(args[0])}


@formula("native_layer_norm", "layer_norm", "native_group_norm", "group_norm")
def _layer_norm(args, kwargs, out) -> Counts:
    w = _arg(args, kwargs, 2, "weight")
    per = LAYER_NORM_FLOPS if w is not None else LAYER_NORM_NO_AFFINE_FLOPS
    return {"norm": per * _n(args[0])}


@formula("rms_norm", "_fused_rms_norm")
def _rms_norm(args, kwargs, out) -> Counts:
    return {"norm": RMS_NORM_FLOPS * _n(args[0])}


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, tuple | list) else out


@formula("max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "max_pool3d_with_indices",
         "avg_pool1d", "avg_pool2d", "avg_pool3d")
def _pool(args, kwargs, out) -> Counts:
    k = args[1]
    window = math.prod(k) if isinstance(k, Sequence) else int(k)
    dims = args[0].dim() - 2
    if isinstance(k, Sequence) and len(k) == 1:
        window = int(k[0]) ** dims
    return {"pool": _n(_first(out)) * window}


@formula("adaptive_avg_pool1d", "adaptive_avg_pool2d", "_adaptive_avg_pool2d", "adaptive_avg_pool3d",
         "_adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")
def _adaptive_pool(args, kwargs, out) -> Counts:
    return {"pool": _n(args[0])}


# ---- elementwise and reductions ----------------------------------------------------------

UNARY_BINARY = {
    "add", "sub", "rsub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow",
    "neg", "abs", "exp", "exp2", "expm1", "log", "log2", "log1p", "sqrt", "rsqrt", "reciprocal",
    "sin", "cos", "tan", "sinh", "cosh", "erf", "erfc", "sign", "round", "floor", "ceil", "trunc",
    "relu", "relu6", "leaky_relu", "gelu", "silu", "mish", "elu", "selu", "celu", "softplus",
    "hardswish", "hardsigmoid", "hardtanh", "sigmoid", "tanh", "logit", "clamp", "clamp_min",
    "clamp_max", "clip", "threshold", "where", "maximum", "minimum", "fmax", "fmin", "eq", "ne",
    "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not", "logical_xor",
    "bitwise_and", "bitwise_or", "bitwise_not", "bitwise_xor", "masked_fill", "square",
    "_masked_scale", "prelu", "_prelu_kernel", "glu", "isnan", "isinf", "nan_to_num",
    "native_dropout", "dropout", "bernoulli", "lerp", "addcmul", "addcdiv", "hypot", "atan2",
}
TWO_PER_ELEMENT = {"lerp", "addcmul", "addcdiv"}
SOFTMAX_OPS = {"softmax", "_softmax", "_safe_softmax", "log_softmax", "_log_softmax"}
REDUCTIONS = {"sum", "mean", "amax", "amin", "max", "min", "prod", "var", "std", "var_mean",
              "std_mean", "norm", "linalg_vector_norm", "logsumexp", "argmax", "argmin", "all", "any",
              "cumsum", "cumprod", "count_nonzero"}

ZERO_FLOP = {
    "view", "_unsafe_view", "reshape", "_reshape_alias", "t", "transpose", "permute", "expand",
    "expand_as", "squeeze", "unsqueeze", "select", "slice", "narrow", "as_strided", "alias", "detach",
    "clone", "copy", "contiguous", "_to_copy", "to", "lift_fresh", "lift_fresh_copy", "cat", "stack",
    "split", "split_with_sizes", "unsafe_split", "unsafe_split_with_sizes", "unbind", "chunk",
    "unsafe_chunk", "flatten", "unflatten", "view_as", "index", "index_select", "gather",
    "scatter", "index_put", "embedding", "masked_select", "zeros", "zeros_like", "ones", "ones_like",
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "new_zeros", "new_ones",
    "new_full", "full", "full_like", "fill", "zero", "arange", "linspace", "scalar_tensor", "randn",
    "rand", "randint", "randperm", "randn_like", "rand_like", "uniform", "normal", "roll", "flip",
    "repeat", "tile", "constant_pad_nd", "pad", "reflection_pad1d", "reflection_pad2d",
    "replication_pad1d", "replication_pad2d", "upsample_nearest1d", "upsample_nearest2d",
    "diagonal", "tril", "triu", "im2col", "col2im", "pixel_shuffle", "pixel_unshuffle",
    "channel_shuffle", "_local_scalar_dense", "item", "topk", "sort", "nonzero", "_assert_async",
    "sym_size", "sym_stride", "sym_numel", "set_", "resize_", "record_stream", "_has_compatible_shallow_copy_type",
    "native_dropout_backward", "_unsafe_index", "_conj", "_neg_view", "resolve_conj", "resolve_neg",
    "unfold", "movedim", "swapaxes", "swapdims", "masked_scatter", "_pin_memory", "is_pinned",
    "_nested_tensor_from_mask", "_nested_tensor_from_mask_left_aligned", "to_padded_tensor",
    "quantize_per_tensor", "dequantize", "is_same_size", "equal", "_efficientzerotensor",
}


def elementwise_counts(name: str, args: tuple[Any, ...], out: Any) -> Counts | None:
    """Counts for elementwise ops and reductions, None when `name` is neither."""
    if name in SOFTMAX_OPS:
        return {"elementwise": SOFTMAX_FLOPS_PER_ELEMENT * _n(_first(out))}
    if name in UNARY_BINARY:
        per = 2 if name in TWO_PER_ELEMENT else 1
        return {"elementwise": per * _n(_first(out))}
    if name in REDUCTIONS:
        return {"elementwise": _n(args[0]) if args else 0}
    return None
