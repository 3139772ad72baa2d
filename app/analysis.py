"""Analysis of the original clip: face tracking (and re-tracking from the editor's box fixes), who speaks the clip's
own sound (the speaking lane, and the default face per shot) and scoring the original against the active voice.
Scoring starts by itself once video, faces and voice are all there."""
from __future__ import annotations

import copy
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core.audio import SAMPLE_RATE
from core.edits import shift_voice
from core.faces.fixes import apply_box_fixes
from core.faces.track import track_video
from core.timing import fit_wav

from . import core_bridge
from .session.model import SpeakingResult


class AnalysisController(QObject):
    trackingFinished = Signal()
    speakingFinished = Signal()
    scoringFinished = Signal(str)        # 'before' (original vs voice) | 'after' (the dub, see RescoreController)

    def __init__(self, win):
        super().__init__(win)
        self.win, self.session, self.jobs, self.messages = win, win.session, win.jobs, win.messages
        ev = self.session.events
        ev.connect_all(lambda e: self.maybe_auto_score(), "tracks", "voices", "audio")
        ev.edits.connect(self._on_edits)

    def _on_edits(self, e) -> None:
        if e.old.get("box_fixes") != e.new.get("box_fixes"):
            self.refit_boxes()
        if e.old.get("voice_offset") != e.new.get("voice_offset"):
            self.maybe_auto_score()

    # ---- tracking -----------------------------------------------------------------------------------------
    def start_tracking(self) -> None:
        s = self.session
        if s.info is None:
            self.messages.error("Open a video first.")
            return
        path, cache = s.project.video, self.win.track_cache_dir
        self.win.sync_track.clear_curves()
        self.jobs.start("track", "Tracking faces",
                        lambda progress, cancel: track_video(path, progress=progress, cancel=cancel, cache_dir=cache),
                        lambda ts, p=path: self._tracking_ready(p, ts))

    def _tracking_ready(self, path: str, track_set) -> None:
        s = self.session
        if path != s.project.video:
            return
        s.set_tracks(track_set, auto=True)
        if s.project.edits.box_fixes:
            self.refit_boxes()
        self.trackingFinished.emit()
        if track_set.tracks:
            self.start_speaking()
        if not track_set.tracks:
            self.messages.error(f"No face was found in {Path(path).name}: there is nothing to dub.", "Tracking")
            return
        n = s.chosen_track()
        self.messages.info(f"Tracked {len(track_set.tracks)} face(s); the dubbed face is present in "
                           f"{int(n.present.sum())} of {track_set.num_frames} frames.")

    def refit_boxes(self) -> None:
        """Show the landmarks re-tracked from the editor's box fixes (the pipeline does the same at export)."""
        s = self.session
        base, fixes = s.auto_track_set, list(s.project.edits.box_fixes)
        if base is None:
            return
        if not fixes:
            s.set_tracks(base, auto=False)
            return
        video, info = s.project.video, s.info
        chosen = s.chosen_track()
        track_id = chosen.track_id if chosen is not None else None

        def work(progress, cancel):
            ts = copy.copy(base)
            ts.tracks = [apply_box_fixes(video, info, t, fixes, cancel=cancel) if t.track_id == track_id else t
                         for t in base.tracks]
            return ts

        self.jobs.start("refit", "Re-tracking from the fixed box", work, lambda ts: s.set_tracks(ts, auto=False))

    # ---- who speaks ------------------------------------------------------------------------------------------
    def start_speaking(self) -> None:
        """P(speaking) of every tracked face with the clip's own sound, and the speaking face per shot (the
        default face when none is chosen, as the pipeline picks it), in the background."""
        s = self.session
        ts, info, video = s.auto_track_set, s.info, s.project.video
        if ts is None or not ts.tracks or info is None or not getattr(info, "has_audio", False):
            return
        models_dir, device = self.win.models_dir(), s.project.device
        cache = getattr(self.win, "speaker_cache_dir", None)

        def work(progress, cancel):
            from core.audio import voice_activity
            from core.device import resolve_device
            from core.sync.asd.speaker import cached_speaking_scores, default_face
            from core.sync.lane_adapt import own_voice

            wav = own_voice(video, info)
            if wav is None:
                return None
            dev = resolve_device(device)
            choice = default_face(video, info, ts, wav, cache_dir=cache, models_dir=models_dir, device=dev,
                                  progress=progress, cancel=cancel)
            lane = cached_speaking_scores(video, ts, wav, info=info, cache_dir=cache, device=dev,
                                          progress=progress, cancel=cancel)
            return SpeakingResult(video, choice, lane, voice_activity(wav, float(info.fps), ts.num_frames))

        self.jobs.start("speaker", "Finding who speaks", work, lambda res, t=ts: self._speaking_ready(t, res))

    def _speaking_ready(self, track_set, result) -> None:
        s = self.session
        if result is None or track_set is not s.auto_track_set or result.video != s.project.video:
            return
        s.set_speaking(result)
        if result.choice.message:
            self.messages.info("Face: " + result.choice.message)
        self.speakingFinished.emit()

    # ---- scoring the original -------------------------------------------------------------------------------
    def maybe_auto_score(self) -> None:
        """Score automatically once video, tracks and the active voice are all there (once per voice+face)."""
        if not self.win.auto_analyze or not self.session.needs_score():
            return
        job = self.jobs.get("score")
        if job is not None and getattr(job, "key", None) == self.session.report_key():
            return
        self.start_scoring()

    def start_scoring(self) -> None:
        s = self.session
        if s.info is None or not s.has_voice:
            self.messages.error("Open a video and add a voice track first.")
            return
        if s.track_set is None:
            if self.jobs.get("track") is None:
                self.start_tracking()
            self.messages.info("Scoring starts when tracking has finished.")
            return
        track = s.chosen_track()
        if track is None:
            self.messages.error("No face was found in the video: there is nothing to score.")
            return
        key, video, voice = s.report_key(), s.project.video, s.project.voice.path
        cached, fps, n, offset = s.audio.get(voice), s.fps, s.num_frames, s.project.edits.voice_offset
        info = s.info
        models_dir, device, adapt = self.win.models_dir(), s.project.device, s.project.adapt

        def work(progress, cancel):
            from core.audio import load_audio

            wav = cached.wav if cached is not None else load_audio(voice)
            if offset:
                wav = shift_voice(wav, offset, fps, SAMPLE_RATE)
            return core_bridge.score(video, info, fit_wav(wav, n, fps), track, adapt=adapt,
                                     models_dir=models_dir, device=device, progress=progress, cancel=cancel)

        s.score_failed.discard(key)
        job = self.jobs.start("score", "Scoring sync", work, lambda rep, k=key: self._score_ready(k, rep),
                              lambda msg, k=key: self._score_failed(k, msg))
        job.key = key

    def _score_failed(self, key, msg: str) -> None:
        self.session.scoring_failed(key)
        self.messages.error(msg, "Scoring sync")

    def _score_ready(self, key, report) -> None:
        adaptation = getattr(report, "adaptation", None)
        if adaptation is not None:
            self.messages.info(("Adaptation: " if adaptation.adapted else "No adaptation: ") + adaptation.message)
        self.session.add_report(key, report)
        self.scoringFinished.emit("before")
