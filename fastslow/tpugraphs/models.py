"""Graph rankers for tile configurations (PyTorch Geometric layers).

* late join (the notebook's model): message passing over the op graph alone, a pooled graph
  embedding, then each configuration's features joined at the end, an MLP per (graph, config);
* early join (TpuGraphs paper, arXiv 2308.13490, sec. 5): the configuration's features are
  added to every node before message passing, so the graph is processed once per
  configuration and the layers can see how the tiling meets each op.
Messages flow along both edge directions (producer -> consumer and back), with separate
weights. Opcodes are embedded. A model outputs one score per (graph, config) pair: a
predicted cost, lower is faster. The readout is either pooled (mean and max over the nodes,
then an MLP: a score) or a sum (early join only): every node predicts its own log cost and
the pair's score is the log of their sum (a logsumexp over its nodes), which is how a run's
time is made (one operator after another). The roofline readout (early join, graphs whose
features carry each node's FLOPs and bytes: fastslow.predict's latency graphs) is a sum whose
nodes predict, rather than their cost, three rates: a fixed time, a time per FLOP and a time
per byte, and cost the soft maximum of the fixed time, FLOPs x time per FLOP and bytes x time
per byte. A node's cost then grows with its FLOPs and bytes by construction, also past the
largest the network was trained on, where a learned cost has nothing to go by.

GraphSAGE layers are computed here rather than by PyG's SAGEConv: a batch's mean
aggregation over producers and over consumers is one sparse (CSR) product with a
row-normalised adjacency, made once per batch and shared by every layer (GraphBank
assembles it from per-graph blocks, without sorting the batch's edges), and the layer's
linear maps are one matrix product. The function is the sum of two PyG SAGEConvs (one per
direction, whose root weights add up to this layer's) and a test holds it to theirs. On a
1,400-node training batch it ran forward and back 1.8x faster than the two SAGEConvs (6.3 ms
against 3.5 ms per layer, 2 CPU threads). GCN and GAT layers are PyG's.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch_geometric.nn import GATConv, GCNConv
from torch_geometric.utils import scatter

from fastslow.errors import UserError, param_error
from fastslow.registry import Registry
from fastslow.tpugraphs.data import LAYOUT_CONFIG_FEATS, NODE_FEATS, TILE_CONFIG_FEATS

READOUTS = ("pool", "sum", "roofline")
SUMMED = ("sum", "roofline")  # readouts that sum per-node costs (early join only)
# Where the roofline readout reads a node's work and a pair's batch size: for each, a feature
# column and the affine map from the feature, as the network sees it, to log2(1 + amount).
ROOFLINE_KEYS = ("flops", "bytes", "weight_bytes", "batch")  # batch: a configuration column

OPCODES = 256  # node_opcode is uint8


@dataclass(frozen=True)
class RankerSpec:
    """How a ranker is built: where the configuration joins, and which graph layer it uses."""

    early: bool  # configuration features added to every node before message passing
    conv: str  # a name in CONVS, or "sage" (the fused SAGELayer)


RANKERS: Registry[RankerSpec] = Registry("ranker")
RANKERS.add("late-sage", RankerSpec(early=False, conv="sage"))  # the notebook's
RANKERS.add("early-sage", RankerSpec(early=True, conv="sage"))
RANKERS.add("early-gcn", RankerSpec(early=True, conv="gcn"))
RANKERS.add("early-gat", RankerSpec(early=True, conv="gat"))
MODELS = tuple(RANKERS)

# PyG layers by name: a new one is one registered function of the hidden width.
CONVS: Registry[Callable[[int], nn.Module]] = Registry("graph layer")
CONVS.add("gcn", lambda dim: GCNConv(dim, dim, add_self_loops=True))
CONVS.add("gat", lambda dim: GATConv(dim, dim, heads=1, add_self_loops=True))

# torch warns once that CSR support is "beta"; the two products used here are covered by tests.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


@dataclass
class PairBatch:
    """Many graphs and, per graph, some configurations. Node features come once per graph;
    for early join the graph is copied once per pair and `node_copy` maps each node copy to
    its row of `x` (their first layer is computed once and gathered); for late join the
    nodes appear once per graph and `node_copy` is None."""

    x: torch.Tensor  # (graph nodes, 140) normalised node features
    opcode: torch.Tensor  # (graph nodes,)
    edge_index: torch.Tensor  # (2, edges) over the node copies
    node_group: torch.Tensor  # (node copies,) which pair (early) or graph (late) each copy belongs to
    config: torch.Tensor  # (pairs, 24) normalised tile configuration features; (pairs, 0) for layout
    pair_graph: torch.Tensor  # (pairs,) which graph each pair belongs to
    n_groups: int
    node_config: torch.Tensor | None = None  # layout: (node copies, 18) each node copy's own configuration
    node_copy: torch.Tensor | None = None  # early join: (node copies,) row of `x` each copy is
    # The SAGE layers' sparse matrices for these edges, by a faster route than from edge_index
    # (GraphBank assembles them from per-graph blocks it built once): bidirectional -> matrices.
    adjacency: Callable[[bool], MeanAdjacency] | None = None


def _csr(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    order = torch.argsort(rows * shape[1] + cols)
    crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0)
    return torch.sparse_csr_tensor(crow, cols[order], values[order], shape, check_invariants=False)


class _Product(torch.autograd.Function):
    """a @ h for a constant sparse `a`, with the gradient a.T @ g from a prepared `a_t`."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, a_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        ctx.a_t = a_t
        return a @ h

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, None, torch.Tensor]:
        return None, None, ctx.a_t @ grad


