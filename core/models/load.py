"""Loading the official Wav2Lip and syncnet_python networks from their checkpoint files.

    load_wav2lip(path, device="cpu")  -> Wav2Lip, eval mode; forward(audio_sequences, face_sequences)
    load_syncnet(path, device="cpu")  -> SyncNetColor (forward(mel, face) -> (audio_emb, face_emb)) or
                                         SyncNetV2 (forward_aud / forward_lip), chosen from the file's layout

Paths are files; to go from a model *name* to a file use `core.models.registry.resolve_model`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import torch

from ..errors import ModelCorruptError
from .checkpoint import LAYOUT_TITLES, detect_layout, load_into, read_state_dict
from .syncnet import SyncNetV2
from .wav2lip import SyncNetColor, Wav2Lip, Wav2LipDiscQual

PathLike = Union[str, Path]

_CLASSES = {"wav2lip": Wav2Lip, "syncnet_color": SyncNetColor, "syncnet_v2": SyncNetV2,
            "wav2lip_disc_qual": Wav2LipDiscQual}


def _finish(model: torch.nn.Module, layout: str, path: PathLike, device: str) -> torch.nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.layout = layout  # type: ignore[attr-defined]
    model.source_path = str(path)  # type: ignore[attr-defined]
    return model.to(device)


def _wrong(path: PathLike, found: str | None, wanted: str) -> ModelCorruptError:
    what = LAYOUT_TITLES.get(found, "an unknown network") if found else "an unknown network"
    return ModelCorruptError(f"{path} holds {what}, not a {wanted}: choose the right model file.")


def load_model(path: PathLike, layout: str, device: str = "cpu") -> torch.nn.Module:
    """Load a checkpoint of the given layout ('wav2lip', 'syncnet_color', 'syncnet_v2', 'wav2lip_disc_qual')."""
    state = read_state_dict(path)
    found = detect_layout(state)
    if found is not None and found != layout:
        raise _wrong(path, found, LAYOUT_TITLES[layout])
    model = load_into(_CLASSES[layout](), state, path, LAYOUT_TITLES[layout])
    return _finish(model, layout, path, device)


def load_wav2lip(path: PathLike, device: str = "cpu") -> Wav2Lip:
    """The Wav2Lip generator from wav2lip.pth / wav2lip_gan.pth (or any file in that format)."""
    return load_model(path, "wav2lip", device)  # type: ignore[return-value]


def load_syncnet(path: PathLike, device: str = "cpu") -> torch.nn.Module:
    """A SyncNet: Wav2Lip's lipsync_expert.pth (SyncNetColor) or syncnet_python's syncnet_v2.model (SyncNetV2)."""
    state = read_state_dict(path)
    layout = detect_layout(state)
    if layout not in ("syncnet_color", "syncnet_v2"):
        raise _wrong(path, layout, "SyncNet (lipsync_expert.pth or syncnet_v2.model)")
    model = load_into(_CLASSES[layout](), state, path, LAYOUT_TITLES[layout])
    return _finish(model, layout, path, device)


__all__ = ["load_wav2lip", "load_syncnet", "load_model", "read_state_dict", "detect_layout",
           "Wav2Lip", "SyncNetColor", "SyncNetV2", "Wav2LipDiscQual"]
