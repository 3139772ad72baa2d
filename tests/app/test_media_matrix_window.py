"""The window's loading path on real-world media from the matrix (tests/media_matrix.py): open a video and a voice
as a user would, see the right number of frames, the picture upright at its display size, the voice loaded, and
(for the 16 kHz mono AAC voice that used to crash) tracking and scoring run to the end."""
from __future__ import annotations

import numpy as np
import pytest

from core import media
from tests.app.test_main_window import LONG, open_media, wait_for


@pytest.mark.parametrize("video_case, voice_case", [("hevc10_mkv", "opus_ogg"), ("rot90", "mp3_44k_stereo"),
                                                    ("vfr", "wav_pcm_24_48000_2ch")])
def test_window_opens_matrix_media(qtbot, make_window, matrix_media, video_case, voice_case):
    video, voice = str(matrix_media.video(video_case)), str(matrix_media.voice(voice_case))
    win = make_window(auto_analyze=False)
    open_media(qtbot, win, video, voice)
    info = media.probe(video)
    assert win.timeline.num_frames == info.num_frames and win.messages.last_error is None
    qtbot.waitUntil(lambda: win.face_view.painted_index == 0 and win.frames.exact, timeout=30_000)
    reader = media.FrameReader(video)
    try:
        first = reader.read(0)
    finally:
        reader.close()
    assert first.shape == (info.height, info.width, 3)            # upright, display size
    assert np.array_equal(win.face_view.array, first)             # the exact decoded frame is on screen
    data = next(iter(win.session.audio.values()))
    assert data.wav.dtype == np.float32 and abs(len(data.wav) / 16000 - 1.6) < 0.05


def test_window_tracks_and_scores_with_a_16k_mono_aac_voice(qtbot, make_window, matrix_media):
    video, voice = str(matrix_media.video("h264_mp4")), str(matrix_media.voice("m4a_16k_mono"))
    win = make_window(auto_analyze=True)
    win.project_io.open_paths([video, voice])
    assert wait_for(qtbot, win, win.analysis.scoringFinished, LONG * 2) == ("before",)
    assert win.session.chosen_track().present.sum() >= 28 and win.messages.last_error is None
