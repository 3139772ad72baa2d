"""Per-clip adaptation: learn the actor on screen from the clip's own, in-sync voice.

The clip being dubbed usually carries its own voice: a free training pair for exactly this face, this voice and
this recording. Before dubbing, `adapt_clip`:

1. finds the clip's own A/V offset with the sync scorer (real footage is often 1-3 frames off) and aligns the
   voice to the picture by it;
2. refits the mouth model's output layer (`core.mouth_shape.MouthHead`) on the clip's tracked mouth: ridge
   regression from the network's last hidden layer to this speaker's own mouth shapes, pulled towards the shipped
   layer (`RIDGE` per frame). This rescales and re-mixes the mouth components to the actor's articulation (a
   speaker who opens wide gets wide openings, not the training speakers' average);
3. records how well the adapted model explains the clip (in-clip r of the inner-lip opening, before and after).
Steps 2 and 3, and the sync lane's refit, learn from the clip's first 3 minutes at most (the span the offset's mouth
witness reads, `core.sync.av_offset.WITNESS_SECONDS`): the own voice's scoring pass still covers the whole clip.

The sync lane learns from the same pair: the confidence this face reaches with its own voice sets the clip's
low threshold (`core.sync.lane.clip_threshold`), since an unfamiliar face gives weaker evidence even in sync.
Step 1 and that threshold are the lane adaptation (`core.sync.lane_adapt`); this module is the mouth-model refit.

Results are cached per clip (content identity + face + model and scorer versions + `ADAPT_VERSION`) under
`$LIPDUB_CACHE_DIR/adapt` or the user cache folder. A clip without its own sound, with too little tracked
speech, or whose own voice does not match its lips is not adapted: `adapt_clip` returns an `Adaptation` whose
`head` is None and whose `message` says why, and the dub goes on with the general model.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from . import audio as audio_mod
from .heap import release_free_memory
from .in_flight import InFlight
from .progress import CancelToken, ProgressFn, check, report
from .sync import av_offset
from .sync.lane_adapt import face_judgeable, face_threshold, lane_adaptation
from .sync.refine import refine_for_clip

log = logging.getLogger(__name__)
_IN_FLIGHT = InFlight()          # the clips being adapted to in this process (adapt_clip)

ADAPT_VERSION = 6
RIDGE = 8.0              # pull towards the shipped layer, per fitted frame (chosen by tools/eval_adapt.py)
SYNC_HEAD_PREFIX = "sync_head."   # cache arrays of the refit sync head
MIN_VOICED_FRAMES = 75   # at least 3 s of the actor's tracked speech (a single GRID sentence did not help, FINDINGS)


@dataclass
class Adaptation:
    head: Optional[object]                # core.mouth_shape.MouthHead fitted to this actor, or None (not adapted)
    own_offset: int = 0                   # the clip's own A/V offset, video frames (positive: audio leads)
    own_confidence: float = float("nan")  # median calibrated confidence of the own voice at that offset (voiced)
    own_speaking: float = float("nan")    # the face's mean P(speaking) with its own sound (core.sync.asd.speaker)
    frames_used: int = 0                  # voiced frames with a face the fit used
    fit_r_before: float = float("nan")    # in-clip opening r of the shipped model ...
    fit_r_after: float = float("nan")     # ... and of the adapted one (on the frames it was fitted on)
    amplitude_before: float = float("nan")  # std of predicted / real opening, shipped model
    amplitude_after: float = float("nan")
    seconds: float = 0.0
    message: str = ""
    cache: str = "miss"
    face: Optional[object] = None         # core.sync.scoring.FaceWindows the own voice was scored on (not cached)
    sync_head: Optional[dict] = None      # the lane scorer's video head refit on this face (core.sync.refine), arrays
    refined_confidence: float = float("nan")  # the own voice's level with that head, on windows it did not learn from

    @property
    def adapted(self) -> bool:
        return self.head is not None

    @property
    def lane_confidence(self) -> float:
        """The own voice's level under the lane's scorer: the refined head's when the scorer was refit."""
        return self.refined_confidence if np.isfinite(self.refined_confidence) else self.own_confidence

    @property
    def low_threshold(self) -> float:
        return face_threshold(self.own_offset, self.lane_confidence, self.own_speaking)

    @property
    def judgeable(self) -> bool:
        """Can the sync lane judge this face (core.sync.lane.judgeable)?"""
        return face_judgeable(self.own_offset, self.lane_confidence, self.own_speaking)

    def lane_scorer(self, scorer):
        """The scorer the sync lane judges this clip's dubs with: `scorer`, with its video head refit on this face
        when the clip had enough of the actor's own speech (core.sync.refine)."""
        return scorer if self.sync_head is None else scorer.with_video_head(self.sync_head)

    def to_json(self) -> dict:
        keys = ("own_offset", "own_confidence", "own_speaking", "frames_used", "fit_r_before", "fit_r_after",
                "amplitude_before", "amplitude_after", "refined_confidence", "seconds", "message", "cache")
        return {k: (None if isinstance(getattr(self, k), float) and not np.isfinite(getattr(self, k))
                    else getattr(self, k)) for k in keys} | {"adapted": self.adapted, "judgeable": self.judgeable,
                                                             "sync_refined": self.sync_head is not None}


