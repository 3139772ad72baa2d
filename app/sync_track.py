"""Sync-confidence lane under the timeline, and the status panel with LSE-D / LSE-C / offset.

Two curves on the shared frame axis: *before* (the original video scored against the active voice: where
the dub has work to do) and *after* (the dubbed result scored against the voice). Stretches whose
confidence is below the threshold are shaded red, frames without a face grey.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel

from core.sync import lane as sync_lane

from .frame_lane import FrameLane
from .timeline import runs


def _step_fill(mask: np.ndarray, offset: int = 0):
    """(edges, values) for a stepMode='center' fill covering the True runs of `mask`."""
    edges, vals = [float(offset)], []
    last = 0
    for a, b in runs(mask):
        if a > last:
            vals.append(0.0)
            edges.append(float(a + offset))
        vals.append(1.0)
        edges.append(float(b + offset))
        last = b
    if last < len(mask):
        vals.append(0.0)
        edges.append(float(len(mask) + offset))
    return np.array(edges), np.array(vals)


class SyncTrack(FrameLane):
    def __init__(self, parent=None):
        super().__init__(min_height=70, parent=parent)
        self.threshold = sync_lane.LOW_THRESHOLD
        self.judgeable = True      # False: the scorer cannot read this face (core.sync.lane.judgeable): grey
        self.voiced: Optional[np.ndarray] = None
        self.curves = {}          # kind -> (x, y)
        self.shown = "before"
        pi = self.getPlotItem()
        pi.getAxis("bottom").setHeight(0)
        pi.setYRange(0, 8, padding=0.02)
        self._ymax = 8.0
        self._ymin = 0.0
        self.low_item = pg.PlotCurveItem(pen=None)
        self.noface_item = pg.PlotCurveItem(pen=None)
        self.before_curve = pg.PlotCurveItem(pen=pg.mkPen(150, 170, 255, width=1.5), name="before")
        self.after_curve = pg.PlotCurveItem(pen=pg.mkPen(80, 220, 120, width=2), name="after")
        self.thr_line = pg.InfiniteLine(pos=self.threshold, angle=0, movable=False,
                                        pen=pg.mkPen(230, 90, 90, style=Qt.DashLine))
        self.playhead = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(255, 70, 70, width=2))
        self.label = pg.TextItem("Sync confidence", color=(200, 200, 205), anchor=(0, 0))
        self.label.setZValue(20)
        for it in (self.noface_item, self.low_item, self.before_curve, self.after_curve, self.thr_line,
                   self.playhead):
            pi.addItem(it)
        pi.addItem(self.label, ignoreBounds=True)
        pi.vb.sigXRangeChanged.connect(self._place_label)

    # ---- data ---------------------------------------------------------------------------------------------
    def clear_curves(self) -> None:
        self.curves.clear()
        self.before_curve.setData([], [])
        self.after_curve.setData([], [])
        self.low_item.clear()
        self.label.setText("Sync confidence: not scored yet")

    def set_curve(self, kind: str, per_frame: Optional[np.ndarray], offset: int = 0) -> None:
        """kind: 'before' or 'after'; per_frame[i] belongs to frame offset + i."""
        item = self.before_curve if kind == "before" else self.after_curve
        if per_frame is None:
            self.curves.pop(kind, None)
            item.setData([], [])
        else:
            y = np.asarray(per_frame, np.float64)
            x = np.arange(len(y), dtype=np.float64) + offset + 0.5
            self.curves[kind] = (x, y, offset)
            finite = np.isfinite(y)
            item.setData(x, np.where(finite, y, np.nan), connect="finite")
            if finite.any():
                self._ymax = max(self._ymax, float(np.nanmax(y)) * 1.1)
                self._ymin = min(self._ymin, float(np.nanmin(y)) * 1.1)
                self.getPlotItem().setYRange(self._ymin, self._ymax, padding=0.02)
        self.shown = "after" if "after" in self.curves else "before"
        self._update_low()

    def _voiced(self, n: int, offset: int) -> np.ndarray:
        v = np.ones(n, bool) if self.voiced is None else np.zeros(n, bool)
        if self.voiced is not None:
            part = self.voiced[offset:offset + n]
            v[:len(part)] = part
        return v

    def _low(self, y: np.ndarray, offset: int) -> np.ndarray:
        """core.sync.lane.low_frames of the shown curve: a voiced frame with a confidence below the threshold
        (frames the scorer could not judge are NaN in the curve)."""
        low = sync_lane.low_frames(y, self._voiced(len(y), offset), np.isfinite(y), self.threshold)
        return low if self.judgeable else np.zeros_like(low)

    def _update_low(self) -> None:
        c = self.curves.get(self.shown)
        if c is None:
            self.low_item.clear()
            self.label.setText("Sync confidence: not scored yet")
            return
        x, y, offset = c
        judged = np.isfinite(y) & self._voiced(len(y), offset)
        lo = self._ymin
        if not self.judgeable:      # grey over the voiced frames: no verdict rather than everything red
            edges, vals = _step_fill(judged, offset)
            self.low_item.setData(edges, lo + vals * (self._ymax - lo), stepMode="center", fillLevel=lo,
                                  brush=pg.mkBrush(150, 150, 150, 90), pen=None)
            self.label.setText(f"Sync confidence ({self.shown}): {sync_lane.CANNOT_JUDGE}")
            return
        low = self._low(y, offset)
        edges, vals = _step_fill(low, offset)
        self.low_item.setData(edges, lo + vals * (self._ymax - lo), stepMode="center", fillLevel=lo,
                              brush=pg.mkBrush(230, 60, 60, 70), pen=None)
        frac = float(low.sum()) / max(1, int(judged.sum()))
        self.label.setText(f"Sync confidence ({self.shown}): {100 * frac:.0f}% of voiced frames low")

    def set_voiced(self, voiced: Optional[np.ndarray]) -> None:
        """Per video frame: is the voice active (silent frames carry no sync evidence and are never low)."""
        self.voiced = None if voiced is None else np.asarray(voiced, bool)
        self._update_low()

    def low_mask(self, num_frames: int) -> np.ndarray:
        """(num_frames,) bool: the frames shaded low now (the shown curve)."""
        out = np.zeros(num_frames, bool)
        c = self.curves.get(self.shown)
        if c is not None:
            x, y, offset = c
            low = self._low(y, offset)[:max(0, num_frames - offset)]
            out[offset:offset + len(low)] = low
        return out

    def set_judgeable(self, judgeable: bool) -> None:
        if bool(judgeable) != self.judgeable:
            self.judgeable = bool(judgeable)
            self._update_low()

    def set_threshold(self, value: float) -> None:
        if value != self.threshold:
            self.threshold = float(value)
            self.thr_line.setPos(self.threshold)
            self._update_low()

    def low_runs(self):
        c = self.curves.get(self.shown)
        if c is None:
            return []
        x, y, offset = c
        return [(a + offset, b + offset) for a, b in runs(self._low(y, offset))]

    def set_no_face(self, missing: Optional[np.ndarray]) -> None:
        if missing is None or not np.any(missing):
            self.noface_item.clear()
            return
        edges, vals = _step_fill(np.asarray(missing, bool))
        self.noface_item.setData(edges, vals * 2000.0 - 1000.0, stepMode="center", fillLevel=-1000.0,
                                 brush=pg.mkBrush(140, 140, 140, 60), pen=None)


ROW_TITLES = {"before": "Original vs voice", "after": "Dubbed vs voice"}


class SyncStatusPanel(QFrame):
    """LSE-D, LSE-C, AV offset and scorer, before and after dubbing; the current frame's confidence."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.StyledPanel)
        g = QGridLayout(self)
        g.setContentsMargins(8, 4, 8, 4)
        g.setHorizontalSpacing(14)
        g.setVerticalSpacing(2)
        heads = ["", "LSE-D ↓", "LSE-C ↑", "Offset", "Scorer"]
        for c, h in enumerate(heads):
            lab = QLabel(f"<b>{h}</b>")
            g.addWidget(lab, 0, c)
        self.cells = {}
        self.row_labels = {}
        for r, kind in enumerate(("before", "after"), start=1):
            self.row_labels[kind] = QLabel(ROW_TITLES[kind])
            g.addWidget(self.row_labels[kind], r, 0)
            for c, key in enumerate(("lse_d", "lse_c", "offset", "scorer"), start=1):
                lab = QLabel("–")
                lab.setObjectName(f"{kind}_{key}")
                lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
                g.addWidget(lab, r, c)
                self.cells[(kind, key)] = lab
        self.frame_label = QLabel("")
        g.addWidget(self.frame_label, 0, 5, 3, 1, Qt.AlignRight | Qt.AlignVCenter)
        g.setColumnStretch(5, 1)

    def set_report(self, kind: str, report, frames=None) -> None:
        """`frames` = (first, end) when the report covers part of the clip (a range export or a re-score)."""
        title = ROW_TITLES[kind] if frames is None else f"{ROW_TITLES[kind]}, frames {frames[0]}–{frames[1] - 1}"
        self.row_labels[kind].setText(title)
        if report is None:
            for key in ("lse_d", "lse_c", "offset", "scorer"):
                self.cells[(kind, key)].setText("–")
            return
        self.cells[(kind, "lse_d")].setText(f"{report.lse_d:.2f}")
        self.cells[(kind, "lse_c")].setText(f"{report.lse_c:.2f}")
        self.cells[(kind, "offset")].setText(f"{report.offset_frames:+d} frames")
        self.cells[(kind, "scorer")].setText(str(report.scorer))

    def text(self, kind: str, key: str) -> str:
        return self.cells[(kind, key)].text()

    def set_frame_info(self, text: str) -> None:
        self.frame_label.setText(text)
