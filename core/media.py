"""Video/audio I/O through the ffmpeg and ffprobe command-line tools, streaming (never a whole video in RAM).

Conventions (see docs/INTERFACES.md):
- Frames are BGR uint8 ``(H, W, 3)`` in *display orientation*: ffmpeg's autorotate applies the rotation
  metadata (display matrix / ``rotate`` tag) on decode. Pixels are **not** resampled for a non-square SAR: a
  frame holds the stored pixels (rotated); ``MediaInfo.sar`` is the pixel aspect ratio in display orientation
  and ``VideoWriter`` writes it back, so anamorphic video stays anamorphic.
- Frame ``i`` is the ``i``-th frame of the video at the constant rate ``MediaInfo.fps_fraction``. A constant
  frame rate (CFR) input is decoded frame for frame (``-fps_mode passthrough``). A variable frame rate (VFR)
  input is resampled to its average rate with ffmpeg's ``fps`` filter (round to nearest, absolute time grid,
  ``-copyts``). Either way a decode yields exactly ``MediaInfo.num_frames`` frames: if the decoder stops short
  (e.g. a corrupt tail), the last decoded frame is repeated; surplus frames are dropped.
- Random access (``FrameReader``) uses OpenCV's in-process FFmpeg decoder for CFR MP4/MOV/MKV/WebM/AVI files
  (a seek costs one decode from the previous key frame, no process start) and falls back to an ffmpeg pipe that
  is restarted at each long seek (exact for every input, slower) otherwise.

Writing (``VideoWriter``): frames go to ``ffmpeg -f rawvideo`` -> libx264 yuv420p (BT.709 matrix, limited range,
tagged) in a hidden temporary file next to the target; ``close()`` then muxes the audio (AAC, stream copy of the
video, explicit ``-map``) into a second temporary file and ``os.replace``s it onto the target. ``abort()``,
an exception inside ``with`` or a ``CancelledError`` delete the temporary files and never touch the target.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .atomic import new_file_mode, temporary_beside
from .errors import AudioError, FFmpegMissingError, MediaError, OutputError

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

INSTALL_HINT = ("install FFmpeg (Debian/Ubuntu: 'sudo apt install ffmpeg', macOS: 'brew install ffmpeg', "
                "Windows: 'winget install ffmpeg') and make sure it is on PATH, or set $LIPDUB_FFMPEG/$LIPDUB_FFPROBE")
PROBE_PACKETS = 400            # packets read by probe() to detect a variable frame rate
PROBE_TIMEOUT_S = 120.0
VFR_JITTER = 0.25              # a frame interval that differs from the median by more than this fraction is irregular
VFR_IRREGULAR_SHARE = 0.05     # ... and more than this share of irregular intervals makes the stream VFR
VFR_RATE_MISMATCH = 0.002      # r_frame_rate vs avg_frame_rate relative difference that makes a stream VFR
STANDARD_RATES = tuple(Fraction(x) for x in (
    "24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60", "15", "12.5", "120"))
CV2_CONTAINERS = ("mov", "mp4", "matroska", "webm", "avi")
NOT_MEDIA_FORMATS = ("tty",)  # ffmpeg plays any text file as ANSI art: not a user's video
SUPPORTED_OUTPUT_EXT = (".mp4", ".mov", ".m4v", ".mkv")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")  # x264


# ---------------------------------------------------------------------------------------------------------
# tools
# ---------------------------------------------------------------------------------------------------------
def ffmpeg_path() -> str:
    """The ffmpeg executable: $LIPDUB_FFMPEG, else ffmpeg on PATH, else imageio-ffmpeg's bundled binary."""
    env = os.environ.get("LIPDUB_FFMPEG")
    if env:
        if Path(env).is_file():
            return env
        raise FFmpegMissingError(f"$LIPDUB_FFMPEG points to {env}, which does not exist; fix it or unset it.")
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and Path(exe).is_file():
            return exe
    except Exception:  # not installed, or no binary for this platform
        pass
    raise FFmpegMissingError(f"ffmpeg was not found: {INSTALL_HINT}.")


def ffprobe_path() -> str:
    """The ffprobe executable: $LIPDUB_FFPROBE, else ffprobe on PATH, else next to ffmpeg.

    Raises FFmpegMissingError when there is none (``probe`` then falls back to parsing ``ffmpeg -i``)."""
    env = os.environ.get("LIPDUB_FFPROBE")
    if env:
        if Path(env).is_file():
            return env
        raise FFmpegMissingError(f"$LIPDUB_FFPROBE points to {env}, which does not exist; fix it or unset it.")
    exe = shutil.which("ffprobe")
    if exe:
        return exe
    try:
        ff = Path(ffmpeg_path())
        cand = ff.with_name(ff.name.replace("ffmpeg", "ffprobe"))
        if cand != ff and cand.is_file():
            return str(cand)
    except FFmpegMissingError:
        pass
    raise FFmpegMissingError(f"ffprobe was not found: {INSTALL_HINT}.")


