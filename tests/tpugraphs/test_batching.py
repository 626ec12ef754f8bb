import pytest
import torch
from torch_geometric.nn import SAGEConv

from fastslow.tpugraphs.batching import BlockCSR, GraphBank, Prepared, crop_layout, dense_groups, prepare, ranges
from fastslow.tpugraphs.data import find_files, load_tile_graphs
from fastslow.tpugraphs.features import TileNormalizer
from fastslow.tpugraphs.models import MeanAdjacency, SAGELayer


@pytest.fixture(scope="module")
def graphs(synthetic):
    tile = load_tile_graphs(find_files(synthetic))
    return prepare(tile, TileNormalizer.fit(tile))


def _random_graph(nodes: int = 30, edges: int = 80) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    e = torch.randint(0, nodes - 3, (2, edges), generator=g)  # the last 3 nodes are isolated
    return torch.cat([e, e[:, :5]], 1)  # and a few edges twice


@pytest.mark.parametrize("bidirectional", [True, False])
def test_sage_layer_is_pyg_sageconv_per_direction(bidirectional):
    torch.manual_seed(0)
    n, d = 30, 8
    edge_index = _random_graph(n)
    fwd, bwd = SAGEConv(d, d), SAGEConv(d, d)
    layer = SAGELayer(d, 2 if bidirectional else 1)
    with torch.no_grad():
        if bidirectional:
            layer.lin.weight.copy_(torch.cat([fwd.lin_l.weight, bwd.lin_l.weight,
                                              fwd.lin_r.weight + bwd.lin_r.weight], 1))
            layer.lin.bias.copy_(fwd.lin_l.bias + bwd.lin_l.bias)
        else:
            layer.lin.weight.copy_(torch.cat([fwd.lin_l.weight, fwd.lin_r.weight], 1))
            layer.lin.bias.copy_(fwd.lin_l.bias)
    h1 = torch.randn(n, d, requires_grad=True)
    h2 = h1.detach().clone().requires_grad_()
    ours = layer(h1, MeanAdjacency.from_edges(edge_index, n, bidirectional))
    theirs = fwd(h2, edge_index) + (bwd(h2, edge_index.flip(0)) if bidirectional else 0)
    torch.testing.assert_close(ours, theirs)
    weights = torch.randn(n, d)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    torch.testing.assert_close(h1.grad, h2.grad)


def test_mean_adjacency_without_edges_is_zero():
    h = torch.randn(4, 3, requires_grad=True)
    out = MeanAdjacency.from_edges(torch.zeros(2, 0, dtype=torch.long), 4, True).mean(h)
    assert out.shape == (4, 6) and not out.any()
    out.sum().backward()
    assert not h.grad.any()


def test_block_csr_assembles_block_diagonals_with_repeats_and_empty_blocks():
    edgeless = MeanAdjacency.from_edges(torch.zeros(2, 0, dtype=torch.long), 1, True).a
    pair = MeanAdjacency.from_edges(torch.tensor([[0], [1]]), 2, True).a  # producer 0 -> consumer 1
    got = BlockCSR([edgeless, pair]).assemble(torch.tensor([1, 0, 1])).to_dense()
    torch.testing.assert_close(got, torch.block_diag(pair.to_dense(), edgeless.to_dense(), pair.to_dense()))


def test_ranges_concatenates_aranges():
    got = ranges(torch.tensor([5, 0, 9]), torch.tensor([2, 0, 3]))
    assert got.tolist() == [5, 6, 9, 10, 11]


@pytest.mark.parametrize("early", [True, False])
def test_bank_batch_is_the_graphs_side_by_side(graphs, early):
    bank = GraphBank(graphs)
    ids = torch.tensor([3, 0, 7])
    picked = [torch.tensor([2, 0]), torch.tensor([1]), torch.tensor([0, 4, 5])]
    batch, runtime = bank.batch(ids, torch.cat(picked), torch.tensor([2, 1, 3]), early)
    # the same batch, built graph by graph
    xs, ops, edges, groups, offset = [], [], [], [], 0
    for i, rows in zip(ids.tolist(), picked, strict=True):
        g = graphs[i]
        for _ in range(rows.numel() if early else 1):
            xs.append(g.x)
            ops.append(g.opcode)
            edges.append(g.edge_index + offset)
            groups.append(torch.full((g.x.shape[0],), len(groups)))
            offset += g.x.shape[0]
    # node features come once per graph; early join's copies point at them
    assert batch.x.shape[0] == sum(graphs[i].x.shape[0] for i in ids.tolist())
    copy = batch.node_copy if early else torch.arange(batch.x.shape[0])
    assert (batch.node_copy is None) == (not early)
    torch.testing.assert_close(batch.x[copy], torch.cat(xs))
    assert torch.equal(batch.opcode[copy], torch.cat(ops)) and torch.equal(batch.edge_index, torch.cat(edges, 1))
    assert torch.equal(batch.node_group, torch.cat(groups)) and batch.n_groups == len(groups)
    torch.testing.assert_close(batch.config, torch.cat([graphs[i].config[r] for i, r in zip(ids.tolist(), picked,
                                                                                               strict=True)]))
    torch.testing.assert_close(runtime, torch.cat([graphs[i].runtime[r] for i, r in zip(ids.tolist(), picked,
                                                                                          strict=True)]))
    assert batch.pair_graph.tolist() == [0, 0, 1, 2, 2, 2]
    for bidirectional in (True, False):  # the bank's assembled matrices are the batch's own
        fast, direct = batch.adjacency(bidirectional), MeanAdjacency.from_edges(batch.edge_index, offset, bidirectional)
        torch.testing.assert_close(fast.a.to_dense(), direct.a.to_dense())
        torch.testing.assert_close(fast.a_t.to_dense(), direct.a_t.to_dense())


