"""The real studio window, driven offscreen with pytest-qt on GRID clips from ../shared/data."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from core import media
from core.engines.wav2lip import Wav2LipOptions
from core.project import SCHEMA_VERSION

from tests.app.media_helpers import ffmpeg, ffprobe_json

LONG = 120_000   # ms: tracking/scoring/export of a 3 s clip on a shared 2-core machine


def wait_for(qtbot, win, signal, timeout=LONG):
    """Wait for `signal`, failing at once (with the message) if the window shows an error instead."""
    got = []
    signal.connect(lambda *a: got.append(a))
    qtbot.waitUntil(lambda: bool(got) or win.messages.last_error is not None, timeout=timeout)
    assert win.messages.last_error is None, win.messages.last_error
    return got[0]


def run_export(qtbot, dlg, timeout=LONG * 2, on_start=None):
    """Click Export and wait for the dialog's outcome: ('ok', result) | ('failed', msg) | ('cancelled', None)."""
    with qtbot.waitSignal(dlg.exportFinished, timeout=timeout) as sig:
        dlg.export_button.click()
        assert dlg.job is not None, dlg.result_label.text()
        if on_start is not None:
            on_start(dlg.job)
    kind = sig.args[0]
    return kind, dlg.result if kind == "ok" else (dlg.job.error if kind == "failed" else None)


def open_media(qtbot, win, video, voice):
    with qtbot.waitSignal(win.media.mediaLoaded, timeout=LONG):
        win.project_io.open_paths([video, voice])
    qtbot.waitUntil(lambda: voice in {str(Path(p)) for p in win.session.audio} or
                    str(Path(voice).resolve()) in win.session.audio, timeout=LONG)


