"""The quality report of one dub: per-frame flags, the summary, and the ways to get one (files, a dub job).

`run_qc(original, dub, ...)` streams both videos (the dub's frame i is the original's frame `start + i` for
the default `shortest` length policy, else the schedule `core.render.schedule.output_schedule` gives), takes the
original's face track from the tracker's cache (tracking once when there is none: no detection per check),
judges the voice's silences from the dub's own sound (or `voice`), measures (`core.qc.measure`) and flags
(`core.qc.rules`). `qc_for_settings(settings, output)` does the same for a file the pipeline just wrote
(batch rows, the window's Score Dubbed Result).

Summary (JSON `summary`):
- `psnr_outside` (dB, the B, G, R values of the whole frame outside the lower-face mask as the product decodes
  them, all frames pooled; not luma: see docs/QC.md, where it looks) and `ssim_outside`
  (mean SSIM in the face crop outside the mask): a dub should leave the rest of the frame alone (a CRF 18
  re-encode: ~40 dB, 0.97-0.99);
- `ssim_mouth`: mean SSIM of the mouth box against the original (a new mouth is expected to differ: read it
  with the flags, not alone);
- `sharpness_ratio`: median over frames of the dub's lower-face gradient energy over the original's (1 = as
  sharp; see `core.qc.metrics.sharpness`), with `sharpness_dub` / `sharpness_orig` (mean gradient energy);
- `lmd`: mouth landmark distance (IOD units, each clip's neutral mouth removed) between the dub's lips (dlib,
  fitted in the track's box) and the reference clip's when `reference` (the clip whose mouth really said the
  voice) is given, else null;
- `flagged`: share of the judged frames flagged, per kind, and `any`;
- `judged_frames`, `silence_judged_frames` (frames the open-mouth rule could judge).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from ..errors import MediaError, NoFaceError
from ..progress import CancelToken, ProgressFn
from .measure import Measures, measure, psnr_total
from .rules import DESCRIPTIONS, KINDS, Thresholds, blur_ratio, flags as make_flags, judged_silence, open_level


@dataclass
class QCReport:
    num_frames: int
    fps: float
    flags: Dict[str, np.ndarray]          # kind -> (num_frames,) bool
    judged: np.ndarray                    # (num_frames,) bool: a face was there to judge
    summary: dict
    start: int = 0                        # the dub's frame 0 is output frame `start` (a range)
    measures: Optional[Measures] = field(default=None, repr=False)

    @property
    def any(self) -> np.ndarray:
        out = np.zeros(self.num_frames, bool)
        for k in KINDS:
            out |= self.flags[k]
        return out

    def kinds_at(self, i: int) -> list:
        """The kinds flagged at dub frame i."""
        return [k for k in KINDS if 0 <= i < self.num_frames and self.flags[k][i]]

    def count(self) -> int:
        return int(self.any.sum())

    def to_json(self) -> dict:
        out = {"num_frames": self.num_frames, "fps": self.fps, "start": self.start,
               "judged": [bool(x) for x in self.judged]}
        for k in KINDS:
            out[k] = [bool(x) for x in self.flags[k]]
        out["summary"] = self.summary
        return out

    def summary_line(self) -> str:
        s = self.summary
        parts = [f"{int(round(100 * s['flagged'][k]))}% {k}" for k in KINDS]
        line = (f"qc: {self.count()} of {self.num_frames} frames flagged ({', '.join(parts)}); "
                f"outside the mask PSNR {_fmt(s['psnr_outside'], 1)} dB SSIM {_fmt(s['ssim_outside'], 3)}; "
                f"mouth SSIM {_fmt(s['ssim_mouth'], 3)} sharpness {_fmt(s['sharpness_ratio'], 2)}x the original")
        if s.get("lmd") is not None:
            line += f"; LMD {s['lmd']:.3f}"
        return line


def _fmt(x, digits: int) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _num(x) -> Optional[float]:
    x = float(x)
    return round(x, 4) if math.isfinite(x) else (None if math.isnan(x) else x)


def summarize(m: Measures, f: Dict[str, np.ndarray], lmd: Optional[float] = None,
              t: Thresholds = Thresholds()) -> dict:
    j = m.judged
    nj = int(j.sum())

    def mean(key):
        x = m[key][j]
        x = x[np.isfinite(x)]
        return float(x.mean()) if len(x) else math.nan

    r = blur_ratio(m, t)
    r = r[np.isfinite(r)]
    anyf = np.zeros(m.n, bool)
    for k in KINDS:
        anyf |= f[k]
    share = {k: round(float(f[k][j].sum()) / nj, 4) if nj else 0.0 for k in KINDS}
    share["any"] = round(float(anyf[j].sum()) / nj, 4) if nj else 0.0
    psnr = psnr_total(m)
    return {
        "psnr_outside": None if math.isnan(psnr) else (round(psnr, 3) if math.isfinite(psnr) else "inf"),
        "ssim_outside": _num(mean("ssim_outside")),
        "ssim_mouth": _num(mean("ssim_mouth")),
        "sharpness_ratio": _num(np.median(r)) if len(r) else None,
        "sharpness_dub": _num(mean("sharp_dub")),
        "sharpness_orig": _num(mean("sharp_orig")),
        "lmd": None if lmd is None or not math.isfinite(lmd) else round(float(lmd), 4),
        "flagged": share,
        "flagged_frames": int(anyf.sum()),
        "judged_frames": nj,
        "silence_judged_frames": int((judged_silence(m.silent, t.silence_margin) & j).sum()),
        "rules": {k: DESCRIPTIONS[k] for k in KINDS},
    }


def lmd(dub_landmarks: np.ndarray, ref_landmarks: np.ndarray, ref_present: np.ndarray) -> float:
    """Mouth landmark distance (IOD units), each clip's neutral mouth removed (as tools/eval_crossdub)."""
    from .. import mouth_shape as ms

    n = min(len(dub_landmarks), len(ref_landmarks))
    a, b = np.asarray(dub_landmarks[:n], np.float64), np.asarray(ref_landmarks[:n], np.float64)
    pa = np.all(np.isfinite(a), axis=(1, 2))
    pb = np.asarray(ref_present[:n], bool) & np.all(np.isfinite(b), axis=(1, 2))
    if not (pa & pb).any() or pa.sum() < 2:
        return math.nan

    def series(lm, present):
        canon, _ = ms.normalize(np.where(present[:, None, None], lm, np.nan))
        neutral = ms.clip_neutral(canon, present)
        rows = ms.MOUTH_IN_SHAPE
        return canon[:, ms.SHAPE_POINTS][:, rows] - neutral[rows]

    sa, sb = series(a, pa), series(b, pb)
    ok = pa & pb
    return float(np.linalg.norm(sa[ok] - sb[ok], axis=-1).mean())


