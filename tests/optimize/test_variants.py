"""Pipelines of registered steps: parsed, checked before any training, named so they parse back."""

import pytest

from fastslow.errors import UserError
from fastslow.optimize import variants as V


def test_parse_pipelines():
    assert V.parse_pipelines("prune-structured:0.3+finetune,int8-dynamic") == [
        [("prune-structured", 0.3), ("finetune", 5)], [("int8-dynamic", None)]]
    assert V.pipeline_name(V.parse_pipelines("prune-structured:0.3+finetune:2")[0]) == "prune-structured:0.3+finetune:2"


@pytest.mark.parametrize("text,fragment", [
    ("nope", "unknown optimization step 'nope' (known: int8-dynamic"),
    ("onnx+int8-dynamic", "'onnx' leaves torch modules, so it must come last"),
    ("prune-random:abc", "the amount must be a number"),
    ("prune-structured:1.5", "the ratio must lie in (0, 0.95]"),
    ("qat:0", "the epochs must lie in 1..1000"),
    ("finetune:2.5", "the epochs must be an integer"),
    ("distill:nan", "the width must lie in (0, 1]"),
    ("int8-dynamic:7", "int8-dynamic takes no argument"),
    ("int8-static+finetune", "'finetune' cannot follow 'int8-static', which makes an int8 model"),
    ("int8-dynamic+prune-l1", "'prune-l1' cannot follow 'int8-dynamic'"),
    ("", "has no steps"),
    ("int8-dynamic,,onnx", "empty pipeline"),
])
def test_pipelines_that_cannot_work_are_refused_before_training(text, fragment):
    with pytest.raises(UserError) as e:
        V.parse_pipelines(text)
    assert fragment in str(e.value)


def test_every_step_is_registered_with_help_and_an_argument_rule():
    assert len(V.STEPS) >= 15
    for name, spec in V.STEPS.items():
        assert spec.help and spec.makes in ("float", "quantized", "none"), name
        if spec.arg is not None:
            assert spec.arg.parse(name, None) == spec.arg.default
