"""Defects made on purpose on a clip's frames, for tools/eval_qc.py and the tests of core.qc.

Each maker takes the clip's frames (a list of BGR arrays, a 3 s GRID clip fits in memory) and the original's face
track (landmarks (N, 68, 2), present (N,)), and returns (new frames, affected (N,) bool). Sizes are in inter-ocular
units (IOD), so a defect is the same at 360x288 and at 720p.

- `blur`: the lower face (the product's soft lower-face mask) blurred with a Gaussian of sigma `BLUR_SIGMA` IOD
  (0.04 IOD = 1.6 px on a GRID face, 5 px on a 720p close-up: what an upscaled 96 px generator face looks like).
- `box`: a Wav2Lip-style box over the lower face (nose tip to `BOX_BELOW` IOD below the chin, the jaw's width +
  `BOX_WIDER` IOD each side) pasted with a hard edge from another frame of the clip (`BOX_FROM` frames away,
  another mouth), passed through a 96 px face (Wav2Lip's generator size: a face ~2 IOD wide scaled to 96 px and
  back) and `BOX_BRIGHTER` grey levels brighter (a generator's colour drift).
- `step`: the product's lower-face outline grown by `STEP_DILATION` IOD (where its mask fades out) pasted hard (no
  feather) with a `STEP` grey-level brightness step: a dub whose mask lost its feather and colour match.
- `jitter`: the lower face shifted by `JITTER` IOD in a random direction, a new one every frame (soft mask).
- `open_silence`: on the frames where the voice is silent, the lower face of the clip's most open frame
  (aligned by a similarity transform of the stable landmarks), composited with the product's soft mask.
"""
from __future__ import annotations

import cv2
import numpy as np

BLUR_SIGMA = 0.04
BOX_FROM = 7
BOX_WIDER = 0.25
BOX_BELOW = 0.35
BOX_FACE_PX = 96
BOX_BRIGHTER = 8
STEP = 10
STEP_DILATION = 0.15
JITTER = 0.05


def _iod(lm):
    from core.faces.geometry import inter_ocular
    return float(inter_ocular(np.asarray(lm, np.float64)))


def _soft_mask(shape, lm):
    from core.compose import lower_face_mask

    m, roi = lower_face_mask(shape[:2], lm)
    full = np.zeros(shape[:2], np.float32)
    if m.size:
        full[roi[1]:roi[3], roi[0]:roi[2]] = m
    return full


def _blend(a, b, m):
    m3 = m[..., None]
    return np.clip(a * (1 - m3) + b * m3 + 0.5, 0, 255).astype(np.uint8)


def blur(frames, landmarks, present, sigma=BLUR_SIGMA):
    out, hit = [], np.zeros(len(frames), bool)
    for i, f in enumerate(frames):
        if not present[i]:
            out.append(f.copy())
            continue
        s = sigma * _iod(landmarks[i])
        b = cv2.GaussianBlur(f, (0, 0), s)
        out.append(_blend(f.astype(np.float32), b.astype(np.float32), _soft_mask(f.shape, landmarks[i])))
        hit[i] = True
    return out, hit


def lower_box(lm, shape):
    """Wav2Lip-like box over the lower face: the nose tip to `BOX_BELOW` IOD below the chin, the jaw's width
    grown by `BOX_WIDER` IOD on each side (frame pixels, clipped)."""
    lm = np.asarray(lm, np.float64)
    iod = _iod(lm)
    x0, x1 = lm[2:15, 0].min() - BOX_WIDER * iod, lm[2:15, 0].max() + BOX_WIDER * iod
    y0, y1 = lm[30, 1], lm[8, 1] + BOX_BELOW * iod
    h, w = shape[:2]
    return max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))


