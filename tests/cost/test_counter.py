"""Counts against formulas derived by hand, family by family (conventions: fastslow/cost/formulas.py)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fastslow.cost.counter import count_cost, modules_to_depth


def cats(model: nn.Module, *inputs: torch.Tensor, train: bool = False) -> dict[str, int]:
    return count_cost(model, inputs, train=train).flops_by_category


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


@pytest.mark.parametrize("cin,cout,k,stride,padding,dilation,groups", [
    (3, 8, 3, 1, 1, 1, 1), (4, 6, 3, 2, 0, 1, 2), (8, 8, 3, 1, 2, 2, 8), (3, 5, (1, 5), 1, (0, 2), 1, 1),
])
def test_conv2d(cin, cout, k, stride, padding, dilation, groups):
    conv = nn.Conv2d(cin, cout, k, stride, padding, dilation, groups)
    x = torch.randn(2, cin, 17, 19)
    out = conv(x)
    kh, kw = conv.kernel_size
    expected = 2 * out.numel() * (cin // groups) * kh * kw
    c = cats(conv, x)
    assert c["conv"] == expected
    assert c["elementwise"] == out.numel()  # the bias


@pytest.mark.parametrize("groups", [1, 2])
def test_transposed_conv(groups):
    conv = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=groups, bias=False)
    x = torch.randn(1, 4, 5, 7)
    assert cats(conv, x)["conv"] == 2 * x.numel() * (6 // groups) * 9


def test_conv1d_and_conv3d():
    assert cats(nn.Conv1d(2, 3, 5, bias=False), torch.randn(1, 2, 20))["conv"] == 2 * 16 * 3 * 2 * 5
    assert cats(nn.Conv3d(1, 2, 3, bias=False), torch.randn(1, 1, 5, 5, 5))["conv"] == 2 * 27 * 2 * 27


def test_linear_matmul_bmm_baddbmm_einsum():
    b, m, k, n = 3, 5, 7, 11
    x = torch.randn(b, m, k)
    lin = nn.Linear(k, n)
    c = cats(lin, x)
    assert c["matmul"] == 2 * b * m * k * n and c["elementwise"] == b * m * n
    y = torch.randn(b, k, n)
    assert cats(Fn(torch.matmul), x, y)["matmul"] == 2 * b * m * k * n
    assert cats(Fn(torch.bmm), x, y)["matmul"] == 2 * b * m * k * n
    bias = torch.randn(b, m, n)
    c = cats(Fn(lambda x, y, z: torch.baddbmm(z, x, y)), x, y, bias)
    assert c["matmul"] == 2 * b * m * k * n and c["elementwise"] == b * m * n
    assert cats(Fn(lambda x, y: torch.einsum("bmk,bkn->bmn", x, y)), x, y)["matmul"] == 2 * b * m * k * n
    assert cats(Fn(lambda a, v: a @ v), torch.randn(m, k), torch.randn(k))["matmul"] == 2 * m * k


def _attention(kind: str):
    def run(q, k, v):
        if kind == "explicit":
            s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            return s.softmax(-1) @ v
        if kind == "masked":
            mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return F.scaled_dot_product_attention(q, k, v, is_causal=kind == "causal")
    return Fn(run)


@pytest.mark.parametrize("kind", ["explicit", "sdpa", "causal", "masked"])
def test_attention_products_whatever_the_api(kind):
    b, h, length, s, e, ev = 2, 3, 10, 12, 8, 6
    q, k, v = torch.randn(b, h, length, e), torch.randn(b, h, s, e), torch.randn(b, h, s, ev)
    if kind in ("causal", "masked"):
        k, v = k[:, :, :length], v[:, :, :length]
        s = length
    c = cats(_attention(kind), q, k, v)
    assert c["matmul"] == 2 * b * h * length * s * (e + ev)
    assert c["elementwise"] >= 5 * b * h * length * s  # softmax at least


def test_multihead_attention_fused_and_training_paths_agree():
    b, length, d, heads = 2, 9, 16, 4
    mha = nn.MultiheadAttention(d, heads, batch_first=True)
    x = torch.randn(b, length, d)
    expected = 2 * b * length * d * 3 * d + 2 * 2 * b * length * length * d + 2 * b * length * d * d
    fused = count_cost(Fn(lambda x: mha(x, x, x)[0]), (x,))
    assert [u for u, _ in fused.uncounted] == []
    assert fused.flops_by_category["matmul"] == expected
    assert cats(Fn(lambda x: mha(x, x, x)[0]), x, train=True)["matmul"] == expected


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_transformer_encoder_layer_both_paths(norm_first, activation):
    b, length, d, heads, ffn = 2, 7, 16, 4, 40
    layer = nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.0, batch_first=True, norm_first=norm_first,
                                       activation=activation)
    x = torch.randn(b, length, d)
    matmul = (2 * b * length * d * 3 * d + 4 * b * length * length * d + 2 * b * length * d * d
              + 4 * b * length * d * ffn)
    norm = 2 * 7 * b * length * d
    for train in (False, True):
        c = cats(layer, x, train=train)
        assert c["matmul"] == matmul, train
        assert c["norm"] == norm, train
    assert cats(layer, x) == cats(layer, x, train=True)  # dropout 0: same work either way


@pytest.mark.parametrize("cls,gates", [(nn.RNN, 1), (nn.GRU, 3), (nn.LSTM, 4)])
@pytest.mark.parametrize("train", [False, True])
def test_recurrent_gate_products(cls, gates, train):
    b, t, i, h = 3, 6, 5, 7
    rnn = cls(i, h, batch_first=True)
    c = cats(Fn(lambda x: rnn(x)[0]), torch.randn(b, t, i), train=train)
    assert c["matmul"] == 2 * b * t * gates * h * (i + h)
    assert c["elementwise"] > 0


def test_two_layer_bidirectional_lstm():
    b, t, i, h = 2, 4, 3, 5
    lstm = nn.LSTM(i, h, num_layers=2, bidirectional=True)
    c = cats(Fn(lambda x: lstm(x)[0]), torch.randn(t, b, i))
    per_direction = 2 * b * t * 4 * h * (i + h) + 2 * b * t * 4 * h * (2 * h + h)
    assert c["matmul"] == 2 * per_direction


def test_norms_pools_and_elementwise():
    x = torch.randn(2, 4, 8, 8)
    assert cats(nn.BatchNorm2d(4).eval(), x)["norm"] == 4 * x.numel()
    assert cats(nn.BatchNorm2d(4), x, train=True)["norm"] == 7 * x.numel()
    assert cats(nn.LayerNorm(8), x)["norm"] == 7 * x.numel()
    assert cats(nn.LayerNorm(8, elementwise_affine=False), x)["norm"] == 5 * x.numel()
    assert cats(nn.GroupNorm(2, 4), x)["norm"] == 7 * x.numel()
    assert cats(nn.MaxPool2d(2), x)["pool"] == (x.numel() // 4) * 4
    assert cats(nn.AvgPool2d(3, stride=1), x)["pool"] == 2 * 4 * 6 * 6 * 9
    assert cats(nn.AdaptiveAvgPool2d(1), x) == {"matmul": 0, "conv": 0, "norm": 0, "pool": x.numel(),
                                                "elementwise": 0}
    assert cats(nn.ReLU(), x)["elementwise"] == x.numel()
    assert cats(nn.Softmax(-1), x)["elementwise"] == 5 * x.numel()


def test_an_op_without_formula_is_listed_not_zero():
    report = count_cost(Fn(lambda x: torch.linalg.inv(x) + torch.fft.rfft(x).real.sum()), (torch.randn(4, 4),))
    names = dict(report.uncounted)
    assert any("inv" in n or "linalg" in n for n in names)
    assert any("fft" in n for n in names)
    assert all(n >= 1 for n in names.values())


def test_bytes_params_and_modules():
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    x = torch.randn(4, 10)
    r = count_cost(model, (x,))
    weights = sum(p.numel() for p in model.parameters()) * 4
    written = (4 * 20 + 4 * 20 + 4 * 3) * 4  # each output written once
    assert r.bytes == weights + x.numel() * 4 + written
    assert r.params == r.trainable_params == 10 * 20 + 20 + 20 * 3 + 3
    assert r.flops == 2 * 4 * 10 * 20 + 4 * 20 + 4 * 20 + 2 * 4 * 20 * 3 + 4 * 3
    assert r.macs == (2 * 4 * 10 * 20 + 2 * 4 * 20 * 3) // 2
    assert r.intensity == pytest.approx(r.flops / r.bytes)
    rows = modules_to_depth(r, 1)
    assert [m.name for m in rows] == ["", "0", "1", "2"]
    assert sum(m.flops for m in rows[1:]) == rows[0].flops
    assert r.module("0").params == 220 and r.module("0").bytes == 220 * 4 + 4 * 20 * 4
    assert r.size_bytes > weights  # the serialised state dict
    d = r.to_dict()
    assert set(d) >= {"params", "trainable_params", "flops", "flops_by_category", "macs", "bytes",
                      "intensity", "size_bytes", "by_module", "uncounted"}


def test_a_batched_matmul_writes_its_product_once():
    # x @ w on a 3-D x runs as view, mm, _unsafe_view: the last is a view the autograd does not
    # track (not `is_view`), and was counted as a second write of the product
    w = torch.randn(16, 32)
    r = count_cost(Fn(lambda x: x @ w), (torch.randn(4, 8, 16),))
    assert r.written_bytes == 4 * 8 * 32 * 4
    assert r.flops == 2 * 4 * 8 * 16 * 32


def test_vit_b16_is_counted_exactly():
    timm = pytest.importorskip("fastslow.zoo.resolvers").import_optional("timm")
    model = timm.create_model("vit_base_patch16_224", pretrained=False)
    r = count_cost(model, (torch.randn(1, 3, 224, 224),))
    n, d, blocks, mlp, patches = 197, 768, 12, 3072, 196
    per_block = 2 * n * d * 3 * d + 2 * 2 * n * n * d + 2 * n * d * d + 2 * 2 * n * d * mlp
    assert r.flops_by_category["conv"] == 2 * patches * d * 3 * 16 * 16
    assert r.flops_by_category["matmul"] == blocks * per_block + 2 * d * 1000
    assert r.uncounted == []
