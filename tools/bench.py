"""Benchmark one dub: frames/s per stage, peak memory, and the ratio to a plain ffmpeg transcode of the same clip.

    python -m tools.bench CLIP [--audio VOICE] [--engine classic|wav2lip] [--checkpoint FILE] [--json OUT]
    python -m tools.bench --kind long1080p|portrait-hevc|720p [--seconds S] [...]   # made clip, its own voice
    python -m tools.bench --make KIND OUT.mp4 [--seconds S]      # only make the clip

Clip kinds (from held-out GRID s1 clips): 720p (1280x720, 29.97 fps, 60 s), long1080p (1920x1080, 25 fps, 10 min),
portrait-hevc (HEVC stored 1920x1080 + rotate-90 tag = 1080x1920 portrait, 29.97 fps, 30 s). `--kind` makes the
clip once into the user cache folder (core.paths) and dubs it with its own sound.
Exit status 1 when Python's peak resident memory exceeds --max-rss-mb (MiB, default 1430: 1.5 GB).

The face-track cache is bypassed (a fresh temporary cache), so "track" is measured for real. With `--after-analysis`
the clip is first analysed as the window does on opening it (face track, per-clip adaptation, into the same fresh
caches; not timed), so the figures are what an editor waits for on Export from the window. With
`--engine wav2lip` and no checkpoint, a generator with random weights in the official format is used:
the speed is the same as with the released weights, the picture is not.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"

from core.engines import registry as engines  # noqa: E402  (after the sys.path line, for `python tools/bench.py`)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Sampler:
    """Calls `sample()` every `interval` seconds in a daemon thread inside its `with` block, until it returns False."""

    def __init__(self, interval: float):
        import threading

        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval) and self.sample() is not False:
            pass

    def sample(self):
        raise NotImplementedError


class ChildPeak(Sampler):
    """Largest peak RSS (VmHWM) of any direct child process (the ffmpeg decoders/encoders), sampled every 50 ms.

    RUSAGE_CHILDREN cannot be used: a forked child's high-water mark starts at the parent's whole RSS before
    exec, so it reports the Python process again."""

    def __init__(self, interval: float = 0.05):
        super().__init__(interval)
        self.mb = 0.0

    def sample(self) -> None:
        for task in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
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


class StagePeaks(Sampler):
    """Python's own resident memory (VmRSS) sampled every 20 ms, its largest value kept per stage of the dub: the stage
    is the one the dub's progress reported last (from any thread: the texture library reports beside the adaptation,
    so a peak is credited to whichever spoke last). Says which phase reaches the high-water mark that ru_maxrss gives
    without a place."""

    def __init__(self, interval: float = 0.02):
        super().__init__(interval)
        self.stage = "start"
        self.peaks: dict = {}

    def progress(self, stage: str, done: int, total: int) -> None:
        self.stage = stage

    def sample(self) -> bool:
        try:
            status = Path(f"/proc/{os.getpid()}/status").read_text()
            kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        except (OSError, StopIteration):     # not Linux: no figures
            return False
        stage = self.stage
        self.peaks[stage] = max(self.peaks.get(stage, 0.0), kb / 1024.0)
        return True


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its children that were waited for (the ffmpeg processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def ffmpeg_transcode_seconds(clip: str, crf: int, preset: str) -> tuple:
    """(wall seconds, CPU seconds) of a plain decode + libx264 encode + audio copy of the same clip, the baseline."""
    from core.media import ffmpeg_path

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "plain.mp4"
        cmd = [ffmpeg_path(), "-v", "error", "-y", "-i", clip, "-map", "0:v:0", "-map", "0:a:0?",
               "-c:v", "libx264", "-crf", str(crf), "-preset", preset, "-pix_fmt", "yuv420p",
               "-c:a", "aac", str(out)]
        t0, c0 = time.perf_counter(), cpu_seconds()
        subprocess.run(cmd, check=True)
        return time.perf_counter() - t0, cpu_seconds() - c0


@dataclass(frozen=True)
class ClipKind:
    """A benchmark clip made from held-out GRID s1 clips: concatenated, scaled into `width` x `height` (letterboxed),
    re-timed to `fps`. `rotation` > 0 stores the frames rotated back and tags them for display, as phones do."""
    seconds: float
    width: int            # display size
    height: int
    fps: str
    codec: str
    rotation: int = 0


CLIP_KINDS = {
    "720p": ClipKind(60, 1280, 720, "30000/1001", "libx264"),
    # issue 9: ten minutes of 1080p, the memory test (python must stay under MAX_RSS_MB)
    "long1080p": ClipKind(600, 1920, 1080, "25", "libx264"),
    # a phone's portrait HEVC: stored 1920x1080, tagged "rotate 90 degrees clockwise", shown 1080x1920
    "portrait-hevc": ClipKind(30, 1080, 1920, "30000/1001", "libx265", rotation=90),
}
# the filter that turns display frames into the stored frames of a video tagged with this clockwise rotation
STORED_FOR_DISPLAY = {0: "", 90: "transpose=2", 180: "hflip,vflip", 270: "transpose=1"}
MAX_RSS_MB = 1430.0   # the benchmark fails when Python's peak resident memory (MiB) goes above this: issue 19's 1.5 GB


def build_make_clip_args(ffmpeg: str, list_file, out, kind: ClipKind, seconds: float) -> list:
    """ffmpeg arguments: concat-demux `list_file`, fit into the display size, re-time, encode (stored orientation:
    the display frames turned back by `kind.rotation`)."""
    w, h = kind.width, kind.height
    vf = f"scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={kind.fps}"
    if kind.rotation:
        vf += "," + STORED_FOR_DISPLAY[kind.rotation]
    codec = ["-c:v", kind.codec, "-crf", "20", "-preset", "fast", "-pix_fmt", "yuv420p"]
    if kind.codec == "libx265":   # x265 'fast' makes 1080p at a few f/s: the clip's decode cost is what counts
        codec = ["-c:v", kind.codec, "-crf", "22", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                 "-tag:v", "hvc1", "-x265-params", "log-level=error"]
    return [ffmpeg, "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(list_file), "-vf", vf,
            "-t", str(seconds), *codec, "-c:a", "aac", "-ar", "44100", str(out)]


def make_clip(out: str, kind: ClipKind, seconds: float | None = None) -> None:
    from core.media import _rotation_args, ffmpeg_path, ffmpeg_version

    seconds = kind.seconds if seconds is None else seconds
    clips = sorted((SHARED / "data" / "grid_s1" / "video").glob("*.mp4"))
    heldout = set((SHARED / "data" / "grid_s1" / "heldout.txt").read_text().split())
    clips = [c for c in clips if c.stem in heldout]
    need = int(seconds // 3) + 1
    clips = (clips * (need // len(clips) + 1))[:need]          # 250 held-out clips = 12.5 min; repeat beyond
    with tempfile.TemporaryDirectory(dir=str(Path(out).resolve().parent)) as d:
        lst = Path(d) / "list.txt"
        lst.write_text("".join(f"file '{c}'\n" for c in clips))
        stored = Path(d) / ("stored" + Path(out).suffix)
        subprocess.run(build_make_clip_args(ffmpeg_path(), lst, stored, kind, seconds), check=True)
        if kind.rotation:
            rin, rout = _rotation_args(kind.rotation, ffmpeg_version())
            subprocess.run([ffmpeg_path(), "-v", "error", "-y", *rin, "-i", str(stored), "-c", "copy", *rout,
                            str(stored.with_name("tagged.mp4"))], check=True)
            stored = stored.with_name("tagged.mp4")
        os.replace(stored, out)


def cached_clip(name: str, seconds: float | None = None) -> str:
    """The clip of kind `name` in the user cache folder (made once, reused)."""
    from core.paths import user_cache_dir

    kind = CLIP_KINDS[name]
    seconds = kind.seconds if seconds is None else seconds
    out = user_cache_dir("bench", f"{name}-{seconds:g}s.mp4")
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        print(f"making {out} ...", flush=True)
        make_clip(str(out), kind, seconds)
    return str(out)


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


def score_seconds(clip: str, info, track_cache: str, scorer_name: str) -> dict:
    """Wall time of scoring the clip against its own sound with the sync lane's scorer (what the window does on
    opening a clip), the face track already computed (the dub cached it)."""
    from core.audio import load_audio
    from core.faces.track import track_video
    from core.sync.scoring import get_scorer, score_clip

    track = track_video(clip, cache_dir=track_cache).primary()
    scorer = get_scorer(scorer_name)
    wav = load_audio(clip)
    t0 = time.perf_counter()
    score_clip(clip, wav, track, scorer, fps=float(info.fps))
    return {"scorer": scorer.name, "seconds": round(time.perf_counter() - t0, 2),
            "seconds_of_video": round(info.num_frames / info.fps, 1)}


def analyse_as_window(clip: str, info, track_cache: str, adapt_cache: str) -> None:
    """What the window computes on opening a clip and keeps for the export: the face track (app.analysis) and
    its own call, `app.core_bridge.score` (the adaptation, then the clip's sound scored), into the dub's caches."""
    from app import core_bridge
    from core.audio import load_audio
    from core.faces.track import track_video

    track = track_video(clip, cache_dir=track_cache).primary()
    core_bridge.score(clip, info, load_audio(clip), track, adapt_cache_dir=adapt_cache)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", nargs="?")
    ap.add_argument("--audio", help="voice track (default: the bundled voice sample)")
    ap.add_argument("--length", default="shortest")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--json", help="write the figures as JSON here")
    ap.add_argument("--no-adapt", action="store_true", help="skip per-clip adaptation (core.adapt)")
    ap.add_argument("--after-analysis", action="store_true",
                    help="first analyse the clip as the window does (track, adapt; not timed): time the Export")
    ap.add_argument("--kind", choices=sorted(CLIP_KINDS), help="benchmark a made clip of this kind")
    ap.add_argument("--make", nargs=2, metavar=("KIND", "OUT"), help="only make a clip of KIND into OUT")
    ap.add_argument("--seconds", type=float, help="length of the made clip (default: the kind's)")
    ap.add_argument("--max-rss-mb", type=float, default=MAX_RSS_MB)
    ap.add_argument("--scorer", default="auto", help="the sync scorer timed on the clip (default: the lane's)")
    engines.add_arguments(ap)
    a = ap.parse_args()
    a.engine = a.engine or engines.DEFAULT_ENGINE
    if a.make:
        if a.make[0] not in CLIP_KINDS:
            ap.error(f"--make: KIND is one of {', '.join(sorted(CLIP_KINDS))}")
        make_clip(a.make[1], CLIP_KINDS[a.make[0]], a.seconds)
        print(f"wrote {a.make[1]}")
        return 0
    if a.kind:
        a.clip = cached_clip(a.kind, a.seconds)
        a.audio = a.audio or a.clip
    if not a.clip:
        ap.error("give a CLIP, --kind KIND or --make KIND OUT")

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
                               adapt_cache_dir=str(Path(d) / "adapt"), speaker_cache_dir=str(Path(d) / "speaker"))
        with StagePeaks() as own:
            if a.after_analysis:
                own.stage = "the window's analysis (not timed)"
                analyse_as_window(a.clip, info, settings.track_cache_dir, settings.adapt_cache_dir)
            with ChildPeak() as children:
                t0, c0 = time.perf_counter(), cpu_seconds()
                res = run_dub(settings, progress=own.progress)
                total, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            out_info = media.probe(out)
            own.stage = "scoring the clip (after the dub)"
            scoring = score_seconds(a.clip, info, str(Path(d) / "tracks"), a.scorer)
    self_mb, child_mb = peak_rss_mb(), children.mb
    plain, plain_cpu = ffmpeg_transcode_seconds(a.clip, a.crf, a.preset)
    plain_frames = info.num_frames

    stages = {}
    for stage in ("decode", "track", "speaker", "adapt", "prepare", "generate", "composite", "encode"):
        sec = res.timings.get(stage, 0.0)
        frames = res.stage_frames.get(stage, 0) or res.num_frames
        stages[stage] = {"seconds": round(sec, 3), "fps": round(frames / sec, 1) if sec > 0 else None}
    figures = {
        "clip": a.clip, "engine": a.engine, "after_analysis": a.after_analysis,
        "size": f"{info.width}x{info.height}", "fps": round(info.fps, 3),
        "source_frames": info.num_frames, "output_frames": res.num_frames, "output_check": out_info.num_frames,
        "stages": stages, "total_seconds": round(total, 2), "overall_fps": round(res.num_frames / total, 2),
        "peak_rss_mb_python": round(self_mb, 1), "peak_rss_mb_largest_child": round(child_mb, 1),
        "peak_rss_mb_python_by_stage": {k: round(v, 1) for k, v in sorted(own.peaks.items(), key=lambda kv: -kv[1])},
        "ffmpeg_transcode_seconds": round(plain, 2),
        "ratio_dub_to_transcode": round((total / res.num_frames) / (plain / plain_frames), 2),
        # CPU time is less at the mercy of other jobs on the machine than wall time (the two runs are minutes apart)
        "cpu_seconds": round(cpu, 1), "ffmpeg_transcode_cpu_seconds": round(plain_cpu, 1),
        "cpu_ratio_dub_to_transcode": round((cpu / res.num_frames) / (plain_cpu / plain_frames), 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "score": scoring,
    }
    print(f"{a.clip}  {figures['size']} @ {figures['fps']} fps, {res.num_frames} output frames, engine {a.engine}"
          + ("  (Export after the window's analysis)" if a.after_analysis else ""))
    for stage, v in stages.items():
        fps = f"{v['fps']:8.1f} f/s" if v["fps"] else "       - f/s"
        print(f"  {stage:<10}{fps}   ({v['seconds']:.2f} s)")
    print(f"  whole dub {figures['overall_fps']:.2f} f/s in {total:.1f} s; plain ffmpeg transcode {plain:.2f} s "
          f"-> ratio {figures['ratio_dub_to_transcode']:.1f}x (per frame)")
    print(f"  CPU: dub {cpu:.0f} s, transcode {plain_cpu:.0f} s -> {figures['cpu_ratio_dub_to_transcode']:.1f}x; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  scoring the clip with its own voice ({scoring['scorer']}, face track given): "
          f"{scoring['seconds']:.1f} s for {scoring['seconds_of_video']:.0f} s of video")
    print(f"  peak memory: python {self_mb:.0f} MB, largest ffmpeg child {child_mb:.0f} MB (sampled)")
    print("  python's peak by the stage last reported: "
          + ", ".join(f"{k} {v:.0f} MB" for k, v in list(figures["peak_rss_mb_python_by_stage"].items())[:5]))
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=1))
    if self_mb > a.max_rss_mb:
        print(f"FAIL: python's peak memory {self_mb:.0f} MB is above {a.max_rss_mb:.0f} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
