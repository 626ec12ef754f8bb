"""A latency data set on disk: one file per model in the TpuGraphs tile schema, so that
`fastslow.tpugraphs` loads, validates, batches and trains on it as it does on TPU kernels.

    DIR/collection.json    the machine it was measured on and the collection's settings
    DIR/measurements.db    a fastslow results database: every measurement (raw samples), every
                           failed sample with its error, and the repeated measurements
    DIR/npz/NAME.npz       one model: its operator graph and its measured configurations

An npz file holds the tile keys: `node_feat` (nodes, NODE_FEATS) float32, `node_opcode`
uint8, `edge_index` (edges, 2) int64 [consumer, producer], `config_feat` (configs,
PAIR_FEATS) float32 (`pair_features`: the configuration's and the model's totals),
`config_runtime` (configs,) int64 — the time of one call in nanoseconds, as timed: the fastest
of the measurement's samples (`fastslow.predict.reference.fastest`) — and
`config_runtime_normalizers` (configs,) int64, the batch size, so that runtime / normalizer (what
the tile loader computes) is the time per item. Beside them:
`config_reference` (configs,) float64, the speed reference's fastest in the same interleaved
rounds (nanoseconds), and `config_relative`, the first over the second (see
fastslow.predict.reference); `node_flops`, `node_bytes` and `node_weight_bytes` (each
operator's costs, float64, for the baselines) and `meta`, a JSON string (the sample, its
family, its configurations in row order, its totals). Everything loads with
`allow_pickle=False`.

Loaded as a collection, a model's latency is taken at the collection's speed: its relative
time times the median of the reference's times over the collection's groups of the same kind
(`fastslow.predict.reference.group_kind`), so that the machine's drift between one model and
the next does not become a label.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastslow.errors import UserError
from fastslow.measure.stats import Measurement
from fastslow.predict.baselines import Costs, costs_of
from fastslow.predict.capture import NODE_FEATS, OpGraph, log_feature
from fastslow.predict.configs import CONFIG_FEATS, Config
from fastslow.predict.reference import fastest, group_kind, reference_off, relative
from fastslow.tpugraphs.data import SCHEMAS, TILE_KEYS, FileInfo, Schema, TileGraph, load_arrays, tile_graph

CONTEXT_FEATS = 4
PAIR_FEATS = CONFIG_FEATS + CONTEXT_FEATS
KIND = "latency"
if KIND not in SCHEMAS:
    SCHEMAS.add(KIND, Schema(TILE_KEYS, NODE_FEATS, PAIR_FEATS))
# 3: ONNX Runtime configurations of one thread count share one session (before, a session per
# batch size: their spinning pools slowed each other, see fastslow.predict.configs.Runners).
# 4: operators carry their arguments' features and configurations the model's totals
# (NODE_FEATS 16 -> 24, config_feat CONFIG_FEATS -> PAIR_FEATS).
# 5: a recurrent layer's arguments are its steps, layers, hidden size and direction, and its data
# input is its input (a GRU's was its initial state where that was the larger).
# 6: operators that return a view of their input (view, permute, expand, select, ...) move no
# bytes (they had been given their input's and output's, so the roofline readout priced a
# transformer's dozens of views as copies), and a view of a weight is that weight: a Linear
# layer's product reads its matrix through a transposing view, and that matrix had counted as an
# activation, read per item instead of once per batch.
# 7: a configuration's time is its measurement's fastest sample over the speed reference's fastest,
# not the median over rounds of their ratio (repeated measurements agree more often, see
# fastslow.predict.reference).
# 8: every timed block of a short workload follows one untimed call of its own, so that the speed
# reference's blocks do not start on caches the model beside it filled: before, a large model's
# reference ran up to 1.5x slow, and the model's time relative to it came out as much too fast
# (see fastslow.predict.reference). Every sample changed, so no earlier format can be recaptured.
# 9: operators carry how their data input's and output's dimensions divide by powers of two
# (NODE_FEATS 24 -> 32, see fastslow.predict.capture._alignments).
# 10: graphs are traced by make_fx on fake tensors, the operators eager dispatches, instead of
# torch.export decomposed to core ATen (fastslow.predict.capture): in-place activations are one
# node each, batch norm is native_batch_norm, a transposed weight is t.
# 11: ONNX Runtime runs the file of torch.onnx's TorchScript exporter where it can be trusted,
# torch.export's only where not (fastslow.optimize.runtime.onnx_export): the same speed for
# convolutional nets and MLPs, 0.7-0.8x the time for transformer encoders, and 12-31x less time
# spent exporting. Every ONNX Runtime time changed, so no earlier format can be recaptured.
# 12: a measurement takes its whole budget (0.05 s by default, was 0.15 with a third of it the
# least): a third of the measurements had stopped once their median was precise, on fewer blocks
# to take the fastest of (fastslow.predict.collect.CollectSettings). Every label changed.
FORMAT_VERSION = 12
# Collections of these formats differ from this version's only in what the capture puts in the
# graphs and what is taken of each measurement's samples (their measurements were taken as this
# version takes them, and every sample is stored), so `fastslow predictor recapture` brings them
# up to date without measuring again. None is, since format 12 changed how long every measurement is
# timed (and 11 what ONNX Runtime runs).
RECAPTURABLE: tuple[int, ...] = ()
RECAPTURE_COMMAND = "predictor recapture"  # the command that brings them up to date (after `fastslow`)
MANIFEST = "collection.json"
MEASUREMENTS = "measurements.db"
COLLECT_COMMAND = "predictor collect"  # what a collection's measurements are recorded as
NPZ = "npz"


def pair_features(costs: Costs, configs: list[Config]) -> np.ndarray:
    """(configs, PAIR_FEATS) float32: what the network joins to every node of a model, per
    configuration: the configuration's own features, and the model's totals at its batch size
    (FLOPs, bytes moved, weight bytes, operators), so that each operator can tell whether the
    whole model's data fits in cache and how much work there is to spread over the threads. On
    152 training models they took held-out predictions within +-10% from 48% to 52% (with the
    operators' argument features, fastslow.predict.capture)."""
    weight = log_feature(costs.weight_bytes.sum(), 40)
    rows = []
    for c in configs:
        flops, moved = costs.at_batch(c.batch)
        rows.append([*c.features(), log_feature(flops.sum(), 48), log_feature(moved.sum(), 48), weight,
                     log_feature(len(costs.opcode), 16)])
    return np.asarray(rows, dtype=np.float32).reshape(-1, PAIR_FEATS)


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


def graph_arrays(graph: OpGraph, configs: list[Config]) -> dict[str, np.ndarray]:
    """The arrays of a model's file that come from its captured graph (and its configurations'
    pair features), not from measuring it."""
    return {"node_feat": graph.node_feat, "node_opcode": graph.node_opcode, "edge_index": graph.edge_index,
            "config_feat": pair_features(costs_of(graph), configs), "node_flops": graph.node_flops,
            "node_bytes": graph.node_bytes, "node_weight_bytes": graph.node_weight_bytes}


def graph_meta(graph: OpGraph) -> dict[str, Any]:
    return {"flops": graph.flops, "bytes": graph.bytes, "unknown_ops": graph.unknown, "format": FORMAT_VERSION}


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """A model's file, written whole or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")  # not *.npz: a killed write is never read as a model
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)
    return path


def time_arrays(configs: list[Config], measured: list[Measurement]) -> dict[str, np.ndarray]:
    """The arrays of a model's file that come from timing it, one row per configuration. Each
    measurement carries its speed reference's samples (`extra["reference_samples_s"]`)."""
    if not configs or len(configs) != len(measured):
        raise ValueError("a model's file needs one measurement per configuration")
    refs = [m.extra["reference_samples_s"] for m in measured]
    return {
        "config_runtime": np.maximum(1, np.rint(np.asarray([fastest(m.samples_s) for m in measured]) * 1e9)
                                     ).astype(np.int64),
        "config_runtime_normalizers": np.asarray([c.batch for c in configs], np.int64),
        "config_reference": np.asarray([fastest(r) * 1e9 for r in refs], np.float64),
        "config_relative": np.asarray([relative(m, r) for m, r in zip(measured, refs, strict=True)], np.float64),
    }


def read_model_file(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any], list[Config]]:
    """A model's file as stored, to be rewritten: its arrays, its description (meta) and its
    configurations, unchecked (`load_model_file` checks a file for training). Raises what
    reading it raised."""
    with np.load(path, allow_pickle=False) as z:
        arrays = dict(z.items())
    meta = json.loads(str(arrays["meta"]))
    return arrays, meta, [Config.from_dict(c) for c in meta["configs"]]


