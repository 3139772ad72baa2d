"""Face tracking over a clip: detect on keyframes and scene cuts, follow with landmarks in between, smooth.

Per frame:
1. scene-cut test against the previous frame (hue/saturation histogram distance + thumbnail difference);
   at a cut every live track ends and detection runs;
2. every live track is followed: its box is the box of its last detection moved by the similarity transform
   between the landmarks then and the landmarks of the previous frame; the 68 landmarks are refitted in it;
3. the fit is checked (normalised cross-correlation of the eye/nose region with the last detection's, and
   sudden scale jumps); a degraded fit triggers an early detection;
4. detection runs on keyframes (every `detect_every` frames), at cuts and on degraded fits; detections are
   associated to live tracks (greedy on IoU with a centre-distance gate); an unmatched degraded track
   ends (so does one unseen by the detector for `max_missed` keyframes), a matched track whose face no
   longer looks like its last detection ends too (identity switch without a visible cut); an unmatched
   detection starts a track, or revives an ended one when dlib's face descriptor says it is the same person
   (so a face keeps its id across black frames and cuts);
5. after the last frame, tracks confirmed by fewer than `min_confirmations` detections are dropped (false
   positives), ids are renumbered 0.. by first appearance, and boxes and landmarks are smoothed per run of
   present frames with a zero-phase One-Euro filter (reset at cuts).

Frames without a usable face get present=False and NaN boxes/landmarks; only `TrackSet.require_face()`
raises `NoFaceError`, when no face was found anywhere.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple

import numpy as np

from .. import media
from ..atomic import atomic_write
from ..errors import MediaError, NoFaceError
from ..in_flight import InFlight
from ..progress import CancelToken, ProgressFn, check, report
from ..streams import prefetch
from . import geometry as G
from .smoothing import OneEuroParams, smooth_sequence

log = logging.getLogger(__name__)
_IN_FLIGHT = InFlight()          # the clips being tracked in this process (track_video)

TRACKER_VERSION = 2              # 2: tracks cached before the detector lock (931a6ee) may hold
                                 # another clip's detections when two jobs tracked at once: tracked again
DEADBAND = 0.03
# Lower jaw + mouth: these move when speaking and get a higher resting cutoff than the rigid points.
SPEECH_POINTS = np.concatenate([np.arange(4, 13), G.MOUTH])


@dataclass(frozen=True)
class TrackerSettings:
    detect_every: int = 5             # keyframe interval (frames)
    max_faces: int = 8                # at most this many detections per frame are used (largest first)
    min_face: float = 0.0             # ignore detections narrower than this (full-frame pixels)
    cut_hist: float = 0.25            # hue/sat histogram total-variation distance that marks a cut
    cut_diff: float = 0.06            # mean absolute thumbnail difference (0..1) that marks a cut
    degrade_ncc: float = 0.8          # eye/nose patch correlation with the last detection below this: re-detect
    reid_distance: float = 0.5        # dlib descriptor distance under which an ended track is revived
    max_missed: int = 10              # a track the detector has not seen for this many keyframes in a row ends
    min_confirmations: int = 2        # tracks the detector saw on fewer keyframes are dropped (false positives)
    smooth: bool = True
    # Tuned on 4 held-out GRID clips: stable-point jitter (mean |2nd difference|) down to ~0.2x of per-frame
    # detection's while the mouth opening still correlates r >= 0.987 with it.
    landmark_params: OneEuroParams = OneEuroParams(min_cutoff=0.5, beta=3.0, d_cutoff=2.0)
    speech_min_cutoff: float = 8.0    # resting cutoff (Hz) of the mouth and lower-jaw points
    box_params: OneEuroParams = OneEuroParams(min_cutoff=0.5, beta=3.0, d_cutoff=2.0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["version"] = TRACKER_VERSION
        return d


@dataclass
class FaceTrack:
    track_id: int
    boxes: np.ndarray      # (N, 4) float32, NaN where absent
    landmarks: np.ndarray  # (N, 68, 2) float32, NaN where absent
    present: np.ndarray    # (N,) bool
    raw_landmarks: Optional[np.ndarray] = None   # (N, 68, 2) before smoothing (None when not kept)

    @property
    def num_present(self) -> int:
        return int(np.count_nonzero(self.present))

    def first_frame(self) -> int:
        idx = np.flatnonzero(self.present)
        return int(idx[0]) if len(idx) else -1

    def median_size(self) -> float:
        if not self.present.any():
            return 0.0
        b = self.boxes[self.present]
        return float(np.median(np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))))


@dataclass
class TrackSet:
    num_frames: int
    width: int
    height: int
    fps: float
    tracks: List[FaceTrack]
    cuts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))       # frames that start a new shot
    detected: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))       # (N,) detection ran here
    settings: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)

    # -- choosing a face -----------------------------------------------------------------------------------
    @property
    def ids(self) -> List[int]:
        return [t.track_id for t in self.tracks]

    def primary(self) -> FaceTrack:
        """The main face: among the tracks present in at least 80 % as many frames as the most present one,
        the largest (median box size); ties go to the lower id. NoFaceError if there is no track."""
        self.require_face()
        most = max(t.num_present for t in self.tracks)
        cands = [t for t in self.tracks if t.num_present >= 0.8 * most]
        return max(cands, key=lambda t: (round(t.median_size(), 1), t.num_present, -t.track_id))

    def get(self, track_id: int) -> FaceTrack:
        for t in self.tracks:
            if t.track_id == int(track_id):
                return t
        raise NoFaceError(f"There is no face track {track_id} in this clip; the tracks are {self.ids or 'none'}.")

    def require_face(self) -> "TrackSet":
        if not self.tracks:
            raise NoFaceError("No face was found anywhere in the clip: choose a clip with a visible, frontal face.")
        return self

    def track_at(self, frame: int, x: float, y: float) -> Optional[FaceTrack]:
        """The track whose box contains (x, y) at `frame` (the GUI's click-to-choose), else None."""
        best, best_area = None, np.inf
        for t in self.tracks:
            if 0 <= frame < len(t.present) and t.present[frame]:
                x0, y0, x1, y1 = t.boxes[frame]
                area = (x1 - x0) * (y1 - y0)
                if x0 <= x <= x1 and y0 <= y <= y1 and area < best_area:
                    best, best_area = t, area
        return best

    def summary(self) -> dict:
        return {"num_frames": self.num_frames, "size": [self.width, self.height], "fps": self.fps,
                "tracks": {t.track_id: t.num_present for t in self.tracks}, "cuts": [int(c) for c in self.cuts],
                "detections": int(np.count_nonzero(self.detected))}

    # -- persistence ---------------------------------------------------------------------------------------
    def _arrays(self) -> dict:
        meta = {"num_frames": self.num_frames, "width": self.width, "height": self.height, "fps": self.fps,
                "ids": self.ids, "settings": self.settings, "stats": self.stats, "format": 1}
        arrs = {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
                "cuts": np.asarray(self.cuts, np.int64), "detected": np.asarray(self.detected, bool)}
        for t in self.tracks:
            k = f"t{t.track_id}_"
            arrs[k + "boxes"] = t.boxes.astype(np.float32)
            arrs[k + "landmarks"] = t.landmarks.astype(np.float32)
            arrs[k + "present"] = t.present.astype(bool)
            if t.raw_landmarks is not None:
                arrs[k + "raw"] = t.raw_landmarks.astype(np.float32)
        return arrs

    def save(self, path) -> Path:
        """Write a compressed .npz atomically (temp file in the same folder, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as f:
            np.savez_compressed(f, **self._arrays())
        return path

    @classmethod
    def load(cls, path) -> "TrackSet":
        with np.load(str(path), allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            tracks = []
            for tid in meta["ids"]:
                k = f"t{tid}_"
                tracks.append(FaceTrack(int(tid), z[k + "boxes"], z[k + "landmarks"], z[k + "present"],
                                        z[k + "raw"] if (k + "raw") in z.files else None))
            return cls(int(meta["num_frames"]), int(meta["width"]), int(meta["height"]), float(meta["fps"]), tracks,
                       z["cuts"], z["detected"], meta.get("settings", {}), meta.get("stats", {}))


# ------------------------------------------------------------------------------------------------------------
# geometry helpers
# ------------------------------------------------------------------------------------------------------------
def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / ua) if ua > 0 else 0.0


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity src -> dst (on the stable points)."""
    s, r, t = G.similarity_transform(src[G.STABLE], dst[G.STABLE])
    return np.hstack([s * r, t[:, None]])


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _move_box(box: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Box moved by a similarity: same centre mapping and size scaling (stays axis-aligned, no rotation)."""
    c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    half = np.array([(box[2] - box[0]) / 2, (box[3] - box[1]) / 2])
    s = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    c2 = _apply(m, c[None])[0]
    return np.array([c2[0] - half[0] * s, c2[1] - half[1] * s, c2[0] + half[0] * s, c2[1] + half[1] * s], np.float32)


_PATCH = 24


def _patch(gray: np.ndarray, box: np.ndarray, m: Optional[np.ndarray] = None) -> np.ndarray:
    """Eye/nose region (upper 60 % of `box`) as a 24x24 float patch; `m` maps the box's frame into `gray`."""
    import cv2

    x0, y0, x1, y1 = [float(v) for v in box]
    w, h = x1 - x0, (y1 - y0) * 0.6
    a = np.array([[w / _PATCH, 0, x0], [0, h / _PATCH, y0]], np.float64)   # patch -> box frame
    if m is not None:
        a = np.hstack([m[:, :2] @ a[:, :2], (m[:, :2] @ a[:, 2] + m[:, 2])[:, None]])
    return cv2.warpAffine(gray, a, (_PATCH, _PATCH), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    na, nb = np.sqrt((a * a).sum()), np.sqrt((b * b).sum())
    if a.std() < 2.0 or b.std() < 2.0:
        return 0.0   # a flat patch (black frame, blank occluder): nothing to follow
    return float((a * b).sum() / (na * nb))


# ------------------------------------------------------------------------------------------------------------
# scene cuts
# ------------------------------------------------------------------------------------------------------------
def _frame_signature(frame: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    import cv2

    step = max(1, min(frame.shape[0] // 96, frame.shape[1] // 128))   # subsample big frames first (cheap)
    small = cv2.resize(np.ascontiguousarray(frame[::step, ::step]), (64, 48), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).ravel()
    hist /= max(hist.sum(), 1.0)
    thumb = cv2.cvtColor(cv2.resize(small, (32, 24), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return hist, thumb.astype(np.float32) / 255.0


def cut_scores(prev, cur) -> Tuple[float, float]:
    """(histogram distance, thumbnail difference) between two frame signatures."""
    return 0.5 * float(np.abs(prev[0] - cur[0]).sum()), float(np.abs(prev[1] - cur[1]).mean())


# ------------------------------------------------------------------------------------------------------------
# the tracker
# ------------------------------------------------------------------------------------------------------------
class _Live:
    """State of one track while it is being followed."""

    def __init__(self, tid: int):
        self.tid = tid
        self.ref_box = self.ref_lm = self.ref_patch = None
        self.last_lm: Optional[np.ndarray] = None
        self.cur_box: Optional[np.ndarray] = None     # box the last landmarks were fitted in
        self.last_moved: Optional[np.ndarray] = None  # detection box moved with the last landmarks
        self.vel = np.zeros(4, np.float32)            # per-frame motion of that box
        self.missed = 0                               # keyframes in a row without a matching detection
        self.chip = None            # aligned face chip for re-identification (descriptor computed lazily)
        self.desc = None

    def set_ref(self, gray, box, lm):
        box = np.asarray(box, np.float32)[:4]
        # the velocity is kept: a detection box and a landmark-moved box differ by the detector's own jitter
        self.ref_box, self.ref_lm = box, lm
        self.ref_patch = _patch(gray, box)
        self.last_lm = lm
        self.cur_box = box.copy()
        self.last_moved = box.copy()

    def moved(self, lm) -> np.ndarray:
        return _move_box(self.ref_box, _similarity(self.ref_lm, lm))

    def follow(self, pf, fit):
        """Fit this frame's landmarks: in the box predicted at constant velocity, kept still inside a dead band
        of 3 % of the face width (dlib's fit shifts with the box: a box that follows landmark jitter feeds the
        jitter back), refitted once when the fitted face lies outside that band (fast motion).
        Returns (landmarks, box of the face in this frame)."""
        w = float(self.cur_box[2] - self.cur_box[0])
        band = DEADBAND * w
        pred = self.last_moved + self.vel
        if np.abs(pred - self.cur_box).max() <= band:
            pred = self.cur_box
        lm = fit(pf, pred)
        mv = self.moved(lm)
        if np.abs(mv - pred).max() > band and np.isfinite(mv).all():
            pred = mv
            lm = fit(pf, pred)
            mv = self.moved(lm)
        return lm, mv, pred

    def accept(self, lm, mv, fitted_in):
        self.vel = mv - self.last_moved
        self.last_moved = mv
        self.cur_box = np.asarray(fitted_in, np.float32)
        self.last_lm = lm

    def quality(self, gray, lm) -> float:
        """Correlation of the eye/nose region under `lm` with the one at the last detection (1 = same)."""
        return _ncc(self.ref_patch, _patch(gray, self.ref_box, _similarity(self.ref_lm, lm)))


class _Recorder:
    def __init__(self):
        self.rows: dict = {}   # tid -> list of (frame, box, lm)

    def add(self, tid, i, box, lm):
        self.rows.setdefault(tid, []).append((i, box, lm))


def _assign(cost: np.ndarray):
    """Greedy assignment (cheapest pair first) of tracks (rows) to detections (columns); gated pairs (>= 1e3)
    are never used. With the few faces of a shot this equals the optimal (Hungarian) assignment in practice,
    and avoids importing scipy.optimize (~1-4 s) for it."""
    pairs, used_r, used_c = [], set(), set()
    if cost.size == 0:
        return pairs
    for flat in np.argsort(cost, axis=None, kind="stable"):
        r, c = divmod(int(flat), cost.shape[1])
        if cost[r, c] >= 1e3:
            break
        if r not in used_r and c not in used_c:
            pairs.append((r, c))
            used_r.add(r)
            used_c.add(c)
    return pairs


def _assoc_cost(box: np.ndarray, det: np.ndarray) -> float:
    o = iou(box, det)
    wb, wd = box[2] - box[0], det[2] - det[0]
    ratio = wd / max(wb, 1e-6)
    cb = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    cd = np.array([(det[0] + det[2]) / 2, (det[1] + det[3]) / 2])
    dist = float(np.linalg.norm(cb - cd)) / max(wb, 1e-6)
    if o < 0.2 and not (dist < 0.5 and 0.6 < ratio < 1.6):
        return 1e6
    return (1.0 - o) + 0.5 * dist


def track_frames(frames: Iterable[np.ndarray], num_frames: int, fps: float, *, backend=None,
                 detect_every: Optional[int] = None, settings: Optional[TrackerSettings] = None,
                 keep_raw: bool = True, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelToken] = None) -> TrackSet:
    """Track every face in `frames` (BGR uint8). `num_frames` is the expected count (for progress and padding:
    the result has max(num_frames, frames seen) frames). `detect_every` overrides `settings.detect_every`."""
    from .detect import default_backend

    st = settings or TrackerSettings()
    if detect_every is not None:
        st = TrackerSettings(**{**asdict_shallow(st), "detect_every": int(detect_every)})
    if st.detect_every < 1:
        raise ValueError("detect_every must be >= 1")
    be = backend if backend is not None else default_backend()
    fps = float(fps) if fps and fps > 0 else 25.0
    total = int(num_frames or 0)

    rec = _Recorder()
    live: List[_Live] = []
    ended: List[_Live] = []
    next_id = 0
    cuts: List[int] = []
    detected: List[bool] = []
    prev_sig = None
    last_detect = -10 ** 9
    width = height = 0
    n_det = n_degraded = 0
    n_switch = [0]
    confirmations: dict = {}
    t_det = t_lm = 0.0
    t0 = time.perf_counter()
    i = -1

    def landmarks(pf, box):
        nonlocal t_lm
        ta = time.perf_counter()
        lm = be.landmarks(pf, box)
        t_lm += time.perf_counter() - ta
        return lm

    def revive_or_new(pf, box, lm) -> _Live:
        nonlocal next_id
        chip = _chip(be, pf, box, lm)
        best, best_d = None, st.reid_distance
        if ended and chip is not None:
            d_new = _descriptor(be, chip)
            for t in ended:
                if d_new is None:
                    break
                if t.desc is None and t.chip is not None:
                    t.desc = _descriptor(be, t.chip)
                if t.desc is not None:
                    dd = float(np.linalg.norm(t.desc - d_new))
                    if dd < best_d:
                        best, best_d = t, dd
        if best is not None:
            ended.remove(best)
            t = _Live(best.tid)
            t.chip, t.desc = best.chip, best.desc
        else:
            t = _Live(next_id)
            next_id += 1
            t.chip = chip
        return t

    for i, frame in enumerate(frames):
        check(cancel)
        if i == 0:
            height, width = frame.shape[:2]
        pf = be.prepare(frame)
        sig = _frame_signature(frame)
        cut = False
        if prev_sig is not None:
            h, d = cut_scores(prev_sig, sig)
            cut = h > st.cut_hist or d > st.cut_diff
        prev_sig = sig
        if cut:
            cuts.append(i)
            ended.extend(live)
            live = []

        # 1) follow the live tracks with landmarks
        follow = {}
        degraded = set()
        for t in live:
            lm, mv, fitted_in = t.follow(pf, landmarks)
            q = t.quality(pf.gray, lm)
            ratio = float(G.inter_ocular(lm)) / max(float(G.inter_ocular(t.last_lm)), 1e-6)
            follow[t.tid] = (lm, mv, fitted_in)
            if not np.isfinite(lm).all() or q < st.degrade_ncc or not (0.75 < ratio < 1.33):
                degraded.add(t.tid)
        n_degraded += len(degraded)

        # 2) detection on keyframes, cuts and degraded fits (and every `detect_every` frames while none is tracked)
        need = (i - last_detect >= st.detect_every) or cut or bool(degraded)
        detected.append(need)
        if need:
            last_detect = i
            n_det += 1
            ta = time.perf_counter()
            dets = [b for b in be.detect(pf) if (b[2] - b[0]) >= st.min_face][: st.max_faces]
            t_det += time.perf_counter() - ta
            cost = np.array([[_assoc_cost(follow[t.tid][2], d) for d in dets] for t in live]).reshape(len(live), len(dets))
            pairs = _assign(cost)
            matched_t = {live[a].tid: b for a, b in pairs}
            used = set()
            keep: List[_Live] = []
            for t in live:
                if t.tid in matched_t:
                    j = matched_t[t.tid]
                    d = dets[j]
                    lm = landmarks(pf, d)
                    if t.quality(pf.gray, lm) >= st.degrade_ncc:
                        t.set_ref(pf.gray, d, lm)
                        t.missed = 0
                        confirmations[t.tid] = confirmations.get(t.tid, 0) + 1
                        rec.add(t.tid, i, np.asarray(d[:4], np.float32), lm)
                        keep.append(t)
                        used.add(j)
                        continue
                    n_switch[0] += 1      # a different face took this place without a visible cut
                    ended.append(t)
                elif t.tid in degraded or t.missed >= st.max_missed:
                    ended.append(t)       # lost: the detector does not see it and the fit is bad (or for long)
                else:
                    t.missed += 1
                    lm, mv, fitted_in = follow[t.tid]   # the detector missed a face that still fits well: coast
                    t.accept(lm, mv, fitted_in)
                    rec.add(t.tid, i, mv, lm)
                    keep.append(t)
            for j, d in enumerate(dets):
                if j in used:
                    continue
                if any(iou(d, rec.rows[t.tid][-1][1]) > 0.3 for t in keep if rec.rows[t.tid][-1][0] == i):
                    continue              # a duplicate detection of a face already tracked
                lm = landmarks(pf, d)
                t = revive_or_new(pf, d, lm)
                t.set_ref(pf.gray, d, lm)
                confirmations[t.tid] = confirmations.get(t.tid, 0) + 1
                rec.add(t.tid, i, np.asarray(d[:4], np.float32), lm)
                keep.append(t)
            live = keep
        else:
            for t in live:
                lm, mv, fitted_in = follow[t.tid]
                t.accept(lm, mv, fitted_in)
                rec.add(t.tid, i, mv, lm)

        report(progress, "track", i + 1, max(total, i + 1))

    n = max(total, i + 1)
    if i + 1 < total:
        log.warning("tracking: %d frames decoded, %d expected; the rest are marked without a face", i + 1, total)
    detected_arr = np.zeros(n, bool)
    detected_arr[: len(detected)] = detected
    tracks = []
    kept = [tid for tid in rec.rows if confirmations.get(tid, 0) >= st.min_confirmations]
    dropped = len(rec.rows) - len(kept)
    kept.sort(key=lambda tid: (rec.rows[tid][0][0], tid))      # ids renumbered by first appearance
    for new_id, tid in enumerate(kept):
        boxes = np.full((n, 4), np.nan, np.float32)
        lms = np.full((n, 68, 2), np.nan, np.float32)
        present = np.zeros(n, bool)
        for fi, b, lm in rec.rows[tid]:
            boxes[fi], lms[fi], present[fi] = b, lm, True
        raw = lms.copy()
        if st.smooth:
            lms, boxes = _smooth(lms, boxes, present, fps, cuts, st)
        tracks.append(FaceTrack(new_id, boxes, lms, present, raw if keep_raw else None))
    elapsed = time.perf_counter() - t0
    stats = {"frames": i + 1, "detections": n_det, "degraded": n_degraded, "cuts": len(cuts), "switches": n_switch[0],
             "dropped": dropped,
             "seconds": round(elapsed, 3), "detect_seconds": round(t_det, 3), "landmark_seconds": round(t_lm, 3),
             "fps": round((i + 1) / elapsed, 2) if elapsed > 0 else 0.0}
    return TrackSet(n, int(width), int(height), fps, tracks, np.asarray(cuts, np.int64), detected_arr,
                    settings_key(st, be), stats)


def settings_key(st: TrackerSettings, backend=None) -> dict:
    """Everything that changes tracking results: tracker settings + backend settings (model files included)."""
    from .detect import dlib_settings_key

    key = st.to_dict()
    if backend is None:
        key["backend"] = dlib_settings_key()
    elif hasattr(backend, "settings_key"):
        key["backend"] = backend.settings_key()
    else:
        key["backend"] = {"backend": getattr(backend, "name", type(backend).__name__)}
    return key


def _open_video(path):
    """(fps, num_frames, width, height, frame iterator, decoder name) of a video file, through core.media."""
    p = Path(path)
    if not p.is_file():
        raise MediaError(f"The video file does not exist: {p}.")
    info = media.probe(str(p))
    if not info.has_video:
        raise MediaError(f"{p} has no video stream: choose a video file with a visible face.")
    return (float(info.fps), int(info.num_frames), int(info.width), int(info.height),
            media.iter_frames(str(p), info, backend="auto"), "core.media")


def track_video(path, *, backend=None, detect_every: Optional[int] = None, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None, cache_dir=None, use_cache: bool = True,
                settings: Optional[TrackerSettings] = None) -> TrackSet:
    """Track the faces of a video file, streaming its frames; the result is cached per clip + settings
    (see core.faces.cache). `stats["cache"]` says "hit" or "miss"."""
    from . import cache

    st = settings or TrackerSettings()
    if detect_every is not None and detect_every != st.detect_every:
        st = TrackerSettings(**{**asdict_shallow(st), "detect_every": int(detect_every)})
    fps, n, w, h, frames, decoder = _open_video(path)
    key = settings_key(st, backend)
    key["decoder"] = decoder

    def track() -> TrackSet:
        stream = prefetch(frames)
        try:
            ts = track_frames(stream, n, fps, backend=backend, settings=st, progress=progress, cancel=cancel)
        finally:
            stream.close()
        ts.settings = key
        ts.stats["cache"] = "miss"
        return ts

    if not use_cache:
        return track()

    def load() -> Optional[TrackSet]:
        hit = cache.load(path, key, TrackSet.load, cache_dir)
        if hit is not None:
            report(progress, "track", hit.num_frames, hit.num_frames)
            if hasattr(frames, "close"):
                frames.close()
        return hit

    def track_and_store() -> TrackSet:
        ts = track()
        f = cache.store(ts, path, key, cache_dir)
        if f is not None:
            ts.stats["cache_file"] = str(f)
        return ts

    # one tracking of a clip at a time in this process: a job asking while another tracks it waits for its result
    in_flight_key = (str(Path(path).resolve()), json.dumps(key, sort_keys=True, default=str), str(cache_dir))
    return _IN_FLIGHT.once(in_flight_key, load, track_and_store, cancel,
                           on_wait=lambda: report(progress, "track", 0, n))


def asdict_shallow(st: TrackerSettings) -> dict:
    return {f: getattr(st, f) for f in st.__dataclass_fields__}


def _chip(be, pf, box, lm):
    """Aligned face chip kept for re-identification (None when the backend has no descriptor)."""
    if not hasattr(be, "face_chip"):
        return None
    try:
        return be.face_chip(pf, box, lm)
    except Exception as e:  # re-identification is a nicety: never fail the clip for it
        log.warning("face chip failed: %s", e)
        return None


def _descriptor(be, chip):
    try:
        return be.chip_descriptor(chip)
    except Exception as e:
        log.warning("face descriptor failed: %s", e)
        return None


def _smooth(lms, boxes, present, fps, cuts, st: TrackerSettings):
    iod = G.inter_ocular(lms)                      # NaN where absent
    scale = np.where(np.isfinite(iod), iod, 1.0)
    mc = np.full(68, st.landmark_params.min_cutoff)
    mc[SPEECH_POINTS] = st.speech_min_cutoff
    lms_s = smooth_sequence(lms, present, fps, st.landmark_params, scale=scale, cuts=cuts, min_cutoff=mc)
    bw = np.where(present, boxes[:, 2] - boxes[:, 0], 1.0)
    boxes_s = smooth_sequence(boxes.reshape(-1, 2, 2), present, fps, st.box_params, scale=bw,
                              cuts=cuts).reshape(-1, 4)
    return lms_s, boxes_s
