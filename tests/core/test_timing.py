import numpy as np
import pytest

from core import timing
from core.timing import LengthPolicy, fit_wav, frame_schedule


def test_shortest_is_default_and_min_length():
    idx, msg = frame_schedule(100, 160, fps=25)
    assert idx.dtype == np.int64 and np.array_equal(idx, np.arange(100))
    assert msg == "Voice is 2.4 s longer than the video; the output ends with the video and the rest of the " \
                  "voice is cut (policy: shortest)."
    idx, msg = frame_schedule(100, 40, "shortest", fps=25)
    assert np.array_equal(idx, np.arange(40))
    assert msg.startswith("Voice is 2.4 s shorter than the video; the output ends with the voice")
    idx, msg = frame_schedule(50, 50, LengthPolicy.SHORTEST)
    assert len(idx) == 50 and msg == ""


def test_trim_keeps_video_length():
    idx, msg = frame_schedule(100, 160, LengthPolicy.TRIM)
    assert np.array_equal(idx, np.arange(100)) and "60 frames longer" in msg and "cut" in msg
    idx, msg = frame_schedule(100, 30, LengthPolicy.TRIM, fps=25)
    assert np.array_equal(idx, np.arange(100)) and "padded with silence" in msg and "2.8 s shorter" in msg


def test_loop_pingpong_hold_follow_the_voice():
    idx, msg = frame_schedule(4, 11, LengthPolicy.LOOP)
    assert idx.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2] and "looped" in msg
    idx, msg = frame_schedule(4, 11, LengthPolicy.PINGPONG)
    assert idx.tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2] and "forwards and backwards" in msg
    idx, _ = frame_schedule(1, 5, LengthPolicy.PINGPONG)
    assert idx.tolist() == [0] * 5
    idx, msg = frame_schedule(4, 7, LengthPolicy.HOLD)
    assert idx.tolist() == [0, 1, 2, 3, 3, 3, 3] and "last video frame is held" in msg
    for p in (LengthPolicy.LOOP, LengthPolicy.PINGPONG, LengthPolicy.HOLD):
        idx, msg = frame_schedule(75, 30, p)            # shorter voice: the video is cut to it
        assert np.array_equal(idx, np.arange(30)) and "shorter" in msg and p.value in msg


def test_schedule_is_valid_for_many_lengths():
    rng = np.random.default_rng(0)
    for _ in range(200):
        v, a = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        for p in LengthPolicy:
            idx, msg = frame_schedule(v, a, p)
            n = {"shortest": min(v, a), "trim": v}.get(p.value, a)
            assert len(idx) == n and idx.min() >= 0 and idx.max() < v
            assert (msg == "") == (v == a) and "\n" not in msg
            if p is LengthPolicy.PINGPONG and v > 1:
                assert np.all(np.abs(np.diff(idx)) == 1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown length policy 'bounce'"):
        frame_schedule(10, 10, "bounce")
    with pytest.raises(ValueError, match="no frames"):
        frame_schedule(0, 10)
    with pytest.raises(ValueError, match="no frames"):
        frame_schedule(10, 0)
    assert LengthPolicy.parse(" Loop ") is LengthPolicy.LOOP


def test_fit_wav_and_voice_frames():
    wav = np.arange(16000, dtype=np.float32)
    out = fit_wav(wav, 25, 25)                          # 1 s -> exactly 16000 samples
    assert out.dtype == np.float32 and np.array_equal(out, wav)
    out = fit_wav(wav, 10, 25)
    assert np.array_equal(out, wav[:6400])
    out = fit_wav(wav, 30, 30000 / 1001)                # 1.001 s
    assert len(out) == 16016 and np.array_equal(out[:16000], wav) and not out[16000:].any()
    assert timing.voice_frames(16000, 25) == 25 and timing.voice_frames(16001, 25) == 26
    assert timing.voice_frames(49865, 29.97) == 94
