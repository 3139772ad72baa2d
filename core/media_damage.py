"""Damaged media: which frames of a video, and which stretch of a sound, the decoder could not give back whole.

Files arrive damaged: a copy cut off, flipped bits, a zeroed block. ffmpeg decodes what it can and conceals the
rest, so without a check a cut clip is dubbed with its picture frozen from the cut on, and the export says it
succeeded. `scan_damage` runs one fast decode pass of one stream (``ffmpeg -f null``: the decoder only, no pixel
conversion, no pipe of frames) and reads ffmpeg's own account of it from stderr (``-debug_ts``, with the log
level of each line):

- every packet the demuxer hands over (its presentation time and duration);
- every video frame the decoder gives back (its timestamp);
- the decoder's error messages, attributed to the packet being decoded (the decoder runs single-threaded in this
  pass, so its messages follow the packet's ``demuxer ->`` line and precede the next one).

From that, for a video stream: frames *decoded with errors* (concealed by ffmpeg), frames *missing* (no decoded
frame at their time on the clip's frame grid: a cut file, a lost packet; a frame decoded twice counts as missing
too), for a sound: the time ranges whose packets failed to decode or never came (a gap, or a stream that ends
before the length the container announces). Frame indices are `core.media`'s (0-based, at ``MediaInfo.fps``).

Everything is a pure function of the stderr text except `scan_damage` (which runs ffmpeg, with a time bound and
a cancel token) and `check_damage` (which raises `DamagedMediaError`). No Qt, no prints.
"""
from __future__ import annotations

import logging
import math
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import media
from .errors import CancelledError, FFmpegMissingError, MediaError

log = logging.getLogger(__name__)

SCAN_TIMEOUT_BASE_S = 60.0        # a scan may take this long plus SCAN_TIMEOUT_PER_S per second of media
SCAN_TIMEOUT_PER_S = 2.0
AUDIO_GAP_S = 0.05                # a hole between sound packets longer than this is missing sound
AUDIO_SHORT_S = 0.08                # a sound that ends this much before its announced length was cut (clean mp3: 0.05)
NOT_DECODERS = ("NULL", "null", "AVIOContext", "wrapped_avframe", "pcm_s16le", "SWR", "swscaler",
                "graph", "Parsed_null_0", "AVFormatContext")
ERROR_LEVELS = ("error", "fatal", "panic")
ERR_DETECT = "crccheck+buffer"    # FLAC frame CRCs, MP3 frames that overrun (flipped bits there decode silently else)
ALLOW_HINT = "use a complete copy of the file, or allow damaged input (--allow-damaged) to dub what is there"


class DamagedMediaError(MediaError):
    """The input decodes only in part (exit code 4, like any invalid media). `.reports` says where."""

    def __init__(self, message: str, reports: Sequence["DamageReport"] = ()):
        super().__init__(message)
        self.reports = tuple(reports)