def test_open_scrub_keyboard_and_zoom(qtbot, make_window, grid_pair):
    video, voice = grid_pair
    win = make_window(auto_analyze=False)
    acts = win.actions_table
    assert not any(acts[n].isEnabled() for n in ("export", "play", "track", "undo", "redo", "remove_voice"))
    open_media(qtbot, win, video, voice)
    assert all(acts[n].isEnabled() for n in ("export", "play", "track", "remove_voice"))   # enabled from the session
    assert not acts["undo"].isEnabled() and not acts["redo"].isEnabled()
    info = media.probe(video)
    assert win.timeline.num_frames == info.num_frames == 75
    assert win.session.project.video == str(Path(video).resolve())
    assert win.session.project.voice.path == str(Path(voice).resolve())
    assert win.voice_combo.count() == 1 and "Voice:" in win.voice_lane.title
    reader = media.FrameReader(video)

    def shown(i, exact=False):
        return win.face_view.frame_index == i and win.face_view.painted_index == i and (win.frames.exact or not exact)

    qtbot.waitUntil(lambda: shown(0), timeout=10_000)
    win.activateWindow()
    win.timeline.setFocus()
    # keyboard stepping goes through the window's actions
    qtbot.keyClick(win.timeline, Qt.Key_Right)
    assert win.session.playhead == 1
    # scrubbing may first show the scrub cache's copy; once the playhead rests the exact frame replaces it
    qtbot.waitUntil(lambda: shown(1, exact=True), timeout=10_000)
    assert np.array_equal(win.face_view.array, reader.read(1))     # the real frame 1 is on screen
    qtbot.keyClick(win.timeline, Qt.Key_Right, Qt.ShiftModifier)
    assert win.session.playhead == 26                                      # +1 s at 25 fps
    qtbot.keyClick(win.timeline, Qt.Key_Left)
    assert win.session.playhead == 25
    qtbot.keyClick(win.timeline, Qt.Key_End)
    assert win.session.playhead == 74
    qtbot.keyClick(win.timeline, Qt.Key_Left, Qt.ShiftModifier)
    assert win.session.playhead == 49
    qtbot.keyClick(win.timeline, Qt.Key_Home)
    assert win.session.playhead == 0
    # click and drag on the timeline scrub; frames follow
    tl = win.timeline
    qtbot.mousePress(tl, Qt.LeftButton, pos=QPoint(int(tl.x_of(40.5)), 30))
    qtbot.mouseMove(tl, QPoint(int(tl.x_of(60.5)), 30))
    qtbot.mouseRelease(tl, Qt.LeftButton, pos=QPoint(int(tl.x_of(60.5)), 30))
    assert win.session.playhead == 60
    qtbot.waitUntil(lambda: shown(60, exact=True), timeout=10_000)
    assert np.array_equal(win.face_view.array, reader.read(60))
    # the scrub cache holds the whole clip once its background pass is done; its copies are close to exact
    qtbot.waitUntil(lambda: len(win.frames.scrub) == 75, timeout=LONG)
    approx = win.frames.scrub.get(win.session.project.video, 60)
    assert approx.shape == (288, 360, 3)
    assert np.abs(approx.astype(int) - reader.read(60).astype(int)).mean() < 3.0
    # a click in a waveform lane moves the playhead too
    win.voice_lane.frameClicked.emit(12)
    assert win.session.playhead == 12
    # zoom: the lanes follow the timeline's view
    win.actions_table["zoom_in"].trigger()
    win.actions_table["zoom_in"].trigger()
    assert tl.v1 - tl.v0 == pytest.approx(75 / 4)
    for lane in win.lanes:
        (x0, x1), _ = lane.getPlotItem().vb.viewRange()
        assert x0 == pytest.approx(tl.v0, abs=0.01) and x1 == pytest.approx(tl.v1, abs=0.01)
    # the voice waveform is the voice's audio (peak of the drawn envelope == peak of the samples in view)
    wav = win.session.audio[win.session.project.voice.path].wav
    x, y = win.voice_lane.curve.getData()
    s0, s1 = int(tl.v0 * 640), int(tl.v1 * 640)
    assert np.max(y) == pytest.approx(float(wav[s0:s1].max()), abs=1e-6)
    win.actions_table["fit"].trigger()
    assert (tl.v0, tl.v1) == (0, 75)
    # in/out range with I and O
    win.timeline.set_playhead(10)
    qtbot.keyClick(win.timeline, Qt.Key_I)
    win.timeline.set_playhead(29)
    qtbot.keyClick(win.timeline, Qt.Key_O)
    assert win.session.project.range == (10, 30)
    assert win.voice_lane.range_item.isVisible()
    assert win.session.dirty and win.windowTitle().endswith("* — LipDub Studio")
    reader.close()