def _schedule(info, num_dub: int, start: int, policy: str, voice_samples: Optional[int]) -> np.ndarray:
    n = int(info.num_frames)
    if policy == "shortest" or voice_samples is None:
        if start + num_dub > n:
            raise MediaError(f"The dub has {num_dub} frames from frame {start} but the original has {n}: compare a "
                             "dub with the video it was made from (and give --length for a looped or held dub).")
        return np.arange(start, start + num_dub, dtype=np.int64)
    from ..render.schedule import output_schedule

    sched, _ = output_schedule(n, float(info.fps), voice_samples, 0, policy)
    if start + num_dub > len(sched):
        raise MediaError(f"The dub has {num_dub} frames from frame {start} but the {policy} schedule of the voice "
                         f"has {len(sched)}: give the --range and --length the dub was made with.")
    return np.asarray(sched[start:start + num_dub], np.int64)


def dubbed_track(original, info, face: Optional[int] = None, track_cache_dir=None, speaker_cache_dir=None,
                 progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None):
    """The original's track of the face a dub changed, as the pipeline picks it: face `face`, else in each shot
    with several faces the one that speaks the clip's own sound (core.sync.asd.speaker, cached), else the main
    face. From the tracker's cache (tracked once when there is none)."""
    from ..faces.track import track_video

    ts = track_video(original, cache_dir=track_cache_dir, progress=progress, cancel=cancel)
    if not ts.tracks:
        raise NoFaceError(f"No face was found anywhere in {original}: nothing to check.")
    if face is not None:
        return ts.get(face)
    if len(ts.tracks) < 2:
        return ts.primary()
    from ..sync.asd.speaker import default_face
    from ..sync.lane_adapt import own_voice

    return default_face(original, info, ts, own_voice(original, info), cache_dir=speaker_cache_dir,
                        progress=progress, cancel=cancel).track