_VERSION_CACHE: dict = {}


def ffmpeg_version(exe: Optional[str] = None) -> Tuple[int, int]:
    """(major, minor) of an ffmpeg binary; git builds without a release number count as (99, 0)."""
    exe = exe or ffmpeg_path()
    if exe not in _VERSION_CACHE:
        try:
            out = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True,
                                 timeout=30, **_popen_kwargs()).stdout
        except (OSError, subprocess.SubprocessError) as e:
            raise FFmpegMissingError(f"{exe} cannot be run ({e}): {INSTALL_HINT}.") from None
        m = re.search(r"version\s+n?(\d+)\.(\d+)", out)
        _VERSION_CACHE[exe] = (int(m.group(1)), int(m.group(2))) if m else (99, 0)
    return _VERSION_CACHE[exe]


def _popen_kwargs() -> dict:
    if sys.platform == "win32":  # no console window flashing up from the GUI
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
    return {}


# ---------------------------------------------------------------------------------------------------------
# probe
# ---------------------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------------------------
def _fps_mode_args(mode: str, version: Tuple[int, int]) -> List[str]:
    if version >= (5, 1):
        return ["-fps_mode", mode]
    return ["-vsync", {"passthrough": "0", "cfr": "1", "vfr": "2"}[mode]]


def _frame_time(info: MediaInfo, index: float) -> Fraction:
    return Fraction(index) / info.fps_fraction


def _grid_origin(info: MediaInfo) -> int:
    """Output slot of the first VFR frame on the absolute 1/fps grid (what ffmpeg's fps filter computes)."""
    x = Fraction(info.video_start).limit_denominator(10 ** 9) * info.fps_fraction
    return int(math.floor(x + Fraction(1, 2))) if x >= 0 else -int(math.floor(-x + Fraction(1, 2)))


def build_decode_args(ffmpeg: str, path: PathLike, info: MediaInfo, start: int = 0,
                      version: Tuple[int, int] = (99, 0), seek_margin_s: float = 2.0) -> List[str]:
    """ffmpeg arguments that write BGR24 frames `start`, `start+1`, ... (display orientation) to stdout.

    Timestamps stay absolute (-copyts). CFR: every decoded frame is passed through. VFR: ffmpeg's fps filter
    resamples to `fps` on the absolute 1/fps grid. A start > 0 seeks (key frame) `seek_margin_s` before the
    target, so that broken leading pictures of an open GOP (MPEG-1/2) fall before it, and a select filter drops
    everything earlier than half a frame before frame `start`."""
    if info.video_stream_index is None:
        raise MediaError(f"{path} has no video stream. Choose a video file.")
    args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"]
    vf: List[str] = []
    fr = info.fps_fraction
    if info.is_vfr:
        origin = _grid_origin(info)
        target = float(_frame_time(info, origin + start))              # absolute time of output frame `start`
        threshold = float(_frame_time(info, origin + start - 0.5))
        vf.append(f"fps=fps={fr.numerator}/{fr.denominator}:round=near")
    else:
        target = info.video_start + float(_frame_time(info, start))
        threshold = info.video_start + float(_frame_time(info, start - 0.5))
    if start > 0:
        t = target - info.format_start - seek_margin_s
        if t > 0:
            args += ["-ss", f"{t:.6f}", "-noaccurate_seek"]
        vf.append(f"select='gte(t\\,{threshold:.6f})'")
    args += ["-copyts"]
    args += ["-i", str(path), "-map", f"0:{info.video_stream_index}", "-an", "-sn", "-dn"]
    if vf:
        args += ["-vf", ",".join(vf)]
    args += _fps_mode_args("passthrough", version)
    args += ["-pix_fmt", "bgr24", "-f", "rawvideo", "pipe:1"]
    return args


class _Proc:
    """An ffmpeg child process with a stderr-draining thread and clean shutdown."""

    def __init__(self, args: List[str], *, stdin=False, stdout=True):
        self.args = args
        try:
            self.p = subprocess.Popen(args, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                      stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, **_popen_kwargs())
        except OSError as e:
            raise FFmpegMissingError(f"{args[0]} cannot be run ({e}): {INSTALL_HINT}.") from None
        self._err: deque = deque(maxlen=40)
        self._t = threading.Thread(target=self._drain, daemon=True)
        self._t.start()

    def _drain(self) -> None:
        try:
            for line in iter(self.p.stderr.readline, b""):
                self._err.append(line.decode("utf-8", "replace").rstrip())
        except (OSError, ValueError):
            pass

    def stderr_tail(self, n: int = 1) -> str:
        self._t.join(timeout=2)
        lines = [ln for ln in self._err if ln.strip()]
        return " | ".join(lines[-n:])

    def read_exact(self, n: int) -> Optional[bytearray]:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.p.stdout.readinto(view[got:])
            if not k:
                return None
            got += k
        return buf

    def wait(self, timeout: Optional[float] = None) -> int:
        return self.p.wait(timeout=timeout)

    def close(self) -> None:
        """Stop the process (if still running) and release its pipes; safe to call twice."""
        p = self.p
        for f in (p.stdin, p.stdout):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._t.join(timeout=2)
        if p.stderr is not None and not self._t.is_alive():
            try:
                p.stderr.close()
            except OSError:
                pass


