"""Dubbing driven by the voice performer's own video: the performer's mouth, retargeted to the on-screen actor.

Dubbing studios often film the voice performer in the booth. That performance is a better target than any mouth
predicted from sound: with real landmarks as targets the classic engine reproduces a mouth almost exactly
(FINDINGS.md). The performance, read once per dub (`read_performance`):
1. the performer's face is tracked (core.faces.track, main face) and its picture's A/V offset against the voice is
   found by the fused sync witnesses (core.sync.lane_adapt.find_own_offset: the scorer plus the audio->mouth model)
   on the first OFFSET_SECONDS;
2. each frame's mouth is put in canonical units (core.mouth_shape.normalize) as a displacement from the performer's
   neutral mouth, and its own slow expression is taken out (core.expression): only speech motion travels;
3. each frame is judged trustworthy or not (`trusted_frames`): a face the tracker lost, turned away or not fitting the
   frontal template, implausible mouth points (occlusion, tracker confusion), a blurred mouth.
`performance_on_output` lays it on the dub's output frames (the voice's time axis, offset corrected).
In the engine (`drive`), the motion is scaled to the actor's mouth (width ratio across, articulation ratio down, the
latter only as far as the footage behind it allows),
used where trusted and the sound-driven prediction elsewhere, cross-faded over CROSSFADE_S; core.expression then adds
the actor's own slow expression, and last each target point's step per frame is bounded by `max_step` (no pop).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import expression
from . import mouth_shape as ms
from .audio import SAMPLE_RATE
from .errors import MediaError, NoFaceError
from .faces import geometry as geo
from .progress import CancelToken, ProgressFn, check, report

log = logging.getLogger(__name__)

CROSSFADE_S = 0.2          # performer <-> sound-driven hand-over, each way (5 frames at 25 fps)
MAX_POINT_SPEED = 5.0      # IOD per second a target mouth point may move (0.2 per frame at 25 fps): real tracked
                           # GRID mouths (s1, s4, others) move at most 0.184 per frame in 999 frames of 1000
MAX_FIT_RESIDUAL = 0.09    # IOD: mean distance of the stable points from the frontal template after alignment;
                           # frontal faces 0.02-0.05, turned heads and tracker confusion well above
MAX_YAW_ASYMMETRY = 0.4    # |nose-to-jaw-side distances, left minus right, over their sum|: a turned head. GRID's
                           # slightly turned frontal faces reach 0.29 (s1, s4, others), a head turned ~45 deg ~0.6
MAX_SHAPE_Z = 8.0          # robust z of a frame's mouth width or position against the performer's own: beyond is an
                           # occluded or confused mouth (speech on held-out GRID s1 reaches 6)
MIN_SHARPNESS = 0.35       # mouth-region Laplacian variance, share of the performer's median: below is too blurred
MIN_TRUSTED_RUN_S = 0.2    # trusted stretches shorter than this between untrusted frames are not trusted either
OFFSET_SECONDS = 30.0      # the performer's A/V offset is found on their video's first this many seconds: one offset
                           # per recording, and a long take would otherwise cost a whole scoring pass
MIN_TRUSTED_SHARE = 0.2    # below this share of trusted frames the performer is not followed at all (message)
GAIN_RANGE = (0.5, 2.0)    # the articulation ratio actor/performer is kept within this
MIN_ARTICULATION = 0.03    # IOD: an actor whose own mouth opens less than this gives no articulation range
RANGE_EVIDENCE_S = 10.0    # seconds of open-mouth frames (each clip) from which its articulation range is trusted;
                           # with less, the ratio leans toward the width ratio (two 3 s sentences of one GRID speaker
                           # differ by up to 1.4x in their wide openings: the words, not the mouth)
OPEN_FRAME = 0.02          # IOD above neutral: a frame with the mouth open (speaking)


@dataclass
class Performance:
    """The performer's speech motion on their own video frames."""
    fps: float
    displacement: np.ndarray       # (N_d, K, 2) canonical displacement from the performer's neutral, slow part out
    trusted: np.ndarray            # (N_d,) bool
    neutral: np.ndarray            # (K, 2) the performer's neutral mouth
    articulation: float            # ARTICULATION_PERCENTILE of the opening above neutral (IOD)
    offset_frames: int             # A/V offset of the performer's picture against the voice (+: the voice leads)
    open_seconds: float = 0.0      # how much open-mouth footage `articulation` rests on
    own_confidence: float = float("nan")
    messages: list = field(default_factory=list)


