"""Rendering a range of output frames into a file: decode, render and encode overlapped on both cores."""
from __future__ import annotations

import time
from typing import Optional, Tuple

import numpy as np

from .. import audio as audio_mod
from .. import media
from ..progress import CancelToken, ProgressFn, check, report
from ..streams import Sink, prefetch
from .renderer import FrameRenderer
from .source import SourceFrames
from .stages import StageTimer


DECODE_AHEAD = 4    # frames the decoder thread reads ahead of rendering (it keeps up easily; more would only cost RAM)
BATCH_BYTES = 16 * 1280 * 720 * 3   # frames a batch holds, at most: 16 at 720p, fewer for larger frames (memory)


def frames_per_batch(batch_size: int, width: int, height: int) -> int:
    """The batch `render_file` renders: `batch_size` frames, but no more than BATCH_BYTES of them (a batch is held
    three times at once: being decoded into, rendered, queued for the encoder; 16 frames of 1080p in each took
    ~0.3 GB), and at least 2 so that both threads render."""
    fit = max(2, BATCH_BYTES // max(1, 3 * int(width) * int(height)))
    return max(1, min(int(batch_size), fit))


class RenderHelper:
    """A second rendering thread: a batch's first half is rendered there while the job's thread renders the second
    (cv2 and numpy release the GIL). Only for engines whose frames are independent (`FrameRenderer.frames_independent`):
    each frame is then the same whichever thread renders it and with whichever frames it is batched."""

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lipdub-render")

    def render(self, renderer: "FrameRenderer", frames: list, out_indices: list, timer: StageTimer,
               reuse_frames: bool = False) -> Tuple[list, int]:
        if len(frames) < 2:
            return renderer.render(frames, out_indices, timer, reuse_frames)
        half = len(frames) // 2
        side = StageTimer()
        first = self.pool.submit(renderer.render, frames[:half], out_indices[:half], side, reuse_frames)
        try:
            second, n2 = renderer.render(frames[half:], out_indices[half:], timer, reuse_frames)
        finally:
            out, n1 = first.result()       # (waited for also when this thread failed: nothing left running)
        for stage, sec in side.seconds.items():
            timer.add(stage, sec, side.frames.get(stage, 0))
        return out + second, n1 + n2

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def render_file(path, renderer: FrameRenderer, out_idx: np.ndarray, *,
                audio: Optional[np.ndarray], crf: int, preset: str, batch_size: int, timer: StageTimer,
                progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> int:
    """Render output frames `out_idx` (ascending) of `renderer`'s clip in batches and encode them to `path`
    (atomically, with `audio` muxed when given). Returns how many frames had a dubbed face.

    Three stages overlap on both cores (`core.streams`): a thread reads
    the decoder's frames, this thread renders, a thread feeds the encoder (ffmpeg compresses while we render)."""
    info = renderer.info
    source = SourceFrames(renderer.video_path, info, renderer.ctx.source_index)
    writer = media.VideoWriter(path, info.width, info.height, info.fps_fraction, audio=audio, crf=crf,
                               preset=preset, sar=info.sar, sample_rate=audio_mod.SAMPLE_RATE)
    frames = prefetch(source.iterate(out_idx), depth=DECODE_AHEAD)
    batch_size = frames_per_batch(batch_size, info.width, info.height)
    # a whole batch fits in the feed: the encoder works through one batch while the next one renders
    feed = Sink(writer.write, depth=batch_size, name="lipdub-encoder-feed")
    total, done, dubbed = len(out_idx), 0, 0
    batch_frames, batch_idx = [], []
    helper = RenderHelper() if renderer.frames_independent() and batch_size > 1 else None

    def flush():
        nonlocal dubbed, done
        if not batch_frames:
            return
        # the source's frames are ours alone (SourceFrames yields each array once): composited in place
        out, n = renderer.render(batch_frames, batch_idx, timer, reuse_frames=True) if helper is None else \
            helper.render(renderer, batch_frames, batch_idx, timer, reuse_frames=True)
        dubbed += n
        for f in out:
            feed.put(f)
        done += len(out)
        batch_frames.clear()
        batch_idx.clear()
        report(progress, "dub", done, total)
        check(cancel)

    try:
        for o, _s, frame in frames:
            batch_frames.append(frame)
            batch_idx.append(o)
            if len(batch_frames) >= batch_size:
                flush()
        flush()
        feed.close()
        t1 = time.perf_counter()
        writer.close()
        timer.add("encode", time.perf_counter() - t1, 0)
    except BaseException:
        writer.abort()          # first: a feed blocked in a pipe write gets a broken pipe
        feed.stop()
        raise
    finally:
        if helper is not None:
            helper.close()
        frames.close()
        source.close()
    timer.add("encode", feed.busy_seconds, total)
    timer.add("decode", source.decode_seconds, total)
    return dubbed
