"""Writing the chosen variant with what it takes to load it again.

Formats, in order of preference: the ONNX file (for an ONNX Runtime variant); a torch.export
program (`model.pt2`, loaded with `torch.export.load`, no pickled code); otherwise the state
dict (`state_dict.pt`, weights_only-loadable) with the pipeline that rebuilds the structure.
A manifest.json says which, and the measured figures.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastslow.errors import UserError, one_line


def save_variant(out: Path, candidate: Any, result: dict[str, Any], meta: dict[str, Any], example: torch.Tensor
                 ) -> dict[str, Any]:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"'save' folder {out}: cannot create ({e.strerror or e})") from None
    manifest: dict[str, Any] = {**meta, "variant": candidate.name, "measured": result}
    onnx_path = candidate.notes.get("onnx_path")
    if onnx_path:
        for f in Path(onnx_path).parent.glob("model.onnx*"):
            shutil.copy(f, out / f.name)
        manifest["format"] = "onnx"
        manifest["load"] = "onnxruntime.InferenceSession('model.onnx')"
    elif candidate.module is not None:
        module: nn.Module = candidate.module
        try:
            batch = torch.export.Dim("batch", min=1)
            program = torch.export.export(module.eval(), (example[:2],), dynamic_shapes=({0: batch},))
            torch.export.save(program, out / "model.pt2")
            manifest["format"] = "torch.export"
            manifest["load"] = "torch.export.load('model.pt2').module()"
        except Exception as e:  # quantized packed params, data-dependent control flow, ...
            torch.save(module.state_dict(), out / "state_dict.pt")
            manifest["format"] = "state_dict"
            manifest["export_error"] = one_line(e)
            manifest["load"] = ("rebuild with `fastslow optimize --task TASK --try PIPELINE`, or apply the "
                                "pipeline to the task model, then load_state_dict(torch.load('state_dict.pt', "
                                "weights_only=True))")
    else:
        manifest["format"] = "none"
        manifest["load"] = f"'{candidate.name}' is a runtime setting, not a file: apply it to the model you load"
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest
