"""FrameLane: the base of the lanes under the timeline (waveforms, sync confidence).

x is in frame units; a left click emits frameClicked(frame) and the mouse wheel emits wheel(dx, dy, modifiers,
frame under the cursor), so the main window zooms and scrubs every lane together.
"""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

LANE_BACKGROUND = (30, 31, 35)
AXIS_WIDTH = 46   # the same left margin on every lane keeps their frame axes aligned


class FrameLane(pg.PlotWidget):
    frameClicked = Signal(int)
    wheel = Signal(int, int, object, float)

    def __init__(self, min_height: int, parent=None):
        super().__init__(parent=parent, background=LANE_BACKGROUND)
        self.setMinimumHeight(min_height)
        pi = self.getPlotItem()
        pi.setMouseEnabled(False, False)   # the window owns zoom and pan for all lanes
        pi.setMenuEnabled(False)
        pi.hideButtons()
        pi.getAxis("left").setWidth(AXIS_WIDTH)
        pi.layout.setContentsMargins(0, 0, 0, 0)
        pi.vb.setDefaultPadding(0.0)
        pi.hideAxis("bottom")
        self.scene().sigMouseClicked.connect(self._clicked)

    def _clicked(self, ev) -> None:
        if ev.button() != Qt.LeftButton:
            return
        pt = self.getPlotItem().vb.mapSceneToView(ev.scenePos())
        self.frameClicked.emit(int(math.floor(pt.x())))

    def wheelEvent(self, e) -> None:
        pt = self.getPlotItem().vb.mapSceneToView(self.mapToScene(e.position().toPoint()))
        self.wheel.emit(e.angleDelta().x(), e.angleDelta().y(), e.modifiers(), float(pt.x()))
        e.accept()

    # A lane's playhead line (`self.playhead`) and its label at the top left (`self.label`) are made by the lane.
    def set_playhead(self, frame: int) -> None:
        self.playhead.setPos(frame + 0.5)

    def set_view(self, v0: float, v1: float) -> None:
        self.getPlotItem().setXRange(v0, v1, padding=0)

    def _place_label(self, *a) -> None:
        (x0, _), (_, y1) = self.getPlotItem().vb.viewRange()
        self.label.setPos(x0, y1)
