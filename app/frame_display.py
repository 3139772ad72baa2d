"""The original frame under the playhead, with its overlays (faces, mask outline, drawn areas, box fixes).

Frames come from a `LatestWorker` (only the newest request is decoded): a scrub-cache copy while the
playhead moves, the exact frame once it rests. Re-requested whenever the session says the frame or its
overlay may look different.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer

from core.faces.geometry import face_to_frame

from .face_view import FaceOverlay, OverlayState
from .frame_cache import FrameSource, ScrubCache
from .timeline import timecode
from .workers import LatestWorker

OVERRIDE_NOTES = {"keep_original": "kept original", "mouth_closed": "mouth closed", "voice_driven": "driven by voice"}


class FrameDisplay(QObject):
    def __init__(self, win):
        super().__init__(win)
        self.win, self.session, self.view = win, win.session, win.face_view
        self.scrub = ScrubCache()
        self.source = FrameSource(self.scrub)
        self.exact = True                      # the frame on screen is the exact decode (not a scrub copy)
        self._request = None
        self._exact_timer = QTimer(self)
        self._exact_timer.setSingleShot(True)
        self._exact_timer.setInterval(120)
        self._exact_timer.timeout.connect(self._load_exact)
        self.loader = LatestWorker(self.source.compute, "frame-loader")
        self.loader.ready.connect(self._on_frame)
        self.loader.failed.connect(lambda i, msg: win.statusBar().showMessage(f"Frame {i}: {msg}", 5000))
        self.loader.start()
        ev = self.session.events
        ev.connect_all(self._on_media, "project", "media")
        ev.connect_all(lambda e: self.refresh(), "tracks", "edits", "settings")
        ev.playhead.connect(lambda e: self.refresh())

    def _on_media(self, e) -> None:
        self.loader.call_soon(self.source.close)
        self.scrub.reset(self.session.project.video)
        self.view.set_overlay(OverlayState())
        if self.session.info is None:
            self.view.set_image(None)

    def refresh(self) -> None:
        """Ask for the playhead frame and its overlay."""
        s = self.session
        if s.info is None or self.win.playback.live.playing:     # live playback shows its own frames
            return
        frame = s.playhead
        self.view.timecode = f"{timecode(frame, s.fps)}  ·  frame {frame}"
        t = s.chosen_track()
        lm = np.array(t.landmarks[frame], np.float32) if t is not None and frame < len(t.present) and \
            t.present[frame] else None
        self._request = (s.project.video, lm, s.project.edits.mask_at(frame, s.project.mask),
                         (s.info.height, s.info.width))
        self.scrub.centre = frame
        self.loader.request(frame, self._request + (False,))

    def _load_exact(self) -> None:
        # the playhead rested on a scrub-cache copy: show the exact frame
        if self.session.info is not None and self.view.frame_index == self.session.playhead and not self.exact:
            self.loader.request(self.session.playhead, self._request + (True,))

    def _maybe_recentre_cache(self, frame: int) -> None:
        """A long video does not fit the scrub cache: when the playhead rests outside the cached part, cache
        the part around it (the cache drops the frames farthest from the playhead)."""
        if frame in self.scrub or self.win.jobs.get("prefetch") is not None or len(self.scrub) == 0:
            return
        s = self.session
        self.win.media.start_prefetch(s.project.video, s.num_frames, max(0, frame - int(4 * s.fps)))

    def _on_frame(self, index: int, result) -> None:
        if self.win.jobs.closing or self.session.info is None:
            return
        frame, outline, _, exact = result
        playing = self.win.playback.playing
        if index != self.session.playhead and not playing and self.view.frame_index >= 0:
            return       # a stale frame: a newer one is on its way
        self.exact = exact
        info = self.session.info
        self.view.set_overlay(self.overlay(index, outline))
        self.view.set_image(frame, index, (info.width, info.height))
        if not playing:
            if not exact:
                self._exact_timer.start()
            else:
                self._maybe_recentre_cache(index)

    def overlay(self, index: int, outline) -> OverlayState:
        s = self.session
        if s.track_set is None:
            return OverlayState(message="" if self.win.jobs.get("track") is None else "tracking…")
        chosen = s.chosen_track()
        speaker = s.speaking.speaker_at(index) if s.speaking is not None else None
        dubbed = self._dubbed_at(chosen, index)
        faces = [FaceOverlay(t.track_id, t.boxes[index], t.landmarks[index], t.track_id == dubbed,
                             speaking=t.track_id == speaker)
                 for t in s.track_set.tracks if index < len(t.present) and t.present[index]]
        msg, polygons = "", []
        edits = s.project.edits
        if chosen is None:
            msg = "no face in this video"
        elif not (index < len(chosen.present) and chosen.present[index]):
            msg = "no face in this frame"
        else:
            _, polys = edits.mask_at(index, s.project.mask)
            polygons = [(pg.mode, face_to_frame(pg.points, chosen.landmarks[index])) for pg in polys]
        fixed = next((np.array(b.box, np.float32) for b in edits.box_fixes if b.frame == index), None)
        ov = edits.override_at(index)
        if ov is not None and not msg:
            msg = OVERRIDE_NOTES.get(ov.kind, f"engine: {ov.engine}")
        return OverlayState(faces=faces, mask_outline=outline, message=msg, polygons=polygons, fixed_box=fixed)

    def _dubbed_at(self, chosen, index: int):
        """The id of the tracked face the dub uses at frame `index` (the chosen face may follow the speaker shot
        by shot: its own id is then only its most shown face's)."""
        s = self.session
        if chosen is None:
            return None
        if s.speaking_changes_face():
            sp = s.speaking.speaker_at(index)
            return sp if sp is not None else s.track_set.primary().track_id
        return chosen.track_id

    def shutdown(self) -> None:
        self._exact_timer.stop()
        self.loader.call_soon(self.source.close)
        self.loader.stop()
