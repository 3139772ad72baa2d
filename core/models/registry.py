"""Declarative registry of the model files the app knows, where they live and how they are checked.

Two kinds of entry:
- *user-supplied* official weights (never shipped, never downloaded by us): the user puts them in the models folder,
  `models_dir()`: the `--models-dir` flag > `$LIPDUB_MODELS_DIR` > `<platformdirs user data dir>/LipDubStudio/models`;
- *shipped* models: discovered from `resources/models/*.json` (`{"name", "file", "sha256", "kind", "licence",
  "source", "metrics"}`), stored beside their JSON and always SHA-256-verified.

`resolve_model(name_or_path)` turns a name (or a direct file path) into a verified path, or raises
ModelMissingError / ModelCorruptError with one actionable line. Hashes of verified files are cached by
(path, size, mtime) in the user cache dir, so a 400 MB checkpoint is hashed once, not on every start.

User-supplied files are declared by the plug-ins that load them (`core/engines/wav2lip`, `core/sync/scorers/*`) through
`declare()`, when their registry discovers them (`core.model_catalog` lists everything). No SHA-256 is published by
the Wav2Lip or syncnet_python authors; those entries have `sha256=None` and are checked by size here (a truncated
download is caught) and by layout when loaded (`core.models.load_*`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Union

from ..atomic import atomic_write
from ..errors import ModelCorruptError, ModelMissingError
from ..paths import user_cache_dir, user_data_dir

log = logging.getLogger(__name__)

ENV_MODELS_DIR = "LIPDUB_MODELS_DIR"

@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
    kind: str                      # "wav2lip" | "syncnet_color" | "syncnet_v2" | shipped kinds ("mouth_shape", ...)
    sha256: Optional[str]
    source: str                    # where the file comes from, as text for the user
    licence: str
    shipped: bool
    title: str = ""
    min_bytes: int = 0             # float32 weights alone take this much; smaller = truncated download
    metrics: Optional[dict] = field(default=None, compare=False, hash=False)

    def describe(self) -> str:
        return self.title or self.name


_DECLARED: Dict[str, ModelSpec] = {}    # user-supplied files, declared by the engine and scorer plug-ins


def declare(*specs: ModelSpec) -> None:
    """Add the model files a plug-in may load that are not shipped (their source, licence and size live with the
    plug-in that loads them)."""
    for spec in specs:
        _DECLARED[spec.name] = spec
        if not (spec.name in REGISTRY and REGISTRY[spec.name].shipped):
            REGISTRY[spec.name] = spec


def resources_dir() -> Path:
    """The app's `resources/` folder (inside the PyInstaller bundle when frozen)."""
    base = getattr(sys, "_MEIPASS", None)
    if base:
        return Path(base) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def shipped_models_dir() -> Path:
    return resources_dir() / "models"


def _spec_from_json(meta: Path) -> ModelSpec:
    """A shipped model's description (`NAME.json` beside its weights); OSError/ValueError/KeyError/TypeError if bad."""
    d = json.loads(meta.read_text(encoding="utf-8"))
    return ModelSpec(name=str(d["name"]), filename=str(d["file"]), kind=str(d.get("kind", "")),
                     sha256=(str(d["sha256"]).lower() if d.get("sha256") else None),
                     source=str(d.get("source", "shipped with LipDub Studio")),
                     licence=str(d.get("licence", "")), shipped=True,
                     title=str(d.get("title", d["name"])), metrics=d.get("metrics"))


def _scan_shipped(folder: Path) -> Dict[str, ModelSpec]:
    specs: Dict[str, ModelSpec] = {}
    if not folder.is_dir():
        return specs
    for meta in sorted(folder.glob("*.json")):
        try:
            spec = _spec_from_json(meta)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("Ignoring unreadable shipped model description %s: %s", meta, exc)
            continue
        specs[spec.name] = spec
    return specs


def build_registry(shipped_folder: Optional[Path] = None) -> Dict[str, ModelSpec]:
    reg = dict(_DECLARED)
    for name, spec in _scan_shipped(shipped_folder or shipped_models_dir()).items():
        if name in reg and not reg[name].shipped:
            log.warning("Shipped model %s shadows a plug-in's model file; keeping the plug-in's.", name)
            continue
        reg[name] = spec
    return reg


REGISTRY: Dict[str, ModelSpec] = build_registry()


def refresh_registry() -> Dict[str, ModelSpec]:
    """Rescan resources/models (in place, so `from registry import REGISTRY` stays valid)."""
    new = build_registry()
    REGISTRY.clear()
    REGISTRY.update(new)
    return REGISTRY


def get_spec(name: str) -> Optional[ModelSpec]:
    spec = REGISTRY.get(name)
    if spec is None:
        spec = refresh_registry().get(name)
    return spec