def run_qc(original, dub, *, voice=None, face: Optional[int] = None, reference=None, start: int = 0,
           length_policy: str = "shortest", mask=None, track=None, track_cache_dir=None, speaker_cache_dir=None,
           thresholds: Thresholds = Thresholds(), progress: Optional[ProgressFn] = None,
           cancel: Optional[CancelToken] = None) -> QCReport:
    """Check `dub` against the `original` it was made from. `voice`: the voice track (default: the dub's own
    sound; without either the open-mouth rule judges nothing). `track`: the original's FaceTrack (else
    `dubbed_track`: the face the pipeline dubs). `reference`: a clip whose mouth really said the voice (LMD)."""
    from .. import audio as audio_mod
    from .. import media
    from ..streams import prefetch

    info_o = media.probe(original, need_video=True)
    info_d = media.probe(dub, need_video=True)
    if (info_o.width, info_o.height) != (info_d.width, info_d.height):
        raise MediaError(f"The dub {Path(dub).name} is {info_d.width}x{info_d.height} but the original "
                         f"{Path(original).name} is {info_o.width}x{info_o.height}: compare a dub with the video "
                         "it was made from.")
    n = int(info_d.num_frames)
    if n <= 0:
        raise MediaError(f"The dub has no frames: {dub}")
    fps = float(info_d.fps)
    wav = None
    if voice is not None:
        wav = audio_mod.load_audio(voice)
    elif info_d.has_audio:
        wav = audio_mod.load_audio(dub)
    src = _schedule(info_o, n, int(start), length_policy, None if wav is None or voice is None else len(wav))
    silent = None
    if wav is not None:
        if voice is not None:   # the voice starts at output frame 0; the dub may be a range of it
            silent = ~audio_mod.voice_activity(wav, fps, int(start) + n)[int(start):]
        else:
            silent = ~audio_mod.voice_activity(wav, fps, n)
    if track is None:
        track = dubbed_track(original, info_o, face, track_cache_dir, speaker_cache_dir, progress, cancel)
    tn = len(track.present)
    idx = np.minimum(src, tn - 1)
    present = np.asarray(track.present, bool)[idx] & (src < tn)
    # Both decoded to BGR the way the product decodes (not luma straight from the decoder: two files whose colours
    # look the same can carry different Y values, e.g. BT.601 against BT.709 matrices; measured: 31 dB luma PSNR
    # for a clean copy that is 41 dB in BGR; and where the product's BGR round trip clipped colours outside RGB,
    # e.g. GRID's saturated blue backdrop, the Y planes differ where the pictures do not: a real dub's PSNR outside
    # the mask measured 37.6 dB from the planes against 45.1 in BGR, its seam flags 1.8% against 6.2%), by OpenCV's
    # in-process decoder where it is exact (`media.iter_frames(backend="auto")`: no pipe, ~2.5 ms CPU less a
    # 720p frame per video), each video in its own thread `prefetch_depth` frames ahead (the measures take twice
    # as long on silent frames, where the lips are fitted; the decoders go on meanwhile instead of waiting): the
    # two decoders and the measures run at once on the cores there are
    depth = prefetch_depth(info_o.width, info_o.height)
    orig_frames = prefetch(scheduled_frames(str(original), info_o, src), depth)
    dub_frames = prefetch(iter(media.iter_frames(dub, info_d, backend="auto")), depth)
    try:
        m = measure(orig_frames, dub_frames, track.landmarks[idx], present, track.boxes[idx],
                    silent, mask=mask, fit_all=reference is not None, num_frames=n,
                    open_gate=lambda op: open_level(op, thresholds),
                    fit_where=None if silent is None else judged_silence(silent, thresholds.silence_margin),
                    progress=progress, cancel=cancel)
    finally:
        orig_frames.close()
        dub_frames.close()
    f = make_flags(m, thresholds)
    d = None
    if reference is not None:
        from ..faces.track import track_video

        rts = track_video(reference, cache_dir=track_cache_dir, progress=progress, cancel=cancel)
        if not rts.tracks:
            raise NoFaceError(f"No face was found anywhere in the reference {reference}: no LMD.")
        rt = rts.primary()
        d = lmd(m.dub_landmarks, rt.landmarks, rt.present)
    return QCReport(num_frames=n, fps=fps, flags=f, judged=m.judged.copy(), summary=summarize(m, f, d, thresholds),
                    start=int(start), measures=m)


