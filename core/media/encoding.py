"""Writing: the H.264 encoder (`VideoWriter`), muxing the sound, joining parts, checking the output path."""
from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ..atomic import new_file_mode, temporary_beside
from ..errors import OutputError
from .probing import MediaInfo, _sar_str, probe
from .tools import PathLike, _Proc, _fps_mode_args, ffmpeg_path, ffmpeg_version

log = logging.getLogger(__name__)

SUPPORTED_OUTPUT_EXT = (".mp4", ".mov", ".m4v", ".mkv")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")  # x264





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


def _output_args(out_path: PathLike, container: Optional[str]) -> List[str]:
    """The output end of an ffmpeg command: MP4/MOV with the index up front, the container forced when named."""
    args = ["-movflags", "+faststart"] if container in (None, "mp4", "mov") else []
    return args + (["-f", container] if container else []) + [str(out_path)]


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
    return args + _output_args(out_path, container)


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
    return args + _output_args(out_path, container)


def build_concat_args(ffmpeg: str, list_path: PathLike, out_path: PathLike,
                      container: Optional[str] = None) -> List[str]:
    """Join the video-only files named in `list_path` (ffmpeg concat-demuxer list) by stream copy: no
    re-encoding, so each part's frames are kept bit for bit (parts must share codec settings and size)."""
    args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
            "-i", str(list_path), "-map", "0:v:0", "-c", "copy"]
    return args + _output_args(out_path, container)


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
