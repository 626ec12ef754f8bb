"""Graphs packed once into flat tensors, and batches of (graph, configuration) pairs cut from
them with a fixed handful of whole-batch tensor operations.

A step of training touches dozens of small kernels. Building its batch graph by graph (a
slice, a repeat and an offset per graph) costs as much Python time as the model's own
arithmetic, so `GraphBank` concatenates every graph's nodes, edges, configurations and
runtimes once, and a batch is a set of index ranges into those: the same number of tensor
operations for 1 graph or 1,000.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch

from fastslow.tpugraphs.data import LayoutGraph, TileGraph
from fastslow.tpugraphs.features import TileNormalizer
from fastslow.tpugraphs.models import MeanAdjacency, PairBatch


@dataclass
class Prepared:
    """A graph with normalised features, ready to batch. `config` is (c, 24) for tile and
    (c, k, 18) for layout, whose configurations belong to the nodes in `config_nodes`."""

    name: str
    x: torch.Tensor
    opcode: torch.Tensor
    edge_index: torch.Tensor
    config: torch.Tensor
    runtime: torch.Tensor
    config_index: torch.Tensor
    config_nodes: torch.Tensor | None = None


def prepare(graphs: list[TileGraph | LayoutGraph], norm: TileNormalizer, layout_hops: int = 0) -> list[Prepared]:
    """Normalised graphs; layout graphs cropped by `crop_layout` when `layout_hops` > 0."""
    out = []
    for g in graphs:
        if isinstance(g, LayoutGraph):
            p = Prepared(g.name, norm.node(g.node_feat), g.node_opcode, g.edge_index, norm.config(g.node_config_feat),
                         g.runtime, g.config_index, g.node_config_ids)
            out.append(crop_layout(p, layout_hops) if layout_hops > 0 else p)
        else:
            out.append(Prepared(g.name, norm.node(g.node_feat), g.node_opcode, g.edge_index, norm.config(g.config_feat),
                                g.runtime, g.config_index))
    return out


def crop_layout(g: Prepared, hops: int) -> Prepared:
    """The subgraph of the nodes within `hops` edges (either direction) of a configurable
    node, in their original (topological) order.

    Only configurable nodes differ between a layout graph's configurations, so after L
    message-passing layers only nodes within L hops of one can differ; the rest are the same
    for every configuration, and in large graphs they are most of the nodes (the real unet3d
    file: 56 configurable nodes of 2,774; 3 hops keep 852). Cropping is an approximation, not
    an identity: kept nodes at the edge lose the messages of cropped neighbours, and pooling
    sees fewer nodes. It makes the work per configuration scale with the configurable nodes'
    neighbourhoods instead of the whole graph.
    """
    if g.config_nodes is None:
        raise ValueError("crop_layout takes layout graphs")
    n = g.x.shape[0]
    keep = torch.zeros(n, dtype=torch.bool)
    keep[g.config_nodes] = True
    src, dst = g.edge_index
    for _ in range(hops):
        grown = keep.clone()
        grown[dst[keep[src]]] = True
        grown[src[keep[dst]]] = True
        keep = grown
    new_id = torch.full((n,), -1, dtype=torch.long)
    new_id[keep] = torch.arange(int(keep.sum()))
    inside = keep[src] & keep[dst]
    return Prepared(g.name, g.x[keep], g.opcode[keep], new_id[g.edge_index[:, inside]], g.config, g.runtime,
                    g.config_index, new_id[g.config_nodes])


def _starts(lengths: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(lengths, 0) - lengths


def ranges(starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The concatenation of arange(s, s + l) for each (s, l), without a Python loop."""
    total = int(lengths.sum())
    return torch.arange(total, device=starts.device) + torch.repeat_interleave(starts - _starts(lengths), lengths,
                                                                                output_size=total)


def _groups(counts: torch.Tensor) -> torch.Tensor:
    """[0] * counts[0] + [1] * counts[1] + ...: which group each element belongs to."""
    return torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)


