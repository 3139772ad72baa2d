"""What a media file holds (`probe` -> `MediaInfo`), through ffprobe or, without it, `ffmpeg -i`."""
from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import AudioError, FFmpegMissingError, MediaError
from .tools import INSTALL_HINT, PathLike, _popen_kwargs, ffmpeg_path, ffprobe_path

log = logging.getLogger(__name__)

PROBE_PACKETS = 400            # packets read by probe() to detect a variable frame rate
PROBE_TIMEOUT_S = 120.0
VFR_JITTER = 0.25              # a frame interval that differs from the median by more than this fraction is irregular
VFR_IRREGULAR_SHARE = 0.05     # ... and more than this share of irregular intervals makes the stream VFR
VFR_RATE_MISMATCH = 0.002      # r_frame_rate vs avg_frame_rate relative difference that makes a stream VFR
STANDARD_RATES = tuple(Fraction(x) for x in (
    "24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60", "15", "12.5", "120"))
NOT_MEDIA_FORMATS = ("tty",)  # ffmpeg plays any text file as ANSI art: not a user's video


@dataclass(frozen=True)
class MediaInfo:
    path: str
    has_video: bool
    has_audio: bool
    width: int                 # display size: stored pixels after rotation (SAR not applied, see `sar`)
    height: int
    coded_width: int           # stored size before rotation
    coded_height: int
    fps: float                 # e.g. 29.97002997
    fps_fraction: Fraction     # e.g. 30000/1001 (the average rate for VFR input, snapped to a standard rate)
    num_frames: int            # frames the decoder yields at constant `fps` (iter_frames yields exactly this)
    duration: float            # seconds: num_frames / fps for video, else the audio duration
    rotation: int              # 0/90/180/270, clockwise rotation applied for display
    sar: str                   # pixel aspect ratio in display orientation, "1:1"
    pix_fmt: str
    video_codec: str
    is_vfr: bool
    audio_sample_rate: Optional[int]
    audio_channels: Optional[int]
    audio_codec: Optional[str]
    # additions beyond INTERFACES.md
    audio_duration: Optional[float] = None
    num_audio_streams: int = 0
    video_stream_index: Optional[int] = None   # absolute stream index (for -map 0:N)
    audio_stream_index: Optional[int] = None
    video_start: float = 0.0                   # first video timestamp (s, absolute)
    format_start: float = 0.0                  # container start time (s)
    format_name: str = ""
    probed_with: str = "ffprobe"               # or "ffmpeg" (fallback parser when ffprobe is absent)
    declared_frames: Optional[int] = None      # the video frame count the container's header announces, if any
    declared_audio_duration: Optional[float] = None   # seconds of PCM sound the header announces (AVI, MOV), if any

    @property
    def size(self) -> Tuple[int, int]:
        return self.width, self.height


def build_probe_args(ffprobe: str, path: PathLike, packets: int = PROBE_PACKETS) -> List[str]:
    """ffprobe JSON call: format + streams (with side data) + the first `packets` packets' timestamps."""
    return [ffprobe, "-v", "error", "-hide_banner", "-print_format", "json", "-show_format", "-show_streams",
            "-show_entries", "packet=stream_index,pts,duration", "-read_intervals", f"%+#{int(packets)}",
            str(path)]


def _check_input_file(path: PathLike, what: str = "media") -> Path:
    p = Path(path)
    if not p.exists():
        raise MediaError(f"The {what} file does not exist: {p}. Check the path.")
    if p.is_dir():
        raise MediaError(f"{p} is a folder, not a {what} file. Choose a file.")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            fh.read(1)
    except OSError as e:
        raise MediaError(f"The {what} file cannot be read: {p} ({e.strerror or e}). Check its permissions.") from None
    if size == 0:
        raise MediaError(f"The {what} file is empty (0 bytes): {p}. Choose a complete file.")
    return p


_PROBED: "OrderedDict[tuple, MediaInfo]" = OrderedDict()   # probe()'s answers by file identity (see probe)
_PROBED_MAX = 32
_PROBED_LOCK = threading.Lock()