_ON_GRID: set = set()      # (real path, size, mtime) of CFR files with holes inside: decoded on their time grid


def _grid_key(path: PathLike) -> Optional[tuple]:
    ident = _file_identity(path)
    return None if ident is None else (os.path.realpath(path), *ident)


def decode_on_time_grid(path: PathLike) -> None:
    """From now on (in this process) decode `path`, as it is now (size, modification time), on its time grid as a
    VFR file is: each output frame is the picture at its time, a hole inside the clip is filled with the picture
    before it instead of pulling every later frame early. `core.media_damage.scan_damage` calls it when a CFR clip
    has frames missing before its last decoded one; every decode of the file (iter_frames, FrameReader) follows."""
    key = _grid_key(path)
    if key is not None:
        _ON_GRID.add(key)


def _resolve_info(path: PathLike, info: Optional[MediaInfo]) -> MediaInfo:
    if info is None:
        info = probe(path)
    info = require_video(info)
    if _ON_GRID and not info.is_vfr and _grid_key(path) in _ON_GRID:
        info = replace(info, is_vfr=True)      # the fps filter places frames by time and fills holes
    return info


def _file_identity(path: PathLike) -> Optional[Tuple[int, int]]:
    """(size, mtime in ns) of a file, None when it is gone or unreadable."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def iter_frames(path: PathLike, info: Optional[MediaInfo] = None, start: int = 0,
                stop: Optional[int] = None, backend: str = "ffmpeg") -> Iterator[np.ndarray]:
    """Yield BGR uint8 frames `start .. stop-1` (display orientation, constant frame rate) from an ffmpeg pipe.

    Exactly ``min(stop, info.num_frames) - start`` frames are yielded (see the module docstring); MediaError when
    the decoder stops short because the file changed or vanished meanwhile. Closing the
    generator early (break, ``.close()``, garbage collection) stops the ffmpeg process.

    `backend="auto"`: OpenCV's in-process FFmpeg decoder where FrameReader trusts it (`_cv2_eligible`: CFR
    MP4/MOV/MKV/WebM/AVI; the same frames as the pipe, verified in tests), the pipe otherwise and from wherever
    OpenCV stops early. No pipe, no copy of each frame through it: a 720p frame cost 2.6-3.1 ms CPU in all
    instead of ~5 ms (ffmpeg process and reading thread; measured for core.qc)."""
    info = _resolve_info(path, info)
    n = info.num_frames
    stop = n if stop is None else min(int(stop), n)
    start = max(0, int(start))
    if start >= stop:
        return
    if backend not in ("ffmpeg", "auto"):
        raise ValueError(f"unknown iter_frames backend {backend!r}")
    if backend == "auto" and _cv2_eligible(info):
        yield from _cv2_frames(path, info, start, stop)
        return
    yield from _pipe_frames(path, info, start, stop)


def _cv2_frames(path: PathLike, info: MediaInfo, start: int, stop: int) -> Iterator[np.ndarray]:
    """Frames `start .. stop-1` from OpenCV's decoder (checked as FrameReader checks it: its frame count within 2
    of ffprobe's, frames of the probed size); the ffmpeg pipe takes over where OpenCV fails or stops early."""
    try:
        be = _Cv2Backend(str(path), info)
    except (ImportError, MediaError):
        be = None
    i = start
    try:
        if be is not None and abs(be.count - info.num_frames) <= 2:
            be.seek(start)
            shape = (info.height, info.width, 3)
            while i < stop:
                frame = be.read_next()
                if frame is None or frame.shape != shape:
                    break
                yield frame
                i += 1
    finally:
        if be is not None:
            be.close()
    if i < stop:
        yield from _pipe_frames(path, info, i, stop)


def _pipe_frames(path: PathLike, info: MediaInfo, start: int, stop: int) -> Iterator[np.ndarray]:
    exe = ffmpeg_path()
    args = build_decode_args(exe, path, info, start, ffmpeg_version(exe))
    w, h = info.width, info.height
    size = w * h * 3
    identity = _file_identity(path)
    proc = _Proc(args)
    last = None
    i = start
    try:
        while i < stop:
            buf = proc.read_exact(size)
            if buf is None:
                break
            last = np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            yield last
            i += 1
        if i < stop:
            rc = proc.wait()
            if _file_identity(path) != identity:    # not a damaged tail: the file went away under us
                raise MediaError(f"{path} changed or disappeared while it was being read (drive unplugged, file "
                                 "moved or overwritten?). Make it available again and restart.")
            if last is None:
                raise MediaError(f"ffmpeg could not decode {path} from frame {start} "
                                 f"({proc.stderr_tail() or f'exit code {rc}'}). The file may be damaged.")
            missing = stop - i
            # core.media_damage has named the missing frames to the user before any decode (refused or allowed)
            log.info("%s: decoder stopped %d frame(s) early; repeating the last frame", path, missing)
            while i < stop:
                yield last.copy()
                i += 1
    finally:
        proc.close()


