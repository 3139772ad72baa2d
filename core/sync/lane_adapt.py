"""Lane adaptation: what the clip's own, in-sync voice says about the sync lane for this face.

The clip being dubbed usually carries its own voice. Scored against it (`lane_adaptation`), the clip gives its own
A/V offset (the scorer's, with the audio->mouth model as a second witness: core.sync.av_offset) and the calibrated
confidence this face reaches when in sync (core.sync.lane.own_level). When the own voice fits (`voice_fits`: a small
offset, a high enough confidence), that level sets the face's low threshold (`face_threshold`,
core.sync.lane.clip_threshold), since an unfamiliar face gives weaker evidence even in sync; the mouth-model refit
(core.adapt) learns from the same aligned pair.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import audio as audio_mod
from ..progress import CancelToken, ProgressFn, check
from .lane import LOW_THRESHOLD, clip_threshold, judgeable, own_level

MAX_OWN_OFFSET = 5       # frames: a larger own offset means the clip's sound is not this face's voice
MIN_OWN_CONFIDENCE = 1.2  # calibrated confidence (core.sync.lane units) the own voice must reach (median)
MIN_OWN_SPEAKING = 0.8    # or: the face's mean P(speaking) with its own sound (core.sync.asd.speaker.own_speaking;
                          # chosen on GRID s1/s4: own voices >= 0.89, a still face under its voice <= 0.71)


def voice_fits(own_offset: int, own_confidence: float, own_speaking: float = float("nan")) -> bool:
    """Does the clip's own sound follow its lips well enough to learn from? With `own_speaking` (the active-speaker
    network's mean P(speaking) of this face over its voiced frames) the face must speak its sound and the offset be
    small: the scorer's confidence floor, which refused in-sync faces it never learnt, no longer applies."""
    if abs(own_offset) > MAX_OWN_OFFSET:
        return False
    if np.isfinite(own_speaking):
        return own_speaking >= MIN_OWN_SPEAKING
    return own_confidence >= MIN_OWN_CONFIDENCE


def face_threshold(own_offset: int, own_confidence: float, own_speaking: float = float("nan")) -> float:
    """The sync lane's low threshold for this face: from its own level when its own voice fits, else the default."""
    return (clip_threshold(own_confidence) if voice_fits(own_offset, own_confidence, own_speaking)
            else LOW_THRESHOLD)


def face_judgeable(own_offset: int, own_confidence: float, own_speaking: float = float("nan")) -> bool:
    """Can the lane judge this face? Only a fitting own voice says: if it does not lift the face's confidence
    above the lowest threshold, the scorer cannot read this face (core.sync.lane.judgeable)."""
    return not voice_fits(own_offset, own_confidence, own_speaking) or judgeable(own_confidence)


def own_voice(video: str, info) -> Optional[np.ndarray]:
    """The clip's own sound (16 kHz mono), or None when it has none or it is silent."""
    if not getattr(info, "has_audio", False):
        return None
    wav = audio_mod.load_audio(video)
    if wav.size == 0 or not np.isfinite(wav).all() or float(np.abs(wav).max()) < 1e-4:
        return None
    return wav


def own_offset_choice(offsets: np.ndarray, evidence: np.ndarray, level_at) -> int:
    """The clip's own A/V offset among candidate `offsets` (video frames), given the witnesses' `evidence` for each
    (higher is better) and `level_at(offset)`, the face's own level there (core.sync.lane.own_level).

    A clip's own sound is within a few frames of its picture, and on a face the scorer reads weakly a short stretch
    of voice can raise a spurious peak far away (measured: an unseen face's 1.5 s of HD voice put it at +12 frames,
    its level there 0.7, at -1 frames 1.7). So when the overall best lies beyond MAX_OWN_OFFSET, the best candidate
    within it is taken if the face reaches the confidence floor there; otherwise the overall best stands (and the
    sound is refused as not this face's voice: a late voice on a face the scorer barely reads stays refused)."""
    offsets = np.asarray(offsets, np.int64)
    evidence = np.asarray(evidence, np.float64)
    best = int(offsets[np.argmax(evidence)])
    near = np.abs(offsets) <= MAX_OWN_OFFSET
    if abs(best) <= MAX_OWN_OFFSET or not near.any():
        return best
    nearby = int(offsets[near][np.argmax(evidence[near])])
    return nearby if level_at(nearby) >= MIN_OWN_CONFIDENCE else best


