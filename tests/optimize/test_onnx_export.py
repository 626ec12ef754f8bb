"""ONNX export: the exporter's translation table is built once per process, and what comes out
is what the public `torch.onnx.export` gives."""

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


def test_export_matches_the_public_exporter_and_reuses_its_table(tmp_path):
    model, x = _model(), torch.randn(2, 3, 12, 12)
    runtime._torchlib_registry.cache_clear()
    ours, _ = runtime.onnx_export(model, x, tmp_path / "ours")
    ours_again, _ = runtime.onnx_export(model, x, tmp_path / "again")
    info = runtime._torchlib_registry.cache_info()
    assert (info.misses, info.hits) == (1, 1)  # built by the first export, reused by the second

    public = tmp_path / "public.onnx"
    runtime.public_export(model, x, public)
    a = onnx.load(str(ours))
    assert a == onnx.load(str(public))  # the same model, node for node, byte for byte
    assert a.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"

    for batch in (1, 5):  # a batch size other than the example's runs too
        xb = torch.randn(batch, 3, 12, 12)
        want = model(xb).detach().numpy()
        for path in (ours, ours_again, public):
            got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": xb.numpy()})
            assert got[0] == pytest.approx(want, abs=1e-5)


def test_a_torch_without_the_internals_gets_the_public_call(tmp_path, monkeypatch):
    def missing(opset):  # what a torch whose registry lacks `from_torchlib` raises
        raise AttributeError("type object 'ONNXRegistry' has no attribute 'from_torchlib'")

    model, x = _model(), torch.randn(2, 3, 12, 12)
    monkeypatch.setattr(runtime, "_torchlib_registry", missing)
    path, seconds = runtime.onnx_export(model, x, tmp_path / "fallback")
    public = tmp_path / "public.onnx"
    runtime.public_export(model, x, public)
    assert seconds > 0
    assert onnx.load(str(path)) == onnx.load(str(public))
