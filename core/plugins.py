"""Finding plug-ins: the modules of a package that define a `PLUGIN` (engines, scorers)."""
from __future__ import annotations

import importlib
import pkgutil
from typing import List


def discover(package: str, kind: type, packages_only: bool = False) -> List:
    """The `PLUGIN` objects of type `kind` defined by the sub-modules of `package` (each imported once)."""
    found = []
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if packages_only and not info.ispkg:
            continue
        plugin = getattr(importlib.import_module(f"{package}.{info.name}"), "PLUGIN", None)
        if isinstance(plugin, kind):
            found.append(plugin)
    return found