class _PipeBackend:
    """Sequential ffmpeg pipe, restarted at a seek."""

    name = "ffmpeg"

    def __init__(self, path: str, info: MediaInfo):
        self.path, self.info = path, info
        self.exe = ffmpeg_path()
        self.version = ffmpeg_version(self.exe)
        self.proc: Optional[_Proc] = None
        self.pos = -1           # index of the next frame the pipe yields (-1: no pipe)

    def seek(self, index: int) -> None:
        self.close()
        self.proc = _Proc(build_decode_args(self.exe, self.path, self.info, index, self.version))
        self.pos = index

    def read_next(self) -> Optional[np.ndarray]:
        if self.proc is None:
            self.seek(max(self.pos, 0))
        info = self.info
        buf = self.proc.read_exact(info.width * info.height * 3)
        if buf is None:
            self.close()
            return None
        self.pos += 1
        return np.frombuffer(buf, np.uint8).reshape(info.height, info.width, 3)

    def skip(self) -> bool:
        return self.read_next() is not None

    def close(self) -> None:
        if self.proc is not None:
            self.proc.close()
            self.proc = None
        self.pos = -1


class _Cv2Backend:
    """OpenCV's in-process FFmpeg decoder (frame-accurate for CFR MP4/MOV/MKV; verified in tests)."""

    name = "opencv"

    def __init__(self, path: str, info: MediaInfo):
        import cv2

        self.cv2 = cv2
        self.info = info
        self.cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        if not self.cap.isOpened():
            raise MediaError(f"OpenCV cannot open {path}")
        if hasattr(cv2, "CAP_PROP_ORIENTATION_AUTO"):
            self.cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        self.count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.pos = 0

    def seek(self, index: int) -> None:
        if index != self.pos:
            self.cap.set(self.cv2.CAP_PROP_POS_FRAMES, int(index))
            self.pos = index

    def skip(self) -> bool:
        """Decode the next frame without converting it to BGR."""
        if not self.cap.grab():
            self.pos = -1
            return False
        self.pos += 1
        return True

    def read_next(self) -> Optional[np.ndarray]:
        ok, frame = self.cap.read()
        if not ok or frame is None:
            self.pos = -1
            return None
        self.pos += 1
        return frame

    def close(self) -> None:
        self.cap.release()
        self.pos = -1


def _cv2_eligible(info: MediaInfo) -> bool:
    if info.is_vfr or info.probed_with != "ffprobe":
        return False
    names = info.format_name.split(",")
    return any(n in CV2_CONTAINERS for n in names)