@dataclass
class PerformerMotion:
    """The performance on the dub's output frames (what `core.engines.base.DubContext.performer` carries)."""
    displacement: np.ndarray       # (N_out, K, 2) the performer's canonical speech displacement (NaN: none)
    trusted: np.ndarray            # (N_out,) bool
    neutral: np.ndarray            # (K, 2) the performer's neutral mouth
    articulation: float
    offset_frames: int
    open_seconds: float = 0.0


# ------------------------------------------------------------------------------------------------ reading
def check_driver(driver: str, voice: str) -> None:
    """Refuse, before any work, a performer video without a picture, or one that is the voice but has no sound."""
    from pathlib import Path

    from . import media

    info = media.probe(driver)
    if not info.has_video:
        raise MediaError(f"The performer video has no picture: {driver}. Give a video of the voice performer.")
    if Path(voice).resolve() == Path(driver).resolve() and not info.has_audio:
        raise MediaError(f"The performer video has no sound, so there is no voice: {driver}. Give the voice with "
                         f"--audio.")


def motion_for_dub(driver: str, voice: np.ndarray, fps: float, num_out: int, voice_shift_frames: int = 0, *,
                   damage=None, scorer=None, models_dir=None, device: str = "cpu", track_cache_dir=None, detect_every: int = 5,
                   messages: Optional[list] = None, progress: Optional[ProgressFn] = None,
                   cancel: Optional[CancelToken] = None) -> PerformerMotion:
    """The performance of `driver` on a dub's `num_out` output frames at `fps` (`voice`: the voice as recorded, before
    the editor's `voice_shift_frames`). `damage`: the damage report of the driver's picture (core.media_damage):
    its damaged or missing frames are not followed (ffmpeg's concealment or a held picture is no performance).
    `scorer`: the sync scorer already loaded (else the default one). Lines for the user are appended to
    `messages`."""
    from .sync.scoring import get_scorer

    scorer = scorer or get_scorer("auto", models_dir=models_dir, device=device)
    perf = read_performance(driver, voice, scorer=scorer, offset_model=ms.AudioToMouth.load(),
                            track_cache_dir=track_cache_dir, detect_every=detect_every, progress=progress,
                            cancel=cancel)
    unfollowed = distrust_damaged(perf, damage)
    motion = performance_on_output(perf, num_out, fps, voice_shift_frames)
    if messages is not None:
        messages.append(f"Performer: the mouth follows {driver} on {motion.trusted.mean():.0%} of the frames "
                        f"(its A/V offset {perf.offset_frames:+d} frames corrected), the voice elsewhere")
        if unfollowed:
            messages.append(f"Performer: {unfollowed} damaged frame{'s' if unfollowed != 1 else ''} of {driver} "
                            f"{'are' if unfollowed != 1 else 'is'} not followed (the voice drives the mouth there)")
        messages.extend("Performer: " + m for m in perf.messages)
    return motion


def distrust_damaged(perf: Performance, damage) -> int:
    """Mark the performer's damaged or missing frames (a core.media_damage.DamageReport of its picture, or None)
    untrusted; how many trusted frames that took away."""
    if damage is None or not damage.damaged:
        return 0
    bad = damage.frame_mask(len(perf.trusted))
    taken = int(np.count_nonzero(perf.trusted & bad))
    perf.trusted &= ~bad
    return taken


def read_performance(driver: str, voice: np.ndarray, *, scorer, offset_model, track_cache_dir=None,
                     detect_every: int = 5, progress: Optional[ProgressFn] = None,
                     cancel: Optional[CancelToken] = None) -> Performance:
    """Track the performer's video, find its A/V offset against `voice` (16 kHz mono) and read its mouth motion."""
    from . import media
    from .faces.track import FaceTrack, track_video
    from .sync.lane_adapt import MAX_OWN_OFFSET, MIN_OWN_CONFIDENCE, find_own_offset

    info = media.probe(driver, need_video=True)
    if info.num_frames <= 0:
        raise MediaError(f"The performer video has no frames: {driver}")
    tracks = track_video(driver, progress=progress, cancel=cancel, cache_dir=track_cache_dir,
                         detect_every=detect_every)
    if not tracks.tracks:
        raise NoFaceError(f"No face was found anywhere in the performer video {driver}: there is no performance to "
                          f"follow. Dub from the voice alone (without --driver) or give a video of the performer's "
                          f"face.")
    track = tracks.primary()
    check(cancel)
    fps = float(info.fps)
    n = min(len(track.present), int(OFFSET_SECONDS * fps))
    head = FaceTrack(track_id=track.track_id, boxes=track.boxes[:n], landmarks=track.landmarks[:n],
                     present=track.present[:n])
    read = MouthSharpness(track.landmarks, track.present)     # during the offset pass's decode: one decode, not two
    offset, level, _ = find_own_offset(driver, voice[:int(round(n / fps * SAMPLE_RATE))], head, scorer, fps,
                                       progress=progress, cancel=cancel, offset_model=offset_model,
                                       on_frame=read.add)
    sharp = mouth_sharpness(driver, info, track.landmarks, track.present, progress, cancel, read=read)
    perf = performance_from_track(track.landmarks, track.present, fps, offset, sharpness=sharp)
    perf.own_confidence = float(level)
    if abs(offset) > MAX_OWN_OFFSET or not level >= MIN_OWN_CONFIDENCE:
        perf.messages.append(f"the performer's lips follow the voice only weakly (offset {offset:+d} frames, "
                             f"confidence {level:.1f}): check that the performer video and the voice belong together")
    return perf