class MeanAdjacency:
    """Mean over each node's producers (and, when bidirectional, its consumers) for a batch's
    edge_index ([producer, consumer] rows), as one sparse matrix `a`: row d*i + k is node i's
    mean over direction k, so `mean(h)` is (nodes, directions * dim), ready to concatenate.
    `a_t` is its transpose, for the gradient."""

    def __init__(self, a: torch.Tensor, a_t: torch.Tensor) -> None:
        self.a, self.a_t, self.nodes = a, a_t, a.shape[1]

    @classmethod
    def from_edges(cls, edge_index: torch.Tensor, nodes: int, bidirectional: bool) -> MeanAdjacency:
        src, dst = edge_index
        rows = torch.cat([2 * dst, 2 * src + 1]) if bidirectional else dst
        cols = torch.cat([src, dst]) if bidirectional else src
        size = (2 if bidirectional else 1) * nodes
        values = (1.0 / torch.bincount(rows, minlength=size).clamp_min(1).float())[rows]
        return cls(_csr(rows, cols, values, (size, nodes)), _csr(cols, rows, values, (nodes, size)))

    def mean(self, h: torch.Tensor) -> torch.Tensor:
        return _Product.apply(self.a, self.a_t, h).view(self.nodes, -1)


class SAGELayer(nn.Module):
    """GraphSAGE (Hamilton et al. 2017) with mean aggregation along one or both edge
    directions: out_i = W [mean over producers of h; mean over consumers of h; h_i] + b."""

    def __init__(self, dim: int, directions: int) -> None:
        super().__init__()
        self.lin = nn.Linear((directions + 1) * dim, dim)

    def forward(self, h: torch.Tensor, adj: MeanAdjacency) -> torch.Tensor:
        return self.lin(torch.cat([adj.mean(h), h], 1))