class FrameReader:
    """Random access to frames for the GUI: ``read(index)`` -> BGR uint8 frame (a copy), display orientation.

    Keeps one decoder open: reading the next frame(s) continues decoding, a short forward jump decodes forward,
    anything else seeks to BACKFILL frames before the target and decodes forward from there, so that stepping
    backwards afterwards is served from the cache. Recently decoded frames stay in an LRU cache of `cache_mb`
    megabytes (at most `cache_frames` frames). Frame indices match
    ``iter_frames`` exactly; indices past the last decodable frame return the last frame (as iter_frames pads).
    backend: "auto" (OpenCV when frame-accurate for the file, else the ffmpeg pipe), "opencv" or "ffmpeg".
    Not thread-safe across threads without external locking (a lock guards each call)."""

    FORWARD_WINDOW = 48     # decode forward instead of seeking when the target is at most this far ahead
    BACKFILL = 8            # a seek starts decoding this many frames before the target (cached on the way)

    def __init__(self, path: PathLike, info: Optional[MediaInfo] = None, cache_frames: int = 64,
                 backend: str = "auto", cache_mb: float = 256.0):
        self.path = str(path)
        self.info = _resolve_info(path, info)
        frame_bytes = max(1, self.info.width * self.info.height * 3)
        self.cache_frames = max(2, min(int(cache_frames), int(cache_mb * 2 ** 20 // frame_bytes)))
        self._cache: "OrderedDict[int, np.ndarray]" = OrderedDict()
        self._lock = threading.Lock()
        self._last_good: Optional[int] = None
        self._be = None
        if backend not in ("auto", "opencv", "ffmpeg"):
            raise ValueError(f"unknown FrameReader backend {backend!r}")
        if backend == "opencv" or (backend == "auto" and _cv2_eligible(self.info)):
            try:
                be = _Cv2Backend(self.path, self.info)
                first = be.read_next()
                ok = (first is not None and first.shape == (self.info.height, self.info.width, 3)
                      and abs(be.count - self.info.num_frames) <= 2)
                if ok:
                    self._be = be
                    self._put(0, first)
                    self._last_good = 0
                else:
                    be.close()
                    if backend == "opencv":
                        raise MediaError(f"OpenCV cannot decode {self.path} frame-accurately")
                    log.info("%s: OpenCV disagrees with ffprobe (count %d vs %d or size); using the ffmpeg pipe",
                             self.path, be.count, self.info.num_frames)
            except ImportError:
                if backend == "opencv":
                    raise
        if self._be is None:
            self._be = _PipeBackend(self.path, self.info)

    @property
    def backend(self) -> str:
        return self._be.name

    @property
    def num_frames(self) -> int:
        return self.info.num_frames

    def __len__(self) -> int:
        return self.info.num_frames

    def _put(self, i: int, frame: np.ndarray) -> None:
        self._cache[i] = frame
        self._cache.move_to_end(i)
        while len(self._cache) > self.cache_frames:
            self._cache.popitem(last=False)

    def _decode(self, index: int) -> Optional[np.ndarray]:
        be = self._be
        if not (0 <= be.pos <= index <= be.pos + self.FORWARD_WINDOW):
            be.seek(max(0, index - min(self.BACKFILL, self.cache_frames - 1)))
        while True:
            cur = be.pos
            if cur < index - self.cache_frames + 1:        # would fall out of the cache anyway: do not convert
                if not be.skip():
                    return None
                continue
            frame = be.read_next()
            if frame is None:
                return None
            self._put(cur, frame)
            self._last_good = max(self._last_good or 0, cur)
            if cur >= index:
                return frame

    def read(self, index: int) -> np.ndarray:
        index = int(index)
        if not 0 <= index < self.info.num_frames:
            raise IndexError(f"frame {index} is outside {self.path} (0..{self.info.num_frames - 1})")
        with self._lock:
            frame = self._cache.get(index)
            if frame is not None:
                self._cache.move_to_end(index)
                return frame.copy()
            frame = self._decode(index)
            if frame is None:
                # past the decodable end: step back to the last frame that exists (iter_frames pads with it)
                for j in range(index - 1, max(-1, index - 16), -1):
                    if j in self._cache:
                        frame = self._cache[j]
                        break
                    frame = self._decode(j)
                    if frame is not None:
                        break
                if frame is None:
                    raise MediaError(f"Frame {index} of {self.path} cannot be decoded; the file may be damaged.")
                self._put(index, frame)
            return frame.copy()

    __getitem__ = read

    def close(self) -> None:
        with self._lock:
            if self._be is not None:
                self._be.close()
            self._cache.clear()

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if sys.is_finalizing():
            return
        try:
            self.close()
        except Exception:
            pass


def read_frame(path: PathLike, index: int, info: Optional[MediaInfo] = None) -> np.ndarray:
    """One frame (BGR uint8, display orientation) by index. Opens and closes a FrameReader: use FrameReader
    directly to read many frames."""
    with FrameReader(path, info) as r:
        return r.read(index)


# ---------------------------------------------------------------------------------------------------------
# encoding
# ---------------------------------------------------------------------------------------------------------
def _samefile(a: PathLike, b: PathLike) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def check_output_path(out_path: PathLike, inputs: Sequence[PathLike] = ()) -> Path:
    """Validate an output video path before any work: supported extension, not an input file, folder exists (it
    is created if missing) and is writable. Raises OutputError."""
    out = Path(out_path)
    if out.suffix.lower() not in SUPPORTED_OUTPUT_EXT:
        raise OutputError(f"Cannot write {out}: use one of {', '.join(SUPPORTED_OUTPUT_EXT)} as the extension.")
    if out.is_dir():
        raise OutputError(f"The output path {out} is a folder; give a file name such as {out / 'dub.mp4'}.")
    for p in inputs:
        if p is not None and not isinstance(p, np.ndarray) and _samefile(out, p):
            raise OutputError(f"The output {out} is the same file as the input {p}; choose another output name.")
    parent = out.resolve().parent
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"Cannot create the output folder {parent} ({e.strerror or e}); "
                              "choose another location.") from None
    if not parent.is_dir():
        raise OutputError(f"Cannot write {out}: {parent} is not a folder; choose another location.")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"The output folder {parent} is not writable; choose another location.")
    return out


def _rotation_args(rotation: int, version: Tuple[int, int]) -> Tuple[List[str], List[str]]:
    """(input options, output options) that tag a stream for a clockwise display rotation."""
    if rotation % 360 == 0:
        return [], []
    if version >= (6, 0):
        # -display_rotation: counter-clockwise degrees, an input option
        return ["-display_rotation", str((-rotation) % 360)], []
    if version >= (5, 0):
        # ffmpeg 5.x converts the legacy tag into a display matrix counter-clockwise (measured with 5.1)
        return [], ["-metadata:s:v:0", f"rotate={(-rotation) % 360}"]
    return [], ["-metadata:s:v:0", f"rotate={rotation % 360}"]


def build_encode_args(ffmpeg: str, out_path: PathLike, width: int, height: int, fps_fraction: Fraction, *,
                      crf: int = 18, preset: str = "medium", sar: str = "1:1",
                      version: Tuple[int, int] = (99, 0), container: Optional[str] = None) -> List[str]:
    """rawvideo BGR24 (`width` x `height`, even size) on stdin -> libx264 yuv420p (BT.709, limited range, tagged)
    video-only file at exactly `fps_fraction`, pixel aspect ratio `sar`."""
    fr = Fraction(fps_fraction)
    sn, sd = _sar_str(sar)
    args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{int(width)}x{int(height)}",
            "-framerate", f"{fr.numerator}/{fr.denominator}", "-i", "pipe:0",
            "-map", "0:v:0",
            "-vf", f"scale=out_color_matrix=bt709:out_range=tv:flags=accurate_rnd+full_chroma_int,"
                   f"format=yuv420p,setsar=sar={sn}/{sd}:max=65535",
            "-c:v", "libx264", "-preset", str(preset), "-crf", str(int(crf)), "-pix_fmt", "yuv420p",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
            *_fps_mode_args("passthrough", version)]
    if container in (None, "mp4", "mov"):
        args += ["-movflags", "+faststart"]
    if container:
        args += ["-f", container]
    args += [str(out_path)]
    return args


