"""Progress reporting and cooperative cancel, shared by every long core job.

A job takes `progress: ProgressFn | None` and `cancel: CancelToken | None`. It calls
`report(progress, stage, done, total)` between batches and `cancel.raise_if_cancelled()`
at the same points. The GUI turns these into Qt signals; the CLI into tqdm bars.
"""
from __future__ import annotations

import threading
from typing import Callable, Optional

from .errors import CancelledError

# progress(stage, done, total): stage is a short lower-case name ("decode", "track", "generate", ...);
# total may be 0 when unknown.
ProgressFn = Callable[[str, int, int], None]


class CancelToken:
    """Thread-safe flag set by the UI/CLI (Ctrl-C) and polled by the worker."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError("Cancelled by the user.")


def report(progress: Optional[ProgressFn], stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


def check(cancel: Optional[CancelToken]) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()
