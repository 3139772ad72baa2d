"""The source frames of an output schedule, streamed in output order (never the whole video in RAM)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np

from .. import media
from ..errors import MediaError


class SourceFrames:
    """Source frames in output order for a schedule, streamed.

    A non-decreasing schedule (shortest, trim, hold) is served from one decoding pass. Loop and ping-pong
    need frames again or backwards: the first pass spills frames to a disk-backed memmap (never RAM).
    """

    def __init__(self, video: str, info, schedule: np.ndarray):
        self.video = video
        self.info = info
        self.schedule = np.asarray(schedule, np.int64)
        self.decode_seconds = 0.0
        self._spill: Optional[np.memmap] = None
        self._spill_dir: Optional[tempfile.TemporaryDirectory] = None

    def _timed(self, it: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        while True:
            t0 = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                return
            finally:
                self.decode_seconds += time.perf_counter() - t0
            yield frame

    def iterate(self, out_indices: Sequence[int]) -> Iterator[Tuple[int, int, np.ndarray]]:
        """Yield (out_index, source_index, frame) for each requested output index (ascending). Each frame is an
        array of its own, even where a source frame is shown again (hold): the renderer may composite into it."""
        out_indices = np.asarray(out_indices, np.int64)
        wanted = self.schedule[out_indices]
        if np.all(np.diff(wanted) >= 0):
            yield from self._monotonic(out_indices, wanted)
        else:
            yield from self._spilled(out_indices, wanted)

    def _monotonic(self, out_indices, wanted):
        start, stop = int(wanted[0]), int(wanted[-1]) + 1
        frames = self._timed(iter(media.iter_frames(self.video, self.info, start=start, stop=stop, backend="auto")))
        ahead = next(frames, None)          # the decoder's next frame: None once it has no more
        cur, cur_idx = None, start - 1
        for k, (o, s) in enumerate(zip(out_indices, wanted)):
            while cur_idx < s and ahead is not None:
                cur, cur_idx = ahead, cur_idx + 1
                ahead = next(frames, None)
            if cur is None:
                raise MediaError(f"Could not decode any frame from {self.video}")
            # cur is frame s, or the last one decoded when the decoder yielded fewer frames than probed (held);
            # the next output shows this same array too: it gets a copy, made before anyone writes into it
            shown_again = k + 1 < len(wanted) and (wanted[k + 1] <= cur_idx or ahead is None)
            yield int(o), int(s), cur.copy() if shown_again else cur

    def _spilled(self, out_indices, wanted):
        if self._spill is None:
            lo, hi = int(wanted.min()), int(wanted.max()) + 1
            self._spill_dir = tempfile.TemporaryDirectory(prefix="lipdub_frames_")
            shape = (hi - lo, self.info.height, self.info.width, 3)
            self._spill = np.memmap(Path(self._spill_dir.name) / "frames.u8", np.uint8, "w+", shape=shape)
            self._spill_lo = lo
            n = 0
            for n, f in enumerate(self._timed(iter(media.iter_frames(self.video, self.info, start=lo, stop=hi, backend="auto")))):
                self._spill[n] = f
            for k in range(n + 1, hi - lo):  # hold the last decoded frame if the decoder fell short
                self._spill[k] = self._spill[n]
        for o, s in zip(out_indices, wanted):
            yield int(o), int(s), np.array(self._spill[int(s) - self._spill_lo])

    def close(self) -> None:
        self._spill = None
        if self._spill_dir is not None:
            self._spill_dir.cleanup()
            self._spill_dir = None