def performance_from_track(landmarks: np.ndarray, present: np.ndarray, fps: float, offset_frames: int = 0,
                           sharpness: Optional[np.ndarray] = None) -> Performance:
    """The performance of a tracked face (N,68,2): canonical speech displacement, trust, neutral, articulation."""
    canon, tf = ms.normalize(np.asarray(landmarks, np.float32))
    ok = np.asarray(present, bool) & np.isfinite(canon).all(axis=(1, 2))
    if not ok.any():
        raise NoFaceError("The performer's face was never tracked: there is no performance to follow.")
    shape = np.asarray(canon[:, ms.SHAPE_POINTS], np.float64)
    trusted = trusted_frames(canon, ok, fps, sharpness)
    neutral = ms.clip_neutral(canon, trusted if trusted.sum() >= 3 else ok).astype(np.float64)
    disp = shape - neutral[None]
    disp[~ok] = np.nan
    slow = expression.slow_expression(disp, neutral, trusted, fps)
    disp = disp - np.einsum("nm,mkc->nkc", slow, expression.expression_modes(neutral))
    articulation, open_seconds = _articulation(shape[trusted if trusted.any() else ok], neutral, fps)
    messages = []
    if trusted.mean() < MIN_TRUSTED_SHARE:
        messages.append(f"the performer's face is usable on only {trusted.mean():.0%} of the frames (lost, turned "
                        f"away, occluded or blurred): the dub follows the voice there")
    return Performance(fps=float(fps), displacement=disp.astype(np.float32), trusted=trusted, neutral=neutral,
                       articulation=articulation, offset_frames=int(offset_frames), open_seconds=open_seconds,
                       messages=messages)


def _articulation(shape: np.ndarray, neutral: np.ndarray, fps: float) -> tuple:
    """(ARTICULATION_PERCENTILE of the opening above neutral, seconds of open-mouth frames it rests on)."""
    if len(shape) == 0:
        return 0.0, 0.0
    opening = ms.shape_opening(shape) - float(ms.shape_opening(neutral))
    return float(np.percentile(opening, ms.ARTICULATION_PERCENTILE)), float((opening > OPEN_FRAME).sum() / fps)