def build_mux_args(ffmpeg: str, video_path: PathLike, audio_path: Optional[PathLike], out_path: PathLike,
                   duration: float, *, audio_stream: Optional[int] = None, sample_rate: Optional[int] = None,
                   bitrate: str = "192k", rotation: int = 0, version: Tuple[int, int] = (99, 0),
                   container: Optional[str] = None) -> List[str]:
    """Stream-copy the video of `video_path` (tagging a clockwise display `rotation`) and, when `audio_path` is
    given, encode its audio stream `audio_stream` (absolute index; default the first audio stream) to AAC, padded
    with silence / cut to exactly `duration` seconds."""
    rin, rout = _rotation_args(rotation, version)
    args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *rin, "-i", str(video_path)]
    if audio_path is not None:
        amap = f"1:{audio_stream}" if audio_stream is not None else "1:a:0"
        args += ["-i", str(audio_path), "-map", "0:v:0", "-map", amap, "-c:v", "copy",
                 "-c:a", "aac", "-b:a", bitrate]
        if sample_rate:
            args += ["-ar", str(int(sample_rate))]
        args += ["-af", "apad", "-t", f"{duration:.6f}"]
    else:
        args += ["-map", "0:v:0", "-c:v", "copy"]
    args += rout
    if container in (None, "mp4", "mov"):
        args += ["-movflags", "+faststart"]
    if container:
        args += ["-f", container]
    args += [str(out_path)]
    return args


def build_concat_args(ffmpeg: str, list_path: PathLike, out_path: PathLike,
                      container: Optional[str] = None) -> List[str]:
    """Join the video-only files named in `list_path` (ffmpeg concat-demuxer list) by stream copy: no
    re-encoding, so each part's frames are kept bit for bit (parts must share codec settings and size)."""
    args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
            "-i", str(list_path), "-map", "0:v:0", "-c", "copy"]
    if container in (None, "mp4", "mov"):
        args += ["-movflags", "+faststart"]
    if container:
        args += ["-f", container]
    return args + [str(out_path)]


def concat_list(paths: Sequence[PathLike]) -> str:
    """The concat demuxer's list file text for `paths` (absolute, quotes escaped)."""
    quoted = (str(Path(p).resolve()).replace("'", "'\\''") for p in paths)
    return "".join(f"file '{q}'\n" for q in quoted)


def _container_for(path: Path) -> str:
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}[path.suffix.lower()]


