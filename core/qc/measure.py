"""Stream an original and its dub side by side and measure every dub frame (`Measures`); no judgement here
(the flags are `core.qc.rules`).

Dub frame i shows original frame `source_index[i]` (the dub's schedule: identity for a dub of the whole clip with
the `shortest` policy) and the face there is the original's track at that frame: a dub pastes into the same
geometry, so the track locates the mouth in the dub without detecting anything. Everything is measured on a
small crop round the lower face (`core.qc.regions`), so the cost per frame hardly depends on the resolution;
only PSNR outside the mask looks at the whole frame (one `cv2.norm`).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np

from ..engines.base import MaskSettings
from ..progress import CancelToken, ProgressFn, check, report
from . import metrics as M
from .regions import face_region

PER_FRAME = ("sharp_orig", "sharp_dub", "ssim_mouth", "ssim_outside", "seam", "flicker_orig", "flicker_dub",
             "open_dub", "open_orig", "sse_outside", "n_outside")
SAME_MOUTH_SSIM = 0.95  # mouth-box SSIM above which the dub left the mouth as it was (no lip fit needed)
SEAM_REACH = 0.03     # IOD: a new edge within this of one of the (motion-compensated) original's is not new
SEAM_EXTENT = 0.15    # IOD: the shortest stroke of new edge that counts (its bounding box's longer side)
SEAM_EDGE = 1.0       # grey levels / px of new edge (after a sigma-1 blur, at CANON_IOD scale) that counts
SEAM_SMOOTH = 0.06    # IOD: radius of the median taken of the difference and the original before their edges
SEAM_EXPLAINED = 0.5  # share of the original's edge strength nearby that a new edge must exceed


@dataclass
class Measures:
    """Per dub frame (NaN where not measured). `judged`: the face is there and big enough to measure."""

    n: int
    judged: np.ndarray
    silent: np.ndarray                    # the voice is silent (open-mouth check applies)
    values: dict = field(default_factory=dict)
    orig_opening: Optional[np.ndarray] = None   # the original's inner-lip opening from its track (IOD), every frame
    dub_landmarks: Optional[np.ndarray] = None  # (n, 68, 2) fitted on the dub, when asked (LMD)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.values[key]

    @classmethod
    def empty(cls, n: int, silent: Optional[np.ndarray] = None) -> "Measures":
        vals = {k: np.full(n, np.nan) for k in PER_FRAME}
        s = np.zeros(n, bool) if silent is None else np.asarray(silent, bool)[:n]
        if len(s) < n:
            s = np.concatenate([s, np.zeros(n - len(s), bool)])
        return cls(n=n, judged=np.zeros(n, bool), silent=s, values=vals)


def seam_length(orig_g: np.ndarray, dub_g: np.ndarray, zone: np.ndarray, iod: float) -> float:
    """Pixels of new edge (>= SEAM_EDGE) in the seam zone that belong to a stroke at least SEAM_EXTENT IOD long
    (a seam is a line; a speck of coding noise or a moved freckle is not), per IOD: about the seam's length in
    IOD units. An edge is new when neither the original as it is nor the original moved by optical flow onto the
    dub explains it (the smaller of the two lengths); the flow, the costliest step, is computed only when the
    original as it is leaves some new edge (a clean copy or an untouched region never needs it)."""
    opts = dict(reach=max(1, int(round(SEAM_REACH * iod))), smooth=max(1, int(round(SEAM_SMOOTH * iod))),
                explained=SEAM_EXPLAINED)
    plain = stroke_length(M.new_edges(orig_g, dub_g, compensate=False, **opts), zone, iod)
    if plain <= 0.0:
        return 0.0
    return min(plain, stroke_length(M.new_edges(orig_g, dub_g, **opts), zone, iod))


def stroke_length(edges: np.ndarray, zone: np.ndarray, iod: float) -> float:
    """Pixels >= SEAM_EDGE in `zone` that belong to strokes at least SEAM_EXTENT IOD long, per IOD."""
    import cv2

    b = ((edges >= SEAM_EDGE) & zone).astype(np.uint8)
    if not b.any():
        return 0.0
    _, _, stats, _ = cv2.connectedComponentsWithStats(b, connectivity=8)
    st = stats[1:]
    long = np.maximum(st[:, cv2.CC_STAT_WIDTH], st[:, cv2.CC_STAT_HEIGHT]) >= SEAM_EXTENT * iod
    return float(st[long, cv2.CC_STAT_AREA].sum()) / max(iod, M.EPS)


def measure(orig_frames: Iterable[np.ndarray], dub_frames: Iterable[np.ndarray], landmarks: np.ndarray,
            present: np.ndarray, boxes: np.ndarray, silent: Optional[np.ndarray] = None, *,
            mask: Optional[MaskSettings] = None, fit_all: bool = False, num_frames: Optional[int] = None,
            open_gate=None, fit_where: Optional[np.ndarray] = None, progress: Optional[ProgressFn] = None,
            cancel: Optional[CancelToken] = None) -> Measures:
    """Measure dub frames against original frames (both in dub order, same size). `landmarks`/`present`/`boxes`:
    the original's track per dub frame. `silent`: per dub frame, the voice is silent. `fit_where`: the frames
    whose lips are fitted on the dub (where the dub changed the mouth; default: the silent ones; the report
    passes the silent frames the open-mouth rule judges, `rules.judged_silence`: it looks nowhere else).
    `fit_all`: fit the dub's lips on every frame (for LMD). `open_gate(orig_opening) -> float`: the original's
    lips are fitted only where the dub's open wider than this (the open-mouth rule looks no further; None:
    wherever the dub's are fitted). OpenCV runs on one thread meanwhile (`metrics.opencv_single_threaded`)."""
    with M.opencv_single_threaded():
        return _measure(orig_frames, dub_frames, landmarks, present, boxes, silent, mask, fit_all, num_frames,
                        open_gate, fit_where, progress, cancel)


