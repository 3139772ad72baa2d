"""Plug-in registries (engines, scorers): the plug-ins the modules of a package define, plus registered ones."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Dict, List, Optional

from .errors import LipDubError


class PluginRegistry:
    """Plug-ins of one type by name. The sub-modules of `package` that define a `PLUGIN` of that type are imported
    on first use (only packages when `packages_only`); `register()` adds one defined anywhere else. `on_add` is
    called with every plug-in that joins (to declare what it brings, such as its model files)."""

    def __init__(self, package: str, kind: type, what: str, packages_only: bool = False,
                 on_add: Optional[Callable[[object], None]] = None):
        self.package, self.kind, self.what, self.packages_only = package, kind, what, packages_only
        self.on_add = on_add
        self._plugins: Dict[str, object] = {}
        self._discovered = False

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for info in pkgutil.iter_modules(importlib.import_module(self.package).__path__):
            if self.packages_only and not info.ispkg:
                continue
            plugin = getattr(importlib.import_module(f"{self.package}.{info.name}"), "PLUGIN", None)
            if isinstance(plugin, self.kind) and plugin.name not in self._plugins:
                self._add(plugin)

    def _add(self, plugin) -> None:
        self._plugins[plugin.name] = plugin
        if self.on_add is not None:
            self.on_add(plugin)

    def register(self, plugin):
        """Add a plug-in. A name already taken by another one is an error."""
        self._discover()
        if self._plugins.get(plugin.name, plugin) is not plugin:
            raise LipDubError(f"A {self.what} named {plugin.name!r} is already registered.")
        self._add(plugin)
        return plugin

    def unregister(self, name: str) -> None:
        self._plugins.pop(name, None)

    def find(self, name: str) -> Optional[object]:
        self._discover()
        return self._plugins.get(name)

    def all(self) -> List:
        """Every plug-in, by name."""
        self._discover()
        return sorted(self._plugins.values(), key=lambda p: p.name)
