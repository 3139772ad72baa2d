"""Waveform lanes (pyqtgraph) for the original audio and the active voice track.

An hour of 16 kHz audio is 57.6 M samples: it is never handed to pyqtgraph. `PeakPyramid` computes
min/max per block once (levels of 64, 256, 1024... samples; built off the UI thread), and on every view
change the lane draws only the visible part (clip to view) at about two points per pixel
(peak downsampling), so redraws cost the same for a 3-second clip and an hour.
The time axis is in video frames (frame f covers [f, f+1)), shared with the timeline.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pyqtgraph as pg

from core.audio import SAMPLE_RATE

from .frame_lane import FrameLane
from .timeline import runs



class PeakPyramid:
    """Min/max envelopes of a signal at block sizes base * factor**k (built once, off the UI thread).

    Views finer than `base` samples per pixel are served from the raw samples, reduced on the fly."""

    def __init__(self, wav: np.ndarray, base: int = 256, factor: int = 4, min_blocks: int = 512):
        self.wav = np.ascontiguousarray(wav, np.float32)
        self.base = base
        self.levels = []  # (block, mins, maxs)
        n = len(self.wav)
        block = base
        full = (n // base) * base
        if full:
            v = self.wav[:full].reshape(-1, base)
            mins, maxs = np.minimum.reduce(v, axis=1), np.maximum.reduce(v, axis=1)
            if full < n:  # tail block
                mins = np.append(mins, self.wav[full:].min())
                maxs = np.append(maxs, self.wav[full:].max())
            self.levels.append((block, mins, maxs))
            while len(mins) > min_blocks:
                m = (len(mins) // factor) * factor
                nm = mins[:m].reshape(-1, factor).min(axis=1)
                nx = maxs[:m].reshape(-1, factor).max(axis=1)
                if m < len(mins):
                    nm = np.append(nm, mins[m:].min())
                    nx = np.append(nx, maxs[m:].max())
                mins, maxs = nm, nx
                block *= factor
                self.levels.append((block, mins, maxs))

    def __len__(self) -> int:
        return len(self.wav)

    def segment(self, s0: float, s1: float, pixels: int):
        """(t, y) in samples for the visible sample range [s0, s1) at ~2 points per pixel: min/max pairs
        per block (peak downsampling), only for the visible part (clip to view)."""
        n = len(self.wav)
        s0 = int(max(0, math.floor(s0)))
        s1 = int(min(n, math.ceil(s1)))
        if s1 <= s0:
            return np.zeros(0), np.zeros(0)
        per_px = (s1 - s0) / max(1, pixels)
        chosen = None
        for level in self.levels:
            if level[0] <= per_px:
                chosen = level
            else:
                break
        if chosen is None:
            block = int(per_px)
            if block < 2:  # zoomed right in: the samples themselves
                return np.arange(s0, s1, dtype=np.float64), self.wav[s0:s1]
            b0, b1 = s0 // block, (s1 + block - 1) // block
            seg = self.wav[b0 * block:min(n, b1 * block)]
            full = (len(seg) // block) * block
            v = seg[:full].reshape(-1, block)
            mins, maxs = v.min(axis=1), v.max(axis=1)
            if full < len(seg):
                mins = np.append(mins, seg[full:].min())
                maxs = np.append(maxs, seg[full:].max())
            t = (np.arange(b0, b0 + len(mins), dtype=np.float64) + 0.5) * block
        else:
            block, all_mins, all_maxs = chosen
            b0, b1 = s0 // block, min(len(all_mins), (s1 + block - 1) // block)
            mins, maxs = all_mins[b0:b1], all_maxs[b0:b1]
            t = (np.arange(b0, b1, dtype=np.float64) + 0.5) * block
        y = np.empty(2 * len(mins), np.float32)
        y[0::2] = mins
        y[1::2] = maxs
        return np.repeat(t, 2), y


class WaveformLane(FrameLane):
    """One audio lane. x in frame units; emits frameClicked(int) and wheel(dx, dy, modifiers, frame)."""

    def __init__(self, title: str, color=(90, 170, 255), parent=None):
        super().__init__(min_height=56, parent=parent)
        self.title = title
        self.fps = 25.0
        self.offset = 0.0          # frames: the audio starts this much later on the time axis
        self.pyramid: Optional[PeakPyramid] = None
        self.draw_count = 0
        pi = self.getPlotItem()
        pi.getAxis("left").setTicks([[(0, "")]])
        pi.setYRange(-1.0, 1.0, padding=0.02)
        pi.setXRange(0, 1, padding=0)
        self.vad_item = pg.PlotCurveItem(pen=None)
        self.vad_item.setZValue(-10)
        self.range_item = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(255, 255, 255, 14),
                                              pen=pg.mkPen(255, 200, 40, 160))
        self.range_item.setVisible(False)
        self.range_item.setZValue(-5)
        self.curve = pg.PlotCurveItem(pen=pg.mkPen(color, width=1), connect="all", skipFiniteCheck=True)
        self.playhead = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(255, 70, 70, width=2))
        self.label = pg.TextItem(title, color=(200, 200, 205), anchor=(0, 0))
        self.label.setZValue(20)
        for it in (self.vad_item, self.range_item, self.curve, self.playhead):
            pi.addItem(it)
        pi.addItem(self.label, ignoreBounds=True)
        pi.vb.sigXRangeChanged.connect(self._redraw)
        pi.vb.sigResized.connect(self._redraw)

    # ---- data ---------------------------------------------------------------------------------------------
    def set_audio(self, pyramid: Optional[PeakPyramid], fps: float, title: Optional[str] = None) -> None:
        self.pyramid = pyramid
        self.fps = fps if fps > 0 else 25.0
        if title is not None:
            self.title = title
        self.label.setText(self.title if pyramid is not None else f"{self.title} (none)")
        self._redraw()

    def set_offset(self, frames: float) -> None:
        if frames != self.offset:
            self.offset = float(frames)
            self._redraw()
            if self._activity is not None:
                self.set_activity(self._activity)

    _activity = None

    def set_activity(self, active: Optional[np.ndarray]) -> None:
        """Shade the frames where `active` (bool per frame of the audio) is True."""
        self._activity = active
        if active is None or len(active) == 0:
            self.vad_item.clear()
            return
        edges, vals = [0.0], []
        last = 0
        for a, b in runs(active):
            if a > last:
                vals.append(-1.0)
                edges.append(float(a))
            vals.append(1.0)
            edges.append(float(b))
            last = b
        if last < len(active):
            vals.append(-1.0)
            edges.append(float(len(active)))
        self.vad_item.setData(np.array(edges) + self.offset, np.array(vals), stepMode="center", fillLevel=-1.0,
                              brush=pg.mkBrush(80, 200, 120, 40), pen=None)

    def set_playhead(self, frame: int) -> None:
        self.playhead.setPos(frame + 0.5)

    def set_range(self, rng) -> None:
        if rng is None:
            self.range_item.setVisible(False)
        else:
            self.range_item.setRegion((rng[0], rng[1]))
            self.range_item.setVisible(True)

    def set_view(self, v0: float, v1: float) -> None:
        self.getPlotItem().setXRange(v0, v1, padding=0)

    # ---- drawing ------------------------------------------------------------------------------------------
    def _redraw(self, *args) -> None:
        vb = self.getPlotItem().vb
        (x0, x1), (_, y1) = vb.viewRange()
        self.label.setPos(x0, y1)
        if self.pyramid is None or len(self.pyramid) == 0:
            self.curve.setData([], [])
            return
        spf = SAMPLE_RATE / self.fps
        px = max(50, int(vb.width()))
        t, y = self.pyramid.segment((x0 - self.offset) * spf, (x1 - self.offset) * spf, px)
        self.curve.setData(t / spf + self.offset, y)
        self.draw_count += 1

