"""Throw-away files of one window (quick renders, the live voice), removed when the window closes."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Optional


class ScratchFiles:
    def __init__(self):
        self._dir: Optional[tempfile.TemporaryDirectory] = None

    @property
    def folder(self) -> str:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="lipdub_preview_")
        return self._dir.name

    def file(self, stem: str, suffix: str = ".mp4") -> Path:
        """A unique path in the folder."""
        return Path(self.folder) / f"{stem}_{int(time.time() * 1000)}{suffix}"

    def cleanup(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
