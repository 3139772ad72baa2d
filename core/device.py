"""Which torch device to compute on. `auto` (the default everywhere) is CUDA when torch sees a GPU, else the CPU."""
from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

AUTO = "auto"
DEVICES = (AUTO, "cpu", "cuda")


def resolve_device(device: str | None = AUTO) -> str:
    """'auto' -> 'cuda' or 'cpu'; 'cuda' (or 'cuda:N') without a usable GPU -> 'cpu', with a warning."""
    import torch

    name = (device or AUTO).strip().lower()
    has_cuda = bool(torch.cuda.is_available())
    if name == AUTO:
        return "cuda" if has_cuda else "cpu"
    if name.startswith("cuda") and not has_cuda:
        log.warning("CUDA was requested but is not available: running on the CPU.")
        return "cpu"
    return name


def describe_device(device: str | None = AUTO) -> str:
    """A short label for the status bar, e.g. 'Device: auto, CPU'. Never imports torch (slow): until torch is
    loaded, the setting is shown unresolved."""
    name = (device or AUTO).strip().lower()
    if "torch" not in sys.modules:
        return f"Device: {name}"
    resolved = resolve_device(name)
    text = "CUDA GPU" if resolved.startswith("cuda") else "CPU"
    return f"Device: {'auto, ' if name == AUTO else ''}{text}"
