"""Shared compositing: the soft lower-face mask, colour matching and the blend of an engine's patch into its frame.

Every engine (classic retrieval, Wav2Lip) hands back a `RenderedPatch`; `composite` blends it with a mask built
from the patch's target landmarks. All sizes are in inter-ocular units (IOD), so the same `MaskSettings` behave
the same at 360x288 and at 4K. Work is done inside a small region of interest (ROI); pixels outside it, and
pixels where the mask is exactly 0, are returned bit-identical.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from .engines.base import MaskSettings, RenderedPatch
from .faces.geometry import MOUTH, eye_to_mouth, face_to_frame, inter_ocular

# Mask outline: jaw 2..14 (cheek to cheek round the chin) closed over the nose bottom (35..31, right to left).
JAW_OUTLINE = np.arange(2, 15)
NOSE_BOTTOM = np.array([35, 34, 33, 32, 31])
_SHIFT = 4                    # fixed-point bits for sub-pixel polygon rasterisation
_EPS = 1.0 / 512.0            # mask values below this are 0, above 1 - this are 1 (keeps untouched pixels exact)


def face_axes(lm: np.ndarray) -> Tuple[np.ndarray, np.ndarray, float]:
    """(down unit vector (eyes -> mouth), mouth centre, IOD in pixels) of one (68, 2) landmark set."""
    lm = np.asarray(lm, np.float64)
    down, _ = eye_to_mouth(lm)
    return down, lm[MOUTH].mean(0), float(inter_ocular(lm))


def mask_polygon(landmarks: np.ndarray, settings: MaskSettings) -> np.ndarray:
    """The lower-face outline (frame coords, float64 (M, 2)) before dilation/feather, with the vertical extents
    applied: the nose-bottom edge moves up by extent_up * IOD, the jaw moves away from the mouth by
    extent_down * IOD (so it reaches further below the chin)."""
    lm = np.asarray(landmarks, np.float64)
    down, mouth, iod = face_axes(lm)
    jaw = lm[JAW_OUTLINE].copy()
    top = lm[NOSE_BOTTOM].copy()
    if settings.extent_down:
        d = jaw - mouth
        n = np.linalg.norm(d, axis=1, keepdims=True)
        d = d / np.maximum(n, 1e-6)
        # weight by how much each jaw point faces downward: the chin moves most, the cheeks little
        w = np.clip(d @ down, 0.0, 1.0)[:, None]
        jaw += d * w * settings.extent_down * iod
    if settings.extent_up:
        top -= down * settings.extent_up * iod
        # the cheek ends of the jaw follow part of the way so the outline stays convex-ish
        jaw[[0, -1]] -= down * 0.5 * settings.extent_up * iod
    return np.concatenate([jaw, top], axis=0)


def _blur_sigma(settings: MaskSettings, iod: float) -> float:
    # The 10%..90% band of a blurred step is 2.56 sigma wide: make it `feather * IOD`.
    return max(0.0, settings.feather) * iod / 2.56


def mask_roi(frame_hw, landmarks: np.ndarray, settings: Optional[MaskSettings] = None) -> Tuple[int, int, int, int]:
    """The ROI `lower_face_mask` would return, without rasterising the mask ((0, 0, 0, 0) if none)."""
    settings = settings or MaskSettings()
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        return (0, 0, 0, 0)
    iod = float(inter_ocular(lm))
    if not np.isfinite(iod) or iod < 2.0:
        return (0, 0, 0, 0)
    box = _unclipped_box(mask_polygon(lm, settings), settings, iod)
    h, w = int(frame_hw[0]), int(frame_hw[1])
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    return (x0, y0, x1, y1) if (x1 > x0 and y1 > y0) else (0, 0, 0, 0)


def _unclipped_box(poly: np.ndarray, settings: MaskSettings, iod: float):
    dil = max(0.0, settings.dilation) * iod
    margin = dil + 3.0 * _blur_sigma(settings, iod) + 2.0
    return (int(np.floor(poly[:, 0].min() - margin)), int(np.floor(poly[:, 1].min() - margin)),
            int(np.ceil(poly[:, 0].max() + margin)) + 1, int(np.ceil(poly[:, 1].max() + margin)) + 1)


def polygon_pixels(polygons: Sequence, landmarks: np.ndarray) -> list:
    """Hand-drawn mask polygons (face coordinates, `core.edits.MaskPolygon`) -> [(mode, (P,2) frame pixels)]."""
    return [(p.mode, face_to_frame(p.points, landmarks)) for p in polygons]


def lower_face_mask(frame_hw, landmarks: np.ndarray, settings: Optional[MaskSettings] = None,
                    polygons: Sequence = ()):
    """Soft lower-face mask for one face.

    Returns (mask, roi): `mask` float32 (y1-y0, x1-x0) in [0, 1] covering `roi` = (x0, y0, x1, y1) (ints, clipped
    to the frame). 1 over the mouth and chin, 0 outside the dilated outline + feather, a Gaussian ramp between.
    Returns (zeros((0, 0)), (0, 0, 0, 0)) when the landmarks are missing/degenerate or the face is off-frame.
    """
    settings = settings or MaskSettings()
    h, w = int(frame_hw[0]), int(frame_hw[1])
    lm = np.asarray(landmarks, np.float64)
    empty = (np.zeros((0, 0), np.float32), (0, 0, 0, 0))
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        return empty
    poly = mask_polygon(lm, settings)
    iod = float(inter_ocular(lm))
    if not np.isfinite(iod) or iod < 2.0:
        return empty
    dil = max(0.0, settings.dilation) * iod
    sigma = _blur_sigma(settings, iod)
    drawn = polygon_pixels(polygons, lm)
    added = [pts for mode, pts in drawn if mode == "add"]
    x0, y0, x1, y1 = _unclipped_box(np.concatenate([poly] + added) if added else poly, settings, iod)
    # rasterise on the unclipped box (the blur must see the polygon beyond the frame edge), then crop
    bw, bh = x1 - x0, y1 - y0
    if bw <= 0 or bh <= 0 or bw * bh > 64e6:
        return empty
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if cx1 <= cx0 or cy1 <= cy0:
        return empty
    m = np.zeros((bh, bw), np.uint8)
    pts = np.round((poly - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(m, [pts], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    if dil >= 0.5:
        r = int(round(dil))
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        m = cv2.dilate(m, k)
    for mode, pts in drawn:   # the editor's areas: added or removed after dilation, feathered like the rest
        q = np.round((pts - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(m, [q], 255 if mode == "add" else 0, lineType=cv2.LINE_AA, shift=_SHIFT)
    mf = m.astype(np.float32) / 255.0
    if sigma > 0.3:
        ks = 2 * int(np.ceil(3.0 * sigma)) + 1
        mf = cv2.GaussianBlur(mf, (ks, ks), sigma, borderType=cv2.BORDER_CONSTANT)
    mf = mf[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    mf[mf < _EPS] = 0.0
    mf[mf > 1.0 - _EPS] = 1.0
    return np.ascontiguousarray(mf), (cx0, cy0, cx1, cy1)


def _weighted_stats(x: np.ndarray, w: np.ndarray):
    """Weighted per-channel mean and std of (P, C) samples with (P,) weights."""
    sw = float(w.sum())
    mu = (w @ x) / sw
    var = (w @ (x * x)) / sw - mu * mu
    return mu, np.sqrt(np.maximum(var, 1e-6))


_MAX_SAMPLES = 20000


def color_match(patch: np.ndarray, target: np.ndarray, mask: np.ndarray, *, std_range=(0.8, 1.25),
                min_weight: float = 20.0) -> np.ndarray:
    """Shift `patch`'s colours so that, weighted by `mask`, its per-channel Lab mean (and, within `std_range`,
    its spread) match `target`'s. patch/target: uint8 (h, w, 3) BGR of the same size; mask: float (h, w) >= 0,
    the pixels where the two should agree (e.g. the ring at the mask's edge). Returns a new uint8 image;
    returns `patch` unchanged when the mask carries too little weight to measure.

    Works in OpenCV's 8-bit Lab (per-channel affine correction applied through a lookup table): fast at any
    resolution, and a correction is never finer than one Lab step anyway."""
    w = np.asarray(mask, np.float32)
    if patch.shape != target.shape or w.shape != patch.shape[:2] or float(w.sum()) < min_weight:
        return patch
    flat_w = w.ravel()
    sel = np.flatnonzero(flat_w > 0)
    if len(sel) > _MAX_SAMPLES:
        sel = sel[:: int(np.ceil(len(sel) / _MAX_SAMPLES))]
    ws = flat_w[sel].astype(np.float64)
    p_lab = cv2.cvtColor(patch, cv2.COLOR_BGR2Lab)
    t_lab = cv2.cvtColor(np.ascontiguousarray(target.reshape(-1, 1, 3)[sel]), cv2.COLOR_BGR2Lab)
    mp, sp = _weighted_stats(p_lab.reshape(-1, 3)[sel].astype(np.float64), ws)
    mt, st = _weighted_stats(t_lab.reshape(-1, 3).astype(np.float64), ws)
    gain = np.clip(st / sp, std_range[0], std_range[1])
    bias = mt - mp * gain
    v = np.arange(256, dtype=np.float64)[:, None]
    lut = np.clip(v * gain[None, :] + bias[None, :] + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.cvtColor(cv2.LUT(p_lab, lut), cv2.COLOR_Lab2BGR)


def _box_taper(shape_hw, inner: Tuple[int, int, int, int], patch_box, frame_hw, width: float) -> np.ndarray:
    """Weight (h, w) that falls from 1 to 0 over `width` px towards the patch box's edges (only the edges
    inside the frame: at the frame border there is nothing to blend with)."""
    h, w = shape_hw
    x0, y0, _, _ = inner
    px0, py0, px1, py1 = patch_box
    fh, fw = frame_hw
    xs = np.arange(w, dtype=np.float32) + x0 + 0.5
    ys = np.arange(h, dtype=np.float32) + y0 + 0.5
    wx = np.ones(w, np.float32)
    wy = np.ones(h, np.float32)
    width = max(1.0, width)
    if px0 > 0:
        wx = np.minimum(wx, np.clip((xs - px0) / width, 0, 1))
    if px1 < fw:
        wx = np.minimum(wx, np.clip((px1 - xs) / width, 0, 1))
    if py0 > 0:
        wy = np.minimum(wy, np.clip((ys - py0) / width, 0, 1))
    if py1 < fh:
        wy = np.minimum(wy, np.clip((py1 - ys) / width, 0, 1))
    return wy[:, None] * wx[None, :]


def ring_weights(mask: np.ndarray) -> np.ndarray:
    """Where a soft mask is neither 0 nor 1 (its feather band), peaking at 0.5: where two images should agree."""
    return 4.0 * mask * (1.0 - mask)


def composite(frame: np.ndarray, patch: RenderedPatch, settings: Optional[MaskSettings] = None,
              polygons: Sequence = (), inplace: bool = False) -> np.ndarray:
    """Blend `patch` into a copy of `frame` (into `frame` itself when `inplace`: the export's own decoded frames, one
    frame-sized copy less per dubbed frame) with the soft lower-face mask of `patch.mask_landmarks` (colour-matched to
    the frame in the mask's feather ring when `settings.color_match`).
    Pixels outside the mask's ROI (or where the mask is 0) are bit-identical to `frame`."""
    settings = settings or MaskSettings()
    out = frame if inplace else frame.copy()
    fh, fw = frame.shape[:2]
    mask, roi = lower_face_mask((fh, fw), patch.mask_landmarks, settings, polygons)
    if mask.size == 0:
        return out
    bx0, by0, bx1, by1 = (int(v) for v in patch.box)
    ph, pw = patch.image.shape[:2]
    if ph != by1 - by0 or pw != bx1 - bx0:
        raise ValueError(f"patch image {pw}x{ph} does not match its box {patch.box}")
    x0, y0 = max(roi[0], bx0, 0), max(roi[1], by0, 0)
    x1, y1 = min(roi[2], bx1, fw), min(roi[3], by1, fh)
    if x1 <= x0 or y1 <= y0:
        return out
    m = mask[y0 - roi[1]:y1 - roi[1], x0 - roi[0]:x1 - roi[0]]
    iod = float(inter_ocular(np.asarray(patch.mask_landmarks, np.float64)))
    m = m * _box_taper(m.shape, (x0, y0, x1, y1), (bx0, by0, bx1, by1), (fh, fw), 0.1 * iod)
    m[m < _EPS] = 0.0
    if not np.any(m > 0):
        return out
    src = patch.image[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]
    dst = frame[y0:y1, x0:x1]
    if settings.color_match:
        src = color_match(src, dst, ring_weights(m))
    blended = cv2.blendLinear(np.ascontiguousarray(dst), np.ascontiguousarray(src), 1.0 - m, m)
    np.copyto(blended, dst, where=(m <= 0)[..., None])     # the frame's own pixels where the mask is 0
    out[y0:y1, x0:x1] = blended
    return out