# ------------------------------------------------------------------------------------------------ the report
@dataclass(frozen=True)
class DamageReport:
    """The damage found in one stream of one file (an empty report: a clean stream)."""

    path: str
    kind: str                                  # "video" | "audio"
    num_frames: int = 0                        # video: frames the clip should have (MediaInfo.num_frames)
    fps: float = 0.0                           # video: MediaInfo.fps
    duration: float = 0.0                      # seconds the stream should last
    errors: int = 0                            # the decoder's error messages while decoding the stream
    decoded: int = 0                           # video: frames decoded; audio: packets read
    bad_frames: Tuple[int, ...] = ()           # video: decoded with errors (what is shown is ffmpeg's concealment)
    missing_frames: Tuple[int, ...] = ()       # video: no decoded frame at their time (cut, lost, repeated)
    audio_ranges: Tuple[Tuple[float, float], ...] = ()   # audio: seconds from the stream's start, damaged/missing
    seconds: float = 0.0                       # wall time of the scan
    demux_errors: int = 0                      # the demuxer's about this stream (a damaged or cut container)

    @property
    def damaged(self) -> bool:
        return bool(self.bad_frames or self.missing_frames or self.audio_ranges or self.errors or self.demux_errors)

    @property
    def frames(self) -> Tuple[int, ...]:
        """Video: every damaged or missing frame, ascending."""
        return tuple(sorted(set(self.bad_frames) | set(self.missing_frames)))

    def frame_mask(self, num_frames: Optional[int] = None) -> np.ndarray:
        """(N,) bool, true on damaged or missing frames (video); for audio, the frames at `fps` the ranges touch."""
        n = int(self.num_frames if num_frames is None else num_frames)
        mask = np.zeros(max(n, 0), bool)
        if self.kind == "video":
            idx = np.asarray([i for i in self.frames if 0 <= i < n], np.int64)
            mask[idx] = True
        return mask

    def ranges(self) -> List[Tuple[float, float]]:
        """Damaged time ranges in seconds (video: the frames' spans, merged; audio: `audio_ranges`)."""
        if self.kind == "audio":
            return [tuple(r) for r in self.audio_ranges]
        if not self.fps:
            return []
        return [(a / self.fps, (b + 1) / self.fps) for a, b in frame_runs(self.frames)]

    def describe(self) -> str:
        """One line, without the file name: 'video damaged: frames 31–74 of 75 could not be decoded (1.24–3.00 s)'."""
        if not self.damaged:
            return f"{self.kind}: no damage found"
        parts = []
        if self.kind == "video":
            n = self.num_frames
            if self.missing_frames:
                parts.append(f"{_frames_word(self.missing_frames)} {runs_text(self.missing_frames)} of {n} could not be decoded "
                             f"({seconds_text(self.missing_frames, self.fps)})")
            if self.bad_frames:
                parts.append(f"{_frames_word(self.bad_frames)} {runs_text(self.bad_frames)} of {n} "
                             f"{'was' if len(self.bad_frames) == 1 else 'were'} decoded with errors "
                             f"({seconds_text(self.bad_frames, self.fps)})")
        elif self.audio_ranges:
            spans = ", ".join(f"{a:.2f}–{b:.2f} s" for a, b in self.audio_ranges[:4])
            more = len(self.audio_ranges) - 4
            parts.append(f"{spans}{f' and {more} more stretches' if more > 0 else ''} could not be decoded")
        if not parts:
            n = self.errors + self.demux_errors
            parts.append(f"ffmpeg reported {n} error{'s' if n != 1 else ''} reading it (a damaged or cut file)")
        word = "video" if self.kind == "video" else "sound"
        return f"{word} damaged: " + "; ".join(parts)

    def to_json(self) -> dict:
        return {"path": self.path, "kind": self.kind, "damaged": self.damaged, "errors": self.errors,
                "decoded": self.decoded, "num_frames": self.num_frames,
                "bad_frames": list(self.bad_frames), "missing_frames": list(self.missing_frames),
                "ranges_s": [[round(a, 3), round(b, 3)] for a, b in self.ranges()],
                "message": self.describe(), "seconds": round(self.seconds, 3)}


def _frames_word(frames) -> str:
    return "frame" if len(frames) == 1 else "frames"


def frame_runs(frames: Iterable[int]) -> List[Tuple[int, int]]:
    """Consecutive runs of frame indices as inclusive (first, last) pairs: [3, 4, 5, 9] -> [(3, 5), (9, 9)]."""
    out: List[Tuple[int, int]] = []
    for f in sorted(set(int(x) for x in frames)):
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def runs_text(frames: Iterable[int], limit: int = 4) -> str:
    """'31–74', '3, 9–12' (at most `limit` runs, then 'and N more')."""
    runs = frame_runs(frames)
    text = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in runs[:limit])
    if len(runs) > limit:
        text += f" and {len(runs) - limit} more"
    return text


def seconds_text(frames: Iterable[int], fps: float) -> str:
    runs = frame_runs(frames)
    if not runs or not fps:
        return ""
    if len(runs) == 1:
        a, b = runs[0]
        return f"{a / fps:.2f}–{(b + 1) / fps:.2f} s"
    return f"{len(runs)} stretches from {runs[0][0] / fps:.2f} s to {(runs[-1][1] + 1) / fps:.2f} s"


def error_message(path, reports: Sequence[DamageReport], hint: str = ALLOW_HINT) -> str:
    """The one-line refusal: '<file>: video damaged: ...; sound damaged: ... (hint).'"""
    what = "; ".join(r.describe() for r in reports if r.damaged)
    return f"{path}: {what}. The file is damaged: {hint}."


