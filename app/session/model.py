"""`Session`: everything the window knows about the dub being edited, and what changed.

Events (each an `Emitter` on `session.events`), with their payloads:
- project(): a whole new project (everything else was reset)
- media(): the video (and its `info`) changed, or was cleared
- voices(): the voice list or the active voice changed
- audio(path): a track's samples or voice activity arrived (`path` is a voice or the video)
- tracks(): the tracked faces or the chosen face changed
- reports(kind): a sync report arrived or was dropped ('before' = original vs voice, 'after' = the dub),
  or the dub's quality flags ('qc')
- edits(label, old, new): the corrections changed (a command, undo or redo); old/new are `Edits` JSON
- settings(kind): a dub setting changed ('mask' | 'track' | 'other' | 'engine')
- range(range): the in/out range
- playhead(frame)
- dirty(dirty): unsaved changes appeared or were saved
- speaking(): who speaks in the original clip arrived or was dropped (`Session.speaking`)
- damage(path): a damage report arrived for the video or a voice (`core.media_damage`)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from core.errors import LipDubError
from core.project import Project

from .events import EmitterGroup


@dataclass
class AudioData:
    path: str
    wav: np.ndarray
    pyramid: object                       # the waveform's peak pyramid (drawn by the lanes)
    vad: Optional[np.ndarray] = None      # voice activity per video frame
    vad_fps: float = 0.0


@dataclass
class SpeakingResult:
    """Who speaks the original clip's own sound (core.sync.asd.speaker): the default face per shot as the
    pipeline chooses it, and P(speaking) of every face on every frame where it is tracked (the speaking lane)."""
    video: str
    choice: object                        # core.sync.asd.speaker.FaceChoice
    lane: object                          # core.sync.asd.speaker.SpeakingScores (all faces, all tracked frames)
    voiced: Optional[np.ndarray] = None   # the original sound's voice activity per video frame

    def speaker_at(self, frame: int) -> Optional[int]:
        """The face that speaks in the shot of `frame` (None: nobody was found to speak there)."""
        for shot in self.choice.shots:
            if shot.start <= frame < shot.stop:
                return shot.track_id
        return None


def sync_curve(report) -> np.ndarray:
    """Per-frame confidence with frames the scorer could not judge (no face, outside its windows) as NaN."""
    y = np.asarray(report.per_frame, np.float64).copy()
    valid = getattr(report, "valid", None)
    if valid is not None and len(valid) == len(y):
        y[~np.asarray(valid, bool)] = np.nan
    return y


class Session:
    EVENTS = ("project", "media", "voices", "audio", "tracks", "reports", "edits", "settings", "range",
              "playhead", "dirty", "speaking", "damage")

    def __init__(self):
        self.events = EmitterGroup(*self.EVENTS)
        self.project = Project()
        self.dirty = False
        self.info = None                              # core.media.MediaInfo of the video
        self.audio: Dict[str, AudioData] = {}         # voice path -> samples
        self.orig_audio: Optional[AudioData] = None   # the video's own audio
        self.track_set = None                         # shown (box fixes applied)
        self.auto_track_set = None                    # as tracked
        self.reports: Dict[tuple, object] = {}        # (voice, track id, voice offset) -> SyncReport
        self.score_failed: set = set()                # report keys whose automatic scoring failed
        self.after = None                             # app.dubbed_score.DubbedScore of the active voice
        self.speaking: Optional[SpeakingResult] = None   # who speaks the original's own sound
        self._speaking_track = (None, None)           # (track set, composed track) cache of chosen_track
        self.qc = None                                # app.dubbed_score.DubbedQC (quality flags) of the active voice
        self.playhead = 0
        self.damage: Dict[tuple, object] = {}        # (path, "video" | "audio") -> core.media_damage.DamageReport
        self._edits_json = {}
        self._bind_history()

    # ---- derived state --------------------------------------------------------------------------------------
    @property
    def fps(self) -> float:
        return float(self.info.fps) if self.info is not None else 25.0

    @property
    def num_frames(self) -> int:
        return int(self.info.num_frames) if self.info is not None else 0

    @property
    def has_video(self) -> bool:
        return self.info is not None

    @property
    def has_voice(self) -> bool:
        return self.project.voice is not None

    def voice_data(self) -> Optional[AudioData]:
        v = self.project.voice
        return self.audio.get(v.path) if v is not None else None

    def chosen_track(self):
        """The face the dub uses: the user's choice, else (as core.pipeline) the speaking face shot by shot once
        known, else the primary face."""
        ts = self.track_set
        if ts is None or not ts.tracks:
            return None
        if self.project.face_track is not None:
            try:
                return ts.get(self.project.face_track)
            except (KeyError, LipDubError, IndexError):
                pass
        if self.speaking_changes_face():
            cached_ts, track = self._speaking_track
            if cached_ts is not ts:
                from core.sync.asd.speaker import speaking_track

                track = speaking_track(ts, self.speaking.choice.shots, ts.primary())
                self._speaking_track = (ts, track)
            return track
        return ts.primary()

    def speaking_changes_face(self) -> bool:
        """Does the speaking face (no face chosen by the user) differ from the primary face in some shot?"""
        sp = self.speaking
        return (self.project.face_track is None and sp is not None and self.info is not None
                and sp.video == self.project.video and bool(sp.choice.changed))

    def missing_face(self) -> Optional[np.ndarray]:
        """(num_frames,) bool: frames where the chosen face is absent (None before tracking)."""
        t = self.chosen_track()
        if t is None:
            return None
        missing = ~np.asarray(t.present, bool)
        if len(missing) < self.num_frames:
            missing = np.concatenate([missing, np.ones(self.num_frames - len(missing), bool)])
        return missing

    def video_damage(self):
        """The damage report of the video's picture (None before its scan ends)."""
        return self.damage.get((self.project.video, "video")) if self.project.video else None

    def voice_damage(self):
        """The damage report of the active voice's sound (None before its scan ends)."""
        v = self.project.voice
        return self.damage.get((v.path, "audio")) if v is not None else None

    def performer_video(self) -> Optional[str]:
        """The active voice's file when it is a performer video other than the clip itself, else None."""
        v = self.project.voice
        if v is None or not v.performer or v.path == self.project.video:
            return None
        return v.path

    def performer_damage(self):
        """The damage report of the active voice's picture when it is a performer video (None otherwise, or before
        its scan ends)."""
        path = self.performer_video()
        return None if path is None else self.damage.get((path, "video"))

    def damaged_frames(self) -> Optional[np.ndarray]:
        """(num_frames,) bool: frames whose picture is damaged or missing, or whose voice (at the editor's voice
        offset) is; None when nothing is known to be damaged."""
        from core.media_damage import output_damage

        video, voice = self.video_damage(), self.voice_damage()
        if self.info is None or not any(r is not None and r.damaged for r in (video, voice)):
            return None
        n = self.num_frames
        mask = np.zeros(n, bool)
        mask[output_damage(video, voice, np.arange(n), self.fps, np.arange(n), self.project.edits.voice_offset)] = True
        return mask

    def damage_note(self) -> str:
        """What a dub does with the damaged input (the export dialog, the message on open); '' when clean."""
        parts = []
        video, voice = self.video_damage(), self.voice_damage()
        if video is not None and video.damaged:
            what = [video.describe()]
            if video.missing_frames:
                what.append("where frames are missing, the last picture before them is held (the picture freezes), "
                            "the frames after a hole keep their time")
            if video.bad_frames:
                what.append("frames decoded with errors show ffmpeg's patched-up picture")
            parts.append("; ".join(what) + ".")
        if voice is not None and voice.damaged:
            parts.append(voice.describe() + ": the dub is silent or garbled there.")
        if parts:
            parts.append("The damaged frames are hatched on the timeline and listed with the result "
                         "(damaged_frames).")
        performer = self.performer_damage()
        if performer is not None and performer.damaged:
            parts.append(f"Performer video: {performer.describe()}: the voice drives the mouth on those frames.")
        return "Damaged input. " + " ".join(parts) if parts else ""

    def set_damage(self, report) -> None:
        self.damage[(report.path, report.kind)] = report
        self.events.damage(path=report.path)

    def report_key(self):
        v, t = self.project.voice, self.chosen_track()
        if v is None or t is None:
            return None
        if self.speaking_changes_face():    # the face follows the speaker shot by shot
            shots = tuple((sh.start, sh.track_id) for sh in self.speaking.choice.shots)
            return (v.path, t.track_id, self.project.edits.voice_offset, shots)
        return (v.path, t.track_id, self.project.edits.voice_offset)

    def current_report(self):
        k = self.report_key()
        return self.reports.get(k) if k else None

    def after_report(self):
        """The dubbed result's scores when they belong to the active voice."""
        v = self.project.voice
        if self.after is not None and v is not None and self.after.voice == v.path:
            return self.after
        return None

    def mask_at(self, frame: int):
        """The mask settings in force at `frame` (keyframes interpolated, else the project's mask)."""
        settings, _ = self.project.edits.mask_at(frame, self.project.mask)
        return settings

    def needs_score(self) -> bool:
        """Video, tracks and the active voice are there but the original is not scored against it yet."""
        key = self.report_key()
        return (key is not None and self.voice_data() is not None and key not in self.reports
                and key not in self.score_failed)

    # ---- changes ----------------------------------------------------------------------------------------------
    def touch(self) -> None:
        if not self.dirty:
            self.dirty = True
            self.events.dirty(dirty=True)

    def mark_saved(self) -> None:
        self.dirty = False
        self.events.dirty(dirty=False)

    def set_project(self, project: Project, dirty: bool = False) -> None:
        self.project = project
        self.dirty = dirty
        self.info = None
        self.after = self.qc = None
        self.reports.clear()
        self.track_set = self.auto_track_set = None
        self.speaking = None
        self.playhead = project.playhead
        self._bind_history()
        self.events.project()
        self.events.dirty(dirty=dirty)

    def set_video(self, path: str, info, keep_project_state: bool = False) -> None:
        old = self.project.video
        self.project.video = path
        self.info = info
        if not keep_project_state:
            self.project.range = None
            self.project.face_track = None
            self.project.playhead = 0
            if old != path:
                self.touch()
        self.track_set = self.auto_track_set = None
        self.speaking = None
        self.reports.clear()
        self.after = self.qc = None
        self.orig_audio = None
        self.events.media()

    def set_audio(self, data: AudioData, original: bool = False) -> None:
        if original:
            self.orig_audio = data
        else:
            self.audio[data.path] = data
        self.events.audio(path=data.path)

    def set_voice_activity(self, data: AudioData, vad: np.ndarray, fps: float) -> None:
        data.vad, data.vad_fps = np.asarray(vad, bool), fps
        self.events.audio(path=data.path)

    def add_voice(self, path: str, activate: bool = True, performer: bool = False) -> None:
        self.project.add_voice(path, activate=activate, performer=performer)
        self._voices_changed()

    def set_active_voice(self, index: int) -> None:
        if 0 <= index < len(self.project.voices) and index != self.project.active_voice:
            self.project.active_voice = index
            self._voices_changed()

    def remove_voice(self, index: int) -> None:
        if 0 <= index < len(self.project.voices):
            self.project.remove_voice(index)
            self._voices_changed()

    def _voices_changed(self) -> None:
        self.after = self.qc = None
        self.touch()
        self.events.voices()

    def set_tracks(self, track_set, auto: bool = True) -> None:
        """New tracks: `auto` = as tracked (box fixes are re-applied on top), else with the fixes applied."""
        if auto:
            self.auto_track_set = track_set
            ids = [t.track_id for t in track_set.tracks]
            if self.project.face_track is not None and self.project.face_track not in ids:
                self.project.face_track = None
            if self.speaking is not None:
                self.speaking = None
                self.events.speaking()
        self.track_set = track_set
        self.events.tracks(auto=auto)

    def set_speaking(self, result: Optional[SpeakingResult]) -> None:
        """Who speaks the original clip arrived: when no face is chosen and it changes the dubbed face, the face
        (and what depends on it: scores, the dub) follows (a `tracks` event)."""
        before = self.speaking_changes_face()
        self.speaking = result
        self._speaking_track = (None, None)
        self.events.speaking()
        if before or self.speaking_changes_face():
            self.after = self.qc = None
            self.events.tracks(auto=False)

    def choose_track(self, track_id: Optional[int]) -> None:
        if track_id == self.project.face_track:
            return
        self.project.face_track = track_id
        self.after = self.qc = None
        self.touch()
        self.events.tracks(auto=False)

    def add_report(self, key, report) -> None:
        self.reports[key] = report
        self.events.reports(kind="before")

    def scoring_failed(self, key) -> None:
        self.score_failed.add(key)

    def after_for_voice(self):
        """The active voice's dubbed scores, made empty when missing or stale."""
        from ..dubbed_score import DubbedScore

        voice = self.project.voice.path
        if self.after is None or self.after.voice != voice or len(self.after.curve) != self.num_frames:
            self.after = DubbedScore.empty(voice, self.num_frames)
        return self.after

    def splice_after(self, voice: str, report, offset: int, keep=None) -> bool:
        """Put a dubbed range's scores in place; False when the voice changed meanwhile."""
        if self.project.voice is None or self.project.voice.path != voice:
            return False
        self.after_for_voice().splice(sync_curve(report), offset, keep, report=report)
        self.events.reports(kind="after")
        return True

    def qc_report(self):
        """The dub's quality flags when they belong to the active voice."""
        v = self.project.voice
        if self.qc is not None and v is not None and self.qc.voice == v.path:
            return self.qc
        return None

    def splice_qc(self, voice: str, report, offset: int, keep=None) -> bool:
        """Put a dubbed range's quality flags (core.qc.QCReport) in place; False when the voice changed."""
        from ..dubbed_score import DubbedQC

        if self.project.voice is None or self.project.voice.path != voice or report is None:
            return False
        if self.qc is None or self.qc.voice != voice or len(self.qc.checked) != self.num_frames:
            self.qc = DubbedQC.empty(voice, self.num_frames)
        self.qc.splice(report, offset, keep)
        self.events.reports(kind="qc")
        return True

    def set_range(self, rng) -> None:
        rng = None if rng is None else (int(rng[0]), int(rng[1]))
        if rng == self.project.range:
            return
        self.project.range = rng
        self.touch()
        self.events.range(range=rng)

    def set_playhead(self, frame: int) -> None:
        self.playhead = self.project.playhead = int(frame)
        self.events.playhead(frame=int(frame))

    def settings_changed(self, kind: str) -> None:
        """A dub setting of the project changed: 'track' (the chosen face: a `tracks` event), 'mask', 'engine'
        (engine, weights, device, models) or 'other'."""
        self.touch()
        if kind == "track":
            self.after = self.qc = None
            self.events.tracks(auto=False)
        else:
            self.events.settings(kind=kind)

    # ---- corrections --------------------------------------------------------------------------------------
    def _bind_history(self) -> None:
        self.project.history.listener = self._on_history
        self._edits_json = self.project.edits.to_json()

    def _on_history(self, label: str) -> None:
        old, new = self._edits_json, self.project.edits.to_json()
        self._edits_json = new
        self.touch()
        self.events.edits(label=label, old=old, new=new)

    def apply(self, command) -> None:
        """Carry out a typed correction (`commands.Command`) on the project's history (raises LipDubError)."""
        command.apply(self.project.history, self)
