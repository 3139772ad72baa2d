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


def test_the_dub_trims_the_heap_before_and_after_it_renders(monkeypatch, tmp_path):
    from core import pipeline
    from data_paths import SAMPLES

    calls = []
    monkeypatch.setattr(pipeline, "release_free_memory", lambda: calls.append("trim") or True)
    render = pipeline.render_file
    monkeypatch.setattr(pipeline, "render_file", lambda *a, **k: calls.append("render") or render(*a, **k))
    settings = pipeline.DubSettings(video=str(SAMPLES / "grid_s1_sample.mp4"), audio=str(SAMPLES / "voice_sample.wav"),
                                    output=str(tmp_path / "o.mp4"), track_cache_dir=str(tmp_path / "t"), adapt=False)
    pipeline.run_dub(settings)
    assert calls == ["trim", "render", "trim"]


@pytest.mark.parametrize("release_from,released", [(0.0, True), (1e9, False)])
def test_a_long_clips_dub_drops_the_face_trackers_models_once_tracked(monkeypatch, tmp_path, release_from, released):
    from core import pipeline
    from core.faces import detect
    from data_paths import SAMPLES

    monkeypatch.setattr(pipeline, "RELEASE_TRACKER_SECONDS", release_from)
    trims = []
    monkeypatch.setattr(pipeline, "release_free_memory", lambda: trims.append("trim") or True)
    settings = pipeline.DubSettings(video=str(SAMPLES / "grid_s1_sample.mp4"), audio=str(SAMPLES / "voice_sample.wav"),
                                    output=str(tmp_path / "o.mp4"), track_cache_dir=str(tmp_path / "t"), adapt=False)
    prep = pipeline.prepare_unadapted(settings)
    assert prep.track.present.any()
    assert (detect._DEFAULT is None) == released
    assert (trims == ["trim"]) == released            # and the tracking's freed memory goes back with them
    assert detect.default_backend() is not None       # loaded again when a later job tracks


def test_a_long_clip_with_a_performer_video_keeps_the_trackers_models_until_both_are_tracked(monkeypatch, tmp_path):
    """Not dropped after the actor's clip only to be loaded again (~0.9 s) for the performer's."""
    import shutil

    from core import pipeline
    from core.faces import detect
    from data_paths import SAMPLES

    monkeypatch.setattr(pipeline, "RELEASE_TRACKER_SECONDS", 0.0)
    monkeypatch.setattr(detect, "_DEFAULT", None)
    loads = []

    class Counted(detect.DlibBackend):
        def __init__(self, *a, **k):
            loads.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(detect, "DlibBackend", Counted)
    driver = tmp_path / "performer.mp4"                 # another file: tracked, not found in the track cache
    shutil.copy(SAMPLES / "grid_s1_sample.mp4", driver)
    settings = pipeline.DubSettings(video=str(SAMPLES / "grid_s1_sample.mp4"), audio=str(SAMPLES / "voice_sample.wav"),
                                    driver=str(driver), output=str(tmp_path / "o.mp4"),
                                    track_cache_dir=str(tmp_path / "t"), adapt=False)
    prep = pipeline.prepare_unadapted(settings)
    assert detect._DEFAULT is not None
    pipeline.follow_performer(prep, settings)
    assert prep.ctx.performer is not None and prep.ctx.performer.trusted.any()
    assert detect._DEFAULT is None and loads == [1]


ARENAS_SCRIPT = """
import ctypes, sys, threading
import numpy as np
from core import heap
if sys.argv[1] == "limit":
    assert heap.limit_arenas()
held, go = [], threading.Event()
def work():
    held.append(np.ones(50_000))          # 400 KB from this thread's arena
    go.wait()
threads = [threading.Thread(target=work) for _ in range(int(sys.argv[2]))]
for t in threads:
    t.start()
while len(held) < len(threads):
    pass
ctypes.CDLL("libc.so.6").malloc_stats()   # one "Arena N:" block per arena, on stderr
go.set()
"""

REUSE_SCRIPT = """
import json, resource
import torch
from core import heap
from core.sync.asd.net import visual_in_parts
from core.sync.asd.weights import load_asd

def rss_mb():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024

torch.set_num_threads(1)
model = load_asd("cpu")
faces = torch.rand(1, 62, 112, 112) * 255         # one pass of the encoder (visual_in_parts)

def passes():
    faults = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        visual_in_parts(model.visual, faces)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return faults[1:]

result = {}
with torch.no_grad():
    result["default"] = passes()
    with heap.reusing_freed_blocks():
        result["reuse"] = passes()
        result["inside"] = rss_mb()
    result["after"] = rss_mb()
print(json.dumps(result))
"""


def run_heap_script(script, *args, cwd):
    """The script's run in a process of its own (the C heap's settings are the process's)."""
    import os
    import subprocess

    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          check=True, cwd=str(cwd), env={**os.environ, "PYTHONPATH": os.getcwd()})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_threads_share_one_heap_arena_per_core(tmp_path):
    import os

    threads = len(os.sched_getaffinity(0)) + 4

    def arenas(mode):
        return run_heap_script(ARENAS_SCRIPT, mode, threads, cwd=tmp_path).stderr.count("Arena ")

    assert arenas("limit") <= len(os.sched_getaffinity(0)) < arenas("default")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_encoders_large_transients_are_reused_without_page_faults_and_handed_back_after_the_pass(tmp_path):
    import json

    got = json.loads(run_heap_script(REUSE_SCRIPT, cwd=tmp_path).stdout)
    # glibc's default: the encoder's large blocks (activations) are mapped and faulted in again on every pass
    assert min(got["default"]) > 20_000, got
    assert max(got["reuse"]) < min(got["default"]) / 5, got     # measured 14-100x fewer
    assert got["inside"] - got["after"] > 50, got           # kept through the pass, handed back at its end
