"""Models captured as operator graphs: the operators that run, their data flow, and their costs
as fastslow.cost counts them, in the TpuGraphs tile schema's arrays."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from fastslow.cost.counter import count_cost
from fastslow.errors import UserError
from fastslow.predict.capture import NODE_FEATS, OPCODE, OPS, capture
from fastslow.zoo import create_model


@pytest.mark.parametrize("name,x", [("convnet", torch.randn(2, 3, 32, 32)), ("mlp", torch.randn(8, 256)),
                                     ("digits-cnn", torch.randn(4, 1, 8, 8))])
def test_a_zoo_model_becomes_a_graph_with_the_counters_flops(name, x):
    model = create_model(name).eval()
    g = capture(model, (x,), name=name)
    assert g.flops == count_cost(model, (x,)).flops  # the same formulas, node by node
    assert g.node_feat.shape == (g.nodes, NODE_FEATS) and g.node_feat.dtype == np.float32
    assert np.isfinite(g.node_feat).all() and g.node_opcode.dtype == np.uint8
    assert g.edge_index.dtype == np.int64 and g.edge_index.shape[1] == 2
    assert (g.edge_index[:, 0] > g.edge_index[:, 1]).all()  # [consumer, producer], topological order
    assert g.names[0] == "input" and g.node_opcode[0] == OPCODE["input"] and g.unknown == []
    producers: dict[int, set[int]] = {}
    for c, p in g.edge_index:
        producers.setdefault(int(c), set()).add(int(p))
    reached, todo = set(), [g.nodes - 1]
    while todo:  # the output's operator reaches the input through the data flow
        n = todo.pop()
        reached.add(n)
        todo += [p for p in producers.get(n, ()) if p not in reached]
    assert 0 in reached


def test_the_model_is_traced_not_run():
    seen = []

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            seen.append(type(x).__name__)
            return self.lin(x)

    g = capture(Probe().eval(), (torch.randn(2, 4),))
    assert seen == ["FakeTensor"]  # one call, on a tensor with a shape and no data
    assert g.names == ["input", "t", "addmm"]


def test_a_tensor_kept_outside_the_parameters_is_read_like_a_weight():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.scale = torch.full((4,), 2.0)  # a plain attribute: neither parameter nor buffer

        def forward(self, x):
            return self.lin(x) * self.scale

    model, x = Scaled().eval(), torch.randn(2, 4)
    g = capture(model, (x,))
    assert g.names == ["input", "t", "addmm", "mul"] and g.flops == count_cost(model, (x,)).flops
    assert g.node_weight_bytes[g.names.index("mul")] == 4 * 4  # the attribute's four floats


def test_in_place_activations_are_one_operator_each_as_eager_runs_them():
    # MobileNetV3's hardswish and hardsigmoid run as one kernel each; decomposed to core ATen (the
    # capture before format 10) each was clamps, an add, a mul and a div
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Hardswish(inplace=True), nn.Conv2d(8, 8, 1),
                        nn.Hardsigmoid(inplace=True), nn.ReLU(inplace=True)).eval()
    x = torch.randn(1, 3, 10, 10)
    g = capture(net, (x,))
    assert g.names == ["input", "convolution", "native_batch_norm", "hardswish", "convolution", "hardsigmoid",
                       "relu"]
    assert g.unknown == [] and g.flops == count_cost(net, (x,)).flops
    relu = g.names.index("relu")  # in place: it reads and writes its input's 8 x 8 x 8 floats
    assert g.node_bytes[relu] == 2 * 8 * 8 * 8 * 4


def test_the_graph_follows_the_data():
    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            return torch.relu(self.a(x)) + self.b(x)

    g = capture(Branches(), (torch.randn(2, 4),))
    add = g.names.index("add")
    producers = {g.names[p] for c, p in g.edge_index if c == add}
    assert producers == {"relu", "addmm"}
    assert g.node_feat[g.names.index("addmm"), 0] > 0  # FLOPs feature set for the products


def test_views_move_no_bytes_and_copies_do():
    class Heads(nn.Module):  # the reshapes of attention: views, then a copy where memory must change
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(16, 16)

        def forward(self, x):
            h = self.proj(x).view(2, 8, 4, 4).permute(0, 2, 1, 3)
            return h.unsqueeze(1).expand(2, 3, 4, 8, 4).contiguous()

    g = capture(Heads(), (torch.randn(2, 8, 16),))
    views = [i for i, n in enumerate(g.names) if n in ("view", "_unsafe_view", "permute", "unsqueeze", "expand")]
    assert {g.names[i] for i in views} >= {"view", "permute", "unsqueeze", "expand"}
    assert all(g.node_bytes[i] == 0 and g.node_weight_bytes[i] == 0 for i in views)
    assert all(g.node_feat[i, 1] == 0 for i in views)  # the bytes feature too
    copy = g.names.index("clone")  # .contiguous() of the expanded view: 2*3*4*8*4 floats written
    assert g.node_bytes[copy] >= 2 * 3 * 4 * 8 * 4 * 4
    addmm = g.names.index("addmm")
    assert g.node_weight_bytes[addmm] == (16 * 16 + 16) * 4
    assert g.bytes == g.node_bytes.sum() > g.node_bytes[copy] + g.node_bytes[addmm] - 1


def test_operators_carry_the_arguments_that_set_their_speed():
    from fastslow.predict.capture import _features

    base = len(_features([], 0, 0, 0, 0, 0, 0, False))  # the features before the arguments'
    net = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.Conv2d(16, 16, 5, stride=2, padding=2, groups=16),
                        nn.Conv2d(16, 32, 1), nn.Flatten(), nn.Linear(32 * 8 * 8, 10)).eval()
    g = capture(net, (torch.randn(1, 8, 16, 16),))
    assert g.node_feat.shape[1] == base + 8 + 8 == NODE_FEATS  # the arguments, then the alignments
    convs = [g.node_feat[i, base:base + 8] for i, n in enumerate(g.names) if n == "convolution"]
    dims, kernel, stride, groups, depthwise = (np.stack([c[:4] for c in convs]), *np.stack([c[4:] for c in convs]).T)
    log = lambda x, s: np.log2(1 + x) / s  # noqa: E731
    assert np.allclose(dims[0], log(np.array([1, 8, 16, 16]), 16))  # the data input's shape (N, C, H, W) ...
    assert np.allclose(dims[2], log(np.array([1, 16, 8, 8]), 16))  # ... of the third, after the stride
    assert np.allclose(kernel, log(np.array([9, 25, 1]), 8)) and np.allclose(stride, log(np.array([1, 2, 1]), 4))
    assert np.allclose(groups, log(np.array([1, 16, 1]), 12)) and list(depthwise) == [0, 1, 0]
    head = g.node_feat[g.names.index("addmm"), base:base + 8]  # a product: its data input, not its bias
    assert np.allclose(head[:4], log(np.array([0, 0, 1, 2048]), 16)) and not head[4:].any()
    assert not g.node_feat[0, base:base + 8].any()  # the input node has no arguments


def test_operators_carry_how_their_dimensions_align():
    """Eight features: the largest power of two up to 64 dividing each of the data input's and
    the output's last four dimensions, as log2 of it over 6 (0 where there is no dimension)."""
    net = nn.Sequential(nn.Conv2d(24, 40, 3, padding=1), nn.Conv2d(40, 64, 1), nn.Flatten(),
                        nn.Linear(64 * 6 * 6, 12)).eval()
    g = capture(net, (torch.randn(1, 24, 6, 6),))
    align = g.node_feat[:, NODE_FEATS - 8:]
    level = lambda *dims: np.log2([math.gcd(d, 64) if d else 1 for d in dims]) / 6  # noqa: E731
    first, second = (align[i] for i, n in enumerate(g.names) if n == "convolution")
    assert np.allclose(first, level(1, 24, 6, 6, 1, 40, 6, 6))  # 24 = 8 x 3 channels in, 40 = 8 x 5 out
    assert np.allclose(second, level(1, 40, 6, 6, 1, 64, 6, 6))
    assert np.allclose(align[g.names.index("addmm")], level(0, 0, 1, 2304, 0, 0, 1, 12))
    assert np.allclose(align[0], level(0, 0, 0, 0, 1, 24, 6, 6))  # the input: no data input, its output