def _layout(name: str, nodes: int, config_nodes: list[int], configs: int, seed: int) -> Prepared:
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.stack([torch.arange(nodes - 1), torch.arange(1, nodes)])
    return Prepared(name, torch.randn(nodes, 140, generator=g), torch.zeros(nodes, dtype=torch.long), edge_index,
                    torch.randn(configs, len(config_nodes), 18, generator=g), torch.rand(configs, generator=g,
                                                                                          dtype=torch.float64),
                    torch.arange(configs), torch.tensor(config_nodes))


def test_layout_batch_puts_each_configuration_on_its_own_nodes():
    a, b = _layout("a", 6, [1, 4], 3, 0), _layout("b", 4, [2], 5, 1)
    bank = GraphBank([a, b])
    batch, runtime = bank.batch(torch.tensor([1, 0]), torch.tensor([4, 0, 2, 1]), torch.tensor([1, 3]), early=False)
    assert batch.node_copy.shape[0] == 4 + 3 * 6 and batch.n_groups == 4  # layout always joins early: a copy per pair
    torch.testing.assert_close(batch.x[batch.node_copy], torch.cat([b.x, a.x, a.x, a.x]))
    expected = []
    for g, r in ((b, 4), (a, 0), (a, 2), (a, 1)):
        z = torch.zeros(g.x.shape[0], 18)
        z[g.config_nodes] = g.config[r]
        expected.append(z)
    torch.testing.assert_close(batch.node_config, torch.cat(expected))
    torch.testing.assert_close(runtime, torch.stack([b.runtime[4], a.runtime[0], a.runtime[2], a.runtime[1]]))


def test_sample_draws_distinct_rows_uniformly(graphs):
    bank = GraphBank(graphs)
    sizes = bank.configs
    small, big = int(torch.argmin(sizes)), int(torch.argmax(sizes))
    per_graph = int(sizes[small]) + 1  # the small graph is taken whole, the big one drawn from
    ids = torch.tensor([small, big])
    gen = torch.Generator().manual_seed(0)
    seen = torch.zeros(int(sizes[big]))
    draws = 2000
    for _ in range(draws):
        rows, counts = bank.sample(ids, per_graph, gen)
        assert counts.tolist() == [int(sizes[small]), per_graph]
        whole, drawn = rows[: counts[0]], rows[counts[0] :]
        assert whole.tolist() == list(range(int(sizes[small])))
        assert drawn.unique().numel() == per_graph and torch.equal(drawn, drawn.sort().values)
        assert 0 <= int(drawn.min()) and int(drawn.max()) < int(sizes[big])
        seen[drawn] += 1
    share = seen / draws  # each configuration should be drawn with probability per_graph / size
    assert (share - per_graph / int(sizes[big])).abs().max() < 0.05


def test_dense_groups_pads_and_passes_gradients():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], requires_grad=True)
    dense, mask = dense_groups(values, torch.tensor([2, 3, 1]))
    assert dense.tolist() == [[1, 2, 0], [3, 4, 5], [6, 0, 0]]
    assert mask.tolist() == [[True, True, False], [True, True, True], [True, False, False]]
    (dense * torch.arange(9.0).view(3, 3)).sum().backward()
    assert values.grad.tolist() == [0, 1, 3, 4, 5, 6]


def test_crop_layout_keeps_the_nodes_near_configurable_ones():
    # producer -> consumer edges (PyG order): 0->1->2->3->4->5 and 6->3
    g = _layout("g", 7, [2], 3, 0)
    g.edge_index = torch.tensor([[0, 1, 2, 3, 4, 6], [1, 2, 3, 4, 5, 3]])
    one = crop_layout(g, 1)  # 1, 2, 3 (both directions), not 6 (two hops away)
    torch.testing.assert_close(one.x, g.x[[1, 2, 3]])
    assert one.edge_index.tolist() == [[0, 1], [1, 2]] and one.config_nodes.tolist() == [1]
    two = crop_layout(g, 2)  # adds 0, 4 and 6
    torch.testing.assert_close(two.x, g.x[[0, 1, 2, 3, 4, 6]])
    assert two.edge_index.tolist() == [[0, 1, 2, 3, 5], [1, 2, 3, 4, 3]] and two.config_nodes.tolist() == [2]
    whole = crop_layout(g, 10)
    assert torch.equal(whole.x, g.x) and torch.equal(whole.edge_index, g.edge_index)
    assert whole.config is g.config and whole.runtime is g.runtime
