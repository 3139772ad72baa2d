"""Dubbed preview at the playhead, and range playback with sound.

`PreviewController` owns a `core.pipeline.DubSession` (prepared once in a pool thread: probe, tracking,
voice, engine preparation) and a `LatestWorker` thread that renders the frame under the playhead on
demand; while the user scrubs, only the newest request is rendered (live playback renders from the same
session, see `live_playback`). `PreviewView` shows the result as after / before / split (drag the divider).
"""
from __future__ import annotations

import logging
from typing import Optional

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QSizePolicy

from core import pipeline

from .face_view import ImageCanvas, bgr_to_qimage
from .workers import Job, JobRunner, LatestWorker

log = logging.getLogger(__name__)


class PreviewView(ImageCanvas):
    """Shows (original, dubbed) for one frame. mode: 'after' | 'before' | 'split'."""

    MODES = ("after", "before", "split")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.placeholder = "Preview: turn it on (View ▸ Preview dubbed frame, or P) to see the dubbed frame here."
        self.mode = "after"
        self.split = 0.5
        self.status = ""
        self._orig = None
        self._dub = None
        self._orig_img = None
        self._dub_img = None
        self._dragging = False

    def set_pair(self, original: Optional[np.ndarray], dubbed: Optional[np.ndarray], index: int) -> None:
        self._orig = None if original is None else np.ascontiguousarray(original)
        self._dub = None if dubbed is None else np.ascontiguousarray(dubbed)
        self._orig_img = None if self._orig is None else bgr_to_qimage(self._orig)
        self._dub_img = None if self._dub is None else bgr_to_qimage(self._dub)
        base = self._dub if self._dub is not None else self._orig
        self.set_image(base, index)

    @property
    def original(self) -> Optional[np.ndarray]:
        return self._orig

    @property
    def dubbed(self) -> Optional[np.ndarray]:
        return self._dub

    def clear(self, message: str = "") -> None:
        self.set_pair(None, None, -1)
        if message:
            self.placeholder = message
        self.update()

    def set_mode(self, mode: str) -> None:
        if mode not in self.MODES:
            raise ValueError(mode)
        self.mode = mode
        self.update()

    def set_status(self, text: str) -> None:
        self.status = text
        self.update()

    def paint_image(self, p) -> None:
        r = self.image_rect()
        if self.mode == "before" or self._dub_img is None:
            p.drawImage(r, self._orig_img if self._orig_img is not None else self._img)
        elif self.mode == "after":
            p.drawImage(r, self._dub_img)
        else:
            w = self._dub_img.width()
            cut = int(round(self.split * w))
            p.drawImage(QRectF(r.x(), r.y(), r.width() * cut / w, r.height()), self._orig_img,
                        QRectF(0, 0, cut, self._orig_img.height()))
            p.drawImage(QRectF(r.x() + r.width() * cut / w, r.y(), r.width() * (w - cut) / w, r.height()),
                        self._dub_img, QRectF(cut, 0, w - cut, self._dub_img.height()))
            x = r.x() + r.width() * cut / w
            p.setPen(QPen(QColor(255, 255, 255), 2))
            p.drawLine(QPointF(x, r.y()), QPointF(x, r.bottom()))

    def paint_overlay(self, p) -> None:
        label = {"after": "DUBBED", "before": "ORIGINAL", "split": "ORIGINAL | DUBBED"}[self.mode]
        if self._dub_img is None:
            label = "ORIGINAL"
        self.badge(p, label, QColor(30, 110, 200, 200), "tl")
        if self.status:
            self.badge(p, self.status, QColor(0, 0, 0, 170), "bl")

    def mousePressEvent(self, e) -> None:
        if self.mode == "split" and self._img is not None:
            self._dragging = True
            self._set_split(e.position().x())

    def mouseMoveEvent(self, e) -> None:
        if self._dragging:
            self._set_split(e.position().x())

    def mouseReleaseEvent(self, e) -> None:
        self._dragging = False

    def _set_split(self, x: float) -> None:
        r = self.image_rect()
        if r.width() > 0:
            self.split = float(min(max((x - r.x()) / r.width(), 0.0), 1.0))
            self.update()