def test_unknown_operators_share_code_zero_and_are_listed():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 0)

    g = capture(Odd(), (torch.randn(5),))
    assert "cumsum" not in OPS and g.unknown == ["cumsum"]
    assert g.node_opcode[g.names.index("cumsum")] == 0


def test_a_model_that_cannot_be_captured_is_one_line_naming_the_construct():
    class DataDependent(nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x

    with pytest.raises(UserError) as e:
        capture(DataDependent(), (torch.randn(3),), name="dd")
    message = str(e.value)
    assert message.startswith("model 'dd' cannot be captured as an operator graph:")
    assert "data-dependent" in message and "\n" not in message


def test_a_model_the_exporter_fails_on_logs_nothing_beside_the_error():
    # torch's fake-tensor logger printed a 40-line traceback on the user's terminal (its handler
    # holds the stderr of when torch was imported, so it is checked in a process of its own)
    script = """
import torch
from fastslow.errors import UserError
from fastslow.predict.capture import capture
class Mismatched(torch.nn.Module):  # what timm's dla46_c does at 48 pixels
    def forward(self, x):
        return torch.cat([x, x[:, :, :1, :1]], 1)
try:
    capture(Mismatched(), (torch.randn(1, 2, 3, 3),), name="m")
except UserError as e:
    print(e)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "cannot be captured" in done.stdout and "Sizes of tensors must match" in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_a_recurrent_layer_carries_its_steps_layers_and_hidden_size(cell):
    from fastslow.predict.capture import _features

    base = len(_features([], 0, 0, 0, 0, 0, 0, False))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = cell(8, 128, 2, batch_first=True, bidirectional=True)

        def forward(self, x):  # noqa: ANN001, ANN201
            return self.rnn(x)[0]

    g = capture(Net().eval(), (torch.randn(1, 6, 8),))  # its initial state (4, 1, 128) is larger than its input
    (node,) = [g.node_feat[i, base:] for i, n in enumerate(g.names) if n in ("lstm", "gru")]
    log = lambda x, s: np.log2(1 + np.asarray(x, dtype=float)) / s  # noqa: E731
    assert np.allclose(node[:4], log([0, 1, 6, 8], 16))  # the input (batch, steps, features), not the state
    assert np.allclose(node[4:7], [log(6, 12), log(2, 4), log(128, 12)]) and node[7] == 1.0  # bidirectional