def test_track_score_preview_export(qtbot, make_window, grid_pair, tmp_path):
    """The main path: tracking + scoring populate the overlays and the sync curve, the preview renders a
    dubbed frame, and a short range exports to a verified mp4 with the 'after' curve shown."""
    video, voice = grid_pair
    win = make_window(auto_analyze=True)
    win.project_io.open_paths([video, voice])
    assert wait_for(qtbot, win, win.analysis.scoringFinished, LONG * 2) == ("before",)
    # tracking: the face overlay has the chosen face with 68 landmarks and a mask outline
    ts = win.session.track_set
    assert ts is not None and ts.tracks
    track = win.session.chosen_track()
    assert track.present.sum() >= 70
    win.timeline.set_playhead(30)
    qtbot.waitUntil(lambda: win.face_view.painted_index == 30, timeout=10_000)
    ov = win.face_view.overlay
    chosen = [f for f in ov.faces if f.chosen]
    assert len(chosen) == 1 and chosen[0].landmarks.shape == (68, 2)
    assert ov.mask_outline is not None and len(ov.mask_outline) >= 8
    box = chosen[0].box
    mo = ov.mask_outline
    assert box[0] - 20 < mo[:, 0].mean() < box[2] + 20 and mo[:, 1].mean() > (box[1] + box[3]) / 2 - 10
    # frames without the face are marked on the timeline
    missing = ~track.present
    assert sum(b - a for a, b in win.timeline.no_face_runs) == int(missing.sum())
    # scoring: the curve has one value per frame; status panel shows the report
    rep = win.session.current_report()
    x, y, off = win.sync_track.curves["before"]
    assert len(y) == 75 and off == 0 and np.isfinite(y).sum() >= 60
    assert win.sync_panel.text("before", "lse_d") == f"{rep.lse_d:.2f}"
    assert win.sync_panel.text("before", "offset") == f"{rep.offset_frames:+d} frames"
    bx, by = win.sync_track.before_curve.getData()
    assert len(by) == 75
    # the lane shades exactly the frames the report calls low (core.sync.lane), at the report's threshold
    np.testing.assert_array_equal(win.sync_track.low_mask(75), rep.low)
    assert win.sync_track.threshold == rep.low_threshold and rep.low.any() != rep.low.all()
    # preview: the dubbed frame differs from the original inside the mouth region only
    win.actions_table["preview"].setChecked(True)
    assert wait_for(qtbot, win, win.playback.previewRendered, LONG * 2) == (30,)
    orig, dub = win.preview.original, win.preview.dubbed
    assert orig.shape == dub.shape
    diff = np.abs(orig.astype(int) - dub.astype(int)).sum(axis=2)
    lm = track.landmarks[30]
    mx0, my0 = lm[48:68].min(0) - 5
    mx1, my1 = lm[48:68].max(0) + 5
    inside = diff[int(my0):int(my1), int(mx0):int(mx1)]
    assert inside.mean() > 1.0                         # the mouth was re-rendered
    assert diff[:40, :].max() == 0                    # the top of the frame is untouched
    win.playback.set_preview_mode("split")
    assert win.mode_combo.currentData() == "split" and win.preview.mode == "split"
    # export frames [10, 30) through the dialog
    win.timeline.set_range((10, 30))
    out = tmp_path / "dub.mp4"
    dlg = win.show_export()
    assert dlg.range_inout.isChecked()
    dlg.output_edit.setText(str(out))
    dlg.preset_combo.setCurrentText("ultrafast")
    kind, res = run_export(qtbot, dlg)
    assert kind == "ok", res
    assert Path(res.output) == out and out.is_file()
    assert dlg.reveal_button.isVisible() and "Wrote" in dlg.result_label.text()
    doc = ffprobe_json(out)
    vs = [s for s in doc["streams"] if s["codec_type"] == "video"]
    au = [s for s in doc["streams"] if s["codec_type"] == "audio"]
    assert len(vs) == 1 and int(vs[0]["nb_read_frames"]) == 20
    assert len(au) == 1 and float(au[0]["duration"]) == pytest.approx(0.8, abs=0.1)
    assert win.session.project.export.output == str(out) and win.session.project.export.preset == "ultrafast"
    # the result's score appears as the 'after' curve over the exported range
    if res.report is not None:
        x, y, off = win.sync_track.curves["after"]            # whole clip; frames not scored are NaN
        assert off == 0 and len(y) == 75
        assert not np.isfinite(y[:10]).any() and not np.isfinite(y[30:]).any()
        assert np.isfinite(y[10:30]).sum() >= 10
        fin = np.isfinite(y[10:30])
        np.testing.assert_allclose(y[10:30][fin], np.asarray(res.report.per_frame, float)[fin])
        assert win.sync_panel.text("after", "lse_c") == f"{res.report.lse_c:.2f}"
    dlg.accept()


def test_cancel_export_leaves_no_output(qtbot, make_window, grid_pair, tmp_path, w2l_checkpoint):
    """(Wav2Lip engine with a random-weight file: the cancel path does not depend on the shipped models.)"""
    video, voice = grid_pair
    win = make_window(auto_analyze=False)
    open_media(qtbot, win, video, voice)
    win.session.project.engine = "wav2lip"
    win.session.project.engine_options["wav2lip"] = Wav2LipOptions(checkpoint=w2l_checkpoint)
    outdir = tmp_path / "exports"
    outdir.mkdir()
    out = outdir / "cancelled.mp4"
    dlg = win.show_export()
    dlg.output_edit.setText(str(out))
    cancelled_at = []

    def on_progress(stage, done, total):
        if stage == "dub" and done > 0 and not cancelled_at:
            cancelled_at.append((done, total))
            dlg.cancel_button.click()       # "Cancel" while running

    kind, msg = run_export(qtbot, dlg, on_start=lambda job: job.progress.connect(on_progress))
    assert kind == "cancelled", msg
    assert cancelled_at and cancelled_at[0][0] < cancelled_at[0][1]     # cancelled midway
    assert "cancelled" in dlg.stage_label.text().lower()
    assert not out.exists()
    assert list(outdir.iterdir()) == []                                # no partial or temp file
    assert dlg.export_button.isEnabled() and dlg.cancel_button.text() == "Close"
    dlg.accept()