def box(frames, landmarks, present, shift=BOX_FROM, brighter=BOX_BRIGHTER):
    out, hit = [], np.zeros(len(frames), bool)
    n = len(frames)
    for i, f in enumerate(frames):
        g = f.copy()
        if present[i]:
            x0, y0, x1, y1 = lower_box(landmarks[i], f.shape)
            src = frames[(i + shift) % n][y0:y1, x0:x1]
            s = min(1.0, BOX_FACE_PX / (2.0 * _iod(landmarks[i])))     # a 96 px generator face ~ 2 IOD wide
            if s < 1.0:
                small = cv2.resize(src, (max(1, int(src.shape[1] * s)), max(1, int(src.shape[0] * s))),
                                   interpolation=cv2.INTER_AREA)
                src = cv2.resize(small, (src.shape[1], src.shape[0]), interpolation=cv2.INTER_CUBIC)
            src = src.astype(np.int16) + brighter
            g[y0:y1, x0:x1] = np.clip(src, 0, 255).astype(np.uint8)
            hit[i] = True
        out.append(g)
    return out, hit


def step(frames, landmarks, present, delta=STEP):
    from core.compose import mask_polygon
    from core.engines.base import MaskSettings

    out, hit = [], np.zeros(len(frames), bool)
    for i, f in enumerate(frames):
        g = f.copy()
        if present[i]:
            m = np.zeros(f.shape[:2], np.uint8)
            poly = mask_polygon(np.asarray(landmarks[i], np.float64), MaskSettings())
            cv2.fillPoly(m, [np.round(poly).astype(np.int32)], 1)
            r = max(1, int(round(STEP_DILATION * _iod(landmarks[i]))))
            m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
            sel = m > 0
            g[sel] = np.clip(g[sel].astype(np.int16) + delta, 0, 255).astype(np.uint8)
            hit[i] = True
        out.append(g)
    return out, hit


def jitter(frames, landmarks, present, amount=JITTER, seed=0):
    rng = np.random.default_rng(seed)
    out, hit = [], np.zeros(len(frames), bool)
    for i, f in enumerate(frames):
        if not present[i]:
            out.append(f.copy())
            continue
        a = rng.uniform(0, 2 * np.pi)
        d = amount * _iod(landmarks[i])
        M = np.float32([[1, 0, d * np.cos(a)], [0, 1, d * np.sin(a)]])
        moved = cv2.warpAffine(f, M, (f.shape[1], f.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out.append(_blend(f.astype(np.float32), moved.astype(np.float32), _soft_mask(f.shape, landmarks[i])))
        hit[i] = True
    return out, hit


def open_silence(frames, landmarks, present, silent):
    from core.faces.geometry import STABLE, mouth_opening

    lm = np.asarray(landmarks, np.float64)
    op = np.where(present, mouth_opening(lm), -1.0)
    j = int(np.argmax(op))
    out, hit = [], np.zeros(len(frames), bool)
    for i, f in enumerate(frames):
        if not (present[i] and silent[i]):
            out.append(f.copy())
            continue
        M, _ = cv2.estimateAffinePartial2D(lm[j][STABLE].astype(np.float32), lm[i][STABLE].astype(np.float32))
        warped = cv2.warpAffine(frames[j], M, (f.shape[1], f.shape[0]), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
        lm_j = lm[j] @ M[:, :2].T + M[:, 2]
        m = np.maximum(_soft_mask(f.shape, lm[i]), _soft_mask(f.shape, lm_j))
        out.append(_blend(f.astype(np.float32), warped.astype(np.float32), m))
        hit[i] = True
    return out, hit


KINDS = {"blur": "blur", "box": "seam", "step": "seam", "jitter": "flicker", "open_silence": "open_in_silence"}


def write_video(path, frames, fps, audio_from=None, crf=18):
    """Encode frames (H.264 CRF 18, yuv420p, like the product's dubs), with the audio of `audio_from`."""
    from core.media import VideoWriter, probe

    info = probe(audio_from) if audio_from else None
    h, w = frames[0].shape[:2]
    from fractions import Fraction
    fr = info.fps_fraction if info is not None else Fraction(fps).limit_denominator(1001)
    with VideoWriter(str(path), w, h, fr, audio=str(audio_from) if audio_from else None, crf=crf,
                     preset="veryfast") as wr:
        for f in frames:
            wr.write(f)
    return path
