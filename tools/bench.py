"""Benchmark one dub: frames/s per stage, peak memory, and the ratio to a plain ffmpeg transcode of the same clip.

    python -m tools.bench CLIP [--audio VOICE] [--engine classic|wav2lip] [--checkpoint FILE] [--json OUT]
    python -m tools.bench --make-720p OUT.mp4 [--seconds 60]     # the 720p / 29.97 fps / 60 s test clip

The face-track cache is bypassed (a fresh temporary cache), so "track" is measured for real. With
`--engine wav2lip` and no checkpoint, a generator with random weights in the official format is used:
the speed is the same as with the released weights, the picture is not.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"

from core.engines import registry as engines  # noqa: E402  (after the sys.path line, for `python tools/bench.py`)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class ChildPeak:
    """Largest peak RSS (VmHWM) of any direct child process (the ffmpeg decoders/encoders), sampled every 50 ms.

    RUSAGE_CHILDREN cannot be used: a forked child's high-water mark starts at the parent's whole RSS before
    exec, so it reports the Python process again."""

    def __init__(self, interval: float = 0.05):
        import threading

        self.mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self, interval: float) -> None:
        import os

        me = os.getpid()
        while not self._stop.wait(interval):
            for task in Path(f"/proc/{me}/task").glob("*/children"):
                try:
                    pids = task.read_text().split()
                except OSError:
                    continue
                for pid in pids:
                    try:
                        status = Path(f"/proc/{pid}/status").read_text()
                    except OSError:
                        continue
                    if not status.startswith("Name:\tffmpeg"):   # not yet exec'd (still a copy of us)
                        continue
                    for line in status.splitlines():
                        if line.startswith("VmHWM:"):
                            self.mb = max(self.mb, int(line.split()[1]) / 1024.0)


def ffmpeg_transcode_seconds(clip: str, crf: int, preset: str) -> float:
    """Plain decode + libx264 encode + audio copy of the same clip, as the baseline."""
    from core.media import ffmpeg_path

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "plain.mp4"
        cmd = [ffmpeg_path(), "-v", "error", "-y", "-i", clip, "-map", "0:v:0", "-map", "0:a:0?",
               "-c:v", "libx264", "-crf", str(crf), "-preset", preset, "-pix_fmt", "yuv420p",
               "-c:a", "aac", str(out)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        return time.perf_counter() - t0


def make_720p(out: str, seconds: float = 60.0) -> None:
    """Concatenate GRID s1 clips, upscale to 1280x720 (letterboxed), re-time to 29.97 fps."""
    from core.media import ffmpeg_path

    clips = sorted((SHARED / "data" / "grid_s1" / "video").glob("*.mp4"))
    heldout = set((SHARED / "data" / "grid_s1" / "heldout.txt").read_text().split())
    clips = [c for c in clips if c.stem in heldout][: int(seconds // 3) + 1]
    with tempfile.TemporaryDirectory() as d:
        lst = Path(d) / "list.txt"
        lst.write_text("".join(f"file '{c}'\n" for c in clips))
        cmd = [ffmpeg_path(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst),
               "-vf", "scale=-2:720,pad=1280:720:(ow-iw)/2:0,fps=30000/1001", "-t", str(seconds),
               "-c:v", "libx264", "-crf", "18", "-preset", "fast", "-c:a", "aac", "-ar", "44100", out]
        subprocess.run(cmd, check=True)


def fill_rule_checkpoint(path: Path) -> None:
    """A Wav2Lip generator file in the released format ({'state_dict': ...}, 'module.' keys), random weights."""
    import importlib.util

    import numpy as np
    import torch

    spec = importlib.util.spec_from_file_location("fill_rule", SHARED / "reference" / "fill_rule.py")
    fr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fr)
    layout = json.loads((SHARED / "reference" / "layouts" / "wav2lip.json").read_text())["entries"]
    sd = {"module." + k: torch.from_numpy(np.asarray(v)) for k, v in fr.fill(layout, 1234).items()}
    torch.save({"state_dict": sd, "optimizer": None, "global_step": 0, "global_epoch": 0}, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", nargs="?")
    ap.add_argument("--audio", help="voice track (default: the bundled voice sample)")
    ap.add_argument("--length", default="shortest")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--json", help="write the figures as JSON here")
    ap.add_argument("--make-720p", metavar="OUT")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--no-adapt", action="store_true", help="skip per-clip adaptation (core.adapt)")
    engines.add_arguments(ap)
    a = ap.parse_args()
    a.engine = a.engine or engines.DEFAULT_ENGINE
    if a.make_720p:
        make_720p(a.make_720p, a.seconds)
        print(f"wrote {a.make_720p}")
        return 0
    if not a.clip:
        ap.error("give a CLIP (or --make-720p OUT)")

    import torch

    from core import media
    from core.pipeline import DubSettings, run_dub

    torch.set_num_threads(max(1, torch.get_num_threads()))
    voice = a.audio or str(ROOT / "resources" / "samples" / "voice_sample.wav")
    info = media.probe(a.clip)
    with tempfile.TemporaryDirectory() as d:
        options = engines.options_from_args(a)
        if a.engine == "wav2lip" and not a.checkpoint:   # no weights given: random ones in the official format
            ckpt = str(Path(d) / "wav2lip_random.pth")
            options["wav2lip"] = replace(engines.options_for("wav2lip"), checkpoint=ckpt)
            fill_rule_checkpoint(Path(options["wav2lip"].checkpoint))
        out = str(Path(d) / "dub.mp4")
        settings = DubSettings(video=a.clip, audio=voice, output=out, engine=a.engine, engine_options=options,
                               length_policy=a.length, crf=a.crf, preset=a.preset,
                               track_cache_dir=str(Path(d) / "tracks"), adapt=not a.no_adapt,
                               adapt_cache_dir=str(Path(d) / "adapt"))
        with ChildPeak() as children:
            t0 = time.perf_counter()
            res = run_dub(settings)
            total = time.perf_counter() - t0
        out_info = media.probe(out)
    self_mb, child_mb = peak_rss_mb(), children.mb
    plain = ffmpeg_transcode_seconds(a.clip, a.crf, a.preset)
    plain_frames = info.num_frames

    stages = {}
    for stage in ("decode", "track", "adapt", "prepare", "generate", "composite", "encode"):
        sec = res.timings.get(stage, 0.0)
        frames = res.stage_frames.get(stage, 0) or res.num_frames
        stages[stage] = {"seconds": round(sec, 3), "fps": round(frames / sec, 1) if sec > 0 else None}
    figures = {
        "clip": a.clip, "engine": a.engine, "size": f"{info.width}x{info.height}", "fps": round(info.fps, 3),
        "source_frames": info.num_frames, "output_frames": res.num_frames, "output_check": out_info.num_frames,
        "stages": stages, "total_seconds": round(total, 2), "overall_fps": round(res.num_frames / total, 2),
        "peak_rss_mb_python": round(self_mb, 1), "peak_rss_mb_largest_child": round(child_mb, 1),
        "ffmpeg_transcode_seconds": round(plain, 2),
        "ratio_dub_to_transcode": round((total / res.num_frames) / (plain / plain_frames), 2),
    }
    print(f"{a.clip}  {figures['size']} @ {figures['fps']} fps, {res.num_frames} output frames, engine {a.engine}")
    for stage, v in stages.items():
        fps = f"{v['fps']:8.1f} f/s" if v["fps"] else "       - f/s"
        print(f"  {stage:<10}{fps}   ({v['seconds']:.2f} s)")
    print(f"  whole dub {figures['overall_fps']:.2f} f/s in {total:.1f} s; plain ffmpeg transcode {plain:.2f} s "
          f"-> ratio {figures['ratio_dub_to_transcode']:.1f}x (per frame)")
    print(f"  peak memory: python {self_mb:.0f} MB, largest ffmpeg child {child_mb:.0f} MB (sampled)")
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
