"""Which source frame and which stretch of the voice each output frame carries."""
from __future__ import annotations

import numpy as np

from .. import audio as audio_mod
from .. import timing
from ..edits import shifted_length
from ..engines.base import DubContext


def output_schedule(num_video_frames: int, fps: float, num_voice_samples: int, voice_offset: int = 0,
                    length_policy: str = "shortest", seconds: bool = False):
    """(source frame per output frame, message): how long the dub of a voice of `num_voice_samples` (16 kHz,
    before the editor's `voice_offset`) is, and why. `seconds`: durations in the message in seconds, not frames."""
    n = shifted_length(num_voice_samples, voice_offset, fps, audio_mod.SAMPLE_RATE)
    num_voice_frames = max(1, timing.voice_frames(n, fps, audio_mod.SAMPLE_RATE))
    return timing.frame_schedule(num_video_frames, num_voice_frames, timing.LengthPolicy(length_policy),
                                 fps=fps if seconds else None)


def voice_for(ctx: DubContext, out_idx: np.ndarray) -> np.ndarray:
    """The fitted voice under output frames [out_idx[0], out_idx[-1]] (what the output file carries)."""
    a, b = int(out_idx[0]), int(out_idx[-1]) + 1
    spf = audio_mod.SAMPLE_RATE / ctx.fps
    return ctx.wav[int(round(a * spf)):int(round(b * spf))]


def remap_track(track, schedule: np.ndarray):
    """The chosen track seen through an output schedule (output frame i shows source frame schedule[i])."""
    from ..faces.track import FaceTrack

    s = np.asarray(schedule, np.int64)
    return FaceTrack(track_id=track.track_id, boxes=track.boxes[s], landmarks=track.landmarks[s],
                     present=track.present[s])
