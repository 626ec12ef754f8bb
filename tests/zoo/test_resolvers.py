"""Model specs resolved: zoo:, file.py:Attr, package.module:attr, weights."""

import textwrap

import pytest
import torch

from fastslow.errors import UserError
from fastslow.zoo import resolve_model


def test_zoo_spec_comes_with_inputs_and_defaults():
    r = resolve_model("zoo:mlp", {"hidden": 32})
    assert r.model[0].out_features == 32
    assert [i.text for i in r.inputs] == ["Bx256"] and r.defaults["B"] > 0
    assert not r.model.training


def test_file_and_module_specs(tmp_path):
    f = tmp_path / "net.py"
    f.write_text(textwrap.dedent("""
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self, width=4):
                super().__init__()
                self.fc = nn.Linear(3, width)
            def forward(self, x):
                return self.fc(x)
        def factory():
            return Net(7)
        instance = Net(2)
        not_a_model = 5
    """))
    assert resolve_model(f"{f}:Net", {"width": 9}).model.fc.out_features == 9
    assert resolve_model(f"{f}:factory").model.fc.out_features == 7
    assert resolve_model(f"{f}:instance").model.fc.out_features == 2
    assert isinstance(resolve_model("torch.nn:Identity").model, torch.nn.Identity)
    with pytest.raises(UserError, match="not a class or factory"):
        resolve_model(f"{f}:not_a_model")
    with pytest.raises(UserError, match="no attribute 'Missing'"):
        resolve_model(f"{f}:Missing")
    with pytest.raises(UserError, match="constructor rejected"):
        resolve_model(f"{f}:Net", {"depth": 3})


@pytest.mark.parametrize("spec,fragment", [
    ("zoo:nope", "unknown zoo model .nope. .known: .*mlp"), ("nope", "must be zoo:NAME"),
    ("missing/file.py:X", "not found"), ("no_such_pkg_xyz:X", "not importable"),
])
def test_bad_specs_name_the_problem(spec, fragment):
    with pytest.raises(UserError, match=fragment):
        resolve_model(spec)


def test_file_that_fails_to_import(tmp_path):
    f = tmp_path / "broken.py"
    f.write_text("raise ValueError('boom')\n")
    with pytest.raises(UserError, match=r"broken.py: import failed: ValueError: boom"):
        resolve_model(f"{f}:X")


def test_weights_load_and_mismatch(tmp_path):
    src = resolve_model("zoo:mlp").model
    path = tmp_path / "w.pt"
    torch.save({"state_dict": src.state_dict()}, path)
    loaded = resolve_model("zoo:mlp", weights=str(path)).model
    assert torch.equal(loaded[0].weight, src[0].weight)
    with pytest.raises(UserError, match="does not fit the model"):
        resolve_model("zoo:mlp", {"hidden": 8}, weights=str(path))
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(UserError, match="bad.pt: cannot be loaded"):
        resolve_model("zoo:mlp", weights=str(bad))