# ------------------------------------------------------------------------------------------------ ffmpeg pass
def build_scan_args(ffmpeg: str, path, stream_index: int) -> List[str]:
    """One stream of `path` decoded to nothing, single-threaded (messages stay in packet order), with every
    packet's and frame's timestamps on stderr (-debug_ts) and each line's log level; checksums checked where the
    format has them (FLAC, MP3, Ogg: ERR_DETECT), no deblocking (it finds no error and is a fifth of an H.264
    decode); never stops on errors."""
    return [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info", "-debug_ts",
            "-threads", "1", "-err_detect", ERR_DETECT, "-skip_loop_filter", "all", "-copyts", "-i", str(path), "-map", f"0:{int(stream_index)}", "-max_error_rate", "1",
            "-f", "null", "-"]


_RE_LINE = re.compile(r"^(?:\[(?P<ctx>[^\]@]+?) @ [^\]]*\] )?\[(?P<level>[a-z]+)\] (?P<text>.*)$")
_RE_DEMUX = re.compile(r"^demuxer -> ist_index:[\d:]+ type:(?P<type>video|audio)\b.*?\bpkt_pts_time:(?P<pts>\S+)"
                       r".*?\bpkt_dts_time:(?P<dts>\S+).*?\bduration_time:(?P<dur>\S+)")
_RE_AUDIO_OUT = re.compile(r"^encoder -> type:audio\b.*?\bpkt_pts_time:(?P<pts>\S+).*?\bduration_time:(?P<dur>\S+)")
_RE_DECODED = re.compile(r"^decoder -> (?:ist_index:[\d:]+ )?(?:type:(?P<type>\w+) )?.*?\b(?:frame_)?pts_time:(?P<pts>\S+)"
                         r"(?:.*?\bbest_effort_ts_time:(?P<best>\S+))?")
_RE_REPEATED = re.compile(r"Last message repeated (\d+) times?")
_RE_STREAM_NAMED = re.compile(r"\bstream\s*(?:=\s*|#?)(\d+)")


def _num(s: Optional[str]) -> Optional[float]:
    if s is None:
        return None
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


@dataclass
class ScanLog:
    """What the stderr of a scan says, line by line (`feed`), before it is judged against the clip (`report`)."""

    demux_contexts: Tuple[str, ...] = ()
    stream: Optional[int] = None                                         # the absolute index of the stream scanned
    packets: List[Tuple[float, float]] = field(default_factory=list)     # (pts s, duration s)
    frames: List[float] = field(default_factory=list)                    # decoded video frame times
    sound: Dict[float, float] = field(default_factory=dict)              # decoded sound: start s -> duration s
    errors: int = 0                                                      # decoder errors once decoding began
    demux_errors: int = 0
    bad_packets: Dict[int, int] = field(default_factory=dict)            # packet number -> decoder errors
    _last_error: bool = False
    _pending: int = 0                     # demuxer errors about this stream, for the next packet it hands over
    _last_text: str = ""

    def feed(self, line: str) -> None:
        m = _RE_LINE.match(line.rstrip("\r\n"))
        if not m:
            return
        ctx, level, text = (m.group("ctx") or "").strip(), m.group("level"), m.group("text")
        if level == "info":              # -debug_ts lines (ffmpeg 7 prefixes them with the stream's context)
            d = _RE_DEMUX.match(text)
            if d:
                t = _num(d.group("pts"))
                if t is None:
                    t = _num(d.group("dts"))
                self.packets.append((t if t is not None else math.nan, _num(d.group("dur")) or 0.0))
                if self._pending:
                    k = len(self.packets) - 1
                    self.bad_packets[k] = self.bad_packets.get(k, 0) + self._pending
                    self._pending = 0
                self._last_error = False
                return
            f = _RE_DECODED.match(text)
            if f and f.group("type") in (None, "video"):
                t = _num(f.group("best"))
                if t is None:
                    t = _num(f.group("pts"))
                self.frames.append(math.nan if t is None else t)
                return
            a = _RE_AUDIO_OUT.match(text)
            if a:
                t, d = _num(a.group("pts")), _num(a.group("dur"))
                if t is not None and d:
                    self.sound[t] = d
                return
        r = _RE_REPEATED.search(text)
        if r:
            if self._last_error:
                self._count(ctx, int(r.group(1)), self._last_text)
            return
        self._last_error = level in ERROR_LEVELS
        if self._last_error:
            self._last_text = text
            self._count(ctx, 1, text)

    def _count(self, ctx: str, n: int, text: str = "") -> None:
        if not self.packets:       # reading the headers: find_stream_info also decodes a little of every stream
            return
        if not ctx or ctx in NOT_DECODERS:
            return
        if ctx in self.demux_contexts:
            named = _RE_STREAM_NAMED.search(text)
            if named is None or self.stream is None or int(named.group(1)) == self.stream:
                self.demux_errors += n            # about this stream (or no stream named): the next packet's
                self._pending += n
            return
        self.errors += n
        k = len(self.packets) - 1                   # the decoder is working on the last packet read
        self.bad_packets[k] = self.bad_packets.get(k, 0) + n


