"""Freed heap memory goes back to the system before the render (core.heap)."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from core import heap


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_pages_are_returned():
    # 256 MB of 64 KB blocks (under glibc's mmap threshold, so they live in the heap), all freed but the last one,
    # which keeps the heap's top in use: the freed pages stay resident until they are trimmed
    blocks = [np.ones(64 * 1024, np.uint8) for _ in range(4096)]
    keep = blocks[-1]
    del blocks
    before = rss_mb()
    assert heap.release_free_memory()
    after = rss_mb()
    assert before - after > 128, (before, after)
    assert keep.sum() == 64 * 1024


def test_the_dub_trims_the_heap_before_it_renders(monkeypatch, tmp_path):
    from core import pipeline
    from data_paths import SAMPLES

    calls = []
    monkeypatch.setattr(pipeline, "release_free_memory", lambda: calls.append(True) or True)
    settings = pipeline.DubSettings(video=str(SAMPLES / "grid_s1_sample.mp4"), audio=str(SAMPLES / "voice_sample.wav"),
                                    output=str(tmp_path / "o.mp4"), track_cache_dir=str(tmp_path / "t"), adapt=False)
    dub = pipeline.prepare_dub(settings)
    try:
        assert calls == [True]
    finally:
        dub.close()
