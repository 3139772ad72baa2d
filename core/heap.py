"""Keep the C heap small between a job's phases and cheap within the networks' passes: free pages handed back
where a phase ends, freed large blocks reused within a pass, one heap arena per core.

glibc's allocator keeps the memory of freed transient arrays (the adaptation's scoring pass, the sync head's refit)
in its heap, so a long clip's RSS stayed ~0.3 GB higher through the whole render (docs/MEASUREMENTS.md, issue 19):
`malloc_trim(0)` returns those pages where a phase ends. Within a phase the opposite costs: glibc gives every block
over 32 MB (and, in a thread's own arena, over 64 MB) its own mapping and unmaps it when freed, so the next one is
faulted in page by page again. Light-ASD's encoder makes such blocks on every pass (its activations, tens of MB; until
`core.sync.asd.net.time_conv`, also its 3-D convolutions' column buffers of 20-160 MB, when 30% of its CPU time went to
the kernel's page faults). `reusing_freed_blocks` keeps them in the
heap during such passes, where the next pass reuses them. And each thread that allocates gets an arena of its own, up
to eight per core: the render's threads (decoder, two renderers, encoder feed) each kept their own freed frames.
Other C libraries (macOS, Windows, musl) have no such calls: nothing is done there."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
import threading


M_TRIM_THRESHOLD = -1   # glibc's mallopt parameter numbers
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
M_ARENA_MAX = -8
DEFAULT_MMAP_MAX = 65536                # glibc's default, restored after `reusing_freed_blocks`
# where glibc's own adjustment of the thresholds ends once it has seen a freed block of 32 MB; any mallopt call stops
# that adjustment, so `reusing_freed_blocks` leaves them there (left at their start, 128 KB, every frame of a video
# would be mapped and faulted in anew)
ADJUSTED_MMAP_THRESHOLD = 32 * 1024 * 1024
ADJUSTED_TRIM_THRESHOLD = 2 * ADJUSTED_MMAP_THRESHOLD
NO_AUTOMATIC_TRIM = 2 ** 31 - 1         # C int's largest: free() keeps the heap's free top (release_free_memory trims)

_reuse_lock = threading.Lock()
_reuse_depth = 0


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


@contextlib.contextmanager
def reusing_freed_blocks():
    """While inside (nesting is counted), blocks of every size come from the heap and a freed one stays there for
    the next allocation instead of being unmapped; at the end the free pages are handed back (`release_free_memory`)
    and the thresholds are left where glibc's own adjustment would have taken them. For the passes of Light-ASD's
    encoder: its large blocks were mapped and unmapped on every call, so every page was faulted in again (measured
    on 2 cores before `time_conv`: 30% of the encoder's CPU time in the kernel, 13.7 -> 9.5 ms a frame with this
    scope; after it still ~50,000-70,000 faults a 62-frame pass without the scope, none with it). Only the main thread's heap grows without bound (a worker thread's arena still
    maps blocks over 64 MB): run the networks on the thread that called, the rest in workers."""
    global _reuse_depth
    mallopt = _libc_call("mallopt")
    if mallopt is None:
        yield
        return
    with _reuse_lock:
        _reuse_depth += 1
        if _reuse_depth == 1:
            mallopt(M_MMAP_MAX, 0)
            mallopt(M_TRIM_THRESHOLD, NO_AUTOMATIC_TRIM)
    try:
        yield
    finally:
        with _reuse_lock:
            _reuse_depth -= 1
            if _reuse_depth == 0:
                mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                mallopt(M_MMAP_THRESHOLD, ADJUSTED_MMAP_THRESHOLD)
                mallopt(M_TRIM_THRESHOLD, ADJUSTED_TRIM_THRESHOLD)
                release_free_memory()


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    trim = _libc_call("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True
