"""Which of torch.onnx's exporters should fastslow use? `fastslow.optimize.runtime.onnx_export`
tries the TorchScript exporter first (checked at another batch size) and falls back to
torch.export's (`dynamo`, torch's default, with its translation table built once per process).
This times, on the same models side by side (alternating which goes first):

1. the export itself: `onnx_export` against the dynamo path alone;
2. what the export is for: ONNX Runtime's time per call on each file, one thread, at batch 1
   and 16 (the best of several blocks of calls, the two sessions timed in alternating rounds).

It prints each model's ratios, which exporter `onnx_export` chose, and the totals.

    .venv/bin/python benchmarks/onnx_export_speed.py [--per-family 1] [--rounds 3]

The models are the first of each corpus family (`fastslow.predict.corpus`, timm and torchvision
where they import) that torch.onnx can export.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _side_by_side import compare

from fastslow.optimize.runtime import _export, onnx_export, onnx_predict
from fastslow.predict.corpus import available_families, sample
from fastslow.quiet import quietly


def dynamo(model: torch.nn.Module, x: torch.Tensor, path: Path) -> None:
    """torch.export's exporter alone, as `onnx_export` made every file before."""
    with quietly():
        _export(copy.deepcopy(model).eval(), x, path)


def per_call(path: Path, x: torch.Tensor) -> Callable[[], float]:
    """A block of calls of an ONNX Runtime session that takes about 20 ms; returns the time per call."""
    run = onnx_predict(path, 1)
    run(x)
    t0 = time.perf_counter()
    run(x)
    n = max(1, int(0.02 / max(time.perf_counter() - t0, 1e-6)))

    def block() -> float:
        t = time.perf_counter()
        for _ in range(n):
            run(x)
        return (time.perf_counter() - t) / n

    return block


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-family", type=int, default=1, help="models of each corpus family")
    ap.add_argument("--rounds", type=int, default=3, help="exports of each model each way (the median is kept)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="fastslow-export-bench-"))
    cases = []
    for family in available_families():
        for seed in range(args.per_family):
            s = sample(family, seed)
            model, x = s.build().eval(), torch.zeros(2, *s.input_shape)
            try:
                dynamo(model, x, tmp / "warm.onnx")  # also builds the translation table, once
                chosen = onnx_export(model, x, tmp / s.name)
            except Exception as e:  # noqa: BLE001  (a model the exporters cannot take is left out)
                print(f"skipped {s.name}: {str(e).splitlines()[0][:100]}")
                continue
            dynamo(model, x, tmp / f"{s.name}-dynamo.onnx")
            cases.append((s, model, x, chosen))

    print("1. exporting")
    new_total, old_total = compare(
        [(s.name, lambda m=model, x=x: onnx_export(m, x, tmp / "again"),
          lambda m=model, x=x: dynamo(m, x, tmp / "d.onnx")) for s, model, x, _ in cases],
        ("onnx_export", "dynamo"), args.rounds)
    print(f"{len(cases)} models: onnx_export {new_total:.2f} s, the dynamo exporter {old_total:.2f} s, "
          f"{old_total / new_total:.1f}x longer")

    print("\n2. ONNX Runtime's time per call, one thread (best block of each side)")
    print(f"{'model':24s} {'exporter':>11s} {'batch':>5s} {'chosen':>10s} {'dynamo':>10s} {'ratio':>7s}")
    ratios = []
    for s, _, _, chosen in cases:
        for batch in (1, 16):
            x = torch.randn(batch, *s.input_shape)
            blocks = [per_call(chosen.path, x), per_call(tmp / f"{s.name}-dynamo.onnx", x)]
            best = [min(t) for t in zip(*[[b() for b in blocks] for _ in range(5 * args.rounds)], strict=True)]
            ratios.append(best[0] / best[1])
            print(f"{s.name:24s} {chosen.exporter:>11s} {batch:5d} {best[0] * 1e6:8.1f}us {best[1] * 1e6:8.1f}us "
                  f"{ratios[-1]:6.2f}x", flush=True)
    print(f"ONNX Runtime's time on the chosen export over the dynamo export: median {statistics.median(ratios):.2f}x, "
          f"geometric mean {math.exp(statistics.fmean(math.log(r) for r in ratios)):.2f}x, "
          f"range {min(ratios):.2f}-{max(ratios):.2f}x ({len(ratios)} pairs); torch {torch.__version__}")


if __name__ == "__main__":
    main()
