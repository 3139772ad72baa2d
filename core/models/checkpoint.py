"""Reading official checkpoint files into flat state dicts, and loading them strictly into our modules.

Formats accepted (see the reference README):
- Wav2Lip's training checkpoints: `{"state_dict": ..., "optimizer": ..., "global_step": ..., "global_epoch": ...}`,
  keys prefixed with `module.` (trained under DataParallel). The prefix is removed the way Wav2Lip's loader does:
  every occurrence of the substring `module.` is deleted (no key of these models contains it otherwise).
- syncnet_python's `syncnet_v2.model`: a flat mapping keyed like the module's state dict.
- A pickled whole `nn.Module` (only via the trusted fallback below): its state dict is used.

Files are read with `torch.load(weights_only=True)`. Only when that refuses the file because it pickles something
other than tensors/containers (e.g. numpy objects in very old files) do we retry with `weights_only=False`, after
a warning that the file is being trusted (unpickling can run code: only do this for files from the official source).
"""
from __future__ import annotations

import logging
import pickle
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Optional, Union

import torch

from ..errors import ModelCorruptError
from .registry import resolve_model

log = logging.getLogger(__name__)

PathLike = Union[str, Path]

# One key that only each known layout has (checked in this order).
LAYOUT_MARKERS = (
    ("wav2lip", "face_decoder_blocks.0.0.conv_block.0.weight"),
    ("wav2lip_disc_qual", "binary_pred.0.weight"),
    ("syncnet_color", "face_encoder.0.conv_block.0.weight"),
    ("syncnet_v2", "netcnnaud.0.weight"),
    ("sync_asd", "video.net.0.weight"),
)
LAYOUT_TITLES = {
    "wav2lip": "Wav2Lip generator",
    "wav2lip_disc_qual": "Wav2Lip visual-quality discriminator",
    "syncnet_color": "Wav2Lip lip-sync expert (SyncNet_color)",
    "syncnet_v2": "syncnet_python SyncNet (syncnet_v2)",
    "sync_asd": "LipDub Studio's face-general sync heads (sync_asd)",
}


def _is_weights_only_refusal(exc: BaseException) -> bool:
    """True when torch refused the file for containing non-tensor globals (not when the file is damaged)."""
    msg = str(exc)
    return isinstance(exc, pickle.UnpicklingError) and ("Unsupported global" in msg or "Unsupported class" in msg
                                                         or "not an allowed global" in msg)


def _short_reason(exc: BaseException) -> str:
    msg = str(exc)
    if "WeightsUnpickler error:" in msg:  # torch's long weights_only text: keep the actual unpickler error
        msg = msg.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    text = " ".join(msg.split())
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def _torch_load(path: Path, trusted_fallback: bool):
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged files
        if trusted_fallback and _is_weights_only_refusal(exc):
            msg = (f"{path.name} contains pickled Python objects besides tensors; loading it with "
                   f"weights_only=False, i.e. TRUSTING the file (this can run code). Only use model files "
                   f"downloaded from their official source.")
            warnings.warn(msg, UserWarning, stacklevel=3)
            log.warning(msg)
            try:
                return torch.load(str(path), map_location="cpu", weights_only=False)
            except Exception as exc2:  # noqa: BLE001
                exc = exc2
        raise ModelCorruptError(
            f"Cannot read the model file {path}: it is truncated, damaged or not a PyTorch checkpoint "
            f"({_short_reason(exc)}). Download it again.") from exc


def read_state_dict(path: PathLike, *, trusted_fallback: bool = True) -> Dict[str, torch.Tensor]:
    """Read a checkpoint file -> flat `{key: tensor}` (wrapper and `module.` prefixes removed), file order kept."""
    path = Path(path)
    if path.is_file():   # the most likely mistake first, with its own message
        with open(path, "rb") as fh:
            head = fh.read(256).lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
            raise ModelCorruptError(f"{path} is a web page, not a model file (the download saved an HTML page): "
                                    f"download the file again from its official link.")
    path = resolve_model(path)   # exists, and matches its registry entry or JSON description
    obj = _torch_load(path, trusted_fallback)
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise ModelCorruptError(f"{path} is not a model checkpoint (expected a state dict, found "
                                f"{type(obj).__name__}). Check that you picked the right file.")
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ModelCorruptError(f"{path} is not a model checkpoint (entry {key!r} is a "
                                    f"{type(value).__name__}, not a tensor). Check that you picked the right file.")
        out[key.replace("module.", "")] = value
    return out


def detect_layout(state: Dict[str, torch.Tensor]) -> Optional[str]:
    """'wav2lip' | 'wav2lip_disc_qual' | 'syncnet_color' | 'syncnet_v2' | 'sync_asd' | None, from marker keys."""
    for name, marker in LAYOUT_MARKERS:
        if marker in state:
            return name
    return None


def load_into(model: torch.nn.Module, state: Dict[str, torch.Tensor], path: PathLike,
              title: str = "model") -> torch.nn.Module:
    """Strictly copy `state` into `model`. Every key must exist with the right shape and finite values;
    otherwise ModelCorruptError naming the file and the first offending key (in the model's key order).

    `num_batches_tracked` buffers may be absent (files saved before torch 0.4.1 lack them; unused in eval).
    """
    expected = model.state_dict()
    merged = OrderedDict()
    for key, ref in expected.items():
        if key not in state:
            if key.endswith("num_batches_tracked"):
                merged[key] = ref
                continue
            raise ModelCorruptError(f"{path} is not a valid {title} file: key '{key}' is missing "
                                    f"(wrong model file, or an incompatible variant).")
        value = state[key]
        if tuple(value.shape) != tuple(ref.shape):
            raise ModelCorruptError(f"{path} is not a valid {title} file: key '{key}' has shape "
                                    f"{tuple(value.shape)}, expected {tuple(ref.shape)} (wrong model variant).")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ModelCorruptError(f"{path} is damaged: key '{key}' contains NaN/inf values. Download it again.")
        merged[key] = value.to(ref.dtype)
    extra = [k for k in state if k not in expected]
    if extra:
        raise ModelCorruptError(f"{path} is not a valid {title} file: unexpected key '{extra[0]}' "
                                f"({len(extra)} unexpected in all; wrong model file?).")
    model.load_state_dict(merged, strict=True)
    return model