def _probe_key(path: PathLike) -> Optional[tuple]:
    try:
        exe = ffprobe_path()
        st = os.stat(path)
    except (OSError, FFmpegMissingError):
        return None
    return exe, str(path), os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def probe(path: PathLike, *, need_video: bool = False, need_audio: bool = False) -> MediaInfo:
    """Describe a media file. MediaError for a missing/unreadable/empty/non-media file or zero-length media;
    with need_video / need_audio also when that stream is missing (AudioError for audio).
    A file this process probed before with ffprobe and that is unchanged since (same size, modification and change
    time, inode) is described from memory: a dub probes its inputs from several stages, each time a process start."""
    key = _probe_key(path)
    with _PROBED_LOCK:
        info = _PROBED.get(key) if key is not None else None
    if info is None:
        info = _probe_file(path)
        if key is not None and info.probed_with == "ffprobe" and _probe_key(path) == key:   # unchanged meanwhile
            with _PROBED_LOCK:
                _PROBED[key] = info
                while len(_PROBED) > _PROBED_MAX:
                    _PROBED.popitem(last=False)
    if need_video:
        require_video(info)
    if need_audio and not info.has_audio:
        raise AudioError(f"{info.path} has no audio stream. Choose a file with sound.")
    return info


def _probe_file(path: PathLike, *, need_video: bool = False, need_audio: bool = False) -> MediaInfo:
    p = _check_input_file(path)
    try:
        exe = ffprobe_path()
    except FFmpegMissingError:
        log.info("ffprobe not found; describing %s by parsing 'ffmpeg -i'", p)
        info = _probe_with_ffmpeg(p)
    else:
        try:
            r = subprocess.run(build_probe_args(exe, p), capture_output=True, timeout=PROBE_TIMEOUT_S,
                               **_popen_kwargs())
        except subprocess.TimeoutExpired:
            raise MediaError(f"Reading {p} took longer than {PROBE_TIMEOUT_S:.0f} s; copy it to a local disk "
                             "and try again.") from None
        except OSError as e:
            raise FFmpegMissingError(f"ffprobe ({exe}) cannot be run ({e}): {INSTALL_HINT}.") from None
        err = r.stderr.decode("utf-8", "replace").strip()
        try:
            doc = json.loads(r.stdout.decode("utf-8", "replace") or "{}")
        except ValueError:
            doc = {}
        if r.returncode != 0 or not doc.get("streams"):
            reason = err.splitlines()[-1] if err else "no audio or video stream found"
            raise MediaError(f"{p} is not a readable video or audio file ({reason}). Choose a media file "
                             "(e.g. .mp4, .mov, .wav).")
        if str((doc.get("format") or {}).get("format_name", "")) in NOT_MEDIA_FORMATS:
            raise MediaError(f"{p} is a text file, not a video or audio file. Choose a media file "
                             "(e.g. .mp4, .mov, .wav).")
        info = _info_from_ffprobe(str(p), doc)
    if not info.has_video and not info.has_audio:
        raise MediaError(f"{p} has no playable video or audio (zero-length media). Choose another file.")
    if need_video:
        require_video(info)
    if need_audio and not info.has_audio:
        raise AudioError(f"{p} has no audio stream. Choose a file with sound.")
    return info


def require_video(info: MediaInfo) -> MediaInfo:
    if not info.has_video:
        raise MediaError(f"{info.path} has no video stream (or no video frames). Choose a video file.")
    return info


def _frac(s) -> Optional[Fraction]:
    try:
        f = Fraction(str(s))
    except (ValueError, ZeroDivisionError, TypeError):
        return None
    return f if f > 0 else None


def _float(s) -> Optional[float]:
    try:
        v = float(s)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _parse_hms(s) -> Optional[float]:
    m = re.match(r"^(\d+):(\d+):(\d+(?:\.\d+)?)$", str(s or "").strip())
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def snap_rate(rate: Fraction, tolerance: float = 0.01) -> Fraction:
    """The nearest standard frame rate (23.976, 25, 29.97, 30, ...) within `tolerance` (relative), else `rate`
    with a denominator of at most 1001."""
    best = min(STANDARD_RATES, key=lambda s: abs(float(s) - float(rate)))
    if abs(float(best) / float(rate) - 1) <= tolerance:
        return best
    return rate.limit_denominator(1001)


