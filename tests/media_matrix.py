"""The real-world media matrix: video and voice files of every common kind, made with ffmpeg from one held-out
GRID s1 clip at test time (nothing big is committed), each made once per session on first use.

    def test_x(matrix_media):
        path = matrix_media.video("hevc10_mkv")     # pathlib.Path in a session temp folder
        voice = matrix_media.voice("m4a_16k_mono")

Videos are CLIP_SECONDS long (one second of a 3 s clip keeps the suite fast); voices are VOICE_SECONDS of the
same clip's own sound from VOICE_START (where the sentence is: GRID clips open with silence), longer than the video, so the default length policy gives the video's length and the
output's sound is the voice from its first sample: A/V sync can be checked against it).
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable, Dict, Tuple

import numpy as np

CLIP_SECONDS = 1.2
VOICE_SECONDS = 1.6
VOICE_START = 0.8
LATE_AUDIO_SECONDS = 0.4      # the "late audio" clip's sound starts this long after its first frame
LEADING_SILENCE_SECONDS = 0.5

X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-crf", "20")
MONO = ("-af", "pan=mono|c0=0.5*c0+0.5*c1")   # the average, as core.audio does (ffmpeg's -ac 1 adds 3 dB)
X265 = ("-c:v", "libx265", "-preset", "ultrafast", "-crf", "24", "-x265-params", "log-level=error")


def run_ffmpeg(*args) -> None:
    from core.media import ffmpeg_path

    subprocess.run([ffmpeg_path(), "-hide_banner", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def has_encoder(name: str) -> bool:
    from core.media import ffmpeg_path

    out = subprocess.run([ffmpeg_path(), "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.startswith(" "))


def rotate_copy(src: Path, dst: Path, clockwise: int) -> None:
    """Stream copy of `src` tagged "rotate `clockwise` degrees for display" (no pixel change)."""
    from core.media import ffmpeg_version

    if ffmpeg_version() >= (6, 0):
        run_ffmpeg("-display_rotation", (-clockwise) % 360, "-i", src, "-c", "copy", dst)
    else:  # ffmpeg 5.x turns the legacy tag into a counter-clockwise display matrix
        run_ffmpeg("-i", src, "-c", "copy", "-metadata:s:v:0", f"rotate={(-clockwise) % 360}", dst)


def _av1_args() -> Tuple[str, ...]:
    if has_encoder("libsvtav1"):
        return ("-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "verbosity=0")
    if has_encoder("libaom-av1"):
        return ("-c:v", "libaom-av1", "-cpu-used", "8", "-row-mt", "1")
    return ()


def _fps(rate: str) -> Tuple[str, ...]:
    """Re-timed by dropping/duplicating frames (the duration stays CLIP_SECONDS)."""
    return ("-vf", f"fps={rate}", *X264, "-c:a", "aac")


# name -> (file extension, ffmpeg output options after "-i SRC -t CLIP_SECONDS")
VIDEO_RECIPES: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "h264_mp4": (".mp4", (*X264, "-c:a", "aac")),
    "h264_10bit_mp4": (".mp4", (*X264, "-pix_fmt", "yuv420p10le", "-c:a", "aac")),
    "h264_yuv444p_mkv": (".mkv", (*X264, "-pix_fmt", "yuv444p", "-c:a", "aac")),
    "hevc_mp4": (".mp4", (*X265, "-tag:v", "hvc1", "-c:a", "aac")),
    "hevc10_mkv": (".mkv", (*X265, "-pix_fmt", "yuv420p10le", "-c:a", "aac")),
    "vp9_webm": (".webm", ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M",
                           "-c:a", "libopus")),
    "av1_mkv": (".mkv", (*_av1_args(), "-c:a", "aac")),
    "prores_mov": (".mov", ("-c:v", "prores_ks", "-profile:v", "0", "-c:a", "pcm_s16le")),
    "mpeg2_mpg": (".mpg", ("-c:v", "mpeg2video", "-q:v", "3", "-c:a", "mp2", "-f", "mpeg")),
    "mjpeg_avi": (".avi", ("-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", "-c:a", "pcm_s16le")),
    "fps23976": (".mp4", _fps("24000/1001")),
    "fps2997": (".mp4", _fps("30000/1001")),
    "fps30": (".mp4", _fps("30")),
    "fps50": (".mp4", _fps("50")),
    "fps5994": (".mp4", _fps("60000/1001")),
    # frames 0-9 every 40 ms, then every 80 ms (phones drop the rate in the dark): VFR, audio untouched
    "vfr": (".mp4", ("-vf", "setpts='(N+max(0\\,N-10))/25/TB'", "-fps_mode", "passthrough", *X264, "-c:a", "aac")),
    "odd_size": (".mp4", ("-vf", "scale=361:287", *X264, "-pix_fmt", "yuv444p", "-c:a", "aac")),
    "no_audio": (".mp4", (*X264, "-an")),
}
ROTATIONS = (90, 180, 270)
VIDEO_CASES = tuple(list(VIDEO_RECIPES) + [f"rot{r}" for r in ROTATIONS] + ["late_audio"])

# Voices. WAV: every subtype x rate x channel layout (load_audio only: soundfile writes them in microseconds).
WAV_SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")
WAV_RATES = (8000, 16000, 22050, 44100, 48000, 96000)
WAV_CHANNELS = (1, 2, 6)
WAV_CASES = tuple(f"wav_{s.lower()}_{r}_{c}ch" for s in WAV_SUBTYPES for r in WAV_RATES for c in WAV_CHANNELS)
# name -> (extension, ffmpeg output options) applied to the 48 kHz stereo master WAV
CODED_VOICES: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "mp3_44k_stereo": (".mp3", ("-ar", "44100", "-c:a", "libmp3lame", "-b:a", "128k")),
    "m4a_16k_mono": (".m4a", ("-ar", "16000", *MONO, "-c:a", "aac")),        # issue 9's crash
    "aac_48k_stereo_m4a": (".m4a", ("-c:a", "aac")),
    "opus_ogg": (".ogg", ("-c:a", "libopus", "-b:a", "64k")),
    "vorbis_ogg": (".ogg", ("-c:a", "libvorbis")),
    "flac_96k_24bit": (".flac", ("-ar", "96000", "-sample_fmt", "s32", "-c:a", "flac")),
    "mp4_16k_mono_video": (".mp4", ()),     # a video file used as the voice, its sound 16 kHz mono AAC
    "leading_silence_wav": (".wav", ()),
}
VOICE_CASES = tuple(CODED_VOICES)


class MatrixMedia:
    """Makes matrix files on first use into `folder` from the GRID clip `src`."""

    def __init__(self, folder: Path, src: Path):
        self.folder, self.src = Path(folder), Path(src)
        self._made: Dict[str, Path] = {}
        self._master_wav: np.ndarray | None = None

    def _once(self, name: str, ext: str, make: Callable[[Path], None]) -> Path:
        if name not in self._made:
            out = self.folder / f"{name}{ext}"
            make(out)
            self._made[name] = out
        return self._made[name]

    # ---- video
    def video(self, name: str) -> Path:
        if name.startswith("rot"):
            return self._once(name, ".mp4", lambda out: self._rotated(out, int(name[3:])))
        if name == "late_audio":
            return self._once(name, ".mp4", self._late_audio)
        ext, opts = VIDEO_RECIPES[name]
        return self._once(name, ext, lambda out: run_ffmpeg("-i", self.src, "-t", CLIP_SECONDS, *opts, out))

    def _rotated(self, out: Path, clockwise: int) -> None:
        """As a phone writes it: the pixels stored turned back, a tag to turn them `clockwise` for display, so
        the face is upright only when the tag is honoured."""
        from tools.bench import STORED_FOR_DISPLAY

        stored = out.with_name(f"{out.stem}_stored.mp4")
        run_ffmpeg("-i", self.src, "-t", CLIP_SECONDS, "-vf", STORED_FOR_DISPLAY[clockwise], *X264, "-c:a", "aac",
                   stored)
        rotate_copy(stored, out, clockwise)

    def _late_audio(self, out: Path) -> None:
        """The sound starts LATE_AUDIO_SECONDS after the first frame and stays in sync with the picture (as a
        camera that starts recording sound late writes it): the audio stream's start_time is about that."""
        d = LATE_AUDIO_SECONDS
        tail = out.with_name("late_audio_tail.m4a")
        run_ffmpeg("-ss", d, "-i", self.src, "-t", CLIP_SECONDS - d, "-vn", "-c:a", "aac", tail)
        run_ffmpeg("-i", self.src, "-itsoffset", d, "-i", tail, "-map", "0:v", "-map", "1:a", "-t", CLIP_SECONDS,
                   *X264, "-c:a", "copy", out)

    # ---- voice
    def master(self) -> Path:
        """VOICE_SECONDS of the clip's own sound, 48 kHz stereo float WAV: the source of every voice."""
        return self._once("master", ".wav", lambda out: run_ffmpeg(
            "-ss", VOICE_START, "-i", self.src, "-t", VOICE_SECONDS, "-vn", "-ar", "48000",
            "-af", "pan=stereo|c0=c0|c1=c0", "-c:a", "pcm_f32le", out))    # the mono clip in both, same level

    def reference16k(self) -> np.ndarray:
        """The master as core.audio loads it (16 kHz mono float32): what every voice must come back as."""
        if self._master_wav is None:
            from core.audio import load_audio

            self._master_wav = load_audio(self.master())
        return self._master_wav

    def wav(self, name: str) -> Path:
        subtype, rate, ch = name[len("wav_"):].rsplit("_", 2)
        return self._once(name, ".wav", lambda out: self._write_wav(out, subtype.upper(), int(rate), int(ch[0])))

    def _write_wav(self, out: Path, subtype: str, rate: int, channels: int) -> None:
        import soundfile as sf
        import soxr

        mono, sr = sf.read(str(self.master()), dtype="float32")
        mono = soxr.resample(mono.mean(axis=1), sr, rate, quality="HQ")
        if channels == 6:       # 5.1 as films carry it: dialogue in the centre channel only (FL FR FC LFE BL BR)
            data = np.zeros((mono.size, 6), np.float32)
            data[:, 2] = mono
        else:
            data = np.repeat(mono[:, None], channels, axis=1)
        sf.write(str(out), data, rate, subtype=subtype)

    def voice(self, name: str) -> Path:
        if name.startswith("wav_"):
            return self.wav(name)
        ext, opts = CODED_VOICES[name]
        if name == "mp4_16k_mono_video":
            return self._once(name, ext, lambda out: run_ffmpeg(
                "-ss", VOICE_START, "-i", self.src, "-t", VOICE_SECONDS, *X264, "-ar", "16000", "-ac", "1",
                "-c:a", "aac", out))    # the clip's sound is mono already
        if name == "leading_silence_wav":
            s = LEADING_SILENCE_SECONDS
            return self._once(name, ext, lambda out: run_ffmpeg(
                "-i", self.master(), "-af", f"adelay={int(s * 1000)}:all=1", "-c:a", "pcm_s16le", out))
        return self._once(name, ext, lambda out: run_ffmpeg("-i", self.master(), *opts, out))

    def voice_of_length(self, seconds: float) -> Path:
        """The clip's own sound cut or looped to `seconds` (16 kHz mono WAV), for the length-policy cases."""
        name = f"voice_{seconds:g}s"
        return self._once(name, ".wav", lambda out: run_ffmpeg(
            "-stream_loop", "3", "-i", self.master(), "-t", seconds, "-ar", "16000", *MONO, out))

    # ---- files that are not valid input
    def text_as_mp3(self) -> Path:
        return self._once("text", ".mp3", lambda out: out.write_text("not a sound\n" * 50))

    def truncated_video(self) -> Path:
        """The first half of an MP4 whose index is at the end: the header says nothing about the frames."""
        def make(out: Path) -> None:
            whole = out.with_name("whole_for_truncation.mp4")
            run_ffmpeg("-i", self.src, "-t", CLIP_SECONDS, *X264, "-c:a", "aac", whole)
            data = whole.read_bytes()
            out.write_bytes(data[:len(data) // 2])
        return self._once("truncated", ".mp4", make)
