"""The current frame with the face tracking drawn over it: box, 68 landmarks and the blend-mask outline of the
chosen face; other faces thin and dashed (click one to choose it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

# iBUG-68 polylines: (start, stop, closed)
LANDMARK_GROUPS = [(0, 17, False), (17, 22, False), (22, 27, False), (27, 31, False), (31, 36, False),
                   (36, 42, True), (42, 48, True), (48, 60, True), (60, 68, True)]


def bgr_to_qimage(frame: np.ndarray) -> QImage:
    """A QImage view of a BGR uint8 frame (the array is kept alive by the caller)."""
    frame = np.ascontiguousarray(frame)
    h, w = frame.shape[:2]
    return QImage(frame.data, w, h, int(frame.strides[0]), QImage.Format_BGR888)


@dataclass
class FaceOverlay:
    track_id: int
    box: Optional[np.ndarray]          # (4,) or None when absent at this frame
    landmarks: Optional[np.ndarray]    # (68, 2) or None
    chosen: bool = False
    speaking: bool = False             # the face found speaking the clip's own sound in this shot


@dataclass
class OverlayState:
    faces: List[FaceOverlay] = field(default_factory=list)
    mask_outline: Optional[np.ndarray] = None   # (K, 2) frame coords, for the chosen face
    message: str = ""                           # e.g. "no face in this frame"
    polygons: list = field(default_factory=list)  # [(mode, (K, 2) frame coords)] hand-drawn mask areas
    fixed_box: Optional[np.ndarray] = None      # the editor's face box at this frame


class ImageCanvas(QWidget):
    """Draws one frame scaled to fit (aspect kept), centred. Subclasses paint on top in frame coordinates."""

    framePainted = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(200, 150)
        self.frame_index = -1
        self._img: Optional[QImage] = None
        self._arr = None
        self.placeholder = "No video"
        self.painted_index = -1

    def set_image(self, frame: Optional[np.ndarray], index: int = -1, size=None) -> None:
        """Show `frame`; `size` (w, h) is the frame's true size when `frame` is a reduced copy (overlays are
        in true frame coordinates)."""
        self._arr = None if frame is None else np.ascontiguousarray(frame)
        self._img = None if frame is None else bgr_to_qimage(self._arr)
        if frame is not None:
            self.frame_w, self.frame_h = size if size is not None else (frame.shape[1], frame.shape[0])
        self.frame_index = index
        self.update()

    frame_w = 1
    frame_h = 1

    @property
    def array(self):
        """The frame on screen (BGR), or None."""
        return self._arr

    def image_rect(self) -> QRectF:
        if self._img is None:
            return QRectF()
        w, h = self.frame_w, self.frame_h
        s = min(self.width() / w, self.height() / h)
        return QRectF((self.width() - w * s) / 2, (self.height() - h * s) / 2, w * s, h * s)

    def scale(self) -> float:
        return self.image_rect().width() / self.frame_w

    def to_widget(self, x: float, y: float) -> QPointF:
        r = self.image_rect()
        s = r.width() / self.frame_w
        return QPointF(r.x() + x * s, r.y() + y * s)

    def to_frame(self, p: QPointF):
        r = self.image_rect()
        s = r.width() / self.frame_w
        return (p.x() - r.x()) / s, (p.y() - r.y()) / s

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(22, 23, 26))
        if self._img is None:
            p.setPen(QColor(140, 140, 145))
            p.drawText(self.rect(), Qt.AlignCenter | Qt.TextWordWrap, self.placeholder)
            p.end()
            return
        p.setRenderHint(QPainter.SmoothPixmapTransform, True)
        self.paint_image(p)
        p.setRenderHint(QPainter.Antialiasing, True)
        self.paint_overlay(p)
        p.end()
        self.painted_index = self.frame_index
        self.framePainted.emit(self.frame_index)

    def paint_image(self, p: QPainter) -> None:
        p.drawImage(self.image_rect(), self._img)

    def paint_overlay(self, p: QPainter) -> None:
        pass

    def badge(self, p: QPainter, text: str, color=QColor(0, 0, 0, 170), corner="tl") -> None:
        f = QFont(self.font())
        f.setBold(True)
        p.setFont(f)
        fm = p.fontMetrics()
        w, h = fm.horizontalAdvance(text) + 12, fm.height() + 6
        r = self.image_rect()
        x = r.x() + 6 if corner in ("tl", "bl") else r.right() - w - 6
        y = r.y() + 6 if corner in ("tl", "tr") else r.bottom() - h - 6
        p.setPen(Qt.NoPen)
        p.setBrush(color)
        p.drawRoundedRect(QRectF(x, y, w, h), 4, 4)
        p.setPen(QColor(255, 255, 255))
        p.drawText(QRectF(x, y, w, h), Qt.AlignCenter, text)


class FaceView(ImageCanvas):
    """Tools: None (click a face to dub it), "box" (drag a face box), "add"/"remove" (click the corners of a
    mask area, double-click or Enter to finish, Esc to drop)."""

    trackClicked = Signal(int)
    boxDrawn = Signal(float, float, float, float)
    polygonDrawn = Signal(object, str)        # (K, 2) frame coords, "add" | "remove"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.ClickFocus)
        self.tool: Optional[str] = None
        self._drag_start = None
        self._drag_now = None
        self._poly: list = []
        self._hover = None
        self.placeholder = "Open a video (File ▸ Open Video…) or drop a video and a voice file here."
        self.overlay = OverlayState()
        self.show_box = True
        self.show_landmarks = True
        self.show_mask = True
        self.timecode = ""

    def set_overlay(self, overlay: OverlayState) -> None:
        self.overlay = overlay
        self.update()

    def paint_overlay(self, p: QPainter) -> None:
        ov = self.overlay
        r = self.image_rect()
        s = r.width() / self.frame_w
        labels = []
        p.save()
        p.translate(r.x(), r.y())
        p.scale(s, s)                      # draw in frame coordinates; cosmetic pens keep pixel widths
        if self.show_mask and ov.mask_outline is not None and len(ov.mask_outline) >= 3:
            pen = QPen(QColor(80, 200, 255), 1.8, Qt.DashLine)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.setBrush(QColor(80, 200, 255, 30))
            p.drawPolygon(QPolygonF([QPointF(x, y) for x, y in ov.mask_outline.tolist()]))
        for face in sorted(ov.faces, key=lambda f: f.chosen):   # chosen face on top
            if face.box is None or not np.all(np.isfinite(face.box)):
                continue
            col = QColor(60, 230, 120) if face.chosen else QColor(240, 200, 60)
            if self.show_box:
                pen = QPen(col, 2.5 if face.chosen else 1.2)
                pen.setCosmetic(True)
                if not face.chosen:
                    pen.setStyle(Qt.DashLine)
                p.setPen(pen)
                p.setBrush(Qt.NoBrush)
                x0, y0, x1, y1 = (float(v) for v in face.box)
                p.drawRect(QRectF(x0, y0, x1 - x0, y1 - y0))
                labels.append((col, x0, y0, f"face {face.track_id}" + (" (dubbed)" if face.chosen else " – click to dub")
                               + (" · speaks" if face.speaking else "")))
            if self.show_landmarks and face.landmarks is not None and np.all(np.isfinite(face.landmarks)):
                pts = [QPointF(x, y) for x, y in face.landmarks.tolist()]
                pen = QPen(QColor(col.red(), col.green(), col.blue(), 150), 1)
                pen.setCosmetic(True)
                p.setPen(pen)
                p.setBrush(Qt.NoBrush)
                for a, b, closed in LANDMARK_GROUPS:
                    poly = QPolygonF(pts[a:b])
                    if closed:
                        p.drawPolygon(poly)
                    else:
                        p.drawPolyline(poly)
                dot = QPen(QColor(255, 80, 80) if face.chosen else col, 4.0 if face.chosen else 3.0)
                dot.setCosmetic(True)
                dot.setCapStyle(Qt.RoundCap)
                p.setPen(dot)
                p.drawPoints(QPolygonF(pts))
        for mode, pts in ov.polygons:
            c = QColor(80, 230, 120) if mode == "add" else QColor(240, 80, 80)
            pen = QPen(c, 1.5)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.setBrush(QColor(c.red(), c.green(), c.blue(), 45))
            p.drawPolygon(QPolygonF([QPointF(x, y) for x, y in np.asarray(pts).tolist()]))
        if ov.fixed_box is not None:
            pen = QPen(QColor(255, 150, 40), 2, Qt.DashDotLine)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.setBrush(Qt.NoBrush)
            x0, y0, x1, y1 = (float(v) for v in ov.fixed_box)
            p.drawRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        # tool in progress
        if self.tool == "box" and self._drag_start is not None and self._drag_now is not None:
            pen = QPen(QColor(255, 150, 40), 2)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.setBrush(QColor(255, 150, 40, 30))
            p.drawRect(QRectF(QPointF(*self._drag_start), QPointF(*self._drag_now)))
        if self.tool in ("add", "remove") and self._poly:
            c = QColor(80, 230, 120) if self.tool == "add" else QColor(240, 80, 80)
            pen = QPen(c, 1.5)
            pen.setCosmetic(True)
            p.setPen(pen)
            pts = [QPointF(x, y) for x, y in self._poly] + ([QPointF(*self._hover)] if self._hover else [])
            p.drawPolyline(QPolygonF(pts))
        p.restore()
        if self.tool:
            hint = {"box": "Drag a box around the face", "add": "Click the corners of the area to ADD; "
                    "double-click to finish", "remove": "Click the corners of the area to REMOVE; double-click "
                    "to finish"}[self.tool]
            self.badge(p, hint, QColor(255, 150, 40, 200), "tr")
        fm = p.fontMetrics()
        for col, x0, y0, text in labels:
            a = self.to_widget(x0, y0)
            w, h = fm.horizontalAdvance(text) + 8, fm.height() + 2
            r = QRectF(a.x(), max(0.0, a.y() - h - 1), w, h)
            p.setPen(Qt.NoPen)
            p.setBrush(QColor(0, 0, 0, 150))
            p.drawRoundedRect(r, 3, 3)
            p.setPen(col)
            p.drawText(r, Qt.AlignCenter, text)
        if ov.message:
            self.badge(p, ov.message, QColor(200, 50, 50, 200), "tl")
        if self.timecode:
            self.badge(p, self.timecode, QColor(0, 0, 0, 160), "br")

    def set_layer(self, name: str, on: bool) -> None:
        """Show or hide an overlay layer: show_box | show_landmarks | show_mask."""
        setattr(self, name, bool(on))
        self.update()

    def set_tool(self, tool: Optional[str]) -> None:
        self.tool = tool
        self._drag_start = self._drag_now = self._hover = None
        self._poly = []
        self.setMouseTracking(tool in ("add", "remove"))
        self.setCursor(Qt.CrossCursor if tool else Qt.ArrowCursor)
        self.update()

    def mouseMoveEvent(self, e) -> None:
        if self._img is None:
            return
        if self.tool == "box" and self._drag_start is not None:
            self._drag_now = self.to_frame(e.position())
            self.update()
        elif self.tool in ("add", "remove") and self._poly:
            self._hover = self.to_frame(e.position())
            self.update()

    def mouseReleaseEvent(self, e) -> None:
        if self.tool == "box" and self._drag_start is not None and e.button() == Qt.LeftButton:
            (ax, ay), (bx, by) = self._drag_start, self.to_frame(e.position())
            self._drag_start = self._drag_now = None
            x0, x1 = sorted((ax, bx))
            y0, y1 = sorted((ay, by))
            x0, y0 = max(0.0, x0), max(0.0, y0)
            x1, y1 = min(float(self.frame_w), x1), min(float(self.frame_h), y1)
            self.update()
            if x1 - x0 >= 8 and y1 - y0 >= 8:
                self.boxDrawn.emit(x0, y0, x1, y1)

    def mouseDoubleClickEvent(self, e) -> None:
        if self.tool in ("add", "remove"):
            self._finish_polygon()

    def keyPressEvent(self, e) -> None:
        if self.tool in ("add", "remove") and e.key() in (Qt.Key_Return, Qt.Key_Enter):
            self._finish_polygon()
        elif self.tool and e.key() == Qt.Key_Escape:
            self.set_tool(self.tool)   # drop what is in progress, keep the tool
        else:
            super().keyPressEvent(e)

    def _finish_polygon(self) -> None:
        pts = []
        for q in self._poly:   # a double-click also delivered a press: drop repeated points
            if not pts or abs(q[0] - pts[-1][0]) + abs(q[1] - pts[-1][1]) > 1.0:
                pts.append(q)
        mode = self.tool
        self._poly, self._hover = [], None
        self.update()
        if len(pts) >= 3:
            self.polygonDrawn.emit(np.array(pts, np.float32), mode)

    def mousePressEvent(self, e) -> None:
        if self._img is None or e.button() != Qt.LeftButton:
            return
        x, y = self.to_frame(e.position())
        if self.tool == "box":
            self._drag_start = self._drag_now = (x, y)
            return
        if self.tool in ("add", "remove"):
            self._poly.append((x, y))
            self.update()
            return
        for face in self.overlay.faces:
            b = face.box
            if b is not None and np.all(np.isfinite(b)) and b[0] <= x <= b[2] and b[1] <= y <= b[3]:
                if not face.chosen:
                    self.trackClicked.emit(face.track_id)
                return
