"""Teeth proxy ("Synthesizing Obama", sec. 4.3): keep teeth sharp and stable in synthesised mouths.

Retrieved or generated mouths tend to blur the teeth. A proxy frame of the same speaker with clearly visible
upper and lower teeth is chosen once (`suggest_teeth_frames`, or the user's pick); its high-frequency detail
(image minus its blurred copy, restricted to teeth-like pixels) is carried onto every output frame whose mouth
is open: the upper teeth follow the upper inner lip, the lower teeth the lower inner lip, weighted by the
opening and by how teeth-like the output pixel already is. Works on any engine's composited output: it needs
only the frame and the target landmarks.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Union

import cv2
import numpy as np

from ..faces.geometry import eye_centres, eye_to_mouth, inter_ocular, mouth_opening
from ..media import iter_frames

INNER = np.arange(60, 68)
OUTER = np.arange(48, 60)
UPPER_INNER = np.array([61, 62, 63])
LOWER_INNER = np.array([65, 66, 67])
OPEN_LO = 0.04   # inner opening (IOD) below which no teeth are shown
OPEN_HI = 0.10   # opening at which the proxy detail reaches full strength


def _axes(lm: np.ndarray):
    """(angle of the eye line, unit eye-to-mouth vector)."""
    eyes_r, eyes_l = eye_centres(lm)
    v = eyes_l - eyes_r
    return float(np.arctan2(v[1], v[0])), eye_to_mouth(lm)[0]


def _poly_mask(shape_hw, pts: np.ndarray, grow: float = 0.0) -> np.ndarray:
    m = np.zeros(shape_hw, np.uint8)
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    if grow >= 0.5:
        r = int(round(grow))
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return m.astype(np.float32) / 255.0


def _mouth_box(lm: np.ndarray, iod: float, shape_hw, margin: float = 0.2):
    pts = lm[OUTER]
    x0 = int(max(0, np.floor(pts[:, 0].min() - margin * iod)))
    y0 = int(max(0, np.floor(pts[:, 1].min() - margin * iod)))
    x1 = int(min(shape_hw[1], np.ceil(pts[:, 0].max() + margin * iod) + 1))
    y1 = int(min(shape_hw[0], np.ceil(pts[:, 1].max() + margin * iod) + 1))
    return x0, y0, x1, y1


def teeth_likelihood(crop: np.ndarray, lm_local: np.ndarray) -> np.ndarray:
    """Soft (h, w) map in [0, 1] of teeth-like pixels in a mouth crop: brighter than the lips' shade and less
    saturated than the lips (relative to the speaker's own lips, so it adapts to lighting and skin)."""
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV).astype(np.float32)
    outer = _poly_mask(crop.shape[:2], lm_local[OUTER])
    inner = _poly_mask(crop.shape[:2], lm_local[INNER])
    ring = (outer > 0.5) & (inner < 0.5)
    if ring.sum() < 4:
        ring = outer > 0.5
    if ring.sum() < 4:
        return np.zeros(crop.shape[:2], np.float32)
    s_lip = float(np.median(hsv[..., 1][ring]))
    v_lip = float(np.median(hsv[..., 2][ring]))
    s, v = hsv[..., 1], hsv[..., 2]
    low_sat = np.clip((0.85 * s_lip - s) / (0.2 * s_lip + 1e-3), 0.0, 1.0)
    bright = np.clip((v - 0.65 * v_lip) / (0.2 * v_lip + 1e-3), 0.0, 1.0)
    return (low_sat * bright).astype(np.float32)


def teeth_region(crop: np.ndarray, lm_local: np.ndarray, iod: float) -> np.ndarray:
    """Soft (h, w) weight of the teeth *area* inside the inner lips: the teeth-like pixels spread by a blur so
    the dark gaps between teeth (the detail that matters) are included, 0 outside the inner mouth."""
    t = teeth_likelihood(crop, lm_local)
    t = np.clip(2.5 * cv2.GaussianBlur(t, (0, 0), max(0.7, 0.05 * iod)), 0.0, 1.0)
    return t * _poly_mask(crop.shape[:2], lm_local[INNER], grow=0.03 * iod)


