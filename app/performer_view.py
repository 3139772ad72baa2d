"""The voice performer's picture beside the face view, in step with the timeline (issue 18).

Shown while the active voice is a performer video (File ▸ Add Performer Video…): at the playhead, the performer's
frame whose moment of the voice plays there (`core.performer.performer_positions`, the dub's own mapping, with the
editor's voice offset). The file is shown as recorded, in step with its waveform: the performer's own A/V offset is
what a dub finds and corrects, and it says so in its messages. Frames are read on a `LatestWorker` (only the newest
request is decoded), so scrubbing and playback never wait for it.
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QObject

from core import media
from core.performer import performer_positions

from .face_view import ImageCanvas
from .timeline import timecode
from .workers import LatestWorker


class PerformerView(ImageCanvas):
    """One frame of the performer's video with a badge: its time in that video."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.placeholder = "Performer video"
        self.caption = ""

    def show_frame(self, frame, caption: str) -> None:
        self.caption = caption
        self.set_image(frame)

    def show_message(self, text: str) -> None:
        self.caption = ""
        self.placeholder = text
        self.set_image(None)

    def paint_overlay(self, p) -> None:
        if self.caption:
            self.badge(p, self.caption)


class PerformerFrames:
    """Lives on the worker thread: one reader of the performer's video at a time."""

    def __init__(self):
        self.reader: Optional[media.FrameReader] = None

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        self.reader = None

    def compute(self, playhead: int, payload):
        """-> (performer frame index, BGR frame or None when the voice is not playing there, performer fps)."""
        path, fps, voice_offset = payload
        if self.reader is None or self.reader.path != path:
            self.close()
            self.reader = media.FrameReader(path)
        info = self.reader.info
        index = int(round(float(performer_positions([playhead], fps, voice_offset, info.fps)[0])))
        if not 0 <= index < info.num_frames:
            return index, None, info.fps
        return index, self.reader.read(index), info.fps


class PerformerDisplay(QObject):
    def __init__(self, win):
        super().__init__(win)
        self.win, self.session, self.view = win, win.session, win.performer_view
        self.frames = PerformerFrames()
        self.loader = LatestWorker(self.frames.compute, "performer-loader")
        self.loader.ready.connect(self._on_frame)
        self.loader.failed.connect(lambda i, msg: self.view.show_message(f"The performer video cannot be shown: {msg}"))
        self.loader.start()
        self._path: Optional[str] = None
        ev = self.session.events
        ev.connect_all(lambda e: self.refresh(), "project", "media", "voices", "edits", "playhead")
        self.view.setVisible(False)

    def refresh(self) -> None:
        s = self.session
        path = s.performer_video() if s.info is not None else None
        if path != self._path:
            self._path = path
            self.loader.call_soon(self.frames.close)
            self.view.setVisible(path is not None)
            self.view.show_message("Performer video")
        if path is not None:
            self.loader.request(s.playhead, (path, s.fps, s.project.edits.voice_offset))

    def _on_frame(self, playhead: int, result) -> None:
        if self.win.jobs.closing or self._path is None:
            return
        if playhead != self.session.playhead and not self.win.playback.playing:
            return          # a stale frame: a newer one is on its way
        index, frame, fps = result
        if frame is None:
            self.view.show_message("The performer's voice does not play here" if index < 0
                                   else "The performer's video has ended")
        else:
            self.view.show_frame(frame, f"Performer  {timecode(index, fps)}  ·  frame {index}")

    def shutdown(self) -> None:
        self.loader.call_soon(self.frames.close)
        self.loader.stop()
