"""Face backends by name, for settings and the command line: "dlib" (the offline default) or "fan"."""
from __future__ import annotations

import os

from ..errors import ModelError, ModelMissingError
from .detect import DlibBackend, default_backend
from .fan import FanBackend


def get_backend(kind: str = "dlib", *, fan_weights=None, device: str = "cpu", **kwargs):
    """A face backend by name, for settings/CLI: "dlib" (default, offline) or "fan" (needs the user's weight
    folder: `fan_weights`, else $LIPDUB_FAN_DIR; see core.faces.fan). Extra kwargs go to the backend."""
    kind = (kind or "dlib").lower()
    if kind == "dlib":
        return default_backend() if not kwargs else DlibBackend(**kwargs)
    if kind == "fan":
        folder = fan_weights or os.environ.get("LIPDUB_FAN_DIR")
        if not folder and not kwargs.get("fan_path"):
            raise ModelMissingError("The FAN face backend needs its weight files: choose the folder holding "
                                    "2DFAN4-*.pth.tar and s3fd-*.pth (or set LIPDUB_FAN_DIR).")
        return FanBackend(folder, device=device, **kwargs)
    raise ModelError(f"Unknown face backend {kind!r}: use 'dlib' or 'fan'.")
