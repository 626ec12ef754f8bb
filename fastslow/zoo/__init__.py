"""The built-in model registry: `register_model`, `create_model`, `list_models`.

Each entry carries the inputs it expects (with symbols) and default symbol values, so that
`fastslow bench zoo:NAME` runs with nothing else given.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from fastslow.errors import UserError


@dataclass(frozen=True)
class ZooEntry:
    name: str
    factory: Callable[..., nn.Module]
    inputs: tuple[str, ...]
    defaults: dict[str, int] = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, ZooEntry] = {}


def register_model(
    name: str, *, inputs: tuple[str, ...], defaults: dict[str, int] | None = None,
    description: str = "",
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"zoo model '{name}' is registered twice")
        doc = description or (factory.__doc__ or "").strip().splitlines()[0]
        _REGISTRY[name] = ZooEntry(name, factory, inputs, dict(defaults or {}), doc)
        return factory
    return wrap


def _load_builtin() -> None:
    from fastslow.tasks import digits as _digits  # noqa: F401  (registers on import)
    from fastslow.tasks.life import models as _life  # noqa: F401
    from fastslow.tasks.xor import model as _xor  # noqa: F401
    from fastslow.zoo import models  # noqa: F401


def list_models(pattern: str = "*") -> list[str]:
    _load_builtin()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_entry(name: str) -> ZooEntry:
    _load_builtin()
    if name not in _REGISTRY:
        raise UserError(f"zoo:{name}: no such model (known: {', '.join(list_models())})")
    return _REGISTRY[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    return get_entry(name).factory(**kwargs)