def video_report(path: str, info: media.MediaInfo, log_: ScanLog, seconds: float = 0.0) -> DamageReport:
    """Judge a video scan: frames decoded with errors and frames missing on the clip's frame grid."""
    n, fps = int(info.num_frames), float(info.fps)
    declared = info.declared_frames
    if declared is not None and n < declared <= 4 * n + 250:   # the header announces more frames than there are
        n = int(declared)
    if info.is_vfr:
        origin = media._grid_origin(info) / fps
    else:
        origin = float(info.video_start)
    times = np.asarray([t for t in log_.frames if not math.isnan(t)], np.float64)
    if times.size == 0 and log_.packets and not log_.errors:
        # no decoded frame named at all, yet no decoder complained: this ffmpeg words -debug_ts otherwise; judge
        # by the packets (what the container holds) rather than call every frame missing
        times = np.asarray([t for t, _ in log_.packets if not math.isnan(t)], np.float64)
    slots = np.arange(n, dtype=np.float64) / fps + origin
    missing: List[int] = []
    if n:
        if times.size == 0:
            missing = list(range(n))
        else:
            times.sort()
            if info.is_vfr:
                d = np.diff(times)
                tol = max(1.0 / fps, 1.5 * float(np.median(d))) if d.size else 1.0 / fps
            else:
                tol = 0.5 / fps
            j = np.searchsorted(times, slots)
            near = np.full(n, np.inf)
            for k in (j - 1, j):
                ok = (k >= 0) & (k < times.size)
                near[ok] = np.minimum(near[ok], np.abs(times[k[ok]] - slots[ok]))
            gone = near > tol + 1e-6
            if not info.is_vfr:
                # a CFR clip's frame decoded twice: the second copy stands in for one that is missing
                idx = np.rint((times - origin) * fps).astype(np.int64)
                idx = idx[(idx >= 0) & (idx < n)]
                counts = np.bincount(idx, minlength=n)
                gone |= counts > 1
            missing = [int(i) for i in np.flatnonzero(gone)]
    bad = set()
    for k in log_.bad_packets:
        t = log_.packets[k][0]
        if math.isnan(t):
            continue
        i = int(round((t - origin) * fps))
        if 0 <= i < n:
            bad.add(i)
    bad -= set(missing)
    return DamageReport(path=path, kind="video", num_frames=n, fps=fps, duration=n / fps if fps else 0.0,
                        errors=log_.errors, decoded=len(log_.frames), bad_frames=tuple(sorted(bad)),
                        missing_frames=tuple(missing), seconds=seconds, demux_errors=log_.demux_errors)


