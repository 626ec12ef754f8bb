"""How long does exporting a model to ONNX take, with the exporter's translation table built once
per process (`fastslow.optimize.runtime.onnx_export`) against the public `torch.onnx.export`,
which builds it at every call?

`fastslow predictor collect` exports every model it measures under ONNX Runtime; in a 30-minute
collection the exports took a third of the time with the public call, a quarter with the table
kept. This times both ways on the same models,
alternating which goes first, and prints each model's ratio and the ratio of the totals. The
first export of a process builds the table either way, so one export runs before the timings.

    .venv/bin/python benchmarks/onnx_export_speed.py [--per-family 1] [--rounds 3]

The models are the first of each corpus family (`fastslow.predict.corpus`, timm and torchvision
where they import) whose ONNX export works.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import torch
from _side_by_side import compare

from fastslow.optimize.runtime import onnx_export, public_export
from fastslow.predict.corpus import available_families, sample
from fastslow.quiet import quietly


def public(model: torch.nn.Module, x: torch.Tensor, out: Path) -> None:
    """The public call, as `onnx_export` made it before."""
    with quietly():
        public_export(copy.deepcopy(model).eval(), x, out / "model.onnx")


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
                onnx_export(model, x, tmp / "warm")  # also builds the table, once
            except Exception as e:  # noqa: BLE001  (a model the exporter cannot take is left out)
                print(f"skipped {s.name}: {str(e).splitlines()[0][:100]}")
                continue
            cases.append((s.name, model, x))
    cached_total, public_total = compare(
        [(name, lambda m=model, x=x: onnx_export(m, x, tmp / "cached"), lambda m=model, x=x: public(m, x, tmp))
         for name, model, x in cases], ("table kept", "public"), args.rounds)
    print(f"\n{len(cases)} models, one thread, torch {torch.__version__}: table kept {cached_total:.1f} s, "
          f"public call {public_total:.1f} s, {public_total / cached_total:.2f}x faster")


if __name__ == "__main__":
    main()
