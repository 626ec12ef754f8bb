"""Saving a judged variant in a form that loads again."""

import pytest
import torch

from fastslow.optimize import variants as V
from fastslow.optimize.save import save_variant
from fastslow.tasks.registry import resolve_task


@pytest.fixture(scope="module")
def xor_ctx() -> V.Context:
    task = resolve_task("xor")
    data = task.make_data(0)
    model = task.train(task.build_model(), data)
    return V.Context(task, data, model, data.batch(64), threads=1)


def test_onnx_matches_torch_and_saves_a_loadable_file(xor_ctx, tmp_path):
    import onnxruntime as ort

    c = V.build([("onnx", None)], xor_ctx)
    assert c.notes["onnx_vs_torch_max_abs_diff"] < 1e-4
    manifest = save_variant(tmp_path, c, {}, {"task": "xor"}, xor_ctx.example)
    assert manifest["format"] == "onnx"
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    x = xor_ctx.example[:5]
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(out), xor_ctx.baseline(x).detach(), atol=1e-4, rtol=1e-4)


def test_a_pruned_module_saves_as_an_exported_program(xor_ctx, tmp_path):
    c = V.build(V.parse_pipelines("prune-l1+finetune:1")[0], xor_ctx)
    assert c.size_bytes is not None and c.notes["dense_size_bytes"] > 0
    manifest = save_variant(tmp_path, c, {}, {}, xor_ctx.example)
    assert manifest["format"] == "torch.export"
    loaded = torch.export.load(tmp_path / "model.pt2").module()
    x = xor_ctx.example[:5]
    torch.testing.assert_close(loaded(x), c.module(x))
