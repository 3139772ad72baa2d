"""Loading media into the session: the video (probe, original audio, thumbnails, scrub cache) and the voice
tracks (samples, waveform pyramid, voice activity at the video's frame rate). All decoding runs in jobs."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from core import audio, media, pipeline
from core.errors import LipDubError
from core.media_damage import scan_damage

from .frame_cache import prefetch
from .session import AudioData
from .timeline import TimelineWidget, timecode
from .waveform import PeakPyramid
from .workers import Job, describe_exception

VIDEO_EXT = {".mp4", ".mov", ".mkv", ".avi", ".mpg", ".mpeg", ".webm", ".m4v", ".mts", ".m2ts", ".wmv", ".flv"}
AUDIO_EXT = {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".wma", ".aif", ".aiff"}
VIDEO_FILTER = "Video (" + " ".join("*" + e for e in sorted(VIDEO_EXT)) + ");;All files (*)"
AUDIO_FILTER = ("Audio or video (" + " ".join("*" + e for e in sorted(AUDIO_EXT | VIDEO_EXT)) + ");;All files (*)")


class ThumbnailJob(Job):
    thumb = Signal(int, object)


def load_audio_data(path: str) -> AudioData:
    """Decode + peak pyramid (the waveform can be drawn after this; voice activity comes separately)."""
    wav = audio.load_audio(path)
    return AudioData(path, wav, PeakPyramid(wav))


class MediaController(QObject):
    mediaLoaded = Signal()
    voiceLoaded = Signal(str)

    def __init__(self, win):
        super().__init__(win)
        self.win, self.session, self.jobs, self.messages = win, win.session, win.jobs, win.messages

    # ---- video --------------------------------------------------------------------------------------------
    def _ask_files(self, kind: str, title: str, filters: str, many: bool) -> list:
        """Files chosen in a dialog that starts in the folder last used for `kind` (remembered)."""
        start = self.win.qsettings.value(f"dirs/{kind}", "")
        if many:
            paths, _ = QFileDialog.getOpenFileNames(self.win, title, start, filters)
        else:
            path, _ = QFileDialog.getOpenFileName(self.win, title, start, filters)
            paths = [path] if path else []
        if paths:
            self.win.qsettings.setValue(f"dirs/{kind}", str(Path(paths[-1]).parent))
        return paths

    def open_video_dialog(self) -> None:
        for p in self._ask_files("video", "Open video", VIDEO_FILTER, many=False):
            self.open_video(p)

    def _existing(self, path: str, what: str):
        """The absolute path, or None (said) when there is no such file."""
        path = str(Path(path).resolve())
        if Path(path).is_file():
            return path
        self.messages.error(f"The {what} file does not exist: {path}")
        return None

    def open_video(self, path: str, keep_project_state: bool = False) -> None:
        """Probe in the background, then show the video (timeline, frames, original audio, tracking)."""
        path = self._existing(path, "video")
        if path is None:
            return
        self.messages.info(f"Opening {Path(path).name}…")
        self.jobs.start("probe", "Opening video", lambda progress, cancel: media.probe(path),
                        lambda info, k=keep_project_state: self._video_ready(path, info, k))

    def _video_ready(self, path: str, info, keep_project_state: bool) -> None:
        if not info.has_video or info.num_frames <= 0:
            self.messages.error(f"{Path(path).name} has no video frames: choose a video file.")
            return
        self.jobs.cancel("thumbs", "prefetch", "track", "score", "orig-audio")
        self.session.set_video(path, info, keep_project_state)
        self.win.recent.remember("videos", path)
        if info.has_audio:
            self.jobs.start("orig-audio", "Loading audio", lambda p, c: load_audio_data(path),
                            self._orig_audio_ready, lambda msg: self.messages.info(f"Original audio: {msg}"))
        for data in self.session.audio.values():         # voice activity at this frame rate
            if data.vad_fps != info.fps:
                self._start_vad(data)
        self._start_thumbnails(path)
        self.start_prefetch(path, info.num_frames)
        self.check_damage(path, info, "video")
        ph = min(self.session.project.playhead, info.num_frames - 1) if keep_project_state else 0
        self.win.timeline.set_playhead(ph, emit=False)
        self.session.set_playhead(ph)
        self.messages.info(f"{Path(path).name}: {info.width}×{info.height}, {info.fps:.3f} fps, "
                           f"{info.num_frames} frames ({timecode(info.num_frames, info.fps)})")
        self.update_length_note()
        self.mediaLoaded.emit()
        if self.win.auto_analyze:
            self.win.analysis.start_tracking()

    def _orig_audio_ready(self, data: AudioData) -> None:
        if data.path == self.session.project.video:
            self.session.set_audio(data, original=True)
            self._start_vad(data)

    def _start_vad(self, data: AudioData) -> None:
        if self.session.info is None:
            return
        fps = self.session.fps
        n = int(np.ceil(len(data.wav) / audio.SAMPLE_RATE * fps))
        self.jobs.start(f"vad:{data.path}", "Voice activity",
                        lambda progress, cancel: audio.voice_activity(data.wav, fps, n),
                        lambda vad, d=data, f=fps: self.session.set_voice_activity(d, vad, f),
                        lambda msg: self.messages.info(f"Voice activity: {msg}"))

    def _start_thumbnails(self, path: str) -> None:
        frames = self.win.timeline.thumbnail_frames(120)
        h = TimelineWidget.THUMB_H * 2

        def work(progress, cancel):
            reader = media.FrameReader(path)
            try:
                for k, f in enumerate(frames):
                    cancel.raise_if_cancelled()
                    img = reader.read(f)
                    s = h / img.shape[0]
                    small = cv2.resize(img, (max(1, int(img.shape[1] * s)), h), interpolation=cv2.INTER_AREA)
                    if not job.detached:
                        job.thumb.emit(f, small)
                    progress("thumbnails", k + 1, len(frames))
            finally:
                reader.close()

        job = self.jobs.start("thumbs", "Thumbnails", work, job_cls=ThumbnailJob, quiet_cancel=True,
                              on_fail=lambda msg: self.messages.info(f"Thumbnails: {msg}"))
        job.thumb.connect(self.jobs.live(lambda f, arr, p=path: self._on_thumb(p, f, arr)))

    def _on_thumb(self, path: str, frame: int, arr: np.ndarray) -> None:
        if path == self.session.project.video:
            arr = np.ascontiguousarray(arr)
            img = QImage(arr.data, arr.shape[1], arr.shape[0], int(arr.strides[0]), QImage.Format_BGR888).copy()
            self.win.timeline.set_thumbnail(frame, img)

    def start_prefetch(self, path: str, num_frames: int, start: int = 0) -> None:
        scrub = self.win.frames.scrub
        scrub.centre = max(self.session.playhead, start)
        self.jobs.start("prefetch", "Caching frames for scrubbing",
                        lambda progress, cancel: prefetch(scrub, path, start, num_frames, progress, cancel),
                        quiet_cancel=True, on_fail=lambda msg: self.messages.info(f"Frame cache: {msg}"))

    # ---- voices -------------------------------------------------------------------------------------------
    def add_voice_dialog(self) -> None:
        for p in self._ask_files("voice", "Add voice track", AUDIO_FILTER, many=True):
            self.add_voice(p)

    def add_performer_dialog(self) -> None:
        for p in self._ask_files("voice", "Add the voice performer's video", VIDEO_FILTER, many=False):
            self.add_voice(p, performer=True)

    def add_voice(self, path: str, activate: bool = True, performer: bool = False) -> None:
        path = self._existing(path, "voice")
        if path is None:
            return
        if self.session.project.video and Path(path) == Path(self.session.project.video):
            self.messages.info("Using the video's own audio as a voice track.")
        self.session.add_voice(path, activate=activate, performer=performer)
        self.win.recent.remember("voices", path)
        self.load_voice(path)

    def load_voice(self, path: str) -> None:
        if path not in self.session.audio:
            self.jobs.start(f"voice:{path}", f"Loading {Path(path).name}", lambda p, c: load_audio_data(path),
                            self._voice_ready, lambda msg, p=path: self._voice_failed(p, msg))

    # ---- damage -------------------------------------------------------------------------------------------
    def check_damage(self, path: str, info=None, kind: str = "video") -> None:
        """Scan the video's picture / a voice's sound for damage in the background (core.media_damage); a damaged
        file is said at once (a message box), its frames hatched on the timeline."""
        def work(progress, cancel):
            return scan_damage(path, info or media.probe(path), kind, cancel=cancel)

        self.jobs.start(f"damage:{kind}:{path}", "Checking for damage", work, self._damage_ready,
                        lambda msg: self.messages.info(f"Damage check: {msg}"), quiet_cancel=True)

    def _damage_ready(self, report) -> None:
        self.session.set_damage(report)
        project = self.session.project
        if not report.damaged:
            return
        performers = [v.path for v in project.voices if v.performer]
        if report.kind == "video" and report.path in performers and report.path != project.video:
            self.messages.error(f"{Path(report.path).name}: {report.describe()}. The dub does not follow the "
                                f"performer's mouth on those frames: the voice drives it there.",
                                "Damaged performer video")
        elif report.path in (project.video, *(v.path for v in project.voices)):
            what = "video" if report.kind == "video" else "voice"
            self.messages.error(f"{Path(report.path).name}: {report.describe()}. The damaged frames are hatched "
                                f"on the timeline; a dub uses what could be decoded (see Export).",
                                f"Damaged {what}")

    def _voice_ready(self, data: AudioData) -> None:
        self.check_damage(data.path, None, "audio")
        if any(v.performer and v.path == data.path for v in self.session.project.voices):
            self.check_damage(data.path, None, "video")       # the performer's picture drives the mouth
        self.session.set_audio(data)
        self._start_vad(data)
        self.update_length_note()
        self.voiceLoaded.emit(data.path)

    def _voice_failed(self, path: str, msg: str) -> None:
        idx = next((i for i, v in enumerate(self.session.project.voices) if v.path == path), None)
        if idx is not None:
            self.session.remove_voice(idx)
        self.messages.error(msg, "Voice track")

    def remove_active_voice(self) -> None:
        if self.session.has_voice:
            self.session.remove_voice(self.session.project.active_voice)

    def update_length_note(self, *_) -> None:
        """Say how long the dub will be when voice and video differ (the timeline shows the video's frames)."""
        s, note = self.session, ""
        data = s.voice_data()
        if s.info is not None and data is not None:
            try:
                schedule, msg = pipeline.output_schedule(s.num_frames, s.fps, len(data.wav),
                                                         s.project.edits.voice_offset, s.project.length_policy,
                                                         seconds=True)
            except (ValueError, LipDubError) as exc:
                schedule, msg = None, describe_exception(exc)
            note = msg
            if schedule is not None and msg:
                n = len(schedule)
                note = f"{msg} The dub has {n} frames ({timecode(n, s.fps)})."
                if n > s.num_frames:
                    note += (f" The timeline shows the video's {s.num_frames}; preview and scores cover those, "
                             "export all.")
        self.win.settings_panel.set_length_note(note)
