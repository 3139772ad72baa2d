"""One-Euro smoothing of boxes and landmarks (Casiez, Roussel & Vogel, CHI 2012).

The One-Euro filter is a first-order low-pass whose cutoff rises with the signal's speed: slow jitter is
removed (cutoff `min_cutoff` Hz), fast motion passes with little lag (cutoff `min_cutoff + beta * speed`).

Speeds are measured in *face units* per second (pixels divided by a per-frame scale such as the inter-ocular
distance), so the same parameters work for a 100-pixel face and a 600-pixel face.

Tracking is offline, so `smooth_sequence` runs the filter forwards and backwards and averages the two passes:
the causal lag of one pass cancels the lead of the other (no lag on a ramp, no overshoot on a step).
Segments (runs of present frames between scene cuts) are filtered independently: the filter resets at cuts.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    min_cutoff: float = 1.0     # Hz, cutoff at rest (lower: smoother when still)
    beta: float = 2.0           # cutoff increase per face-unit/s of speed (higher: less lag when moving)
    d_cutoff: float = 1.0       # Hz, cutoff of the speed estimate

    def to_dict(self) -> dict:
        return asdict(self)


def _alpha(cutoff, dt: float):
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Causal One-Euro filter over arrays of points `(..., D)`; speed is the norm over the last axis.

    `min_cutoff` may be an array broadcastable to the points' leading shape (one cutoff per point).
    """

    def __init__(self, fps: float, params: OneEuroParams = OneEuroParams(), min_cutoff=None):
        self.dt = 1.0 / float(fps)
        self.p = params
        self.min_cutoff = np.asarray(params.min_cutoff if min_cutoff is None else min_cutoff, np.float64)
        self.reset()

    def reset(self) -> None:
        self._x: Optional[np.ndarray] = None
        self._dx: Optional[np.ndarray] = None

    def __call__(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None:
            self._x = x.copy()
            self._dx = np.zeros(x.shape[:-1], np.float64)
            return x.copy()
        s = max(float(scale), 1e-6)
        speed = np.linalg.norm(x - self._x, axis=-1) / (self.dt * s)
        a_d = _alpha(self.p.d_cutoff, self.dt)
        self._dx = self._dx + a_d * (speed - self._dx)
        cutoff = self.min_cutoff + self.p.beta * self._dx
        a = _alpha(cutoff, self.dt)[..., None]
        self._x = self._x + a * (x - self._x)
        return self._x.copy()


def _one_pass(x: np.ndarray, scale: np.ndarray, fps: float, params: OneEuroParams, min_cutoff) -> np.ndarray:
    f = OneEuroFilter(fps, params, min_cutoff)
    out = np.empty(x.shape, np.float64)
    for i in range(len(x)):
        out[i] = f(x[i], scale[i])
    return out


def one_euro(x: np.ndarray, fps: float, params: OneEuroParams = OneEuroParams(), scale=None,
             min_cutoff=None, zero_phase: bool = True) -> np.ndarray:
    """Filter a sequence `x` of shape (T, ..., D) (no NaN). `scale`: (T,) face size per frame (default 1).

    zero_phase=True: mean of a forward and a backward pass (offline, no lag); False: causal forward pass.
    """
    x = np.asarray(x, np.float64)
    if len(x) == 0:
        return x.astype(np.float32)
    sc = np.ones(len(x)) if scale is None else np.broadcast_to(np.asarray(scale, np.float64), (len(x),))
    fwd = _one_pass(x, sc, fps, params, min_cutoff)
    if not zero_phase:
        return fwd.astype(np.float32)
    bwd = _one_pass(x[::-1], sc[::-1], fps, params, min_cutoff)[::-1]
    return (0.5 * (fwd + bwd)).astype(np.float32)


def segments(present: np.ndarray, cuts=()) -> list:
    """[start, stop) runs of True in `present`, also split at each frame index in `cuts` (a cut starts a run)."""
    present = np.asarray(present, bool)
    cutset = set(int(c) for c in cuts)
    out, start = [], None
    for i, p in enumerate(present):
        if start is not None and (not p or i in cutset):
            out.append((start, i))
            start = None
        if p and start is None:
            start = i
    if start is not None:
        out.append((start, len(present)))
    return out


def smooth_sequence(values: np.ndarray, present: np.ndarray, fps: float, params: OneEuroParams = OneEuroParams(),
                    scale=None, cuts=(), min_cutoff=None, zero_phase: bool = True) -> np.ndarray:
    """Smooth (T, ..., D) values segment by segment (absent frames stay as they are, NaN usually)."""
    out = np.array(values, np.float32, copy=True)
    sc = np.ones(len(out)) if scale is None else np.asarray(scale, np.float64)
    for a, b in segments(present, cuts):
        if b - a >= 2:
            out[a:b] = one_euro(out[a:b], fps, params, sc[a:b], min_cutoff, zero_phase)
    return out