def _rotation_from_stream(s: dict) -> int:
    """Clockwise display rotation. ffprobe reports the display matrix angle counter-clockwise ("rotation": -90
    means: rotate 90 degrees clockwise to display), the legacy `rotate` tag is clockwise."""
    for sd in s.get("side_data_list") or []:
        if "rotation" in sd:
            ccw = _float(sd.get("rotation"))
            if ccw is not None:
                return int(round(-ccw / 90.0)) * 90 % 360
    tag = (s.get("tags") or {}).get("rotate")
    v = _float(tag)
    if v is not None:
        return int(round(v / 90.0)) * 90 % 360
    return 0


def _sar_str(sar: Optional[str]) -> Tuple[int, int]:
    m = re.match(r"^(\d+):(\d+)$", str(sar or ""))
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        return 1, 1
    f = Fraction(int(m.group(1)), int(m.group(2)))
    return f.numerator, f.denominator


def _detect_vfr(r_rate: Optional[Fraction], avg_rate: Optional[Fraction], pts: Sequence[int]) -> bool:
    if r_rate and avg_rate and abs(float(r_rate) / float(avg_rate) - 1) > VFR_RATE_MISMATCH:
        return True
    t = np.unique(np.asarray(pts, np.int64))
    if t.size < 12:
        return False
    d = np.diff(t)[:-1].astype(np.float64)    # the last interval is often cut short by the container
    med = float(np.median(d))
    if med <= 0:
        return False
    irregular = np.abs(d - med) > max(VFR_JITTER * med, 1.0)
    return bool(irregular.mean() > VFR_IRREGULAR_SHARE)


