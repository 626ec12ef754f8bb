"""Synthetic tile-format data: op graphs shaped like real ones, tile configurations, and
runtimes from a stated analytic cost model with noise. Labelled synthetic everywhere: file
names start with "synthetic-" and the folder gets a SYNTHETIC.md describing the model.

Cost model (per kernel, summed over its ops):
  for an op with output dims (d0, d1, d2) and a tile (t0, t1, t2) from the configuration,
  tiles       = Π ceil(d_i / t_i)
  padded work = tiles · Π t_i                      (work wasted where a tile overhangs)
  time        = weight(opcode) · padded work / 1e3  (compute)
              + 40 · tiles                         (fixed cost per tile: launch, pipeline fill)
              + 4 · padded work / t2                (re-reading operands along the inner dim)
  and × 3 when Π t_i exceeds a 2^16-element on-chip buffer (spill);
  the kernel's time × lognormal noise (sigma 0.03), as an integer. The normalizer is the time
  of the kernel's first configuration, as in the real files, where it is one per kernel.
Feature columns filled (the rest are 0): node_feat 21-23 = output dims, 28 = log2 of their
product, 0 = is-output flag; config_feat 0-2 = tile dims, 3 = log2 tile volume.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fastslow.tpugraphs.data import NODE_FEATS, TILE_CONFIG_FEATS

OPCODES = np.array([26, 27, 34, 44, 52, 63, 75, 95, 102])  # a spread of uint8 opcode ids
OP_WEIGHT = {26: 8.0, 27: 6.0, 34: 1.0, 44: 0.5, 52: 2.0, 63: 0.3, 75: 1.5, 95: 1.0, 102: 0.2}
BUFFER_ELEMENTS = 1 << 16
NOISE_SIGMA = 0.03

README = """# Synthetic TpuGraphs tile data

Made by `fastslow tpugraphs synth`. NOT real TPU measurements: runtimes come from the
analytic cost model in fastslow/tpugraphs/synth.py (tiles, padding waste, per-tile cost,
operand re-reads, a buffer-spill penalty, 3% lognormal noise). Use it for tests and
benchmarks of the pipeline, never to judge a model of real hardware.
"""


def _graph(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = int(rng.integers(4, 40))
    opcode = rng.choice(OPCODES, size=n).astype(np.uint8)
    dims = 2 ** rng.integers(3, 10, size=(n, 3))  # 8 .. 512 per dim
    dims = (dims * rng.choice([1.0, 0.75, 1.5], size=(n, 3))).astype(np.int64)
    edges = []
    for consumer in range(1, n):  # nodes in topological order: producers come first
        for producer in rng.choice(consumer, size=min(consumer, int(rng.integers(1, 3))), replace=False):
            edges.append((consumer, int(producer)))
    feat = np.zeros((n, NODE_FEATS), np.float32)
    feat[:, 21:24] = dims
    feat[:, 28] = np.log2(dims.prod(1))
    feat[n - 1, 0] = 1.0
    return opcode, dims, np.array(edges, np.int64).reshape(-1, 2), feat


def _configs(rng: np.random.Generator, c: int) -> np.ndarray:
    tiles = 2 ** rng.integers(2, 9, size=(c, 3))
    tiles[rng.random(c) < 0.1] = tiles[0]  # a few duplicates, as real files have
    feat = np.zeros((c, TILE_CONFIG_FEATS), np.float32)
    feat[:, 0:3] = tiles
    feat[:, 3] = np.log2(tiles.prod(1))
    return feat


def kernel_runtime(opcode: np.ndarray, dims: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    """Noise-free cost of one kernel for each configuration's tile (c, 3) -> (c,)."""
    t = tiles[:, None, :].astype(np.float64)  # (c, 1, 3)
    d = dims[None, :, :].astype(np.float64)  # (1, n, 3)
    n_tiles = np.ceil(d / t).prod(-1)  # (c, n)
    padded = n_tiles * t.prod(-1)
    weight = np.array([OP_WEIGHT[int(o)] for o in opcode])[None, :]
    time = weight * padded / 1e3 + 40.0 * n_tiles + 4.0 * padded / t[..., 2]
    time = time * np.where(t.prod(-1) > BUFFER_ELEMENTS, 3.0, 1.0)
    return time.sum(-1)


def write_synthetic(out: str | Path, *, train: int = 200, valid: int = 40, test: int = 20,
                    configs: tuple[int, int] = (20, 120), seed: int = 0) -> list[Path]:
    out = Path(out)
    rng = np.random.default_rng(seed)
    written = []
    for split, count in (("train", train), ("valid", valid), ("test", test)):
        folder = out / "npz" / "tile" / "xla" / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            opcode, dims, edges, node_feat = _graph(rng)
            cfg = _configs(rng, int(rng.integers(*configs)))
            clean = kernel_runtime(opcode, dims, cfg[:, 0:3])
            runtime = np.maximum(1, np.round(clean * rng.lognormal(0, NOISE_SIGMA, clean.shape))).astype(np.int64)
            normalizer = np.full_like(runtime, runtime[0])
            if split == "test":  # labels withheld, as in the real test files
                runtime, normalizer = np.zeros_like(runtime), np.ones_like(runtime)
            path = folder / f"synthetic-{split}-{i:04d}.npz"
            np.savez_compressed(path, node_feat=node_feat, node_opcode=opcode, edge_index=edges, config_feat=cfg,
                                config_runtime=runtime, config_runtime_normalizers=normalizer)
            written.append(path)
    (out / "SYNTHETIC.md").write_text(README)
    return written
