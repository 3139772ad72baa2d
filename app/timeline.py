"""The timeline: frame ruler with timecode, thumbnails, face-missing marks, in/out range and the playhead.

Frame f occupies [f, f+1) on the time axis; the playhead is drawn at the frame's centre (f + 0.5). The same
axis (frame units) is used by the waveform and sync plots, which follow `viewChanged`.

Mouse: click/drag to scrub, Shift+drag to set the in/out range, wheel to zoom around the cursor,
Shift+wheel (or a horizontal wheel) / middle-drag to pan. Keyboard stepping is done by the window's actions.
"""
from __future__ import annotations

import bisect
import math
from typing import Dict, Optional, Tuple

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget


def timecode(frame: int, fps: float) -> str:
    """HH:MM:SS:FF (non-drop-frame; FF counts frames within the second at the rounded rate)."""
    if fps <= 0:
        return f"{frame}"
    nominal = max(1, int(round(fps)))
    secs = frame / fps
    whole = int(math.floor(secs + 1e-9))
    ff = int(frame - round(whole * fps))
    ff = min(max(ff, 0), nominal - 1)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}:{ff:02d}"


def runs(mask: np.ndarray):
    """[(start, stop)) runs of True in a bool array."""
    m = np.asarray(mask, bool)
    if m.size == 0:
        return []
    d = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    stops = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), stops.tolist()))