class BlockCSR:
    """Sparse CSR matrices, one per graph, packed so that the block-diagonal matrix of any
    sequence of them (repeats allowed) is assembled by gathers, without the sort that
    building it from a batch's edges takes."""

    def __init__(self, blocks: list[torch.Tensor]) -> None:
        device = blocks[0].device
        self.rows = torch.tensor([b.shape[0] for b in blocks], device=device)
        self.cols = torch.tensor([b.shape[1] for b in blocks], device=device)
        self.nnz = torch.tensor([b.values().numel() for b in blocks], device=device)
        self.row_start, self.nnz_start = _starts(self.rows), _starts(self.nnz)
        self.crow_tail = torch.cat([b.crow_indices()[1:] for b in blocks])  # row ends, block by block
        self.col = torch.cat([b.col_indices() for b in blocks])
        self.values = torch.cat([b.values() for b in blocks])

    def assemble(self, blocks: torch.Tensor) -> torch.Tensor:
        rows, cols, nnz = self.rows[blocks], self.cols[blocks], self.nnz[blocks]
        ends = self.crow_tail[ranges(self.row_start[blocks], rows)] + torch.repeat_interleave(_starts(nnz), rows)
        entries = ranges(self.nnz_start[blocks], nnz)
        col = self.col[entries] + torch.repeat_interleave(_starts(cols), nnz)
        crow = torch.cat([ends.new_zeros(1), ends])
        return torch.sparse_csr_tensor(crow, col, self.values[entries], (int(rows.sum()), int(cols.sum())),
                                       check_invariants=False)


