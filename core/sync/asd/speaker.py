"""Which face speaks: per face track and video frame, how likely that face is speaking the sound track, and per
shot the face that speaks.

`speaking_scores(video, tracks, wav)` runs the shipped Light-ASD network (core.sync.asd.weights) the way its
authors run it: on each face track's 25 fps face crops (core.sync.asd.features.face_crop) and the sound's MFCCs,
over whole track segments (a run of frames where the face is tracked, within one shot), so its recurrent back end
sees the whole stretch; P(speaking) is the sigmoid of `ASDModel.speaking_logit`. Frames are streamed (one decoding
pass for every face); the visual encoder, the costly part (~9-18 ms per crop on one thread), runs over chunks of
`CHUNK` crops with `CONTEXT` crops of overlap on each side (its temporal reach), which gives what one pass over the
whole segment gives (to float rounding) while holding only a chunk of crops in memory (the streaming twin of
`core.sync.asd.net.visual_in_parts`, which does the same for crops already in memory). `frames` limits the work to
where it is needed (`needed_frames`: voiced frames, with context, of the shots where the choice of face is not trivial).

`who_speaks(scores, voiced, cuts)`: per shot, the track with the highest mean P(speaking) over the voiced frames
where it is tracked, and its margin over the next face; `speaking_track` composes the per-shot choices into one
FaceTrack (the pipeline's default face when the user chose none). `own_voice_speaking` is the adaptation's
"is this face speaking its own sound?" measure (core.sync.lane_adapt).

Measured facts that shape the use (../shared/models/asd/README.md): the network says "speaking" whenever lips move
under a voice, also for a late or another person's voice, so it tells *which face* speaks, not whether the sound
is in sync.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ... import audio as audio_mod
from ... import media
from ...heap import reusing_freed_blocks
from ...in_flight import InFlight
from ...progress import CancelToken, ProgressFn, check, report
from ...streams import prefetch
from . import features as AF

log = logging.getLogger(__name__)
_IN_FLIGHT = InFlight()          # the clips whose speaking faces are being scored (cached_speaking_scores)

SPEAKER_VERSION = 1
ASD_FPS = AF.FPS          # the network's frame rate
CHUNK = 50                # crops per visual-encoder pass (2 s): activations and time per frame grow with the pass's
                          # length (cache): per frame with the overlap 9.8 ms at 250, 9.2 at 100, 7.6 at 50 on 2 cores
CONTEXT = AF.VISUAL_REACH  # crops of overlap on each side of a chunk: the visual encoder's temporal reach
GAP_BRIDGE = 6            # 25 fps frames: a face lost for at most this long (same shot) keeps its segment
VOICED_CONTEXT = 12       # 25 fps frames of picture kept around voiced stretches when only those are scored
SPEAKING_PROB = 0.5       # a shot's face speaks when its mean P(speaking) over voiced frames reaches this ...
SPEAKER_MARGIN = 0.1      # ... and beats every other face of the shot by this much
SYNC_MARGIN = 0.3         # else, among faces that all talk, the one whose lips follow the sound best (the sync
                          # lane's calibrated confidence at offset 0, core.sync.lane units) by at least this much
MIN_VOICED_FRAMES = 5     # voiced frames with the face tracked a shot needs before anyone is said to speak there
OWN_TEST_SECONDS = 5.0    # the own-voice test reads at most this much voiced picture (the first voiced stretches:
                          # only the start of the clip is decoded)


# ============================================================================================ results
@dataclass
class ShotSpeaker:
    """Who speaks in output frames [start, stop) (one shot)."""
    start: int
    stop: int
    track_id: Optional[int]            # the speaking face; None when nobody speaks (or nobody could be judged)
    mean: float = float("nan")         # its mean P(speaking) over the shot's voiced frames where it is tracked
    margin: float = float("nan")       # its mean minus the next face's (its mean when it is the only face)
    means: Dict[int, float] = field(default_factory=dict)   # every judged face's mean
    voiced: int = 0                    # voiced frames in the shot
    by: str = ""                       # "asd": the only face that talks; "sync": of the faces that talk, the one
                                       # whose lips follow the sound; "": nobody was found to speak
    tied: List[int] = field(default_factory=list)   # faces that all talk, which the network cannot tell apart
    sync: Dict[int, float] = field(default_factory=dict)    # their mean sync confidence, when compared

    def to_json(self) -> dict:
        def num(x):
            return None if x is None or not math.isfinite(float(x)) else round(float(x), 4)

        return {"start": self.start, "stop": self.stop, "track_id": self.track_id, "mean": num(self.mean),
                "margin": num(self.margin), "means": {str(k): num(v) for k, v in self.means.items()},
                "voiced": self.voiced, "by": self.by, "tied": list(self.tied),
                "sync": {str(k): num(v) for k, v in self.sync.items()}}


@dataclass
class SpeakingScores:
    """P(speaking) per face track and video frame (NaN where the face is absent or was not scored)."""
    fps: float
    num_frames: int
    prob: Dict[int, np.ndarray]        # track id -> (num_frames,) float32
    scored: int = 0                    # 25 fps crops the network read
    seconds: float = 0.0
    cache: str = "miss"

    def of(self, track_id: int) -> np.ndarray:
        p = self.prob.get(int(track_id))
        return np.full(self.num_frames, np.nan, np.float32) if p is None else p

    def save(self, path) -> None:
        from ...atomic import atomic_write

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"fps": self.fps, "num_frames": self.num_frames, "ids": sorted(self.prob), "scored": self.scored,
                "seconds": self.seconds, "version": SPEAKER_VERSION}
        arrays = {f"t{k}": v.astype(np.float32) for k, v in self.prob.items()}
        with atomic_write(path, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path) -> "SpeakingScores":
        with np.load(str(path), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("version") != SPEAKER_VERSION:
                raise ValueError("another version")
            prob = {int(k): z[f"t{k}"] for k in meta["ids"]}
        return cls(float(meta["fps"]), int(meta["num_frames"]), prob, int(meta["scored"]), float(meta["seconds"]),
                   cache="hit")


# ============================================================================================ frames and segments
def _tracks_of(tracks) -> list:
    return list(getattr(tracks, "tracks", tracks))


def asd_grid(num_frames: int, fps: float) -> np.ndarray:
    """Video frame of each 25 fps network frame (nearest in time, as core.sync.scoring.resample_indices)."""
    from ..scoring import resample_indices

    return resample_indices(int(num_frames), float(fps), ASD_FPS)


def _video_to_grid(num_frames: int, fps: float, k_total: int) -> np.ndarray:
    """25 fps frame nearest in time to each video frame."""
    if abs(fps - ASD_FPS) < 1e-3:
        k = np.arange(num_frames)
    else:
        k = np.floor(np.arange(num_frames) * ASD_FPS / fps + 0.5).astype(np.int64)
    return np.clip(k, 0, max(0, k_total - 1))


def shot_bounds(num_frames: int, cuts: Sequence[int] = ()) -> List[tuple]:
    """[start, stop) video frames of each shot (cuts are the frames that start a shot)."""
    edges = sorted({0, *[int(c) for c in cuts if 0 < int(c) < num_frames], int(num_frames)})
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def _runs(mask: np.ndarray) -> List[tuple]:
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[::2].tolist(), d[1::2].tolist()))


def track_segments(present: np.ndarray, wanted: np.ndarray, shot_of: np.ndarray, gap: int = GAP_BRIDGE) -> List[tuple]:
    """[start, stop) 25 fps runs where the face is present and wanted, gaps of at most `gap` frames inside one shot
    bridged, split where the shot changes."""
    ok = np.asarray(present, bool) & np.asarray(wanted, bool)
    n = len(ok)
    runs = _runs(ok)
    merged: List[list] = []
    for a, b in runs:
        if merged and a - merged[-1][1] <= gap and shot_of[a] == shot_of[merged[-1][1] - 1]:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    out = []
    for a, b in merged:
        s = shot_of[a:b]
        splits = [a] + (a + np.flatnonzero(np.diff(s)) + 1).tolist() + [b]
        out += [(x, y) for x, y in zip(splits, splits[1:]) if y > x]
    return [(int(a), int(b)) for a, b in out if 0 <= a < b <= n]


def grow(mask: np.ndarray, context: int = VOICED_CONTEXT, fps: float = ASD_FPS) -> np.ndarray:
    """`mask` with `context` 25 fps frames (in video frames at `fps`) added before and after each run."""
    mask = np.asarray(mask, bool)
    n = len(mask)
    ctx = int(round(context * fps / ASD_FPS))
    grown = mask.copy()
    for a, b in _runs(mask):
        grown[max(0, a - ctx):min(n, b + ctx)] = True
    return grown


def limit_frames(mask: np.ndarray, max_frames: int, spread: bool = True) -> np.ndarray:
    """At most `max_frames` of `mask`'s frames: whole runs spread evenly over the clip (`spread`), else the first
    runs (the last one cut short)."""
    mask = np.asarray(mask, bool)
    total = int(mask.sum())
    if total <= max_frames:
        return mask
    out = np.zeros_like(mask)
    kept = seen = 0
    for a, b in _runs(mask):
        seen += b - a
        budget = int(round(max_frames * seen / total)) if spread else max_frames
        room = min(b - a, budget - kept)
        if room >= min(b - a, MIN_VOICED_FRAMES):
            out[a:a + room] = True
            kept += room
    return out


def needed_frames(tracks, voiced: np.ndarray, cuts: Sequence[int] = (), *, all_shots: bool = False,
                  context: int = VOICED_CONTEXT, fps: float = ASD_FPS, track_ids=None) -> np.ndarray:
    """(N,) bool video frames worth scoring to know who speaks: the voiced frames (with `context` 25 fps frames of
    picture around them, converted to video frames) of the shots where more than one face is tracked (all shots
    when `all_shots`)."""
    voiced = np.asarray(voiced, bool)
    n = len(voiced)
    grown = grow(voiced, context, fps)
    ts = [t for t in _tracks_of(tracks) if track_ids is None or t.track_id in set(track_ids)]
    out = np.zeros(n, bool)
    for a, b in shot_bounds(n, cuts):
        faces = sum(1 for t in ts if np.asarray(t.present[a:b], bool).any())
        if faces >= (1 if all_shots else 2):
            out[a:b] = grown[a:b]
    return out


# ============================================================================================ the network
def _visual(model, crops: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return model.visual(torch.from_numpy(np.ascontiguousarray(crops))[None])[0].float().numpy()


def _speaking_prob(model, visual_emb: np.ndarray, mfcc: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        a = model.audio(torch.from_numpy(np.ascontiguousarray(mfcc))[None])
        v = torch.from_numpy(visual_emb)[None]
        t = min(a.shape[1], v.shape[1])
        logit = model.speaking_logit(a[:, :t], v[:, :t])[0]
        return torch.sigmoid(logit).numpy().astype(np.float32)


class _Segment:
    """One track segment [start, stop) of 25 fps frames: crops arrive in order, the visual encoder runs over chunks
    of CHUNK with CONTEXT frames of overlap (exactly the whole-segment result)."""

    def __init__(self, start: int, stop: int):
        self.start, self.stop = start, stop
        self.buf: List[np.ndarray] = []
        self.buf_start = start           # 25 fps frame of buf[0]
        self.next = start                # first frame without an embedding
        self.emb: List[np.ndarray] = []

    def add(self, crop: np.ndarray, model) -> None:
        self.buf.append(crop)
        end = self.buf_start + len(self.buf)
        if end == self.stop:
            self._encode(model, self.stop)
        elif end - self.next >= CHUNK + CONTEXT:
            self._encode(model, self.next + CHUNK)

    def _encode(self, model, upto: int) -> None:
        lo = max(self.start, self.next - CONTEXT)
        hi = min(self.stop, upto + CONTEXT)
        crops = np.stack(self.buf[lo - self.buf_start:hi - self.buf_start])
        emb = _visual(model, crops)
        self.emb.append(emb[self.next - lo:upto - lo])
        self.next = upto
        keep = max(self.start, self.next - CONTEXT)
        del self.buf[:keep - self.buf_start]
        self.buf_start = keep

    @property
    def done(self) -> bool:
        return self.next >= self.stop

    def embedding(self) -> np.ndarray:
        return np.concatenate(self.emb, 0)


def speaking_scores(video_path, tracks, wav: np.ndarray, *, fps: Optional[float] = None, info=None,
                    frames: Optional[np.ndarray] = None, track_ids=None, cuts: Optional[Sequence[int]] = None,
                    model=None, device: str = "cpu", progress: Optional[ProgressFn] = None,
                    cancel: Optional[CancelToken] = None) -> SpeakingScores:
    """P(speaking) per face track and video frame of `video_path` with the sound `wav` (16 kHz mono; the clip's own
    sound to know who speaks it). `tracks`: a TrackSet (its `cuts` split the segments) or FaceTracks; `track_ids`:
    only these; `frames` (N,) bool: only these video frames (NaN elsewhere); `cuts`: shot starts (default: the
    TrackSet's). Progress stage "speaker"."""
    import time

    from ..scoring import fill_track

    t0 = time.perf_counter()
    ts = [t for t in _tracks_of(tracks) if track_ids is None or t.track_id in {int(i) for i in track_ids}]
    if info is None and fps is None:
        info = media.probe(str(video_path))
    fps = float(fps if fps is not None else info.fps)
    n = int(getattr(tracks, "num_frames", 0) or (len(ts[0].present) if ts else 0))
    cuts = list(getattr(tracks, "cuts", []) if cuts is None else cuts)
    src = asd_grid(n, fps)
    k_total = len(src)
    shot_of_video = np.zeros(n, np.int64)
    for j, (a, b) in enumerate(shot_bounds(n, cuts)):
        shot_of_video[a:b] = j
    shot_of = shot_of_video[src] if k_total else np.zeros(0, np.int64)
    wanted = np.ones(k_total, bool) if frames is None else np.asarray(frames, bool)[src]

    plans = []          # (track, filled landmarks, filled boxes, segments)
    for t in ts:
        present = np.asarray(t.present, bool)
        if not present.any():
            continue
        segs = track_segments(present[src], wanted, shot_of)
        if not segs:
            continue
        boxes, lms, _ = fill_track(t.boxes, t.landmarks, present)
        plans.append((t, boxes, lms, segs))
    out = {int(t.track_id): np.full(n, np.nan, np.float32) for t in ts}
    total = sum(b - a for *_, segs in plans for a, b in segs)
    result = SpeakingScores(fps, n, out, scored=total)
    if total == 0:
        return result

    model = model if model is not None else _load_model(device)
    # audio: the whole sound's MFCCs, padded with silence to the picture's length (4 rows per 25 fps frame)
    wav = np.asarray(wav, np.float32).reshape(-1)
    need = int(math.ceil((k_total + 1) * audio_mod.SAMPLE_RATE / ASD_FPS))
    mfcc = AF.mfcc(AF.pad_voice(wav, 0, need - len(wav)))
    probs25: Dict[int, np.ndarray] = {int(t.track_id): np.full(k_total, np.nan, np.float32) for t, *_ in plans}

    # which (plan, segment) wants each video frame
    wants: Dict[int, list] = {}
    for p, (t, boxes, lms, segs) in enumerate(plans):
        for s, (a, b) in enumerate(segs):
            for k in range(a, b):
                wants.setdefault(int(src[k]), []).append((p, s, k))
    live: Dict[tuple, _Segment] = {}
    first, last = min(wants), max(wants)
    done = 0
    report(progress, "speaker", 0, total)
    frames_it = prefetch(media.iter_frames(str(video_path), info, start=first, stop=last + 1,
                                           backend="auto"))
    with reusing_freed_blocks():      # the encoder's large transients reused, not faulted in again (core.heap)
        try:
            for i, frame in enumerate(frames_it, start=first):
                if i > last:
                    break
                jobs = wants.get(i)
                if not jobs:
                    continue
                check(cancel)
                crops: dict = {}
                for p, s, k in jobs:
                    t, boxes, lms, segs = plans[p]
                    if p not in crops:
                        crops[p] = AF.face_crop(frame, lms[i], boxes[i])
                    seg = live.get((p, s))
                    if seg is None:
                        seg = live[(p, s)] = _Segment(*segs[s])
                    seg.add(crops[p], model)
                    done += 1
                    if seg.done:
                        a, b = seg.start, seg.stop
                        probs25[int(t.track_id)][a:b] = _speaking_prob(model, seg.embedding(),
                                                                       mfcc[AF.MFCC_PER_FRAME * a:AF.MFCC_PER_FRAME * b])
                        del live[(p, s)]
                report(progress, "speaker", done, total)
        finally:
            close = getattr(frames_it, "close", None)
            if close is not None:
                close()
    check(cancel)
    if live:
        log.warning("%s: the video ended before %d face segment(s) were complete", video_path, len(live))
    # back to video frames: the nearest 25 fps frame, only where the face is tracked
    k_of_f = _video_to_grid(n, fps, k_total)
    for t, *_ in plans:
        p = probs25[int(t.track_id)][k_of_f]
        p[~np.asarray(t.present, bool)[:n]] = np.nan
        if frames is not None:
            p[~np.asarray(frames, bool)[:n]] = np.nan
        out[int(t.track_id)] = p.astype(np.float32)
    result.seconds = time.perf_counter() - t0
    report(progress, "speaker", total, total)
    return result


def _load_model(device: str = "cpu"):
    from .weights import load_asd

    return load_asd(device)


# ============================================================================================ who speaks
def who_speaks(scores: SpeakingScores, voiced: np.ndarray, cuts: Sequence[int] = (), *,
               track_ids=None, sync: Optional[Dict[int, np.ndarray]] = None) -> List[ShotSpeaker]:
    """Per shot: the face with the highest mean P(speaking) over the shot's voiced frames where it is tracked and
    scored; it speaks when that mean reaches SPEAKING_PROB and beats the next face by SPEAKER_MARGIN. When several
    faces talk (all above SPEAKING_PROB, closer than SPEAKER_MARGIN: the network says "speaking" for any face whose
    lips move under a voice), they are `tied`; with `sync` (track id -> per-frame sync lane confidence of this sound
    on that face, `sync_evidence`) the tied face with the highest mean over the voiced frames speaks when it beats
    the others by SYNC_MARGIN."""
    n = scores.num_frames
    voiced = np.zeros(n, bool) if voiced is None else np.asarray(voiced, bool)[:n]
    if len(voiced) < n:
        voiced = np.concatenate([voiced, np.zeros(n - len(voiced), bool)])
    ids = sorted(scores.prob) if track_ids is None else [int(i) for i in track_ids]
    shots = []
    for a, b in shot_bounds(n, cuts):
        v = voiced[a:b]
        means = {}
        for tid in ids:
            p = scores.of(tid)[a:b]
            ok = v & np.isfinite(p)
            if ok.sum() >= MIN_VOICED_FRAMES:
                means[tid] = float(np.mean(p[ok]))
        shot = ShotSpeaker(a, b, None, means=means, voiced=int(v.sum()))
        if means:
            order = sorted(means, key=lambda k: (-means[k], k))
            best = order[0]
            second = means[order[1]] if len(order) > 1 else 0.0
            shot.mean, shot.margin = means[best], means[best] - second
            if shot.mean >= SPEAKING_PROB and shot.margin >= SPEAKER_MARGIN:
                shot.track_id, shot.by = best, "asd"
            elif shot.mean >= SPEAKING_PROB:
                shot.tied = [k for k in order if means[k] >= SPEAKING_PROB and means[best] - means[k] < SPEAKER_MARGIN]
                if sync is not None:
                    _break_tie(shot, sync, v)
        shots.append(shot)
    return shots


def _break_tie(shot: ShotSpeaker, sync: Dict[int, np.ndarray], voiced: np.ndarray) -> None:
    a, b = shot.start, shot.stop
    for tid in shot.tied:
        y = sync.get(tid)
        if y is None:
            continue
        y = np.asarray(y, np.float64)[a:b]
        ok = voiced[:len(y)] & np.isfinite(y)
        if ok.sum() >= MIN_VOICED_FRAMES:
            shot.sync[tid] = float(y[ok].mean())
    if len(shot.sync) >= 2:
        order = sorted(shot.sync, key=lambda k: (-shot.sync[k], k))
        if shot.sync[order[0]] - shot.sync[order[1]] >= SYNC_MARGIN:
            shot.track_id, shot.by = order[0], "sync"
            shot.mean = shot.means[order[0]]


def sync_evidence(video, info, tracks, wav: np.ndarray, scorer, track_ids: Sequence[int], *,
                  progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> Dict[int, np.ndarray]:
    """Track id -> the sync lane's per-frame confidence of `wav` on that face at offset 0 (core.sync.scoring;
    NaN where the face was not judged): which of several talking faces the sound follows."""
    from ..scoring import score_clip

    by_id = {t.track_id: t for t in _tracks_of(tracks)}
    out = {}
    for tid in track_ids:
        rep = score_clip(str(video), wav, by_id[int(tid)], scorer, fps=float(info.fps), progress=progress,
                         cancel=cancel)
        y = np.asarray(rep.per_frame, np.float64).copy()
        if rep.valid is not None:
            y[~np.asarray(rep.valid, bool)] = np.nan
        out[int(tid)] = y
    return out


def speaker_at(shots: Sequence[ShotSpeaker], frame: int) -> Optional[ShotSpeaker]:
    for s in shots:
        if s.start <= frame < s.stop:
            return s
    return None


def speaking_track(track_set, shots: Sequence[ShotSpeaker], fallback=None):
    """One FaceTrack that follows the speaking face shot by shot (`fallback`, default the primary face, where
    nobody speaks). Its id is the fallback's when every shot keeps it, else the id of the face it shows most."""
    from ...faces.track import FaceTrack

    fallback = fallback if fallback is not None else track_set.primary()
    chosen = {}
    for s in shots:
        tid = s.track_id if s.track_id is not None else fallback.track_id
        chosen[(s.start, s.stop)] = tid
    if all(tid == fallback.track_id for tid in chosen.values()):
        return fallback
    boxes = np.array(fallback.boxes, np.float32, copy=True)
    lms = np.array(fallback.landmarks, np.float32, copy=True)
    present = np.array(fallback.present, bool, copy=True)
    raw = None if fallback.raw_landmarks is None else np.array(fallback.raw_landmarks, np.float32, copy=True)
    shown: Dict[int, int] = {}
    for (a, b), tid in chosen.items():
        t = track_set.get(tid)
        boxes[a:b], lms[a:b], present[a:b] = t.boxes[a:b], t.landmarks[a:b], t.present[a:b]
        if raw is not None:
            raw[a:b] = t.raw_landmarks[a:b] if t.raw_landmarks is not None else t.landmarks[a:b]
        shown[tid] = shown.get(tid, 0) + int(np.count_nonzero(t.present[a:b]))
    main = max(shown, key=lambda k: (shown[k], -k))
    return FaceTrack(track_id=int(main), boxes=boxes, landmarks=lms, present=present, raw_landmarks=raw)


def own_speaking(video, info, track, wav: np.ndarray, *, cuts: Sequence[int] = (), cache_dir=None,
                 use_cache: bool = True, model=None, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelToken] = None) -> float:
    """The adaptation's own-voice test (core.sync.lane_adapt): the face's mean P(speaking) with the clip's own sound
    `wav` over its voiced frames (the first OWN_TEST_SECONDS of them). NaN when there are too few
    voiced frames with the face, or when the network cannot be used (logged; the scorer's test applies then)."""
    from ...errors import CancelledError, ModelError

    fps = float(info.fps)
    present = np.asarray(track.present, bool)
    n = len(present)
    voiced = audio_mod.voice_activity(wav, fps, n) & present
    if voiced.sum() < MIN_VOICED_FRAMES:
        return float("nan")
    frames = limit_frames(grow(voiced, fps=fps), int(round(OWN_TEST_SECONDS * fps)), spread=False)
    try:
        sc = cached_speaking_scores(video, [track], wav, frames=frames, info=info, cuts=list(cuts),
                                    cache_dir=cache_dir, use_cache=use_cache, model=model, progress=progress,
                                    cancel=cancel)
    except CancelledError:
        raise
    except (ModelError, OSError, RuntimeError) as exc:
        log.warning("own-voice test: the active-speaker network could not run (%s)", exc)
        return float("nan")
    mean, k = own_voice_speaking(sc.of(track.track_id), voiced)
    return mean if k >= MIN_VOICED_FRAMES else float("nan")


def own_voice_speaking(prob: np.ndarray, voiced: np.ndarray) -> tuple:
    """(mean P(speaking) over the voiced frames where the face was scored, how many such frames)."""
    p = np.asarray(prob, np.float64)
    v = np.asarray(voiced, bool)[:len(p)]
    ok = v & np.isfinite(p[:len(v)])
    if not ok.any():
        return float("nan"), 0
    return float(p[:len(v)][ok].mean()), int(ok.sum())


# ============================================================================================ cache
def cache_settings(tracks, wav: np.ndarray, frames: Optional[np.ndarray], track_ids=None, cuts=None) -> dict:
    """What speaking scores depend on besides the clip: the faces (their landmarks), the sound, the frames asked
    for, the network file and this module's version."""
    from ...models.registry import get_spec

    h = hashlib.sha256()
    for t in _tracks_of(tracks):
        if track_ids is None or t.track_id in set(track_ids):
            h.update(str(t.track_id).encode())
            h.update(np.nan_to_num(np.asarray(t.landmarks, np.float32)).tobytes())
            h.update(np.asarray(t.present, bool).tobytes())
    cuts = getattr(tracks, "cuts", []) if cuts is None else cuts
    h.update(b"cuts" + np.asarray(cuts, np.int64).tobytes())
    spec = get_spec("light_asd")
    return {"kind": "speaker", "version": SPEAKER_VERSION, "tracks": h.hexdigest()[:16],
            "wav": hashlib.sha256(np.asarray(wav, np.float32).tobytes()).hexdigest()[:16],
            "frames": None if frames is None else hashlib.sha256(np.asarray(frames, bool).tobytes()).hexdigest()[:16],
            "model": getattr(spec, "sha256", None) or "light_asd"}


def cached_speaking_scores(video_path, tracks, wav: np.ndarray, *, cache_dir=None, use_cache: bool = True,
                           frames: Optional[np.ndarray] = None, track_ids=None, cuts=None,
                           **kw) -> SpeakingScores:
    """`speaking_scores`, cached per clip (content identity + faces + sound + frames + model) under
    `$LIPDUB_CACHE_DIR/speaker` (or the user cache folder) like the tracks and the adaptation."""
    from ...faces import cache as cache_mod

    cfile = None
    if use_cache:
        try:
            cfile = cache_mod.cache_file(video_path, cache_settings(tracks, wav, frames, track_ids, cuts), cache_dir,
                                         kind="speaker")
        except (OSError, ValueError, KeyError) as exc:
            log.warning("speaker cache: %s", exc)

    def compute() -> SpeakingScores:
        return speaking_scores(video_path, tracks, wav, frames=frames, track_ids=track_ids, cuts=cuts, **kw)

    if cfile is None:
        return compute()

    def load() -> Optional[SpeakingScores]:
        try:
            return SpeakingScores.load(cfile) if cfile.is_file() else None
        except (OSError, ValueError, KeyError) as exc:
            log.warning("speaker cache: %s", exc)
            return None

    def compute_and_store() -> SpeakingScores:
        result = compute()
        try:
            result.save(cfile)
        except OSError as exc:
            log.warning("speaker cache: could not write %s: %s", cfile, exc)
        return result

    # one pass per clip at a time in this process: a job asking while another computes it waits for its result
    return _IN_FLIGHT.once(str(cfile), load, compute_and_store, kw.get("cancel"))


# ============================================================================================ the default face
@dataclass
class FaceChoice:
    """The face to dub when the user chose none: shot by shot, the one that speaks the clip's own sound."""
    track: object                          # core.faces.track.FaceTrack (the primary one, or composed per shot)
    shots: List[ShotSpeaker] = field(default_factory=list)
    scores: Optional[SpeakingScores] = None
    message: str = ""
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """Does any shot dub another face than the main one?"""
        return any(s.track_id is not None and s.track_id != self.fallback_id for s in self.shots)

    fallback_id: int = -1


def default_face(video, info, track_set, wav: Optional[np.ndarray], *, scorer=None, cache_dir=None,
                 use_cache: bool = True, model=None, models_dir=None, device: str = "cpu",
                 progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelToken] = None) -> FaceChoice:
    """The face to dub by default: in each shot where more than one face is tracked, the one that speaks the clip's
    own sound `wav` (core.sync.lane_adapt.own_voice; None: the clip has none); elsewhere, and where nobody is found to speak, the main face
    (`TrackSet.primary`). `scorer`: the sync scorer that separates faces that all talk (loaded when needed)."""
    import time

    t0 = time.perf_counter()
    primary = track_set.primary()
    choice = FaceChoice(track=primary, fallback_id=primary.track_id)
    if len(track_set.tracks) < 2:
        return choice
    fps = float(info.fps)
    n = int(track_set.num_frames)
    cuts = [int(c) for c in track_set.cuts]
    if wav is None:
        choice.message = "the clip has no sound of its own: the main face is dubbed"
        return choice
    voiced = audio_mod.voice_activity(wav, fps, n)
    frames = needed_frames(track_set, voiced, cuts, fps=fps)
    if not frames.any():
        return choice
    scores = cached_speaking_scores(video, track_set, wav, frames=frames, info=info, cuts=cuts, cache_dir=cache_dir,
                                    use_cache=use_cache, model=model, device=device, progress=progress,
                                    cancel=cancel)
    shots = who_speaks(scores, voiced, cuts)
    tied = sorted({tid for s in shots for tid in s.tied})
    if tied:
        if scorer is None:
            from ..scoring import get_scorer

            scorer = get_scorer("auto", models_dir=models_dir, device=device)
        sync = sync_evidence(video, info, track_set, wav, scorer, tied, cancel=cancel)
        shots = who_speaks(scores, voiced, cuts, sync=sync)
    choice.shots, choice.scores = shots, scores
    choice.track = speaking_track(track_set, shots, primary)
    spoken = [s for s in shots if s.track_id is not None]
    if spoken:
        ids = sorted({s.track_id for s in spoken})
        choice.message = (f"the face that speaks is dubbed ({'face ' if len(ids) == 1 else 'faces '}"
                          f"{', '.join(str(i) for i in ids)} in {len(spoken)} of {len(shots)} shot"
                          f"{'s' if len(shots) != 1 else ''})")
    choice.seconds = time.perf_counter() - t0
    return choice
