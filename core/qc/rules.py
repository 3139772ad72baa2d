"""The flags: which dub frames are worth a look, and why. Each rule compares the dub with the original clip
itself (the same frame, or the clip's own range), never with an absolute standard, so a soft, shaky or
open-mouthed original is not blamed on the dub.

Measures come from `core.qc.measure` (crops at `CANON_IOD` = 64 px between the eyes, or the frame's own size
when smaller). The thresholds were set on made defects and clean re-encodes of GRID clips (held-out s1 and
grid_others; tools/eval_qc.py) and checked on real dubs; the figures are in docs/QC.md.

**blur** - the lower face lost its detail. Rule: the gradient energy of the dub over the lower-face mask divided by
the original's at the same frame, median over 5 frames (`Thresholds.blur_window`; blur is a state of the dub, not
of one frame, and the median keeps one noisy frame from flagging), is below `Thresholds.blur_ratio` = 0.65. Why
0.65: a clean CRF 18 re-encode keeps 0.95-1.0; a Gaussian blur of sigma 0.04 IOD (1.6 px on a GRID face) drops it
to 0.38-0.50; real dubs of the classic engine sit at 0.7-1.1 (another mouth shape changes the energy a little). A
ratio, so a soft original (out of focus, low bit rate) makes a soft reference, not a flag.

**seam** - a box or an outline round the mouth. Rule: the dub shows an edge of at least `measure.SEAM_EDGE` = 1.0
grey level per pixel in dub - original (both median-filtered over a `measure.SEAM_SMOOTH` = 0.06 IOD radius, then a
sigma-1 blur) that exceeds `measure.SEAM_EXPLAINED` = half the original's own edge strength within 0.03 IOD, both
with the original as it is and with the original warped onto the dub by optical flow (whatever the dub only moved -
a lip, the chin, a fold - is explained), in strokes at least 0.15 IOD long, over more than `Thresholds.seam_length`
= 0.15 IOD of the seam zone (the lower-face crop minus the mouth and a band round the jaw outline:
`core.qc.regions`). Why: a hard-pasted box or a brightness step of 8-10 grey levels draws 1-15 IOD of such edge
along its outline; a correct dub changes the region smoothly (the product's feathered mask and colour match). The
median and the half: a step pasted across hair (brbk7n's fringe over her cheeks) was vetoed everywhere by the
hair's own edges when any original edge nearby explained a new one (43% of the frames seen); a step survives a
median, the thin traces of hair or of an edge a pixel off do not, and a moved strong edge (the jaw over a dark
collar, id2_vcd_swwp2s) leaves traces the median removes. Chosen on s4 training clips and s1 non-held-out dubs
(clean 0%, step 100%, box >= 93%, real dubs <= 4%). Without the flow and the jaw band real dubs of GRID clips
were "seamed" on 10-45% of their frames: the dub's own chin line drawn below the original's and the cheek outline
moved by the warp. Specks (coding noise, a moved freckle) are not strokes.

**flicker** - the mouth region zig-zags from frame to frame. Rule: the mean |previous - 2 x this + next| of the
mouth box (second difference, sigma-1 blur) of the dub exceeds both `Thresholds.flicker_clip` = 1.5 x the original
clip's own 90th percentile of the same measure (faster than the actor's mouth ever moves) and
`Thresholds.flicker_frame` = 1.5 x the original's value at that frame (more than the original moves there: a head
turn moves both). Why: a frame-by-frame jitter of 0.05 IOD gives 1.6-6 x the clip's 90th percentile; clean copies
stay at or under 1.0 of it (2.1 at most in a single frame, where the original moves as much), real dubs mostly
under 1.4.

**open_in_silence** - the mouth is open while the voice is silent. Rule: on frames where the voice is silent and
that are at least `Thresholds.silence_margin` = 2 frames from voiced ones (lips open just before a word and close
just after it), dlib's lips fitted on the dub in the track's face box open wider than the clip's "clearly open"
level (the original track's 10th percentile opening + `Thresholds.open_share` = 0.3 of its 10th-95th percentile
range) and wider than the original's own lips at that frame by `Thresholds.open_margin` = 0.04 IOD. Why the second
condition: an actor who keeps the mouth open in a pause does so in the original too; the dub is judged on what it
adds. The made defect (the clip's most open mouth held through silence) opens 0.12-0.23 IOD against closed lips at
0.01-0.05. (The dub's lips are fitted only on the silent frames the rule judges, and there only where the dub changed
the mouth, mouth SSIM < 0.95; the original's only where the dub's pass the open level: elsewhere the rule cannot
fire. The CSV's open_dub is empty on the other frames.)"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import numpy as np
from scipy.ndimage import median_filter

from .measure import Measures

KINDS = ("blur", "seam", "flicker", "open_in_silence")
DESCRIPTIONS = {
    "blur": "blurry mouth (lost detail against the original)",
    "seam": "seam or box edge round the mouth",
    "flicker": "flicker / jitter of the mouth",
    "open_in_silence": "mouth open while the voice is silent",
}


@dataclass(frozen=True)
class Thresholds:
    blur_ratio: float = 0.65
    blur_window: int = 5
    seam_length: float = 0.15
    flicker_clip: float = 1.5
    flicker_frame: float = 1.5
    silence_margin: int = 2
    open_share: float = 0.3
    open_margin: float = 0.04


def running_median(x: np.ndarray, size: int, fill: float = 1.0) -> np.ndarray:
    """Running median over `size` frames; frames not measured (NaN) count as `fill` (a neutral ratio) and stay
    NaN."""
    if size <= 1 or len(x) == 0:
        return x.copy()
    finite = np.isfinite(x)
    out = median_filter(np.where(finite, x, fill), size, mode="nearest")
    out[~finite] = np.nan
    return out


def blur_ratio(m: Measures, t: Thresholds = Thresholds()) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        r = m["sharp_dub"] / m["sharp_orig"]
    r[~m.judged] = np.nan
    return running_median(r, t.blur_window)


def judged_silence(silent: np.ndarray, margin: int) -> np.ndarray:
    """Silent frames at least `margin` frames away from any voiced frame."""
    s = np.asarray(silent, bool)
    if margin <= 0 or s.all():
        return s.copy()
    voiced = (~s).astype(np.uint8)
    from scipy.ndimage import binary_dilation

    near = binary_dilation(voiced, structure=np.ones(2 * margin + 1, bool))
    return s & ~near


def open_level(orig_opening: np.ndarray, t: Thresholds = Thresholds()) -> float:
    """The clip's "clearly open" inner-lip opening (IOD units), from the original's track."""
    op = orig_opening[np.isfinite(orig_opening)]
    if len(op) == 0:
        return np.inf
    lo, hi = np.percentile(op, [10, 95])
    return float(lo + t.open_share * (hi - lo))


def flags(m: Measures, t: Thresholds = Thresholds()) -> Dict[str, np.ndarray]:
    """{kind: (n,) bool} for the four kinds. Frames without a measured face are never flagged."""
    n = m.n
    out = {}
    with np.errstate(invalid="ignore"):
        out["blur"] = m.judged & (blur_ratio(m, t) < t.blur_ratio)
        out["seam"] = m.judged & (m["seam"] > t.seam_length)
        fo, fd = m["flicker_orig"], m["flicker_dub"]
        ok = np.isfinite(fo) & np.isfinite(fd)
        clip = float(np.percentile(fo[ok], 90)) if ok.any() else np.inf
        out["flicker"] = m.judged & ok & (fd > t.flicker_clip * clip) & (fd > t.flicker_frame * fo)
        level = open_level(m.orig_opening if m.orig_opening is not None else np.full(n, np.nan), t)
        od, oo = m["open_dub"], m["open_orig"]
        quiet = judged_silence(m.silent, t.silence_margin)
        out["open_in_silence"] = (m.judged & quiet & np.isfinite(od) & (od > level)
                                  & ~(np.isfinite(oo) & (od <= oo + t.open_margin)))
    return {k: np.asarray(out[k], bool) for k in KINDS}
