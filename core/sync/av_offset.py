"""The A/V offset of a voice against a face, from two independent witnesses.

1. The sync scorer: its mean embedding distance at each candidate offset (syncnet_python's search).
2. The audio->mouth model (`core.mouth_shape`, speaker-independent through its phone inputs): the correlation
   between the face's tracked inner-lip opening and the opening the model predicts from the voice, the voice moved
   by each candidate offset.

Each curve is put in units of its own spread over the candidates (median and MAD) and they are added, the mouth
curve with weight MOUTH_WEIGHT. The scorer alone, on faces it never saw, sometimes prefers a wrong peak; the mouth
model alone is broad and less precise; together they agree on the right one. Measured by `tools.eval_offset_fusion`
(injected delays -8..+8, within one frame, scorer alone -> both): unseen GRID speakers 0.929 -> 1.000, HD
re-encoded proxies with a degraded voice 0.900 -> 0.965; s1 validation (the selection set) 0.980 either way.

Used where a voice is judged against an original picture (the `score` command, the window's analysis, the clip's own
offset in `core.sync.lane_adapt`), not for scoring a dub: its mouths were made by the same model, so that witness
would vouch for itself. The LSE figures stay syncnet_python's (at the scorer's own best offset).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..audio import SAMPLE_RATE

MOUTH_WEIGHT = 1.0     # equal say, set a priori: s1 validation is flat from 0 to 2 (tools/eval_offset_fusion)
# The mouth witness reads the voice's first 3 minutes only: the clip's offset is one number, the scorer's curve
# still covers the whole clip, and every measurement of the witness (and of the adaptation that reuses its phones,
# core.adapt) used at most 147 s. Beyond that its work grows with the voice: on a 10 min voice PocketSphinx and the
# mouth model's prediction held ~0.28 GB more (each measured alone) and the adaptation took ~25 s longer.
WITNESS_SECONDS = 180.0


def witness_voice(wav: np.ndarray) -> np.ndarray:
    """The part of a 16 kHz voice the mouth witness reads (a view: its phones are decoded once, core.phones)."""
    return np.asarray(wav, np.float32).reshape(-1)[:int(WITNESS_SECONDS * SAMPLE_RATE)]


def witness_frames(num_frames: int, fps: float) -> int:
    """How many of a clip's first `num_frames` video frames the mouth witness reads."""
    return min(int(num_frames), int(WITNESS_SECONDS * float(fps)))


def robust_z(curve: np.ndarray) -> np.ndarray:
    """`curve` in units of its spread: (x - median) / (1.4826 MAD); all zeros when it does not vary."""
    c = np.asarray(curve, np.float64)
    med = float(np.median(c))
    mad = float(np.median(np.abs(c - med))) * 1.4826
    return (c - med) / mad if mad > 1e-9 else np.zeros_like(c)


def mouth_curve(model, wav: np.ndarray, fps: float, landmarks: np.ndarray, present: np.ndarray,
                offsets: np.ndarray) -> np.ndarray:
    """Pearson r, for each candidate offset o (video frames; positive = the voice leads the picture), between the
    tracked opening at frame t and the opening predicted from the voice at frame t - o, over the clip's first
    WITNESS_SECONDS. Zeros when the face or the voice does not move (then only the scorer decides)."""
    from .. import mouth_shape as ms

    offsets = np.asarray(offsets, np.int64)
    wav = witness_voice(wav)
    n = witness_frames(len(present), fps)
    landmarks, present = landmarks[:n], np.asarray(present, bool)[:n]
    out = np.zeros(len(offsets))
    if n < 2 or len(offsets) == 0:
        return out
    pad = int(np.abs(offsets).max())
    spf = int(round(SAMPLE_RATE / fps))
    silence = np.zeros(pad * spf, np.float32)
    segments = None
    if model.uses_phones:   # decoded once: the adaptation (core.adapt) learns from the same span and reuses them
        from ..phones import decode_phones, shift_segments
        segments = shift_segments(decode_phones(wav), len(silence) / SAMPLE_RATE)
    # padded after the decoding, whose own memory peaks on a long voice
    padded = np.concatenate([silence, wav[:n * spf], silence])
    disp = np.asarray(model.predict(padded, fps, n + 2 * pad, phone_segments=segments), np.float64)
    canon, _ = ms.normalize(np.asarray(landmarks, np.float32))
    valid = np.asarray(present, bool) & np.isfinite(canon).all(axis=(1, 2))
    if valid.sum() < 2:
        return out
    actual = ms.shape_opening(np.asarray(canon[valid][:, ms.SHAPE_POINTS], np.float64))
    predicted = ms.shape_opening(ms.clip_neutral(canon, valid)[None] + disp)
    if actual.std() < 1e-9:
        return out
    for j, o in enumerate(offsets):
        p = predicted[pad - o:pad - o + n][valid]
        if p.std() > 1e-9:
            r = float(np.corrcoef(actual, p)[0, 1])
            out[j] = r if np.isfinite(r) else 0.0
    return out


def candidate_offsets(report) -> np.ndarray:
    """The video-frame offset of each entry of a SyncReport's `mean_dists` (syncnet: entry j <-> vshift - j, in
    the scorer's frames)."""
    fps = float(report.fps)
    native = report.vshift - np.arange(len(report.mean_dists))
    return np.round(native * fps / float(report.scorer_fps or fps)).astype(np.int64)


def candidate_evidence(mean_dists: np.ndarray, mouth_r: np.ndarray, weight: float = MOUTH_WEIGHT) -> np.ndarray:
    """Per candidate, how strongly both witnesses vouch for it (each curve in units of its own spread; higher is
    better)."""
    return robust_z(-np.asarray(mean_dists, np.float64)) + weight * robust_z(mouth_r)


def best_candidate(mean_dists: np.ndarray, mouth_r: np.ndarray, weight: float = MOUTH_WEIGHT) -> int:
    """Index of the candidate both witnesses agree on best."""
    return int(np.argmax(candidate_evidence(mean_dists, mouth_r, weight)))


def decode_witness_phones(model, wav: np.ndarray) -> None:
    """Decode now the phones `mouth_curve` will read for this voice (core.phones keeps them): a caller about to fill
    memory with other work (a picture's scoring pass) runs the decoder first, so its memory does not stack on it."""
    if model.uses_phones:
        from ..phones import decode_phones

        decode_phones(witness_voice(wav))


def fused_evidence(report, model, wav: np.ndarray, landmarks: np.ndarray, present: np.ndarray,
                   weight: float = MOUTH_WEIGHT) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(candidate offsets in video frames, both witnesses' evidence for each) from a scorer's SyncReport (its mean
    distances per candidate) and the mouth model; None when the report has no distance curve."""
    md = np.asarray(report.mean_dists, np.float64)
    if md.size == 0 or not np.isfinite(md).all():
        return None
    video = candidate_offsets(report)
    mouth = mouth_curve(model, wav, float(report.fps), landmarks, present, video)
    return video, candidate_evidence(md, mouth, weight)
