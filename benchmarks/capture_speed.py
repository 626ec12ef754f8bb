"""How long does capturing a model as an operator graph take, against the capture before format 10?

`fastslow predict` captures the model it is asked about, and a search that ranks candidate
architectures captures every one of them; the prediction itself takes milliseconds. This times
`fastslow.predict.capture.capture` (make_fx on fake tensors) against what the capture ran before
(torch.export, then decomposed to core ATen with LSTM and GRU kept whole), on the same models,
alternating which goes first, and prints each model's ratio and the ratio of the totals.

    .venv/bin/python benchmarks/capture_speed.py [--per-family 2] [--rounds 3]

The models are two of each corpus family (`fastslow.predict.corpus`, timm and torchvision where
they import) and torchvision's MobileNetV3-small and ResNet-18 at 224x224 where it imports.
"""

from __future__ import annotations

import argparse

import torch
from _side_by_side import compare

from fastslow.predict.capture import capture
from fastslow.predict.corpus import available_families, sample
from fastslow.quiet import quietly


def exported(model: torch.nn.Module, x: torch.Tensor) -> object:
    """The capture's trace before format 10: torch.export, then core ATen, recurrent layers whole."""
    table = torch.export.default_decompositions()
    for name in ("lstm", "gru"):
        table.pop(getattr(torch.ops.aten, name).input, None)
    with quietly(stderr=True, logs=True):
        return torch.export.export(model, (x,)).run_decompositions(table)


def models(per_family: int) -> list[tuple[str, torch.nn.Module, torch.Tensor]]:
    out = []
    for family in available_families():
        for seed in range(per_family):
            s = sample(family, seed)
            model = s.build().eval()
            x = torch.zeros(1, *s.input_shape)
            try:
                capture(model, (x,), name=s.name)
            except Exception as e:  # noqa: BLE001  (the zoo's life-min: neither capture takes it)
                print(f"skipped {s.name}: {e}")
                continue
            out.append((s.name, model, x))
    try:
        from fastslow.zoo.resolvers import import_optional

        tv = import_optional("torchvision")
        for name in ("mobilenet_v3_small", "resnet18"):
            out.append((f"torchvision:{name} 224", getattr(tv.models, name)().eval(), torch.zeros(1, 3, 224, 224)))
    except Exception as e:  # noqa: BLE001
        print(f"torchvision not used: {e}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-family", type=int, default=2, help="models of each corpus family")
    ap.add_argument("--rounds", type=int, default=3, help="timings of each capture per model (the median is kept)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cases = models(args.per_family)
    now_total, before_total = compare(
        [(name, lambda m=model, x=x, n=name: capture(m, (x,), name=n), lambda m=model, x=x: exported(m, x))
         for name, model, x in cases], ("capture", "before"), args.rounds, width=32, digits=3)
    print(f"\n{len(cases)} models, one thread, torch {torch.__version__}: capture {now_total:.1f} s, "
          f"before {before_total:.1f} s, {before_total / now_total:.1f}x faster")


if __name__ == "__main__":
    main()
