import shutil

import numpy as np
import pytest
import torch

from fastslow.errors import UserError
from fastslow.tpugraphs.data import find_files, load_arrays, load_tile_graphs, tile_graph
from fastslow.tpugraphs.features import TileNormalizer, squash


def test_real_files_are_found_with_collection_and_split(fixtures):
    found = {(i.path.name, i.collection, i.split) for i in find_files(fixtures)}
    assert ("unet3d.npz", "layout:xla:default", "train") in found
    assert ("d6f5f54247bd1e58a10b9e7062c636ab.npz", "tile:xla", "test") in found
    assert len(found) == 6
    inside = find_files(fixtures / "npz" / "tile")
    assert {i.collection for i in inside} == {"tile:xla"} and len(inside) == 3


def test_real_dtypes_and_edge_direction(fixtures):
    info = next(i for i in find_files(fixtures) if i.split == "valid" and i.kind == "tile")
    a = load_arrays(info)
    assert a["node_opcode"].dtype == np.uint8 and a["edge_index"].dtype == np.int64
    g = tile_graph(info, a)
    consumer, producer = a["edge_index"][0]
    assert g.edge_index[:, 0].tolist() == [producer, consumer]  # PyG order: source -> target
    assert g.runtime.tolist() == pytest.approx(sorted(g.runtime.tolist(), key=g.runtime.tolist().index))
    assert float(g.runtime.min()) == pytest.approx(8521 / 8911)  # runtime / normalizer


def _corrupt(tmp_path, fixtures, key, value):
    src = next(i for i in find_files(fixtures) if i.kind == "tile" and i.split == "train")
    folder = tmp_path / "npz" / "tile" / "xla" / "train"
    folder.mkdir(parents=True)
    arrays = load_arrays(src)
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value(arrays[key])
    np.savez(folder / "bad.npz", **arrays)
    return find_files(tmp_path)


@pytest.mark.parametrize("key,value,fragment", [
    ("config_feat", None, "key 'config_feat': missing"),
    ("node_opcode", lambda a: a.astype(np.int32), "key 'node_opcode': dtype int32, expected uint8"),
    ("edge_index", lambda a: a + 5, "key 'edge_index': node ids must lie in [0, 2)"),
    ("config_runtime_normalizers", lambda a: a * 0, "key 'config_runtime_normalizers': must be positive"),
    ("node_feat", lambda a: a[:, :10], "key 'node_feat': shape (2, 10)"),
    ("config_feat", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 3, np.nan, a).astype(np.float32),
     "key 'config_feat': contains NaN or infinity (1 values)"),
    ("node_feat", lambda a: np.full_like(a, np.inf), "key 'node_feat': contains NaN or infinity"),
])
def test_validation_names_file_and_key(tmp_path, fixtures, key, value, fragment):
    infos = _corrupt(tmp_path, fixtures, key, value)
    with pytest.raises(UserError, match="bad.npz") as e:
        load_arrays(infos[0])
    assert fragment in str(e.value)


def test_layout_validation(tmp_path, fixtures):
    src = next(i for i in find_files(fixtures) if i.kind == "layout" and i.split == "test")
    folder = tmp_path / "npz" / "layout" / "nlp" / "random" / "test"
    folder.mkdir(parents=True)
    arrays = load_arrays(src)
    assert arrays["node_config_feat"].shape[2] == 18 and arrays["node_splits"].shape[0] == 1
    arrays["node_splits"] = arrays["node_splits"][0]
    np.savez(folder / "x.npz", **arrays)
    (info,) = find_files(tmp_path)
    assert info.collection == "layout:nlp:random"
    with pytest.raises(UserError, match="x.npz: key 'node_splits'"):
        load_arrays(info)


def test_layout_config_features_must_be_finite(tmp_path, fixtures):
    src = next(i for i in find_files(fixtures) if i.kind == "layout" and i.split == "test")
    folder = tmp_path / "npz" / "layout" / "xla" / "default" / "train"
    folder.mkdir(parents=True)
    arrays = load_arrays(src)
    arrays["node_config_feat"][0, 0, 0] = np.nan
    np.savez(folder / "nan.npz", **arrays)
    with pytest.raises(UserError, match="nan.npz: key 'node_config_feat': contains NaN or infinity"):
        load_arrays(find_files(tmp_path)[0])