def mux_audio(video_path: PathLike, audio, out_path: PathLike, duration: float, *, sample_rate: int = 16000,
              audio_info: Optional[MediaInfo] = None, bitrate: str = "192k", rotation: int = 0,
              container: Optional[str] = None, exe: Optional[str] = None, version: Optional[Tuple[int, int]] = None,
              target: Optional[PathLike] = None) -> None:
    """Write `out_path`: the video of `video_path` (stream copy, tagged with `rotation`) plus `audio` (a media
    file's first audio stream, or a float32 mono array at `sample_rate`) encoded to AAC and cut/padded to
    `duration` seconds. `target` names the final file in the error message. Raises OutputError."""
    exe = exe or ffmpeg_path()
    version = version or ffmpeg_version(exe)
    target = Path(target or out_path)
    audio_path: Optional[Path] = None
    wav_tmp: Optional[Path] = None
    stream = rate = None
    try:
        if isinstance(audio, np.ndarray):
            import soundfile as sf

            wav = np.nan_to_num(np.asarray(audio, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
            if wav.size == 0:
                wav = np.zeros(1, np.float32)
            wav_tmp = audio_path = temporary_beside(Path(out_path).resolve().parent / target.name, ".part.wav")
            sf.write(str(audio_path), wav, int(sample_rate), subtype="FLOAT", format="WAV")
            stream, rate = None, 48000
        elif audio is not None:
            audio_path = Path(audio)
            ai = audio_info or probe(audio, need_audio=True)
            stream = ai.audio_stream_index
            rate = 48000 if (ai.audio_sample_rate or 0) < 32000 else None
        args = build_mux_args(exe, video_path, audio_path, out_path, duration, audio_stream=stream,
                              sample_rate=rate, bitrate=bitrate, rotation=rotation, version=version,
                              container=container)
        proc = _Proc(args, stdout=False)
        rc = proc.wait()
        tail = proc.stderr_tail(2)
        proc.close()
        if rc != 0:
            raise OutputError(f"Finishing {target} (audio, rotation) failed ({tail or rc}).")
    finally:
        if wav_tmp is not None:
            wav_tmp.unlink(missing_ok=True)


def join_video_parts(parts: Sequence[PathLike], out_path: PathLike, num_frames: int, fps_fraction, *,
                     audio=None, sample_rate: int = 16000) -> Path:
    """Join video-only parts (same codec settings, each starting with a key frame) into `out_path` by stream
    copy, then mux `audio` once for the whole (see `mux_audio`). Written atomically; checks the frame count."""
    out = check_output_path(out_path)
    exe = ffmpeg_path()
    version = ffmpeg_version(exe)
    container = _container_for(out)
    fr = Fraction(fps_fraction).limit_denominator(1_000_000)
    tmp: List[Path] = []

    def scratch(suffix: str) -> Path:
        tmp.append(temporary_beside(out, ".part" + suffix))
        return tmp[-1]

    try:
        listing = scratch(".txt")
        listing.write_text(concat_list(parts), encoding="utf-8")
        video = scratch(".video" + out.suffix)
        proc = _Proc(build_concat_args(exe, listing, video, container), stdout=False)
        rc, tail = proc.wait(), proc.stderr_tail(2)
        proc.close()
        if rc != 0:
            raise OutputError(f"Joining the {len(parts)} parts of {out} failed ({tail or rc}).")
        result = video
        if audio is not None:
            result = scratch(out.suffix)
            mux_audio(video, audio, result, float(num_frames / fr), sample_rate=sample_rate, container=container,
                      exe=exe, version=version, target=out)
        got = probe(result).num_frames
        if got != num_frames:
            raise OutputError(f"Joining the parts of {out} gave {got} frames instead of {num_frames}.")
        mode = new_file_mode(out)
        os.replace(result, out)
        os.chmod(out, mode)
        return out
    finally:
        for p in tmp:
            p.unlink(missing_ok=True)


class VideoWriter:
    """Encode display-oriented BGR frames to H.264 + AAC with an atomic rename on success.

    - `fps_fraction` is kept exactly (e.g. 30000/1001); `sar` is written as the pixel aspect ratio.
    - Odd sizes: yuv420p needs even dimensions, so the last row/column is repeated (the output is 1 pixel
      larger; see `encoded_size`).
    - Rotation: frames are display-oriented. rotation=0 (default) writes them as they are. rotation=R writes the
      pixels back in the source's stored orientation (rotated R degrees counter-clockwise) and tags the stream
      with a display rotation of R degrees clockwise, so the output has the source's layout and metadata; players
      that honour rotation metadata (all common ones) show exactly the frames given. The tag is verified at
      close() (OutputError if the ffmpeg in use cannot write it).
    - audio: a media file path (its first audio stream, any codec) or a float32 mono array at `sample_rate`, or
      None. It is encoded to AAC and padded with silence / cut to the video's duration (num_frames / fps).
    - `inputs`: paths the output must not overwrite (the audio path is always included).
    """

    def __init__(self, out_path: PathLike, width: int, height: int, fps_fraction, *,
                 audio: Union[str, os.PathLike, np.ndarray, None] = None, crf: int = 18, preset: str = "medium",
                 sar: str = "1:1", rotation: int = 0, sample_rate: int = 16000,
                 inputs: Sequence[PathLike] = (), audio_bitrate: str = "192k"):
        self.out_path = Path(out_path)
        if width <= 0 or height <= 0:
            raise ValueError(f"invalid video size {width}x{height}")
        if rotation % 90 != 0:
            raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
        self.width, self.height = int(width), int(height)
        self.fps_fraction = Fraction(fps_fraction).limit_denominator(1_000_000)
        if self.fps_fraction <= 0:
            raise ValueError(f"invalid frame rate {fps_fraction}")
        self.rotation = int(rotation) % 360
        self.crf, self.preset, self.sample_rate, self.audio_bitrate = int(crf), str(preset), int(sample_rate), \
            audio_bitrate
        self._audio = audio
        self._audio_info: Optional[MediaInfo] = None
        ins = list(inputs)
        if audio is not None and not isinstance(audio, np.ndarray):
            ins.append(audio)
        check_output_path(self.out_path, ins)
        if audio is not None and not isinstance(audio, np.ndarray):
            self._audio_info = probe(audio, need_audio=True)
        elif isinstance(audio, np.ndarray):
            a = np.asarray(audio)
            if a.ndim != 1:
                raise ValueError(f"audio array must be mono (1-D), got shape {a.shape}")
        self.container = _container_for(self.out_path)
        # coded orientation + even size
        sn, sd = _sar_str(sar)
        if self.rotation in (90, 270):
            cw, ch, sn, sd = self.height, self.width, sd, sn
        else:
            cw, ch = self.width, self.height
        self.coded_size = (cw, ch)
        self.pad = (cw % 2, ch % 2)
        self.encoded_size = (cw + self.pad[0], ch + self.pad[1])      # coded orientation
        self.sar = f"{sn}:{sd}"
        self.num_frames = 0
        self._closed = False
        self._tmp: List[Path] = []
        self._exe = ffmpeg_path()
        self._version = ffmpeg_version(self._exe)
        self._proc: Optional[_Proc] = None
        self._video_tmp = self._make_tmp(".video" + self.out_path.suffix)
        args = build_encode_args(self._exe, self._video_tmp, *self.encoded_size, self.fps_fraction, crf=self.crf,
                                 preset=self.preset, sar=self.sar, version=self._version, container=self.container)
        try:
            self._proc = _Proc(args, stdin=True, stdout=False)
        except BaseException:
            self.abort()
            raise

    def _make_tmp(self, suffix: str) -> Path:
        p = temporary_beside(self.out_path, ".part" + suffix)
        self._tmp.append(p)
        return p

    @property
    def temp_paths(self) -> List[Path]:
        return list(self._tmp)

    def write(self, frame: np.ndarray) -> None:
        if self._closed:
            raise OutputError(f"{self.out_path}: write() after close()/abort().")
        f = np.asarray(frame)
        if f.shape != (self.height, self.width, 3) or f.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 ({self.height}, {self.width}, 3), got {f.dtype} {f.shape}")
        if self.rotation:
            f = np.rot90(f, k=self.rotation // 90)        # back to the stored orientation (counter-clockwise)
        if self.pad != (0, 0):
            f = np.pad(f, ((0, self.pad[1]), (0, self.pad[0]), (0, 0)), mode="edge")
        try:
            self._proc.p.stdin.write(np.ascontiguousarray(f).data)
        except (BrokenPipeError, OSError, ValueError):
            self._proc.p.wait()
            reason = self._proc.stderr_tail(2) or "ffmpeg stopped"
            self.abort()
            raise OutputError(f"Encoding {self.out_path} failed ({reason}). Check the disk space and settings.") \
                from None
        self.num_frames += 1

    def close(self) -> None:
        """Finish encoding, mux the audio and move the result onto the target path."""
        if self._closed:
            return
        try:
            try:
                self._proc.p.stdin.close()
            except OSError:
                pass
            rc = self._proc.wait()
            if rc != 0:
                raise OutputError(f"Encoding {self.out_path} failed ({self._proc.stderr_tail(2) or rc}). "
                                  "Check the disk space and settings.")
            self._proc.close()
            if self.num_frames == 0:
                raise OutputError(f"No frames were written to {self.out_path}; nothing to save.")
            result = self._video_tmp
            if self._audio is not None or self.rotation:
                result = self._mux()
            if self.rotation:
                got = probe(result).rotation
                if got != self.rotation:
                    raise OutputError(f"{self._exe} could not tag {self.out_path} with a {self.rotation} degree "
                                      f"rotation (got {got}); write with rotation=0 instead.")
            mode = new_file_mode(self.out_path)
            os.replace(result, self.out_path)
            try:
                os.chmod(self.out_path, mode)
            except OSError:
                pass
            self._closed = True
        except BaseException:
            self.abort()
            raise
        finally:
            self._cleanup()

    def _mux(self) -> Path:
        out_tmp = self._make_tmp(self.out_path.suffix)
        mux_audio(self._video_tmp, self._audio, out_tmp, float(self.num_frames / self.fps_fraction),
                  sample_rate=self.sample_rate, audio_info=self._audio_info, bitrate=self.audio_bitrate,
                  rotation=self.rotation, container=self.container, exe=self._exe, version=self._version,
                  target=self.out_path)
        return out_tmp

    def _cleanup(self) -> None:
        for p in self._tmp:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("could not delete the temporary file %s: %s", p, e)
        self._tmp = [p for p in self._tmp if p.exists()]

    def abort(self) -> None:
        """Stop encoding and delete the temporary files; an existing file at out_path is left untouched."""
        self._closed = True
        proc = getattr(self, "_proc", None)
        if proc is not None:
            proc.close()
        self._cleanup()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.abort()
            except Exception:
                pass