def _merge(ranges: List[Tuple[float, float]], gap: float = 1e-3) -> List[Tuple[float, float]]:
    out: List[Tuple[float, float]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + gap:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def audio_report(path: str, info: media.MediaInfo, log_: ScanLog, seconds: float = 0.0,
                 declared: Optional[float] = None) -> DamageReport:
    """Judge a sound scan: packets that failed to decode, holes in the decoded sound (or, when ffmpeg does not
    say what it decoded, between packets), a stream that ends before its announced length (`declared`, e.g. a
    WAV header's, else the probed duration). Times are seconds from the file's time 0 (`core.audio.load_audio`'s
    sample 0)."""
    zero = float(info.format_start)
    expected = max(float(info.audio_duration or 0.0), float(declared or 0.0),
                   float(info.declared_audio_duration or 0.0))
    pk = sorted(log_.sound.items()) if log_.sound else [(t, d) for t, d in log_.packets if not math.isnan(t)]
    ranges: List[Tuple[float, float]] = []
    for k in log_.bad_packets:
        t, d = log_.packets[k]
        if not math.isnan(t):
            ranges.append((t - zero, t - zero + max(d, 1e-3)))
    start = end = None
    if pk:
        pk.sort()
        start = pk[0][0]
        end = pk[0][0] + pk[0][1]
        for t, d in pk[1:]:
            if t - end > AUDIO_GAP_S:
                ranges.append((end - zero, t - zero))
            end = max(end, t + d)
    if expected > 0:
        first = start if start is not None else zero
        should_end = first + expected
        if end is None:
            ranges.append((first - zero, should_end - zero))
        elif should_end - end > AUDIO_SHORT_S:
            ranges.append((end - zero, should_end - zero))
    ranges = [(max(0.0, a), max(0.0, b)) for a, b in _merge(ranges) if b > a]
    return DamageReport(path=path, kind="audio", duration=expected, errors=log_.errors, decoded=len(pk),
                        audio_ranges=tuple((round(a, 4), round(b, 4)) for a, b in ranges), seconds=seconds,
                        demux_errors=log_.demux_errors)


def wav_declared_duration(path) -> Optional[float]:
    """Seconds of sound a WAV file's header announces (its data chunk's size), None when it is not a plain RIFF
    WAV or announces nothing usable (a size of 0 or 0xFFFFFFFF: a recorder that never finished the header)."""
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, rate, align = 12, None, None
    while pos + 8 <= len(head):
        cid, size = struct.unpack("<4sI", head[pos:pos + 8])
        if cid == b"fmt " and pos + 24 <= len(head):
            _fmt, _ch, rate, _bps, align = struct.unpack("<HHIIH", head[pos + 8:pos + 22])
        elif cid == b"data":
            if not rate or not align or size in (0, 0xFFFFFFFF):
                return None
            return size / float(align) / float(rate)
        pos += 8 + size + (size & 1)
    return None


def parse_scan(text: str, path: str, info: media.MediaInfo, kind: str) -> DamageReport:
    """The report for a scan's whole stderr `text` (pure: the tests feed it recorded ffmpeg output)."""
    stream = info.video_stream_index if kind == "video" else info.audio_stream_index
    log_ = ScanLog(demux_contexts=_demux_contexts(info), stream=stream)
    for line in text.splitlines():
        log_.feed(line)
    if kind == "video":
        return video_report(path, info, log_)
    return audio_report(path, info, log_, declared=wav_declared_duration(path))


def _demux_contexts(info: media.MediaInfo) -> Tuple[str, ...]:
    return (info.format_name, *info.format_name.split(",")) if info.format_name else ()


_CACHE: Dict[tuple, DamageReport] = {}
_CACHE_LOCK = threading.Lock()


def _key(path, kind: str) -> Optional[tuple]:
    ident = media._file_identity(path)
    return None if ident is None else (str(Path(path).resolve()), kind, *ident)


def scan_damage(path, info: Optional[media.MediaInfo] = None, kind: str = "video", *,
                cancel=None, timeout: Optional[float] = None, use_cache: bool = True) -> DamageReport:
    """Decode stream `kind` ("video" or "audio") of `path` once and report its damage. Cached per file (path,
    size, modification time) for the life of the process. MediaError when ffmpeg cannot be run to the end in
    `timeout` seconds (default: 60 s plus 2 s per second of media); CancelledError on cancel."""
    info = info or media.probe(path)
    stream = info.video_stream_index if kind == "video" else info.audio_stream_index
    if stream is None:
        return DamageReport(path=str(path), kind=kind, num_frames=int(info.num_frames), fps=float(info.fps))
    key = _key(path, kind)
    if use_cache and key is not None:
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
        if hit is not None:
            return hit
    exe = media.ffmpeg_path()
    if timeout is None:
        timeout = SCAN_TIMEOUT_BASE_S + SCAN_TIMEOUT_PER_S * max(info.duration, info.audio_duration or 0.0)
    log_ = ScanLog(demux_contexts=_demux_contexts(info), stream=stream)
    t0 = time.perf_counter()
    try:
        p = subprocess.Popen(build_scan_args(exe, path, stream), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **media._popen_kwargs())
    except OSError as e:
        raise FFmpegMissingError(f"{exe} cannot be run ({e}): {media.INSTALL_HINT}.") from None
    why: List[str] = []

    def watchdog():
        deadline = time.monotonic() + timeout
        while p.poll() is None:
            if cancel is not None and getattr(cancel, "cancelled", False):
                why.append("cancel")
            elif time.monotonic() > deadline:
                why.append("timeout")
            if why:
                p.kill()
                return
            time.sleep(0.05)

    dog = threading.Thread(target=watchdog, daemon=True)
    dog.start()
    try:
        for raw in iter(p.stderr.readline, b""):
            log_.feed(raw.decode("utf-8", "replace"))
    finally:
        p.stderr.close()
        p.wait()
        dog.join(timeout=1)
    seconds = time.perf_counter() - t0
    if "cancel" in why:
        raise CancelledError("Cancelled while checking the file for damage.")
    if "timeout" in why:
        raise MediaError(f"Checking {path} for damage took longer than {timeout:.0f} s; the file may be damaged "
                         "or on a slow drive: copy it to a local disk and try again.")
    if kind == "video":
        report = video_report(str(path), info, log_, seconds)
        if has_holes(report):
            media.decode_on_time_grid(path)     # frames after a hole keep their time (the hole holds a picture)
    else:
        report = audio_report(str(path), info, log_, seconds, declared=wav_declared_duration(path))
    if report.damaged:
        log.info("%s: %s", path, report.describe())      # the caller refuses or warns, once
    if use_cache and key is not None:
        with _CACHE_LOCK:
            _CACHE[key] = report
    return report


def has_holes(report: DamageReport) -> bool:
    """Video frames missing before the last decoded one (not only a cut-off end)."""
    if report.kind != "video" or not report.missing_frames:
        return False
    missing = set(report.missing_frames)
    last = max((i for i in range(report.num_frames) if i not in missing), default=-1)
    return min(missing) < last


def check_damage(reports: Sequence[DamageReport], allow: bool, path=None, hint: str = ALLOW_HINT) -> List[str]:
    """Refuse damaged input (DamagedMediaError, exit code 4) unless `allow`; then the warnings to show."""
    bad = [r for r in reports if r.damaged]
    if not bad:
        return []
    by_file: Dict[str, List[DamageReport]] = {}
    for r in bad:
        by_file.setdefault(r.path, []).append(r)
    if not allow:
        raise DamagedMediaError(" ".join(error_message(p, rs, hint) for p, rs in by_file.items()), bad)
    return [f"Warning: {p}: " + "; ".join(r.describe() for r in rs) + " (dubbed as it is)."
            for p, rs in by_file.items()]


def output_damage(video: Optional[DamageReport], voice: Optional[DamageReport], source_index: np.ndarray,
                  fps: float, out_indices: Sequence[int], voice_offset: int = 0) -> List[int]:
    """The frames of an output file (0 = its first frame, `out_indices[0]` of the dub) that show a damaged or
    missing source frame (`source_index`: source frame per output frame) or carry a damaged stretch of the voice
    (`voice` ranges, delayed by the editor's `voice_offset` frames)."""
    out = np.asarray(out_indices, np.int64)
    if out.size == 0:
        return []
    hit = np.zeros(out.size, bool)
    if video is not None and video.damaged:
        bad = video.frame_mask(max(int(np.max(source_index)) + 1, video.num_frames))
        src = np.asarray(source_index, np.int64)[out]
        hit |= bad[np.clip(src, 0, bad.size - 1)]
    if voice is not None and voice.audio_ranges and fps > 0:
        start = out / fps                          # output frame k spans [k/fps, (k+1)/fps) of the fitted voice
        shift = voice_offset / fps
        for a, b in voice.audio_ranges:
            hit |= (start < b + shift) & (start + 1.0 / fps > a + shift)
    return [int(k) for k in np.flatnonzero(hit)]