class PreviewController(QObject):
    """Lazily prepares a DubSession for the project's settings and renders frames on demand."""

    rendered = Signal(int, object, object)      # index, original, dubbed
    statusChanged = Signal(str)
    failed = Signal(str)
    ready = Signal()

    def __init__(self, runner: JobRunner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.session = None
        self.settings_key = None
        self.pending_index: Optional[int] = None
        self.enabled = False
        self.worker = LatestWorker(self._render, "preview-render")
        self.worker.ready.connect(self._on_rendered)
        self.worker.failed.connect(self._on_failed)
        self.worker.start()
        self._job: Optional[Job] = None
        self._live_mask = None
        self._live_edits = None

    # -- UI thread --
    def set_enabled(self, on: bool) -> None:
        self.enabled = on

    def request(self, settings, index: int) -> None:
        """Render output frame `index` for `settings` (DubSettings), preparing a session first if needed."""
        if not self.enabled:
            return
        self.pending_index = index
        session = self.prepare(settings)
        if session is not None:
            self.statusChanged.emit(f"Rendering frame {index}…")
            self.worker.request(index, session)

    def prepare(self, settings, patch: bool = True):
        """The session for `settings` when it is ready (corrections patched in), else None: it is being prepared
        in the background and `ready` follows. `patch=False`: the caller patches the corrections in itself
        (Play's renderers do, before their first frame: patching here too would race with them)."""
        key = _settings_key(settings)
        if self.session is not None and key == self.settings_key:
            if patch:
                self._sync_live(settings)
            else:
                self._live_mask, self._live_edits = _live_keys(settings)
            return self.session
        if self._job is not None and self._job.running and key == self.settings_key:
            return None
        self._drop_session()
        self.settings_key = key
        self.statusChanged.emit("Preparing the preview (tracking, voice, engine)…")

        def prepare(progress, cancel):
            return pipeline.DubSession(settings, progress=progress, cancel=cancel)

        job = Job("preview-prepare", prepare, "Preparing the dub for preview and playback")
        job.succeeded.connect(lambda s, j=job: self._on_prepared(j, s))
        job.failed.connect(lambda msg, j=job: self._on_prepare_failed(j, msg))
        job.cancelled.connect(lambda j=job: self._on_prepare_failed(j, None))
        self._job = job
        self.runner.start(job)
        return None

    def _sync_live(self, settings) -> None:
        """Changes that need no new session (mask, mask keyframes/areas, keep-original/engine ranges, teeth
        shots) are patched into the live session on the render thread, before the next render."""
        session = self.session
        m, edits = settings.mask, getattr(settings, "edits", None)
        mask_key, ej = _live_keys(settings)
        if mask_key != self._live_mask:
            self._live_mask = mask_key
            self.worker.call_soon(lambda: setattr(session.prep.ctx, "mask", m))
        if ej != self._live_edits and hasattr(session, "set_edits"):
            self._live_edits = ej
            self.worker.call_soon(lambda: session.set_edits(edits))

    def invalidate(self) -> None:
        self._drop_session()
        self.settings_key = None

    def _drop_session(self) -> None:
        if self._job is not None and self._job.running:
            self._job.cancel()
        self._job = None
        if self.session is not None:
            s = self.session
            self.session = None
            self.worker.call_soon(s.close)

    def _on_prepared(self, job: Job, session) -> None:
        if job is not self._job:  # superseded while preparing
            self.worker.call_soon(session.close)
            return
        self.session = session
        self._job = None
        self._live_mask, self._live_edits = _live_keys(session.settings)
        self.statusChanged.emit("")
        self.ready.emit()
        if self.enabled and self.pending_index is not None:
            self.statusChanged.emit(f"Rendering frame {self.pending_index}…")
            self.worker.request(self.pending_index, session)

    def _on_prepare_failed(self, job: Job, msg: Optional[str]) -> None:
        if job is not self._job:
            return
        self._job = None
        self.settings_key = None
        if msg:
            self.statusChanged.emit("Preview unavailable")
            self.failed.emit(msg)
        else:
            self.statusChanged.emit("Preview cancelled")

    def _on_rendered(self, index, result) -> None:
        original, dubbed = result
        self.statusChanged.emit("")
        self.rendered.emit(int(index), original, dubbed)

    def _on_failed(self, index, msg: str) -> None:
        self.statusChanged.emit("Render failed")
        self.failed.emit(msg)

    def shutdown(self) -> None:
        self._drop_session()
        self.worker.stop()

    # -- render thread --
    @staticmethod
    def _render(index, session):
        n = session.num_frames
        if index >= n:
            from core.errors import LipDubError

            raise LipDubError(f"Frame {index} is past the end of the dub ({n} frames: the voice is shorter "
                              "than the video). Move the playhead back or choose another length policy.")
        return session.render_frame(int(index))


def _live_keys(settings) -> tuple:
    """What a live session must be patched with when it changes: the mask's settings and the corrections."""
    m, edits = settings.mask, getattr(settings, "edits", None)
    return (m.dilation, m.feather, m.extent_up, m.extent_down, m.color_match), \
        (edits.to_json() if edits is not None else None)


def _settings_key(s):
    """What a DubSession is prepared from. The mask and the corrections that only affect rendering are left
    out (patched live); the voice offset, box fixes, mouth-closed and voice-driven ranges change the preparation."""
    e = getattr(s, "edits", None)
    structural = None
    if e is not None:
        j = e.to_json()
        structural = (j["voice_offset"], repr(j["box_fixes"]),
                      repr([o for o in j["overrides"] if o["kind"] in ("mouth_closed", "voice_driven")]),
                      tuple(sorted({o.get("engine") for o in j["overrides"] if o["kind"] == "engine"} - {None})))
    return (s.video, s.audio, s.engine, repr(sorted(s.engine_options.items())), s.face_track, tuple(s.pads), s.length_policy, s.device,
            s.models_dir, s.teeth_frame, s.teeth_strength, structural)
