"""Engines as plug-ins: the one registry the pipeline, project file, CLI, batch, settings dialog and benchmark read.

An engine is one package `core/engines/<name>/` whose `__init__.py` defines `PLUGIN = EnginePlugin(...)`:
its typed options dataclass, a factory that imports the engine itself lazily, its command-line arguments, the
model files it loads (shipped ones by name; the specs, licence and size of files the user supplies) and a declarative
description of its settings (`OptionField`s, plain data rendered by the app's settings dialog). Packages are
discovered on first use; `register()` adds an engine defined anywhere else (a test, an extension).

Options travel as `{engine name: options dataclass}` (`DubSettings.engine_options`, `Project.engine_options`);
an engine without an entry runs with its dataclass defaults. In JSON, options are their dataclass fields;
fields with `metadata={"persist": False}` (e.g. arrays handed in by code) are neither saved nor loaded.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Callable, List, Mapping, Optional, Tuple, Union

from ..errors import LipDubError
from ..models.registry import ModelSpec, declare
from ..plugins import PluginRegistry
from .base import Engine

DEFAULT_ENGINE = "classic"
FIELD_KINDS = ("float", "int", "bool", "choice", "model")


@dataclass(frozen=True)
class OptionField:
    """One engine option as the settings dialog shows it (plain data: the dialog renders it)."""

    name: str                                   # attribute of the engine's options dataclass
    label: str
    kind: str                                   # one of FIELD_KINDS
    minimum: float = 0.0                        # float / int
    maximum: float = 1.0
    step: float = 1.0
    choices: Tuple[Tuple[str, str], ...] = ()   # choice: (value, text)
    model_kinds: Tuple[str, ...] = ()           # model: registry kinds offered (a registry name, or a file)
    tip: str = ""


def _no_arguments(group) -> None:
    pass


def _unchanged(args, options):
    return options


@dataclass(frozen=True)
class EnginePlugin:
    name: str
    label: str                                  # short name for menus ("Classic")
    title: str                                  # one line for the settings dialog
    options: type                               # options dataclass; its defaults are the engine's defaults
    create: Callable[..., Engine]               # create(options, *, models_dir, device) -> Engine
    # argparse: add this engine's options (default None = "not given") / the options with the given ones applied
    # (the same object when none was given)
    add_arguments: Callable[[Any], None] = _no_arguments
    options_from_args: Callable[[argparse.Namespace, Any], Any] = _unchanged
    # the model files it may load: a shipped model's name (described by its card in resources/models), or the
    # spec of a file the user supplies (its source, licence and size: declared to core.models.registry)
    models: Tuple[Union[str, ModelSpec], ...] = ()
    # engines driven by the audio -> mouth model (which core.adapt fits to each clip first): the model file their
    # options name (None: the shipped one); None for the others
    mouth_model: Optional[Callable[[Any], Optional[str]]] = None
    fields: Tuple[OptionField, ...] = ()        # what the settings dialog shows

    @property
    def model_names(self) -> Tuple[str, ...]:
        return tuple(m.name if isinstance(m, ModelSpec) else m for m in self.models)


def _declare_models(plugin: EnginePlugin) -> None:
    declare(*(m for m in plugin.models if isinstance(m, ModelSpec)))


_REGISTRY = PluginRegistry(__package__, EnginePlugin, "engine", packages_only=True, on_add=_declare_models)
unregister = _REGISTRY.unregister


def register(plugin: EnginePlugin) -> EnginePlugin:
    """Add an engine. A name already taken by another engine is an error."""
    if not is_dataclass(plugin.options):
        raise TypeError(f"The options of engine {plugin.name!r} must be a dataclass.")
    return _REGISTRY.register(plugin)


def plugins() -> List[EnginePlugin]:
    """Every engine, the default first."""
    return sorted(_REGISTRY.all(), key=lambda p: p.name != DEFAULT_ENGINE)


def names() -> List[str]:
    return [p.name for p in plugins()]


def get(name: str) -> EnginePlugin:
    plugin = _REGISTRY.find(str(name).lower())
    if plugin is None:
        raise LipDubError(f"Unknown engine '{name}': choose one of {', '.join(names())}.")
    return plugin


def options_for(name: str, engine_options: Optional[Mapping[str, Any]] = None):
    """The options engine `name` runs with: the given ones, else its defaults."""
    plugin = get(name)
    opts = (engine_options or {}).get(plugin.name)
    if opts is None:
        return plugin.options()
    if not isinstance(opts, plugin.options):
        raise LipDubError(f"The options of engine {plugin.name!r} must be a {plugin.options.__name__}, "
                          f"not a {type(opts).__name__}.")
    return opts


def create(name: str, engine_options: Optional[Mapping[str, Any]] = None, *, models_dir: Optional[str] = None,
           device: str = "cpu") -> Engine:
    plugin = get(name)
    return plugin.create(options_for(name, engine_options), models_dir=models_dir, device=device)


# --------------------------------------------------------------------------------------------- JSON
def _persisted(options_type) -> list:
    return [f for f in fields(options_type) if f.metadata.get("persist", True)]


def options_to_json(options) -> dict:
    return {f.name: getattr(options, f.name) for f in _persisted(type(options))}


def _check_value(value, default, where: str):
    """A JSON value of the same type as the field's default (None default: text or null)."""
    if default is None:
        ok = value is None or isinstance(value, str)
    elif isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ValueError(f"'{where}' must be {type(default).__name__ if default is not None else 'text or null'}")
    return value


def options_from_json(name: str, doc: Any):
    """Options of engine `name` from their JSON object (missing fields: defaults). ValueError says what is wrong."""
    plugin = get(name)
    if not isinstance(doc, dict):
        raise ValueError(f"'engine_options.{name}' must be an object")
    defaults = plugin.options()
    kw = {}
    for f in _persisted(plugin.options):
        if f.name in doc:
            kw[f.name] = _check_value(doc[f.name], getattr(defaults, f.name), f"engine_options.{name}.{f.name}")
    return plugin.options(**kw)


# --------------------------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--engine` and every engine's own options, one argument group per engine."""
    parser.add_argument("--engine", choices=names(), help=f"lip-sync engine (default {DEFAULT_ENGINE})")
    for plugin in plugins():
        plugin.add_arguments(parser.add_argument_group(f"{plugin.name} engine", plugin.title))


def options_from_args(args: argparse.Namespace, engine_options: Optional[Mapping[str, Any]] = None) -> dict:
    """`engine_options` with every option given on the command line applied (the others kept)."""
    out = dict(engine_options or {})
    for plugin in plugins():
        before = options_for(plugin.name, out)
        after = plugin.options_from_args(args, before)
        if after is not before:
            out[plugin.name] = after
    return out
