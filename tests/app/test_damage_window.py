"""Damaged media in the window (issue 21): a message when the file is opened, the damaged frames hatched on the
timeline, and the export dialog saying what a dub does with them. The session's part is Qt-free."""
from __future__ import annotations

import numpy as np

from app.session import Session
from core.media_damage import DamageReport
from data_paths import SAMPLES

LONG = 60000


def cut_copy(tmp_path, fraction=0.5):
    data = (SAMPLES / "grid_s1_sample.mp4").read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[:int(len(data) * fraction)])
    return p


def test_session_damaged_frames_and_note():
    from core import media

    s = Session()
    video = str(SAMPLES / "grid_s1_sample.mp4")
    s.set_video(video, media.probe(video))
    assert s.damaged_frames() is None and s.damage_note() == ""
    seen = []
    s.events.damage.connect(lambda e: seen.append(e.path))
    s.set_damage(DamageReport(path=video, kind="video", num_frames=75, fps=25.0, missing_frames=tuple(range(32, 75)),
                              bad_frames=(3,)))
    assert seen == [video]
    mask = s.damaged_frames()
    assert mask.shape == (75,) and np.flatnonzero(mask).tolist() == [3] + list(range(32, 75))
    note = s.damage_note()
    assert "frames 32–74 of 75 could not be decoded (1.28–3.00 s)" in note and "freezes" in note
    assert "patched-up" in note and "hatched" in note


def test_session_note_on_a_damaged_performer_video():
    from core import media

    s = Session()
    video = str(SAMPLES / "grid_s1_sample.mp4")
    s.set_video(video, media.probe(video))
    s.add_voice("performer.mp4", performer=True)
    assert s.project.voice.performer and s.performer_damage() is None
    s.set_damage(DamageReport(path=s.project.voice.path, kind="video", num_frames=75, fps=25.0, missing_frames=(40, 41)))
    assert s.performer_damage().missing_frames == (40, 41)
    assert s.damaged_frames() is None            # the output's own picture and voice are whole: nothing hatched
    note = s.damage_note()
    assert "Performer video: video damaged: frames 40–41 of 75" in note and "the voice drives the mouth" in note
    assert "hatched" not in note
    s.add_voice(str(SAMPLES / "voice_sample.wav"))   # a plain voice active: the performer's picture is not used
    assert s.performer_damage() is None and s.damage_note() == ""


def test_open_cut_video_says_so_hatches_and_export_explains(qtbot, make_window, tmp_path, sample_voice):
    win = make_window(auto_analyze=False)
    cut = cut_copy(tmp_path)
    with qtbot.waitSignal(win.messages.errorShown, timeout=LONG) as sig:
        win.media.open_video(str(cut))
    msg = sig.args[0]
    assert msg.startswith("cut.mp4: video damaged: frames 32–74 of 75 could not be decoded (1.28–3.00 s)"), msg
    assert win.messages.error_boxes[-1].windowTitle() == "Damaged video"
    win.messages.close_boxes()
    assert win.timeline.damage_runs == [(32, 75)]
    # hatched: the timeline's pixels over the damaged frames are orange, those before are not
    win.timeline.set_view(0, 75)
    img = win.timeline.grab().toImage()
    y = win.timeline.RULER_H + win.timeline.THUMB_H + 4
    x_bad, x_good = int(win.timeline.x_of(60)), int(win.timeline.x_of(10))
    orange = [img.pixelColor(x_bad + k, y) for k in range(8)]
    assert any(c.red() > 180 and c.green() > 90 and c.blue() < 120 for c in orange), [c.name() for c in orange]
    plain = img.pixelColor(x_good, y)
    assert not (plain.red() > 180 and plain.blue() < 120)
    # the export dialog says what will happen to the damaged frames
    win.media.add_voice(sample_voice)
    qtbot.waitUntil(lambda: win.session.voice_data() is not None, timeout=LONG)
    dlg = win.show_export()
    assert not dlg.damage_label.isHidden()
    assert "frames 32–74" in dlg.damage_label.text() and "freezes" in dlg.damage_label.text()
    dlg.close()
    # the window's dubs take the damaged input (the user has been told), listing it
    assert win.dub_settings().allow_damaged


def test_adding_a_damaged_performer_video_says_the_voice_drives_there(qtbot, make_window, tmp_path):
    win = make_window(auto_analyze=False)
    win.media.open_video(str(SAMPLES / "grid_s1_sample.mp4"))
    performer = cut_copy(tmp_path, 0.9)
    win.media.add_voice(str(performer), performer=True)
    qtbot.waitUntil(lambda: any(b.windowTitle() == "Damaged performer video" for b in win.messages.error_boxes),
                    timeout=LONG)
    box = next(b for b in win.messages.error_boxes if b.windowTitle() == "Damaged performer video")
    assert "cut.mp4: video damaged: frames 65–74 of 75" in box.text() and "the voice drives it there" in box.text()
    assert "Performer video: video damaged" in win.session.damage_note()
    win.messages.close_boxes()
