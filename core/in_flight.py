"""Cached work done once when several threads of one process ask for it at the same time.

The window runs its jobs side by side: the analysis tracks and adapts to the clip while a preview's preparation, an
export or a re-score asks for the same tracks and adaptation. Each is cached (core.faces.cache, core.adapt), but
a job that starts while another is computing used to miss the cache and compute it again beside it, on the same two
cores. `InFlight.once(key, load, compute)` (over `turn(key)`) lets the first caller of a key compute; a second caller
waits for it (cancellable) and then looks at the cache again, where the first caller's result now is (or, when that
caller failed or could not store it, computes it itself).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Hashable, Iterator, Optional, TypeVar

from .progress import CancelToken, check

POLL_SECONDS = 0.1      # how often a waiting caller looks at its cancel token
T = TypeVar("T")


class InFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict = {}        # key -> threading.Event set when its computation ends

    @contextmanager
    def turn(self, key: Hashable, cancel: Optional[CancelToken] = None,
             on_wait: Optional[Callable[[], None]] = None) -> Iterator[bool]:
        """True: the caller computes (and stores) the result of `key`, the others wait until the block ends; False:
        another thread was computing it and has finished: look at the cache again. `on_wait()` is called before a
        caller starts waiting."""
        with self._lock:
            running = self._running.get(key)
            if running is None:
                running = self._running[key] = threading.Event()
                mine = True
            else:
                mine = False
        if not mine:
            if on_wait is not None:
                on_wait()
            while not running.wait(POLL_SECONDS):
                check(cancel)
            yield False
            return
        try:
            yield True
        finally:
            with self._lock:
                del self._running[key]
            running.set()

    def once(self, key: Hashable, load: Callable[[], Optional[T]], compute: Callable[[], T],
             cancel: Optional[CancelToken] = None, on_wait: Optional[Callable[[], None]] = None) -> T:
        """`load()`'s result (None: not cached), else `compute()`'s, which stores it where `load` finds it: one
        thread of the process computes `key` at a time, a second one waits for it (see `turn`) and loads."""
        while True:
            found = load()
            if found is not None:
                return found
            with self.turn(key, cancel, on_wait) as mine:
                if mine:
                    return compute()
