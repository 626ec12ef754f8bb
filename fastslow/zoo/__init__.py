"""Where models come from: the built-in registry (`register_model`, `create_model`,
`list_models`) and `resolve_model`, which turns any spec (zoo:, timm:, torchvision:,
file.py:Attr, package.module:attr) into a module with its example inputs.

Each zoo entry carries the inputs it expects (with symbols) and default symbol values, so
that `fastslow bench zoo:NAME` runs with nothing else given. The zoo is a leaf of the
package: it imports no task, optimization or command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from fastslow.registry import Registry


@dataclass(frozen=True)
class ZooEntry:
    name: str
    factory: Callable[..., nn.Module]
    inputs: tuple[str, ...]
    defaults: dict[str, int] = field(default_factory=dict)
    description: str = ""


MODELS: Registry[ZooEntry] = Registry("zoo model")


def register_model(
    name: str, *, inputs: tuple[str, ...], defaults: dict[str, int] | None = None,
    description: str = "",
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        doc = description or (factory.__doc__ or "").strip().splitlines()[0]
        MODELS.add(name, ZooEntry(name, factory, inputs, dict(defaults or {}), doc))
        return factory
    return wrap


def _load_builtin() -> None:
    from fastslow.zoo import life, models  # noqa: F401  (register on import)


def list_models(pattern: str = "*") -> list[str]:
    _load_builtin()
    return sorted(MODELS.names(pattern))


def get_entry(name: str) -> ZooEntry:
    _load_builtin()
    return MODELS.get(name)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    return get_entry(name).factory(**kwargs)


def resolve_model(spec: str, args: dict[str, Any] | None = None, weights: str | None = None) -> Any:
    """A spec string as a `ResolvedModel` in eval mode, on CPU (see fastslow.zoo.resolvers)."""
    from fastslow.zoo.resolvers import resolve_model as resolve

    return resolve(spec, args, weights)
