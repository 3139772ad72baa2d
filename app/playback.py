"""The dubbed picture: the preview of the frame under the playhead, Play (live dubbed playback, or the original
with the voice until the dub is prepared) and Render and Play (a quick file in a player)."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from core import pipeline

from .face_view import OverlayState
from .live_playback import LivePlayer
from .preview import PreviewController
from .range_player import RangePlayer
from .timeline import timecode


class PlaybackController(QObject):
    previewRendered = Signal(int)
    previewFileReady = Signal(str)
    livePlaybackFinished = Signal(object)       # live_playback.PlaybackStats

    def __init__(self, win):
        super().__init__(win)
        self.win, self.session, self.messages = win, win.session, win.messages
        self.preview_ctrl = PreviewController(win.jobs.runner, self)
        self.preview_ctrl.rendered.connect(self._on_preview)
        self.preview_ctrl.statusChanged.connect(lambda t: win.preview.set_status(t))
        self.preview_ctrl.failed.connect(lambda m: self.messages.error(m, "Preview"))
        self.preview_ctrl.ready.connect(self._on_session_ready)
        self.player = RangePlayer(self)             # the original frames with the voice
        self.player.frame.connect(lambda f: win.timeline.set_playhead(f))
        self.player.stopped.connect(self._on_stopped)
        self.live = LivePlayer(win.scratch.folder, self)
        self.live.position.connect(lambda f: win.timeline.set_playhead(f))
        self.live.frame.connect(self._show_live)
        self.live.stopped.connect(self._on_live_stopped)
        self.live.failed.connect(lambda m: self.messages.error(m, "Dubbed playback"))
        self.player_dialog = None
        self.speed = 1.0                            # Play's speed (half speed: View menu)
        self._want_live = None                      # (stop frame) while the original plays until the dub is ready
        ev = self.session.events
        ev.connect_all(lambda e: self.invalidate(), "project", "media")
        ev.tracks.connect(lambda e: e.auto and self.invalidate())
        ev.connect_all(lambda e: self.stop(), "edits", "settings", "voices")
        ev.connect_all(lambda e: self.request_preview(), "playhead", "edits", "settings", "tracks", "voices")
        ev.connect_all(lambda e: self.warm(), "tracks", "voices", "settings", "edits")

    @property
    def playing(self) -> bool:
        return self.player.playing or self.live.playing

    # ---- preview of one frame -------------------------------------------------------------------------------
    def set_preview_enabled(self, on: bool) -> None:
        self.preview_ctrl.set_enabled(on)
        if on:
            self.request_preview()
        else:
            self.win.preview.clear()

    def set_preview_mode(self, mode: str) -> None:
        self.win.preview.set_mode(mode)
        combo = self.win.mode_combo
        if combo.currentData() != mode:
            combo.setCurrentIndex(combo.findData(mode))
        a = self.win.actions_table[f"mode_{mode}"]
        if not a.isChecked():
            a.setChecked(True)

    def request_preview(self) -> None:
        s = self.session
        if not self.preview_ctrl.enabled or s.info is None or not s.has_voice or self.live.playing:
            return
        settings = self.win.dub_settings()
        if settings is not None:
            self.preview_ctrl.request(settings, s.playhead)

    def _on_preview(self, index: int, original, dubbed) -> None:
        if index != self.session.playhead and not self.playing:
            return
        self.win.preview.set_pair(original, dubbed, index)
        self.previewRendered.emit(index)

    def invalidate(self) -> None:
        self.stop()
        self.win.jobs.cancel("live-prepare")
        self.preview_ctrl.invalidate()
        self.win.preview.clear()
        self.warm()

    def warm(self) -> None:
        """Prepare the dub (tracks, mouth shapes, retrieval) in the background once per setting change, so
        that Play starts at once (only in the analysing window: the same work the preview would do)."""
        s = self.session
        if self.win.auto_analyze and s.has_video and s.has_voice and s.track_set is not None and \
                s.chosen_track() is not None:
            settings = self.win.dub_settings()
            if settings is not None:
                self.preview_ctrl.prepare(settings)

    # ---- Play ---------------------------------------------------------------------------------------------
    def set_half_speed(self, on: bool) -> None:
        self.speed = 0.5 if on else 1.0
    def set_playing(self, on: bool) -> None:
        if not on:
            self.stop()
            return
        s = self.session
        if s.info is None:
            self.win.actions_table["play"].setChecked(False)
            return
        rng = s.project.range
        start, stop = rng if rng else (s.playhead, s.num_frames)
        if not rng and start >= s.num_frames - 1:
            start = 0
        settings = self.win.dub_settings() if s.has_voice and s.chosen_track() is not None else None
        # the live renderers patch the corrections in before their first frame (live_playback.FrameAhead)
        dub = self.preview_ctrl.prepare(settings, patch=False) if settings is not None else None
        if dub is not None:
            self._play_live(dub, start, stop, settings)
            return
        v = s.project.voice
        self.player.play(v.path if v else s.project.video, start, stop, s.fps, self.speed)
        if settings is not None:
            self._want_live = stop
            self.messages.info("Preparing the dub: the original plays until it is ready.")

    def _warm_textures(self) -> None:
        """Precompute the engines' per-frame work (the classic engine's retrieved textures) in the background,
        from the in/out range or the playhead on; paused while playing (the renderers need the cores)."""
        dub, s = self.preview_ctrl.session, self.session
        if dub is None or self.live.playing or self.win.jobs.get("live-prepare") is not None:
            return
        first = min((s.project.range or (s.playhead,))[0], dub.num_frames)
        order = list(range(first, dub.num_frames)) + list(range(first))
        self.win.jobs.start("live-prepare", "Preparing dubbed playback",
                            lambda progress, cancel: dub.warm(order, progress, cancel), quiet_cancel=True,
                            on_fail=lambda msg: self.messages.info(f"Dubbed playback stays unprepared: {msg}"))

    def _on_session_ready(self) -> None:
        """The dub is prepared: warm it; if the original plays meanwhile, go on dubbed from the next frame."""
        self._warm_textures()
        if self._want_live is None or not self.player.playing:
            return
        stop, start = self._want_live, self.session.playhead + 1
        settings = self.win.dub_settings()
        if settings is None or start >= stop:
            return
        dub = self.preview_ctrl.prepare(settings, patch=False)
        if dub is not None:
            self._want_live = None
            self.player.stopped.disconnect(self._on_stopped)
            self.player.stop()
            self.player.stopped.connect(self._on_stopped)
            self._play_live(dub, start, stop, settings)

    def _play_live(self, dub, start: int, stop: int, settings) -> None:
        self.win.jobs.cancel("live-prepare")
        views = (self.win.preview, self.win.face_view)
        ratio = self.win.devicePixelRatioF()
        self.live.display_size = (max(v.width() for v in views) * ratio, max(v.height() for v in views) * ratio)
        self.win.face_view.set_overlay(OverlayState())     # the overlays come back when playback stops
        self.live.play(dub, start, stop, self.session.fps, settings, self.speed)

    def _show_live(self, index: int, original, dubbed) -> None:
        info = self.session.info
        self.win.preview.set_pair(original, dubbed, index)
        self.win.face_view.set_image(original, index, (info.width, info.height))
        st = self.live.stats
        if st.shown % 15 == 1:                      # twice a second: how it keeps up
            self.win.preview.set_status(f"live · {st.shown_per_second():.1f} f/s · {st.dropped} dropped")

    def stop(self) -> None:
        self._want_live = None
        self.player.stop()
        self.live.stop()

    def _on_stopped(self) -> None:
        self._want_live = None
        if not self.live.playing:
            self.win.actions_table["play"].setChecked(False)

    def _on_live_stopped(self, stats) -> None:
        self.win.actions_table["play"].setChecked(False)
        self.win.preview.set_status("")
        self.win.frames.refresh()                  # the original frame with its overlays again
        self.request_preview()
        self._warm_textures()
        n = stats.shown + stats.dropped
        if n:
            self.messages.info(f"Played {n} dubbed frames at {stats.shown_per_second():.1f} f/s; {stats.dropped} "
                               f"dropped ({stats.dropped_share * 100:.1f}%).", 15000)
        self.livePlaybackFinished.emit(stats)

    # ---- Render and Play ---------------------------------------------------------------------------------------
    def render_and_play(self) -> None:
        """Dub the range to a throw-away file (fast encoder settings) and play it with its voice."""
        s = self.session
        if s.info is None or not s.has_voice:
            self.messages.error("Open a video and add a voice track first.")
            return
        rng = s.project.range or (s.playhead, min(s.num_frames, s.playhead + int(round(5 * s.fps))))
        if rng[1] <= rng[0]:
            rng = (0, s.num_frames)
        out = str(self.win.scratch.file(f"preview_{rng[0]}_{rng[1]}"))
        settings = self.win.dub_settings(output=out, frame_range=rng, preset="ultrafast", crf=23)
        if settings is None:
            self.messages.error(self.win.preview.status or "The dub settings are incomplete.")
            return
        self.stop()
        self.win.jobs.start("render-preview", f"Rendering frames {rng[0]}–{rng[1] - 1}",
                            lambda progress, cancel: pipeline.run_dub(settings, progress=progress, cancel=cancel),
                            lambda res, r=rng: self._play_rendered(res, r))

    def _play_rendered(self, result, rng) -> None:
        from .player import PlayerDialog

        if self.player_dialog is None:
            self.player_dialog = PlayerDialog(self.win)
        fps = self.session.fps
        msgs = " ".join(result.messages or [])
        self.player_dialog.load(result.output, f"Frames {rng[0]}–{rng[1] - 1} ({timecode(rng[0], fps)} – "
                                f"{timecode(rng[1], fps)}), {result.faces_found} dubbed. {msgs}".strip())
        self.player_dialog.show()
        self.player_dialog.raise_()
        self.previewFileReady.emit(result.output)

    def shutdown(self) -> None:
        self.stop()
        self.preview_ctrl.shutdown()
        if self.player_dialog is not None:
            self.player_dialog.done(0)