def _info_from_ffprobe(path: str, doc: dict) -> MediaInfo:
    streams = doc.get("streams") or []
    fmt = doc.get("format") or {}
    vids = [s for s in streams if s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")]       # cover art is not video
    auds = [s for s in streams if s.get("codec_type") == "audio"]
    v = vids[0] if vids else None
    a = auds[0] if auds else None
    fmt_start = _float(fmt.get("start_time")) or 0.0
    fmt_dur = _float(fmt.get("duration"))

    a_dur = None
    if a is not None:
        a_start = _float(a.get("start_time"))
        a_start = fmt_start if a_start is None else a_start
        a_dur = _float(a.get("duration"))
        tag_end = _parse_hms((a.get("tags") or {}).get("DURATION"))   # Matroska: end timestamp of the track
        if a_dur is None and tag_end is not None:
            a_dur = max(0.0, min(tag_end - a_start, fmt_dur if fmt_dur is not None else math.inf))
        if a_dur is None and fmt_dur is not None:
            a_dur = max(0.0, fmt_dur - (a_start - fmt_start))
        if a_dur is not None and a_dur <= 0:
            a_dur = 0.0
    has_audio = a is not None and (a_dur is None or a_dur > 0) and int(a.get("sample_rate") or 0) > 0
    declared_audio = None
    if has_audio and str(a.get("codec_name", "")).startswith("pcm_") and str(a.get("nb_frames", "")).isdigit():
        declared_audio = int(a["nb_frames"]) / float(a["sample_rate"])     # a PCM "frame" is one sample

    has_video = False
    nb = None
    width = height = cw = ch = 0
    rate = Fraction(0)
    num_frames = 0
    rotation = 0
    sar = "1:1"
    is_vfr = False
    v_start = fmt_start
    if v is not None:
        cw, ch = int(v.get("width") or 0), int(v.get("height") or 0)
        r_rate, avg_rate = _frac(v.get("r_frame_rate")), _frac(v.get("avg_frame_rate"))
        tb = _frac(v.get("time_base"))
        pts = [pk["pts"] for pk in doc.get("packets") or []
               if pk.get("stream_index") == v.get("index") and isinstance(pk.get("pts"), int)]
        is_vfr = _detect_vfr(r_rate, avg_rate, pts)
        if is_vfr:
            rate = snap_rate(avg_rate or r_rate or Fraction(25))
        else:
            rate = r_rate or avg_rate or Fraction(25)
            if r_rate and r_rate > 1000 and avg_rate:     # bogus r_frame_rate (e.g. 90000/1 from some muxers)
                rate = avg_rate
            if rate.denominator > 1001:
                rate = snap_rate(rate)
        v_start = _float(v.get("start_time"))
        if v_start is None:
            v_start = fmt_start
        v_dur = _float(v.get("duration"))
        tag_end = _parse_hms((v.get("tags") or {}).get("DURATION"))   # Matroska: end timestamp of the track
        if v_dur is None and tag_end is not None:
            v_dur = max(0.0, tag_end - v_start)
        if v_dur is None and fmt_dur is not None:
            v_dur = max(0.0, fmt_dur - (v_start - fmt_start))
        est = int(round((v_dur or 0.0) * rate))
        nb = int(v["nb_frames"]) if str(v.get("nb_frames", "")).isdigit() else None
        if nb is not None and not is_vfr and abs(nb - est) <= 2:
            num_frames = nb
        else:
            num_frames = est
        if tb is None:
            pass
        rotation = _rotation_from_stream(v)
        sn, sd = _sar_str(v.get("sample_aspect_ratio"))
        if rotation in (90, 270):
            width, height, sn, sd = ch, cw, sd, sn
        else:
            width, height = cw, ch
        sar = f"{sn}:{sd}"
        has_video = cw > 0 and ch > 0 and num_frames > 0
        if not has_video:
            log.info("%s: video stream without frames ignored", path)

    if has_video:
        duration = num_frames / float(rate)
    else:
        duration = a_dur if a_dur is not None else (fmt_dur or 0.0)
    return MediaInfo(
        path=path, has_video=has_video, has_audio=has_audio,
        width=width if has_video else 0, height=height if has_video else 0,
        coded_width=cw if has_video else 0, coded_height=ch if has_video else 0,
        fps=float(rate) if has_video else 0.0, fps_fraction=rate if has_video else Fraction(0),
        num_frames=num_frames if has_video else 0, duration=float(duration),
        rotation=rotation if has_video else 0, sar=sar, pix_fmt=(v or {}).get("pix_fmt", "") if has_video else "",
        video_codec=(v or {}).get("codec_name", "") if has_video else "", is_vfr=bool(is_vfr and has_video),
        audio_sample_rate=int(a["sample_rate"]) if has_audio else None,
        audio_channels=int(a.get("channels") or 0) or None if has_audio else None,
        audio_codec=a.get("codec_name") if has_audio else None,
        audio_duration=a_dur if has_audio else None, num_audio_streams=len(auds),
        video_stream_index=int(v["index"]) if has_video else None,
        audio_stream_index=int(a["index"]) if has_audio else None,
        video_start=float(v_start) if has_video else 0.0, format_start=float(fmt_start),
        format_name=str(fmt.get("format_name", "")), probed_with="ffprobe",
        declared_frames=nb if has_video else None, declared_audio_duration=declared_audio,
    )


# --- fallback: parse `ffmpeg -i` (when ffprobe is not installed, e.g. imageio-ffmpeg's binary only) ---------
_RE_DURATION = re.compile(r"Duration:\s*(\d+:\d+:\d+(?:\.\d+)?|N/A)(?:,\s*start:\s*(-?[\d.]+))?")
_RE_STREAM = re.compile(r"^\s*Stream #0:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?:\s*(Video|Audio|Data|Subtitle):\s*(.*)$")
_RE_INPUT = re.compile(r"^Input #0,\s*([^,]+(?:,[^ ,]+)*),\s*from")


def build_info_args(ffmpeg: str, path: PathLike) -> List[str]:
    return [ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)]


