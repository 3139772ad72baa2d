"""The actor's slow lip expression (smile, pout) apart from speech motion, so a dub replaces only the speech.

A mouth shape is the displacement of `mouth_shape.SHAPE_POINTS` from the speaker's neutral (closed) mouth, in
canonical units (IOD = 1). Two deformations of the lips carry most of an expression and little of the frame-by-frame
speech motion seen from the front:
- WIDTH: the mouth stretched sideways about its centre (corners out by 1 IOD each): a smile widens, a pout narrows;
- LIFT: the corners raised by 1 IOD, the lip centre fixed, both lips alike (the inner opening does not change).
Each frame's displacement is projected on these two modes; what the inner-lip opening explains linearly (an open
"ah" also stretches and drops the corners) is regressed out; what is left, smoothed over about SLOW_SECONDS, is the
slow expression. A dub keeps the original track's slow expression and takes only the speech part of the new motion
(the new motion minus its own slow expression): a woman smiling while she talks stays smiling under the new voice.

    expression_modes(neutral) -> (2, K, 2)
    slow_expression(displacement, neutral, valid, fps) -> (N, 2) coefficients (IOD units) of WIDTH and LIFT
    keep_expression(new, actor, neutral, fps, ...) -> new displacement with the actor's slow expression
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import mouth_shape as ms

SLOW_SECONDS = 1.0      # the expression is what stays over about a second: Gaussian smoothing, +-2 sigma = this
MODE_NAMES = ("width", "lift")


def expression_modes(neutral: np.ndarray) -> np.ndarray:
    """(2, K, 2) displacement fields of the WIDTH and LIFT modes on a neutral mouth (K,2) laid out as
    SHAPE_POINTS; the jaw points do not move. Unit coefficient: each corner moves 1 IOD (out, or up)."""
    nt = np.asarray(neutral, np.float64)
    mouth = ms.MOUTH_IN_SHAPE
    left, right = nt[ms.shape_row(48)], nt[ms.shape_row(54)]
    centre = 0.5 * (left + right)
    half = max(0.5 * float(np.linalg.norm(right - left)), 1e-6)
    x = (nt[mouth, 0] - centre[0]) / half            # -1 at one corner, +1 at the other
    modes = np.zeros((2,) + nt.shape)
    modes[0, mouth, 0] = x
    modes[1, mouth, 1] = -x ** 2                       # image y points down: up is negative
    return modes


def _smooth(values: np.ndarray, valid: np.ndarray, fps: float) -> np.ndarray:
    """Gaussian smoothing of (N, C) over time, ignoring invalid frames (normalised convolution); frames far from any
    valid frame get 0."""
    v = np.where(valid[:, None], values, 0.0)
    w = valid.astype(np.float64)
    sigma = max(SLOW_SECONDS * float(fps) / 4.0, 1e-6)
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    n = len(values)
    # "full" then the centred n: mode "same" returns the kernel's length when a clip is shorter than the kernel
    num = np.stack([np.convolve(v[:, c], k)[r:r + n] for c in range(v.shape[1])], axis=1)
    den = np.convolve(w, k)[r:r + n, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 1e-6, num / den, 0.0)
    return out


def mode_coefficients(displacement: np.ndarray, modes: np.ndarray) -> np.ndarray:
    """(N, 2) least-squares coefficients of each frame's displacement (N,K,2) on the modes (NaN stays NaN)."""
    d = np.asarray(displacement, np.float64).reshape(len(displacement), -1)
    m = modes.reshape(len(modes), -1)
    return d @ np.linalg.pinv(m)


def slow_expression(displacement: np.ndarray, neutral: np.ndarray, valid: Optional[np.ndarray] = None,
                    fps: float = 25.0) -> np.ndarray:
    """(N, 2) slow WIDTH and LIFT coefficients of a displacement track (N,K,2) from `neutral`: the mode coefficients
    with the part linear in the inner-lip opening removed (speech), smoothed over SLOW_SECONDS."""
    d = np.asarray(displacement, np.float64)
    n = len(d)
    ok = np.isfinite(d.reshape(n, -1)).all(axis=1)
    if valid is not None:
        ok &= np.asarray(valid, bool)[:n]
    if not ok.any():
        return np.zeros((n, len(MODE_NAMES)))
    modes = expression_modes(neutral)
    coef = np.zeros((n, len(MODE_NAMES)))
    coef[ok] = mode_coefficients(d[ok], modes)
    nt = np.asarray(neutral, np.float64)
    opening = np.zeros(n)
    opening[ok] = ms.shape_opening(nt[None] + d[ok]) - ms.shape_opening(nt)
    if ok.sum() >= 3 and opening[ok].std() > 1e-6:
        x = np.stack([opening[ok], np.ones(ok.sum())], axis=1)
        slope = np.linalg.lstsq(x, coef[ok], rcond=None)[0][0]          # (2,) speech's share per unit opening
        coef[ok] -= opening[ok, None] * slope[None]
    return _smooth(coef, ok, fps)


def keep_expression(new: np.ndarray, actor: np.ndarray, neutral: np.ndarray, fps: float,
                    new_valid: Optional[np.ndarray] = None, actor_valid: Optional[np.ndarray] = None) -> np.ndarray:
    """The new mouth motion (N,K,2, displacement from the actor's `neutral`) with its own slow expression replaced by
    the actor's (`actor`: the original track's displacement from the same neutral, frame for frame the frames the
    output shows). Returns float32 (N,K,2)."""
    nt = np.asarray(neutral, np.float64)
    modes = expression_modes(nt)
    slow_new = slow_expression(new, nt, new_valid, fps)
    slow_actor = slow_expression(actor, nt, actor_valid, fps)
    change = np.einsum("nm,mkc->nkc", slow_actor - slow_new, modes)
    return (np.asarray(new, np.float64) + change).astype(np.float32)
