"""What to do when the new voice and the video differ in length.

`frame_schedule` maps output frames to source video frames: output frame i shows source frame
``source_index[i]``. The voice is then cut or padded with silence to the output length (`fit_wav`).
"""
from __future__ import annotations

from enum import Enum
from typing import Optional, Tuple, Union

import numpy as np

from .audio import SAMPLE_RATE


class LengthPolicy(str, Enum):
    SHORTEST = "shortest"   # output = the shorter of video and voice (default)
    TRIM = "trim"           # output = video length; a longer voice is cut, a shorter one padded with silence
    LOOP = "loop"           # output = voice length; the video restarts from its first frame
    PINGPONG = "pingpong"   # output = voice length; the video plays forwards, backwards, forwards...
    HOLD = "hold"           # output = voice length; the last video frame is held

    @classmethod
    def parse(cls, value: Union[str, "LengthPolicy"]) -> "LengthPolicy":
        try:
            return cls(str(getattr(value, "value", value)).strip().lower())
        except ValueError:
            names = ", ".join(p.value for p in cls)
            raise ValueError(f"unknown length policy {value!r}; use one of {names}") from None


LENGTH_POLICIES = tuple(p.value for p in LengthPolicy)


def voice_frames(num_samples: int, fps: float, sr: int = SAMPLE_RATE) -> int:
    """Video frames covered by `num_samples` of audio (rounded up: a partial frame still has voice in it)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return int(np.ceil(int(num_samples) * float(fps) / sr - 1e-6))


def _amount(frames: int, fps: Optional[float]) -> str:
    if fps:
        return f"{frames / fps:.1f} s"
    return f"{frames} frame{'s' if frames != 1 else ''}"


def frame_schedule(num_video_frames: int, num_voice_frames: int,
                   policy: Union[str, LengthPolicy] = LengthPolicy.SHORTEST,
                   fps: Optional[float] = None) -> Tuple[np.ndarray, str]:
    """(source_index int64 (num_output_frames,), message): output frame i shows source frame source_index[i].

    shortest: min(video, voice) frames. trim: the video's length. loop / pingpong / hold: the voice's length
    (a shorter voice cuts the video). `message` is one sentence saying what happened ("" when the lengths
    match); durations are in seconds when `fps` is given, else in frames."""
    p = LengthPolicy.parse(policy)
    v, a = int(num_video_frames), int(num_voice_frames)
    if v <= 0:
        raise ValueError(f"the video has no frames (num_video_frames={num_video_frames})")
    if a <= 0:
        raise ValueError(f"the voice has no frames (num_voice_frames={num_voice_frames})")
    diff = abs(a - v)
    tag = f"(policy: {p.value})"
    longer = f"Voice is {_amount(diff, fps)} longer than the video"
    shorter = f"Voice is {_amount(diff, fps)} shorter than the video"

    if p in (LengthPolicy.SHORTEST, LengthPolicy.TRIM):
        n = min(v, a) if p is LengthPolicy.SHORTEST else v
        idx = np.arange(n, dtype=np.int64)
        if a == v:
            msg = ""
        elif a > v:
            msg = f"{longer}; the output ends with the video and the rest of the voice is cut {tag}."
        elif p is LengthPolicy.SHORTEST:
            msg = f"{shorter}; the output ends with the voice and the rest of the video is cut {tag}."
        else:
            msg = f"{shorter}; the voice is padded with silence to the end of the video {tag}."
        return idx, msg

    n = a
    out = np.arange(n, dtype=np.int64)
    if a <= v:
        idx = out
        msg = "" if a == v else f"{shorter}; the output ends with the voice and the rest of the video is cut {tag}."
        return idx, msg
    if p is LengthPolicy.LOOP:
        idx = out % v
        msg = f"{longer}; the video is looped to the end of the voice {tag}."
    elif p is LengthPolicy.PINGPONG:
        if v == 1:
            idx = np.zeros(n, np.int64)
        else:
            period = 2 * v - 2
            ph = out % period
            idx = np.where(ph < v, ph, period - ph)
        msg = f"{longer}; the video plays forwards and backwards to the end of the voice {tag}."
    else:
        idx = np.minimum(out, v - 1)
        msg = f"{longer}; the last video frame is held to the end of the voice {tag}."
    return idx.astype(np.int64), msg


def fit_wav(wav: np.ndarray, num_output_frames: int, fps: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Cut or zero-pad `wav` to exactly round(num_output_frames * sr / fps) samples (float32)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    n = int(round(int(num_output_frames) * sr / float(fps)))
    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    if x.size >= n:
        return x[:n].copy()
    return np.concatenate([x, np.zeros(n - x.size, np.float32)])