def find_own_offset(video: str, wav: np.ndarray, track, scorer, fps: float, progress=None, cancel=None,
                    offset_model=None, on_frame=None):
    """(offset, level, report) of the clip's own voice: its A/V offset (the scorer's, with `offset_model` as a second
    witness: core.sync.av_offset; kept near 0 where the face supports it: `own_offset_choice`) and the median
    calibrated confidence at that offset over the voiced windows (core.sync.lane.own_level), and the own voice's
    SyncReport (whose `offset_frames` stays the witnesses' overall best). `on_frame`: see scoring.face_windows."""
    from .av_offset import candidate_offsets, robust_z
    from .scoring import score_clip

    rep = score_clip(video, wav, track, scorer, progress=progress, cancel=cancel, fps=fps, offset_model=offset_model,
                     on_frame=on_frame)
    m = len(rep.dists)
    s_fps = float(rep.scorer_fps or fps)
    # speech per window, on the scorer's frame grid (a resampling scorer's windows are not video frames)
    voiced = audio_mod.voice_activity(wav, s_fps, m + rep.window)[rep.window // 2:rep.window // 2 + m]

    def level_at(offset: int) -> float:
        return own_level(rep.dists, rep.vshift, int(round(offset * s_fps / fps)), voiced)

    offsets, evidence = (rep.offset_evidence if rep.offset_evidence is not None
                         else (candidate_offsets(rep), robust_z(-np.asarray(rep.mean_dists, np.float64))))
    offset = own_offset_choice(offsets, evidence, level_at)
    return offset, level_at(offset), rep


@dataclass
class LaneAdaptation:
    """What the clip's own voice says about the sync lane for this face."""
    own_offset: int = 0
    own_confidence: float = float("nan")
    message: str = ""
    wav: Optional[np.ndarray] = None
    report: object = None           # the own voice's SyncReport (core.sync.scoring), judged by the default threshold
    own_speaking: float = float("nan")  # mean P(speaking) of the face with its own sound (NaN: not measured)

    @property
    def own_voice_fits(self) -> bool:
        return self.wav is not None and voice_fits(self.own_offset, self.own_confidence, self.own_speaking)

    @property
    def low_threshold(self) -> float:
        return face_threshold(self.own_offset, self.own_confidence, self.own_speaking)

    @property
    def judgeable(self) -> bool:
        return self.wav is None or face_judgeable(self.own_offset, self.own_confidence, self.own_speaking)


def lane_adaptation(video: str, info, track, scorer, cancel: Optional[CancelToken] = None,
                    offset_model=None, progress: Optional[ProgressFn] = None, speaking: bool = True,
                    frames=None) -> LaneAdaptation:
    """Score the clip against its own sound: its A/V offset (`offset_model`: the audio->mouth model as a second
    witness, core.sync.av_offset), how confident this face gets when in sync and (`speaking`) whether the face
    speaks that sound (core.sync.asd.speaker.own_speaking). `frames` (core.streams.FrameShare): is handed the frames
    the scoring pass decodes, and told when that pass is over (whether or not it ran)."""
    try:
        wav = own_voice(video, info)
        if wav is None:
            return LaneAdaptation(message="the video has no sound of its own, so there is nothing to learn this "
                                          "actor from")
        check(cancel)
        offset, level, rep = find_own_offset(video, wav, track, scorer, float(info.fps), progress=progress,
                                             cancel=cancel, offset_model=offset_model,
                                             on_frame=None if frames is None else frames.add)
    finally:
        if frames is not None:      # the scoring pass is over, or never came
            frames.done()
    lane = LaneAdaptation(own_offset=offset, own_confidence=level, wav=wav, report=rep)
    if speaking and abs(offset) <= MAX_OWN_OFFSET:
        from .asd.speaker import own_speaking

        # the network reads the authors' crops, the sync scorer blurred ones (core.sync.asd.features): its own pass
        lane.own_speaking = own_speaking(video, info, track, wav, cancel=cancel)
    said = "" if not np.isfinite(lane.own_speaking) else f", speaking {lane.own_speaking:.2f}"
    if lane.own_voice_fits:
        lane.message = (f"this face reaches confidence {level:.1f} with its own voice (own A/V offset "
                        f"{offset:+d} frames{said})")
    else:
        lane.message = (f"the clip's own sound does not follow its lips (offset {offset:+d} frames, confidence "
                        f"{level:.1f}{said})")
    return lane
