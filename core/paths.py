"""Folders the program keeps files of its own in: the user cache and user data folders of one application name.

Nothing is ever written into the install or a fixed machine folder. The cache (face tracks, model hashes, clips
made by the tools) goes to `$LIPDUB_CACHE_DIR` when set (tests and CI point it at a temporary folder), else the
platform's user cache folder (`~/.cache/LipDubStudio` on Linux)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

APP_NAME = "LipDubStudio"
ENV_CACHE_DIR = "LIPDUB_CACHE_DIR"


def user_cache_dir(*parts: str, override: Optional[Union[str, Path]] = None) -> Path:
    """`override` (a command-line option) > $LIPDUB_CACHE_DIR > platformdirs' user cache dir, joined with `parts`.
    The folder is not created."""
    if override:
        base = Path(override).expanduser()
    elif os.environ.get(ENV_CACHE_DIR):
        base = Path(os.environ[ENV_CACHE_DIR]).expanduser()
    else:
        import platformdirs

        base = Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    return base.joinpath(*parts)


def user_data_dir(*parts: str) -> Path:
    """platformdirs' user data dir of the application (`~/.local/share/LipDubStudio` on Linux), joined with
    `parts`. Not created."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)).joinpath(*parts)
