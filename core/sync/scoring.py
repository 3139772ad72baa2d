"""Lip-sync measurement: LSE-D / LSE-C / AV offset (syncnet_python's definition) and per-frame confidence.

- `lse_from_features(video_feat, audio_feat, vshift)`: syncnet_python's `calc_pdist` + the offset/confidence code of
  `SyncNetInstance.evaluate`, exactly: for each window i, Euclidean distances (torch `pairwise_distance`, which adds
  eps=1e-6 to the difference) between video feature i and audio features i-vshift .. i+vshift (zero rows beyond the
  ends); `mdist` = their mean over windows; `offset = vshift - argmin(mdist)`; LSE-D = min(mdist);
  LSE-C = median(mdist) - min(mdist); per window: `fconf = median(mdist) - dists[:, argmin]`, median-filtered
  (kernel 9, zero-padded edges, scipy.signal.medfilt, as `medfilt`). Positive offset: the audio *leads* the video (audio row t
  matches video row t + offset).
- `SyncScorer`: one interface for syncnet_v2, Wav2Lip's colour expert and our shipped lite scorer.
- `score_clip(video, wav, track, scorer)`: streams the frames, crops the tracked face, batches inference, and returns
  a `SyncReport` with one value per video frame: `per_frame`, the sync lane's confidence at offset 0 calibrated
  against the clip's own null (`core.sync.lane`), `low` (voiced frames below `low_threshold`: what the window
  shades), and syncnet_python's own per-frame confidence in `per_frame_syncnet` / `per_frame_raw`.

Window -> frame mapping: window i covers the scorer's frames i .. i+window-1 and is assigned to its centre frame
i + window//2. Frames before the first centre / after the last take the nearest window's value (held edges).
When the scorer works at a fixed frame rate (`native_fps`, 25 for syncnet_v2 and the colour expert, as their
pipelines resample video to 25 fps), the clip's frames are resampled (nearest frame in time) before scoring and each
video frame takes the value of the scorer frame nearest in time. `offset_frames` is then converted to video frames
(`offset_native` keeps the scorer's own unit).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

from .. import audio as audio_mod
from .. import media
from ..errors import LipDubError, MediaError, NoFaceError
from ..heap import reusing_freed_blocks
from ..progress import CancelToken, ProgressFn, check, report
from ..streams import prefetch
from . import lane
from .scorers.base import DEFAULT_VSHIFT, SyncScorer  # noqa: F401  (SyncScorer: part of this module's interface)
from .scorers.registry import get_scorer  # noqa: F401  (the scorer factory, re-exported for callers)

log = logging.getLogger(__name__)

MEDFILT_KERNEL = 9
READER_TAIL_FRAMES = 250    # frames `face_windows` decodes past the voice's end for a reader of its frames: a decoder
                            # of the reader's own would decode up to a keyframe interval (x264's default) again


# ============================================================================================ report
def _json_floats(a) -> list:
    return [None if not math.isfinite(float(x)) else round(float(x), 5) for x in np.asarray(a).reshape(-1)]


@dataclass
class SyncReport:
    scorer: str
    offset_frames: int
    lse_d: float
    lse_c: float
    per_frame: np.ndarray          # (N,) confidence, median-filtered (kernel 9), one per video frame
    per_frame_raw: np.ndarray      # (N,) before the median filter
    dists: np.ndarray              # (M, 2*vshift+1) per-window distances at every shift
    # additions (see the module docstring)
    vshift: int = DEFAULT_VSHIFT
    min_index: int = 0             # argmin of the mean distance (offset_native = vshift - min_index)
    offset_native: int = 0         # offset in the scorer's frames (at `scorer_fps`)
    window_conf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))      # (M,) fconfm per window
    window_conf_raw: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (M,) fconf per window
    mean_dists: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))       # (2*vshift+1,) mdist
    valid: Optional[np.ndarray] = None     # (N,) bool: frame had a detected face and lies in the scored range
    fps: Optional[float] = None            # video frame rate of per_frame
    scorer_fps: Optional[float] = None     # frame rate the scorer worked at
    window: int = 5
    # the calibrated sync lane (core.sync.lane), set by score_clip
    per_frame_syncnet: Optional[np.ndarray] = None   # (N,) syncnet_python's median-filtered confidence
    low: Optional[np.ndarray] = None       # (N,) bool: voiced frame whose calibrated confidence is low
    low_threshold: Optional[float] = None  # in the calibrated confidence's units
    judgeable: bool = True                 # False: the scorer cannot read this face (core.sync.lane.judgeable);
                                           # no frame is then marked low
    voiced: Optional[np.ndarray] = None    # (N,) bool: the voice is active
    # when the mouth model was a second witness of the offset (core.sync.av_offset): the scorer's own offset (video
    # frames); `offset_frames` is then the offset both agree on
    offset_scorer: Optional[int] = None
    # ... and both witnesses' evidence per candidate offset: (offsets in video frames, evidence; higher is better)
    offset_evidence: Optional[Tuple[np.ndarray, np.ndarray]] = field(default=None, repr=False)
    face: Optional["FaceWindows"] = field(default=None, repr=False)   # the picture's features (score_clip's face=)

    @property
    def num_windows(self) -> int:
        return int(len(self.window_conf))

    def to_json(self, include_dists: bool = False) -> dict:
        out = {
            "scorer": self.scorer, "offset_frames": int(self.offset_frames), "offset_native": int(self.offset_native),
            "lse_d": round(float(self.lse_d), 5), "lse_c": round(float(self.lse_c), 5),
            "vshift": int(self.vshift), "min_index": int(self.min_index), "window": int(self.window),
            "fps": self.fps, "scorer_fps": self.scorer_fps, "num_windows": self.num_windows,
            "per_frame": _json_floats(self.per_frame), "per_frame_raw": _json_floats(self.per_frame_raw),
            "valid": None if self.valid is None else [bool(v) for v in self.valid],
            "mean_dists": _json_floats(self.mean_dists),
            "low_threshold": self.low_threshold,
            "low": None if self.low is None else [bool(v) for v in self.low],
            "voiced": None if self.voiced is None else [bool(v) for v in self.voiced],
            "per_frame_syncnet": None if self.per_frame_syncnet is None else _json_floats(self.per_frame_syncnet),
            "offset_scorer": None if self.offset_scorer is None else int(self.offset_scorer),
            "judgeable": bool(self.judgeable),
        }
        if include_dists:
            out["dists"] = [_json_floats(row) for row in np.asarray(self.dists)]
        return out

    @classmethod
    def from_json(cls, d: dict) -> "SyncReport":
        def arr(key, dtype=np.float32):
            v = d.get(key)
            return np.zeros(0, dtype) if v is None else np.array([np.nan if x is None else x for x in v], dtype)

        dists = d.get("dists")
        return cls(scorer=d["scorer"], offset_frames=int(d["offset_frames"]), lse_d=float(d["lse_d"]),
                   lse_c=float(d["lse_c"]), per_frame=arr("per_frame"), per_frame_raw=arr("per_frame_raw"),
                   dists=np.asarray(dists, np.float32) if dists is not None else np.zeros((0, 0), np.float32),
                   vshift=int(d.get("vshift", DEFAULT_VSHIFT)), min_index=int(d.get("min_index", 0)),
                   offset_native=int(d.get("offset_native", d["offset_frames"])),
                   mean_dists=arr("mean_dists"),
                   valid=None if d.get("valid") is None else np.asarray(d["valid"], bool),
                   fps=d.get("fps"), scorer_fps=d.get("scorer_fps"), window=int(d.get("window", 5)),
                   per_frame_syncnet=None if d.get("per_frame_syncnet") is None else arr("per_frame_syncnet"),
                   low=None if d.get("low") is None else np.asarray(d["low"], bool),
                   low_threshold=d.get("low_threshold"), offset_scorer=d.get("offset_scorer"),
                   judgeable=bool(d.get("judgeable", True)),
                   voiced=None if d.get("voiced") is None else np.asarray(d["voiced"], bool))


# ============================================================================================ LSE
def calc_pdist(video_feat, audio_feat, vshift: int = DEFAULT_VSHIFT, chunk: int = 256):
    """(M, 2*vshift+1) float32 torch tensor: dists[i, j] = ||v_i - a_{i+j-vshift} + 1e-6|| (zero rows outside)."""
    import torch
    from torch.nn import functional as F

    v = torch.as_tensor(np.asarray(video_feat, np.float32))
    a = torch.as_tensor(np.asarray(audio_feat, np.float32))
    win = 2 * vshift + 1
    ap = F.pad(a, (0, 0, vshift, vshift))
    out = torch.empty((len(v), win), dtype=torch.float32)
    for s in range(0, len(v), chunk):
        e = min(len(v), s + chunk)
        windows = ap[s:e + win - 1].unfold(0, win, 1).transpose(1, 2)  # (e-s, win, D)
        out[s:e] = F.pairwise_distance(v[s:e, None, :].expand(-1, win, -1), windows)
    return out


def window_to_frame_index(num_frames: int, num_windows: int, window: int = 5) -> np.ndarray:
    """(num_frames,) index of the window whose centre is each frame, edges held: clip(f - window//2, 0, M-1)."""
    idx = np.arange(num_frames) - window // 2
    return np.clip(idx, 0, max(num_windows - 1, 0)).astype(np.int64)


def medfilt(x: np.ndarray, kernel: int) -> np.ndarray:
    """scipy.signal.medfilt of a 1-D array (odd `kernel`, zero-padded edges), without importing scipy.signal (about
    a second of a short dub's start-up)."""
    x = np.asarray(x)
    half = kernel // 2
    padded = np.concatenate([np.zeros(half, x.dtype), x, np.zeros(half, x.dtype)])
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, kernel), axis=-1)


