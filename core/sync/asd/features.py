"""What the ASD networks read: the authors' face crop and their MFCCs, from our frames, tracks and voices.

Face crop (the authors' recipe, computed directly at its final size): from a face box of half-size
`bs = max(w, h) / 2` centred at (cx, cy), the authors take rows cy - bs .. cy + 1.8 bs and columns
cx - 1.4 bs .. cx + 1.4 bs of the frame padded with grey 110, resize that to 224 x 224 and keep the centre
112 x 112: rows cy - 0.3 bs .. cy + 1.1 bs, columns cx - 0.7 bs .. cx + 0.7 bs. Their box comes from a face
detector that includes the forehead (S3FD); ours is made from the 68 landmarks to match it (`face_box`): the
landmarks' extent, raised by `FOREHEAD` of its height, so the crop holds nose, mouth and chin as in their training.

Audio: 13 MFCCs at 100 Hz from 16 kHz int16-scaled samples, exactly `python_speech_features.mfcc(x, 16000,
numcep=13, winlen=0.025, winstep=0.010)`: four rows per 25 fps video frame.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...audio import SAMPLE_RATE

CROP = 112            # pixels of the face crop fed to the networks
FPS = 25.0            # the networks' frame rate
MFCC_PER_FRAME = 4    # MFCC rows (10 ms) per video frame (40 ms)
VISUAL_REACH = 6      # frames either side a per-frame visual embedding reads (3 blocks of temporal convs, half-width 2)
PAD_GREY = 110        # the authors' padding value
SILENCE_LEVEL = 1e-4  # the voice beyond its ends: faint noise (digital zeros would give MFCCs of log(eps))
FOREHEAD = 0.3        # share of the landmarks' height added above them (a detector box holds the forehead)
CROP_BLUR_PIXELS = 1.0  # Gaussian blur of the sync scorer's crops, in the frame's pixels (`smooth_face_crop`)
MFCC_WINDOW, MFCC_STEP = 400, 160   # samples: python_speech_features' 25 ms window, 10 ms step at 16 kHz
PRE_EMPHASIS = 0.97     # python_speech_features' default
MFCC_CHUNK = 6000       # MFCC rows (60 s) computed at a time (memory; the result does not depend on it)


def face_box(landmarks: Optional[np.ndarray], box: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """(x0, y0, x1, y1) of the face as an S3FD-style detector frames it: from the landmarks when they are all
    finite, else the track's box; None when neither is usable."""
    if landmarks is not None:
        lm = np.asarray(landmarks, np.float32)
        if lm.shape == (68, 2) and np.isfinite(lm).all():
            x0, y0 = lm.min(0)
            x1, y1 = lm.max(0)
            return np.array([x0, y0 - FOREHEAD * (y1 - y0), x1, y1], np.float32)
    if box is not None:
        b = np.asarray(box, np.float32)
        if b.shape == (4,) and np.isfinite(b).all() and b[2] > b[0] and b[3] > b[1]:
            return b
    return None


def crop_square(b: np.ndarray):
    """(x0, y0, side) in frame pixels of the crop of face box `b` (see the module docstring)."""
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    bs = max(b[2] - b[0], b[3] - b[1]) / 2
    return cx - 0.7 * bs, cy - 0.3 * bs, 1.4 * bs


def face_crop(frame: np.ndarray, landmarks=None, box=None) -> np.ndarray:
    """(112, 112) uint8 grayscale crop of the face (see the module docstring); plain grey without a face."""
    return crop_of_box(frame, face_box(landmarks, box))


