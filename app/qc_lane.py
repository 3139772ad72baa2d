"""The QC lane under the sync lane: the dub's frames worth a look (core.qc), one row per kind, shaded where
flagged; hovering names the kinds at that frame. Filled by Score Dubbed Result (and by an export with scoring),
range by range like the dubbed sync curve."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QToolTip

from core.qc.rules import DESCRIPTIONS, KINDS

from .frame_lane import FrameLane
from .sync_track import _step_fill
from .timeline import runs

COLORS = {"blur": (90, 160, 255), "seam": (255, 170, 40), "flicker": (230, 80, 200), "open_in_silence": (80, 220, 200)}
SHORT = {"blur": "blur", "seam": "seam", "flicker": "flicker", "open_in_silence": "open"}


class QCLane(FrameLane):
    def __init__(self, parent=None):
        super().__init__(min_height=56, parent=parent)
        pi = self.getPlotItem()
        pi.setYRange(0, len(KINDS), padding=0.02)
        ax = pi.getAxis("left")
        ax.setTicks([[(len(KINDS) - 1 - r + 0.5, SHORT[k]) for r, k in enumerate(KINDS)]])
        self.items = {}
        for r, k in enumerate(KINDS):
            it = pg.PlotCurveItem(pen=None)
            pi.addItem(it)
            self.items[k] = it
        self.checked_item = pg.PlotCurveItem(pen=None)
        pi.addItem(self.checked_item)
        self.playhead = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(255, 70, 70, width=2))
        pi.addItem(self.playhead)
        self.label = pg.TextItem("Quality check: not run yet (Analyze ▸ Score Dubbed Result)", color=(200, 200, 205),
                                 anchor=(0, 0))
        self.label.setZValue(20)
        pi.addItem(self.label, ignoreBounds=True)
        pi.vb.sigXRangeChanged.connect(self._place_label)
        self.flags: Dict[str, np.ndarray] = {}
        self.checked: Optional[np.ndarray] = None
        self.setMouseTracking(True)
        self.scene().sigMouseMoved.connect(self._hover)

    def set_flags(self, flags: Optional[Dict[str, np.ndarray]], checked: Optional[np.ndarray] = None) -> None:
        """flags: {kind: (num_frames,) bool} for the whole clip; checked: frames the check covered."""
        self.flags = {} if flags is None else {k: np.asarray(v, bool) for k, v in flags.items()}
        self.checked = None if checked is None else np.asarray(checked, bool)
        top = len(KINDS)
        for r, k in enumerate(KINDS):
            it = self.items[k]
            f = self.flags.get(k)
            if f is None or not f.any():
                it.clear()
                continue
            edges, vals = _step_fill(f)
            y0 = top - 1 - r + 0.1
            it.setData(edges, y0 + vals * 0.8, stepMode="center", fillLevel=y0, brush=pg.mkBrush(*COLORS[k], 200),
                       pen=None)
        if self.checked is not None and self.checked.any():
            edges, vals = _step_fill(self.checked)
            self.checked_item.setData(edges, vals * top, stepMode="center", fillLevel=0,
                                      brush=pg.mkBrush(255, 255, 255, 14), pen=None)
        else:
            self.checked_item.clear()
        self.label.setText(self.summary())

    def flagged(self) -> np.ndarray:
        n = max((len(v) for v in self.flags.values()), default=0)
        out = np.zeros(n, bool)
        for v in self.flags.values():
            out[:len(v)] |= v
        return out

    def summary(self) -> str:
        if self.checked is None or not self.checked.any():
            return "Quality check: not run yet (Analyze ▸ Score Dubbed Result)"
        n = int(self.checked.sum())
        parts = [f"{int(self.flags[k][self.checked].sum())} {SHORT[k]}" for k in KINDS if k in self.flags]
        return f"Quality check: {int(self.flagged().sum())} of {n} checked frames flagged ({', '.join(parts)})"

    def flagged_runs(self):
        return runs(self.flagged())

    def kinds_at(self, frame: int) -> list:
        return [k for k in KINDS if k in self.flags and 0 <= frame < len(self.flags[k]) and self.flags[k][frame]]

    def hover_text(self, frame: int) -> str:
        kinds = self.kinds_at(frame)
        if not kinds:
            if self.checked is not None and 0 <= frame < len(self.checked) and self.checked[frame]:
                return f"Frame {frame}: no quality flag"
            return f"Frame {frame}: not checked"
        return f"Frame {frame}: " + "; ".join(DESCRIPTIONS[k] for k in kinds)

    def _hover(self, pos) -> None:
        pt = self.getPlotItem().vb.mapSceneToView(pos)
        frame = int(np.floor(pt.x()))
        text = self.hover_text(frame)
        self.setToolTip(text)
        if self.underMouse():
            QToolTip.showText(self.mapToGlobal(QPoint(int(pos.x()), int(pos.y()))), text, self)
