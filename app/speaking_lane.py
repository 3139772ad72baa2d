"""The speaking-face lane under the sync lane: how likely each tracked face is speaking the original clip's own
sound, frame by frame (core.sync.asd.speaker; 0..1, one colour per face), and per shot the face found speaking (a
band along the top in that face's colour). The dubbed face's curve is drawn thick."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from .frame_lane import FrameLane

FACE_COLOURS = [(90, 220, 130), (250, 190, 70), (120, 170, 255), (240, 110, 170), (170, 240, 240),
                (200, 150, 255), (255, 140, 90), (190, 190, 190)]


def face_colour(track_id: int) -> tuple:
    return FACE_COLOURS[int(track_id) % len(FACE_COLOURS)]


class SpeakingLane(FrameLane):
    def __init__(self, parent=None):
        super().__init__(min_height=50, parent=parent)
        pi = self.getPlotItem()
        pi.setYRange(0, 1.12, padding=0.0)
        pi.getAxis("left").setTicks([[(0, "0"), (0.5, ".5"), (1, "1")]])
        self.curves: dict = {}
        self.bands: list = []
        self.half = pg.InfiniteLine(pos=0.5, angle=0, movable=False, pen=pg.mkPen(120, 120, 130, style=Qt.DotLine))
        self.playhead = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(255, 70, 70, width=2))
        self.label = pg.TextItem("Speaking (original sound): not analysed yet", color=(200, 200, 205), anchor=(0, 0))
        self.label.setZValue(20)
        pi.addItem(self.half)
        pi.addItem(self.playhead)
        pi.addItem(self.label, ignoreBounds=True)
        pi.vb.sigXRangeChanged.connect(self._place_label)
        self.result = None

    def reset(self, text: str = "Speaking (original sound): not analysed yet") -> None:
        pi = self.getPlotItem()
        for item in list(self.curves.values()) + self.bands:
            pi.removeItem(item)
        self.curves, self.bands, self.result = {}, [], None
        self.label.setText(text)

    def set_result(self, result, dubbed: Optional[int] = None, analysing: bool = False) -> None:
        """`result`: app.session.model.SpeakingResult (None: nothing yet); `dubbed`: the face the dub uses when
        one face is used throughout (None: the speaking face shot by shot)."""
        self.reset("Speaking (original sound): analysing…" if analysing else
                   "Speaking (original sound): not analysed yet")
        if result is None:
            return
        self.result = result
        pi = self.getPlotItem()
        lane = result.lane
        for tid in sorted(lane.prob):
            y = np.asarray(lane.prob[tid], np.float64)
            if not np.isfinite(y).any():
                continue
            r, g, b = face_colour(tid)
            thick = dubbed is None or dubbed == tid
            item = pg.PlotCurveItem(np.arange(len(y), dtype=np.float64) + 0.5, y, connect="finite",
                                    pen=pg.mkPen(r, g, b, 255 if thick else 150, width=2.2 if thick else 1.0))
            pi.addItem(item)
            self.curves[tid] = item
        named = []
        for shot in result.choice.shots:
            if shot.track_id is None:
                continue
            r, g, b = face_colour(shot.track_id)
            band = pg.PlotCurveItem([shot.start, shot.stop], [1.12, 1.12], fillLevel=1.04, pen=None,
                                    brush=pg.mkBrush(r, g, b, 170))
            pi.addItem(band)
            self.bands.append(band)
            named.append(shot.track_id)
        faces = ", ".join(f"face {t}" for t in sorted(self.curves))
        who = ("; speaks: " + ", ".join(f"face {t}" for t in dict.fromkeys(named))) if named else ""
        self.label.setText(f"Speaking (original sound): {faces or 'no face'}{who}")


    def value_at(self, frame: int) -> dict:
        """{track id: P(speaking)} at `frame` for the faces scored there."""
        if self.result is None:
            return {}
        out = {}
        for tid, p in self.result.lane.prob.items():
            if 0 <= frame < len(p) and np.isfinite(p[frame]):
                out[tid] = float(p[frame])
        return out
