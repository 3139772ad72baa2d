"""Every model file the app knows: the shipped ones (`resources/models`) and the user-supplied files the engine and
scorer plug-ins declare (which are known once their registries have discovered them: this module makes sure)."""
from __future__ import annotations

from typing import Dict, List

from .engines import registry as engines
from .models.registry import REGISTRY, ModelSpec
from .sync.scorers import registry as scorers


def known_models() -> Dict[str, ModelSpec]:
    """Name -> spec of every model file, plug-ins' included."""
    engines.plugins()
    scorers.plugins()
    return dict(REGISTRY)


def users_of(name: str) -> List[str]:
    """What loads model `name`: "engine classic", "scorer syncnet_v2", ..."""
    return ([f"engine {p.name}" for p in engines.plugins() if name in p.model_names]
            + [f"scorer {p.name}" for p in scorers.plugins() if p.model_name == name])