def _measure(orig_frames, dub_frames, landmarks, present, boxes, silent, mask, fit_all, num_frames, open_gate,
             fit_where, progress, cancel) -> Measures:
    n = int(num_frames if num_frames is not None else len(landmarks))
    out = Measures.empty(n, silent)
    v = out.values
    from ..faces.geometry import inter_ocular, mouth_opening

    lm = np.asarray(landmarks, np.float64)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        op = mouth_opening(lm) / inter_ocular(lm)
    out.orig_opening = np.where(np.asarray(present[:n], bool), op, np.nan)
    gate = -np.inf if open_gate is None else float(open_gate(out.orig_opening))
    fit = out.silent.copy()
    if fit_where is not None:
        fw = np.asarray(fit_where, bool)[:n]
        fit[:] = False
        fit[:len(fw)] = fw
    if fit_all:
        out.dub_landmarks = np.full((n, 68, 2), np.nan, np.float32)
    ring: deque = deque(maxlen=3)      # (index, orig full, dub full)
    regions: dict = {}

    def flicker_at(k: int) -> None:
        """Second differences at frame k (the middle of the ring), on frame k's crop."""
        (i0, o0, d0), (i1, o1, d1), (i2, o2, d2) = ring
        reg = regions.get(i1)
        if reg is None:
            return
        mo = [reg.grey_mouth_crop(f) for f in (o0, o1, o2)]
        md = [reg.grey_mouth_crop(f) for f in (d0, d1, d2)]
        v["flicker_orig"][i1] = M.second_difference(*mo)
        v["flicker_dub"][i1] = M.second_difference(*md)

    i = -1
    for i, (of, df) in enumerate(zip(orig_frames, dub_frames)):
        if i >= n:
            break
        if of.shape != df.shape:
            from ..errors import MediaError

            raise MediaError(f"The dub's frames are {df.shape[1]}x{df.shape[0]} but the original's are "
                             f"{of.shape[1]}x{of.shape[0]}: compare a dub with the video it was made from.")
        reg = face_region(landmarks[i], of.shape[:2], mask) if present[i] else None
        regions.pop(i - 2, None)
        if reg is not None:
            regions[i] = reg
            out.judged[i] = True
            go, gd = reg.grey_crop(of), reg.grey_crop(df)
            mo, md = reg.mouth_of(go), reg.mouth_of(gd)
            inside = reg.mask >= 0.5
            v["sharp_orig"][i] = M.sharpness(go, inside)
            v["sharp_dub"][i] = M.sharpness(gd, inside)
            full = M.ssim_map(go, gd)              # one SSIM map of the crop: the mouth box and outside the mask
            v["ssim_mouth"][i] = M.mean_over(None if full is None else reg.mouth_of(full))
            v["ssim_outside"][i] = M.mean_over(full, reg.mask <= 0)
            v["seam"][i] = seam_length(go, gd, reg.seam_zone, reg.iod)
            v["sse_outside"][i], v["n_outside"][i] = M.psnr_outside(of, df, reg.frame_mask(), reg.box)
            # the lips are fitted (dlib, the costliest step) on silent frames only, and only where the dub changed
            # the mouth at all: an unchanged mouth cannot open wider than the original's (the rule's second test)
            changed = not (v["ssim_mouth"][i] >= SAME_MOUTH_SSIM)
            if fit_all or (fit[i] and changed):
                box = boxes[i]
                if np.all(np.isfinite(box)):
                    v["open_dub"][i] = M.lip_opening(df, box)
                    if out.silent[i] and v["open_dub"][i] > gate:
                        v["open_orig"][i] = M.lip_opening(of, box)
                    if fit_all:
                        out.dub_landmarks[i] = M.fit_landmarks(df, box)
        else:
            v["sse_outside"][i], v["n_outside"][i] = M.psnr_outside(of, df, np.zeros((0, 0), np.uint8), (0, 0, 0, 0))
        ring.append((i, of, df))
        if len(ring) == 3:
            flicker_at(i - 1)
        if i % 16 == 0:
            check(cancel)
            report(progress, "qc", i + 1, n)
    report(progress, "qc", min(i + 1, n), n)
    if i + 1 < n:
        from ..errors import MediaError

        raise MediaError(f"The dub has {i + 1} frames where {n} were expected: compare a dub with the video it "
                         "was made from (and the same --range / --length).")
    return out


def psnr_total(m: Measures, frames: Optional[np.ndarray] = None) -> float:
    """The PSNR outside the mask over the given frames (all by default)."""
    sse, cnt = m["sse_outside"], m["n_outside"]
    sel = np.isfinite(sse) if frames is None else (np.isfinite(sse) & frames)
    return M.psnr(float(sse[sel].sum()), int(cnt[sel].sum()))


