"""The strings a user types, parsed: input shapes, constructor arguments, importable names,
and the loading of weights files. (Model specs are resolved in `fastslow.zoo`.)

An input spec is SHAPE[:dtype[:high]], dimensions separated by 'x', each an integer or a
symbol: 'Bx3xHxW', '8x128:int64:30000' (integers drawn from [0, high)).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastslow.errors import UserError, one_line

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "half": torch.float16, "fp16": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float64": torch.float64, "double": torch.float64,
    "int64": torch.int64, "long": torch.int64, "int32": torch.int32, "int": torch.int32,
    "uint8": torch.uint8, "int8": torch.int8, "bool": torch.bool,
}
DEFAULT_INT_HIGH = 2
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class InputSpec:
    text: str
    dims: tuple[int | str, ...]
    dtype: torch.dtype = torch.float32
    high: int | None = None  # integer inputs are drawn from [0, high)

    @property
    def itemsize(self) -> int:
        return torch.empty((), dtype=self.dtype).element_size()

    @property
    def symbols(self) -> list[str]:
        return [d for d in self.dims if isinstance(d, str)]

    def shape(self, values: dict[str, int]) -> tuple[int, ...]:
        out = []
        for d in self.dims:
            if isinstance(d, str):
                if d not in values:
                    raise UserError(
                        f"input '{self.text}': symbol {d} has no value; give --set {d}=N "
                        f"or --sweep {d}=N,M,..."
                    )
                out.append(values[d])
            else:
                out.append(d)
        return tuple(out)

    def make(self, values: dict[str, int], device: str = "cpu", seed: int = 0) -> torch.Tensor:
        shape = self.shape(values)
        g = torch.Generator().manual_seed(seed)
        if self.dtype == torch.bool:
            t = torch.randint(0, 2, shape, generator=g).bool()
        elif self.dtype.is_floating_point:
            t = torch.randn(shape, generator=g).to(self.dtype)
        else:
            t = torch.randint(0, self.high or DEFAULT_INT_HIGH, shape, generator=g, dtype=self.dtype)
        return t.to(device)


def parse_input(text: str) -> InputSpec:
    shape_text, _, rest = text.strip().partition(":")
    dtype_text, _, high_text = rest.partition(":")
    if not shape_text:
        raise UserError(f"'inputs' value '{text}': empty shape; expected e.g. Bx3x32x32[:float32]")
    dims: list[int | str] = []
    for part in shape_text.split("x"):
        part = part.strip()
        if part.isdigit():
            if int(part) < 1:
                raise UserError(f"'inputs' value '{text}': dimension {part} is empty; every dimension must be >= 1")
            dims.append(int(part))
        elif _SYMBOL.fullmatch(part):
            dims.append(part)
        else:
            raise UserError(
                f"--input '{text}': dimension '{part}' is neither an integer nor a symbol "
                f"(expected e.g. Bx3x32x32[:float32])"
            )
    dtype = torch.float32
    if dtype_text:
        if dtype_text not in DTYPES:
            raise UserError(
                f"--input '{text}': unknown dtype '{dtype_text}' (known: {', '.join(DTYPES)})"
            )
        dtype = DTYPES[dtype_text]
    high = None
    if high_text:
        if not high_text.isdigit() or int(high_text) < 1:
            raise UserError(f"'inputs' value '{text}': integer bound '{high_text}' must be a positive integer")
        if dtype.is_floating_point or dtype == torch.bool:
            raise UserError(f"'inputs' value '{text}': a bound is only meaningful for integer dtypes")
        high = int(high_text)
    return InputSpec(text.strip(), tuple(dims), dtype, high)


def parse_args(items: list[str]) -> dict[str, Any]:
    """--arg key=value pairs; values are Python literals where they parse, else strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UserError(f"'args' value '{item}' must look like NAME=VALUE")
        try:
            out[key] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key] = value.strip()
    return out


@dataclass
class ResolvedModel:
    """A model ready to run, with the inputs and symbol values it comes with by default."""

    spec: str
    model: nn.Module
    inputs: list[InputSpec] = field(default_factory=list)
    defaults: dict[str, int] = field(default_factory=dict)


def _import_file(path_text: str) -> Any:
    path = Path(path_text)
    if not path.is_file():
        raise UserError(f"model file {path_text}: not found")
    name = f"_fastslow_user_{abs(hash(path.resolve()))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"model file {path_text}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's file may raise anything while importing
        del sys.modules[name]
        raise UserError(f"model file {path_text}: import failed: {one_line(e)}") from e
    return module


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        raise UserError(f"model module '{name}': not importable ({e})") from e
    except Exception as e:
        raise UserError(f"model module '{name}': import failed: {one_line(e)}") from e


def build_module(spec: str, target: Any, args: dict[str, Any]) -> nn.Module:
    """`target` (a module instance, a class or a factory) built with `args`, as an nn.Module."""
    if isinstance(target, nn.Module):
        if args:
            raise UserError(f"model '{spec}' is a module instance; it takes no constructor arguments")
        return target
    if not callable(target):
        raise UserError(f"model '{spec}' is a {type(target).__name__}, not a class or factory")
    try:
        model = target(**args)
    except TypeError as e:
        raise UserError(f"model '{spec}': constructor rejected arguments {args}: {e}") from e
    except Exception as e:
        raise UserError(f"model '{spec}': construction failed: {one_line(e)}") from e
    if not isinstance(model, nn.Module):
        raise UserError(f"model '{spec}' returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_torch_file(path: str | Path, what: str = "weights file") -> Any:
    """torch.load with weights_only=True, every failure a UserError that names the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path}: not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, pickled code, a different format ...
        raise UserError(f"{what} {path}: cannot be loaded: {one_line(e)}") from e


def load_weights(model: nn.Module, path_text: str) -> None:
    """Load a state dict saved with torch.save (plain, or under 'state_dict' / 'model')."""
    state = load_torch_file(path_text)
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise UserError(f"weights file {path_text}: holds a {type(state).__name__}, not a state dict")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches raise even with strict=False
        detail = next((ln.strip() for ln in str(e).splitlines() if "mismatch" in ln), one_line(e))
        raise UserError(f"weights file {path_text}: does not fit the model: {detail}") from e
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"missing keys {result.missing_keys[:5]}")
        if result.unexpected_keys:
            parts.append(f"unexpected keys {result.unexpected_keys[:5]}")
        raise UserError(f"weights file {path_text}: does not fit the model: {'; '.join(parts)}")


def resolve_callable(spec: str, *, what: str) -> Any:
    """The object named by 'path/file.py:attr' or 'package.module:attr'."""
    owner_text, sep, attr = spec.rpartition(":")
    if not sep or not owner_text or not attr:
        raise UserError(f"{what} '{spec}' must be path/to/file.py:name or package.module:name")
    is_file = owner_text.endswith(".py") or "/" in owner_text
    owner = _import_file(owner_text) if is_file else _import_module(owner_text)
    if not hasattr(owner, attr):
        public = sorted(n for n in vars(owner) if not n.startswith("_"))[:20]
        raise UserError(f"{what} '{spec}': {owner_text} has no attribute '{attr}' (it has: {', '.join(public)})")
    return getattr(owner, attr)