def _robust_z(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    med = np.median(x[ok])
    mad = max(float(np.median(np.abs(x[ok] - med))) * 1.4826, 1e-3)
    return np.abs(x - med) / mad


def trusted_frames(canon: np.ndarray, ok: np.ndarray, fps: float,
                   sharpness: Optional[np.ndarray] = None) -> np.ndarray:
    """(N,) bool: frames whose mouth can be trusted (see the module docstring)."""
    trusted = np.asarray(ok, bool).copy()
    if not trusted.any():
        return trusted
    c = np.where(trusted[:, None, None], canon, 0.0)
    residual = np.linalg.norm(c[:, geo.STABLE] - ms.TEMPLATE[geo.STABLE][None], axis=-1).mean(axis=1)
    trusted &= residual <= MAX_FIT_RESIDUAL
    trusted &= yaw_asymmetry(c) <= MAX_YAW_ASYMMETRY
    centre = c[:, geo.MOUTH].mean(axis=1)
    for measure in (geo.mouth_width(c), centre[:, 0], centre[:, 1]):     # (a wide-open mouth is no outlier)
        if trusted.any():
            trusted &= _robust_z(measure, trusted) <= MAX_SHAPE_Z
    if sharpness is not None and trusted.any():
        s = np.asarray(sharpness, np.float64)
        ref = float(np.median(s[trusted]))
        trusted &= np.isfinite(s) & (s >= MIN_SHARPNESS * ref)
    return _drop_short_runs(trusted, max(1, int(round(MIN_TRUSTED_RUN_S * fps))))


def yaw_asymmetry(canon: np.ndarray) -> np.ndarray:
    """(N,) how far the head is turned: the nose tip's distances to the two sides of the jaw, their difference over
    their sum (0 frontal, toward 1 in profile)."""
    c = np.asarray(canon, np.float64)
    left = np.abs(c[:, 30, 0] - c[:, 0:3, 0].mean(axis=1))
    right = np.abs(c[:, 14:17, 0].mean(axis=1) - c[:, 30, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(np.abs(left - right) / (left + right), nan=1.0)


def _drop_short_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    out = mask.copy()
    n = len(mask)
    i = 0
    while i < n:
        if mask[i]:
            j = i
            while j < n and mask[j]:
                j += 1
            if j - i < min_len and (i > 0 or j < n):
                out[i:j] = False
            i = j
        else:
            i += 1
    return out


class MouthSharpness:
    """Per-frame mouth sharpness, read from frames as they are decoded (`add`, in order from frame 0): the performer's
    A/V offset pass decodes the video anyway (core.sync.scoring.face_windows' `on_frame`), `mouth_sharpness` reads
    only the frames it did not reach."""

    def __init__(self, landmarks: np.ndarray, present: np.ndarray):
        self.landmarks, self.present = landmarks, np.asarray(present, bool)
        self.values = np.full(len(self.present), np.nan)
        self.done = 0                   # frames 0 .. done-1 were read

    def add(self, i: int, frame: np.ndarray) -> None:
        """Frame i's sharpness: the variance of the Laplacian of the grey mouth region (a box round the mouth points,
        a quarter IOD of margin, resized to a fixed size so faces of any size compare); NaN without a face."""
        import cv2

        if i != self.done:
            raise ValueError(f"mouth sharpness: frame {i} given after frame {self.done - 1}")
        self.done = i + 1
        if i >= len(self.present) or not (self.present[i] and np.isfinite(self.landmarks[i]).all()):
            return
        lm = self.landmarks[i]
        iod = float(geo.inter_ocular(lm))
        m = lm[geo.MOUTH]
        x0, y0 = np.floor(m.min(axis=0) - 0.25 * iod).astype(int)
        x1, y1 = np.ceil(m.max(axis=0) + 0.25 * iod).astype(int)
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 - x0 >= 8 and y1 - y0 >= 8:
            grey = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
            grey = cv2.resize(grey, (64, 40), interpolation=cv2.INTER_AREA)
            self.values[i] = float(cv2.Laplacian(grey, cv2.CV_64F).var())


def mouth_sharpness(video: str, info, landmarks: np.ndarray, present: np.ndarray,
                    progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
                    read: Optional[MouthSharpness] = None) -> np.ndarray:
    """(N,) `MouthSharpness` of each frame of `video`; `read`: the frames already read in another decode (only the
    rest is decoded here)."""
    from .media import iter_frames

    read = read or MouthSharpness(landmarks, present)
    n = len(read.present)
    # all read in the offset pass (a take within OFFSET_SECONDS): no decoder opened, it would decode to its seek point
    frames = iter_frames(video, info, start=read.done, stop=n, backend="auto") if read.done < n else ()
    for i, frame in enumerate(frames, start=read.done):
        if i >= n:
            break
        read.add(i, frame)
        if i % 32 == 0:
            report(progress, "performer", i, n)
            check(cancel)
    report(progress, "performer", n, n)
    return read.values


# ------------------------------------------------------------------------------------------- output frames
def performer_positions(out_frames, fps: float, voice_shift_frames: int, performer_fps: float,
                        offset_frames: int = 0) -> np.ndarray:
    """Where output frames fall in the performer's video, in its frames (float; frame centres at integers): output
    frame u carries the voice from (u - voice_shift) / fps, which the performer's picture shows at that time plus
    its A/V offset (`offset_frames`, the performer's frames; 0 = the file as recorded, as the window shows it)."""
    t = (np.asarray(out_frames, np.float64) + 0.5 - voice_shift_frames) / float(fps) + offset_frames / performer_fps
    return t * performer_fps - 0.5


def performance_on_output(perf: Performance, num_out: int, fps: float, voice_shift_frames: int = 0) -> PerformerMotion:
    """The performance at each output frame's time (`performer_positions`). Frames beyond the performer's video are
    not trusted."""
    n_d = len(perf.trusted)
    pos = performer_positions(np.arange(num_out), fps, voice_shift_frames, perf.fps, perf.offset_frames)
    inside = (pos >= -0.5) & (pos <= n_d - 0.5)
    p = np.clip(pos, 0, n_d - 1)
    i0 = np.floor(p).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_d - 1)
    f = (p - i0)[:, None, None]
    d = perf.displacement
    disp = d[i0] * (1 - f) + d[i1] * f
    trusted = inside & perf.trusted[i0] & perf.trusted[i1] & np.isfinite(disp).all(axis=(1, 2))
    return PerformerMotion(displacement=disp.astype(np.float32), trusted=trusted, neutral=perf.neutral,
                           articulation=perf.articulation, offset_frames=perf.offset_frames,
                           open_seconds=perf.open_seconds)


# ------------------------------------------------------------------------------------------------ driving
def retarget_gains(motion: PerformerMotion, actor_neutral: np.ndarray, actor_shape: np.ndarray,
                   fps: float) -> tuple:
    """(across, down) scale of the performer's displacement for the actor: across, the ratio of the neutral mouths'
    widths; down, the ratio of their articulation (ARTICULATION_PERCENTILE of the opening above neutral), leaning
    toward the width ratio (geometrically) as the open-mouth footage behind either range falls short of
    RANGE_EVIDENCE_S; both within GAIN_RANGE."""
    across = float(_width(actor_neutral) / max(_width(motion.neutral), 1e-6))
    actor_art, actor_open = _articulation(np.asarray(actor_shape, np.float64), np.asarray(actor_neutral, np.float64),
                                          fps)
    down = across
    if actor_art >= MIN_ARTICULATION and motion.articulation >= MIN_ARTICULATION:
        trust = min(1.0, min(actor_open, motion.open_seconds) / RANGE_EVIDENCE_S)
        down = float(np.exp(trust * np.log(actor_art / motion.articulation) + (1.0 - trust) * np.log(across)))
    return tuple(float(np.clip(g, *GAIN_RANGE)) for g in (across, down))


def _width(neutral: np.ndarray) -> float:
    n = np.asarray(neutral, np.float64)
    return float(np.linalg.norm(n[ms.shape_row(54)] - n[ms.shape_row(48)]))


def crossfade_weights(trusted: np.ndarray, fps: float) -> np.ndarray:
    """(N,) in [0, 1]: 1 on trusted frames at least CROSSFADE_S from any untrusted one, 0 on untrusted frames,
    linear in between (the hand-over happens on the trusted side, never showing an untrusted mouth)."""
    t = np.asarray(trusted, bool)
    n = len(t)
    bad = np.flatnonzero(~t)
    if len(bad) == 0:
        return np.ones(n, np.float32)
    ramp = max(1, int(round(CROSSFADE_S * fps)))
    pos = np.arange(n)
    j = np.searchsorted(bad, pos)
    before = np.where(j > 0, pos - bad[np.clip(j - 1, 0, len(bad) - 1)], np.inf)
    after = np.where(j < len(bad), bad[np.clip(j, 0, len(bad) - 1)] - pos, np.inf)
    return np.clip(np.minimum(before, after) / float(ramp + 1), 0.0, 1.0).astype(np.float32)


def max_step(fps: float) -> float:
    """The most a target mouth point may move between two output frames (IOD units)."""
    return MAX_POINT_SPEED / float(fps)


def limit_steps(displacement: np.ndarray, bound: float) -> np.ndarray:
    """The sequence with each point's move from one frame to the next shortened to at most `bound` (IOD)."""
    d = np.array(displacement, np.float64, copy=True)
    for i in range(1, len(d)):
        step = d[i] - d[i - 1]
        length = np.linalg.norm(step, axis=-1, keepdims=True)
        too_far = length > bound
        if too_far.any():
            d[i] = d[i - 1] + np.where(too_far, step * (bound / np.maximum(length, 1e-12)), step)
    return d.astype(np.float32)


def drive(sound: np.ndarray, motion: PerformerMotion, actor_neutral: np.ndarray, actor_shape: np.ndarray,
          fps: float) -> tuple:
    """(displacement (N,K,2) from the actor's neutral, gains): the performer's motion scaled to the actor where it is
    trusted, the sound-driven `sound` displacement elsewhere, cross-faded. The caller bounds the steps (`limit_steps`)
    once everything else is added."""
    across, down = retarget_gains(motion, actor_neutral, actor_shape, fps)
    perf = np.nan_to_num(np.asarray(motion.displacement, np.float64)) * np.array([across, down])
    w = crossfade_weights(motion.trusted, fps)[:, None, None]
    mixed = w * perf + (1.0 - w) * np.asarray(sound, np.float64)
    return mixed.astype(np.float32), (across, down)
