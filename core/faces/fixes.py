"""Hand-fixed face boxes: re-run landmark tracking from a box the editor drew on a keyframe.

From each fixed frame the landmarks are followed forward (box from the previous frame's landmarks) until the
next fix, until the automatic track agrees again for a few frames, or for at most `max_frames`.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional, Sequence

import numpy as np

from ..progress import CancelToken, check
from .geometry import inter_ocular

AGREE_FRAMES = 3        # consecutive frames of agreement with the automatic track that end a fix
AGREE_IOD = 0.15        # mean landmark distance (in inter-ocular units) that counts as agreement


def _box_from_landmarks(lm: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A box around the landmarks, with the fixed box's proportions relative to the landmark extent."""
    x0, y0 = lm.min(0)
    x1, y1 = lm.max(0)
    w, h = x1 - x0, y1 - y0
    return np.array([x0 - 0.05 * w, y0 - 0.25 * h, x1 + 0.05 * w, y1 + 0.05 * h], np.float32)


def apply_box_fixes(video: str, info, track, fixes: Sequence, *, backend=None, max_frames: int = 250,
                    cancel: Optional[CancelToken] = None):
    """A copy of `track` with landmarks re-tracked from each fixed box (fixes: objects with .frame and .box)."""
    from .. import media
    from .detect import default_backend

    backend = backend or default_backend()
    boxes, lms, present = track.boxes.copy(), track.landmarks.copy(), track.present.copy()
    n = len(present)
    order = sorted(fixes, key=lambda f: f.frame)
    for k, fix in enumerate(order):
        start = int(fix.frame)
        if not 0 <= start < n:
            continue
        stop = min(n, start + max_frames, int(order[k + 1].frame) if k + 1 < len(order) else n)
        box = np.asarray(fix.box, np.float32)
        agree = 0
        for i, frame in enumerate(media.iter_frames(video, info, start=start, stop=stop)):
            check(cancel)
            f = start + i
            lm = backend.landmarks(frame, box)
            auto = track.landmarks[f] if track.present[f] else None
            if f > start and auto is not None:
                d = float(np.linalg.norm(lm - auto, axis=1).mean() / max(float(inter_ocular(auto)), 1e-6))
                agree = agree + 1 if d < AGREE_IOD else 0
                if agree >= AGREE_FRAMES:
                    break
            boxes[f], lms[f], present[f] = (box if f == start else _box_from_landmarks(lm, box)), lm, True
            box = _box_from_landmarks(lm, box)
    return replace(track, boxes=boxes, landmarks=lms, present=present)