def not_adapted(message: str, **kw) -> Adaptation:
    log.info("adaptation: %s", message)
    return Adaptation(head=None, message=message, **kw)


# --------------------------------------------------------------------------------------------- fitting
def fit_head(base, hidden: np.ndarray, targets: np.ndarray, ridge: float = RIDGE):
    """Ridge regression of `targets` (T, C) on `hidden` (T, H) with an intercept, pulled towards `base`
    (a MouthHead): minimises |[h 1] theta - y|^2 + ridge * T * |theta - theta_base|^2."""
    from .mouth_shape import MouthHead

    h = np.asarray(hidden, np.float64)
    y = np.asarray(targets, np.float64)
    t = len(h)
    a = np.concatenate([h, np.ones((t, 1))], axis=1)
    theta0 = np.concatenate([base.weight.T, base.bias[None]], axis=0)          # (H+1, C)
    lam = ridge * t
    theta = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ y + lam * theta0)
    return MouthHead(weight=theta[:-1].T.copy(), bias=theta[-1].copy())


def _pearson(a, b) -> float:
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 1e-12 else float("nan")


def adapt_mouth(model, wav: np.ndarray, fps: float, landmarks: np.ndarray, present: np.ndarray,
                voiced: Optional[np.ndarray] = None, ridge: float = RIDGE, phone_segments=None) -> Adaptation:
    """Fit `model`'s output layer to the clip whose tracked `landmarks` go with `wav` (already aligned).
    `voiced` (N,) marks the frames with speech (all frames when None); silent frames are fitted too (they teach
    the closed mouth) but at least MIN_VOICED_FRAMES voiced frames with a face are required. `phone_segments`:
    the aligned voice's phones when already decoded."""
    from . import mouth_shape as ms

    lm = np.asarray(landmarks, np.float32)
    n = len(lm)
    canon, _ = ms.normalize(lm)
    valid = np.asarray(present, bool)[:n] & np.isfinite(canon.reshape(n, -1)).all(axis=1)
    voiced = np.ones(n, bool) if voiced is None else np.asarray(voiced, bool)[:n]
    n_voiced = int((valid & voiced).sum())
    if n_voiced < MIN_VOICED_FRAMES:
        return not_adapted(f"only {n_voiced / fps:.1f} s of the actor's tracked speech (at least "
                           f"{MIN_VOICED_FRAMES / fps:.1f} s needed): dubbing with the general mouth model",
                           frames_used=n_voiced)
    neutral = ms.clip_neutral(canon, valid)
    disp = canon[:, ms.SHAPE_POINTS] - neutral[None]
    hidden = model.hidden(wav, fps, n, phone_segments)[valid]
    targets = model.to_coefficients(disp[valid])

    def opening(h):
        return ms.shape_opening(neutral[None] + model.from_coefficients(h.apply(hidden) * model.coef_scale))

    real = ms.shape_opening(canon[valid][:, ms.SHAPE_POINTS])
    sd = max(float(np.std(real)), 1e-9)
    fitted = fit_head(model.head, hidden, targets, ridge)
    # least squares shrinks what it cannot predict towards the mean (an under-articulated mouth), and more so on
    # sentences it was not fitted on: measure that shrinkage across the two halves of the clip (fit on one,
    # predict the other) and give the adapted mouth the actor's own range of opening back
    half = len(hidden) // 2
    shrink = []
    for fit_rows, test_rows in ((slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))):
        h = fit_head(model.head, hidden[fit_rows], targets[fit_rows], ridge)
        pred = opening(h)[test_rows]
        shrink.append(np.std(real[test_rows]) / max(float(np.std(pred)), 1e-9))
    gain = float(np.clip(np.mean(shrink), 1.0, ms.MAX_ARTICULATION_GAIN))
    head = fitted.scaled(gain, fitted.apply(hidden).mean(axis=0))
    before, after = opening(model.head), opening(head)
    return Adaptation(head=head, frames_used=int(valid.sum()), fit_r_before=_pearson(before, real),
                      fit_r_after=_pearson(after, real), amplitude_before=float(np.std(before)) / sd,
                      amplitude_after=float(np.std(after)) / sd,
                      message=f"adapted to this actor on {valid.sum() / fps:.1f} s of the clip's own voice")


