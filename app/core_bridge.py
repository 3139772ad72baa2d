"""The few compositions of core calls the window needs that no core module offers as one call.

Everything else (probe, frame access, audio, voice activity, the dub pipeline) is imported from `core`
directly: there is one decode path and no stand-in.
"""
from __future__ import annotations

import logging
from typing import Optional

import cv2
import numpy as np

from core import compose
from core.sync import lane as sync_lane
from core.sync import scoring

log = logging.getLogger(__name__)


def score(video: str, info, wav: np.ndarray, track, *, adapt: bool = True, models_dir=None, device="cpu",
          progress=None, cancel=None, adapt_cache_dir=None):
    """The sync report of `wav` against the video's face. With `adapt`, the clip's own voice first teaches the
    lane this face's threshold and the mouth model this actor (core.adapt, cached per clip, so the dub later
    finds it ready; the video is read once for both voices); the report's `adaptation` says what was learnt.
    `adapt_cache_dir`: that cache's folder (default: the user's; tools.bench gives its own)."""
    from core.adapt import adapt_clip
    from core.mouth_shape import AudioToMouth

    scorer = scoring.get_scorer("auto", models_dir=models_dir, device=device)
    witness = AudioToMouth.load()           # the offset's second witness (core.sync.av_offset)
    adaptation = adapt_clip(video, info, track, model=witness, scorer=scorer, cache_dir=adapt_cache_dir,
                            progress=progress, cancel=cancel) if adapt else None
    if adaptation is not None:
        scorer = adaptation.lane_scorer(scorer)
    report = scoring.score_clip(video, wav, track, scorer, progress=progress, cancel=cancel, fps=float(info.fps),
                                low_threshold=None if adaptation is None else adaptation.low_threshold,
                                offset_model=witness, face=None if adaptation is None else adaptation.face,
                                judgeable=True if adaptation is None else adaptation.judgeable)
    report.adaptation = adaptation
    return report


def low_threshold(report) -> float:
    """The threshold the report's `low` frames were judged by (core.sync.lane)."""
    value = getattr(report, "low_threshold", None)
    return float(sync_lane.LOW_THRESHOLD if value is None else value)


def mask_outline(frame_hw, landmarks: np.ndarray, mask_settings, polygons=()) -> Optional[np.ndarray]:
    """Outline (K, 2) float32 of the blend mask at the half-strength level, in frame coordinates, including
    the editor's drawn areas (`core.edits.MaskPolygon`s)."""
    if landmarks is None or not np.all(np.isfinite(landmarks)):
        return None
    mask, roi = compose.lower_face_mask(frame_hw, landmarks, mask_settings, polygons=polygons)
    mask = np.asarray(mask)
    x0, y0 = (0, 0) if mask.shape[:2] == tuple(frame_hw[:2]) else (int(roi[0]), int(roi[1]))  # roi-sized mask
    contours, _ = cv2.findContours((mask >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float32)
    c[:, 0] += x0
    c[:, 1] += y0
    return c


def default_models_dir() -> str:
    from core.models import registry

    return str(registry.models_dir())