def lse_from_features(video_feat, audio_feat, vshift: int = DEFAULT_VSHIFT, *, scorer: str = "features",
                      window: int = 5, num_frames: Optional[int] = None) -> SyncReport:
    """syncnet_python's LSE on (M, D) video and audio features (window i of each aligned at the same time).

    per_frame is mapped from windows to `num_frames` frames (default M + window - 1, the frames the windows came
    from) with `window_to_frame_index`.
    """
    import torch

    v = np.asarray(video_feat, np.float32)
    a = np.asarray(audio_feat, np.float32)
    if v.ndim != 2 or a.ndim != 2 or v.shape != a.shape or len(v) == 0:
        raise ValueError(f"video and audio features must be equal non-empty (M, D) arrays, got {v.shape} and {a.shape}")
    dists = calc_pdist(v, a, vshift)                        # (M, win)
    mdist = dists.mean(0)                                   # (win,)
    minval, minidx = torch.min(mdist, 0)
    median = torch.median(mdist)
    offset = vshift - int(minidx)
    conf = float(median - minval)
    fdist = dists[:, int(minidx)].numpy()
    fconf = median.numpy() - fdist
    fconfm = medfilt(fconf, MEDFILT_KERNEL).astype(np.float32)
    m = len(v)
    n = (m + window - 1) if num_frames is None else int(num_frames)
    fi = window_to_frame_index(n, m, window)
    return SyncReport(scorer=scorer, offset_frames=offset, lse_d=float(minval), lse_c=conf,
                      per_frame=fconfm[fi], per_frame_raw=fconf.astype(np.float32)[fi],
                      dists=dists.numpy(), vshift=vshift, min_index=int(minidx), offset_native=offset,
                      window_conf=fconfm, window_conf_raw=fconf.astype(np.float32), mean_dists=mdist.numpy(),
                      window=window)


