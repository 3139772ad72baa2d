"""One thread for a library while any caller needs it: `OneThread(get, set)` holds a library's process-wide thread
count at 1 from the first caller's entry to the last one's exit (nesting and overlapping threads are counted), then
restores what it was. Used for torch (core.device.one_torch_thread) and OpenCV (core.qc.metrics)."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable


class OneThread:
    def __init__(self, get_threads: Callable[[], int], set_threads: Callable[[int], None]):
        self._get, self._set = get_threads, set_threads
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 0

    @contextmanager
    def __call__(self):
        with self._lock:
            if self._users == 0:
                self._saved = self._get()
                self._set(1)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._set(self._saved)
