import pytest
import torch

from fastslow.errors import UserError
from fastslow.specs import parse_args, parse_input


def test_parse_input_with_symbols_dtype_and_bound():
    s = parse_input("Bx3xHxW")
    assert s.dims == ("B", 3, "H", "W") and s.dtype == torch.float32
    assert s.symbols == ["B", "H", "W"]
    assert s.shape({"B": 2, "H": 4, "W": 5}) == (2, 3, 4, 5)
    t = parse_input("8x16:int64:100").make({})
    assert t.dtype == torch.int64 and t.shape == (8, 16) and int(t.max()) < 100
    assert parse_input("4:bf16").make({}).dtype == torch.bfloat16


@pytest.mark.parametrize("bad,fragment", [
    ("", "empty shape"), ("3x-1", "dimension '-1'"), ("3x3:flt", "unknown dtype 'flt'"),
    ("3x3:float32:9", "only meaningful for integer"), ("3:int64:0", "positive integer"),
])
def test_malformed_inputs_name_the_problem(bad, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_input(bad)


def test_unbound_symbol_names_it():
    with pytest.raises(UserError, match="symbol H has no value"):
        parse_input("Bx3xHxW").shape({"B": 1, "W": 2})


def test_inputs_are_reproducible():
    s = parse_input("2x3")
    assert torch.equal(s.make({}, seed=1), s.make({}, seed=1))


def test_parse_args_literals_and_strings():
    assert parse_args(["n=3", "f=0.5", "flag=True", "name=abc", "t=(1, 2)"]) == {
        "n": 3, "f": 0.5, "flag": True, "name": "abc", "t": (1, 2)}
    with pytest.raises(UserError, match="'args' value .novalue. must look like NAME=VALUE"):
        parse_args(["novalue"])