def models_dir(override: Union[str, Path, None] = None) -> Path:
    """Where user-supplied model files go: `override` (CLI flag) > $LIPDUB_MODELS_DIR > user data dir/models."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ENV_MODELS_DIR)
    if env:
        return Path(env).expanduser()
    return user_data_dir("models")


_default_models_dir = models_dir  # resolve_model's `models_dir` parameter shadows the function


# --------------------------------------------------------------------------------------------- hashing + cache
_cache_lock = threading.Lock()
_mem_cache: Dict[str, dict] = {}


def hash_cache_file() -> Path:
    return user_cache_dir("model_hashes.json")


def sha256_file(path: Union[str, Path], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _load_disk_cache(file: Path) -> Dict[str, dict]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_disk_cache(file: Path, data: Dict[str, dict]) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(file) as fh:
            json.dump(data, fh, indent=0)
    except OSError as exc:  # a read-only cache only costs time
        log.debug("Could not write the model hash cache %s: %s", file, exc)


def cached_sha256(path: Union[str, Path]) -> str:
    """SHA-256 of a file, reusing a cached value while the file's (resolved path, size, mtime_ns) are unchanged."""
    p = Path(path).resolve()
    st = p.stat()
    key = str(p)
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    cache_file = hash_cache_file()
    with _cache_lock:
        hit = _mem_cache.get(key)
        if hit is None:
            hit = _load_disk_cache(cache_file).get(key)
        if hit and hit.get("size") == stamp["size"] and hit.get("mtime_ns") == stamp["mtime_ns"] and hit.get("sha256"):
            _mem_cache[key] = hit
            return str(hit["sha256"])
    digest = sha256_file(p)  # outside the lock: may take seconds
    entry = dict(stamp, sha256=digest)
    with _cache_lock:
        _mem_cache[key] = entry
        data = _load_disk_cache(cache_file)
        data[key] = entry
        _save_disk_cache(cache_file, data)
    return digest


def clear_hash_cache() -> None:
    with _cache_lock:
        _mem_cache.clear()


# --------------------------------------------------------------------------------------------- resolving
def _where_from(spec: ModelSpec) -> str:
    return f"get it from {spec.source}" + (" (non-commercial research licence)" if "non-commercial" in spec.licence
                                           else "")


def verify_file(path: Path, spec: ModelSpec) -> None:
    """SHA-256 (when known) else minimum size; ModelCorruptError on mismatch."""
    if spec.sha256:
        digest = cached_sha256(path)
        if digest.lower() != spec.sha256.lower():
            fix = ("reinstall LipDub Studio" if spec.shipped else f"download it again ({_where_from(spec)})")
            raise ModelCorruptError(
                f"{path} is corrupt or not the expected {spec.describe()} file (SHA-256 {digest[:12]}..., "
                f"expected {spec.sha256[:12]}...): {fix}.")
        return
    size = path.stat().st_size
    if spec.min_bytes and size < spec.min_bytes:
        raise ModelCorruptError(
            f"{path} is only {size / 1e6:.1f} MB, but the {spec.describe()} needs at least "
            f"{spec.min_bytes / 1e6:.1f} MB: the download is incomplete; {_where_from(spec)}.")


def _spec_for_file(path: Path) -> Optional[ModelSpec]:
    """What a direct file path must match: the description beside it (`NAME.json`, as shipped models and copies
    of them carry), else the user-supplied registry entry of the same file name."""
    meta = path.with_suffix(".json")
    if meta.is_file():
        try:
            return _spec_from_json(meta)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelCorruptError(f"{meta} (the description of {path.name}) is unreadable ({exc}).") from exc
    for spec in REGISTRY.values():
        if not spec.shipped and spec.filename == path.name:
            return spec
    return None


def resolve_model(name_or_path: Union[str, Path], models_dir: Union[str, Path, None] = None,
                  verify: bool = True) -> Path:
    """Registry name or file path -> existing, verified file path.

    This is the one place model files are checked. Shipped models are always verified (SHA-256, cached). A direct
    path is verified against the `NAME.json` description beside it (a copy of a shipped model) or else against
    the registry entry of the same file name (e.g. `.../wav2lip.pth`); other paths are only checked to exist
    (their layout is checked when loaded).
    """
    folder_override = models_dir
    name = str(name_or_path)
    spec = get_spec(name) if not isinstance(name_or_path, Path) else None
    if spec is not None:
        if spec.shipped:
            path = shipped_models_dir() / spec.filename
            if not path.is_file():
                raise ModelMissingError(f"The shipped model file {spec.filename} ({spec.describe()}) is missing from "
                                        f"{path.parent}: reinstall LipDub Studio.")
            verify_file(path, spec)
            return path
        folder = _default_models_dir(folder_override)
        path = folder / spec.filename
        if not path.is_file():
            raise ModelMissingError(
                f"Model file {spec.filename} ({spec.describe()}) not found in {folder}: {_where_from(spec)}, "
                f"and put it in that folder (or choose another folder with --models-dir / ${ENV_MODELS_DIR}).")
        if verify:
            verify_file(path, spec)
        return path
    path = Path(name).expanduser()
    if path.is_file():
        if verify:
            guess = _spec_for_file(path)
            if guess is not None:
                verify_file(path, guess)
        return path
    if path.exists():
        raise ModelMissingError(f"{path} is a folder, not a model file: give the path of the file itself.")
    looks_like_path = isinstance(name_or_path, Path) or os.sep in name or "/" in name or path.suffix != ""
    if looks_like_path:
        raise ModelMissingError(f"Model file not found: {path}. Check the path.")
    known = ", ".join(sorted(REGISTRY))
    raise ModelMissingError(f"Unknown model '{name}': use one of {known}, or the path of a model file.")


def is_available(name: str, models_dir: Union[str, Path, None] = None) -> bool:
    """True when the named model's file is present (no hashing; use resolve_model to verify)."""
    spec = get_spec(name)
    if spec is None:
        return False
    folder = shipped_models_dir() if spec.shipped else _default_models_dir(models_dir)
    return (folder / spec.filename).is_file()
