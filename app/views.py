"""What the widgets show, derived from the session: each binding subscribes to the events that can change its
widget and redraws it from the session's state (never from the event's history)."""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QListWidgetItem

from core.sync import lane as sync_lane

from . import core_bridge
from .session.model import sync_curve
from .timeline import timecode


class SessionViews:
    def __init__(self, win):
        self.win, self.s = win, win.session
        ev = self.s.events
        ev.connect_all(lambda e: self.show_media(), "project", "media")
        ev.connect_all(lambda e: self.show_voices(), "project", "voices")
        ev.connect_all(lambda e: self.show_voice_lanes(), "project", "media", "voices", "audio")
        ev.connect_all(lambda e: self.show_faces(), "project", "media", "tracks")
        ev.connect_all(lambda e: self.show_speaking(), "project", "media", "tracks", "speaking")
        ev.connect_all(lambda e: self.show_damage(), "project", "media", "voices", "damage", "edits")
        ev.connect_all(lambda e: self.show_reports(), "project", "media", "voices", "tracks", "reports")
        ev.connect_all(lambda e: self.show_edits(), "project", "edits")
        ev.connect_all(lambda e: self.show_title(), "project", "dirty")
        ev.connect_all(lambda e: self.show_range(), "project", "media", "range")
        ev.playhead.connect(lambda e: self.show_playhead())
        ev.edits.connect(self._on_edits)
        ev.range.connect(self._announce_range)
        ev.project.connect(lambda e: win.settings_panel.load(self.s.project))

    def _on_edits(self, e) -> None:
        self.win.messages.info(e.label)
        if e.old.get("voice_offset") != e.new.get("voice_offset"):
            self.show_reports()
            self.win.media.update_length_note()

    def show_title(self) -> None:
        self.win.setWindowTitle(f"{self.s.project.title}{' *' if self.s.dirty else ''} — LipDub Studio")

    def show_media(self) -> None:
        w, s = self.win, self.s
        info = s.info
        if info is None:
            w.timeline.set_media(0, 25.0)
        else:
            w.timeline.set_media(info.num_frames, info.fps, info.width / info.height if info.height else 4 / 3)
        w.timeline.set_range(s.project.range, emit=False)
        w.sync_track.clear_curves()
        w.preview.clear()
        w.on_view(w.timeline.v0, w.timeline.v1)
        w.actions_table.refresh()

    def show_voices(self) -> None:
        w, p = self.win, self.s.project
        w.voice_combo.blockSignals(True)
        w.voice_combo.clear()
        w.voice_list.clear()
        for i, v in enumerate(p.voices):
            w.voice_combo.addItem(v.display_name(), i)
            it = QListWidgetItem(("▶ " if i == p.active_voice else "   ") + v.display_name())
            it.setToolTip(v.path)
            f = it.font()
            f.setBold(i == p.active_voice)
            it.setFont(f)
            w.voice_list.addItem(it)
        w.voice_combo.setCurrentIndex(p.active_voice)
        w.voice_combo.blockSignals(False)
        w.actions_table.refresh()

    def show_voice_lanes(self) -> None:
        w, s = self.win, self.s
        v, data = s.project.voice, s.voice_data()
        if v is None:
            w.voice_lane.set_audio(None, s.fps, "Voice")
            w.voice_lane.set_activity(None)
        elif data is None:
            w.voice_lane.set_audio(None, s.fps, f"Voice: {v.display_name()} (loading…)")
        else:
            w.voice_lane.set_audio(data.pyramid, s.fps, f"Voice: {v.display_name()}")
            w.voice_lane.set_activity(data.vad)
        o = s.orig_audio if s.info is not None else None
        w.orig_lane.set_audio(None if o is None else o.pyramid, s.fps, "Original audio")
        w.orig_lane.set_activity(None if o is None else o.vad)
        w.on_view(w.timeline.v0, w.timeline.v1)

    def show_faces(self) -> None:
        w, s = self.win, self.s
        missing = s.missing_face()
        w.timeline.set_no_face(missing)
        w.sync_track.set_no_face(missing)
        w.settings_panel.set_tracks(s.track_set, s.project.face_track)

    def show_speaking(self) -> None:
        w, s = self.win, self.s
        sp = s.speaking if s.info is not None and s.speaking is not None and \
            s.speaking.video == s.project.video else None
        analysing = sp is None and w.jobs.get("speaker") is not None if hasattr(w, "jobs") else False
        w.speaking_lane.set_result(sp, dubbed=s.project.face_track if s.project.face_track is not None
                                   else (None if s.speaking_changes_face() else
                                         getattr(s.chosen_track(), "track_id", None)), analysing=analysing)
        w.speaking_lane.set_view(w.timeline.v0, w.timeline.v1)
        w.speaking_lane.set_playhead(s.playhead)

    def show_qc(self) -> None:
        w, q = self.win, self.s.qc_report()
        w.qc_lane.set_flags(None if q is None else q.flags, None if q is None else q.checked)

    def show_damage(self) -> None:
        self.win.timeline.set_damage(self.s.damaged_frames())

    def show_reports(self) -> None:
        w, s = self.win, self.s
        self.show_qc()
        rep, after = s.current_report(), s.after_report()
        shown = after.report if after is not None and after.report is not None else rep
        if shown is not None:
            w.sync_track.set_threshold(core_bridge.low_threshold(shown))
            judgeable = bool(getattr(shown, "judgeable", True))
            if not judgeable and w.sync_track.judgeable:
                w.messages.info(sync_lane.CANNOT_JUDGE, 15000)
            w.sync_track.set_judgeable(judgeable)
        w.sync_track.set_voiced(None if rep is None else getattr(rep, "voiced", None))
        w.sync_track.set_curve("before", None if rep is None else sync_curve(rep))
        w.sync_panel.set_report("before", rep)
        if after is None:
            w.sync_track.set_curve("after", None)
            w.sync_panel.set_report("after", None)
            return
        w.sync_track.set_curve("after", after.curve)
        rng = after.report_range
        whole = rng is None or (rng[0] == 0 and rng[1] >= s.num_frames)
        w.sync_panel.set_report("after", after.report, None if whole else rng)

    def show_edits(self) -> None:
        w, s = self.win, self.s
        h, e = s.project.history, s.project.edits
        w.actions_table.show_history(h)
        w.timeline.set_edits(e)
        w.corrections.fps = s.fps
        w.corrections.set_range(s.project.range)
        w.corrections.show_edits(e, s.playhead)
        w.voice_lane.set_offset(e.voice_offset)
        w.settings_panel.show_mask(s.mask_at(s.playhead) if e.mask_keyframes else s.project.mask)

    def show_range(self) -> None:
        rng = self.s.project.range
        self.win.corrections.set_range(rng)
        for lane in self.win.lanes:
            if hasattr(lane, "set_range"):
                lane.set_range(rng)

    def _announce_range(self, e) -> None:
        rng, fps = e.range, self.s.fps
        if rng:
            self.win.messages.info(f"Range {rng[0]}–{rng[1]} ({rng[1] - rng[0]} frames, "
                                   f"{timecode(rng[0], fps)} – {timecode(rng[1], fps)})")

    def show_playhead(self) -> None:
        w, s = self.win, self.s
        frame = s.playhead
        if s.project.edits.mask_keyframes:
            w.settings_panel.show_mask(s.mask_at(frame))
        w.corrections.show_edits(s.project.edits, frame)
        for lane in w.lanes:
            lane.set_playhead(frame)
        parts = [f"Frame {frame}", timecode(frame, s.fps)]
        for kind, (x, y, off) in w.sync_track.curves.items():
            i = frame - off
            if 0 <= i < len(y) and np.isfinite(y[i]):
                parts.append(f"confidence {kind} {y[i]:.2f}")
        speaking = w.speaking_lane.value_at(frame)
        if speaking:
            parts.append("speaking " + ", ".join(f"face {t} {p:.2f}" for t, p in sorted(speaking.items())))
        kinds = w.qc_lane.kinds_at(frame)
        if kinds:
            parts.append("QC: " + ", ".join(kinds))
        data = s.voice_data()
        if data is not None and data.vad is not None and frame < len(data.vad):
            parts.append("voice speaking" if data.vad[frame] else "voice silent")
        w.sync_panel.set_frame_info("  ·  ".join(parts))
