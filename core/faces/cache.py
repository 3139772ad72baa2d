"""Per-clip cache of tracking results (.npz), so a rerun loads instead of detecting.

Key = clip identity (absolute path, size, mtime, SHA-256 of the first and last MB) + tracker settings
(including the backend and its model files) + `CACHE_VERSION`. Any change of those gives a new file.

Folder: the `cache_dir` argument, else `$LIPDUB_CACHE_DIR/tracks`, else the platform user cache folder
(`platformdirs.user_cache_dir("LipDubStudio")/tracks`). Files are written atomically (temp file + rename);
a cache that cannot be read or written is logged and ignored, never an error for the job.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any, Callable, Optional, Union

log = logging.getLogger(__name__)

CACHE_VERSION = 1
_CHUNK = 1 << 20


def default_cache_dir(override: Optional[Union[str, Path]] = None, kind: str = "tracks") -> Path:
    """`override`, else KIND (tracks, adapt) in the user cache folder (core.paths: $LIPDUB_CACHE_DIR or platformdirs)."""
    from ..paths import user_cache_dir

    return Path(override) if override else user_cache_dir(kind)


def clip_identity(path: Union[str, Path]) -> dict:
    """Identity of a media file: absolute path, size, mtime (ns) and a hash of its first and last MB."""
    p = Path(path).resolve()
    st = p.stat()
    h = hashlib.sha256()
    with open(p, "rb") as f:
        h.update(f.read(_CHUNK))
        if st.st_size > _CHUNK:
            f.seek(max(_CHUNK, st.st_size - _CHUNK))
            h.update(f.read(_CHUNK))
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_ends": h.hexdigest()}


def cache_key(path: Union[str, Path], settings: dict) -> str:
    doc = {"clip": clip_identity(path), "settings": settings, "version": CACHE_VERSION}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def cache_file(path: Union[str, Path], settings: dict, cache_dir=None, kind: str = "tracks") -> Path:
    """The file of this clip's KIND result (tracks; adapt: core.adapt) for these settings."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem)[:40] or "clip"
    return default_cache_dir(cache_dir, kind) / f"{stem}-{cache_key(path, settings)[:24]}.npz"


def load(path, settings: dict, read: Callable[[Path], Any], cache_dir=None):
    """The cached result for this clip and settings as `read(file)` gives it (`TrackSet.load`), or None (missing,
    unreadable, or another version)."""
    try:
        f = cache_file(path, settings, cache_dir)
    except OSError as e:
        log.warning("track cache: cannot identify %s: %s", path, e)
        return None
    if not f.is_file():
        return None
    try:
        ts = read(f)
    except Exception as e:  # a damaged cache entry is just a miss
        log.warning("track cache: ignoring unreadable %s (%s)", f, e)
        try:
            f.unlink()
        except OSError:
            pass
        return None
    ts.stats = dict(ts.stats, cache="hit", cache_file=str(f))
    return ts


def store(track_set, path, settings: dict, cache_dir=None) -> Optional[Path]:
    """Save atomically; returns the file, or None when the folder is not writable (logged)."""
    try:
        f = cache_file(path, settings, cache_dir)
        track_set.save(f)
        return f
    except OSError as e:
        log.warning("track cache: could not write for %s: %s", path, e)
        return None
