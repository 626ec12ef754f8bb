"""Graph rankers for tile configurations (PyTorch Geometric layers).

* late join (the notebook's model): message passing over the op graph alone, a pooled graph
  embedding, then each configuration's features joined at the end, an MLP per (graph, config);
* early join (TpuGraphs paper, arXiv 2308.13490, sec. 5): the configuration's features are
  added to every node before message passing, so the graph is processed once per
  configuration and the layers can see how the tiling meets each op.
Messages flow along both edge directions (producer -> consumer and back), with separate
weights. Opcodes are embedded. A model outputs one score per (graph, config) pair: a
predicted cost, lower is faster.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv
from torch_geometric.utils import scatter

from fastslow.errors import UserError
from fastslow.tpugraphs.data import LAYOUT_CONFIG_FEATS, NODE_FEATS, TILE_CONFIG_FEATS

MODELS = ("late-sage", "early-sage", "early-gcn", "early-gat")
OPCODES = 256  # node_opcode is uint8


@dataclass
class PairBatch:
    """Many graphs and, per graph, some configurations. For early join the nodes are already
    repeated once per pair; for late join they appear once per graph."""

    x: torch.Tensor  # (nodes, 140) normalised node features
    opcode: torch.Tensor  # (nodes,)
    edge_index: torch.Tensor  # (2, edges) over `x`
    node_group: torch.Tensor  # (nodes,) which pair (early) or graph (late) each node belongs to
    config: torch.Tensor  # (pairs, 24) normalised tile configuration features; (pairs, 0) for layout
    pair_graph: torch.Tensor  # (pairs,) which graph each pair belongs to
    n_groups: int
    node_config: torch.Tensor | None = None  # layout: (nodes, 18) each node copy's own configuration


def _conv(kind: str, dim: int) -> nn.Module:
    if kind == "sage":
        return SAGEConv(dim, dim)
    if kind == "gcn":
        return GCNConv(dim, dim, add_self_loops=True)
    if kind == "gat":
        return GATConv(dim, dim, heads=1, add_self_loops=True)
    raise UserError(f"unknown graph layer '{kind}' (sage, gcn, gat)")


class TileRanker(nn.Module):
    def __init__(self, model: str = "early-sage", hidden: int = 64, layers: int = 3, opcode_dim: int = 16,
                 bidirectional: bool = True, layout: bool = False) -> None:
        super().__init__()
        if model not in MODELS:
            raise UserError(f"--model '{model}': unknown (known: {', '.join(MODELS)})")
        if layout and not model.startswith("early"):
            raise UserError(f"--model {model}: layout configurations belong to nodes, so they must be joined "
                            "early (early-sage, early-gcn, early-gat)")
        if layers < 1 or hidden < 1:
            raise UserError(f"'layers' and 'hidden' must be >= 1 (got {layers}, {hidden})")
        join, conv = model.split("-")
        self.model, self.early, self.layout = model, join == "early", layout
        self.hidden, self.layers, self.bidirectional = hidden, layers, bidirectional
        self.opcode = nn.Embedding(OPCODES, opcode_dim)
        self.node_in = nn.Linear(NODE_FEATS + opcode_dim, hidden)
        self.config_in = nn.Linear(LAYOUT_CONFIG_FEATS if layout else TILE_CONFIG_FEATS, hidden)
        self.forward_convs = nn.ModuleList(_conv(conv, hidden) for _ in range(layers))
        self.backward_convs = nn.ModuleList(_conv(conv, hidden) for _ in range(layers)) if bidirectional else None
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        # The head's first layer on [pooled graph (2h); configuration (h)] for late join is kept
        # as two parts: the graph part runs once per graph and is gathered to its pairs, so each
        # pair pays only for its configuration's part (the same function, a third of the work).
        self.head_graph = nn.Linear(2 * hidden, hidden)
        self.head_config = None if self.early else nn.Linear(hidden, hidden, bias=False)
        self.head_out = nn.Linear(hidden, 1)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, b: PairBatch) -> torch.Tensor:
        h = self.node_in(torch.cat([b.x, self.opcode(b.opcode)], -1))
        if self.layout:
            h = h + self.config_in(b.node_config)  # each configurable node sees its own layout
        elif self.early:
            h = h + self.config_in(b.config)[b.node_group]  # each node sees its pair's configuration
        h = torch.relu(h)
        reverse = b.edge_index.flip(0)
        for i in range(self.layers):
            m = self.forward_convs[i](h, b.edge_index)
            if self.backward_convs is not None:
                m = m + self.backward_convs[i](h, reverse)
            h = self.norms[i](h + torch.relu(m))
        pooled = torch.cat([scatter(h, b.node_group, 0, dim_size=b.n_groups, reduce="mean"),
                            scatter(h, b.node_group, 0, dim_size=b.n_groups, reduce="max")], -1)
        hidden = self.head_graph(pooled)
        if self.head_config is not None:  # late join: now the configuration comes in
            hidden = hidden[b.pair_graph] + self.head_config(torch.relu(self.config_in(b.config)))
        return self.head_out(torch.relu(hidden)).squeeze(-1)

    def extra_repr(self) -> str:
        return (f"model={self.model}, hidden={self.hidden}, layers={self.layers}, bidirectional={self.bidirectional}, "
                f"layout={self.layout}")
