"""The dubbed result's per-frame sync confidence, kept for the whole clip and updated range by range.

An export scores its range; after a correction only the frames the edit touched are re-rendered and re-scored
(`core.edits.changed_range`), and their confidences replace the old ones. A frame's confidence depends on its
neighbours (5-frame windows, then a 9-frame median), so a change at frames [a, b) moves the scores of
[a - REACH, b + REACH); those are rendered with CONTEXT more frames on each side so they are judged with full
windows, and only they are replaced.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from core.sync.scoring import MEDFILT_KERNEL, SyncScorer

REACH = SyncScorer.window // 2 + MEDFILT_KERNEL // 2   # 2 + 4 = 6: window half-width + median half-width
CONTEXT = 8   # extra frames rendered on each side so the replaced scores see whole windows


def rescore_plan(changed: Tuple[int, int], num_frames: int) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """(frames to render and score, frames whose confidence to replace) for a change at `changed`."""
    a, b = changed
    keep = (max(0, a - REACH), min(num_frames, b + REACH))
    render = (max(0, keep[0] - CONTEXT), min(num_frames, keep[1] + CONTEXT))
    return render, keep


@dataclass
class DubbedScore:
    voice: str                                  # the voice track the dub was scored against
    curve: np.ndarray                           # (num_frames,) confidence; NaN = not scored (or not judgeable)
    report: object = None                       # the latest scored range's SyncReport (status panel)
    report_range: Optional[Tuple[int, int]] = None
    scored: np.ndarray = field(default=None)    # (num_frames,) bool: frames covered by a scored range

    @classmethod
    def empty(cls, voice: str, num_frames: int) -> "DubbedScore":
        return cls(voice, np.full(num_frames, np.nan), scored=np.zeros(num_frames, bool))

    def scored_part(self, changed: Tuple[int, int]) -> Optional[Tuple[int, int]]:
        """`changed`, narrowed to what moves scores that exist (None: the edit touched no scored frame)."""
        a, b = changed
        lo, hi = max(0, a - REACH), min(len(self.scored), b + REACH)
        hit = np.flatnonzero(self.scored[lo:hi]) + lo
        if len(hit) == 0:
            return None
        return max(a, int(hit[0]) - REACH), min(b, int(hit[-1]) + 1 + REACH)

    def splice(self, per_frame: np.ndarray, offset: int, keep: Optional[Tuple[int, int]] = None,
               report=None) -> None:
        """Write `per_frame` (belonging to frames offset..) into the curve, only inside `keep` when given."""
        y = np.asarray(per_frame, np.float64)
        lo, hi = offset, min(len(self.curve), offset + len(y))
        if keep is not None:
            lo, hi = max(lo, keep[0]), min(hi, keep[1])
        if hi <= lo:
            return
        self.curve[lo:hi] = y[lo - offset:hi - offset]
        self.scored[lo:hi] = True
        if report is not None:
            self.report, self.report_range = report, (offset, offset + len(y))


@dataclass
class DubbedQC:
    """The dub's quality flags (core.qc) for the whole clip, spliced range by range like the sync curve."""

    voice: str
    flags: dict                                  # kind -> (num_frames,) bool
    checked: np.ndarray                          # (num_frames,) bool: frames a check covered
    summary: Optional[dict] = None               # the latest checked range's summary

    @classmethod
    def empty(cls, voice: str, num_frames: int) -> "DubbedQC":
        from core.qc.rules import KINDS

        return cls(voice, {k: np.zeros(num_frames, bool) for k in KINDS}, np.zeros(num_frames, bool))

    def splice(self, report, offset: int, keep: Optional[Tuple[int, int]] = None) -> None:
        """Write a core.qc.QCReport whose frame 0 is clip frame `offset` (only inside `keep` when given). QC
        flags are per frame (the flicker rule looks one frame either side), so no extra reach is needed."""
        n = len(self.checked)
        lo, hi = offset, min(n, offset + report.num_frames)
        if keep is not None:
            lo, hi = max(lo, keep[0]), min(hi, keep[1])
        if hi <= lo:
            return
        for k, v in report.flags.items():
            self.flags[k][lo:hi] = v[lo - offset:hi - offset]
        self.checked[lo:hi] = report.judged[lo - offset:hi - offset] | True
        self.summary = report.summary

    def count(self) -> int:
        anyf = np.zeros(len(self.checked), bool)
        for v in self.flags.values():
            anyf |= v
        return int(anyf.sum())
