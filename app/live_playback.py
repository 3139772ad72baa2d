"""Live dubbed playback: the dub rendered while the voice plays, without writing a file.

A prepared `core.pipeline.DubSession` (tracks, mouth shapes, retrieval plan: prepared once per setting change)
renders output frames ahead of the clock on `RENDER_THREADS` Python threads into a small buffer. The clock
is the voice's audio position (`RangePlayer`); on each tick the UI thread shows the buffered frame the clock
is at. A frame that is not ready when its time has come is dropped (counted, never waited for), and the
renderers skip ahead of the clock, so the picture never drifts from the sound. Worker threads only compute
arrays; all widget work happens in the UI thread.
"""
from __future__ import annotations

import logging
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal

from core.audio import SAMPLE_RATE

from .range_player import RangePlayer

log = logging.getLogger(__name__)

RENDER_THREADS = 2
AHEAD = 8                     # frames buffered ahead of the earliest frame worth rendering
PREROLL_MS = 250              # the clock waits this long at most for the first frame


@dataclass
class PlaybackStats:
    start: int = 0
    requested: float = 0.0            # perf_counter when Play was pressed
    first_frame: Optional[float] = None
    shown: int = 0
    dropped: int = 0
    shown_times: list = field(default_factory=list)

    @property
    def first_frame_ms(self) -> Optional[float]:
        return None if self.first_frame is None else (self.first_frame - self.requested) * 1000

    @property
    def dropped_share(self) -> float:
        n = self.shown + self.dropped
        return self.dropped / n if n else 0.0

    def shown_per_second(self) -> float:
        t = self.shown_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0


class FrameAhead:
    """Renders session frames [start, stop) ahead of `clock` on worker threads; `take(i)` hands one over."""

    def __init__(self, session, start: int, stop: int, settings=None, threads: int = RENDER_THREADS,
                 fps: float = 25.0, display_size=None):
        self.session, self.stop_frame, self.fps = session, stop, fps
        self.display_size = display_size        # (w, h) the frames are shown at, at most
        self.clock = start - 1                  # the frame being shown (set by the UI thread)
        self._next = start
        self._buf: Dict[int, tuple] = {}
        self._cond = threading.Condition()
        self._stop = False
        self.error: Optional[str] = None
        self._settings = settings
        self._threads = [threading.Thread(target=self._run, name=f"live-render-{k}", daemon=True)
                         for k in range(threads)]
        self._patched = threading.Event()
        self.render_seconds = 0.0               # running mean of one frame's render time (wall)
        self.cpu_seconds = 0.0                  # CPU time of all renders (what the cores would need unloaded)
        self.rendered = 0

    @property
    def lead(self) -> int:
        """Frames the clock moves while one frame renders: a frame claimed now is worth rendering only this
        far ahead (else it would be late when done, and the renderers would never catch up)."""
        return int(np.ceil(self.render_seconds * self.fps))

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def _patch(self) -> None:
        """Corrections and mask made while paused: applied before the first frame (the session's own thread
        is idle while playing)."""
        s = self._settings
        if s is not None:
            self.session.prep.ctx.mask = s.mask
            if s.edits is not None:
                self.session.set_edits(s.edits)
        self._patched.set()

    def _claim(self) -> Optional[int]:
        with self._cond:
            while not self._stop:
                i = max(self._next, self.clock + 1 + self.lead)  # late frames are skipped, not rendered
                if i >= self.stop_frame:
                    return None
                if i <= self.clock + self.lead + AHEAD:
                    self._next = i + 1
                    return i
                self._cond.wait(0.02)
            return None

    def _run(self) -> None:
        if threading.current_thread() is self._threads[0]:
            self._patch()
        self._patched.wait()
        while True:
            i = self._claim()
            if i is None:
                return
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                pair = tuple(fit_to(f, self.display_size) for f in self.session.render_frame(i))
            except Exception as exc:  # noqa: BLE001 - reported to the UI thread, which stops playback
                from .workers import describe_exception

                log.exception("live render of frame %d failed", i)
                self.error = describe_exception(exc)
                return
            dt, cpu = time.perf_counter() - t0, time.thread_time() - c0
            with self._cond:
                self.cpu_seconds += cpu
                self.rendered += 1
                self.render_seconds = dt if not self.render_seconds else 0.8 * self.render_seconds + 0.2 * dt
                if i > self.clock:
                    self._buf[i] = pair

    def take(self, i: int) -> Optional[tuple]:
        """The rendered (original, dubbed) of frame i, if ready; older frames are discarded."""
        with self._cond:
            self.clock = max(self.clock, i)
            pair = self._buf.pop(i, None)
            for k in [k for k in self._buf if k <= i]:
                del self._buf[k]
            self._cond.notify_all()
        return pair

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def ready(self, i: int) -> bool:
        with self._cond:
            return i in self._buf

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for t in self._threads:
            if t.is_alive():
                t.join(5.0)


