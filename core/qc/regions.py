"""Where on the face the quality checks look: one crop per frame, placed from the face track (never re-detected).

Every measure of `core.qc` works on a crop around the lower face, scaled so that the inter-ocular distance (IOD)
is at most `CANON_IOD` pixels (crops are scaled down, never up). That makes the checks fast at any resolution
(a 720p face is measured on a ~150 px crop, not on the frame) and makes their thresholds resolution-free: a
blur, a seam or a jitter is judged at the same face size whether the clip is 360x288 or 4K.

Inside the crop:
- the **mouth box**: the bounding box of landmarks 48-67 grown by `MOUTH_MARGIN` IOD (lips, teeth, the skin
  right round them: where a generated mouth shows its blur and its jitter);
- the **lower-face mask**: `core.compose.lower_face_mask` with the dub's mask settings (what the product's dub
  may change; "outside the mask" is everything else);
- the **seam zone**: the crop minus the mouth box grown by `SEAM_MOUTH_MARGIN` IOD and minus a `JAW_BAND` IOD
  band round the jaw outline (landmarks 3-13): where the edge of a pasted patch shows and a correct dub changes
  little. The jaw outline is left out because a dub that opens the mouth wider than the original moves the chin
  and the jaw's outline, which draws a new edge there that is no seam (looked at: the "seams" real dubs of GRID
  clips showed there were the dub's own chin line drawn below the original's and the cheek outline moved by the
  warp; the seam measure also compensates motion first, `core.qc.metrics.new_edges`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

from ..compose import lower_face_mask, mask_polygon
from ..engines.base import MaskSettings
from ..faces.geometry import MOUTH, inter_ocular

CANON_IOD = 64.0          # px: crops are scaled down so the IOD is at most this
CROP_MARGIN = 0.35        # IOD beyond the mask outline on every side (a box pasted wider than the mask shows)
MOUTH_MARGIN = 0.15       # IOD round the lip landmarks: the mouth box
SEAM_MOUTH_MARGIN = 0.30  # IOD round the lip landmarks kept out of the seam zone (the mouth itself moves)
JAW_LINE = slice(3, 14)   # jaw landmarks 3-13: the chin and jaw outline move when a dub reshapes the mouth
JAW_BAND = 0.35           # IOD: width of the band round the jaw outline kept out of the seam zone
MIN_IOD = 8.0             # px in the frame: a smaller face is not judged


@dataclass
class FaceRegion:
    box: Tuple[int, int, int, int]        # crop in the frame (x0, y0, x1, y1), clipped
    scale: float                          # crop px per frame px (<= 1)
    size: Tuple[int, int]                 # (w, h) of the scaled crop
    landmarks: np.ndarray                 # (68, 2) in scaled-crop coordinates
    iod: float                            # IOD in scaled-crop px
    mouth: Tuple[int, int, int, int]      # mouth box in scaled-crop coordinates
    mask: np.ndarray                      # float32 (h, w) lower-face mask in the crop, [0, 1]
    seam_zone: np.ndarray                 # bool (h, w)

    def grey_crop(self, frame: np.ndarray) -> np.ndarray:
        """The region of a full BGR frame in grey levels, scaled (float32 (h, w)). Grey first, then scaled: a
        third of the pixels to resample (the two steps are linear, so the order changes nothing but rounding)."""
        x0, y0, x1, y1 = self.box
        c = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        if self.scale < 1.0:
            c = cv2.resize(c, self.size, interpolation=cv2.INTER_AREA)
        return c.astype(np.float32)

    def frame_mask(self) -> np.ndarray:
        """The lower-face mask at the frame's resolution over `box` (nearest-neighbour: only mask > 0 matters)."""
        x0, y0, x1, y1 = self.box
        m = (self.mask > 0).astype(np.uint8)
        if self.scale < 1.0:
            m = cv2.resize(m, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
        return m

    def grey_mouth_crop(self, frame: np.ndarray) -> np.ndarray:
        """The mouth box cut straight from a full BGR frame, grey, scaled (cheaper than `grey_crop` then
        `mouth_of`)."""
        x0, y0, x1, y1 = self.mouth
        if self.scale >= 1.0:
            bx, by = self.box[0], self.box[1]
            c = frame[by + y0:by + y1, bx + x0:bx + x1]
            return cv2.cvtColor(c, cv2.COLOR_BGR2GRAY).astype(np.float32)
        s = self.scale
        fx0, fy0 = self.box[0] + int(x0 / s), self.box[1] + int(y0 / s)
        fx1, fy1 = self.box[0] + int(np.ceil(x1 / s)), self.box[1] + int(np.ceil(y1 / s))
        c = cv2.cvtColor(frame[fy0:fy1, fx0:fx1], cv2.COLOR_BGR2GRAY)
        return cv2.resize(c, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32)

    def mouth_of(self, img: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.mouth
        return img[y0:y1, x0:x1]


def _box(points: np.ndarray, margin: float, w: int, h: int) -> Tuple[int, int, int, int]:
    x0 = int(np.floor(points[:, 0].min() - margin))
    y0 = int(np.floor(points[:, 1].min() - margin))
    x1 = int(np.ceil(points[:, 0].max() + margin)) + 1
    y1 = int(np.ceil(points[:, 1].max() + margin)) + 1
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def face_region(landmarks: np.ndarray, frame_hw, mask: Optional[MaskSettings] = None) -> Optional[FaceRegion]:
    """The crop and its sub-regions for one face ((68, 2) frame landmarks), or None when the face is missing,
    too small or off the frame."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        return None
    iod = float(inter_ocular(lm))
    if not np.isfinite(iod) or iod < MIN_IOD:
        return None
    settings = mask or MaskSettings()
    fh, fw = int(frame_hw[0]), int(frame_hw[1])
    poly = mask_polygon(lm, settings)
    reach = (settings.dilation + settings.feather + CROP_MARGIN) * iod
    box = _box(np.concatenate([poly, lm[MOUTH]]), reach, fw, fh)
    x0, y0, x1, y1 = box
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    scale = min(1.0, CANON_IOD / iod)
    w = max(8, int(round((x1 - x0) * scale)))
    h = max(8, int(round((y1 - y0) * scale)))
    sx, sy = w / (x1 - x0), h / (y1 - y0)
    lc = (lm - [x0, y0]) * [sx, sy]
    ciod = iod * (sx + sy) / 2.0
    m, roi = lower_face_mask((h, w), lc, settings)
    full = np.zeros((h, w), np.float32)
    if m.size:
        full[roi[1]:roi[3], roi[0]:roi[2]] = m
    mouth = _box(lc[MOUTH], MOUTH_MARGIN * ciod, w, h)
    kx0, ky0, kx1, ky1 = _box(lc[MOUTH], SEAM_MOUTH_MARGIN * ciod, w, h)
    zone = np.ones((h, w), bool)
    zone[ky0:ky1, kx0:kx1] = False
    jaw = np.zeros((h, w), np.uint8)
    thick = max(1, int(JAW_BAND * ciod))
    cv2.polylines(jaw, [np.round(lc[JAW_LINE]).astype(np.int32)], False, 1, thickness=thick)
    zone &= jaw == 0
    if mouth[2] - mouth[0] < 4 or mouth[3] - mouth[1] < 4:
        return None
    return FaceRegion(box=box, scale=float((sx + sy) / 2.0), size=(w, h), landmarks=lc.astype(np.float32),
                      iod=float(ciod), mouth=mouth, mask=full, seam_zone=zone)