def test_save_and_reopen_project(qtbot, make_window, grid_pair, sample_voice, tmp_path):
    video, voice = grid_pair
    win = make_window(auto_analyze=False)
    open_media(qtbot, win, video, voice)
    win.media.add_voice(sample_voice)
    qtbot.waitUntil(lambda: str(Path(sample_voice).resolve()) in win.session.audio, timeout=LONG)
    assert win.session.project.active_voice == 1 and win.voice_lane.title.endswith("voice_sample.wav")
    win.session.set_active_voice(0)
    assert win.voice_lane.title.endswith(Path(voice).name)
    win.timeline.set_range((5, 50))
    win.timeline.set_playhead(33)
    win.settings_panel.spins["feather"].setValue(0.4)
    win.settings_panel.color_check.setChecked(False)
    assert win.session.project.mask.feather == pytest.approx(0.4) and win.session.dirty
    path = tmp_path / "proj" / "dub.lipdub"
    path.parent.mkdir()
    assert win.project_io.save_to(str(path))
    assert not win.session.dirty and "dub" in win.windowTitle()
    doc = json.loads(path.read_text())
    assert doc["version"] == SCHEMA_VERSION and doc["range"] == [5, 50] and doc["playhead"] == 33
    assert not os.path.isabs(doc["video"])                   # stored relative to the project file

    win2 = make_window(auto_analyze=False, settings_file=tmp_path / "s2.ini")
    with qtbot.waitSignal(win2.media.mediaLoaded, timeout=LONG):
        assert win2.project_io.open_project(str(path))
    p = win2.session.project
    assert p.video == str(Path(video).resolve()) and len(p.voices) == 2 and p.active_voice == 0
    assert win2.timeline.range == (5, 50) and win2.session.playhead == 33
    assert win2.settings_panel.spins["feather"].value() == pytest.approx(0.4)
    assert not win2.settings_panel.color_check.isChecked()
    assert win2.voice_combo.count() == 2 and win2.voice_combo.currentIndex() == 0
    assert not win2.session.dirty
    # recent projects are remembered (QSettings) and offered in File > Open Recent
    assert win2.recent.items("projects")[0] == str(path.resolve())
    win.fill_recent_menu()
    names = [a.text() for a in win.actions_table.recent_menu.actions()]
    assert "dub.lipdub" in names and Path(video).name in names and "voice_sample.wav" in names
    act = next(a for a in win.actions_table.recent_menu.actions() if a.text() == "dub.lipdub")
    win.session.dirty = False
    with qtbot.waitSignal(win.project_io.projectLoaded, timeout=LONG):
        act.trigger()
    assert win.session.project.path == str(path.resolve())


def test_unsaved_changes_prompt_and_autosave_recovery(qtbot, make_window, grid_pair, tmp_path):
    video, voice = grid_pair
    autosave = tmp_path / "autosave"
    win = make_window(auto_analyze=False, autosave_dir=autosave)
    open_media(qtbot, win, video, voice)
    win.timeline.set_range((3, 9))
    assert win.session.dirty
    asked = []
    win.project_io.ask_unsaved = lambda: asked.append(1) or "cancel"
    assert not win.close()                     # cancelled: the window stays
    assert asked and win.isVisible()
    a = win.project_io.autosave()
    assert a and Path(a).is_file()
    # simulate a crash: the autosave stays behind under another (dead) process id
    crashed = autosave / "untitled-99999999.lipdub.autosave"
    Path(a).rename(crashed)
    win.session.dirty = False
    win2 = make_window(auto_analyze=False, settings_file=tmp_path / "s2.ini", autosave_dir=autosave)
    offered = []
    win2.project_io.ask_recover = lambda rec: offered.append(rec) or True
    with qtbot.waitSignal(win2.media.mediaLoaded, timeout=LONG):
        assert win2.project_io.check_recovery()
    assert offered and offered[0].autosave == str(crashed)
    assert win2.session.project.range == (3, 9) and win2.session.project.video == str(Path(video).resolve())
    assert win2.session.dirty                           # recovered work is unsaved
    assert not crashed.exists()
    win2.project_io.ask_unsaved = lambda: "discard"
    assert win2.close()


