"""The active-speaker network we ship: Light-ASD's TalkSet checkpoint (`resources/models/light_asd.pt`, the
authors' file unchanged, MIT), loaded through the one model registry (SHA-256 checked) and kept once per process."""
from __future__ import annotations

import functools

from ...device import resolve_device

MODEL_NAME = "light_asd"


@functools.lru_cache(maxsize=4)
def load_asd(device: str = "cpu"):
    """The shipped Light-ASD network (eval mode, its visual encoder frozen for speed: `net.freeze_visual`).
    ModelMissingError / ModelCorruptError if the file is bad."""
    from ...errors import ModelCorruptError
    from ...models.registry import resolve_model
    from .net import freeze_visual, load_checkpoint

    path = resolve_model(MODEL_NAME)
    device = resolve_device(device)
    try:
        return freeze_visual(load_checkpoint(path, device), frozen_cache(device))
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ModelCorruptError(f"{path} is not a Light-ASD checkpoint ({exc}).") from exc


def frozen_cache(device: str):
    """Where the frozen visual encoder of the shipped weights is kept for this torch and device (core.paths)."""
    import torch

    from ...models.registry import get_spec
    from ...paths import user_cache_dir
    from .net import FROZEN_VERSION

    sha = (getattr(get_spec(MODEL_NAME), "sha256", None) or "unknown")[:16]
    tag = f"torch{torch.__version__}-{device}".replace(":", "-")
    return user_cache_dir("models", f"{MODEL_NAME}-visual{FROZEN_VERSION}-{sha}-{tag}.pt")