def write_model(out: Path, graph: OpGraph, meta: dict[str, Any], configs: list[Config],
                measured: list[Measurement]) -> Path:
    """One model's file."""
    arrays = {
        **graph_arrays(graph, configs), **time_arrays(configs, measured),
        "meta": np.asarray(json.dumps({**meta, "configs": [c.to_dict() for c in configs], **graph_meta(graph)})),
    }
    return save_arrays(npz_path(out, meta["name"]), arrays)


def stored_measurements(out: Path) -> Iterator[tuple[dict[str, Any], Config, Measurement]]:
    """Every measurement a collection's database holds (params: its sample, whether a repeat, its
    configuration), oldest first: a model measured again after an interrupted run comes after the
    measurements of it that were never written to its file."""
    from fastslow.measure.bench import Point
    from fastslow.store.db import ResultsStore

    path = out / MEASUREMENTS
    if not path.is_file():
        return
    with ResultsStore(path, readonly=True) as db:
        for record in reversed(db.query(command=COLLECT_COMMAND, limit=None)):
            for raw in db.get(record.id).points:
                p = Point.from_record(raw)
                if p.measurement is not None:
                    yield p.params, Config.from_dict(p.params), p.measurement


def labelled(params: dict[str, Any]) -> bool:
    """Whether a stored measurement (its params) is what a model's file holds for its
    configuration, where it is the last such: not a repeat, and not a later take of a disturbed
    group that was left out (`kept` 0)."""
    return not params.get("repeat") and bool(params.get("kept", 1))


