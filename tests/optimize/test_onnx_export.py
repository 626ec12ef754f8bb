"""ONNX export: torch.onnx's TorchScript exporter where its file runs the model at any batch
size, else torch.export's (dynamo), whose translation table is built once per process and whose
file is what the public `torch.onnx.export` gives."""

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from fastslow.optimize import runtime


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 5), nn.GELU()).eval()


class Branches(nn.Module):
    """Its own code turns a traced size into a Python bool: a trace would keep one branch."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3:
            return self.body(x)
        return self.body(x[:, :3])


class HidesItsBatch(nn.Module):
    """Reads its batch size as a Python int and silences the tracer's warning about it: a trace
    fixes the batch size at the example's, which only running another batch size shows."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            n = int(x.shape[0])
        return self.body(x) + torch.arange(n, dtype=x.dtype)[:, None]


def _runs_at_every_batch(path, model: nn.Module) -> None:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    for batch in (1, 5):
        xb = torch.randn(batch, 3, 12, 12)
        got = session.run(None, {session.get_inputs()[0].name: xb.numpy()})[0]
        assert got == pytest.approx(model(xb).detach().numpy(), abs=1e-5)


def test_a_model_that_traces_cleanly_is_exported_by_the_torchscript_exporter(tmp_path):
    model, x = _model(), torch.randn(2, 3, 12, 12)
    export = runtime.onnx_export(model, x, tmp_path / "ts")
    assert export.exporter == "torchscript" and export.path == tmp_path / "ts" / "model.onnx" and export.seconds > 0
    _runs_at_every_batch(export.path, model)
    # torch's own layers check their inputs' shapes in Python, which makes the tracer warn: that
    # is not the model's code, so a transformer layer is exported by the trace too
    layer = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 1).eval()
    assert runtime.onnx_export(layer, torch.randn(2, 7, 16), tmp_path / "layer").exporter == "torchscript"


def test_a_model_whose_own_code_makes_the_trace_warn_goes_to_torch_export(tmp_path):
    model, x = Branches().eval(), torch.randn(2, 3, 12, 12)
    assert not runtime.torchscript_export(model, x, tmp_path / "trace.onnx")
    assert not (tmp_path / "trace.onnx").exists()  # nothing untrusted left behind
    export = runtime.onnx_export(model, x, tmp_path / "ours")
    assert export.exporter == "dynamo"
    _runs_at_every_batch(export.path, model)


def test_a_trace_that_fixed_the_batch_size_without_a_warning_is_not_trusted(tmp_path):
    model, x = HidesItsBatch().eval(), torch.randn(2, 3, 12, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp_path / "plain.onnx"), dynamo=False, input_names=["input"],
                          dynamic_axes={"input": {0: "batch"}})
    session = ort.InferenceSession(str(tmp_path / "plain.onnx"), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception):  # noqa: B017, PT011  (the trace fixed the batch at 2: ONNX Runtime refuses 3)
        session.run(None, {"input": torch.randn(3, 3, 12, 12).numpy()})
    assert not runtime.torchscript_export(model, x, tmp_path / "trace.onnx")  # the check at batch 3 caught it
    assert not (tmp_path / "trace.onnx").exists()


def test_the_torch_export_path_matches_the_public_exporter_and_reuses_its_table(tmp_path):
    model, x = Branches().eval(), torch.randn(2, 3, 12, 12)
    runtime._torchlib_registry.cache_clear()
    ours = runtime.onnx_export(model, x, tmp_path / "ours")
    again = runtime.onnx_export(model, x, tmp_path / "again")
    assert ours.exporter == again.exporter == "dynamo"
    info = runtime._torchlib_registry.cache_info()
    assert (info.misses, info.hits) == (1, 1)  # built by the first export, reused by the second
    public = tmp_path / "public.onnx"
    runtime.public_export(model, x, public)
    assert onnx.load(str(ours.path)) == onnx.load(str(public))  # the same model, node for node
    _runs_at_every_batch(again.path, model)


def test_a_torch_without_the_internals_gets_the_public_call(tmp_path, monkeypatch):
    def missing(opset):  # what a torch whose registry lacks `from_torchlib` raises
        raise AttributeError("type object 'ONNXRegistry' has no attribute 'from_torchlib'")

    model, x = Branches().eval(), torch.randn(2, 3, 12, 12)
    monkeypatch.setattr(runtime, "_torchlib_registry", missing)
    export = runtime.onnx_export(model, x, tmp_path / "fallback")
    public = tmp_path / "public.onnx"
    runtime.public_export(model, x, public)
    assert export.exporter == "dynamo" and export.seconds > 0
    assert onnx.load(str(export.path)) == onnx.load(str(public))


def test_an_int8_export_quantizes_the_traced_float_file(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8)).eval()
    x = torch.randn(4, 32)
    export = runtime.onnx_export(model, x, tmp_path / "q", int8="dynamic")
    assert export.exporter == "torchscript" and (tmp_path / "q" / "fp32" / "model.onnx").exists()
    ops = {n.op_type for n in onnx.load(str(export.path)).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul"}, ops
    got = runtime.onnx_predict(export.path, 1)(x).numpy()
    want = model(x).detach().numpy()
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()
