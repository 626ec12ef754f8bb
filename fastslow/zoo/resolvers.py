"""Model specs resolved: `zoo:NAME`, `timm:NAME` and `torchvision:NAME` (random weights, nothing
is downloaded; their packages are optional: `pip install fastslow[models]`), and otherwise
`path/to/file.py:Attr` or `package.module:attr`."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

import torch

from fastslow.errors import UserError
from fastslow.registry import Registry
from fastslow.specs import ResolvedModel, build_module, load_weights, parse_input, resolve_callable

# "PREFIX:rest" specs: PREFIX -> a function of (rest, constructor arguments).
SOURCES: Registry[Callable[[str, dict[str, Any]], ResolvedModel]] = Registry("model source")

_SHIMMED = False


def _declare_torchvision_ops() -> None:
    """Let a torchvision built for CUDA import on a CPU-only torch.

    Its compiled ops library fails to load there, and its Python side then registers fake
    kernels for `torchvision::nms` and `qnms`, which raises "operator does not exist".
    Declaring the two schemas first lets the import finish; the models never call them.
    """
    global _SHIMMED
    if _SHIMMED:
        return
    _SHIMMED = True
    try:
        torch.ops.torchvision.nms  # noqa: B018  (present when torchvision's C++ ops loaded)
        return
    except (AttributeError, RuntimeError):
        pass
    try:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor qdets, Tensor qscores, float iou_threshold) -> Tensor")
        _declare_torchvision_ops.lib = lib  # type: ignore[attr-defined]  (keep it alive)
    except RuntimeError:
        pass  # already declared elsewhere


def import_optional(name: str, extra: str = "models") -> Any:
    _declare_torchvision_ops()
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise UserError(f"{name} is not installed (pip install 'fastslow[{extra}]'): {e}") from None


def _unknown(prefix: str, name: str, known: list[str]) -> UserError:
    close = difflib.get_close_matches(name, known, n=5)
    hint = f"; close: {', '.join(close)}" if close else ""
    return UserError(f"{prefix}:{name}: no such model{hint}")


@SOURCES.register("timm")
def _resolve_timm(name: str, args: dict[str, Any]) -> ResolvedModel:
    timm = import_optional("timm")
    known = timm.list_models()
    if name not in known:
        raise _unknown("timm", name, known)
    model = build_module(f"timm:{name}", lambda **kw: timm.create_model(name, pretrained=False, **kw), args)
    c, h, w = model.pretrained_cfg.get("input_size", (3, 224, 224))
    return ResolvedModel(f"timm:{name}", model, [parse_input(f"Bx{c}x{h}x{w}")], {"B": 1})


@SOURCES.register("torchvision")
def _resolve_torchvision(name: str, args: dict[str, Any]) -> ResolvedModel:
    tv = import_optional("torchvision")
    known = tv.models.list_models()
    if name not in known:
        raise _unknown("torchvision", name, known)
    model = build_module(f"torchvision:{name}", lambda **kw: tv.models.get_model(name, weights=None, **kw), args)
    size = 299 if name == "inception_v3" else 224
    return ResolvedModel(f"torchvision:{name}", model, [parse_input(f"Bx3x{size}x{size}")], {"B": 1})


@SOURCES.register("zoo")
def _resolve_zoo(name: str, args: dict[str, Any]) -> ResolvedModel:
    from fastslow.zoo import get_entry

    entry = get_entry(name)
    model = build_module(f"zoo:{name}", entry.factory, args)
    return ResolvedModel(f"zoo:{name}", model, [parse_input(t) for t in entry.inputs], dict(entry.defaults))


def resolve_model(spec: str, args: dict[str, Any] | None = None, weights: str | None = None) -> ResolvedModel:
    """Turn a spec string into a model in eval mode (on CPU; the caller moves it)."""
    args = args or {}
    prefix, sep, rest = spec.partition(":")
    if not sep or not prefix or not rest:
        raise UserError(f"model spec '{spec}' must be zoo:NAME, path/to/file.py:Attr or package.module:attr")
    if prefix in SOURCES:
        resolved = SOURCES.get(prefix)(rest, args)
    else:
        resolved = ResolvedModel(spec, build_module(spec, resolve_callable(spec, what="model"), args))
    if weights:
        load_weights(resolved.model, weights)
    resolved.model.eval()
    return resolved
