"""Split-and-join rendering of one long clip: its output frames are cut at scene cuts into segments rendered in
parallel (by any `render_many`: one after another here, Ray tasks in `core.batch_ray`), then joined without
re-encoding.

Why the joined file shows the same frames as a one-piece render (`core.pipeline.run_dub`):
- Everything a frame depends on beyond itself is computed once for the whole clip (`pipeline.prepare_dub`):
  tracking and its temporal smoothing, the voice and the mouth shapes, the classic engine's retrieval (a Viterbi
  over the whole clip), its texture library and the teeth proxy. Segments receive that state and only render
  frames, which the classic engine does one frame at a time.
- Each segment is encoded with the row's codec settings and so starts with a key frame, at a cut where a new
  shot starts anyway; the concat demuxer copies the parts' packets (`media.join_video_parts`): no frame is
  re-encoded at a seam.
- The voice is muxed once for the whole clip, as the one-piece render muxes it.
So the rendered pixels are identical, and with a lossless encode (crf 0) so are the decoded frames
(tests/core/test_shots.py). At a lossy crf, x264's rate control carries state from frame to frame, so a
one-piece encode and a segmented one differ by encoder noise, measured in docs/MEASUREMENTS.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import audio as audio_mod
from . import media
from .pipeline import DubResult, DubSettings, begin_dub, dub_result
from .render.renderer import FrameRenderer
from .render.schedule import voice_for
from .render.stages import StageTimer
from .render.writer import render_file
from .progress import CancelToken, ProgressFn, check, report

DEFAULT_MIN_SHOT_SECONDS = 2.0   # shorter shots join their neighbour: a segment task costs ~0.1-1 s to start


@dataclass
class ClipRender:
    """What a segment render needs: the whole-clip renderer (it knows the clip and its schedule) and how to
    encode."""

    renderer: FrameRenderer
    crf: int
    preset: str
    batch_size: int


Part = Tuple[int, int, str]      # output frames [start, stop) and the file they are encoded to
PartResult = Tuple[int, Dict[str, float]]   # (frames with a dubbed face, seconds per stage)
RenderMany = Callable[[ClipRender, List[Part]], List[PartResult]]


def shot_segments(source_index: np.ndarray, cuts: Sequence[int], out_indices: np.ndarray,
                  min_frames: int) -> List[Tuple[int, int]]:
    """[start, stop) output ranges covering `out_indices`, split where the output reaches a scene cut (an output
    frame showing a source frame that starts a shot), each at least `min_frames` long (short shots stay with
    the shot before them)."""
    src = np.asarray(source_index, np.int64)
    a, b = int(out_indices[0]), int(out_indices[-1]) + 1
    cutset = {int(c) for c in cuts}
    bounds = [a]
    for o in range(a + 1, b):
        if int(src[o]) in cutset and src[o] != src[o - 1] and o - bounds[-1] >= min_frames:
            bounds.append(o)
    if len(bounds) > 1 and b - bounds[-1] < min_frames:
        bounds.pop()
    return list(zip(bounds, bounds[1:] + [b]))


def render_segment(job: ClipRender, start: int, stop: int, path: str,
                   cancel: Optional[CancelToken] = None) -> PartResult:
    """Render output frames [start, stop) of the clip to a video-only file (written atomically)."""
    timer = StageTimer()
    dubbed = render_file(path, job.renderer, np.arange(start, stop),
                         audio=None, crf=job.crf, preset=job.preset, batch_size=job.batch_size, timer=timer,
                         cancel=cancel)
    return dubbed, dict(timer.seconds)


def render_in_turn(job: ClipRender, parts: List[Part], progress: Optional[ProgressFn] = None,
                   cancel: Optional[CancelToken] = None) -> List[PartResult]:
    """The one-machine `RenderMany`: segments one after another."""
    out, done, total = [], 0, sum(b - a for a, b, _ in parts)
    for a, b, path in parts:
        out.append(render_segment(job, a, b, path, cancel))
        done += b - a
        report(progress, "dub", done, total)
    return out


def run_dub_split(settings: DubSettings, progress: Optional[ProgressFn] = None,
                  cancel: Optional[CancelToken] = None, score: bool = False, *,
                  min_shot_seconds: float = DEFAULT_MIN_SHOT_SECONDS,
                  render_many: Optional[RenderMany] = None) -> DubResult:
    """`pipeline.run_dub` with the clip split at scene cuts: prepared once, segments rendered by `render_many`
    (default: in turn), joined by stream copy with the voice muxed once. Same arguments and result."""
    dub, timer, t_all = begin_dub(settings, progress, cancel)
    prep = dub.prep
    ctx, info, out_idx = prep.ctx, prep.info, prep.out_indices
    spans = shot_segments(ctx.source_index, prep.track_set.cuts, out_idx,
                          max(1, int(round(min_shot_seconds * ctx.fps))))
    out = Path(settings.output)
    # hidden names beside the output (shared storage: every worker and the join see them)
    parts = [(a, b, str(out.with_name(f".{out.stem}.shot{k:04d}{out.suffix}"))) for k, (a, b) in enumerate(spans)]
    job = ClipRender(dub.renderer, settings.crf, settings.preset, settings.batch_size)
    try:
        check(cancel)
        if render_many is None:
            results = render_in_turn(job, parts, progress, cancel)
        else:
            results = render_many(job, parts)
        check(cancel)
        dubbed = 0
        for n, seconds in results:
            dubbed += n
            for stage, sec in seconds.items():
                timer.add(stage, sec)
        t0 = time.perf_counter()
        media.join_video_parts([p for _, _, p in parts], out, len(out_idx), info.fps_fraction,
                               audio=voice_for(ctx, out_idx), sample_rate=audio_mod.SAMPLE_RATE)
        timer.add("join", time.perf_counter() - t0, len(out_idx))
    finally:
        dub.close()
        for _, _, p in parts:
            Path(p).unlink(missing_ok=True)
    result = dub_result(settings, prep, out_idx, dubbed, timer, t_all, score, progress, cancel)
    result.messages.append(f"Rendered in {len(parts)} segment{'s' if len(parts) != 1 else ''} split at scene cuts.")
    return result