# ============================================================================================ scorers
# ============================================================================================ track filling
def fill_track(boxes: np.ndarray, landmarks: np.ndarray, present: np.ndarray):
    """Boxes/landmarks for every frame: linear interpolation between detected frames, held before the first and
    after the last. Returns (boxes (N,4), landmarks (N,68,2), detected (N,) bool). NoFaceError if never present."""
    boxes = np.asarray(boxes, np.float32)
    landmarks = np.asarray(landmarks, np.float32)
    ok = np.asarray(present, bool) & np.isfinite(boxes).all(1) & np.isfinite(landmarks).all((1, 2))
    n = len(ok)
    if not ok.any():
        raise NoFaceError("No face was found in any frame of the clip: nothing to score.")
    if ok.all():
        return boxes, landmarks, ok
    t = np.arange(n)
    known = np.flatnonzero(ok)
    fb = np.stack([np.interp(t, known, boxes[known, j]) for j in range(4)], 1).astype(np.float32)
    flat = landmarks.reshape(n, -1)
    fl = np.stack([np.interp(t, known, flat[known, j]) for j in range(flat.shape[1])], 1)
    return fb, fl.reshape(n, 68, 2).astype(np.float32), ok


def resample_indices(num_frames: int, fps: float, target_fps: Optional[float]) -> np.ndarray:
    """Source frame index of each frame at `target_fps` (nearest in time), or arange if no resampling is needed."""
    if not target_fps or abs(fps - target_fps) < 1e-3:
        return np.arange(num_frames, dtype=np.int64)
    k = int(math.floor(num_frames * target_fps / fps + 1e-9))
    return np.minimum(np.floor(np.arange(k) * fps / target_fps + 0.5).astype(np.int64), num_frames - 1)