def test_errors_are_shown_not_raised(qtbot, make_window, tmp_path, grid_pair):
    win = make_window(auto_analyze=False)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video at all" * 100)
    with qtbot.waitSignal(win.messages.errorShown, timeout=LONG) as sig:
        win.media.open_video(str(bad))
    msg = sig.args[0]
    assert "broken.mp4" in msg and "Traceback" not in msg
    assert win.messages.error_boxes and win.messages.error_boxes[-1].isVisible()
    assert win.statusBar().currentMessage() == msg
    win.messages.close_boxes()
    # a voice file without any audio: readable error, and the track is not kept
    video, _ = grid_pair
    silent = tmp_path / "no_audio.mp4"
    ffmpeg("-i", video, "-an", "-c:v", "copy", silent)
    with qtbot.waitSignal(win.messages.errorShown, timeout=LONG) as sig:
        win.media.add_voice(str(silent))
    assert "no_audio.mp4" in sig.args[0] and "Traceback" not in sig.args[0]
    assert win.session.project.voices == []
    # an unreadable project
    proj = tmp_path / "bad.lipdub"
    proj.write_text("{oops")
    with qtbot.waitSignal(win.messages.errorShown, timeout=5000) as sig:
        assert not win.project_io.open_project(str(proj))
    assert "bad.lipdub" in sig.args[0]
    win.messages.close_boxes()