def teeth_score(frame: np.ndarray, landmarks: np.ndarray) -> float:
    """How much upper *and* lower teeth a frame shows (teeth-like area inside the inner lips / IOD^2, with the
    smaller of the upper/lower halves counted double). 0 for a closed mouth or missing landmarks."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        return 0.0
    iod = float(inter_ocular(lm))
    if iod < 4 or float(mouth_opening(lm)) / iod < OPEN_LO:
        return 0.0
    x0, y0, x1, y1 = _mouth_box(lm, iod, frame.shape[:2])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return 0.0
    crop = frame[y0:y1, x0:x1]
    loc = lm - [x0, y0]
    t = teeth_likelihood(crop, loc) * _poly_mask(crop.shape[:2], loc[INNER], grow=0.03 * iod)
    _, down = _axes(lm)
    ys, xs = np.mgrid[0:crop.shape[0], 0:crop.shape[1]]
    mid = (loc[UPPER_INNER].mean(0) + loc[LOWER_INNER].mean(0)) / 2.0
    side = (xs - mid[0]) * down[0] + (ys - mid[1]) * down[1]
    upper = float(t[side < 0].sum())
    lower = float(t[side >= 0].sum())
    return (upper + lower + 2.0 * min(upper, lower)) / (iod * iod)


def _iter_frames(frames: Union[str, Path, Iterable[np.ndarray]]):
    if isinstance(frames, (str, Path)):
        yield from iter_frames(str(frames))
    else:
        yield from frames


def suggest_teeth_frames(frames: Union[str, Path, Iterable[np.ndarray]], landmarks: np.ndarray,
                         present: Optional[np.ndarray] = None, k: int = 5, min_gap: int = 5) -> List[int]:
    """Indices of up to k frames showing the most upper and lower teeth, best first, at least `min_gap` frames
    apart (distinct choices for the user). `frames` is a video path (streamed) or an iterable of frames (or of
    crops, with `landmarks` in crop coordinates)."""
    lms = np.asarray(landmarks, np.float64)
    n = len(lms)
    pres = np.ones(n, bool) if present is None else np.asarray(present, bool)
    pres = pres & np.all(np.isfinite(lms.reshape(n, -1)), axis=1)
    iod = inter_ocular(np.where(pres[:, None, None], lms, 1.0))
    opening = np.where(pres, mouth_opening(np.where(pres[:, None, None], lms, 0.0)) / np.maximum(iod, 1e-6), 0.0)
    wanted = pres & (opening >= OPEN_LO)
    scores = np.zeros(n)
    for i, frame in enumerate(_iter_frames(frames)):
        if i >= n:
            break
        if wanted[i]:
            scores[i] = teeth_score(frame, lms[i])
    order = np.argsort(-scores, kind="stable")
    floor = 0.05 * float(scores.max()) if n else 0.0    # frames with next to no teeth are no real choice
    picks: List[int] = []
    for i in order:
        if scores[i] <= 0 or scores[i] < floor or len(picks) >= k:
            break
        if all(abs(int(i) - p) >= min_gap for p in picks):
            picks.append(int(i))
    return picks


@dataclass
class TeethProxy:
    """High-frequency teeth detail of one frame, with the inner-lip landmarks it hangs from."""

    detail: np.ndarray       # (h, w) float32 luminance detail (already weighted by teeth likelihood)
    landmarks: np.ndarray    # (68, 2) in detail-crop coordinates
    iod: float
    angle: float             # face roll (radians) of the proxy frame
    frame_index: Optional[int] = None

    @classmethod
    def from_frame(cls, frame: np.ndarray, landmarks: np.ndarray, frame_index: Optional[int] = None,
                   sigma: Optional[float] = None) -> "TeethProxy":
        lm = np.asarray(landmarks, np.float64)
        if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
            raise ValueError("the teeth proxy frame needs 68 valid landmarks")
        iod = float(inter_ocular(lm))
        x0, y0, x1, y1 = _mouth_box(lm, iod, frame.shape[:2], margin=0.3)
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
        loc = lm - [x0, y0]
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
        sigma = sigma or max(0.8, 0.035 * iod)
        detail = grey - cv2.GaussianBlur(grey, (0, 0), sigma)
        w = teeth_region(crop, loc, iod)
        ang, _ = _axes(lm)
        return cls(detail=(detail * w).astype(np.float32), landmarks=loc.astype(np.float32), iod=iod,
                   angle=ang, frame_index=frame_index)


def _similarity(scale: float, angle: float, src_pt: np.ndarray, dst_pt: np.ndarray) -> np.ndarray:
    """(2, 3) map taking proxy coords to output coords: rotate+scale about src_pt, then move it to dst_pt."""
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    a = np.array([[c, -s], [s, c]])
    t = dst_pt - a @ src_pt
    return np.concatenate([a, t[:, None]], axis=1)


def teeth_weight(landmarks: np.ndarray, strength: float = 1.0) -> float:
    """Opening-based weight of the teeth detail for target landmarks (0 when the mouth is closed)."""
    lm = np.asarray(landmarks, np.float64)
    iod = float(inter_ocular(lm))
    if not np.isfinite(iod) or iod < 4:
        return 0.0
    o = float(mouth_opening(lm)) / iod
    return float(np.clip((o - OPEN_LO) / (OPEN_HI - OPEN_LO), 0.0, 1.0) * max(0.0, strength))


def apply_teeth(frame: np.ndarray, landmarks: np.ndarray, proxy: TeethProxy, strength: float = 1.0,
                inplace: bool = False) -> np.ndarray:
    """Add the proxy's teeth detail inside the inner mouth of `frame` (whose target landmarks are given).
    Returns `frame` itself when nothing applies (closed mouth, strength 0), else a modified copy (`inplace`:
    `frame` itself, modified); pixels outside the mouth box are untouched."""
    lm = np.asarray(landmarks, np.float64)
    if proxy is None or lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        return frame
    w_open = teeth_weight(lm, strength)
    if w_open <= 0:
        return frame
    iod = float(inter_ocular(lm))
    x0, y0, x1, y1 = _mouth_box(lm, iod, frame.shape[:2])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return frame
    crop = frame[y0:y1, x0:x1]
    loc = lm - [x0, y0]
    h, w = crop.shape[:2]
    ang, down = _axes(lm)
    scale = iod / proxy.iod
    rot = ang - proxy.angle
    plm = proxy.landmarks.astype(np.float64)
    a_up = _similarity(scale, rot, plm[UPPER_INNER].mean(0), loc[UPPER_INNER].mean(0))
    a_lo = _similarity(scale, rot, plm[LOWER_INNER].mean(0), loc[LOWER_INNER].mean(0))
    d_up = cv2.warpAffine(proxy.detail, a_up, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    d_lo = cv2.warpAffine(proxy.detail, a_lo, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u_up = float(loc[UPPER_INNER].mean(0) @ down)
    u_lo = float(loc[LOWER_INNER].mean(0) @ down)
    u = xs * down[0] + ys * down[1]
    beta = np.clip((u - u_up) / max(u_lo - u_up, 1e-3), 0.0, 1.0)
    beta = beta * beta * (3 - 2 * beta)
    detail = (1 - beta) * d_up + beta * d_lo
    region = _poly_mask((h, w), loc[INNER], grow=0.02 * iod)
    region = cv2.GaussianBlur(region, (0, 0), max(0.5, 0.02 * iod))
    # mostly where the output already shows teeth: no ghost edges in a dark cavity
    t_out = teeth_region(crop, loc, iod)
    wgt = (w_open * region * (0.3 + 0.7 * t_out)).astype(np.float32)
    if not np.any(wgt > 1e-3):
        return frame
    out = frame if inplace else frame.copy()
    res = crop.astype(np.float32) + (detail * wgt)[..., None]
    out[y0:y1, x0:x1] = np.clip(res + 0.5, 0, 255).astype(np.uint8)
    return out
