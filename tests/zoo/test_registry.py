"""The registry helper and the zoo built on it."""

import pytest
import torch

from fastslow.errors import UserError
from fastslow.registry import Registry
from fastslow.zoo import create_model, get_entry, list_models


def test_registry_registers_gets_and_names_the_known_ones():
    r: Registry[int] = Registry("widget")
    r.add("one", 1)

    @r.register("two")
    def two() -> int:
        return 2

    assert r.get("one") == 1 and r.get("two") is two and list(r) == ["one", "two"] and "two" in r
    with pytest.raises(ValueError, match="widget 'one' is registered twice"):
        r.add("one", 3)
    with pytest.raises(UserError, match=r"unknown widget 'tow' \(known: one, two\); did you mean 'two'\?"):
        r.get("tow")
    assert r.remove("one") == 1 and r.names() == ["two"]


def test_every_zoo_model_runs_on_its_default_inputs():
    from fastslow.measure.bench import example_inputs
    from fastslow.specs import parse_input

    assert {"mlp", "convnet", "xor", "digits-cnn", "life-fc", "life-min", "life-percell"} <= set(list_models())
    for name in list_models():
        entry = get_entry(name)
        model = create_model(name).eval()
        with torch.inference_mode():
            out = model(*example_inputs([parse_input(t) for t in entry.inputs], entry.defaults, "cpu"))
        assert torch.isfinite(out).all(), name
        assert entry.description, name


def test_zoo_life_min_is_the_shipped_exact_network():
    from fastslow.tasks.life.search import verify_exact

    assert verify_exact(create_model("life-min", fast=False))
