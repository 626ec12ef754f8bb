"""Resolvers for models from other libraries: `timm:NAME` and `torchvision:NAME`, with random
weights (nothing is downloaded). Their packages are optional: `pip install fastslow[models]`."""

from __future__ import annotations

import difflib
import importlib
from typing import Any

import torch

from fastslow.errors import UserError
from fastslow.specs import ResolvedModel, _build, parse_input, register_resolver

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


@register_resolver("timm")
def _resolve_timm(name: str, args: dict[str, Any]) -> ResolvedModel:
    timm = import_optional("timm")
    known = timm.list_models()
    if name not in known:
        raise _unknown("timm", name, known)
    model = _build(f"timm:{name}", lambda **kw: timm.create_model(name, pretrained=False, **kw), args)
    c, h, w = model.pretrained_cfg.get("input_size", (3, 224, 224))
    return ResolvedModel(f"timm:{name}", model, [parse_input(f"Bx{c}x{h}x{w}")], {"B": 1})


@register_resolver("torchvision")
def _resolve_torchvision(name: str, args: dict[str, Any]) -> ResolvedModel:
    tv = import_optional("torchvision")
    known = tv.models.list_models()
    if name not in known:
        raise _unknown("torchvision", name, known)
    model = _build(f"torchvision:{name}", lambda **kw: tv.models.get_model(name, weights=None, **kw), args)
    size = 299 if name == "inception_v3" else 224
    return ResolvedModel(f"torchvision:{name}", model, [parse_input(f"Bx3x{size}x{size}")], {"B": 1})