def fit_to(frame: np.ndarray, size) -> np.ndarray:
    """`frame` shrunk to fit `size` (w, h) when larger: done in the render threads, so that the UI thread
    paints frames at their screen size instead of scaling 720p pictures smoothly 30 times a second."""
    if size is None:
        return frame
    h, w = frame.shape[:2]
    s = min(size[0] / w, size[1] / h)
    if s >= 1.0:
        return frame
    return cv2.resize(frame, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)


def write_voice(wav: np.ndarray, folder: str) -> str:
    """The session's voice (shifted and fitted to the output) as a 16-bit WAV for QtMultimedia."""
    path = Path(tempfile.mkstemp(suffix=".wav", prefix="live_voice_", dir=folder)[1])
    pcm = (np.clip(np.asarray(wav, np.float32), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return str(path)


class LivePlayer(QObject):
    """Plays a DubSession's frames [start, stop) with its voice. Emits frame(index, original, dubbed) to
    show, position(index) for every clock step, and stopped(stats)."""

    frame = Signal(int, object, object)
    position = Signal(int)
    stopped = Signal(object)
    failed = Signal(str)

    def __init__(self, scratch_dir: str, parent=None):
        super().__init__(parent)
        self.scratch_dir = scratch_dir
        self.clock = RangePlayer(self)
        self.clock.tick_ms = 5
        self.clock.frame.connect(self._on_clock)
        self.clock.stopped.connect(self._finish)
        self.ahead: Optional[FrameAhead] = None
        self.stats = PlaybackStats()
        self._voice: Dict[int, str] = {}        # id(session) -> wav file
        self._last = -1
        self._pending = None                   # (start, stop, fps, voice): waiting for the first frame
        self.playing = False
        self.last_render_seconds = 0.0         # the last playback's mean render time of a frame (one thread)
        self.last_render_cpu = 0.0             # ... and its mean CPU time
        self.display_size = None               # (w, h) in device pixels the frames are shown at, at most

    def play(self, session, start: int, stop: int, fps: float, settings=None, speed: float = 1.0) -> None:
        self.stop()
        stop = min(stop, session.num_frames)
        self.stats = PlaybackStats(start=start, requested=time.perf_counter())
        key = id(session)
        if key not in self._voice:
            self._voice = {key: write_voice(session.ctx.wav, self.scratch_dir)}
        self.ahead = FrameAhead(session, start, stop, settings, fps=fps * speed, display_size=self.display_size)
        self.ahead.start()
        self.playing = True
        self._last = start - 1
        self._pending = (start, stop, fps, speed, self._voice[key], time.perf_counter())
        self.clock.wait_for(self._preroll)      # poll until the first frame is there (or PREROLL_MS)

    def _preroll(self) -> bool:
        start, stop, fps, speed, voice, t0 = self._pending
        if not (self.ahead.ready(start) or (time.perf_counter() - t0) * 1000 > PREROLL_MS or self.ahead.error):
            return False
        self._pending = None
        self.clock.play(voice, start, stop, fps, speed)
        return True

    def _on_clock(self, f: int) -> None:
        if self.ahead is None or f <= self._last:       # (the clock repeats the last frame when it ends)
            return
        if self.ahead.error:
            msg = self.ahead.error
            self.stop()
            self.failed.emit(msg)
            return
        pair = self.ahead.take(f)
        self.stats.dropped += max(0, f - self._last - 1)      # frames whose time passed unseen
        self._last = f
        self.position.emit(f)
        if pair is None:
            self.stats.dropped += 1
            return
        now = time.perf_counter()
        if self.stats.first_frame is None:
            self.stats.first_frame = now
        self.stats.shown += 1
        self.stats.shown_times.append(now)
        self.frame.emit(f, pair[0], pair[1])

    def audio_frame(self) -> Optional[float]:
        """The audio clock's position in frames (None without audio output)."""
        return self.clock.audio_frame()

    def stop(self) -> None:
        self.clock.cancel_wait()
        self._pending = None
        self.clock.stop()
        self._finish()

    def _finish(self) -> None:
        if self.ahead is not None:
            self.last_render_seconds = self.ahead.render_seconds
            self.last_render_cpu = self.ahead.cpu_seconds / max(1, self.ahead.rendered)
            self.ahead.stop()
            self.ahead = None
        if self.playing:
            self.playing = False
            self.stopped.emit(self.stats)
