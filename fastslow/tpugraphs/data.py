"""Reading TpuGraphs files as they really are, and checking them before anything trusts them.

The tree is `npz_all/npz/tile/xla/{train,valid,test}/*.npz` and
`npz_all/npz/layout/{xla,nlp}/{default,random}/{train,valid,test}/*.npz`. Facts checked on
real files: node_opcode is uint8; edge_index is int64 (edges, 2), each row [consumer,
producer], nodes in topological order; layout node_splits is (1, k); layout
node_config_feat is (configs, configurable nodes, 18) with -1 padding; test files have all
runtimes 0. Every check names the file and the key it failed on.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow.errors import UserError
from fastslow.registry import Registry

SPLITS = ("train", "valid", "test")
NODE_FEATS = 140
TILE_CONFIG_FEATS = 24
LAYOUT_CONFIG_FEATS = 18

# key -> (numpy dtype, ndim); shapes are cross-checked in `validate`.
TILE_KEYS = {
    "node_feat": (np.float32, 2), "node_opcode": (np.uint8, 1), "edge_index": (np.int64, 2),
    "config_feat": (np.float32, 2), "config_runtime": (np.int64, 1), "config_runtime_normalizers": (np.int64, 1),
}
LAYOUT_KEYS = {
    "node_feat": (np.float32, 2), "node_opcode": (np.uint8, 1), "edge_index": (np.int64, 2),
    "node_config_ids": (np.int64, 1), "node_config_feat": (np.float32, 3), "config_runtime": (np.int64, 1),
    "node_splits": (np.int64, 2),
}
COLLECTIONS = ("tile:xla", "layout:xla:default", "layout:xla:random", "layout:nlp:default", "layout:nlp:random")


@dataclass(frozen=True)
class Schema:
    """What a kind of graph file holds: its keys (dtype, ndim), the width of its node features
    and of its configuration features, and whether configurations belong to nodes (layout)."""

    keys: dict[str, tuple[type, int]]
    node_feats: int
    config_feats: int
    layout: bool = False


# Graph file kinds. TpuGraphs' two are here; fastslow.predict registers its latency graphs (the
# tile schema with its own feature widths), so loading, batching, models and losses serve both.
SCHEMAS: Registry[Schema] = Registry("graph file kind")
SCHEMAS.add("tile", Schema(TILE_KEYS, NODE_FEATS, TILE_CONFIG_FEATS))
SCHEMAS.add("layout", Schema(LAYOUT_KEYS, NODE_FEATS, LAYOUT_CONFIG_FEATS, layout=True))


@dataclass(frozen=True)
class FileInfo:
    path: Path
    collection: str  # "tile:xla", "layout:xla:default", ...
    split: str

    @property
    def kind(self) -> str:
        return self.collection.split(":")[0]

    @property
    def submission_id(self) -> str:
        return f"{self.collection}:{self.path.stem}"


def classify(path: Path) -> FileInfo | None:
    """The collection and split of a file, from its place in the tree; None if it has none."""
    parts = path.parts
    if len(parts) < 4:
        return None
    split = parts[-2]
    if split not in SPLITS:
        return None
    if parts[-4] == "tile" and parts[-3] == "xla":
        return FileInfo(path, "tile:xla", split)
    if len(parts) >= 5 and parts[-5] == "layout" and parts[-4] in ("xla", "nlp") and parts[-3] in ("default", "random"):
        return FileInfo(path, f"layout:{parts[-4]}:{parts[-3]}", split)
    return None


def find_files(root: str | Path) -> list[FileInfo]:
    """Every TpuGraphs file under `root` (the npz tree, or any folder inside it), sorted."""
    root = Path(root)
    if not root.exists():
        raise UserError(f"data folder {root}: not found")
    if root.is_file():
        candidates = [root]
    else:
        candidates = sorted(root.rglob("*.npz"))
    found = []
    for p in candidates:
        info = classify(p.resolve())
        if info is None:
            raise UserError(f"{p}: not inside a TpuGraphs tree (expected .../tile/xla/SPLIT/ or "
                            ".../layout/{xla,nlp}/{default,random}/SPLIT/)")
        found.append(info)
    if not found:
        raise UserError(f"data folder {root}: no .npz files found")
    return found


def _check(cond: bool, path: Path, key: str, what: str) -> None:
    if not cond:
        raise UserError(f"{path}: key '{key}': {what}")


def validate(path: Path, kind: str, arrays: dict[str, np.ndarray]) -> None:
    schema = SCHEMAS.get(kind)
    for key, (dtype, ndim) in schema.keys.items():
        _check(key in arrays, path, key, f"missing (a {kind} file has {', '.join(schema.keys)})")
        a = arrays[key]
        _check(a.dtype == dtype, path, key, f"dtype {a.dtype}, expected {np.dtype(dtype).name}")
        _check(a.ndim == ndim, path, key, f"shape {a.shape}, expected {ndim} dimensions")
    n = arrays["node_feat"].shape[0]
    _check(n > 0, path, "node_feat", "no nodes")
    _check(arrays["node_feat"].shape[1] == schema.node_feats, path, "node_feat",
           f"shape {arrays['node_feat'].shape}, expected (nodes, {schema.node_feats})")
    for key, a in arrays.items():  # every float array, named by key: NaN would train to a NaN loss
        if a.dtype.kind == "f":
            _check(bool(np.isfinite(a).all()), path, key, f"contains NaN or infinity "
                                                          f"({int((~np.isfinite(a)).sum())} values)")
    _check(arrays["node_opcode"].shape == (n,), path, "node_opcode",
           f"shape {arrays['node_opcode'].shape}, expected ({n},)")
    e = arrays["edge_index"]
    _check(e.shape[1:] == (2,), path, "edge_index", f"shape {e.shape}, expected (edges, 2)")
    if e.size:
        _check(int(e.min()) >= 0 and int(e.max()) < n, path, "edge_index",
               f"node ids must lie in [0, {n}) (got {int(e.min())}..{int(e.max())})")
    runtime = arrays["config_runtime"]
    _check(bool((runtime >= 0).all()), path, "config_runtime", "negative runtimes")
    c = runtime.shape[0]
    _check(c > 0, path, "config_runtime", "no configurations")
    if not schema.layout:
        cf = arrays["config_feat"]
        _check(cf.shape == (c, schema.config_feats), path, "config_feat",
               f"shape {cf.shape}, expected ({c}, {schema.config_feats})")
        norm = arrays["config_runtime_normalizers"]
        _check(norm.shape == (c,), path, "config_runtime_normalizers", f"shape {norm.shape}, expected ({c},)")
        _check(bool((norm > 0).all()), path, "config_runtime_normalizers", "must be positive")
    else:
        ids, ncf, splits = arrays["node_config_ids"], arrays["node_config_feat"], arrays["node_splits"]
        k = ids.shape[0]
        _check(ncf.shape == (c, k, schema.config_feats), path, "node_config_feat",
               f"shape {ncf.shape}, expected ({c}, {k}, {schema.config_feats})")
        if k:
            _check(int(ids.min()) >= 0 and int(ids.max()) < n, path, "node_config_ids", f"ids must lie in [0, {n})")
        _check(splits.shape[0] == 1, path, "node_splits", f"shape {splits.shape}, expected (1, segments)")
        _check(bool((np.diff(splits[0]) >= 0).all()) and (splits.size == 0 or int(splits.max()) <= n), path,
               "node_splits", f"must be non-decreasing node ids within [0, {n}]")


# Parsing a .npy header runs ast.literal_eval, and CPython 3.11's AST construction is not
# safe across threads: loading in parallel threads failed now and then with "SystemError:
# AST constructor recursion depth mismatch" (python/cpython#106905). Members are therefore
# decompressed in parallel (zlib releases the GIL, and that is where the time goes) and
# parsed one at a time.
_PARSE = threading.Lock()


def load_arrays(info: FileInfo) -> dict[str, np.ndarray]:
    """An .npz file's arrays, as np.load(..., allow_pickle=False) would give them."""
    arrays = {}
    try:
        with zipfile.ZipFile(info.path) as z:
            for member in z.namelist():
                if not member.endswith(".npy"):
                    continue
                raw = z.read(member)
                with _PARSE:
                    arrays[member[: -len(".npy")]] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise UserError(f"{info.path}: not a readable .npz file ({e})") from None
    validate(info.path, info.kind, arrays)
    return arrays


@dataclass
class TileGraph:
    """One tile kernel: its op graph and its configurations with their runtimes."""

    name: str
    split: str
    node_feat: torch.Tensor  # (n, 140) float32, raw
    node_opcode: torch.Tensor  # (n,) int64
    edge_index: torch.Tensor  # (2, m) int64, rows [source=producer, target=consumer] (PyG's order)
    config_feat: torch.Tensor  # (c, 24) float32, duplicates merged
    runtime: torch.Tensor  # (c,) float64: runtime / normalizer, minimum over duplicates
    labelled: bool
    config_index: torch.Tensor  # (c,) int64: the file's config row each merged config came from

    @property
    def n_configs(self) -> int:
        return int(self.config_feat.shape[0])


def tile_graph(info: FileInfo, arrays: dict[str, np.ndarray], dedupe: bool = True) -> TileGraph:
    """Targets as the competition scores them (runtime / normalizer); identical configuration
    rows merged to their fastest runtime, since a model cannot tell them apart."""
    runtime = arrays["config_runtime"].astype(np.float64) / arrays["config_runtime_normalizers"].astype(np.float64)
    feats = arrays["config_feat"]
    labelled = bool((arrays["config_runtime"] > 0).any())
    if dedupe:
        _, first, inverse = np.unique(feats, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        best = np.full(first.shape[0], np.inf)
        np.minimum.at(best, inverse, runtime)
        order = np.argsort(first)  # keep the file's order of first appearance
        feats, runtime, index = feats[first[order]], best[order], first[order]
    else:
        index = np.arange(feats.shape[0])
    edges = torch.from_numpy(arrays["edge_index"]).t().flip(0).contiguous()  # [consumer, producer] -> [src, dst]
    return TileGraph(info.path.stem, info.split, torch.from_numpy(arrays["node_feat"]),
                     torch.from_numpy(arrays["node_opcode"].astype(np.int64)), edges,
                     torch.from_numpy(np.ascontiguousarray(feats)), torch.from_numpy(runtime), labelled,
                     torch.from_numpy(index.astype(np.int64)))


CACHE_VERSION = "1"


def _cache_key(infos: list[FileInfo], dedupe: bool) -> str:
    h = hashlib.sha256(f"{CACHE_VERSION}:{dedupe}".encode())
    for i in infos:
        st = i.path.stat()
        h.update(f"{i.path}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _to_cache(graphs: list[Any]) -> dict[str, Any]:
    return {"graphs": [{"kind": type(g).__name__, **g.__dict__} for g in graphs]}


def _from_cache(d: dict[str, Any]) -> Any:
    d = dict(d)
    return {"TileGraph": TileGraph, "LayoutGraph": LayoutGraph}[d.pop("kind")](**d)


def load_graphs(
    infos: list[FileInfo], *, dedupe: bool = True, workers: int | None = None,
    cache_dir: Path | None = None, on_file: Callable[[FileInfo], None] | None = None,
) -> list[Any]:
    """Load (in parallel threads: decompression, where the time goes, runs outside the GIL), validate,
    and build tile or layout graphs; with `cache_dir`, reuse the processed result while no
    file changed."""
    cache_path = cache_dir / f"graphs-{_cache_key(infos, dedupe)}.pt" if cache_dir else None
    if cache_path is not None and cache_path.is_file():
        try:
            blob = torch.load(cache_path, weights_only=True)
            graphs = [_from_cache(g) for g in blob["graphs"]]
        except Exception:  # noqa: BLE001  (a truncated or corrupted entry: a miss, rebuilt below)
            cache_path.unlink(missing_ok=True)
        else:
            for i in infos:
                if on_file:
                    on_file(i)
            return graphs

    def one(info: FileInfo) -> Any:
        g = build_graph(info, load_arrays(info), dedupe)
        if on_file:
            on_file(info)
        return g

    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        graphs = list(pool.map(one, infos))
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")  # several ranks may write at once
        torch.save(_to_cache(graphs), tmp)
        tmp.replace(cache_path)
    return graphs


def load_tile_graphs(infos: list[FileInfo], **kwargs: Any) -> list[TileGraph]:
    return load_graphs([i for i in infos if i.kind == "tile"], **kwargs)


@dataclass
class LayoutGraph:
    """One layout: its op graph, its configurable nodes and each configuration's per-node
    layout features (-1 where a node has no such dimension), with runtimes."""

    name: str
    split: str
    node_feat: torch.Tensor  # (n, 140)
    node_opcode: torch.Tensor  # (n,)
    edge_index: torch.Tensor  # (2, m), PyG order
    node_config_ids: torch.Tensor  # (k,)
    node_config_feat: torch.Tensor  # (c, k, 18)
    runtime: torch.Tensor  # (c,) float64
    labelled: bool
    config_index: torch.Tensor  # (c,): identity (layout configurations are not merged)

    @property
    def n_configs(self) -> int:
        return int(self.node_config_feat.shape[0])


def layout_graph(info: FileInfo, arrays: dict[str, np.ndarray]) -> LayoutGraph:
    runtime = arrays["config_runtime"]
    return LayoutGraph(info.path.stem, info.split, torch.from_numpy(arrays["node_feat"]),
                       torch.from_numpy(arrays["node_opcode"].astype(np.int64)),
                       torch.from_numpy(arrays["edge_index"]).t().flip(0).contiguous(),
                       torch.from_numpy(arrays["node_config_ids"]), torch.from_numpy(arrays["node_config_feat"]),
                       torch.from_numpy(runtime.astype(np.float64)), bool((runtime > 0).any()),
                       torch.arange(runtime.shape[0]))


def build_graph(info: FileInfo, arrays: dict[str, np.ndarray], dedupe: bool = True) -> TileGraph | LayoutGraph:
    return layout_graph(info, arrays) if SCHEMAS.get(info.kind).layout else tile_graph(info, arrays, dedupe)
