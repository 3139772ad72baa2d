"""Frames for the playhead, fast in every scrubbing direction.

Seeking in long-GOP video (H.264 with a keyframe every 250 frames) costs 0.2-0.5 s per backward step or long
jump, far too slow for scrubbing. So after a video opens, a background pass decodes it once, streaming, and
keeps a JPEG-compressed display copy of each frame (`ScrubCache`, ~30-60 KB a frame, memory-capped; long
videos keep the part around the playhead). Scrubbing shows those copies (a few ms to decode); when the
playhead rests, the exact frame replaces the copy. `FrameSource` runs on the frame-loader thread.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Optional

import numpy as np

from core import media

from . import core_bridge

log = logging.getLogger(__name__)


class ScrubCache:
    """Thread-safe index -> JPEG bytes of a (possibly reduced) copy of each frame."""

    def __init__(self, max_bytes: int = 384 * 2 ** 20, max_side: int = 960, quality: int = 90):
        self.max_bytes = max_bytes
        self.max_side = max_side
        self.quality = quality
        self._lock = threading.Lock()
        self._data: dict = {}
        self.bytes = 0
        self.path: Optional[str] = None
        self.centre = 0

    def reset(self, path: Optional[str]) -> None:
        with self._lock:
            self._data.clear()
            self.bytes = 0
            self.path = path

    def __contains__(self, i: int) -> bool:
        return i in self._data

    def __len__(self) -> int:
        return len(self._data)

    def frames(self) -> list:
        """The indices held, ascending."""
        with self._lock:
            return sorted(self._data)

    @property
    def full(self) -> bool:
        return self.bytes >= self.max_bytes

    def put(self, path: str, i: int, frame: np.ndarray) -> bool:
        """Store frame i. When over budget, the frame farthest from `centre` goes (maybe this one).
        Returns False when this frame was not kept (the cache is full of nearer frames)."""
        import cv2

        if path != self.path:
            return False
        h, w = frame.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        if s < 1.0:
            frame = cv2.resize(frame, (max(1, int(round(w * s))), max(1, int(round(h * s)))),
                               interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return False
        data = buf.tobytes()
        with self._lock:
            if path != self.path:
                return False
            old = self._data.pop(i, None)
            if old is not None:
                self.bytes -= len(old)
            self._data[i] = data
            self.bytes += len(data)
            while self.bytes > self.max_bytes and self._data:
                far = max(self._data, key=lambda k: abs(k - self.centre))
                self.bytes -= len(self._data.pop(far))
                if far == i:
                    return False
        return True

    def get(self, path: str, i: int) -> Optional[np.ndarray]:
        import cv2

        with self._lock:
            data = self._data.get(i) if path == self.path else None
        if data is None:
            return None
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def prefetch(cache: ScrubCache, path: str, start: int, num_frames: int, progress=None, cancel=None) -> int:
    """Decode `path` from `start` to the end (streaming) into `cache` until it is full. Returns frames kept."""
    kept = 0
    total = max(1, num_frames - start)
    for k, frame in enumerate(media.iter_frames(path, start=start)):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if cache.path != path:
            break
        if cache.put(path, start + k, frame):
            kept += 1
        elif cache.full:
            break
        if progress is not None and k % 10 == 0:
            progress("cache", k + 1, total)
    return kept


class FrameSource:
    """Lives on the frame-loader thread: the exact-frame reader of the current video, a small LRU of exact
    frames, and the shared scrub cache. `compute` also builds the mask outline for the overlay."""

    def __init__(self, scrub: ScrubCache, max_bytes: int = 128 * 2 ** 20):
        self.scrub = scrub
        self.path = None
        self.reader = None
        self.cache: "collections.OrderedDict[int, np.ndarray]" = collections.OrderedDict()
        self.bytes = 0
        self.max_bytes = max_bytes

    def close(self) -> None:
        if self.reader is not None:
            close = getattr(self.reader, "close", None)
            if close:
                close()
        self.reader = None
        self.path = None
        self.cache.clear()
        self.bytes = 0

    def exact(self, path: str, index: int) -> np.ndarray:
        if path != self.path:
            self.close()
            self.reader = media.FrameReader(path)
            self.path = path
        f = self.cache.get(index)
        if f is not None:
            self.cache.move_to_end(index)
            return f
        f = self.reader.read(int(index))
        self.cache[index] = f
        self.bytes += f.nbytes
        while self.bytes > self.max_bytes and len(self.cache) > 1:
            _, old = self.cache.popitem(last=False)
            self.bytes -= old.nbytes
        return f

    def compute(self, index, payload):
        """-> (frame, outline, seconds, exact). A scrub-cache copy unless `exact` is asked or it is missing."""
        path, landmarks, mask, frame_hw, want_exact = payload
        polygons = ()
        if isinstance(mask, tuple):
            mask, polygons = mask
        t0 = time.perf_counter()
        frame, exact = None, True
        if path == self.path and index in self.cache:
            frame = self.exact(path, index)
        elif not want_exact:
            frame = self.scrub.get(path, index)
            exact = frame is None
        if frame is None:
            frame = self.exact(path, index)
        outline = None
        if landmarks is not None and mask is not None:
            try:
                outline = core_bridge.mask_outline(frame_hw, landmarks, mask, polygons)
            except Exception:  # noqa: BLE001 - an outline is a nicety; never lose the frame over it
                log.exception("mask outline failed")
        return frame, outline, time.perf_counter() - t0, exact