# ============================================================================================ score_clip
def judge_low(report: SyncReport, low_threshold: Optional[float] = None, judgeable: bool = True) -> SyncReport:
    """Set the report's `low` frames against `low_threshold` (None: core.sync.lane.LOW_THRESHOLD): the one step of
    scoring that depends on the threshold, so a report can be judged again by a threshold learnt after it. On a face
    the scorer cannot read (`judgeable` False, core.sync.lane.judgeable) no frame is low: the lane says it cannot
    judge rather than shading everything."""
    report.low_threshold = float(lane.LOW_THRESHOLD if low_threshold is None else low_threshold)
    report.judgeable = bool(judgeable)
    report.low = lane.low_frames(report.per_frame, report.voiced, report.valid, report.low_threshold)
    if not report.judgeable:
        report.low = np.zeros_like(report.low)
    return report


@dataclass
class FaceWindows:
    """What scoring takes from the picture: the scorer's video features, window by window. Computed once per face
    and scorer, they can be compared with any number of voices (the window scores the clip's own voice for the
    adaptation, then the new voice)."""
    scorer: str
    features: np.ndarray         # (M, D) float32: window i covers scorer frames i .. i + window - 1
    frames: int                  # scorer frames read (fewer than `requested` when the video ended early)
    requested: int               # scorer frames asked for ...
    available: int               # ... of the scorer frames the video has
    detected: np.ndarray         # (N,) bool per video frame: a face was detected there
    trunk: Optional[np.ndarray] = None   # (M, C) what the scorer's video projection reads, window by window, for
                                         # scorers that have one (`video_trunk` / `project_video`): per-clip
                                         # refinement refits the projection without decoding the video again

    def covers(self, scorer: SyncScorer, frames: int) -> bool:
        """Do these windows hold everything a voice of `frames` scorer frames is compared with?"""
        return self.scorer == scorer.name and self.requested >= min(int(frames), self.available)


def scorer_frame_rate(scorer: SyncScorer, fps: float) -> tuple[float, bool]:
    """(frame rate the scorer works at, whether the clip's frames are resampled to it)."""
    resampled = bool(scorer.native_fps) and abs(fps - float(scorer.native_fps)) >= 1e-3
    return (float(scorer.native_fps) if resampled else fps), resampled


def _too_short(video_path, scorer: SyncScorer, s_fps: float) -> MediaError:
    return MediaError(f"{Path(str(video_path)).name} is too short to score: {scorer.name} needs at least "
                      f"{scorer.window + 1} frames ({(scorer.window + 1) / s_fps:.2f} s) of video with voice.")


