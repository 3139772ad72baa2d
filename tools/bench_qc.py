"""Frames per second of the dub quality check (core.qc.report.run_qc) on a 720p clip.

    python -m tools.bench_qc [--clip GRID_NAME] [--repeat 2] [--loops 8] [--real-dub]

A held-out GRID s1 clip (default: the first) played `--loops` times (default 8: 600 frames, 24 s), scaled to
900x720 and padded to 1280x720 (H.264 CRF 18) is the "original"; its CRF 23 re-encode is the "dub"
(`--real-dub`: the product's classic dub of it with its own voice). The original is tracked first (the check
takes the track from the tracker's cache, as it does after a dub), so the time is the check's own: decoding both
videos, measuring, flags. Also printed: the CPU time the check used (this process and its ffmpeg decoders): on a
machine shared with other jobs the wall-clock rate says little.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def encode(src: Path, out: Path, crf: int, vf=None, loops: int = 1) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(src)]
                   + (["-vf", vf] if vf else [])
                   + ["-c:v", "libx264", "-crf", str(crf), "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                      str(out)], check=True)
    return out


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the ffmpeg decoders)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=None)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--loops", type=int, default=8)
    ap.add_argument("--real-dub", action="store_true",
                    help="the dub is the product's own (classic engine, the clip's own voice) instead of a re-encode")
    a = ap.parse_args()
    from core.faces.track import track_video
    from core.qc.report import run_qc
    from tools import grid_splits

    name = a.clip or grid_splits.s1_heldout_names()[0]
    tmp = Path(tempfile.mkdtemp(prefix="benchqc_"))
    orig = encode(grid_splits.video_path(name), tmp / "orig720.mp4", 18, "scale=900:720,pad=1280:720:190:0",
                  loops=a.loops)
    track_video(str(orig), cache_dir=str(tmp / "tracks"))
    if a.real_dub:
        from core.pipeline import DubSettings, run_dub

        dub = tmp / "dub720.mp4"
        run_dub(DubSettings(video=str(orig), audio=str(orig), output=str(dub), adapt=False,
                            track_cache_dir=str(tmp / "tracks")), score=False)
    else:
        dub = encode(orig, tmp / "dub720.mp4", 23)
    best = None
    run_qc(str(orig), str(dub), track_cache_dir=str(tmp / "tracks"))     # warm: the landmark model loads once
    for _ in range(a.repeat):
        c0 = cpu_seconds()
        t0 = time.perf_counter()
        rep = run_qc(str(orig), str(dub), track_cache_dir=str(tmp / "tracks"))
        dt = time.perf_counter() - t0
        cpu = cpu_seconds() - c0
        best = dt if best is None else min(best, dt)
        print(f"{rep.num_frames} frames 1280x720 in {dt:.2f} s: {rep.num_frames / dt:.0f} frames/s "
              f"({os.cpu_count()} cores); CPU time {cpu:.2f} s (this process + its ffmpeg decoders): "
              f"{rep.num_frames / cpu:.0f} frames per CPU-second; flagged {rep.summary['flagged']}", flush=True)
    print(f"best: {rep.num_frames / best:.0f} frames/s; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
