"""Running the same model differently: torch.compile, lower precision, channels_last, and ONNX
Runtime. Each returns a predict function and what it cost to build."""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastslow.cost.counter import tensors_in
from fastslow.errors import UserError, one_line
from fastslow.quiet import quietly

Predict = Callable[[torch.Tensor], torch.Tensor]


def compiled(model: nn.Module, example: torch.Tensor) -> tuple[Predict, float]:
    """torch.compile (inductor) and the seconds its first call took, which is the compile."""
    fn = torch.compile(copy.deepcopy(model).eval())
    t0 = time.perf_counter()
    with torch.inference_mode():
        fn(example)
    return fn, time.perf_counter() - t0


def low_precision(model: nn.Module, dtype: torch.dtype, example: torch.Tensor) -> Predict:
    m = copy.deepcopy(model).eval().to(dtype)

    def predict(x: torch.Tensor) -> torch.Tensor:
        return m(x.to(dtype)).float()

    try:
        with torch.inference_mode():
            predict(example)
    except (RuntimeError, NotImplementedError) as e:
        raise UserError(f"{dtype} is not supported for this model on this device: {one_line(e)}") from None
    return predict


def channels_last(model: nn.Module) -> Predict:
    m = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)

    def predict(x: torch.Tensor) -> torch.Tensor:
        return m(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)

    return predict


@dataclass(frozen=True)
class OnnxExport:
    """An exported model: its file, the seconds exporting (and quantizing) took, and which of
    torch.onnx's exporters made it ("torchscript" or "dynamo", see `onnx_export`)."""

    path: Path
    seconds: float
    exporter: str


def onnx_export(model: nn.Module, example: torch.Tensor, out_dir: Path | None = None, *, int8: str | None = None,
                calibration: torch.Tensor | None = None) -> OnnxExport:
    """Export to `out_dir`/model.onnx with a dynamic batch. With `int8`, the float export is then
    quantized by ONNX Runtime's own tools: "dynamic" (int8 weights, activations quantized at run
    time) or "static" (QDQ, calibrated on `calibration`).

    torch.onnx's TorchScript exporter is tried first, and its file kept only where the model's
    own code made the trace raise no warning and ONNX Runtime gives the model's outputs at another
    batch size than the example's (a trace can fix a size it read); else torch.export's exporter
    (`dynamo`, torch's default) makes it. On the first model of each corpus family of `fastslow predictor collect`
    (2-core AMD EPYC, one thread), exporting took 0.01-0.3 s a model this way against 0.3-5.6 s
    with torch.export's exporter alone (12-31x), and ONNX Runtime ran the files as fast
    (0.98-1.05x the time: convolutional nets, MLPs, timm and torchvision models) or faster (a
    transformer encoder 0.73-0.82x, a recurrent net 0.81-0.94x);
    `benchmarks/onnx_export_speed.py` measures both."""
    _onnxruntime()
    out_dir = out_dir or Path(tempfile.mkdtemp(prefix="fastslow-onnx-"))
    path = out_dir / "model.onnx"
    fp32 = out_dir / "fp32" / "model.onnx" if int8 else path
    fp32.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = copy.deepcopy(model).eval()
    # The exporters print their progress and warn about their internals: keep that off the user's screen.
    if torchscript_export(model, example, fp32):
        exporter = "torchscript"
    else:
        with quietly():
            _export(model, example, fp32)
        exporter = "dynamo"
    if int8:
        _ort_quantize(fp32, path, int8, calibration if calibration is not None else example)
    return OnnxExport(path, time.perf_counter() - t0, exporter)


def torchscript_export(model: nn.Module, example: torch.Tensor, path: Path) -> bool:
    """Export `model` (in eval mode) with torch.onnx's TorchScript exporter, batch dynamic, and
    say whether the file can be trusted: False (and no file) where this torch has no such
    exporter, where it fails, where the model's own code (not torch's, whose layers check their
    inputs' shapes in Python) makes it warn that the trace may not generalise, or where ONNX
    Runtime's outputs at batch size `len(example) + 1` differ from the model's."""
    import torch.jit

    path.unlink(missing_ok=True)
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("always")
            torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["input"],
                              dynamic_axes={"input": {0: "batch"}})
        if any(issubclass(w.category, torch.jit.TracerWarning) and not _in_torch(w.filename) for w in caught):
            raise ValueError("the trace may not generalise")
        bigger = example.shape[0] + 1
        if example.is_floating_point():
            x = torch.randn(bigger, *example.shape[1:], generator=torch.Generator().manual_seed(0)).to(example.dtype)
        else:  # token ids and the like: the example's first row, repeated
            x = example[:1].expand(bigger, *example.shape[1:]).contiguous()
        with torch.inference_mode():
            want = tensors_in(model(x))
        session = _ort_session(path, 1)
        got = [torch.from_numpy(g) for g in session.run(None, {session.get_inputs()[0].name: x.numpy()})]
        if len(got) != len(want) or not all(_close(g, w) for g, w in zip(got, want, strict=True)):
            raise ValueError("ONNX Runtime's outputs at another batch size differ from the model's")
    except Exception:  # noqa: BLE001  (any failure means: let torch.export's exporter make it)
        path.unlink(missing_ok=True)
        return False
    return True


