"""Which torch device to compute on. `auto` (the default everywhere) is CUDA when torch sees a GPU, else the CPU."""
from __future__ import annotations

import logging
import sys

from .thread_limit import OneThread

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


def _torch_threads() -> int:
    import torch
    return torch.get_num_threads()


def _set_torch_threads(n: int) -> None:
    import torch
    torch.set_num_threads(n)


# torch computes on one thread inside `with one_torch_thread():` (restored after; core.thread_limit). For loops of
# many small operations (a small head's training steps): a second thread there costs more than it gives on an idle
# machine, and on a loaded one every operation waits for it to be scheduled (measured: 300 steps of the sync head's
# refit 2.5 s on one thread, 24-120 s on two at load ~5). Matrix products of that size give the same numbers on one
# thread as on two (the refit's weights are bit-identical).
one_torch_thread = OneThread(_torch_threads, _set_torch_threads)