def scheduled_frames(path: str, info, schedule: np.ndarray):
    """The original's BGR frames in the dub's order: frame `schedule[k]` for k = 0, 1, ... A non-decreasing
    schedule (a whole clip or a range, shortest / trim / hold) is one decoding pass (`media.iter_frames`,
    OpenCV's decoder where exact; a repeated index repeats the frame, past the decodable end the last frame is
    held); loop and ping-pong come from the product's `SourceFrames`."""
    from .. import media
    from ..render.source import SourceFrames

    idx = np.asarray(schedule, np.int64)
    if len(idx) == 0:
        return
    if np.any(np.diff(idx) < 0):
        source = SourceFrames(path, info, idx)
        try:
            for _o, _s, f in source.iterate(np.arange(len(idx))):
                yield f
        finally:
            source.close()
        return
    it = iter(media.iter_frames(path, info, start=int(idx[0]), stop=int(idx[-1]) + 1, backend="auto"))
    cur_i, cur = int(idx[0]) - 1, None
    try:
        for s in idx:
            while cur_i < s:
                f = next(it, None)
                if f is None:                  # fewer frames than probed: hold the last one
                    if cur is None:
                        raise MediaError(f"Could not decode any frame from {path}")
                    cur_i = int(s)
                    break
                cur, cur_i = f, cur_i + 1
            yield cur
    finally:
        it.close()


PREFETCH_BYTES = 48 << 20    # per video: the decoded frames a check holds ahead of its measures (18 at 720p)


def prefetch_depth(width: int, height: int) -> int:
    """Frames each video is decoded ahead of the measures: `PREFETCH_BYTES` of BGR frames, 3 to 24."""
    return int(min(24, max(3, PREFETCH_BYTES // max(1, width * height * 3))))


def qc_for_settings(settings, output, track=None, progress: Optional[ProgressFn] = None,
                    cancel: Optional[CancelToken] = None) -> QCReport:
    """The report of a file the pipeline wrote with `settings` (its range and length policy; the voice is the
    file's own sound). `track`: the original's track as the dub used it (box fixes applied), else the cache's."""
    start = int(settings.frame_range[0]) if settings.frame_range else 0
    return run_qc(settings.video, output, start=start, length_policy=settings.length_policy, mask=settings.mask,
                  face=settings.face_track, track=track, track_cache_dir=settings.track_cache_dir,
                  speaker_cache_dir=getattr(settings, "speaker_cache_dir", None), progress=progress, cancel=cancel)


def write_csv(path, rep: QCReport) -> None:
    """Per-frame CSV, written atomically: frame (output frame), time_s, judged, one 0/1 column per kind, and the
    measures behind them (blur_ratio, seam_length, flicker_dub, flicker_orig, open_dub)."""
    from ..atomic import atomic_write

    m = rep.measures
    br = blur_ratio(m) if m is not None else np.full(rep.num_frames, np.nan)

    def val(key, i, digits=4):
        if m is None or not np.isfinite(m[key][i]):
            return ""
        return f"{float(m[key][i]):.{digits}f}"

    with atomic_write(Path(path).resolve(), newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "time_s", "judged", *KINDS, "blur_ratio", "seam_length", "flicker_dub", "flicker_orig",
                    "open_dub"])
        for i in range(rep.num_frames):
            fr = rep.start + i
            w.writerow([fr, f"{fr / rep.fps:.3f}", int(rep.judged[i]), *(int(rep.flags[k][i]) for k in KINDS),
                        "" if not np.isfinite(br[i]) else f"{br[i]:.4f}", val("seam", i), val("flicker_dub", i),
                        val("flicker_orig", i), val("open_dub", i)])
