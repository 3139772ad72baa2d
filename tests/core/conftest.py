"""Helpers for core tests: odd media inputs made with ffmpeg from a real GRID clip, built lazily once per session.

    def test_x(odd_media):
        path = odd_media("r2997")        # a pathlib.Path in a session temp folder

Kinds (all from the held-out GRID s1 clip `grid_clip`, cut to CLIP_SECONDS unless said otherwise):
  "cfr"       plain copy (H.264 + AAC, 25 fps)
  "r2997"     re-timed to 30000/1001 fps (every frame kept, so it plays faster), H.264, audio copied
  "mkv2997"   the same in Matroska (millisecond timestamps)
  "rot90"     stream copy tagged "rotate 90 degrees clockwise for display" (no pixel change)
  "vfr"       variable frame rate: frames 0-14 every 40 ms, then every 80 ms (H.264, no audio)
  "odd"       181x145 (odd size), yuv444p
  "noaudio"   video stream only
  "audio"     the AAC audio only, in an .m4a
  "wav_empty" a valid WAV header with zero samples
  "empty"     a 0-byte .mp4
  "garbage"   5000 random bytes named .mp4
  "sq512"     512x512, the full 3 s clip (75 frames), x264 defaults (one key frame)
"""
from pathlib import Path

import numpy as np
import pytest

from media_matrix import rotate_copy, run_ffmpeg

CLIP_SECONDS = 1.2


def _make(kind: str, src: Path, out: Path) -> None:
    t = ("-t", CLIP_SECONDS)
    x264 = ("-c:v", "libx264", "-preset", "ultrafast", "-crf", "18")
    if kind == "cfr":
        run_ffmpeg("-i", src, *t, "-c", "copy", out)
    elif kind == "r2997":
        run_ffmpeg("-i", src, *t, "-vf", "setpts=N/(30000/1001)/TB", "-r", "30000/1001", *x264, "-c:a", "copy", out)
    elif kind == "mkv2997":
        run_ffmpeg("-i", src, *t, "-vf", "setpts=N/(30000/1001)/TB", "-r", "30000/1001", *x264, "-c:a", "copy", out)
    elif kind == "rot90":
        tmp = out.with_name("rot_src.mp4")
        run_ffmpeg("-i", src, *t, "-c", "copy", tmp)
        rotate_copy(tmp, out, 90)
    elif kind == "vfr":
        run_ffmpeg(*t, "-i", src, "-vf", "setpts='(N+max(0\\,N-15))/25/TB'", "-fps_mode", "passthrough", *x264,
                   "-an", out)
    elif kind == "odd":
        run_ffmpeg("-i", src, *t, "-vf", "scale=181:145", *x264, "-pix_fmt", "yuv444p", "-an", out)
    elif kind == "noaudio":
        run_ffmpeg("-i", src, *t, "-an", "-c", "copy", out)
    elif kind == "audio":
        run_ffmpeg("-i", src, "-vn", "-c:a", "copy", out)
    elif kind == "wav_empty":
        import soundfile as sf

        sf.write(str(out), np.zeros(0, np.int16), 16000, subtype="PCM_16")
    elif kind == "empty":
        out.write_bytes(b"")
    elif kind == "garbage":
        out.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif kind == "sq512":
        run_ffmpeg("-i", src, "-vf", "scale=512:512", "-c:v", "libx264", "-preset", "veryfast", "-an", out)
    else:
        raise KeyError(kind)


EXT = {"audio": ".m4a", "wav_empty": ".wav", "mkv2997": ".mkv"}


@pytest.fixture(scope="session")
def odd_media(tmp_path_factory, grid_clip):
    folder = tmp_path_factory.mktemp("odd_media")
    made = {}

    def get(kind: str) -> Path:
        if kind not in made:
            out = folder / f"{kind}{EXT.get(kind, '.mp4')}"
            _make(kind, Path(grid_clip), out)
            made[kind] = out
        return made[kind]

    return get
