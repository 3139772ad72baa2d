"""Keep the C heap small: free pages handed back between a job's phases, one heap arena per core.

glibc's allocator keeps the memory of freed transient arrays (the adaptation's scoring pass, the sync head's refit)
in its heap, so a long clip's RSS stayed ~0.3 GB higher through the whole render (docs/MEASUREMENTS.md, issue 19).
`malloc_trim(0)` returns those pages. And each thread that allocates gets an arena of its own, up to eight per core:
the render's threads (decoder, two renderers, encoder feed) each kept their own freed frames. Other C libraries
(macOS, Windows, musl) have no such calls: nothing is done there."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys


M_ARENA_MAX = -8        # glibc's mallopt parameter number


@functools.lru_cache(maxsize=None)
def _libc_call(name: str):
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):        # no libc to load, or one without the call (musl)
        return None


def limit_arenas() -> bool:
    """At most one heap arena per core for the threads created from now on (glibc's default: eight per core).
    Measured on 2 cores (docs/MEASUREMENTS.md): a 40 s 1080p dub's peak 884 -> 841 MB, 120 s 1290 -> 1213 MB, the same
    time. False where the C library cannot."""
    mallopt = _libc_call("mallopt")
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, max(1, len(os.sched_getaffinity(0)))))


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    trim = _libc_call("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True
