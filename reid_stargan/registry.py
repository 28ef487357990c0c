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

    def register(self, name: str) -> Callable[[Any], Any]:
        def decorator(obj: Any) -> Any:
            if name in self._items:
                raise KeyError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> Any:
        if name not in self._items:
            raise KeyError(f"unknown {self.kind} '{name}'; valid: {', '.join(sorted(self._items))}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)