def parse_ffmpeg_info(path: str, text: str) -> MediaInfo:
    """MediaInfo from the stderr of ``ffmpeg -i FILE`` (no VFR detection; frame count from the duration)."""
    lines = text.splitlines()
    fmt_name = ""
    duration = None
    fmt_start = 0.0
    video = audio = None
    n_audio = 0
    rotation = 0
    cur = None
    for ln in lines:
        m = _RE_INPUT.match(ln)
        if m:
            fmt_name = m.group(1)
            continue
        m = _RE_DURATION.search(ln)
        if m and duration is None:
            duration = _parse_hms(m.group(1))
            fmt_start = _float(m.group(2)) or 0.0
            continue
        m = _RE_STREAM.match(ln)
        if m:
            idx, kind, rest = int(m.group(1)), m.group(2), m.group(3)
            cur = None
            if kind == "Video" and video is None and "attached pic" not in rest:
                video = (idx, rest)
                cur = "video"
            elif kind == "Audio":
                n_audio += 1
                if audio is None:
                    audio = (idx, rest)
            continue
        if cur == "video":
            m = re.search(r"rotation of (-?[\d.]+) degrees", ln)
            if m:
                rotation = int(round(-float(m.group(1)) / 90.0)) * 90 % 360
            m = re.match(r"^\s*rotate\s*:\s*(-?\d+)", ln)
            if m and not rotation:
                rotation = int(round(float(m.group(1)) / 90.0)) * 90 % 360
    has_video = False
    cw = ch = 0
    rate = Fraction(0)
    sar = "1:1"
    pix_fmt = codec = ""
    if video is not None:
        rest = video[1]
        codec = rest.split()[0].strip(",")
        m = re.search(r",\s*(\d+)x(\d+)", rest)
        if m:
            cw, ch = int(m.group(1)), int(m.group(2))
        m = re.search(r"SAR (\d+):(\d+)", rest)
        sn, sd = _sar_str(f"{m.group(1)}:{m.group(2)}") if m else (1, 1)
        m = re.search(r"([\d.]+)k? fps", rest) or re.search(r"([\d.]+)k? tbr", rest)
        if m:
            rate = snap_rate(Fraction(m.group(1)), tolerance=0.001)
        parts = [x.strip() for x in rest.split(",")]
        if len(parts) > 1:
            pix_fmt = parts[1].split("(")[0].strip()
        if rotation in (90, 270):
            sn, sd = sd, sn
        sar = f"{sn}:{sd}"
        has_video = cw > 0 and ch > 0 and rate > 0 and (duration or 0) > 0
    num_frames = int(round((duration or 0.0) * rate)) if has_video else 0
    has_video = has_video and num_frames > 0
    a_rate = a_ch = None
    a_codec = None
    if audio is not None:
        rest = audio[1]
        a_codec = rest.split()[0].strip(",")
        m = re.search(r"(\d+) Hz", rest)
        a_rate = int(m.group(1)) if m else None
        m = re.search(r"Hz,\s*([^,]+)", rest)
        layout = m.group(1).strip() if m else ""
        a_ch = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "5.1(side)": 6,
                "7.1": 8}.get(layout)
        if a_ch is None:
            m = re.match(r"(\d+) channels", layout)
            a_ch = int(m.group(1)) if m else None
    has_audio = audio is not None and bool(a_rate)
    w, h = (ch, cw) if rotation in (90, 270) else (cw, ch)
    return MediaInfo(
        path=path, has_video=has_video, has_audio=has_audio, width=w if has_video else 0,
        height=h if has_video else 0, coded_width=cw if has_video else 0, coded_height=ch if has_video else 0,
        fps=float(rate) if has_video else 0.0, fps_fraction=rate if has_video else Fraction(0),
        num_frames=num_frames, duration=(num_frames / float(rate)) if has_video else float(duration or 0.0),
        rotation=rotation if has_video else 0, sar=sar, pix_fmt=pix_fmt if has_video else "",
        video_codec=codec if has_video else "", is_vfr=False,
        audio_sample_rate=a_rate if has_audio else None, audio_channels=a_ch if has_audio else None,
        audio_codec=a_codec if has_audio else None,
        audio_duration=float(duration) if has_audio and duration else None, num_audio_streams=n_audio,
        video_stream_index=video[0] if has_video else None, audio_stream_index=audio[0] if has_audio else None,
        video_start=fmt_start if has_video else 0.0, format_start=fmt_start, format_name=fmt_name,
        probed_with="ffmpeg",
    )


def _probe_with_ffmpeg(p: Path) -> MediaInfo:
    exe = ffmpeg_path()
    try:
        r = subprocess.run(build_info_args(exe, p), capture_output=True, timeout=PROBE_TIMEOUT_S,
                           **_popen_kwargs())
    except subprocess.TimeoutExpired:
        raise MediaError(f"Reading {p} took longer than {PROBE_TIMEOUT_S:.0f} s; copy it to a local disk.") from None
    text = r.stderr.decode("utf-8", "replace")
    if "Stream #0" not in text:
        last = [ln for ln in text.strip().splitlines() if ln.strip()]
        reason = last[-1].strip() if last else "no audio or video stream found"
        raise MediaError(f"{p} is not a readable video or audio file ({reason}). Choose a media file.")
    return parse_ffmpeg_info(str(p), text)


