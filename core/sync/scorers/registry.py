"""Scorers as plug-ins: one registry; `get_scorer(name_or_path)` picks a scorer by name or by a model file's layout.

Each scorer module in `core/sync/scorers/` defines `PLUGIN = ScorerPlugin(...)`: the name `--scorer` accepts, the
weights it loads (a shipped model's name, or the spec of the file the user supplies, declared to
`core.models.registry`, where the one SHA-256 / size check happens), the checkpoint layouts
(`core.models.checkpoint`) it recognises in a file, and a loader. Modules are discovered on first use;
`register()` adds one defined elsewhere. torch is only imported when a scorer is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple, Union

from ...device import AUTO, resolve_device
from ...errors import ModelCorruptError, ModelMissingError
from ...models.registry import ModelSpec, declare
from ...plugins import PluginRegistry
from .base import SyncScorer

AUTO_SCORER = "auto"


@dataclass(frozen=True)
class ScorerPlugin:
    name: str                                   # what `score --scorer` accepts
    model: Union[str, ModelSpec]                # its weights: a shipped model's name, or the spec of a user's file
    load: Callable[[Path, str], SyncScorer]     # (verified model file, device) -> scorer
    layouts: Tuple[str, ...] = ()               # checkpoint layouts of its files (core.models.checkpoint)
    aliases: Tuple[str, ...] = ()
    auto_rank: Optional[int] = None             # "auto": the lowest rank whose model file is present
    other_files: bool = False                   # takes files of no known layout (our own format)

    @property
    def model_name(self) -> str:
        return self.model.name if isinstance(self.model, ModelSpec) else self.model


def network_loader(scorer_class, layout: str) -> Callable[[Path, str], SyncScorer]:
    """The loader of a scorer wrapping one official network of checkpoint `layout` (strictly that layout)."""
    def load(path: Path, device: str) -> SyncScorer:
        from ...models.load import load_model

        return scorer_class(load_model(path, layout, device), device=device)

    return load


def _declare_model(plugin: ScorerPlugin) -> None:
    if isinstance(plugin.model, ModelSpec):
        declare(plugin.model)


_REGISTRY = PluginRegistry(__package__, ScorerPlugin, "scorer", on_add=_declare_model)
register, unregister, plugins = _REGISTRY.register, _REGISTRY.unregister, _REGISTRY.all


def names() -> List[str]:
    return [AUTO_SCORER] + [p.name for p in plugins()]


def find(name: str) -> Optional[ScorerPlugin]:
    return next((p for p in plugins() if name == p.name or name in p.aliases), None)


def _auto(models_dir) -> ScorerPlugin:
    from ...models.registry import is_available

    ranked = sorted((p for p in plugins() if p.auto_rank is not None), key=lambda p: p.auto_rank)
    for plugin in ranked:
        if is_available(plugin.model_name, models_dir):
            return plugin
    raise ModelMissingError("No sync scorer model is available: reinstall LipDub Studio (it ships one).")


def get_scorer(name_or_path: Union[str, Path] = AUTO_SCORER, models_dir=None, device: str = AUTO) -> SyncScorer:
    """'auto' (the best scorer whose model file is present: syncnet_v2 if you supplied it, else the shipped lite
    scorer), a scorer name, or a model file, whose layout says which scorer loads it."""
    from ...models.checkpoint import LAYOUT_TITLES, detect_layout, read_state_dict
    from ...models.registry import get_spec, resolve_model

    device = resolve_device(device)
    if not isinstance(name_or_path, Path):
        name = str(name_or_path)
        plugin = _auto(models_dir) if name == AUTO_SCORER else find(name)
        if plugin is not None:
            return plugin.load(resolve_model(plugin.model_name, models_dir=models_dir), device)
        if get_spec(name) is not None:
            raise ModelMissingError(f"'{name}' is not a sync scorer: use {', '.join(names())} "
                                    f"or the path of a scorer model file.")
    path = resolve_model(name_or_path, models_dir=models_dir)
    try:
        layout = detect_layout(read_state_dict(path))
    except ModelCorruptError:
        layout = None
    plugin = next((p for p in plugins() if layout in p.layouts), None) if layout is not None else \
        next((p for p in plugins() if p.other_files), None)
    if plugin is None:
        what = LAYOUT_TITLES.get(layout, "an unknown network")
        raise ModelCorruptError(f"{path} holds a {what}, not a sync scorer: choose syncnet_v2.model, "
                                f"lipsync_expert.pth or a lite scorer file.")
    return plugin.load(path, device)
