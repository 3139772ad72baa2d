"""`RangePlayer`: plays frames [start, stop) against a clock: the audio through QtMultimedia with the playhead
following the audio position, or the wall clock when there is no audio device. Emits the frame to show."""
from __future__ import annotations

import logging
from typing import Optional

from PySide6.QtCore import QElapsedTimer, QObject, QTimer, QUrl, Signal
from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer

from .media_stop import stop_player

log = logging.getLogger(__name__)


class RangePlayer(QObject):
    """Plays [start, stop) frames: the audio file through QtMultimedia, the playhead following the audio
    position, or the wall clock if audio output is unavailable."""

    frame = Signal(int)
    stopped = Signal()

    LOCK_GAIN = 0.2          # share of the audio-vs-wall error corrected per audio position update
    RELOCK_MS = 120          # a larger error re-anchors at once (audio started late, stalled, seeked)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(15)
        self._timer.timeout.connect(self._tick)
        self._waiter = QTimer(self)
        self._waiter.setInterval(5)
        self._waiter.timeout.connect(self._poll_wait)
        self._wait_pred = None
        self._offset_ms = 0.0
        self._last_pos = -1
        self._clock = QElapsedTimer()
        self.start_frame = 0
        self.stop_frame = 0
        self.fps = 25.0
        self.speed = 1.0
        self.playing = False
        self._player = None
        self._audio_out = None
        self._last = -1
        self._start_ms = 0
        self.audio_ok = False

    def _ensure_player(self) -> bool:
        """The audio player, made on first use; False when the machine has no audio output device: the wall
        clock drives playback then, and Qt Multimedia runs no decoding thread for a sound nobody hears."""
        if QMediaDevices.defaultAudioOutput().isNull():
            return False
        if self._player is None:
            self._player = QMediaPlayer(self)
            self._audio_out = QAudioOutput(self)
            self._player.setAudioOutput(self._audio_out)
            self._player.errorOccurred.connect(self._on_error)
        return True

    def _on_error(self, error, message: str) -> None:
        log.info("audio playback error: %s %s", error, message)

    def play(self, audio_path: Optional[str], start: int, stop: int, fps: float, speed: float = 1.0) -> None:
        """`speed` < 1 plays slower (the audio too): for checking lip sync closely."""
        self.stop()
        self.start_frame, self.stop_frame, self.fps, self.speed = int(start), int(stop), float(fps), float(speed)
        self.audio_ok = False
        self._start_ms = start * 1000.0 / fps
        if audio_path and self._ensure_player():
            self._player.setSource(QUrl.fromLocalFile(audio_path))
            self._player.setPosition(int(round(self._start_ms)))
            self._player.setPlaybackRate(self.speed)
            self._player.play()
            self.audio_ok = True
        self._clock.start()
        self.playing = True
        self._last = -1
        self._offset_ms, self._last_pos = 0.0, -1
        self._timer.start()

    @property
    def tick_ms(self) -> int:
        return self._timer.interval()

    @tick_ms.setter
    def tick_ms(self, ms: int) -> None:
        self._timer.setInterval(int(ms))

    def wait_for(self, predicate) -> None:
        """Poll `predicate()` from the event loop until it returns True (no busy loop, no processEvents)."""
        self._wait_pred = predicate
        self._waiter.start()

    def cancel_wait(self) -> None:
        self._waiter.stop()
        self._wait_pred = None

    def _poll_wait(self) -> None:
        if self._wait_pred is None or self._wait_pred():
            self.cancel_wait()

    def stop(self) -> None:
        was = self.playing
        self.playing = False
        self._timer.stop()
        if self._player is not None:
            stop_player(self._player, self._audio_out)
        if was:
            self.stopped.emit()

    def audio_frame(self):
        """Where the audio output is, in frames (None when there is no audio playing)."""
        if not self.audio_ok or self._player is None:
            return None
        if self._player.playbackState() != QMediaPlayer.PlayingState:
            return None
        return self._player.position() / 1000.0 * self.fps

    def device_name(self) -> str:
        """The audio output device's description ("none" when there is no audio output)."""
        if self._audio_out is None:
            return "none"
        dev = self._audio_out.device()
        return dev.description() if not dev.isNull() else "none"

    def current_frame(self) -> int:
        """The wall clock, kept locked to the audio position: the audio position only moves in steps (its
        buffer size), the wall clock is smooth; each new audio position pulls the wall clock's offset towards
        it (a large error is taken at once)."""
        wall = self._start_ms + self._clock.elapsed() * self.speed
        pos_f = self.audio_frame()
        if pos_f is not None:
            pos = self._player.position()
            if pos != self._last_pos and pos >= self._start_ms:
                self._last_pos = pos
                err = pos - (wall + self._offset_ms)
                self._offset_ms += err if abs(err) > self.RELOCK_MS else err * self.LOCK_GAIN
        return int((wall + self._offset_ms) / 1000.0 * self.fps + 1e-6)

    def _tick(self) -> None:
        f = max(self.current_frame(), self._last)   # the audio clock may lag the wall clock: never step back
        if f >= self.stop_frame:
            self.frame.emit(self.stop_frame - 1)
            self.stop()
            return
        if f != self._last:
            self._last = f
            self.frame.emit(f)