def face_windows(video_path, track, scorer: SyncScorer, fps: float, max_frames: Optional[int] = None, *,
                 progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
                 on_frame: Optional[Callable[[int, np.ndarray], None]] = None) -> FaceWindows:
    """Stream the video's frames, crop the tracked face and embed it window by window (memory stays bounded by one
    batch of crops); `max_frames`: stop after this many scorer frames (the voice ends there). Frames without a
    detection use a box interpolated/held from the neighbouring detections. `on_frame(i, frame)` sees the video's
    frames in order from 0, to the last one the scorer needs and on for up to READER_TAIL_FRAMES more, to the track's
    end (where the voice ends first): other per-frame reads of this video need no decode of their own, or one only
    from where a long tail begins (the pass does not wait for the reader through it). It is called from the worker
    thread that cuts the crops: keep it to data (no GUI)."""
    boxes, lms, detected = fill_track(track.boxes, track.landmarks, track.present)
    n_video = len(detected)
    s_fps, resampled = scorer_frame_rate(scorer, fps)
    src = resample_indices(n_video, fps, s_fps)
    available = len(src)
    k_total = available if max_frames is None else min(available, int(max_frames))
    if scorer.num_windows(k_total) < 1:
        raise _too_short(video_path, scorer, s_fps)
    src = src[:k_total]
    need = np.bincount(src, minlength=n_video)  # how many scorer frames each video frame feeds

    win = scorer.window
    chunk_frames = max(1, int(scorer.batch_size)) + win - 1
    feats: List[np.ndarray] = []
    trunks: List[np.ndarray] = []
    split = callable(getattr(scorer, "video_trunk", None)) and callable(getattr(scorer, "project_video", None))

    def embed(crops: List[np.ndarray]) -> None:
        x = np.stack(crops)
        if split:
            t = np.asarray(scorer.video_trunk(x), np.float32)
            trunks.append(t)
            feats.append(np.asarray(scorer.project_video(t), np.float32))
        else:
            feats.append(np.asarray(scorer.video_features(x), np.float32))

    last_read = int(src[-1]) if on_frame is None else min(n_video - 1, int(src[-1]) + READER_TAIL_FRAMES)

    def crop_chunks():
        """(crops of one chunk or None, scorer frames cropped so far), chunk by chunk, the last one None when too
        short: decoded (in a thread of its own) and cropped in order."""
        buffer: List[np.ndarray] = []
        done = 0
        frames = prefetch(media.iter_frames(video_path, backend="auto"))   # decoded while the crops are cut
        try:
            for i, frame in enumerate(frames):
                if i > last_read:
                    break
                if on_frame is not None:
                    on_frame(i, frame)
                if need[i] == 0:
                    continue
                check(cancel)
                crop = scorer.face_input(frame, boxes[i], lms[i])
                for _ in range(int(need[i])):
                    buffer.append(crop)
                done += int(need[i])
                if len(buffer) >= chunk_frames:
                    yield buffer, done
                    buffer = buffer[len(buffer) - (win - 1):]
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        yield (buffer if len(buffer) >= win else None), done

    # the crops are cut in a worker (at most two chunks ahead: one queued, one being cut; ~1 MB each) while this
    # thread runs the networks on the chunks in order: neither waits for the other, and the networks' large
    # transients come from this thread's heap, where `reusing_freed_blocks` keeps them from one pass to the next (on
    # the main thread: core.heap)
    done = 0
    report(progress, "score", 0, k_total)
    with reusing_freed_blocks():
        for crops, done in prefetch(crop_chunks(), depth=1):
            if crops is not None:
                embed(crops)
            report(progress, "score", done, k_total)
    check(cancel)
    if done < k_total:
        log.warning("%s: the video ended after %d of %d frames; scoring those.", video_path, done, k_total)
    m = scorer.num_windows(done)
    if m < 1 or not feats:
        raise MediaError(f"{Path(str(video_path)).name} yielded too few frames to score ({done}).")
    report(progress, "score", k_total, k_total)
    return FaceWindows(scorer=scorer.name, features=np.concatenate(feats, 0)[:m], frames=done, requested=k_total,
                       available=available, detected=detected,
                       trunk=np.concatenate(trunks, 0)[:m] if trunks else None)


def voice_windows(wav: np.ndarray, scorer: SyncScorer, fps: float) -> Tuple[int, np.ndarray]:
    """(scorer frames, audio window features) of a whole voice: what `score_clip` computes of the voice when the
    video has a frame for all of it. Independent of the picture, so a job can compute it before the video it scores
    exists (the dub, while it renders) and hand it to `score_clip` (`voice=`)."""
    wav = np.asarray(wav, np.float32).reshape(-1)
    s_fps, _ = scorer_frame_rate(scorer, float(fps))
    n_audio = int(math.floor(len(wav) / audio_mod.SAMPLE_RATE * s_fps + 1e-6))
    return n_audio, np.asarray(scorer.audio_features(wav, s_fps, n_audio), np.float32)


