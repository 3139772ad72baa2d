"""The app's one door into core/.

Everything the GUI needs from the core goes through here, so the widgets do not care which core module
provides it. Where a core module documented in docs/INTERFACES.md is not importable in this build, a thin
stand-in is used for the cheap parts (probe, frame access, audio loading, voice activity, mask outline) and
the expensive ones (tracking, scoring, dubbing) raise a readable `LipDubError` instead.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import numpy as np

from core.errors import LipDubError, MediaError, AudioError

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000


def _core(modname: str):
    import importlib

    try:
        return importlib.import_module(modname)
    except ImportError as exc:
        log.debug("core module %s unavailable: %s", modname, exc)
        return None


def missing_feature(what: str, module: str) -> LipDubError:
    return LipDubError(f"{what} is not available in this build ({module} is missing). "
                       "Update LipDub Studio or reinstall it.")


# ---- media ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Info:
    """Stand-in for core.media.MediaInfo (same field names)."""

    path: str
    has_video: bool
    has_audio: bool
    width: int
    height: int
    coded_width: int
    coded_height: int
    fps: float
    fps_fraction: Fraction
    num_frames: int
    duration: float
    rotation: int = 0
    sar: str = "1:1"
    pix_fmt: str = ""
    video_codec: str = ""
    is_vfr: bool = False
    audio_sample_rate: Optional[int] = None
    audio_channels: Optional[int] = None
    audio_codec: Optional[str] = None


def probe(path: str):
    media = _core("core.media")
    if media is not None and hasattr(media, "probe"):
        return media.probe(path)
    return _probe_fallback(path)


def _probe_fallback(path: str) -> _Info:
    exe = shutil.which("ffprobe")
    if exe is None:
        raise MediaError("ffprobe was not found: install ffmpeg.")
    r = subprocess.run([exe, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise MediaError(f"Cannot read {path}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'ffprobe failed'}")
    doc = json.loads(r.stdout or "{}")
    v = next((s for s in doc.get("streams", []) if s.get("codec_type") == "video"), None)
    a = next((s for s in doc.get("streams", []) if s.get("codec_type") == "audio"), None)
    dur = float(doc.get("format", {}).get("duration") or 0.0)
    if v is None:
        return _Info(str(path), False, a is not None, 0, 0, 0, 0, 0.0, Fraction(0), 0, dur,
                     audio_sample_rate=int(a["sample_rate"]) if a else None,
                     audio_channels=a.get("channels") if a else None, audio_codec=a.get("codec_name") if a else None)
    fr = Fraction(v.get("avg_frame_rate") or v.get("r_frame_rate") or "25/1")
    if fr == 0:
        fr = Fraction(v.get("r_frame_rate") or "25/1")
    vdur = float(v.get("duration") or dur)
    n = int(v.get("nb_frames") or 0) or int(round(vdur * float(fr)))
    w, h = int(v["width"]), int(v["height"])
    return _Info(str(path), True, a is not None, w, h, w, h, float(fr), fr, n, vdur or dur,
                 pix_fmt=v.get("pix_fmt", ""), video_codec=v.get("codec_name", ""),
                 audio_sample_rate=int(a["sample_rate"]) if a else None,
                 audio_channels=a.get("channels") if a else None, audio_codec=a.get("codec_name") if a else None)


class _CvReader:
    """Stand-in for core.media.FrameReader: OpenCV random access, sequential reads kept cheap."""

    def __init__(self, path: str):
        import cv2

        self._cv2 = cv2
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise MediaError(f"Cannot open the video {path}.")
        self._next = 0
        self._lock = threading.Lock()

    def read(self, index: int) -> np.ndarray:
        with self._lock:
            if index != self._next:
                if index < self._next or index - self._next > 12:
                    self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, index)
                else:
                    while self._next < index:
                        self._cap.grab()
                        self._next += 1
            ok, frame = self._cap.read()
            if not ok:
                raise MediaError(f"Cannot decode frame {index}.")
            self._next = index + 1
            return frame

    def close(self) -> None:
        self._cap.release()


def frame_reader(path: str):
    media = _core("core.media")
    if media is not None and hasattr(media, "FrameReader"):
        try:
            return media.FrameReader(path)
        except MediaError as exc:
            try:
                reader = _CvReader(path)
            except MediaError:
                raise exc from None
            log.warning("core.media.FrameReader failed on %s (%s); using OpenCV directly", path, exc)
            return reader
    return _CvReader(path)


def iter_frames(path: str, start: int = 0, stop: Optional[int] = None):
    """Streaming decode of frames start..stop-1 (BGR)."""
    media = _core("core.media")
    if media is not None and hasattr(media, "iter_frames"):
        yield from media.iter_frames(path, start=start, stop=stop)
        return
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if start:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        i = start
        while stop is None or i < stop:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
            i += 1
    finally:
        cap.release()


# ---- audio ------------------------------------------------------------------------------------------------
def load_audio(path: str) -> np.ndarray:
    audio = _core("core.audio")
    if audio is not None and hasattr(audio, "load_audio"):
        return audio.load_audio(path)
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise MediaError("ffmpeg was not found: install ffmpeg.")
    r = subprocess.run([exe, "-v", "error", "-nostdin", "-i", str(path), "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE),
                        "-f", "f32le", "-"], capture_output=True)
    if r.returncode != 0 or not r.stdout:
        raise AudioError(f"No audio could be read from {path}.")
    return np.frombuffer(r.stdout, np.float32).copy()


def voice_activity(wav: np.ndarray, fps: float, num_frames: int) -> np.ndarray:
    audio = _core("core.audio")
    if audio is not None and hasattr(audio, "voice_activity"):
        return np.asarray(audio.voice_activity(wav, fps, num_frames), bool)
    # stand-in: frame energy above an adaptive threshold
    spf = SAMPLE_RATE / fps
    out = np.zeros(num_frames, bool)
    if wav.size == 0:
        return out
    n = min(num_frames, int(math.ceil(len(wav) / spf)))
    idx = (np.arange(n + 1) * spf).astype(np.int64).clip(0, len(wav))
    sq = np.concatenate([[0.0], np.cumsum(wav.astype(np.float64) ** 2)])
    e = (sq[idx[1:]] - sq[idx[:-1]]) / np.maximum(1, idx[1:] - idx[:-1])
    db = 10 * np.log10(e + 1e-10)
    thr = max(np.percentile(db, 10) + 15.0, db.max() - 40.0)
    out[:n] = db > thr
    return out


# ---- faces, scoring, mask ---------------------------------------------------------------------------------
def track_video(path: str, progress=None, cancel=None, cache_dir=None):
    track = _core("core.faces.track")
    if track is None:
        raise missing_feature("Face tracking", "core.faces.track")
    kw = {}
    if cache_dir is not None:
        kw["cache_dir"] = cache_dir
    return track.track_video(path, progress=progress, cancel=cancel, **kw)


def fit_voice(wav: np.ndarray, num_frames: int, fps: float) -> np.ndarray:
    """The voice cut or zero-padded to `num_frames` video frames (what scoring against the video needs)."""
    n = int(round(num_frames * SAMPLE_RATE / fps))
    if len(wav) >= n:
        return wav[:n]
    return np.concatenate([wav, np.zeros(n - len(wav), np.float32)])


def score(video: str, wav: np.ndarray, track, *, models_dir=None, device="cpu", progress=None, cancel=None):
    scoring = _core("core.scoring")
    if scoring is None:
        raise missing_feature("Sync scoring", "core.scoring")
    scorer = scoring.get_scorer("auto", models_dir=models_dir, device=device)
    report = scoring.score_clip(video, wav, track, scorer, progress=progress, cancel=cancel)
    thr = getattr(scorer, "window_threshold", None)
    if thr is not None:
        LOW_THRESHOLDS[str(report.scorer)] = float(thr)
    return report


# scorer name -> confidence below which a window counts as out of sync (from the scorer's model card when it
# has one; SyncNet-style confidence otherwise)
LOW_THRESHOLDS: dict = {}
DEFAULT_LOW_THRESHOLD = 2.0


def low_threshold(report) -> float:
    return LOW_THRESHOLDS.get(str(getattr(report, "scorer", "")), DEFAULT_LOW_THRESHOLD)


def mask_outline(frame_hw, landmarks: np.ndarray, mask_settings, polygons=()) -> Optional[np.ndarray]:
    """Outline (K, 2) float32 of the blend mask at the half-strength level, in frame coordinates, including
    the editor's drawn areas (`core.edits.MaskPolygon`s) when the core supports them."""
    import cv2

    if landmarks is None or not np.all(np.isfinite(landmarks)):
        return None
    compose = _core("core.compose")
    if compose is not None and hasattr(compose, "lower_face_mask"):
        if polygons:
            try:
                mask, roi = compose.lower_face_mask(frame_hw, landmarks, mask_settings, polygons=polygons)
            except TypeError:   # an older core without drawn areas
                mask, roi = compose.lower_face_mask(frame_hw, landmarks, mask_settings)
        else:
            mask, roi = compose.lower_face_mask(frame_hw, landmarks, mask_settings)
        mask = np.asarray(mask)
        if mask.shape[:2] == tuple(frame_hw[:2]):
            x0, y0 = 0, 0
        else:  # mask covers the roi only
            x0, y0 = int(roi[0]), int(roi[1])
        binary = (mask >= 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            return None
        c = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float32)
        c[:, 0] += x0
        c[:, 1] += y0
        return c
    # stand-in: hull of the lower jaw and the nose base, grown by the dilation setting
    pts = landmarks[list(range(2, 15)) + [31, 32, 33, 34, 35]]
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)
    iod = float(np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0)))
    c = hull.mean(0)
    d = hull - c
    r = np.linalg.norm(d, axis=1, keepdims=True) + 1e-6
    return (hull + d / r * mask_settings.dilation * iod).astype(np.float32)


# ---- pipeline ---------------------------------------------------------------------------------------------
def pipeline():
    p = _core("core.pipeline")
    if p is None:
        raise missing_feature("Dubbing", "core.pipeline")
    return p


def registry():
    """core.models.registry or None."""
    return _core("core.models.registry")


def default_models_dir() -> str:
    reg = registry()
    if reg is not None and hasattr(reg, "models_dir"):
        try:
            return str(reg.models_dir())
        except Exception:  # noqa: BLE001 - a bad env var must not break the settings dialog
            pass
    import platformdirs

    return str(platformdirs.user_data_dir("lipdub")) + "/models"