class TileRanker(nn.Module):
    def __init__(self, model: str = "early-sage", hidden: int = 64, layers: int = 3, opcode_dim: int = 16,
                 bidirectional: bool = True, layout: bool = False, *, node_feats: int = NODE_FEATS,
                 config_feats: int | None = None, readout: str = "pool",
                 roofline: dict[str, list[float]] | None = None) -> None:
        super().__init__()
        spec = RANKERS.get(model)
        early = ", ".join(n for n, s in RANKERS.items() if s.early)
        if layout and not spec.early:
            raise param_error("model", f"value '{model}': layout configurations belong to nodes, so they must be "
                                       f"joined early ({early})")
        if readout not in READOUTS:
            raise param_error("readout", f"value '{readout}' is unknown (known: {', '.join(READOUTS)})")
        if readout in SUMMED and not spec.early:
            raise param_error("model", f"value '{model}': a {readout} readout needs each node to see the "
                                       f"configuration, so it must be joined early ({early})")
        if (readout == "roofline") != (roofline is not None) or (roofline and set(roofline) != set(ROOFLINE_KEYS)):
            raise param_error("roofline", "a roofline readout needs the columns of FLOPs, bytes, weight bytes and "
                                          f"batch size ({', '.join(ROOFLINE_KEYS)}), and no other readout takes them")
        if layers < 1 or hidden < 1:
            raise UserError(f"'layers' and 'hidden' must be >= 1 (got {layers}, {hidden})")
        conv = spec.conv
        self.model, self.early, self.layout, self.readout = model, spec.early, layout, readout
        self.hidden, self.layers, self.bidirectional = hidden, layers, bidirectional
        self.opcode = nn.Embedding(OPCODES, opcode_dim)
        self.node_in = nn.Linear(node_feats + opcode_dim, hidden)
        if config_feats is None:
            config_feats = LAYOUT_CONFIG_FEATS if layout else TILE_CONFIG_FEATS
        self.config_in = nn.Linear(config_feats, hidden)
        self.sage = conv == "sage"
        if self.sage:
            self.convs = nn.ModuleList(SAGELayer(hidden, 2 if bidirectional else 1) for _ in range(layers))
        else:
            make = CONVS.get(conv)
            self.forward_convs = nn.ModuleList(make(hidden) for _ in range(layers))
            self.backward_convs = nn.ModuleList(make(hidden) for _ in range(layers)) if bidirectional else None
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        # The head's first layer on [pooled graph (2h); configuration (h)] for late join is kept
        # as two parts: the graph part runs once per graph and is gathered to its pairs, so each
        # pair pays only for its configuration's part (the same function, a third of the work).
        self.head_graph = nn.Linear(2 * hidden, hidden) if readout == "pool" else nn.Linear(hidden, hidden)
        self.head_config = None if self.early else nn.Linear(hidden, hidden, bias=False)
        self.head_out = nn.Linear(hidden, 3 if readout == "roofline" else 1)
        self.roofline = roofline
        if roofline:
            with torch.no_grad():
                self.head_out.weight.mul_(0.1)  # start near the rates the bias sets (init_output)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def init_output(self, log_cost: float) -> None:
        """Start the output at a typical per-node log cost (a sum readout) or, for the roofline
        readout, a fixed time of that size, 55 GFLOP/s and 20 GB/s (in the log nanoseconds the
        latency predictor learns); for the pooled readout, at a typical score."""
        with torch.no_grad():
            if self.readout == "roofline":
                self.head_out.bias.copy_(torch.tensor([log_cost, -4.0, -3.0]))
            else:
                self.head_out.bias.fill_(log_cost)

    def _log_work(self, b: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Per node copy: ln(1 + FLOPs) per item, and ln(1 + bytes moved per item) at its pair's
        batch size (the weights read once per call, the rest per item)."""
        def log2_amount(x: torch.Tensor, key: str) -> torch.Tensor:
            column, scale, shift = self.roofline[key]
            return x[:, int(column)] * scale + shift

        x = b.x if b.node_copy is None else b.x.index_select(0, b.node_copy)
        flops = log2_amount(x, "flops") * math.log(2)
        moved, weight = (torch.exp2(log2_amount(x, k)) - 1 for k in ("bytes", "weight_bytes"))
        batch = torch.exp2(log2_amount(b.config, "batch")).index_select(0, b.node_group)
        return flops, torch.log1p((moved - weight).clamp_min(0) + weight.clamp_min(0) / batch)

    def forward(self, b: PairBatch) -> torch.Tensor:
        # Rows are gathered with index_select, not x[index]: on CPU the backward of the first
        # is a parallel index_add, of the second a serial accumulating index_put (4.6x slower
        # on a late-join batch's 7,000 pairs).
        h = self.node_in(torch.cat([b.x, self.opcode(b.opcode)], -1))  # the same for every configuration ...
        if b.node_copy is not None:
            h = h.index_select(0, b.node_copy)  # ... so computed once per graph and copied
        if self.layout:
            h = h + self.config_in(b.node_config)  # each configurable node sees its own layout
        elif self.early:
            h = h + self.config_in(b.config).index_select(0, b.node_group)  # each node sees its pair's configuration
        h = torch.relu(h)
        if self.sage:
            adj = (b.adjacency(self.bidirectional) if b.adjacency is not None
                   else MeanAdjacency.from_edges(b.edge_index, h.shape[0], self.bidirectional))
        else:
            reverse = b.edge_index.flip(0)
        for i in range(self.layers):
            if self.sage:
                m = self.convs[i](h, adj)
            else:
                m = self.forward_convs[i](h, b.edge_index)
                if self.backward_convs is not None:
                    m = m + self.backward_convs[i](h, reverse)
            h = self.norms[i](h + torch.relu(m))
        if self.readout in SUMMED:  # each node's log cost; the pair's is the log of their sum
            node = self.head_out(torch.relu(self.head_graph(h)))
            if self.roofline:  # the soft maximum of a fixed time, FLOPs x time per FLOP, bytes x time per byte
                flops, moved = self._log_work(b)
                node = torch.logsumexp(node + torch.stack([torch.zeros_like(flops), flops, moved], -1), -1)
            else:
                node = node.squeeze(-1)
            top = scatter(node.detach(), b.node_group, 0, dim_size=b.n_groups, reduce="max")
            total = scatter((node - top.index_select(0, b.node_group)).exp(), b.node_group, 0, dim_size=b.n_groups,
                            reduce="sum")
            return total.log() + top
        pooled = torch.cat([scatter(h, b.node_group, 0, dim_size=b.n_groups, reduce="mean"),
                            scatter(h, b.node_group, 0, dim_size=b.n_groups, reduce="max")], -1)
        hidden = self.head_graph(pooled)
        if self.head_config is not None:  # late join: now the configuration comes in
            hidden = hidden.index_select(0, b.pair_graph) + self.head_config(torch.relu(self.config_in(b.config)))
        return self.head_out(torch.relu(hidden)).squeeze(-1)

    def extra_repr(self) -> str:
        return (f"model={self.model}, hidden={self.hidden}, layers={self.layers}, bidirectional={self.bidirectional}, "
                f"layout={self.layout}, readout={self.readout}")