class GraphBank:
    """Prepared graphs of one kind (all tile or all layout), packed into flat tensors on one
    device; batches are cut there too."""

    def __init__(self, graphs: list[Prepared], device: str | torch.device = "cpu") -> None:
        if not graphs:
            raise ValueError("GraphBank needs at least one graph")
        self.graphs, self.device = graphs, torch.device(device)
        self.layout = graphs[0].config_nodes is not None

        def counts(values: list[int]) -> torch.Tensor:
            return torch.tensor(values, device=self.device)

        def packed(parts: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
            return torch.cat(parts, dim).to(self.device)

        self.nodes = counts([g.x.shape[0] for g in graphs])
        self.edges = counts([g.edge_index.shape[1] for g in graphs])
        self.configs = counts([g.config.shape[0] for g in graphs])
        self.node_start, self.edge_start = _starts(self.nodes), _starts(self.edges)
        self.config_start = _starts(self.configs)
        self.x = packed([g.x for g in graphs])
        self.opcode = packed([g.opcode for g in graphs])
        self.edge_index = packed([g.edge_index for g in graphs], 1)  # graph-local node ids
        self.runtime = packed([g.runtime for g in graphs])
        if self.layout:  # each configuration is (k, 18): flattened row by row, k per graph
            self.knodes = counts([g.config.shape[1] for g in graphs])
            self.knode_start = _starts(self.knodes)
            self.config_nodes = packed([g.config_nodes for g in graphs])
            self.config = packed([g.config.reshape(-1, g.config.shape[-1]) for g in graphs])
            self.layout_start = _starts(self.configs * self.knodes)
        else:
            self.config = packed([g.config for g in graphs])
        self._blocks: dict[bool, tuple[BlockCSR, BlockCSR]] = {}

    def adjacency(self, copy_graph: torch.Tensor, bidirectional: bool) -> MeanAdjacency:
        """The SAGE layers' matrices for copies of these graphs, from per-graph blocks built
        on first use (the same construction, graph by graph)."""
        if bidirectional not in self._blocks:
            per_graph = [MeanAdjacency.from_edges(g.edge_index.to(self.device), g.x.shape[0], bidirectional)
                         for g in self.graphs]
            self._blocks[bidirectional] = BlockCSR([m.a for m in per_graph]), BlockCSR([m.a_t for m in per_graph])
        a, a_t = self._blocks[bidirectional]
        return MeanAdjacency(a.assemble(copy_graph), a_t.assemble(copy_graph))

    def sample(self, graph_ids: torch.Tensor, per_graph: int,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """For each graph, min(configs, per_graph) distinct configuration rows drawn uniformly
        (from `generator`, a CPU one): the rows grouped graph by graph, each graph's in
        increasing order, and how many each graph got."""
        c = self.configs[graph_ids]
        owner = _groups(c)
        local = ranges(torch.zeros_like(c), c)
        if int(c.max()) <= per_graph:  # every graph fits whole: nothing to draw
            return local, c
        # One random key per configuration; sorting graph-major by key ranks them at random
        # within each graph, and the first `per_graph` of each are a uniform draw.
        noise = torch.rand(local.numel(), generator=generator, dtype=torch.float64).to(self.device)
        order = torch.argsort(owner.double() + noise)
        keep = (torch.arange(local.numel(), device=self.device) - _starts(c)[owner]) < per_graph
        chosen_owner, chosen_local = owner[order[keep]], local[order[keep]]
        rows = chosen_local[torch.argsort(chosen_owner * int(c.max()) + chosen_local)]
        return rows, torch.clamp(c, max=per_graph)

    def batch(self, graph_ids: torch.Tensor, rows: torch.Tensor, counts: torch.Tensor,
              early: bool) -> tuple[PairBatch, torch.Tensor]:
        """Pairs (graph_ids[i], each of its `counts[i]` rows) as one disjoint-union batch, and
        the pairs' runtimes. Early join (and layout) copies each graph once per pair; node
        features are still taken once per graph, and `node_copy` says which each copy uses."""
        early = early or self.layout
        pair_graph = _groups(counts)
        pair_config = self.config_start[graph_ids][pair_graph] + rows  # rows of the packed configurations
        copy_graph = torch.repeat_interleave(graph_ids, counts) if early else graph_ids  # bank id of each copy
        copy_nodes, copy_edges = self.nodes[copy_graph], self.edges[copy_graph]
        copy_start = _starts(copy_nodes)
        graph_nodes = self.nodes[graph_ids]
        node_src = ranges(self.node_start[graph_ids], graph_nodes)  # each graph's nodes, once
        node_copy = ranges(_starts(graph_nodes)[pair_graph], copy_nodes) if early else None
        edge_src = ranges(self.edge_start[copy_graph], copy_edges)
        edge_index = self.edge_index[:, edge_src] + torch.repeat_interleave(copy_start, copy_edges)
        node_group = _groups(copy_nodes)
        node_config = None
        if self.layout:  # each copy's configurable nodes get that configuration's features; the rest zeros
            k = self.knodes[copy_graph]
            to = (torch.repeat_interleave(copy_start, k) + self.config_nodes[ranges(self.knode_start[copy_graph], k)])
            node_config = self.config.new_zeros(int(copy_nodes.sum()), self.config.shape[1])
            node_config[to] = self.config[ranges(self.layout_start[copy_graph] + rows * k, k)]
            configs = self.config.new_zeros(rows.numel(), 0)
        else:
            configs = self.config[pair_config]
        batch = PairBatch(self.x[node_src], self.opcode[node_src], edge_index, node_group, configs, pair_graph,
                          int(copy_graph.numel()), node_config, node_copy,
                          partial(self.adjacency, copy_graph) if copy_graph.numel() > 1 else None)  # one: as cheap
        return batch, self.runtime[pair_config]


def dense_groups(values: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat vector grouped `counts[i]` by `counts[i]` as a zero-padded (groups, widest)
    matrix and its mask, by one scatter (gradients flow back to `values`)."""
    width = int(counts.max())
    group = _groups(counts)
    at = group * width + torch.arange(values.numel(), device=values.device) - _starts(counts)[group]
    out = values.new_zeros(counts.numel() * width).index_put((at,), values)
    mask = torch.zeros(counts.numel() * width, dtype=torch.bool, device=values.device).index_fill(0, at, True)
    return out.view(-1, width), mask.view(-1, width)
