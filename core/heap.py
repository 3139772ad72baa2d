"""Hand the C heap's free pages back to the system between a job's phases.

glibc's allocator keeps the memory of freed transient arrays (the adaptation's scoring pass, the sync head's refit)
in its heap, so a long clip's RSS stayed ~0.3 GB higher through the whole render (docs/MEASUREMENTS.md, issue 19).
`malloc_trim(0)` returns those pages. Other C libraries (macOS, Windows, musl) have no such call: nothing is done
there."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):        # no libc to load, or one without malloc_trim (musl)
        return None


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