def _in_torch(filename: str) -> bool:
    """Whether a warning was raised by torch's own code."""
    return Path(filename).resolve().is_relative_to(Path(torch.__file__).resolve().parent)


def _close(got: torch.Tensor, want: torch.Tensor) -> bool:
    want = want.detach().float()
    scale = 1.0 + float(want.abs().max()) if want.numel() else 1.0
    return got.shape == want.shape and torch.allclose(got.float(), want, rtol=1e-3, atol=1e-4 * scale)


@functools.cache
def _torchlib_registry(opset: int) -> Any:
    from torch.onnx._internal.exporter import _registration

    return _registration.ONNXRegistry.from_torchlib(opset_version=opset)


def _batch_axis() -> tuple[dict[int, Any]]:
    """The input's first dimension, dynamic and named "batch"."""
    return ({0: torch.export.Dim("batch", min=1)},)


def public_export(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """The public `torch.onnx.export` call that `_export` matches: dynamo, a dynamic batch, one file."""
    torch.onnx.export(model, (example,), str(path), dynamo=True, verbose=False, dynamic_shapes=_batch_axis(),
                      report=False, external_data=False)


def _export(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """What `torch.onnx.export(dynamo=True, dynamic batch, one file)` does, with its table of
    ATen-to-ONNX translations built once per process instead of at every call. Building it
    parses the source of about 500 onnxscript functions: about 0.9 s of each export on a 2-core
    AMD EPYC, most of a small model's. The table is only read while exporting. It is torch.onnx's
    internal API, so where this version of torch lacks it, the public call is made instead."""
    shapes = _batch_axis()
    try:
        from torch.onnx import _constants as onnx_constants
        from torch.onnx._internal.exporter import _constants, _core, _dynamic_shapes

        opset = onnx_constants.ONNX_DEFAULT_OPSET
        registry = _torchlib_registry(max(opset, _constants.TORCHLIB_OPSET))
        export_shapes, rename = _dynamic_shapes.convert_str_to_export_dim(shapes)
        internal = _core.export
    except (ImportError, AttributeError):
        public_export(model, example, path)
        return
    program = internal(model, (example,), None, registry=registry, dynamic_shapes=export_shapes, verbose=False,
                       report=False, opset_version=opset)
    if rename and hasattr(program, "_rename_dynamic_axes"):
        program._rename_dynamic_axes(shapes)  # the batch axis named "batch", as the public call names it
    program.save(str(path), include_initializers=True, keep_initializers_as_inputs=False, external_data=False)


def _onnxruntime() -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("ONNX needs onnx, onnxscript and onnxruntime (pip install 'fastslow[optimize]')") from None
    return ort


def _ort_session(path: Path, threads: int | None) -> Any:
    """An ONNX Runtime CPU session on an exported model, on `threads` intra-op threads."""
    ort = _onnxruntime()
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_predict(path: Path, threads: int | None) -> Predict:
    """A predict function (the first output) of an ONNX Runtime session (`_ort_session`)."""
    session = _ort_session(path, threads)
    name = session.get_inputs()[0].name

    def predict(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {name: x.numpy()})[0])

    return predict


def onnx_session(model: nn.Module, example: torch.Tensor, threads: int | None, out_dir: Path | None = None, *,
                 int8: str | None = None, calibration: torch.Tensor | None = None) -> tuple[Predict, dict[str, Any]]:
    """`onnx_export`, then a session on it (`onnx_predict`), with what the export cost and weighs."""
    export = onnx_export(model, example, out_dir, int8=int8, calibration=calibration)
    predict = onnx_predict(export.path, threads)
    size = sum(p.stat().st_size for p in export.path.parent.iterdir() if p.name.startswith("model.onnx"))
    return predict, {"export_s": export.seconds, "exporter": export.exporter, "size_bytes": size,
                     "path": str(export.path), "int8": int8}


def _ort_quantize(fp32: Path, out: Path, mode: str, calibration: torch.Tensor) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_dynamic,
        quantize_static,
    )

    with quietly():
        prepared = fp32.with_name("model.prep.onnx")
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        if mode == "dynamic":
            quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8)
            return
        import onnxruntime as ort

        name = ort.InferenceSession(str(prepared), providers=["CPUExecutionProvider"]).get_inputs()[0].name
        batches = [calibration[i : i + 64].numpy() for i in range(0, calibration.shape[0], 64)]

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = iter(batches)

            def get_next(self) -> dict[str, Any] | None:
                x = next(self.it, None)
                return None if x is None else {name: x}

        quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
