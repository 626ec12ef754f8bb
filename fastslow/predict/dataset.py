"""A latency data set on disk: one file per model in the TpuGraphs tile schema, so that
`fastslow.tpugraphs` loads, validates, batches and trains on it as it does on TPU kernels.

    DIR/collection.json    the machine it was measured on and the collection's settings
    DIR/measurements.db    a fastslow results database: every measurement (raw samples), every
                           failed sample with its error, and the repeated measurements
    DIR/npz/NAME.npz       one model: its operator graph and its measured configurations

An npz file holds the tile keys: `node_feat` (nodes, NODE_FEATS) float32, `node_opcode`
uint8, `edge_index` (edges, 2) int64 [consumer, producer], `config_feat` (configs,
CONFIG_FEATS) float32, `config_runtime` (configs,) int64 — the median time of one call in
nanoseconds — and `config_runtime_normalizers` (configs,) int64, the batch size, so that
runtime / normalizer (what the tile loader computes) is the time per item. Beside them:
`node_flops`, `node_bytes` and `node_weight_bytes` (each operator's costs, float64, for the
baselines) and `meta`, a JSON string (the sample, its family, its configurations in row order,
its totals). Everything loads with `allow_pickle=False`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fastslow.errors import UserError
from fastslow.predict.capture import NODE_FEATS, OpGraph
from fastslow.predict.configs import CONFIG_FEATS, Config
from fastslow.tpugraphs.data import SCHEMAS, TILE_KEYS, FileInfo, Schema, TileGraph, load_arrays, tile_graph

KIND = "latency"
if KIND not in SCHEMAS:
    SCHEMAS.add(KIND, Schema(TILE_KEYS, NODE_FEATS, CONFIG_FEATS))
FORMAT_VERSION = 1
MANIFEST = "collection.json"
MEASUREMENTS = "measurements.db"
NPZ = "npz"


def machine() -> dict[str, Any]:
    """What a predictor is for: the CPU (model, logical cores, vector and matrix extensions), the
    torch build that ran the models, and the host it was measured on."""
    import platform

    import torch

    from fastslow.env import cpu_model_and_flags, host_name

    cpu, flags = cpu_model_and_flags()
    return {"cpu": cpu, "logical_cpus": os.cpu_count() or 1, "arch": platform.machine(), "flags": flags,
            "torch": torch.__version__, "host": host_name()}


def fingerprint(m: dict[str, Any]) -> str:
    """The hardware and software a latency depends on (not the host name: another machine of the
    same kind is the same machine to a predictor)."""
    return f"{m['cpu']} | {m['logical_cpus']} CPUs | {m['arch']} {' '.join(m['flags'])} | torch {m['torch']}"


def describe_machine(m: dict[str, Any]) -> str:
    return f"{m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']} (host {m['host']})"


def npz_path(out: Path, name: str) -> Path:
    return out / NPZ / f"{name}.npz"


def write_model(out: Path, graph: OpGraph, meta: dict[str, Any], configs: list[Config],
                latency_s: list[float]) -> Path:
    """One model's file, written whole or not at all (a temporary file renamed into place)."""
    if not configs or len(configs) != len(latency_s):
        raise ValueError("write_model needs one latency per configuration")
    path = npz_path(out, meta["name"])
    path.parent.mkdir(parents=True, exist_ok=True)
    runtime = np.maximum(1, np.rint(np.asarray(latency_s, dtype=np.float64) * 1e9)).astype(np.int64)
    arrays = {
        "node_feat": graph.node_feat, "node_opcode": graph.node_opcode, "edge_index": graph.edge_index,
        "config_feat": np.stack([c.features() for c in configs]).astype(np.float32),
        "config_runtime": runtime, "config_runtime_normalizers": np.asarray([c.batch for c in configs], np.int64),
        "node_flops": graph.node_flops, "node_bytes": graph.node_bytes, "node_weight_bytes": graph.node_weight_bytes,
        "meta": np.asarray(json.dumps({**meta, "configs": [c.to_dict() for c in configs], "flops": graph.flops,
                                       "bytes": graph.bytes, "unknown_ops": graph.unknown,
                                       "format": FORMAT_VERSION})),
    }
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


@dataclass
class ModelData:
    """One measured model, as training and evaluation use it."""

    name: str
    family: str
    meta: dict[str, Any]
    graph: TileGraph  # the tile loader's view (its runtime: nanoseconds per item)
    configs: list[Config]
    latency_s: np.ndarray  # (configs,) median seconds per call
    node_opcode: np.ndarray
    node_flops: np.ndarray
    node_bytes: np.ndarray
    node_weight_bytes: np.ndarray

    @property
    def batches(self) -> np.ndarray:
        return np.asarray([c.batch for c in self.configs], dtype=np.float64)

    @property
    def per_item_s(self) -> np.ndarray:
        return self.latency_s / self.batches


def load_model_file(path: Path) -> ModelData:
    """One model's file, validated by the tile loader (keys, shapes, dtypes, finite values)."""
    info = FileInfo(path, KIND, "train")
    arrays = load_arrays(info)
    for key in ("node_flops", "node_bytes", "node_weight_bytes", "meta"):
        if key not in arrays:
            raise UserError(f"{path}: key '{key}': missing (a fastslow latency file has it)")
    n = arrays["node_feat"].shape[0]
    for key in ("node_flops", "node_bytes", "node_weight_bytes"):
        if arrays[key].shape != (n,):
            raise UserError(f"{path}: key '{key}': shape {arrays[key].shape}, expected ({n},)")
    try:
        meta = json.loads(str(arrays["meta"]))
        configs = [Config.from_dict(c) for c in meta["configs"]]
    except (ValueError, KeyError, TypeError, UserError) as e:
        raise UserError(f"{path}: key 'meta': not a fastslow latency description ({e})") from None
    if len(configs) != arrays["config_runtime"].shape[0]:
        raise UserError(f"{path}: key 'meta': {len(configs)} configurations for "
                        f"{arrays['config_runtime'].shape[0]} runtimes")
    return ModelData(meta["name"], meta["family"], meta, tile_graph(info, arrays, dedupe=False), configs,
                     arrays["config_runtime"].astype(np.float64) / 1e9, arrays["node_opcode"].astype(np.int64),
                     arrays["node_flops"], arrays["node_bytes"], arrays["node_weight_bytes"])


def read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
        d["machine"], d["settings"]  # noqa: B018  (both present)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a fastslow collection manifest ({e})") from None
    return d


def load_collection(out: str | Path) -> tuple[dict[str, Any], list[ModelData]]:
    """A collection's manifest and every model it measured, in name order."""
    out = Path(out)
    if not out.is_dir():
        raise UserError(f"collection {out}: not found (make one with `fastslow predictor collect --out {out}`)")
    manifest = read_manifest(out)
    if manifest is None:
        raise UserError(f"collection {out}: no {MANIFEST} (not made by `fastslow predictor collect`)")
    files = sorted((out / NPZ).glob("*.npz"))
    if not files:
        raise UserError(f"collection {out}: no measured models yet (run `fastslow predictor collect --out {out}`)")
    return manifest, [load_model_file(p) for p in files]