# --------------------------------------------------------------------------------------------- the clip
def cache_settings(track, scorer_name: str, model_sha: str) -> dict:
    """What an adaptation depends on besides the clip itself: the face (its landmarks, after any box fixes),
    the models and this module's version."""
    import hashlib

    lm = np.nan_to_num(np.asarray(track.landmarks, np.float32)).tobytes()
    return {"kind": "adaptation", "version": ADAPT_VERSION, "track": int(getattr(track, "track_id", 0)),
            "landmarks": hashlib.sha256(lm).hexdigest()[:16], "mouth_model": model_sha, "scorer": scorer_name,
            "ridge": RIDGE, "min_voiced": MIN_VOICED_FRAMES, "learn_seconds": av_offset.WITNESS_SECONDS}


def adapt_clip(video: str, info, track, *, model=None, scorer=None, cache_dir=None,
               progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
               use_cache: bool = True, frames=None) -> Adaptation:
    """Adapt to the actor of `track` in `video` (see the module docstring). Never raises for a clip that cannot
    be adapted: the returned Adaptation says why (`message`) and carries no head. `frames`: see
    `lane_adaptation` (not told anything on a cache hit)."""
    from . import mouth_shape as ms
    from .faces import cache as cache_mod
    from .sync.scoring import get_scorer

    t0 = time.perf_counter()
    model = model or ms.AudioToMouth.load()
    model_sha = model.sha256 or str(model.source)
    scorer = scorer or get_scorer("auto")   # the sync lane's scorer
    settings = cache_settings(track, getattr(scorer, "name", "scorer"), model_sha)
    cfile = None
    if use_cache:
        try:
            cfile = cache_mod.cache_file(video, settings, cache_dir, kind="adapt")
        except OSError as exc:
            log.warning("adaptation cache: cannot identify %s: %s", video, exc)
    if cfile is None:
        return _adapt(video, info, track, model, scorer, progress, cancel, frames, t0)

    def load() -> Optional[Adaptation]:
        cached = load_adaptation(cfile)
        if cached is not None:
            cached.cache = "hit"
        return cached

    def adapt_and_store() -> Adaptation:
        result = _adapt(video, info, track, model, scorer, progress, cancel, frames, t0)
        store_adaptation(result, cfile)
        return result

    def waiting() -> None:
        report(progress, "adapt", 0, 2)
        if frames is not None:      # a reader of the scoring pass's frames (the texture library) decodes them itself
            frames.done()

    # one adaptation of a clip at a time in this process: a job asking while another adapts waits for its result
    return _IN_FLIGHT.once(str(cfile), load, adapt_and_store, cancel, on_wait=waiting)


