"""Frames per second of the dub quality check (core.qc.report.run_qc) on a 720p clip.

    python -m tools.bench_qc [--clip GRID_NAME] [--repeat 3] [--loops 8] [--real-dub] [--work DIR]

A held-out GRID s1 clip (default: the first) played `--loops` times (default 8: 600 frames, 24 s), scaled to
900x720 and padded to 1280x720 (H.264 CRF 18) is the "original"; its CRF 23 re-encode is the "dub"
(`--real-dub`: the product's classic dub of it with its own voice). The original is tracked first (the check
takes the track from the tracker's cache, as it does after a dub), so the time is the check's own: decoding both
videos, measuring, flags. `--work DIR`: make the clips, the dub and the track there and reuse them on the next run
(default: a new temporary folder).

Printed per run, because on a machine shared with other jobs the wall-clock rate says little: the wall-clock
frames/s, the CPU time per frame (user + system) of this process and of its ffmpeg decoders separately, the
frames per CPU-second, and the 1-minute load average before and after the run (this check itself adds about 2).
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
    if out.exists():
        return out
    tmp = out.with_name("part_" + out.name)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(src)]
                   + (["-vf", vf] if vf else [])
                   + ["-c:v", "libx264", "-crf", str(crf), "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                      str(tmp)], check=True)
    tmp.replace(out)
    return out


def cpu_seconds() -> tuple:
    """(this process, its finished children: the ffmpeg decoders) user + system CPU seconds."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--loops", type=int, default=8)
    ap.add_argument("--real-dub", action="store_true",
                    help="the dub is the product's own (classic engine, the clip's own voice) instead of a re-encode")
    ap.add_argument("--work", type=Path, default=None, help="folder for the made clips and track (reused)")
    a = ap.parse_args()
    from core.faces.track import track_video
    from core.qc.report import run_qc
    from tools import grid_splits

    name = a.clip or grid_splits.s1_heldout_names()[0]
    tmp = a.work if a.work is not None else Path(tempfile.mkdtemp(prefix="benchqc_"))
    tmp.mkdir(parents=True, exist_ok=True)
    orig = encode(grid_splits.video_path(name), tmp / f"orig720_{name}_{a.loops}.mp4", 18,
                  "scale=900:720,pad=1280:720:190:0", loops=a.loops)
    track_video(str(orig), cache_dir=str(tmp / "tracks"))
    if a.real_dub:
        from core.pipeline import DubSettings, run_dub

        dub = tmp / f"dub720_{name}_{a.loops}_classic.mp4"
        if not dub.exists():
            part = dub.with_name("part_" + dub.name)
            run_dub(DubSettings(video=str(orig), audio=str(orig), output=str(part), adapt=False,
                                track_cache_dir=str(tmp / "tracks")), score=False)
            part.replace(dub)
    else:
        dub = encode(orig, tmp / f"dub720_{name}_{a.loops}_crf23.mp4", 23)
    run_qc(str(orig), str(dub), track_cache_dir=str(tmp / "tracks"))     # warm: the landmark model loads once
    rates = []
    for _ in range(a.repeat):
        load0 = os.getloadavg()[0]
        (s0, k0) = cpu_seconds()
        t0 = time.perf_counter()
        rep = run_qc(str(orig), str(dub), track_cache_dir=str(tmp / "tracks"))
        dt = time.perf_counter() - t0
        s1, k1 = cpu_seconds()
        n = rep.num_frames
        rates.append(n / dt)
        print(f"{n} frames 1280x720 in {dt:.2f} s: {n / dt:.0f} frames/s ({os.cpu_count()} cores); CPU per frame: "
              f"this process {1000 * (s1 - s0) / n:.2f} ms, ffmpeg decoders {1000 * (k1 - k0) / n:.2f} ms, "
              f"{n / max(s1 - s0 + k1 - k0, 1e-9):.0f} frames per CPU-second; load average {load0:.1f} -> "
              f"{os.getloadavg()[0]:.1f}; flagged {rep.summary['flagged']}", flush=True)
    print(f"best {max(rates):.0f}, median {sorted(rates)[len(rates) // 2]:.0f} frames/s; summary "
          f"{ {k: rep.summary[k] for k in ('psnr_outside', 'ssim_outside', 'ssim_mouth', 'sharpness_ratio')} }")


if __name__ == "__main__":
    main()