def score_clip(video_path, wav: np.ndarray, track, scorer: SyncScorer, *, progress: Optional[ProgressFn] = None,
               cancel: Optional[CancelToken] = None, fps: Optional[float] = None,
               low_threshold: Optional[float] = None, offset_model=None,
               face: Optional[FaceWindows] = None, judgeable: bool = True,
               voice: Optional[Tuple[int, np.ndarray]] = None,
               on_frame: Optional[Callable[[int, np.ndarray], None]] = None) -> SyncReport:
    """Score how well `wav` (float32 mono 16 kHz) matches the lips of `track` (a FaceTrack over the video's frames).
    `low_threshold`: the sync lane's threshold for this face (core.sync.lane_adapt), else core.sync.lane.LOW_THRESHOLD;
    `judgeable` False (core.sync.lane_adapt: the face's own voice did not lift it off the null): no frame is low.
    `offset_model`: an audio->mouth model (core.mouth_shape) as a second witness of the offset (core.sync.av_offset:
    for a voice against an original picture, not for a dub made by that model); LSE-D/LSE-C stay syncnet_python's.
    `face`: this video's `face_windows` from an earlier report (`report.face`), used when they cover this voice.
    `voice`: `voice_windows(wav, scorer, fps)` computed earlier, used when the video covers the whole voice.
    `on_frame`: passed to `face_windows` (not called when `face` is used instead of a decode).

    Frames without a detection are marked invalid in `report.valid`.
    """
    fps = float(fps) if fps else float(media.probe(video_path).fps)
    if not fps or fps <= 0:
        raise MediaError(f"The video {video_path} has no usable frame rate: it cannot be scored.")
    wav = np.asarray(wav, np.float32).reshape(-1)
    s_fps, resampled = scorer_frame_rate(scorer, fps)
    n_audio = int(math.floor(len(wav) / audio_mod.SAMPLE_RATE * s_fps + 1e-6))
    if face is None or not face.covers(scorer, n_audio):
        if offset_model is not None:
            from .av_offset import decode_witness_phones

            # before the picture's pass, not after: a long voice's decoder (~0.1-0.3 GB) no longer stacks on what the
            # pass leaves resident
            decode_witness_phones(offset_model, wav)
        face = face_windows(video_path, track, scorer, fps, n_audio, progress=progress, cancel=cancel,
                            on_frame=on_frame)
    detected = face.detected
    n_video = len(detected)
    win = scorer.window
    k_done = min(face.frames, n_audio)
    m = scorer.num_windows(k_done)
    if m < 1:
        raise _too_short(video_path, scorer, s_fps)
    vfeat = face.features[:m]
    if voice is not None and int(voice[0]) == k_done:
        afeat = np.asarray(voice[1], np.float32)[:m]
    else:
        afeat = np.asarray(scorer.audio_features(wav, s_fps, k_done), np.float32)[:m]
    if len(vfeat) < m or len(afeat) < m:
        raise LipDubError(f"The {scorer.name} scorer returned {len(vfeat)} video / {len(afeat)} audio features for "
                          f"{m} windows: the scorer is broken.")
    rep = lse_from_features(vfeat, afeat, scorer.vshift, scorer=scorer.name, window=win, num_frames=k_done)
    rep.face = face

    # map scorer frames back to video frames (nearest in time)
    if not resampled:
        k_of_f = np.arange(n_video)
    else:
        k_of_f = np.floor(np.arange(n_video) * s_fps / fps + 0.5).astype(np.int64)
    in_range = k_of_f < k_done
    wi = np.clip(k_of_f - win // 2, 0, m - 1)
    rep.per_frame_syncnet = rep.window_conf[wi]
    rep.per_frame_raw = rep.window_conf_raw[wi]
    rep.per_frame = lane.calibrate(rep.dists, rep.vshift).confidence[wi]
    rep.valid = detected & in_range
    rep.voiced = audio_mod.voice_activity(wav, fps, n_video)
    judge_low(rep, low_threshold, judgeable)
    rep.fps = fps
    rep.scorer_fps = s_fps
    rep.offset_frames = int(round(rep.offset_native * fps / s_fps))
    if offset_model is not None:
        from .av_offset import fused_evidence

        check(cancel)
        report(progress, "offset", 0, 1)
        evidence = fused_evidence(rep, offset_model, wav, track.landmarks, track.present)
        report(progress, "offset", 1, 1)
        if evidence is not None:
            rep.offset_evidence = evidence
            rep.offset_scorer, rep.offset_frames = rep.offset_frames, int(evidence[0][np.argmax(evidence[1])])
    return rep
