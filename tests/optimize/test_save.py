"""Every kind of accepted variant saves to a file that loads with torch or onnxruntime alone, in a
fresh process that never imports fastslow, and gives the judged outputs on the test set."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from fastslow.errors import UserError
from fastslow.optimize import variants as V
from fastslow.optimize.save import save_variant
from fastslow.tasks.registry import resolve_task

LOAD = """
import json, sys
from pathlib import Path
import numpy as np
folder = Path(sys.argv[1])
manifest = json.loads((folder / "manifest.json").read_text())
x = np.load(folder / "x.npy")
if manifest["format"] == "onnx":
    import onnxruntime as ort
    s = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    y = s.run(None, {s.get_inputs()[0].name: x})[0]
else:
    import torch
    m = (torch.export.load(str(folder / "model.pt2")).module() if manifest["format"] == "torch.export"
         else torch.jit.load(str(folder / "model.ts")))
    with torch.inference_mode():
        y = m(torch.from_numpy(x).to(getattr(torch, manifest["input"]["dtype"]))).float().numpy()
assert "fastslow" not in sys.modules
np.save(folder / "y.npy", y)
"""


@pytest.fixture(scope="module")
def digits_ctx(tmp_path_factory) -> V.Context:
    task = resolve_task("digits")
    task.train_config.epochs = 3
    data = task.make_data(0)
    model = task.train(task.build_model(), data)
    return V.Context(task, data, model, data.batch(64), threads=1, workdir=tmp_path_factory.mktemp("exports"))


@pytest.mark.parametrize("pipeline,fmt", [
    ("onnx", "onnx"), ("int8-dynamic+onnx", "onnx"), ("int8-static+onnx", "onnx"),
    ("int8-static", "torchscript"), ("int8-dynamic", "torchscript"), ("prune-l1+finetune:1", "torch.export"),
    ("bf16", "torch.export"), ("channels-last", "torch.export"),
])
def test_a_saved_variant_loads_alone_and_matches(digits_ctx, tmp_path, pipeline, fmt):
    c = V.build(V.parse_pipelines(pipeline)[0], digits_ctx)
    manifest = save_variant(tmp_path, c, {}, {"spec": None, "task": "digits"}, digits_ctx.example)
    assert manifest["format"] == fmt and (tmp_path / "manifest.json").exists()
    x = digits_ctx.data.test.tensors[0]
    np.save(tmp_path / "x.npy", x.numpy())
    subprocess.run([sys.executable, "-c", LOAD, str(tmp_path)], check=True, timeout=300)
    with torch.inference_mode():
        expected = c.predict(x).float().numpy()
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=2e-2 if pipeline == "bf16" else 1e-4)


def test_qat_then_onnx_is_refused_with_the_reason():
    with pytest.raises(UserError, match="would drop qat's fine-tuning"):
        V.parse_pipelines("qat+onnx")


def test_the_manifest_says_how_to_run_it(digits_ctx, tmp_path):
    c = V.build(V.parse_pipelines("bf16")[0], digits_ctx)
    manifest = save_variant(tmp_path, c, {"median_s": 1e-3}, {"spec": "zoo:digits-cnn", "task": "digits"},
                            digits_ctx.example)
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["spec"] == "zoo:digits-cnn" and on_disk["input"]["dtype"] == "bfloat16"
    assert "cast to bfloat16" in manifest["run_as_measured"]
