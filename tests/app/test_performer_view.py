"""The performer's picture beside the face view, in step with the timeline (issue 18): shown only while a performer
video is the active voice, its frame at the playhead following the editor's voice offset."""
from __future__ import annotations

import numpy as np

from app.session import commands as cmd
from core import media
from core.performer import performer_positions
from data_paths import GRID_S1, SAMPLES, heldout_names

LONG = 60000


def test_performer_positions_follow_the_voice_offset_and_the_performer_rate():
    # 25 f/s clip, 30 f/s performer video, the voice 10 frames late: output frame 10 plays the voice's first
    # 1/25 s, whose middle the performer shows 0.02 s in (0.1 of its frame 0)
    assert np.allclose(performer_positions([0, 10, 35], 25.0, 10, 30.0), [-11.9, 0.1, 30.1], atol=1e-9)
    # the performer's own A/V offset moves the picture, in its frames
    assert np.allclose(performer_positions([10], 25.0, 10, 30.0, offset_frames=3), [3.1])


def test_the_performer_video_is_shown_in_step_with_the_timeline(qtbot, make_window):
    win = make_window(auto_analyze=False)
    win.media.open_video(str(SAMPLES / "grid_s1_sample.mp4"))
    qtbot.waitUntil(lambda: win.session.info is not None, timeout=LONG)
    assert win.performer_view.isHidden()
    performer = str(GRID_S1 / "video" / f"{heldout_names()[3]}.mp4")
    win.media.add_voice(performer, performer=True)
    qtbot.waitUntil(lambda: not win.performer_view.isHidden(), timeout=LONG)
    reader = media.FrameReader(performer)
    try:
        win.timeline.set_playhead(30)
        qtbot.waitUntil(lambda: win.performer_view.caption.endswith("frame 30"), timeout=LONG)
        assert np.array_equal(win.performer_view.array, reader.read(30))
        win.apply(cmd.SetVoiceOffset(12))                     # the voice starts 12 frames later
        qtbot.waitUntil(lambda: win.performer_view.caption.endswith("frame 18"), timeout=LONG)
        assert np.array_equal(win.performer_view.array, reader.read(18))
        win.timeline.set_playhead(5)                          # before the voice starts: no performer picture
        qtbot.waitUntil(lambda: win.performer_view.array is None, timeout=LONG)
        assert "does not play here" in win.performer_view.placeholder
    finally:
        reader.close()
    win.media.add_voice(str(SAMPLES / "voice_sample.wav"))   # a plain voice active: the pane goes away
    qtbot.waitUntil(lambda: win.performer_view.isHidden(), timeout=LONG)
