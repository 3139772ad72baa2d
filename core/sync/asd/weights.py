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
    try:
        return freeze_visual(load_checkpoint(path, resolve_device(device)))
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ModelCorruptError(f"{path} is not a Light-ASD checkpoint ({exc}).") from exc
