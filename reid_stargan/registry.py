"""Name -> object registries filled by a decorator (datasets, backbones, losses, ...).

Example::

    BACKBONES = Registry("backbone")

    @BACKBONES.register("resnet50")
    def resnet50(**kwargs): ...

    BACKBONES.get("resnet5")  # KeyError: unknown backbone 'resnet5'; valid: resnet50
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Registry:
    """A small, explicit mapping from a name to a callable or class."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str | None = None) -> Callable[[Any], Any]:
        def decorator(obj: Any) -> Any:
            key = name or obj.__name__
            if key in self._items:
                raise KeyError(f"{self.kind} '{key}' is registered twice")
            self._items[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> Any:
        if name not in self._items:
            raise KeyError(f"unknown {self.kind} '{name}'; valid: {', '.join(sorted(self._items))}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