@dataclass
class ModelData:
    """One measured model, as training and evaluation use it."""

    name: str
    family: str
    meta: dict[str, Any]
    graph: TileGraph  # the tile loader's view (its runtime: nanoseconds per item, at the collection's speed)
    configs: list[Config]
    latency_s: np.ndarray  # (configs,) seconds per call at the collection's speed (the labels)
    timed_s: np.ndarray  # (configs,) seconds per call as timed (the fastest sample)
    reference_s: np.ndarray  # (configs,) the speed reference's fastest beside each
    relative: np.ndarray  # (configs,) time / reference
    node_opcode: np.ndarray
    node_flops: np.ndarray
    node_bytes: np.ndarray
    node_weight_bytes: np.ndarray
    nominal_s: np.ndarray  # (configs,) the reference's usual time in each one's group kind (the collection's speed)

    @property
    def batches(self) -> np.ndarray:
        return np.asarray([c.batch for c in self.configs], dtype=np.float64)

    @property
    def reference_off(self) -> np.ndarray:
        """(configs,) how far the speed reference ran from its usual time beside each
        configuration (`reference_off`)."""
        return reference_off(self.reference_s, self.nominal_s)

    def subset(self, keep: np.ndarray) -> ModelData:
        """This model with only the configurations where `keep` (configs,) is true."""
        rows = np.flatnonzero(keep)
        index = torch.from_numpy(rows)
        g = self.graph
        graph = replace(g, config_feat=g.config_feat[index], runtime=g.runtime[index],
                        config_index=g.config_index[index])
        return replace(self, graph=graph, configs=[self.configs[i] for i in rows], latency_s=self.latency_s[rows],
                       timed_s=self.timed_s[rows], reference_s=self.reference_s[rows], relative=self.relative[rows],
                       nominal_s=self.nominal_s[rows])

    @property
    def per_item_s(self) -> np.ndarray:
        return self.latency_s / self.batches


def steady_labels(models: list[ModelData], tolerance: float) -> tuple[list[ModelData], int]:
    """The models with only the configurations measured while the machine ran at its usual
    speed: the speed reference beside them within `tolerance` of its usual time
    (`ModelData.reference_off`; 0 keeps everything), and how many configurations were left out.
    A model keeps at least the two measured nearest the usual speed (the ranking term needs two),
    so that no graph is lost. Where the reference ran off its usual time, a neighbour
    was disturbing the machine, and dividing by the reference does not undo what that did to the
    model: in a 24-minute collection on a busy 2-core AMD EPYC (format 8), repeated measurements
    on one thread whose two references both ran within 5% of usual agreed within ±10% 88.9% of
    the time (108 pairs), those with either over 10% off 19.0% (21 pairs); on two threads 78.4%
    (51) against 28.4% (81). 11% of its one-thread and 30% of its two-thread labels were that far
    off."""
    if tolerance <= 0:
        return models, 0
    kept, left_out = [], 0
    for m in models:
        off = m.reference_off
        keep = off <= tolerance
        keep[np.argsort(off, kind="stable")[:2]] = True
        left_out += int((~keep).sum())
        kept.append(m if keep.all() else m.subset(keep))
    return kept, left_out