class TimelineWidget(QWidget):
    playheadChanged = Signal(int)
    viewChanged = Signal(float, float)
    rangeChanged = Signal(object)          # (in, out) or None

    RULER_H = 22
    THUMB_H = 46
    MARK_H = 10
    EDIT_H = 12
    OVERRIDE_COLORS = {"keep_original": QColor(120, 140, 170), "mouth_closed": QColor(170, 110, 210),
                       "engine": QColor(60, 190, 190), "voice_driven": QColor(200, 170, 80)}
    MIN_VIEW = 8.0
    GUTTER = 46          # left column, the same width as the plots' axes, so frame x positions line up

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMinimumHeight(self.RULER_H + self.THUMB_H + self.MARK_H + self.EDIT_H + 2)
        self.setMouseTracking(False)
        self.num_frames = 0
        self.fps = 25.0
        self.playhead = 0
        self.v0, self.v1 = 0.0, 1.0
        self.range: Optional[Tuple[int, int]] = None
        self.no_face_runs = []
        self.damage_runs = []            # [(start, stop)) frames whose input is damaged (hatched)
        self.edits = None
        self.thumbs: Dict[int, QPixmap] = {}
        self._thumb_keys: list = []
        self.thumb_aspect = 4 / 3
        self._drag = None           # "scrub" | "range" | "pan"
        self._drag_anchor = 0.0
        self.setToolTip("Click or drag to scrub · Shift+drag: set the in/out range · wheel: zoom · "
                        "Shift+wheel or middle-drag: pan")

    def sizeHint(self) -> QSize:
        return QSize(800, self.RULER_H + self.THUMB_H + self.MARK_H + self.EDIT_H + 2)

    # ---- model --------------------------------------------------------------------------------------------
    def set_media(self, num_frames: int, fps: float, aspect: float = 4 / 3) -> None:
        self.num_frames = max(0, int(num_frames))
        self.fps = float(fps) if fps > 0 else 25.0
        self.thumb_aspect = aspect if aspect > 0 else 4 / 3
        self.thumbs.clear()
        self._thumb_keys = []
        self.no_face_runs = []
        self.range = None
        self.playhead = 0
        self.set_view(0.0, float(max(1, self.num_frames)))
        self.update()

    def set_playhead(self, frame: int, emit: bool = True, follow: bool = True) -> None:
        if self.num_frames <= 0:
            return
        frame = int(min(max(frame, 0), self.num_frames - 1))
        changed = frame != self.playhead
        self.playhead = frame
        if follow:
            self.ensure_visible(frame)
        self.update()
        if changed and emit:
            self.playheadChanged.emit(frame)

    def ensure_visible(self, frame: int) -> None:
        w = self.v1 - self.v0
        if frame < self.v0:
            self.set_view(frame - 0.1 * w, frame + 0.9 * w)
        elif frame + 1 > self.v1:
            self.set_view(frame + 1 - 0.9 * w, frame + 1 + 0.1 * w)

    def set_view(self, v0: float, v1: float) -> None:
        n = float(max(1, self.num_frames))
        w = min(max(v1 - v0, min(self.MIN_VIEW, n)), n)
        v0 = min(max(v0, 0.0), n - w)
        v0, v1 = v0, v0 + w
        if (v0, v1) != (self.v0, self.v1):
            self.v0, self.v1 = v0, v1
            self.update()
            self.viewChanged.emit(v0, v1)

    def zoom(self, factor: float, anchor: Optional[float] = None) -> None:
        """factor > 1 zooms in. `anchor` (frame units) stays under the same pixel."""
        if anchor is None:
            anchor = self.playhead + 0.5
        w = self.v1 - self.v0
        nw = w / factor
        t = (anchor - self.v0) / w if w else 0.5
        self.set_view(anchor - t * nw, anchor - t * nw + nw)

    def pan(self, frames: float) -> None:
        self.set_view(self.v0 + frames, self.v1 + frames)

    def fit(self) -> None:
        self.set_view(0.0, float(max(1, self.num_frames)))

    def set_range(self, rng: Optional[Tuple[int, int]], emit: bool = True) -> None:
        if rng is not None:
            a, b = int(rng[0]), int(rng[1])
            a, b = max(0, min(a, b)), min(self.num_frames, max(a, b))
            rng = (a, b) if b > a else None
        if rng != self.range:
            self.range = rng
            self.update()
            if emit:
                self.rangeChanged.emit(rng)

    def set_no_face(self, missing: Optional[np.ndarray]) -> None:
        self.no_face_runs = runs(missing) if missing is not None else []
        self.update()

    def set_damage(self, damaged: Optional[np.ndarray]) -> None:
        """Hatch the frames whose picture or voice is damaged (bool per frame; None: none)."""
        self.damage_runs = runs(damaged) if damaged is not None else []
        self.update()

    def set_edits(self, edits) -> None:
        """Show the corrections (core.edits.Edits): range overrides, teeth shots, mask keyframes, box fixes."""
        self.edits = edits
        self.update()

    def set_thumbnail(self, frame: int, image: QImage) -> None:
        if frame not in self.thumbs:
            bisect.insort(self._thumb_keys, frame)
        tw = max(8, int(self.THUMB_H * self.thumb_aspect))
        self.thumbs[frame] = QPixmap.fromImage(image.scaled(tw - 1, self.THUMB_H, Qt.IgnoreAspectRatio,
                                                            Qt.SmoothTransformation))
        self.update()

    def thumbnail_frames(self, count: int = 120) -> list:
        if self.num_frames <= 0:
            return []
        count = min(count, self.num_frames)
        return sorted(set(np.linspace(0, self.num_frames - 1, count).round().astype(int).tolist()))

    # ---- geometry -----------------------------------------------------------------------------------------
    def track_width(self) -> int:
        return max(1, self.width() - self.GUTTER)

    def x_of(self, f: float) -> float:
        w = self.v1 - self.v0
        return self.GUTTER + (f - self.v0) / w * self.track_width() if w > 0 else float(self.GUTTER)

    def frame_at(self, x: float) -> float:
        return self.v0 + (x - self.GUTTER) / self.track_width() * (self.v1 - self.v0)

    # ---- painting -----------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        W, H = self.width(), self.height()
        p.fillRect(0, 0, W, H, QColor(38, 40, 44))
        if self.num_frames <= 0:
            p.setPen(QColor(150, 150, 150))
            p.drawText(self.rect(), Qt.AlignCenter, "Open a video to see its timeline (File ▸ Open Video, or drop a file)")
            p.end()
            return
        ppf = self.track_width() / (self.v1 - self.v0)
        p.setClipRect(self.GUTTER, 0, W - self.GUTTER, H)
        self._paint_ruler(p, W, ppf)
        self._paint_thumbs(p, W)
        ty = self.RULER_H + self.THUMB_H
        p.fillRect(0, ty, W, self.MARK_H, QColor(55, 58, 64))
        for a, b in self.no_face_runs:
            if b < self.v0 or a > self.v1:
                continue
            x0, x1 = self.x_of(a), self.x_of(b)
            p.fillRect(QRectF(x0, ty, max(1.0, x1 - x0), self.MARK_H), QColor(220, 60, 60))
        self._paint_edits(p, W, ty + self.MARK_H)
        self._paint_damage(p, H)
        # frames past the end of the clip
        xe = self.x_of(self.num_frames)
        if xe < W:
            p.fillRect(QRectF(xe, 0, W - xe, H), QColor(20, 20, 22))
        # in/out range
        if self.range is not None:
            a, b = self.range
            xa, xb = self.x_of(a), self.x_of(b)
            dim = QColor(0, 0, 0, 120)
            if xa > self.GUTTER:
                p.fillRect(QRectF(self.GUTTER, self.RULER_H, xa - self.GUTTER, H - self.RULER_H), dim)
            if xb < W:
                p.fillRect(QRectF(xb, self.RULER_H, W - xb, H - self.RULER_H), dim)
            pen = QPen(QColor(255, 200, 40), 2)
            p.setPen(pen)
            p.drawLine(QPointF(xa, self.RULER_H - 6), QPointF(xa, H))
            p.drawLine(QPointF(xb, self.RULER_H - 6), QPointF(xb, H))
            p.drawLine(QPointF(xa, self.RULER_H - 5), QPointF(xb, self.RULER_H - 5))
        # playhead
        xp = self.x_of(self.playhead + 0.5)
        p.setPen(QPen(QColor(255, 70, 70), 2))
        p.drawLine(QPointF(xp, 0), QPointF(xp, H))
        p.setBrush(QColor(255, 70, 70))
        p.drawPolygon(QPolygonF([QPointF(xp - 6, 0), QPointF(xp + 6, 0), QPointF(xp, 8)]))
        p.setClipping(False)
        self._paint_gutter(p, H)
        p.end()

    def _paint_damage(self, p: QPainter, H: int) -> None:
        """Damaged input: an orange wash hatched with diagonal lines over the whole height below the ruler."""
        for a, b in self.damage_runs:
            if b < self.v0 or a > self.v1:
                continue
            x0, x1 = self.x_of(a), self.x_of(b)
            r = QRectF(x0, self.RULER_H, max(2.0, x1 - x0), H - self.RULER_H)
            p.fillRect(r, QColor(255, 140, 0, 70))
            p.fillRect(r, QBrush(QColor(255, 170, 40, 230), Qt.BDiagPattern))
            p.fillRect(QRectF(x0, self.RULER_H - 4, max(2.0, x1 - x0), 4), QColor(255, 140, 0))

    def _paint_edits(self, p: QPainter, W: int, y: int) -> None:
        p.fillRect(0, y, W, self.EDIT_H, QColor(45, 47, 52))
        e = self.edits
        if e is None:
            return
        h = self.EDIT_H
        for o in e.overrides:
            x0, x1 = self.x_of(o.start), self.x_of(o.end)
            p.fillRect(QRectF(x0, y + 1, max(1.0, x1 - x0), h - 2), self.OVERRIDE_COLORS.get(o.kind, QColor(200, 200, 200)))
        for t in e.teeth_shots:
            x0, x1 = self.x_of(t.start), self.x_of(t.end)
            p.fillRect(QRectF(x0, y + h - 3, max(1.0, x1 - x0), 3), QColor(250, 250, 250))
        p.setPen(QPen(QColor(255, 150, 40), 2))
        for b in e.box_fixes:
            x = self.x_of(b.frame + 0.5)
            p.drawLine(QPointF(x, y), QPointF(x, y + h))
        p.setPen(QPen(QColor(20, 20, 20), 1))
        p.setBrush(QColor(255, 220, 80))
        for k in e.mask_keyframes:
            x, c = self.x_of(k.frame + 0.5), y + h / 2
            p.drawPolygon(QPolygonF([QPointF(x, c - 5), QPointF(x + 5, c), QPointF(x, c + 5), QPointF(x - 5, c)]))

    def _paint_gutter(self, p: QPainter, H: int) -> None:
        p.fillRect(0, 0, self.GUTTER, H, QColor(30, 31, 35))
        p.setPen(QColor(150, 152, 158))
        f = QFont(self.font())
        f.setPointSizeF(max(7.0, f.pointSizeF() * 0.8))
        p.setFont(f)
        p.drawText(QRectF(0, 0, self.GUTTER - 4, self.RULER_H), Qt.AlignRight | Qt.AlignVCenter, "time")
        p.drawText(QRectF(0, self.RULER_H, self.GUTTER - 4, self.THUMB_H), Qt.AlignRight | Qt.AlignVCenter, "video")
        p.drawText(QRectF(0, self.RULER_H + self.THUMB_H, self.GUTTER - 4, self.MARK_H),
                   Qt.AlignRight | Qt.AlignVCenter, "face")
        p.drawText(QRectF(0, self.RULER_H + self.THUMB_H + self.MARK_H, self.GUTTER - 4, self.EDIT_H),
                   Qt.AlignRight | Qt.AlignVCenter, "edits")

    def _tick_step(self, ppf: float, min_px: float) -> int:
        fps = max(1, int(round(self.fps)))
        steps = [1, 2, 5, 10] + [fps * s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)]
        for s in sorted(set(steps)):
            if s * ppf >= min_px:
                return s
        return steps[-1]

    def _paint_ruler(self, p: QPainter, W: int, ppf: float) -> None:
        p.fillRect(0, 0, W, self.RULER_H, QColor(30, 31, 35))
        major = self._tick_step(ppf, 90)
        minor = max(1, major // 5) if major >= 5 else 1
        f = QFont(self.font())
        f.setPointSizeF(max(7.0, f.pointSizeF() * 0.85))
        p.setFont(f)
        if minor * ppf >= 4:
            p.setPen(QColor(95, 98, 105))
            k0 = int(math.floor(self.v0 / minor)) * minor
            k = k0
            while k <= self.v1:
                x = self.x_of(k)
                p.drawLine(QPointF(x, self.RULER_H - 5), QPointF(x, self.RULER_H))
                k += minor
        k = int(math.floor(self.v0 / major)) * major
        while k <= self.v1:
            x = self.x_of(k)
            p.setPen(QColor(170, 172, 178))
            p.drawLine(QPointF(x, self.RULER_H - 10), QPointF(x, self.RULER_H))
            p.drawText(QPointF(x + 3, 11), timecode(k, self.fps) if major >= self.fps * 0.99 or major >= 5
                       else f"{k}")
            k += major

    def _paint_thumbs(self, p: QPainter, W: int) -> None:
        y = self.RULER_H
        p.fillRect(0, y, W, self.THUMB_H, QColor(45, 47, 52))
        if not self._thumb_keys:
            return
        tw = max(8, int(self.THUMB_H * self.thumb_aspect))
        n = int(math.ceil(self.track_width() / tw)) + 1
        for i in range(n):
            x = self.GUTTER + i * tw
            if self.frame_at(x) >= self.num_frames:
                break
            fc = min(self.frame_at(x + tw / 2), self.num_frames - 1)
            j = bisect.bisect_left(self._thumb_keys, fc)
            cands = [self._thumb_keys[k] for k in (j - 1, j) if 0 <= k < len(self._thumb_keys)]
            key = min(cands, key=lambda k: abs(k - fc))
            p.drawPixmap(x, y, self.thumbs[key])

    # ---- mouse ----------------------------------------------------------------------------------------
    def mousePressEvent(self, e) -> None:
        if self.num_frames <= 0:
            return
        x = e.position().x()
        f = self.frame_at(x)
        if e.button() == Qt.MiddleButton:
            self._drag, self._drag_anchor = "pan", f
        elif e.button() == Qt.LeftButton and e.modifiers() & Qt.ShiftModifier:
            self._drag, self._drag_anchor = "range", f
            a = int(round(f))
            self.set_range((a, a + 1))
        elif e.button() == Qt.LeftButton:
            self._drag = "scrub"
            self.set_playhead(int(math.floor(f)), follow=False)
        e.accept()

    def mouseMoveEvent(self, e) -> None:
        if self._drag is None:
            return
        f = self.frame_at(e.position().x())
        if self._drag == "scrub":
            self.set_playhead(int(math.floor(f)), follow=False)
        elif self._drag == "range":
            a, b = sorted((int(round(self._drag_anchor)), int(round(f))))
            self.set_range((a, max(b, a + 1)))
        elif self._drag == "pan":
            self.pan(self._drag_anchor - f)

    def mouseReleaseEvent(self, e) -> None:
        self._drag = None

    def wheelEvent(self, e) -> None:
        self.handle_wheel(e.angleDelta().x(), e.angleDelta().y(), e.modifiers(), self.frame_at(e.position().x()))
        e.accept()

    def handle_wheel(self, dx: int, dy: int, modifiers, anchor_frame: float) -> None:
        """Shared by the plots under the timeline: zoom at `anchor_frame`, or pan."""
        if self.num_frames <= 0:
            return
        w = self.v1 - self.v0
        if dx and not dy:
            self.pan(-dx / 120.0 * 0.1 * w)
        elif modifiers & Qt.ShiftModifier:
            self.pan(-(dy or dx) / 120.0 * 0.1 * w)
        elif dy:
            self.zoom(1.25 ** (dy / 120.0), anchor_frame)
