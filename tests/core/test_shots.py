"""Where `--split-shots` cuts a clip, and the stream-copy join of encoded parts."""
import numpy as np
import pytest

from core import media
from core.errors import OutputError
from core.shots import shot_segments


def test_segments_start_at_cuts_and_keep_a_minimum_length():
    src = np.arange(300)
    assert shot_segments(src, [75, 150, 160, 290], np.arange(300), 25) == [(0, 75), (75, 150), (150, 300)]
    # a frame range: segments cover exactly the range
    assert shot_segments(src, [75, 150], np.arange(40, 200), 10) == [(40, 75), (75, 150), (150, 200)]
    assert shot_segments(src, [], np.arange(300), 25) == [(0, 300)]
    # a held frame (schedule repeats a cut frame) starts no new segment; a loop back to a cut does
    held = np.array([0, 1, 2, 3, 3, 3, 4, 5])
    assert shot_segments(held, [3], np.arange(8), 1) == [(0, 3), (3, 8)]
    looped = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    assert shot_segments(looped, [0, 2], np.arange(8), 2) == [(0, 2), (2, 4), (4, 6), (6, 8)]


def _part(path, frames, value):
    with media.VideoWriter(path, 64, 48, 25, crf=0, preset="ultrafast") as w:
        for k in range(frames):
            w.write(np.full((48, 64, 3), value + 10 * k, np.uint8))


def test_join_copies_parts_and_muxes_the_voice_once(tmp_path):
    _part(tmp_path / "p0.mp4", 5, 20)
    _part(tmp_path / "p1.mp4", 7, 120)
    voice = np.sin(np.arange(16000 * 12 // 25) / 10.0).astype(np.float32) * 0.3
    out = media.join_video_parts([tmp_path / "p0.mp4", tmp_path / "p1.mp4"], tmp_path / "j.mp4", 12, 25,
                                 audio=voice)
    info = media.probe(str(out))
    assert info.num_frames == 12 and info.has_audio and abs(info.duration - 0.48) < 0.03
    frames = list(media.iter_frames(str(out)))
    got = [int(np.median(f)) for f in frames]
    want = [20 + 10 * k for k in range(5)] + [120 + 10 * k for k in range(7)]
    assert np.allclose(got, want, atol=2)        # lossless parts, BGR->YUV->BGR rounding only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.mp4", "p0.mp4", "p1.mp4"]


def test_join_refuses_a_wrong_frame_count_and_leaves_nothing(tmp_path):
    _part(tmp_path / "p0.mp4", 5, 20)
    with pytest.raises(OutputError, match="gave 5 frames instead of 6"):
        media.join_video_parts([tmp_path / "p0.mp4"], tmp_path / "j.mp4", 6, 25)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p0.mp4"]