def test_outside_a_tree_and_missing_folder(tmp_path):
    np.savez(tmp_path / "loose.npz", a=np.zeros(1))
    with pytest.raises(UserError, match="not inside a TpuGraphs tree") as e:
        find_files(tmp_path)
    assert ".../layout/{xla,nlp}/{default,random}/SPLIT/" in str(e.value)
    with pytest.raises(UserError, match="not found"):
        find_files(tmp_path / "nowhere")


def test_duplicates_merge_to_their_fastest_runtime(synthetic):
    info = next(i for i in find_files(synthetic) if i.split == "train")
    a = load_arrays(info)
    a["config_feat"][1] = a["config_feat"][0]
    a["config_runtime"][1] = a["config_runtime"][0] // 2
    g = tile_graph(info, a)
    raw = a["config_runtime"] / a["config_runtime_normalizers"]
    assert g.n_configs == np.unique(a["config_feat"], axis=0).shape[0]
    assert float(g.runtime[0]) == pytest.approx(raw[1])  # row 0's group keeps the faster duplicate
    assert int(g.config_index[0]) == 0
    assert tile_graph(info, a, dedupe=False).n_configs == a["config_feat"].shape[0]


def test_normalisation_is_fitted_on_training_graphs_only(synthetic):
    graphs = load_tile_graphs(find_files(synthetic))
    train = [g for g in graphs if g.split == "train"]
    norm = TileNormalizer.fit(train)
    expected = squash(torch.cat([g.node_feat for g in train]).double()).mean(0).float()
    torch.testing.assert_close(norm.node.mean, expected)
    with_valid = TileNormalizer.fit(graphs)
    assert not torch.allclose(with_valid.node.mean, norm.node.mean)
    z = norm.node(torch.cat([g.node_feat for g in train]))
    assert float(z.mean(0).abs().max()) < 1e-4


def test_cache_is_reused_and_invalidated(tmp_path, synthetic):
    root = tmp_path / "copy"
    shutil.copytree(synthetic, root)
    infos = find_files(root)
    cache = tmp_path / "cache"
    first = load_tile_graphs(infos, cache_dir=cache)
    assert len(list(cache.glob("graphs-*.pt"))) == 1
    again = load_tile_graphs(infos, cache_dir=cache)
    assert [g.name for g in again] == [g.name for g in first]
    assert all(torch.equal(a.runtime, b.runtime) for a, b in zip(first, again, strict=True))
    np.savez(infos[0].path, **load_arrays(infos[0]))  # rewritten: a new mtime
    load_tile_graphs(find_files(root), cache_dir=cache)
    assert len(list(cache.glob("graphs-*.pt"))) == 2


def test_arrays_are_read_as_np_load_reads_them(fixtures):
    for info in find_files(fixtures):
        ours = load_arrays(info)
        with np.load(info.path, allow_pickle=False) as z:
            assert sorted(ours) == sorted(z.files)
            for key in z.files:
                assert ours[key].dtype == z[key].dtype and np.array_equal(ours[key], z[key])


@pytest.mark.parametrize("write,fragment", [
    (lambda path: path.write_bytes(b"not a zip at all"), "not a readable .npz file"),
    (lambda path: np.savez(path, node_feat=np.array([{"a": 1}], dtype=object)), "not a readable .npz file"),
])
def test_unreadable_and_pickled_files_are_refused_by_name(tmp_path, fixtures, write, fragment):
    infos = _corrupt(tmp_path, fixtures, "node_feat", lambda a: a)
    write(infos[0].path)
    with pytest.raises(UserError, match="bad.npz") as e:
        load_arrays(infos[0])
    assert fragment in str(e.value)


def test_truncated_file_is_refused_by_name(tmp_path, fixtures):
    infos = _corrupt(tmp_path, fixtures, "node_feat", lambda a: a)
    data = infos[0].path.read_bytes()
    infos[0].path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="bad.npz: not a readable .npz file"):
        load_arrays(infos[0])


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"garbage" * 100])
def test_a_corrupted_cache_entry_is_a_miss_that_is_rebuilt(tmp_path, synthetic, damage):
    infos = find_files(synthetic)
    cache = tmp_path / "cache"
    first = load_tile_graphs(infos, cache_dir=cache)
    (entry,) = cache.glob("graphs-*.pt")
    entry.write_bytes(damage(entry.read_bytes()))
    again = load_tile_graphs(infos, cache_dir=cache)
    assert [g.name for g in again] == [g.name for g in first]
    assert torch.load(entry, weights_only=True)["graphs"]  # rewritten whole
