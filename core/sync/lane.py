"""The sync lane's per-frame confidence, calibrated against the clip's own null.

syncnet_python's per-frame confidence (`median over offsets - distance at the best offset`) depends on the face,
the recording and the scorer's training speakers: 4.6 on GRID, 0.7-1.7 on real footage, so no fixed threshold
means the same on every clip. Here each frame is judged the way a viewer sees it, at offset 0 (a voice that is
consistently 8 frames late is out of sync even though its best-offset confidence is high), and in units of the
clip's own evidence when the voice does *not* fit:

1. `local`: the window distances at every offset, averaged over `SPAN` windows around each window (1 s at
   25 fps). Local confidence at offset k = median over offsets of that average - the average at k.
2. The null: local confidences at clearly wrong offsets (|k| >= `NULL_MIN_SHIFT`), every window, from cells
   whose audio lies inside the clip (no zero padding). Its median and robust spread (1.4826 MAD) say what
   "no sync" looks like for this face, this voice and this recording.
3. `confidence` = (local confidence at offset 0 - null median) / null spread: about 0 where the lips do not
   follow the voice, large where they do, whatever the clip.
4. A rival: where another offset at least `RIVAL_MIN_SHIFT` frames away fits the window clearly better (by more
   than `RIVAL_MARGIN` null spreads), the voice is not in sync there however high offset 0 scores: the confidence
   becomes that (negative) difference, below every threshold. A wrong voice that shares the right voice's rhythm
   (GRID's sentences share one grammar) lifts offset 0 by chance, but rarely above every other offset; measured on
   the unseen speakers: every other speaker's voice caught on 0.76 -> 0.81 of their frames, their own voice shaded
   on 0.07 -> 0.09 (docs/MEASUREMENTS.md).

A frame is `low` where the voice is active and its confidence is below the clip's threshold. Frames where the
voice is silent carry no sync evidence and are never marked low. The threshold is `LOW_THRESHOLD`, chosen on the
scorer's training-side validation clips (tools/eval_sync.py), for a face the scorer knows. A face it never saw
gives weaker evidence even when perfectly in sync, so when the clip's own voice is available (per-clip
adaptation, core.sync.lane_adapt) the threshold becomes `clip_threshold(own level)`: `OWN_SHARE` of the confidence this
face reaches with its own voice, within [MIN_LOW_THRESHOLD, LOW_THRESHOLD].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPAN = 25               # windows averaged around each window (1 s at 25 fps; 15 shaded more of an unseen face's
                        # own voice with every scorer, docs/MEASUREMENTS.md)
NULL_MIN_SHIFT = 6      # offsets at least this far from 0 are "clearly wrong"
LOW_THRESHOLD = 3.0     # null spreads above the null median: below it, a voiced frame is shaded low
MIN_SPREAD = 1e-3       # floor of the null's spread (a constant distance table, e.g. a blank face)
OWN_SHARE = 0.6         # per-clip threshold: this share of the face's own in-sync level ...
MIN_LOW_THRESHOLD = 1.0  # ... never below this (the null itself reaches it on about 1 window in 6)
RIVAL_MIN_SHIFT = 3     # offsets at least this far from the judged one can be its rival ...
RIVAL_MARGIN = 0.5      # ... when they fit better by more than this (null spreads; chosen on s4's selection half)
CANNOT_JUDGE = ("sync cannot be judged on this face: its own voice scores no better than wrong offsets "
                "(a profile or a hidden mouth?)")


@dataclass
class LaneCalibration:
    confidence: np.ndarray      # (M,) per window, in null spreads
    null_median: float
    null_spread: float


def local_confidence(dists: np.ndarray, span: int = SPAN) -> np.ndarray:
    """(M, 2V+1) window distances -> (M, 2V+1) local confidence at every offset (higher: fits better)."""
    from scipy.ndimage import uniform_filter1d

    d = np.asarray(dists, np.float64)
    local = uniform_filter1d(d, size=min(span, len(d)), axis=0, mode="nearest")
    return np.median(local, axis=1, keepdims=True) - local


def calibrate(dists: np.ndarray, vshift: int, span: int = SPAN, null_min_shift: int = NULL_MIN_SHIFT,
              offset: int = 0) -> LaneCalibration:
    """Per-window confidence at `offset` (0: as the viewer sees it; syncnet's sign, positive = audio leads) in
    units of the clip's null: the offsets at least `null_min_shift` away from it (see the module docstring)."""
    d = np.asarray(dists, np.float64)
    m, w = d.shape
    if w != 2 * vshift + 1:
        raise ValueError(f"distance table has {w} offsets, expected {2 * vshift + 1}")
    column = vshift - int(offset)                          # syncnet: offset = vshift - argmin column
    if not 0 <= column < w:
        raise ValueError(f"offset {offset} lies outside the searched +-{vshift} frames")
    conf = local_confidence(d, span)
    shift = np.arange(w) - vshift                          # column j pairs window i with audio row i + j - vshift
    audio_row = np.arange(m)[:, None] + shift[None, :]
    inside = (audio_row >= 0) & (audio_row < m)
    null_cells = inside & (np.abs(np.arange(w) - column)[None, :] >= null_min_shift)
    if not null_cells.any():                               # clip shorter than the null offsets: use all of them
        null_cells = inside
    null = conf[null_cells]
    med = float(np.median(null))
    spread = max(1.4826 * float(np.median(np.abs(null - med))), MIN_SPREAD)
    rivals = inside & (np.abs(np.arange(w) - column)[None, :] >= RIVAL_MIN_SHIFT)
    rival = np.where(rivals, conf, -np.inf).max(axis=1)
    at_offset = (conf[:, column] - med) / spread
    beaten = (conf[:, column] - rival) / spread            # < 0: another offset fits this window better
    judged = np.where(beaten < -RIVAL_MARGIN, beaten, at_offset)
    return LaneCalibration(confidence=judged.astype(np.float32), null_median=med, null_spread=spread)


def own_level(dists: np.ndarray, vshift: int, offset: int, voiced_windows=None) -> float:
    """The confidence this face reaches with its own voice at its own offset: the median over voiced windows."""
    conf = calibrate(dists, vshift, offset=offset).confidence
    if voiced_windows is not None and np.any(voiced_windows):
        conf = conf[np.asarray(voiced_windows, bool)[:len(conf)]]
    return float(np.median(conf))


def clip_threshold(level: float) -> float:
    """The low threshold for a face whose own voice reaches `level` (see the module docstring)."""
    if not np.isfinite(level):
        return LOW_THRESHOLD
    return float(np.clip(OWN_SHARE * level, MIN_LOW_THRESHOLD, LOW_THRESHOLD))


def judgeable(own_level: float) -> bool:
    """Can the lane judge this face? Not when its own, in-sync voice reaches less than the lowest threshold: its
    median voiced frame would be shaded low, so the scorer cannot tell the right voice from wrong offsets on it (a
    profile, an occluded mouth). Unknown (NaN: no own voice to learn from) counts as judgeable."""
    return not np.isfinite(own_level) or own_level >= MIN_LOW_THRESHOLD


def low_frames(confidence: np.ndarray, voiced: np.ndarray, valid=None,
               threshold: float = LOW_THRESHOLD) -> np.ndarray:
    """(N,) bool per video frame: voice active, face scored, and confidence below the threshold."""
    low = (np.asarray(confidence, np.float64) < threshold) & np.asarray(voiced, bool)
    if valid is not None:
        low &= np.asarray(valid, bool)
    return low