def crop_of_box(frame: np.ndarray, b: Optional[np.ndarray]) -> np.ndarray:
    """`face_crop` of the face box `b` (`face_box`; None: plain grey)."""
    import cv2

    if b is None:
        return np.full((CROP, CROP), PAD_GREY, np.uint8)
    x0, y0, side = crop_square(b)
    # only the crop's region (and a pixel round it) is converted and resized, not the whole frame
    h, w = frame.shape[:2]
    l, t = max(0, int(np.floor(x0)) - 1), max(0, int(np.floor(y0)) - 1)
    r, btm = min(w, int(np.ceil(x0 + side)) + 2), min(h, int(np.ceil(y0 + side)) + 2)
    if r - l < 2 or btm - t < 2:                     # the face lies outside the frame
        return np.full((CROP, CROP), PAD_GREY, np.uint8)
    roi = frame[t:btm, l:r]
    gray = roi if roi.ndim == 2 else cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
    x0, y0 = x0 - l, y0 - t
    scale = CROP / side
    if scale < 1.0:                                  # shrink first (area average): no aliasing on HD faces
        shrink = max(scale * 1.25, 1e-3)
        gray = cv2.resize(gray, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        x0, y0, scale = x0 * shrink, y0 * shrink, scale / shrink
    m = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    return cv2.warpAffine(gray, m, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=PAD_GREY)


def smooth_face_crop(frame: np.ndarray, landmarks=None, box=None) -> np.ndarray:
    """`face_crop` blurred by CROP_BLUR_PIXELS of the frame's pixels: what the sync scorer's encoder reads (the
    active-speaker network keeps the authors' `face_crop`). A codec's artefacts are in the frame's pixels: on GRID's
    MPEG-1 faces (360x288, 8-pixel blocks, an I-frame every 12 frames) the block edges and their flicker are at the
    scale of the lips' motion, and on a low-contrast mouth (swiz3n: a dark, mustached face) the encoder followed them
    instead of the lips (its offset found for 0 of 9 delays; the same clip re-encoded to H.264: 9 of 9). An HD face
    is shrunk to the crop by area averaging, so the same blur is a fraction of a crop pixel there (a whole crop pixel
    lost HD faces' lips: docs/MEASUREMENTS.md)."""
    import cv2

    b = face_box(landmarks, box)
    crop = crop_of_box(frame, b)
    if b is None or CROP_BLUR_PIXELS <= 0:
        return crop
    return cv2.GaussianBlur(crop, (0, 0), CROP_BLUR_PIXELS * CROP / crop_square(b)[2])


def pad_voice(wav: np.ndarray, before: int, after: int) -> np.ndarray:
    """`wav` with `before` / `after` samples of faint, fixed noise around it: the silence the networks read
    beyond a voice's ends."""
    wav = np.asarray(wav, np.float32).reshape(-1)
    if before <= 0 and after <= 0:
        return wav
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(0, SILENCE_LEVEL, max(0, before)).astype(np.float32), wav,
                           rng.normal(0, SILENCE_LEVEL, max(0, after)).astype(np.float32)])


def mfcc(wav: np.ndarray) -> np.ndarray:
    """(R, 13) float32 MFCCs at 100 Hz of a float32 16 kHz voice in [-1, 1] (scaled to int16 units first).

    Computed MFCC_CHUNK rows at a time (python_speech_features holds ~13 KB a row while it works: 0.8 GB for a 10 min
    voice), exactly as in one pass: each chunk reads the samples of its own rows only (the last one is padded as the
    one pass pads it), scaled and pre-emphasised there with the one pass' element-wise formula (a 10 min voice's
    whole float64 copies were 0.15 GB)."""
    from python_speech_features import mfcc as psf_mfcc

    w = np.asarray(wav).reshape(-1)
    if len(w) < MFCC_WINDOW:
        return np.zeros((0, 13), np.float32)
    rows = 1 + int(np.ceil((len(w) - MFCC_WINDOW) / MFCC_STEP)) if len(w) > MFCC_WINDOW else 1
    parts = []
    for r0 in range(0, rows, MFCC_CHUNK):
        r1 = min(rows, r0 + MFCC_CHUNK)
        a, b = r0 * MFCC_STEP, len(w) if r1 == rows else (r1 - 1) * MFCC_STEP + MFCC_WINDOW
        x = np.asarray(w[max(0, a - 1):b], np.float64) * 32768.0      # the sample before `a` too, for its difference
        seg = np.append(x[0], x[1:] - PRE_EMPHASIS * x[:-1]) if a == 0 else x[1:] - PRE_EMPHASIS * x[:-1]
        parts.append(psf_mfcc(seg, SAMPLE_RATE, numcep=13, winlen=0.025, winstep=0.010, preemph=0.0))
    return np.concatenate(parts).astype(np.float32)