def test_drop_video_and_voice(qtbot, make_window, grid_pair):
    video, voice = grid_pair
    win = make_window(auto_analyze=False)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(video), QUrl.fromLocalFile(voice)])
    ev = QDropEvent(QPointF(100, 100), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(win.media.mediaLoaded, timeout=LONG):
        win.dropEvent(ev)
    assert win.session.project.video == str(Path(video).resolve())
    assert [v.path for v in win.session.project.voices] == [str(Path(voice).resolve())]


def test_play_range_moves_the_playhead_in_real_time(qtbot, make_window, grid_pair):
    import time as _time

    video, voice = grid_pair
    win = make_window(auto_analyze=False)
    open_media(qtbot, win, video, voice)
    win.timeline.set_range((10, 30))
    seen = []
    win.timeline.playheadChanged.connect(seen.append)
    t0 = _time.monotonic()
    with qtbot.waitSignal(win.playback.player.stopped, timeout=20_000):
        win.actions_table["play"].trigger()
        assert win.actions_table["play"].isChecked() and win.playback.player.playing
    elapsed = _time.monotonic() - t0
    assert not win.actions_table["play"].isChecked()
    assert win.session.playhead == 29
    assert seen == sorted(seen) and seen[0] >= 10 and len(seen) >= 5   # forward through the range
    assert 0.6 <= elapsed <= 6.0                                        # 20 frames at 25 fps = 0.8 s
    # Space toggles playback; stopping leaves the playhead where it was
    win.timeline.set_range(None)
    win.timeline.set_playhead(0)
    win.actions_table["play"].trigger()
    qtbot.waitUntil(lambda: win.session.playhead >= 3, timeout=10_000)
    win.actions_table["play"].trigger()
    assert not win.playback.player.playing
    stopped_at = win.session.playhead
    qtbot.wait(200)
    assert win.session.playhead == stopped_at


def test_engine_and_model_settings(qtbot, make_window, tmp_path):
    from app.settings_dialog import SettingsDialog
    from core.models.registry import REGISTRY

    win = make_window(auto_analyze=False)
    assert win.device_label.text().startswith("Device: auto")    # the default, resolved once torch is loaded
    win.show_settings()
    dlg = win.settings_dialog
    assert isinstance(dlg, SettingsDialog) and dlg.isVisible()
    weights = dlg.option_widget("wav2lip", "checkpoint")
    assert dlg.engine_combo.currentData() == "classic" and not weights.isVisibleTo(dlg)
    assert dlg.option_widget("classic", "k").value() == 12      # the classic engine's options, from its plug-in
    # every registry model is listed with its licence
    rows = {dlg.models_table.topLevelItem(i).data(0, Qt.UserRole): dlg.models_table.topLevelItem(i)
            for i in range(dlg.models_table.topLevelItemCount())}
    assert set(rows) == set(REGISTRY)
    for name, spec in REGISTRY.items():
        assert rows[name].text(4) == spec.licence
    # choosing a Wav2Lip model from the table selects the engine and shows its licence
    gen = [n for n, s in REGISTRY.items() if s.kind == "wav2lip"]
    assert gen
    dlg.models_table.itemClicked.emit(rows[gen[-1]], 0)
    assert dlg.engine_combo.currentData() == "wav2lip" and weights.isVisibleTo(dlg)
    assert weights.currentData() == gen[-1]
    assert REGISTRY[gen[-1]].licence in dlg.licence_label.text()
    mdir = tmp_path / "models"
    mdir.mkdir()
    (mdir / REGISTRY[gen[-1]].filename).write_bytes(b"x")
    dlg.models_edit.setText(str(mdir))
    dlg.models_edit.editingFinished.emit()
    assert "(present)" in weights.currentText()
    assert dlg.device_combo.currentData() == "auto"       # the default device
    dlg.device_combo.setCurrentIndex(dlg.device_combo.findData("cpu"))
    dlg.accept()
    p = win.session.project
    assert (p.engine, p.engine_options["wav2lip"].checkpoint, p.device, p.models_dir) == \
        ("wav2lip", gen[-1], "cpu", str(mdir))
    assert "classic" not in p.engine_options        # untouched options stay the engine's defaults
    assert win.device_label.text().lower() == "device: cpu"
    assert win.session.dirty


def test_two_faces_choose_by_click_and_missing_face_marks(qtbot, make_window, grid_pair, tmp_path):
    """Two speakers side by side, the right one hidden for the first 15 frames: both are tracked, the chosen
    one is highlighted, clicking the other chooses it, and its missing frames are marked on the timeline."""
    video, voice = grid_pair
    clip = tmp_path / "two_faces.mp4"
    ffmpeg("-i", video, "-i", voice, "-filter_complex",
           "[1:v]drawbox=enable='lt(n,15)':x=0:y=0:w=iw:h=ih:color=black:t=fill[r];[0:v][r]hstack=inputs=2[v]",
           "-map", "[v]", "-map", "0:a", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "aac",
           clip)
    win = make_window(auto_analyze=False)
    open_media(qtbot, win, str(clip), voice)
    win.analysis.start_tracking()
    wait_for(qtbot, win, win.analysis.trackingFinished, LONG * 2)
    ts = win.session.track_set
    assert len(ts.tracks) == 2
    # (which side keeps which id when the second face appears is the tracker's business)
    late = next(t for t in ts.tracks if not t.present[:12].any())
    early = next(t for t in ts.tracks if t is not late)
    assert late.present[20:].all() and early.present.all()
    first = win.session.chosen_track()
    assert first.track_id == ts.primary().track_id
    other = late if first is early else early

    def runs_of(track):
        from app.timeline import runs
        return runs(~track.present)

    assert win.timeline.no_face_runs == runs_of(first)
    win.timeline.set_playhead(40)
    qtbot.waitUntil(lambda: win.face_view.painted_index == 40, timeout=10_000)
    faces = {f.track_id: f for f in win.face_view.overlay.faces}
    assert faces[first.track_id].chosen and not faces[other.track_id].chosen
    # click inside the other face's box: it becomes the dubbed face
    b = other.boxes[40]
    pos = win.face_view.to_widget((b[0] + b[2]) / 2, (b[1] + b[3]) / 2).toPoint()
    qtbot.mouseClick(win.face_view, Qt.LeftButton, pos=pos)
    assert win.session.project.face_track == other.track_id and win.session.dirty
    assert win.settings_panel.track_combo.currentData() == other.track_id
    assert win.timeline.no_face_runs == runs_of(other)
    qtbot.waitUntil(lambda: win.face_view.painted_index == 40 and
                    any(f.chosen and f.track_id == other.track_id for f in win.face_view.overlay.faces),
                    timeout=10_000)
    # choose the late face (from the panel if needed): its missing frames are marked, the frame says so
    win.settings_panel.track_combo.setCurrentIndex(win.settings_panel.track_combo.findData(late.track_id))
    assert win.session.project.face_track == late.track_id
    r = win.timeline.no_face_runs
    assert len(r) == 1 and r[0][0] == 0 and 12 <= r[0][1] <= 20
    win.timeline.set_playhead(5)
    qtbot.waitUntil(lambda: win.face_view.painted_index == 5, timeout=10_000)
    assert win.face_view.overlay.message == "no face in this frame"
    assert win.face_view.overlay.mask_outline is None


def test_render_and_play_dubbed_range(qtbot, make_window, grid_pair, w2l_checkpoint):
    """(Wav2Lip engine with a random-weight file: tests the render-to-file-and-play plumbing.)"""
    video, voice = grid_pair
    win = make_window(auto_analyze=False)
    open_media(qtbot, win, video, voice)
    win.session.project.engine = "wav2lip"
    win.session.project.engine_options["wav2lip"] = Wav2LipOptions(checkpoint=w2l_checkpoint)
    win.timeline.set_range((20, 35))
    win.actions_table["render_play"].trigger()
    (path,) = wait_for(qtbot, win, win.playback.previewFileReady, LONG * 2)
    doc = ffprobe_json(path)
    vs = [x for x in doc["streams"] if x["codec_type"] == "video"]
    assert int(vs[0]["nb_read_frames"]) == 15
    assert any(x["codec_type"] == "audio" for x in doc["streams"])
    dlg = win.playback.player_dialog
    assert dlg.isVisible() and dlg.path == path and "Frames 20–34" in dlg.info_label.text()
    # the preview file is temporary: gone when the window closes
    win.session.dirty = False
    win.close()
    assert not Path(path).exists()


def test_length_note_says_how_long_the_dub_is(qtbot, make_window, grid_pair, tmp_path):
    """A voice longer than the video: the settings panel says what each length policy does (and that the timeline
    shows only the video's frames when the dub is longer)."""
    video, voice = grid_pair
    long_voice = tmp_path / "long_voice.wav"
    ffmpeg("-i", voice, "-i", voice, "-filter_complex", "[0:a][1:a]concat=n=2:v=0:a=1", "-ac", "1", "-ar", "16000",
           long_voice)                                                  # ~6 s against a 3 s video
    win = make_window(auto_analyze=False)
    open_media(qtbot, win, video, str(long_voice))
    note = win.settings_panel.length_note
    qtbot.waitUntil(lambda: "longer than the video" in note.text(), timeout=10_000)
    assert "ends with the video" in note.text() and "The dub has 75 frames" in note.text()
    panel = win.settings_panel
    panel.length_combo.setCurrentIndex(panel.length_combo.findData("loop"))
    assert win.session.project.length_policy == "loop"
    assert "looped" in note.text() and "The timeline shows the video's 75" in note.text()
    n = int(note.text().split("The dub has ")[1].split(" frames")[0])
    assert 145 <= n <= 155
    # a voice offset makes the voice longer still
    win.corrections.offset_spin.setValue(10)
    win.corrections.offset_spin.editingFinished.emit()
    assert int(note.text().split("The dub has ")[1].split(" frames")[0]) == n + 10
