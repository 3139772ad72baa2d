"""Corrections in the real window: range overrides, voice offset, mask keyframes, drawn mask areas, face-box
fixes; undo/redo with the keyboard; all saved with the project."""

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app import core_bridge
from core.project import Project

from tests.app.test_main_window import LONG, open_media, wait_for


@pytest.fixture
def tracked(qtbot, make_window, grid_pair):
    video, voice = grid_pair
    win = make_window(auto_analyze=False)
    open_media(qtbot, win, video, voice)
    win.analysis.start_tracking()
    wait_for(qtbot, win, win.analysis.trackingFinished, LONG)
    return win


def show(qtbot, win, frame):
    win.timeline.set_playhead(frame)
    qtbot.waitUntil(lambda: win.face_view.painted_index == frame, timeout=10_000)


def test_range_override_undo_redo_and_save(qtbot, tracked, tmp_path):
    win = tracked
    c = win.corrections
    assert not c.keep_button.isEnabled()                  # needs a range
    win.timeline.set_range((10, 20))
    assert c.keep_button.isEnabled()
    c.keep_button.click()
    e = win.session.project.edits
    assert [(o.start, o.end, o.kind) for o in e.overrides] == [(10, 20, "keep_original")]
    assert win.timeline.edits is e and c.list.count() == 1 and "Keep original" in c.list.item(0).text()
    show(qtbot, win, 15)
    assert win.face_view.overlay.message == "kept original"
    win.timeline.set_range((30, 40))
    c.engine_combo.setCurrentIndex(c.engine_combo.findData("wav2lip"))
    c.engine_button.click()
    assert [o.kind for o in win.session.project.edits.overrides] == ["keep_original", "engine"]
    assert win.actions_table["undo"].text().startswith("&Undo Use wav2lip")
    # undo / redo from the keyboard
    win.activateWindow()
    win.timeline.setFocus()
    qtbot.keyClick(win.timeline, Qt.Key_Z, Qt.ControlModifier)
    assert [o.kind for o in win.session.project.edits.overrides] == ["keep_original"]
    qtbot.keyClick(win.timeline, Qt.Key_Z, Qt.ControlModifier)
    assert win.session.project.edits.overrides == [] and c.list.count() == 0
    qtbot.keyClick(win.timeline, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert [o.kind for o in win.session.project.edits.overrides] == ["keep_original"]
    # remove from the list
    c.list.setCurrentRow(0)
    c.remove_button.click()
    assert win.session.project.edits.overrides == []
    win.undo()
    assert len(win.session.project.edits.overrides) == 1
    # teeth from the playhead frame for the range
    win.timeline.set_range((40, 60))
    win.timeline.set_playhead(45)
    c.teeth_button.click()
    t = win.session.project.edits.teeth_shots[0]
    assert (t.start, t.end, t.frame) == (40, 60, 45)
    # saved and reopened with the history
    path = tmp_path / "c.lipdub"
    assert win.project_io.save_to(str(path))
    p = Project.load(str(path))
    assert p.edits.to_json() == win.session.project.edits.to_json()
    assert p.history.can_undo and p.history.undo_label == "Teeth proxy: frame 45"


def test_voice_offset_moves_the_voice_lane(qtbot, tracked):
    win = tracked
    x0, _ = win.voice_lane.curve.getData()
    assert x0.min() < 0.5
    win.corrections.offset_spin.setValue(5)
    win.corrections.offset_spin.editingFinished.emit()
    assert win.session.project.edits.voice_offset == 5
    x1, _ = win.voice_lane.curve.getData()
    assert x1.min() >= 5.0 - 1e-6                             # drawn 5 frames later
    assert win.voice_lane.offset == 5
    win.undo()
    assert win.session.project.edits.voice_offset == 0 and win.corrections.offset_spin.value() == 0


def test_mask_keyframes_interpolate_and_drive_the_outline(qtbot, tracked):
    win = tracked
    panel = win.settings_panel
    show(qtbot, win, 10)
    win.corrections.key_button.click()                      # keyframe with the current mask
    assert [k.frame for k in win.session.project.edits.mask_keyframes] == [10]
    show(qtbot, win, 50)
    panel.spins["dilation"].setValue(0.5)                  # auto-key at 50
    kfs = win.session.project.edits.mask_keyframes
    assert [k.frame for k in kfs] == [10, 50] and kfs[1].settings.dilation == pytest.approx(0.5)
    assert win.session.project.mask.dilation == pytest.approx(0.08)     # the clip-wide mask is unchanged
    show(qtbot, win, 30)
    assert panel.spins["dilation"].value() == pytest.approx((0.08 + 0.5) / 2, abs=0.01)
    track = win.session.chosen_track()
    expected = core_bridge.mask_outline((288, 360), track.landmarks[30], win.session.mask_at(30))
    qtbot.waitUntil(lambda: win.face_view.painted_index == 30 and win.face_view.overlay.mask_outline is not None,
                    timeout=10_000)
    got = win.face_view.overlay.mask_outline
    assert got.shape == expected.shape and np.allclose(got, expected)
    small = core_bridge.mask_outline((288, 360), track.landmarks[30], win.session.project.mask)
    area = lambda c: 0.5 * abs(np.dot(c[:, 0], np.roll(c[:, 1], 1)) - np.dot(c[:, 1], np.roll(c[:, 0], 1)))
    assert area(got) > area(small) * 1.1                    # the interpolated mask is wider
    win.corrections.unkey_button.setEnabled(True)
    show(qtbot, win, 50)
    assert win.corrections.unkey_button.isEnabled()
    win.corrections.unkey_button.click()
    assert [k.frame for k in win.session.project.edits.mask_keyframes] == [10]


def test_draw_mask_area_and_fix_box(qtbot, tracked):
    win = tracked
    fv = win.face_view
    show(qtbot, win, 20)
    track = win.session.chosen_track()
    lm = track.landmarks[20]
    # an area to add under the chin, clicked as four corners and closed by a double-click
    corners = [(lm[6, 0], lm[8, 1] + 5), (lm[10, 0], lm[8, 1] + 5), (lm[10, 0], lm[8, 1] + 25),
               (lm[6, 0], lm[8, 1] + 25)]
    win.corrections.tool_buttons["add"].click()
    assert fv.tool == "add"
    pts = [fv.to_widget(x, y).toPoint() for x, y in corners]
    for q in pts:
        qtbot.mouseClick(fv, Qt.LeftButton, pos=q)
    qtbot.mouseDClick(fv, Qt.LeftButton, pos=pts[-1])
    kfs = win.session.project.edits.mask_keyframes
    assert len(kfs) == 1 and kfs[0].frame == 20 and len(kfs[0].polygons) == 1
    assert kfs[0].polygons[0].mode == "add"
    qtbot.waitUntil(lambda: fv.painted_index == 20 and bool(fv.overlay.polygons), timeout=10_000)
    mode, drawn = fv.overlay.polygons[0]
    assert mode == "add" and np.allclose(drawn, np.array(corners), atol=2.0)   # back in frame pixels
    # the area follows the face: stored in face coordinates (inter-ocular units)
    assert np.abs(np.array(kfs[0].polygons[0].points)).max() < 5
    # and the mask outline now reaches down over the added area
    plain = core_bridge.mask_outline((288, 360), lm, win.session.project.mask)
    qtbot.waitUntil(lambda: fv.overlay.mask_outline is not None and
                    fv.overlay.mask_outline[:, 1].max() > plain[:, 1].max() + 10, timeout=10_000)
    win.corrections.clear_tool()
    assert fv.tool is None
    # fix the face box by dragging a rectangle
    win.corrections.tool_buttons["box"].click()
    b = track.boxes[20]
    a = fv.to_widget(b[0] - 6, b[1] - 6).toPoint()
    z = fv.to_widget(b[2] + 6, b[3] + 6).toPoint()
    qtbot.mousePress(fv, Qt.LeftButton, pos=a)
    qtbot.mouseMove(fv, z)
    qtbot.mouseRelease(fv, Qt.LeftButton, pos=z)
    fixes = win.session.project.edits.box_fixes
    assert len(fixes) == 1 and fixes[0].frame == 20
    assert np.allclose(fixes[0].box, (b[0] - 6, b[1] - 6, b[2] + 6, b[3] + 6), atol=2.0)
    assert fv.tool is None                                   # one box, then back to the pointer
    qtbot.waitUntil(lambda: fv.painted_index == 20 and fv.overlay.fixed_box is not None, timeout=10_000)
    # the landmarks are re-tracked from the fixed box in the background; the face stays tracked
    qtbot.waitUntil(lambda: win.jobs.get("refit") is None, timeout=LONG)
    assert win.messages.last_error is None, win.messages.last_error
    assert win.session.chosen_track().present[20]
    win.undo()
    assert win.session.project.edits.box_fixes == []


def _play_live(qtbot, win, rng):
    """Play `rng` dubbed (Space), at a quarter speed so that a busy test machine still shows frames inside and
    outside the kept range; -> ({frame: (original, dubbed)} shown, PlaybackStats)."""
    win.timeline.set_range(rng)
    win.playback.speed = 0.25
    shown = {}
    live = win.playback.live
    show_frame = lambda i, o, d: shown.__setitem__(i, (o, d))  # noqa: E731
    live.frame.connect(show_frame)
    with qtbot.waitSignal(win.playback.livePlaybackFinished, timeout=60_000) as sig:
        win.actions_table["play"].trigger()
        assert live.playing and win.actions_table["play"].isChecked()
    live.frame.disconnect(show_frame)
    stats = sig.args[0]
    assert stats.shown + stats.dropped == rng[1] - rng[0]        # every frame shown or counted as dropped
    assert win.session.playhead == rng[1] - 1 and not win.actions_table["play"].isChecked()
    assert set(shown) <= set(range(*rng)) and stats.shown >= 5 and stats.first_frame_ms is not None
    return shown, stats


def _dubbed(pair):
    return np.abs(pair[0].astype(int) - pair[1].astype(int)).max() > 10


def test_preview_and_live_playback_follow_corrections(qtbot, tracked):
    """Keep-original patches the prepared dub (no new preparation): in the preview and in live dubbed playback
    (Space renders the dub while the voice plays, no file); a voice offset needs a new preparation."""
    win = tracked
    ctrl = win.playback.preview_ctrl
    show(qtbot, win, 15)
    win.actions_table["preview"].setChecked(True)
    assert wait_for(qtbot, win, win.playback.previewRendered, LONG * 2) == (15,)
    orig, dub = win.preview.original, win.preview.dubbed
    assert np.abs(orig.astype(int) - dub.astype(int)).max() > 10          # dubbed
    session = ctrl.session
    shown, _ = _play_live(qtbot, win, (10, 40))
    assert sum(_dubbed(p) for p in shown.values()) >= 0.8 * len(shown)
    win.timeline.set_range((10, 20))
    got = []
    win.playback.previewRendered.connect(got.append)
    show(qtbot, win, 15)
    win.corrections.keep_button.click()
    qtbot.waitUntil(lambda: 15 in got and np.array_equal(win.preview.dubbed, win.preview.original), timeout=LONG)
    assert ctrl.session is session                              # patched, not re-prepared
    shown, _ = _play_live(qtbot, win, (5, 35))                  # the edit made while paused is played
    inside = [p for i, p in shown.items() if 10 <= i < 20]
    outside = [p for i, p in shown.items() if not 10 <= i < 20]
    assert inside and outside
    assert all(np.array_equal(o, d) for o, d in inside)         # kept original
    assert sum(_dubbed(p) for p in outside) >= 0.8 * len(outside)
    assert ctrl.session is session
    # an edit the prepared dub has not been patched with yet (no preview, no background warm-up) reaches it
    # through Play's renderers only: once, on their own thread (the preview's worker patching it as well would race
    # with them)
    win.actions_table["preview"].setChecked(False)
    win.auto_analyze = False
    win.timeline.set_range((22, 26))
    show(qtbot, win, 23)
    win.corrections.keep_button.click()
    patched = []
    real_set_edits = session.set_edits
    session.set_edits = lambda e: patched.append(threading.current_thread().name) or real_set_edits(e)
    shown, _ = _play_live(qtbot, win, (18, 30))
    qtbot.wait(200)
    assert patched == ["live-render-0"], patched
    assert all(np.array_equal(o, d) for i, (o, d) in shown.items() if 22 <= i < 26)
    del session.set_edits
    win.undo()
    win.auto_analyze = True
    win.actions_table["preview"].setChecked(True)
    show(qtbot, win, 15)
    win.undo()
    qtbot.waitUntil(lambda: got.count(15) >= 2 and not np.array_equal(win.preview.dubbed, win.preview.original),
                    timeout=LONG)
    assert ctrl.session is session
    win.corrections.offset_spin.setValue(3)
    win.corrections.offset_spin.editingFinished.emit()
    qtbot.waitUntil(lambda: ctrl.session is not None and ctrl.session is not session, timeout=LONG * 2)
    assert ctrl.session.settings.edits.voice_offset == 3


def test_corrections_rescore_only_the_frames_they_touch(qtbot, tracked):
    """Score the dubbed result once; a keep-original range then re-renders and re-scores only the frames whose
    confidence it can move (the range plus the scorer's reach), and undo brings the dubbed sync back."""
    from app.dubbed_score import rescore_plan

    win = tracked
    win.rescore.score_dubbed()                                           # no in/out range: the whole clip
    qtbot.waitUntil(lambda: win.session.after is not None and win.session.after.report is not None or win.messages.last_error is not None,
                    timeout=LONG)
    assert win.messages.last_error is None, win.messages.last_error
    first = win.session.after.curve.copy()
    assert win.session.after.scored.all() and np.isfinite(first).sum() >= 50
    assert "after" in win.sync_track.curves and win.sync_panel.row_labels["after"].text() == "Dubbed vs voice"

    render, keep = rescore_plan((30, 45), win.session.num_frames)
    assert keep == (24, 51) and render == (16, 59)
    win.timeline.set_range((30, 45))
    win.corrections.keep_button.click()
    qtbot.waitUntil(lambda: win.session.after.report_range == render or win.messages.last_error is not None, timeout=LONG)
    assert win.messages.last_error is None, win.messages.last_error
    kept = win.session.after.curve.copy()
    assert win.sync_panel.row_labels["after"].text() == "Dubbed vs voice, frames 16–58"
    outside = np.r_[0:keep[0], keep[1]:win.session.num_frames]
    np.testing.assert_array_equal(kept[outside], first[outside])     # untouched frames keep their scores
    # the original mouth does not follow the new voice: lower confidence where the dub was switched off
    assert np.nanmean(kept[30:45]) < np.nanmean(first[30:45]) - 0.5, (kept[30:45], first[30:45])

    win.undo()                                                   # dubbed again: re-scored again
    qtbot.waitUntil(lambda: not np.array_equal(win.session.after.curve, kept, equal_nan=True) or
                    win.messages.last_error is not None, timeout=LONG)
    assert win.messages.last_error is None, win.messages.last_error
    back = win.session.after.curve
    np.testing.assert_array_equal(back[outside], first[outside])
    assert np.nanmean(back[30:45]) > np.nanmean(kept[30:45]) + 0.5
    # a dub setting (not a correction) changes every frame: all scored frames are re-scored
    win.settings_panel.spins["feather"].setValue(win.settings_panel.spins["feather"].value() + 0.1)
    qtbot.waitUntil(lambda: win.session.after.report_range == (0, win.session.num_frames) or win.messages.last_error is not None,
                    timeout=LONG)
    assert win.messages.last_error is None, win.messages.last_error
    assert win.sync_panel.row_labels["after"].text() == "Dubbed vs voice"