def load_model_file(path: Path, reference_s: dict[str, float] | None = None) -> ModelData:
    """One model's file, validated by the tile loader (keys, shapes, dtypes, finite values), with
    its latencies at the speed `reference_s` gives (the reference's time per group kind; default:
    this file's own)."""
    info = FileInfo(path, KIND, "train")
    arrays = load_arrays(info)
    for key in ("node_flops", "node_bytes", "node_weight_bytes", "config_reference", "config_relative", "meta"):
        if key not in arrays:
            raise UserError(f"{path}: key '{key}': missing (a fastslow latency file has it)")
    n, c = arrays["node_feat"].shape[0], arrays["config_runtime"].shape[0]
    for key, size in (("node_flops", n), ("node_bytes", n), ("node_weight_bytes", n), ("config_reference", c),
                      ("config_relative", c)):
        if arrays[key].shape != (size,):
            raise UserError(f"{path}: key '{key}': shape {arrays[key].shape}, expected ({size},)")
    if not (arrays["config_reference"] > 0).all() or not (arrays["config_relative"] > 0).all():
        raise UserError(f"{path}: keys 'config_reference', 'config_relative': must be positive")
    try:
        meta = json.loads(str(arrays["meta"]))
        configs = [Config.from_dict(c) for c in meta["configs"]]
    except (ValueError, KeyError, TypeError, UserError) as e:
        raise UserError(f"{path}: key 'meta': not a fastslow latency description ({e})") from None
    if len(configs) != c:
        raise UserError(f"{path}: key 'meta': {len(configs)} configurations for {c} runtimes")
    ref_s = arrays["config_reference"] / 1e9
    nominal = reference_s or reference_speed([(configs, ref_s)])
    usual = np.asarray([nominal[group_kind(c)] for c in configs])
    latency = arrays["config_relative"] * usual
    at_speed = {**arrays, "config_runtime": np.maximum(1, np.rint(latency * 1e9)).astype(np.int64)}
    return ModelData(meta["name"], meta["family"], meta, tile_graph(info, at_speed, dedupe=False), configs,
                     latency, arrays["config_runtime"].astype(np.float64) / 1e9, ref_s, arrays["config_relative"],
                     arrays["node_opcode"].astype(np.int64), arrays["node_flops"], arrays["node_bytes"],
                     arrays["node_weight_bytes"], usual)


def reference_times(models: list[tuple[list[Config], np.ndarray]]) -> dict[str, list[float]]:
    """The reference's times (seconds) per group kind over (configurations, their reference times)."""
    times: dict[str, list[float]] = {}
    for configs, refs in models:
        for c, r in zip(configs, refs, strict=True):
            times.setdefault(group_kind(c), []).append(float(r))
    return times


def reference_speed(models: list[tuple[list[Config], np.ndarray]]) -> dict[str, float]:
    """A collection's nominal speed: per group kind, the median of the reference's times (seconds)
    over (configurations, their reference times)."""
    return {k: float(np.median(v)) for k, v in sorted(reference_times(models).items())}


def stored_reference_times(out: Path) -> dict[str, list[float]]:
    """The reference's times per group kind in the model files a collection already has (what
    its nominal speed is the median of), read without the graphs: a continued collection's
    `SpeedWatch` starts from them. A file that cannot be read is passed over (loading it
    says what is wrong with it)."""
    pairs = []
    for path in sorted((out / NPZ).glob("*.npz")):
        try:
            with np.load(path, allow_pickle=False) as z:
                configs = [Config.from_dict(c) for c in json.loads(str(z["meta"]))["configs"]]
                pairs.append((configs, z["config_reference"] / 1e9))
        except (OSError, ValueError, KeyError, TypeError, UserError, zipfile.BadZipFile):
            continue
    return reference_times([p for p in pairs if len(p[0]) == len(p[1])])


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
    """A collection's manifest (with its nominal speed, `reference_s`) and every model it
    measured, in name order, with latencies at that speed."""
    out = Path(out)
    if not out.is_dir():
        raise UserError(f"collection {out}: not found (make one with `fastslow predictor collect --out {out}`)")
    manifest = read_manifest(out)
    if manifest is None:
        raise UserError(f"collection {out}: no {MANIFEST} (not made by `fastslow predictor collect`)")
    if manifest.get("format") != FORMAT_VERSION:
        fix = (f"bring it up to date with `fastslow {RECAPTURE_COMMAND} {out}` (a few minutes, its measurements kept)"
               if manifest.get("format") in RECAPTURABLE else
               "collect again into another folder (`fastslow predictor collect --out DIR`)")
        raise UserError(f"collection {out} is of format {manifest.get('format')}, and this version of fastslow "
                        f"trains on {FORMAT_VERSION} (its graphs or times were made differently): {fix}")
    files = sorted((out / NPZ).glob("*.npz"))
    if not files:
        raise UserError(f"collection {out}: no measured models yet (run `fastslow predictor collect --out {out}`)")
    models = [load_model_file(p) for p in files]
    manifest["reference_s"] = reference_speed([(m.configs, m.reference_s) for m in models])
    return manifest, [load_model_file(p, manifest["reference_s"]) for p in files]