def _adapt(video: str, info, track, model, scorer, progress, cancel, frames, t0: float) -> Adaptation:
    """`adapt_clip`'s work, past its cache."""
    def scoring_progress(stage: str, done: int, total: int) -> None:
        """Scoring the own voice is the first half of the "adapt" stage (its stage names belong to other jobs)."""
        if stage == "score":
            report(progress, "adapt", done, 2 * max(1, total))

    report(progress, "adapt", 0, 2)
    lane = lane_adaptation(video, info, track, scorer, cancel=cancel, offset_model=model, progress=scoring_progress,
                           frames=frames)
    report(progress, "adapt", 1, 2)
    release_free_memory()      # the scoring pass's transients, before the refits add theirs (long clips: ~0.3 GB)
    if not lane.own_voice_fits:
        result = not_adapted(lane.message + ": dubbing with the general mouth model", own_offset=lane.own_offset,
                             own_confidence=lane.own_confidence, own_speaking=lane.own_speaking)
    else:
        check(cancel)
        fps = float(info.fps)
        aligned = align_own_voice(lane.wav, lane.own_offset, fps)
        # the mouth is learnt from the span the offset's mouth witness read (its phones are decoded once)
        n = av_offset.witness_frames(len(track.present), fps)
        learnt = av_offset.witness_voice(aligned)
        voiced = audio_mod.voice_activity(learnt, fps, n)
        result = adapt_mouth(model, learnt, fps, track.landmarks[:n], track.present[:n], voiced,
                             phone_segments=aligned_phones(model, lane.wav, lane.own_offset, fps))
        result.own_offset, result.own_confidence = lane.own_offset, lane.own_confidence
        result.own_speaking = lane.own_speaking
        if result.adapted:
            result.message += f" (its own A/V offset: {lane.own_offset:+d} frames)"
        check(cancel)
        refit = refine_for_clip(scorer, lane.report, aligned)
        if refit is not None:
            refined, result.refined_confidence = refit
            result.sync_head = refined.video_head_state()
            lane.report.face = replace(lane.report.face, features=refined.project_video(lane.report.face.trunk))
            result.message += (f"; the sync lane refit on this face (confidence {result.refined_confidence:.1f} with "
                               f"its own voice)")
    report(progress, "adapt", 2, 2)
    release_free_memory()
    result.face = lane.report.face if lane.report is not None else None
    result.seconds = time.perf_counter() - t0
    return result


def align_own_voice(wav: np.ndarray, offset: int, fps: float) -> np.ndarray:
    """The own voice moved so it lines up with the picture: a positive offset (audio leads) delays it."""
    from .edits import shift_voice

    return shift_voice(wav, int(offset), fps, audio_mod.SAMPLE_RATE)


def aligned_phones(model, wav: np.ndarray, offset: int, fps: float) -> Optional[list]:
    """The phones of `align_own_voice(wav, offset, fps)` over the mouth witness's span: the own voice's (decoded
    once, when its offset was found) moved by the same amount. None for a model without phone inputs."""
    if not model.uses_phones:
        return None
    from .edits import shift_samples
    from .phones import decode_phones, shift_segments

    shift = shift_samples(int(offset), fps, audio_mod.SAMPLE_RATE) / audio_mod.SAMPLE_RATE
    return shift_segments(decode_phones(av_offset.witness_voice(wav)), shift)


# --------------------------------------------------------------------------------------------- cache
def store_adaptation(result: Adaptation, path: Path) -> None:
    from .atomic import atomic_write

    doc = json.dumps(result.to_json())
    arrays = {"doc": np.array(doc)}
    if result.head is not None:
        arrays.update(weight=result.head.weight, bias=result.head.bias)
    if result.sync_head is not None:
        arrays.update({SYNC_HEAD_PREFIX + k: v for k, v in result.sync_head.items()})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as fh:
            np.savez(fh, **arrays)
    except OSError as exc:   # a cache that cannot be written is not an error for the job
        log.warning("adaptation cache: could not write %s: %s", path, exc)


def load_adaptation(path: Path) -> Optional[Adaptation]:
    from .mouth_shape import MouthHead

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            doc = json.loads(str(z["doc"]))
            head = MouthHead(weight=z["weight"], bias=z["bias"]) if "weight" in z.files else None
            sync_head = {k[len(SYNC_HEAD_PREFIX):]: z[k] for k in z.files if k.startswith(SYNC_HEAD_PREFIX)} or None
    except (OSError, ValueError, KeyError) as exc:
        log.warning("adaptation cache: ignoring unreadable %s (%s)", path, exc)
        return None
    for derived in ("adapted", "judgeable", "sync_refined"):    # properties, written for the reader of the JSON
        doc.pop(derived, None)
    nan = float("nan")
    return Adaptation(head=head, sync_head=sync_head, **{k: (nan if v is None else v) for k, v in doc.items()})
