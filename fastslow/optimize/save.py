"""Writing a judged variant so that it loads again with torch or onnxruntime alone.

Formats, in order: the ONNX file (an ONNX Runtime variant, int8 ones included: loaded with
`onnxruntime.InferenceSession`); a torch.export program (`model.pt2`, `torch.export.load`, no
pickled code); a TorchScript trace (`model.ts`, `torch.jit.load`) for what torch.export cannot
take, such as torch.ao's int8 modules. A variant that is a way of running a module (compile, a
lower precision, channels_last) saves that module, and the manifest says how to run it. The
manifest (manifest.json) records the spec and task as given, the input, and the figures.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastslow.errors import UserError, full_reason


def save_variant(out: Path, candidate: Any, result: dict[str, Any], meta: dict[str, Any], example: torch.Tensor
                 ) -> dict[str, Any]:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"'save' folder {out}: cannot create ({e.strerror or e})") from None
    x = example[:2].to(candidate.input_dtype)
    dtype = str(x.dtype).removeprefix("torch.")
    manifest: dict[str, Any] = {**meta, "variant": candidate.name, "measured": result,
                                "input": {"shape": ["batch", *x.shape[1:]], "dtype": dtype}}
    onnx_path = candidate.notes.get("onnx_path")
    module: nn.Module | None = candidate.module if candidate.module is not None else candidate.artifact
    if onnx_path:
        for f in Path(onnx_path).parent.glob("model.onnx*"):
            shutil.copy(f, out / f.name)
        manifest["format"] = "onnx"
        manifest["load"] = "onnxruntime.InferenceSession('model.onnx')"
        if candidate.notes.get("int8"):
            manifest["quantized_by"] = f"onnxruntime.quantization ({candidate.notes['int8']})"
    elif module is not None:
        module = module.eval()
        try:
            batch = torch.export.Dim("batch", min=1)
            program = torch.export.export(module, (x,), dynamic_shapes=({0: batch},))
            torch.export.save(program, out / "model.pt2")
            manifest["format"] = "torch.export"
            manifest["load"] = "torch.export.load('model.pt2').module()"
        except Exception as export_error:  # torch.ao's int8 modules, data-dependent control flow, ...
            try:
                with warnings.catch_warnings(), torch.inference_mode():
                    warnings.simplefilter("ignore")  # TorchScript is deprecated, and still loads with torch alone
                    traced = torch.jit.trace(module, (x,), check_trace=False)
                torch.jit.save(traced, out / "model.ts")
            except Exception as trace_error:
                raise UserError(f"variant '{candidate.name}' cannot be saved: torch.export failed "
                                f"({full_reason(export_error)}), and so did TorchScript ({full_reason(trace_error)})"
                                ) from None
            manifest["format"] = "torchscript"
            manifest["load"] = "torch.jit.load('model.ts')"
            manifest["why_not_torch_export"] = full_reason(export_error)
        if "compile_s" in candidate.notes:
            manifest["run_as_measured"] = "torch.compile(the loaded module)"
        if candidate.input_dtype != torch.float32:
            manifest["run_as_measured"] = f"inputs cast to {manifest['input']['dtype']}, outputs back to float32"
        if candidate.name.split("+")[-1] == "channels-last":
            manifest["run_as_measured"] = "inputs in torch.channels_last memory format"
    else:
        raise UserError(f"variant '{candidate.name}' has nothing to save")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest
