"""The studio window: media, timeline, waveforms, face tracking, sync confidence, preview, export, project.

Long work runs in `workers.Job`s on a thread pool (probe, audio, thumbnails, tracking, scoring, preview
preparation, export); frames for the playhead come from a `LatestWorker` thread (only the newest request is
decoded, with a small frame cache). Widgets are only touched here, in the UI thread, from queued signals.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np
from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QImage, QKeySequence
from PySide6.QtWidgets import (QComboBox, QDockWidget, QFileDialog, QHBoxLayout, QLabel, QTabWidget,
                               QListWidget, QListWidgetItem, QMainWindow, QMenu, QMessageBox, QProgressBar, QPushButton,
                               QSplitter, QStyle, QToolBar, QVBoxLayout, QWidget)

from core.edits import Edits, changed_range
from core.errors import LipDubError, ProjectError
from core.project import EXTENSION, Project, find_recoverable, recover

from . import core_bridge
from .corrections import CorrectionsPanel
from .dubbed_score import DubbedScore, rescore_plan
from .export_dialog import ExportDialog, stage_label
from .frame_cache import FrameSource, ScrubCache, prefetch
from .face_view import FaceOverlay, FaceView, OverlayState
from .preview import PreviewController, PreviewView, RangePlayer
from .settings_dialog import DubSettingsPanel, SettingsDialog
from .sync_track import SyncStatusPanel, SyncTrack
from .timeline import TimelineWidget, timecode
from .waveform import PeakPyramid, WaveformLane
from .workers import Job, JobRunner, LatestWorker, describe_exception

log = logging.getLogger(__name__)

VIDEO_EXT = {".mp4", ".mov", ".mkv", ".avi", ".mpg", ".mpeg", ".webm", ".m4v", ".mts", ".m2ts", ".wmv", ".flv"}
AUDIO_EXT = {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".wma", ".aif", ".aiff"}
VIDEO_FILTER = "Video (" + " ".join("*" + e for e in sorted(VIDEO_EXT)) + ");;All files (*)"
AUDIO_FILTER = ("Audio or video (" + " ".join("*" + e for e in sorted(AUDIO_EXT | VIDEO_EXT)) + ");;All files (*)")
PROJECT_FILTER = f"LipDub project (*{EXTENSION});;All files (*)"
MAX_RECENT = 8
BACKGROUND_JOBS = ("probe", "thumbs", "prefetch", "track", "score", "preview-prepare", "render-preview", "refit",
                   "rescore")


@dataclass
class AudioData:
    path: str
    wav: np.ndarray
    pyramid: PeakPyramid
    vad: Optional[np.ndarray] = None
    vad_fps: float = 0.0


def _curve(report) -> np.ndarray:
    """Per-frame confidence with frames the scorer could not judge (no face, outside its windows) as NaN."""
    y = np.asarray(report.per_frame, np.float64).copy()
    valid = getattr(report, "valid", None)
    if valid is not None and len(valid) == len(y):
        y[~np.asarray(valid, bool)] = np.nan
    return y


class ThumbnailJob(Job):
    thumb = Signal(int, object)


class MainWindow(QMainWindow):
    mediaLoaded = Signal()
    voiceLoaded = Signal(str)
    trackingFinished = Signal()
    scoringFinished = Signal(str)
    frameShown = Signal(int)
    previewRendered = Signal(int)
    errorShown = Signal(str)
    projectLoaded = Signal()
    previewFileReady = Signal(str)

    def __init__(self, settings: Optional[QSettings] = None, autosave_dir: Optional[str] = None,
                 auto_analyze: bool = True, autosave_interval_ms: int = 60_000, track_cache_dir=None):
        super().__init__()
        self.qsettings = settings if settings is not None else QSettings("LipDub", "LipDub Studio")
        self.autosave_dir = autosave_dir
        self.auto_analyze = auto_analyze
        self.track_cache_dir = track_cache_dir
        self.project = Project()
        self.dirty = False
        self.info = None
        self.audio: Dict[str, AudioData] = {}
        self.orig_audio: Optional[AudioData] = None
        self.track_set = None
        self._auto_track_set = None
        self._edits_json = {}
        self.reports: Dict[tuple, object] = {}     # (voice path, track id) -> SyncReport (original vs voice)
        self.after: Optional[DubbedScore] = None   # the dubbed result vs the voice, per frame
        self._rescore_pending: Optional[tuple] = None   # frames still to re-render and re-score
        self._rescore_running: Optional[tuple] = None
        self.score_failed = set()                  # keys whose automatic scoring failed (no retry loop)
        self.last_error: Optional[str] = None
        self.error_boxes = []
        self.last_frame_seconds = 0.0
        self._closing = False
        self._pending_range = None
        self._preview_dir = None
        self.face_exact = True
        self._frame_request = None

        self.runner = JobRunner(self, max_threads=3)
        self.runner.jobStarted.connect(self._live(self._update_jobs))
        self.runner.jobFinished.connect(self._live(self._update_jobs))
        self.scrub = ScrubCache()
        self.frames = FrameSource(self.scrub)
        self._exact_timer = QTimer(self)
        self._exact_timer.setSingleShot(True)
        self._exact_timer.setInterval(120)
        self._exact_timer.timeout.connect(self._load_exact)
        self._rescore_timer = QTimer(self)          # edits come in bursts (dragging a slider): wait for a pause
        self._rescore_timer.setSingleShot(True)
        self._rescore_timer.setInterval(400)
        self._rescore_timer.timeout.connect(self._start_rescore)
        self.loader = LatestWorker(self.frames.compute, "frame-loader")
        self.loader.ready.connect(self._on_frame)
        self.loader.failed.connect(self._on_frame_failed)
        self.loader.start()
        self.preview_ctrl = PreviewController(self.runner, self)
        self.preview_ctrl.rendered.connect(self._on_preview)
        self.preview_ctrl.statusChanged.connect(lambda t: self.preview.set_status(t))
        self.preview_ctrl.failed.connect(lambda m: self.show_error(m, "Preview"))
        self.player = RangePlayer(self)
        self.player.frame.connect(lambda f: self.timeline.set_playhead(f))
        self.player.stopped.connect(lambda: self.play_action.setChecked(False))

        self._build_ui()
        self._build_actions()
        self.settings_panel.load(self.project)
        self._bind_history()
        self.setAcceptDrops(True)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(autosave_interval_ms)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        self._update_title()
        self._update_enabled()
        geo = self.qsettings.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1280, 860)

    # ================================================================================================= UI ==
    def _build_ui(self) -> None:
        self.face_view = FaceView()
        self.face_view.trackClicked.connect(self.choose_track)
        self.face_view.framePainted.connect(self.frameShown)
        self.preview = PreviewView()
        self.preview.framePainted.connect(lambda i: None)
        top = QSplitter(Qt.Horizontal)
        top.addWidget(self.face_view)
        top.addWidget(self.preview)
        top.setSizes([640, 640])

        self.sync_panel = SyncStatusPanel()
        self.timeline = TimelineWidget()
        self.orig_lane = WaveformLane("Original audio", color=(150, 150, 160))
        self.voice_lane = WaveformLane("Voice", color=(90, 170, 255))
        self.sync_track = SyncTrack()
        self.lanes = [self.orig_lane, self.voice_lane, self.sync_track]
        for lane in self.lanes:
            lane.frameClicked.connect(lambda f: self.timeline.set_playhead(f))
            lane.wheel.connect(self.timeline.handle_wheel)
        self.timeline.playheadChanged.connect(self._on_playhead)
        self.timeline.viewChanged.connect(self._on_view)
        self.timeline.rangeChanged.connect(self._on_range)

        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.setSpacing(1)
        bl.addWidget(self.sync_panel)
        bl.addWidget(self.timeline)
        bl.addWidget(self.orig_lane, 2)
        bl.addWidget(self.voice_lane, 2)
        bl.addWidget(self.sync_track, 3)
        split = QSplitter(Qt.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setSizes([500, 360])
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.setCentralWidget(split)

        # right dock: voices + dub settings
        self.voice_list = QListWidget()
        self.voice_list.setToolTip("Voice tracks: double-click one to make it the active voice")
        self.voice_list.itemActivated.connect(lambda it: self.set_active_voice(self.voice_list.row(it)))
        self.voice_list.setMaximumHeight(120)
        self.settings_panel = DubSettingsPanel()
        self.settings_panel.changed.connect(self._on_panel_changed)
        dock_w = QWidget()
        dl = QVBoxLayout(dock_w)
        dl.setContentsMargins(2, 2, 2, 2)
        dl.addWidget(QLabel("<b>Voice tracks</b>"))
        dl.addWidget(self.voice_list)
        vb = QHBoxLayout()
        add_b = QPushButton("Add…")
        add_b.clicked.connect(self.add_voice_dialog)
        rm_b = QPushButton("Remove")
        rm_b.clicked.connect(self.remove_active_voice)
        vb.addWidget(add_b)
        vb.addWidget(rm_b)
        dl.addLayout(vb)
        self.corrections = CorrectionsPanel()
        self.corrections.command.connect(self._on_correction)
        self.corrections.toolChanged.connect(self.face_view.set_tool)
        self.corrections.jumpTo.connect(lambda f: self.timeline.set_playhead(f))
        self.face_view.boxDrawn.connect(self._on_box_drawn)
        self.face_view.polygonDrawn.connect(self._on_polygon_drawn)
        self.dock_tabs = QTabWidget()
        self.dock_tabs.addTab(self.settings_panel, "Settings")
        self.dock_tabs.addTab(self.corrections, "Corrections")
        dl.addWidget(self.dock_tabs, 1)
        dock = QDockWidget("Dub", self)
        dock.setObjectName("dub_dock")
        dock.setWidget(dock_w)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(Qt.RightDockWidgetArea, dock)

        # status bar: message, job progress, cancel
        sb = self.statusBar()
        self.job_label = QLabel("")
        self.job_progress = QProgressBar()
        self.job_progress.setMaximumWidth(220)
        self.job_progress.setTextVisible(True)
        self.job_cancel = QPushButton("Cancel")
        self.job_cancel.setToolTip("Cancel the background analysis")
        self.job_cancel.clicked.connect(self.cancel_background)
        for w in (self.job_label, self.job_progress, self.job_cancel):
            sb.addPermanentWidget(w)
        self._update_jobs()

    def _act(self, text, slot, shortcut=None, tip=None, checkable=False, icon=None) -> QAction:
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.WindowShortcut)
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        if icon is not None:
            a.setIcon(self.style().standardIcon(icon))
        a.setCheckable(checkable)
        if checkable:
            a.toggled.connect(slot)
        else:
            a.triggered.connect(lambda *_: slot())
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        self.new_action = self._act("&New Project", self.new_project, QKeySequence.New)
        self.open_video_action = self._act("Open &Video…", self.open_video_dialog, "Ctrl+Shift+O",
                                           "Open the video to dub", icon=QStyle.SP_DialogOpenButton)
        self.add_voice_action = self._act("Add Voice &Track…", self.add_voice_dialog, "Ctrl+Shift+A",
                                          "Add a new voice track (audio or video file)", icon=QStyle.SP_MediaVolume)
        self.open_project_action = self._act("&Open Project…", self.open_project_dialog, QKeySequence.Open)
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.save_action = self._act("&Save Project", self.save_project, QKeySequence.Save)
        self.save_as_action = self._act("Save Project &As…", self.save_project_as, QKeySequence.SaveAs)
        self.export_action = self._act("&Export…", self.show_export, "Ctrl+E", "Export the dubbed video",
                                       icon=QStyle.SP_DialogSaveButton)
        self.quit_action = self._act("&Quit", self.close, QKeySequence.Quit)
        for a in (self.new_action, self.open_video_action, self.add_voice_action, self.open_project_action):
            m.addAction(a)
        m.addMenu(self.recent_menu)
        m.addSeparator()
        for a in (self.save_action, self.save_as_action, self.export_action):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.quit_action)

        m = mb.addMenu("&Edit")
        self.undo_action = self._act("&Undo", self.undo, QKeySequence.Undo)
        self.redo_action = self._act("&Redo", self.redo, QKeySequence.Redo)
        self.redo_action.setShortcuts([QKeySequence.Redo, QKeySequence("Ctrl+Shift+Z")])
        m.addAction(self.undo_action)
        m.addAction(self.redo_action)
        m.addSeparator()
        self.set_in_action = self._act("Set &In", self.set_in, "I", "Start the dub range at the playhead")
        self.set_out_action = self._act("Set &Out", self.set_out, "O", "End the dub range after the playhead")
        self.clear_range_action = self._act("&Clear Range", self.clear_range, "Alt+X")
        self.remove_voice_action = self._act("&Remove Active Voice Track", self.remove_active_voice)
        self.settings_action = self._act("Engine and &Models…", self.show_settings, "Ctrl+,")
        for a in (self.set_in_action, self.set_out_action, self.clear_range_action, self.remove_voice_action):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.settings_action)

        m = mb.addMenu("&Navigate")
        self.step_actions = [
            self._act("Previous Frame", lambda: self.step(-1), "Left"),
            self._act("Next Frame", lambda: self.step(1), "Right"),
            self._act("Back One Second", lambda: self.step_seconds(-1), "Shift+Left"),
            self._act("Forward One Second", lambda: self.step_seconds(1), "Shift+Right"),
            self._act("First Frame", lambda: self.timeline.set_playhead(0), "Home"),
            self._act("Last Frame", lambda: self.timeline.set_playhead(self.timeline.num_frames - 1), "End"),
            self._act("Next Low-Confidence Stretch", lambda: self.jump_low(1), "N",
                      "Jump to the next stretch where lips and voice disagree"),
            self._act("Previous Low-Confidence Stretch", lambda: self.jump_low(-1), "Shift+N"),
        ]
        for a in self.step_actions:
            m.addAction(a)

        m = mb.addMenu("&View")
        self.zoom_in_action = self._act("Zoom &In", lambda: self.timeline.zoom(2.0), "=")
        self.zoom_out_action = self._act("Zoom &Out", lambda: self.timeline.zoom(0.5), "-")
        self.fit_action = self._act("&Fit Timeline", self.timeline.fit, "\\")
        for a in (self.zoom_in_action, self.zoom_out_action, self.fit_action):
            m.addAction(a)
        m.addSeparator()
        self.preview_action = self._act("&Preview Dubbed Frame", self.set_preview_enabled, "P",
                                        "Render the dubbed frame at the playhead", checkable=True)
        m.addAction(self.preview_action)
        self.mode_group = QActionGroup(self)
        self.mode_actions = {}
        for mode, text, key in (("after", "&After (dubbed)", "A"), ("before", "&Before (original)", "B"),
                                ("split", "&Split View", "S")):
            a = self._act(text, lambda on, mo=mode: on and self.set_preview_mode(mo), key, checkable=True)
            self.mode_group.addAction(a)
            self.mode_actions[mode] = a
            m.addAction(a)
        self.mode_actions["after"].setChecked(True)
        m.addSeparator()
        for attr, text in (("show_box", "Show Face &Box"), ("show_landmarks", "Show &Landmarks"),
                           ("show_mask", "Show &Mask Outline")):
            a = self._act(text, lambda on, at=attr: (setattr(self.face_view, at, on), self.face_view.update()),
                          checkable=True)
            a.setChecked(True)
            m.addAction(a)

        m = mb.addMenu("&Analyze")
        self.track_action = self._act("&Track Faces", self.start_tracking, "Ctrl+T",
                                      "Find and follow the faces in the video", icon=QStyle.SP_FileDialogContentsView)
        self.score_action = self._act("&Score Sync", self.start_scoring, "Ctrl+R",
                                      "Measure how well the lips follow the voice", icon=QStyle.SP_BrowserReload)
        self.play_action = self._act("&Play Range with Voice", self.set_playing, "Space",
                                     "Play the in/out range (or from the playhead) with the active voice",
                                     checkable=True, icon=QStyle.SP_MediaPlay)
        self.render_play_action = self._act("&Render and Play Dubbed Range", self.render_and_play, "Ctrl+Shift+P",
                                            "Dub the in/out range (or 5 s from the playhead) quickly and play it "
                                            "with its voice", icon=QStyle.SP_MediaSeekForward)
        self.score_dubbed_action = self._act("Score &Dubbed Result", self.score_dubbed, "Ctrl+Shift+R",
                                             "Dub the in/out range (or the whole clip) and measure its sync; "
                                             "after each correction only the frames it touched are re-scored")
        for a in (self.track_action, self.score_action, self.score_dubbed_action, self.play_action,
                  self.render_play_action):
            m.addAction(a)

        m = mb.addMenu("&Help")
        m.addAction(self._act("&About LipDub Studio", self.show_about))

        tb = QToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setIconSize(QSize(18, 18))
        tb.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.addToolBar(tb)
        tb.addAction(self.open_video_action)
        tb.addAction(self.add_voice_action)
        self.voice_combo = QComboBox()
        self.voice_combo.setMinimumWidth(180)
        self.voice_combo.setToolTip("The active voice track")
        self.voice_combo.currentIndexChanged.connect(self._on_voice_combo)
        tb.addWidget(QLabel(" Voice: "))
        tb.addWidget(self.voice_combo)
        tb.addSeparator()
        tb.addAction(self.track_action)
        tb.addAction(self.score_action)
        tb.addAction(self.play_action)
        tb.addAction(self.render_play_action)
        tb.addSeparator()
        tb.addAction(self.preview_action)
        self.mode_combo = QComboBox()
        for mode, text in (("after", "After"), ("before", "Before"), ("split", "Split")):
            self.mode_combo.addItem(text, mode)
        self.mode_combo.setToolTip("Show the dubbed frame, the original, or both split (drag the divider)")
        self.mode_combo.currentIndexChanged.connect(lambda i: self.set_preview_mode(self.mode_combo.itemData(i)))
        tb.addWidget(self.mode_combo)
        tb.addSeparator()
        tb.addAction(self.export_action)

    # ============================================================================================ helpers ==
    def show_error(self, message: str, title: str = "LipDub Studio") -> None:
        """A readable message: status bar + a non-blocking message box."""
        self.last_error = message
        log.info("error shown: %s", message)
        self.statusBar().showMessage(message, 15000)
        if not self._closing:
            box = QMessageBox(QMessageBox.Warning, title, message, QMessageBox.Ok, self)
            box.setAttribute(Qt.WA_DeleteOnClose)
            box.finished.connect(lambda *_, b=box: b in self.error_boxes and self.error_boxes.remove(b))
            self.error_boxes.append(box)
            box.open()
        self.errorShown.emit(message)

    def close_error_boxes(self) -> None:
        for b in list(self.error_boxes):
            b.close()
        self.error_boxes.clear()

    def info_message(self, text: str, ms: int = 8000) -> None:
        self.statusBar().showMessage(text, ms)

    def _touch(self) -> None:
        if not self.dirty:
            self.dirty = True
            self._update_title()

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.project.title}{' *' if self.dirty else ''} — LipDub Studio")

    def _update_enabled(self) -> None:
        has_video = self.info is not None
        has_voice = self.project.voice is not None
        self.track_action.setEnabled(has_video)
        self.score_action.setEnabled(has_video and has_voice)
        self.export_action.setEnabled(has_video and has_voice)
        self.preview_action.setEnabled(has_video and has_voice)
        self.render_play_action.setEnabled(has_video and has_voice)
        self.play_action.setEnabled(has_video)
        for a in (self.set_in_action, self.set_out_action, self.clear_range_action):
            a.setEnabled(has_video)
        self.remove_voice_action.setEnabled(has_voice)

    def _update_jobs(self, *a) -> None:
        jobs = [j for j in self.runner.running() if j.name != "export"]
        if not jobs:
            self.job_label.setText("")
            self.job_progress.setVisible(False)
            self.job_cancel.setVisible(False)
            return
        j = jobs[0]
        stage, done, total = j.last_progress
        names = ", ".join(x.label for x in jobs)
        self.job_label.setText(f"{names}: {stage_label(stage)}" if stage else names + "…")
        self.job_progress.setVisible(True)
        self.job_cancel.setVisible(True)
        if total > 0:
            self.job_progress.setRange(0, total)
            self.job_progress.setValue(min(done, total))
        else:
            self.job_progress.setRange(0, 0)

    def _live(self, fn):
        """A slot wrapper that does nothing once the window is closing (queued results may still arrive)."""
        def slot(*args):
            if not self._closing:
                fn(*args)
        return slot

    def _start_job(self, name: str, label: str, fn, on_ok, on_fail=None, job_cls=Job) -> Job:
        job = job_cls(name, fn, label)
        job.progress.connect(self._live(self._update_jobs))
        job.succeeded.connect(self._live(on_ok))
        job.failed.connect(self._live(on_fail or (lambda msg, lab=label: self.show_error(msg, lab))))
        job.cancelled.connect(self._live(lambda lab=label: self.info_message(f"{lab}: cancelled.")))
        return self.runner.start(job)

    def cancel_background(self) -> None:
        for name in BACKGROUND_JOBS:
            j = self.runner.get(name)
            if j is not None:
                j.cancel()

    @property
    def fps(self) -> float:
        return float(self.info.fps) if self.info is not None else 25.0

    @property
    def num_frames(self) -> int:
        return int(self.info.num_frames) if self.info is not None else 0

    @property
    def playhead(self) -> int:
        return self.timeline.playhead

    # ============================================================================================== media ==
    def open_video_dialog(self) -> None:
        start = self.qsettings.value("dirs/video", "")
        path, _ = QFileDialog.getOpenFileName(self, "Open video", start, VIDEO_FILTER)
        if path:
            self.qsettings.setValue("dirs/video", str(Path(path).parent))
            self.open_video(path)

    def add_voice_dialog(self) -> None:
        start = self.qsettings.value("dirs/voice", "")
        paths, _ = QFileDialog.getOpenFileNames(self, "Add voice track", start, AUDIO_FILTER)
        for p in paths:
            self.qsettings.setValue("dirs/voice", str(Path(p).parent))
            self.add_voice(p)

    def open_video(self, path: str, keep_project_state: bool = False) -> None:
        """Probe in the background, then show the video (timeline, frames, original audio, tracking)."""
        path = str(Path(path).resolve())
        if not Path(path).is_file():
            self.show_error(f"The video file does not exist: {path}")
            return
        self.info_message(f"Opening {Path(path).name}…")
        self._start_job("probe", "Opening video", lambda progress, cancel: core_bridge.probe(path),
                        lambda info, k=keep_project_state: self._video_ready(path, info, k))

    def _video_ready(self, path: str, info, keep_project_state: bool) -> None:
        if not info.has_video or info.num_frames <= 0:
            self.show_error(f"{Path(path).name} has no video frames: choose a video file.")
            return
        self.player.stop()
        for name in ("thumbs", "prefetch", "track", "score", "orig-audio"):
            j = self.runner.get(name)
            if j is not None:
                j.cancel()
        self.info = info
        old_video = self.project.video
        self.project.video = path
        if not keep_project_state:
            self.project.range = None
            self.project.face_track = None
            self.project.playhead = 0
            if old_video != path:
                self._touch()
        self.track_set = None
        self.reports.clear()
        self.after = None
        self.preview_ctrl.invalidate()
        self.preview.clear()
        self.loader.call_soon(self.frames.close)
        self.scrub.reset(path)
        aspect = info.width / info.height if info.height else 4 / 3
        self.timeline.set_media(info.num_frames, info.fps, aspect)
        self.timeline.set_no_face(None)
        self.sync_track.set_no_face(None)
        self.sync_track.clear_curves()
        self.sync_panel.set_report("before", None)
        self.sync_panel.set_report("after", None)
        self.settings_panel.set_tracks(None, None)
        self.face_view.set_overlay(OverlayState())
        if self.project.range is not None:
            self.timeline.set_range(self.project.range, emit=False)
        self._on_view(self.timeline.v0, self.timeline.v1)
        self._remember_recent("videos", path)
        self._update_title()
        self._update_enabled()
        # original audio
        self.orig_audio = None
        self.orig_lane.set_audio(None, info.fps, "Original audio")
        if info.has_audio:
            self._start_job("orig-audio", "Loading audio", lambda p, c: self._load_audio_data(path),
                            self._orig_audio_ready, lambda msg: self.info_message(f"Original audio: {msg}"))
        # voices: voice activity at this fps
        for data in self.audio.values():
            if data.vad_fps != info.fps:
                self._start_vad(data)
        self._show_active_voice()
        self._start_thumbnails(path)
        self._start_prefetch(path, info.num_frames)
        ph = min(self.project.playhead, info.num_frames - 1) if keep_project_state else 0
        self.timeline.set_playhead(ph, emit=False)
        self._on_playhead(ph)
        self.info_message(f"{Path(path).name}: {info.width}×{info.height}, {info.fps:.3f} fps, "
                          f"{info.num_frames} frames ({timecode(info.num_frames, info.fps)})")
        self.mediaLoaded.emit()
        if self.auto_analyze:
            self.start_tracking()

    @staticmethod
    def _load_audio_data(path: str) -> AudioData:
        """Decode + peak pyramid (the waveform can be drawn after this; voice activity comes separately)."""
        wav = core_bridge.load_audio(path)
        return AudioData(path, wav, PeakPyramid(wav))

    def _start_vad(self, data: AudioData) -> None:
        if self.info is None:
            return
        fps = self.fps
        n = int(np.ceil(len(data.wav) / core_bridge.SAMPLE_RATE * fps))

        def work(progress, cancel):
            return core_bridge.voice_activity(data.wav, fps, n)

        def done(vad, d=data, f=fps):
            d.vad, d.vad_fps = np.asarray(vad, bool), f
            if d is self.orig_audio:
                self.orig_lane.set_activity(d.vad)
            elif self.project.voice is not None and self.project.voice.path == d.path:
                self.voice_lane.set_activity(d.vad)

        self._start_job(f"vad:{data.path}", "Voice activity", work, done,
                        lambda msg: self.info_message(f"Voice activity: {msg}"))

    def _orig_audio_ready(self, data: AudioData) -> None:
        if data.path != self.project.video:
            return
        self.orig_audio = data
        self.orig_lane.set_audio(data.pyramid, self.fps, "Original audio")
        self.orig_lane.set_activity(None)
        self._start_vad(data)

    def _start_thumbnails(self, path: str) -> None:
        frames = self.timeline.thumbnail_frames(120)
        h = TimelineWidget.THUMB_H * 2

        def work(progress, cancel):
            import cv2

            reader = core_bridge.frame_reader(path)
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
                close = getattr(reader, "close", None)
                if close:
                    close()

        job = ThumbnailJob("thumbs", work, "Thumbnails")
        job.thumb.connect(self._live(lambda f, arr, p=path: self._on_thumb(p, f, arr)))
        job.progress.connect(self._live(self._update_jobs))
        job.failed.connect(self._live(lambda msg: self.info_message(f"Thumbnails: {msg}")))
        self.runner.start(job)

    def _start_prefetch(self, path: str, num_frames: int, start: int = 0) -> None:
        self.scrub.centre = max(self.playhead, start)
        job = Job("prefetch", lambda progress, cancel: prefetch(self.scrub, path, start, num_frames, progress, cancel),
                  "Caching frames for scrubbing")
        job.progress.connect(self._live(self._update_jobs))
        job.failed.connect(self._live(lambda msg: self.info_message(f"Frame cache: {msg}")))
        self.runner.start(job)

    def _on_thumb(self, path: str, frame: int, arr: np.ndarray) -> None:
        if path != self.project.video:
            return
        arr = np.ascontiguousarray(arr)
        img = QImage(arr.data, arr.shape[1], arr.shape[0], int(arr.strides[0]), QImage.Format_BGR888).copy()
        self.timeline.set_thumbnail(frame, img)

    # ---- voices -------------------------------------------------------------------------------------------
    def add_voice(self, path: str, activate: bool = True) -> None:
        path = str(Path(path).resolve())
        if not Path(path).is_file():
            self.show_error(f"The voice file does not exist: {path}")
            return
        if self.project.video and Path(path) == Path(self.project.video):
            self.info_message("Using the video's own audio as a voice track.")
        self.project.add_voice(path, activate=activate)
        self._touch()
        self._refresh_voice_list()
        self._remember_recent("voices", path)
        self._load_voice(path)
        self._voice_changed()

    def _load_voice(self, path: str) -> None:
        if path in self.audio:
            return
        self._start_job(f"voice:{path}", f"Loading {Path(path).name}",
                        lambda p, c: self._load_audio_data(path), self._voice_ready,
                        lambda msg, p=path: self._voice_failed(p, msg))

    def _voice_ready(self, data: AudioData) -> None:
        self.audio[data.path] = data
        self._start_vad(data)
        self._show_active_voice()
        self.voiceLoaded.emit(data.path)
        if self.project.voice is not None and self.project.voice.path == data.path:
            self._maybe_auto_score()

    def _voice_failed(self, path: str, msg: str) -> None:
        idx = next((i for i, v in enumerate(self.project.voices) if v.path == path), None)
        if idx is not None:
            self.project.remove_voice(idx)
            self._refresh_voice_list()
            self._voice_changed()
        self.show_error(msg, "Voice track")

    def _refresh_voice_list(self) -> None:
        self.voice_combo.blockSignals(True)
        self.voice_combo.clear()
        self.voice_list.clear()
        for i, v in enumerate(self.project.voices):
            self.voice_combo.addItem(v.display_name(), i)
            it = QListWidgetItem(("▶ " if i == self.project.active_voice else "   ") + v.display_name())
            it.setToolTip(v.path)
            f = it.font()
            f.setBold(i == self.project.active_voice)
            it.setFont(f)
            self.voice_list.addItem(it)
        self.voice_combo.setCurrentIndex(self.project.active_voice)
        self.voice_combo.blockSignals(False)
        self._update_enabled()

    def _on_voice_combo(self, index: int) -> None:
        if index >= 0 and index != self.project.active_voice:
            self.set_active_voice(index)

    def set_active_voice(self, index: int) -> None:
        if not (0 <= index < len(self.project.voices)) or index == self.project.active_voice:
            return
        self.project.active_voice = index
        self._touch()
        self._refresh_voice_list()
        self._voice_changed()

    def remove_active_voice(self) -> None:
        if self.project.voice is None:
            return
        self.project.remove_voice(self.project.active_voice)
        self._touch()
        self._refresh_voice_list()
        self._voice_changed()

    def _voice_changed(self) -> None:
        self.player.stop()
        self.after = None
        self._show_active_voice()
        self._show_reports()
        self._request_preview()
        self._maybe_auto_score()

    def _show_active_voice(self) -> None:
        v = self.project.voice
        data = self.audio.get(v.path) if v is not None else None
        if v is None:
            self.voice_lane.set_audio(None, self.fps, "Voice")
            self.voice_lane.set_activity(None)
        elif data is None:
            self.voice_lane.set_audio(None, self.fps, f"Voice: {v.display_name()} (loading…)")
        else:
            self.voice_lane.set_audio(data.pyramid, self.fps, f"Voice: {v.display_name()}")
            self.voice_lane.set_activity(data.vad)
        self._on_view(self.timeline.v0, self.timeline.v1)
        self._update_length_note()

    def _update_length_note(self) -> None:
        """Say how long the dub will be when voice and video differ (the timeline shows the video's frames)."""
        v = self.project.voice
        data = self.audio.get(v.path) if v is not None else None
        if self.info is None or data is None:
            self.settings_panel.set_length_note("")
            return
        try:
            schedule, msg = core_bridge.pipeline().output_schedule(
                self.num_frames, self.fps, len(data.wav), self.project.edits.voice_offset, self.project.length_policy,
                seconds=True)
        except (ImportError, ValueError, LipDubError) as exc:
            self.settings_panel.set_length_note(describe_exception(exc))
            return
        if not msg:
            self.settings_panel.set_length_note("")
            return
        n = len(schedule)
        note = f"{msg} The dub has {n} frames ({timecode(n, self.fps)})."
        if n > self.num_frames:
            note += f" The timeline shows the video's {self.num_frames}; preview and scores cover those, export all."
        self.settings_panel.set_length_note(note)

    # ============================================================================================ analyze ==
    def start_tracking(self) -> None:
        if self.info is None:
            self.show_error("Open a video first.")
            return
        path = self.project.video
        cache = self.track_cache_dir
        self.sync_track.clear_curves()
        self._start_job("track", "Tracking faces",
                        lambda progress, cancel: core_bridge.track_video(path, progress, cancel, cache),
                        lambda ts, p=path: self._tracking_ready(p, ts))

    def _set_track_set(self, track_set, keep_auto: bool = False) -> None:
        if not keep_auto:
            self._auto_track_set = track_set
        self.track_set = track_set
        self._track_changed(invalidate_preview=False)

    def _tracking_ready(self, path: str, track_set) -> None:
        if path != self.project.video:
            return
        self._auto_track_set = track_set
        self.track_set = track_set
        if self.project.edits.box_fixes:
            self._refit_boxes()
        if self.project.face_track is not None and self.project.face_track not in [t.track_id for t in track_set.tracks]:
            self.project.face_track = None
        self.settings_panel.set_tracks(track_set, self.project.face_track)
        self._track_changed()
        self.trackingFinished.emit()
        if not track_set.tracks:
            self.show_error(f"No face was found in {Path(path).name}: there is nothing to dub.", "Tracking")
            return
        n = self.chosen_track()
        self.info_message(f"Tracked {len(track_set.tracks)} face(s); the dubbed face is present in "
                          f"{int(n.present.sum())} of {track_set.num_frames} frames.")
        self._maybe_auto_score()

    def chosen_track(self):
        ts = self.track_set
        if ts is None or not ts.tracks:
            return None
        if self.project.face_track is not None:
            try:
                return ts.get(self.project.face_track)
            except (KeyError, LipDubError, IndexError):
                pass
        return ts.primary()

    def choose_track(self, track_id: Optional[int]) -> None:
        if track_id == self.project.face_track:
            return
        self.project.face_track = track_id
        self._touch()
        self.settings_panel.set_tracks(self.track_set, track_id)
        self._track_changed()

    def _track_changed(self, invalidate_preview: bool = True) -> None:
        t = self.chosen_track()
        missing = None if t is None else ~np.asarray(t.present, bool)
        if missing is not None and len(missing) < self.num_frames:
            missing = np.concatenate([missing, np.ones(self.num_frames - len(missing), bool)])
        self.timeline.set_no_face(missing)
        self.sync_track.set_no_face(missing)
        self._show_reports()
        if invalidate_preview:
            self.after = None
            self._show_reports()
            self.preview_ctrl.invalidate()
        self._request_frame(self.playhead)
        self._request_preview()
        self._maybe_auto_score()

    def _report_key(self):
        v = self.project.voice
        t = self.chosen_track()
        if v is None or t is None:
            return None
        return (v.path, t.track_id, self.project.edits.voice_offset)

    def current_report(self):
        k = self._report_key()
        return self.reports.get(k) if k else None

    def _maybe_auto_score(self) -> None:
        """Score automatically once video, tracks and the active voice are all there (once per voice+face)."""
        if not self.auto_analyze or self.track_set is None or self.chosen_track() is None:
            return
        v = self.project.voice
        if v is None or v.path not in self.audio or self.current_report() is not None:
            return
        job = self.runner.get("score")
        if job is not None and getattr(job, "key", None) == self._report_key():
            return
        if self._report_key() in self.score_failed:
            return
        self.start_scoring()

    def start_scoring(self) -> None:
        if self.info is None or self.project.voice is None:
            self.show_error("Open a video and add a voice track first.")
            return
        if self.track_set is None:
            if self.runner.get("track") is None:
                self.start_tracking()
            self.info_message("Scoring starts when tracking has finished.")
            return
        track = self.chosen_track()
        if track is None:
            self.show_error("No face was found in the video: there is nothing to score.")
            return
        key = self._report_key()
        video, voice = self.project.video, self.project.voice.path
        cached = self.audio.get(voice)
        fps, n = self.fps, self.num_frames
        models_dir, device = self.models_dir(), self.project.device

        offset = self.project.edits.voice_offset

        def work(progress, cancel):
            wav = cached.wav if cached is not None else core_bridge.load_audio(voice)
            if offset:
                from core.edits import shift_voice

                wav = shift_voice(wav, offset, fps, core_bridge.SAMPLE_RATE)
            wav = core_bridge.fit_voice(wav, n, fps)
            return core_bridge.score(video, wav, track, models_dir=models_dir, device=device,
                                     progress=progress, cancel=cancel)

        self.score_failed.discard(key)
        job = self._start_job("score", "Scoring sync", work, lambda rep, k=key: self._score_ready(k, rep),
                              lambda msg, k=key: self._score_failed(k, msg))
        job.key = key

    def _score_failed(self, key, msg: str) -> None:
        self.score_failed.add(key)
        self.show_error(msg, "Scoring sync")

    def _score_ready(self, key, report) -> None:
        self.reports[key] = report
        self._show_reports()
        self.scoringFinished.emit("before")

    def _show_reports(self) -> None:
        rep = self.current_report()
        shown = rep
        if self.after is not None and self.after.report is not None:
            shown = self.after.report
        if shown is not None:
            self.sync_track.set_threshold(core_bridge.low_threshold(shown))
        self.sync_track.set_curve("before", None if rep is None else _curve(rep))
        self.sync_panel.set_report("before", rep)
        if self.after is not None:
            if self.project.voice is not None and self.after.voice == self.project.voice.path:
                self.sync_track.set_curve("after", self.after.curve)
                rng = self.after.report_range
                whole = rng is None or (rng[0] == 0 and rng[1] >= self.num_frames)
                self.sync_panel.set_report("after", self.after.report, None if whole else rng)
                return
        self.sync_track.set_curve("after", None)
        self.sync_panel.set_report("after", None)

    def jump_low(self, direction: int) -> None:
        rs = self.sync_track.low_runs()
        if not rs:
            self.info_message("No low-confidence stretch (score the sync first).")
            return
        ph = self.playhead
        if direction > 0:
            nxt = [a for a, b in rs if a > ph]
            target = nxt[0] if nxt else rs[0][0]
        else:
            prv = [a for a, b in rs if a < ph and not (a <= ph < b)] or [a for a, b in rs if a < ph]
            target = prv[-1] if prv else rs[-1][0]
        self.timeline.set_playhead(target)

    # ========================================================================================== playhead ==
    def step(self, n: int) -> None:
        self.timeline.set_playhead(self.playhead + n)

    def step_seconds(self, s: float) -> None:
        self.step(int(round(s * self.fps)))

    def _on_playhead(self, frame: int) -> None:
        self.project.playhead = frame
        if self.project.edits.mask_keyframes:
            self.settings_panel.show_mask(self.mask_at(frame))
        self.corrections.show_edits(self.project.edits, frame)
        for lane in self.lanes:
            lane.set_playhead(frame)
        self.face_view.timecode = f"{timecode(frame, self.fps)}  ·  frame {frame}"
        self._request_frame(frame)
        self._request_preview()
        self._update_frame_info(frame)

    def _update_frame_info(self, frame: int) -> None:
        parts = [f"Frame {frame}", timecode(frame, self.fps)]
        for kind, curve in self.sync_track.curves.items():
            x, y, off = curve
            i = frame - off
            if 0 <= i < len(y) and np.isfinite(y[i]):
                parts.append(f"confidence {kind} {y[i]:.2f}")
        v = self.project.voice
        data = self.audio.get(v.path) if v is not None else None
        if data is not None and data.vad is not None and frame < len(data.vad):
            parts.append("voice speaking" if data.vad[frame] else "voice silent")
        self.sync_panel.set_frame_info("  ·  ".join(parts))

    def _request_frame(self, frame: int) -> None:
        if self.info is None:
            return
        t = self.chosen_track()
        lm = None
        if t is not None and frame < len(t.present) and t.present[frame]:
            lm = np.array(t.landmarks[frame], np.float32)
        self._frame_request = (self.project.video, lm, self.project.edits.mask_at(frame, self.project.mask),
                               (self.info.height, self.info.width))
        self.scrub.centre = frame
        self.loader.request(frame, self._frame_request + (False,))

    def _load_exact(self) -> None:
        # the playhead rested on a scrub-cache copy: show the exact frame
        if self.info is not None and self.face_view.frame_index == self.playhead and not self.face_exact:
            self.loader.request(self.playhead, self._frame_request + (True,))

    def _maybe_recentre_cache(self, frame: int) -> None:
        """A long video does not fit the scrub cache: when the playhead rests outside the cached part, cache
        the part around it (the cache drops the frames farthest from the playhead)."""
        if (self.info is None or frame in self.scrub or self.runner.get("prefetch") is not None
                or len(self.scrub) == 0):
            return
        self._start_prefetch(self.project.video, self.num_frames, max(0, frame - int(4 * self.fps)))

    def _on_frame(self, index: int, result) -> None:
        frame, outline, secs, exact = result
        self.last_frame_seconds = secs
        if index != self.playhead and self.player.playing is False:
            # a stale frame: a newer one is on its way (but show it anyway if nothing is displayed)
            if self.face_view.frame_index >= 0:
                return
        self.face_exact = exact
        self.face_view.set_overlay(self._overlay(index, outline))
        self.face_view.set_image(frame, index, (self.info.width, self.info.height) if self.info else None)
        if not exact and not self.player.playing:
            self._exact_timer.start()
        elif exact and not self.player.playing:
            self._maybe_recentre_cache(index)

    def _on_frame_failed(self, index, msg: str) -> None:
        self.statusBar().showMessage(f"Frame {index}: {msg}", 5000)

    def _overlay(self, index: int, outline) -> OverlayState:
        ts = self.track_set
        if ts is None:
            return OverlayState(message="" if self.runner.get("track") is None else "tracking…")
        chosen = self.chosen_track()
        faces = []
        for t in ts.tracks:
            if index < len(t.present) and t.present[index]:
                faces.append(FaceOverlay(t.track_id, t.boxes[index], t.landmarks[index],
                                         chosen is not None and t.track_id == chosen.track_id))
        msg = ""
        polygons = []
        if chosen is None:
            msg = "no face in this video"
        elif not (index < len(chosen.present) and chosen.present[index]):
            msg = "no face in this frame"
        else:
            _, polys = self.project.edits.mask_at(index, self.project.mask)
            if polys:
                from core.faces.geometry import face_to_frame

                lm = chosen.landmarks[index]
                polygons = [(pg.mode, face_to_frame(pg.points, lm)) for pg in polys]
        fixed = next((np.array(b.box, np.float32) for b in self.project.edits.box_fixes if b.frame == index), None)
        ov = self.project.edits.override_at(index)
        if ov is not None and not msg:
            msg = {"keep_original": "kept original", "mouth_closed": "mouth closed"}.get(ov.kind, f"engine: {ov.engine}")
        return OverlayState(faces=faces, mask_outline=outline, message=msg, polygons=polygons, fixed_box=fixed)

    # ======================================================================================== corrections ==
    def mask_at(self, frame: int):
        """The mask settings in force at `frame` (keyframes interpolated, else the project's mask)."""
        settings, _ = self.project.edits.mask_at(frame, self.project.mask)
        return settings

    def _bind_history(self) -> None:
        self.project.history.listener = self._live(self._on_edits)
        self._edits_json = self.project.edits.to_json()
        self._refresh_edits_ui()

    def _refresh_edits_ui(self) -> None:
        h = self.project.history
        self.undo_action.setEnabled(h.can_undo)
        self.redo_action.setEnabled(h.can_redo)
        self.undo_action.setText(f"&Undo {h.undo_label}" if h.can_undo else "&Undo")
        self.redo_action.setText(f"&Redo {h.redo_label}" if h.can_redo else "&Redo")
        e = self.project.edits
        self.timeline.set_edits(e)
        self.corrections.fps = self.fps
        self.corrections.set_range(self.project.range)
        self.corrections.show_edits(e, self.playhead)
        self.voice_lane.set_offset(e.voice_offset)
        if e.mask_keyframes:
            self.settings_panel.show_mask(self.mask_at(self.playhead))
        else:
            self.settings_panel.show_mask(self.project.mask)

    def _on_edits(self, label: str) -> None:
        """Any change of the corrections (a command, undo or redo)."""
        old, new = self._edits_json, self.project.edits.to_json()
        self._edits_json = new
        self._touch()
        self.info_message(label)
        self._refresh_edits_ui()
        if old.get("voice_offset") != new.get("voice_offset"):
            self._update_length_note()
            self._show_reports()
            self._maybe_auto_score()
        if old.get("box_fixes") != new.get("box_fixes"):
            self._refit_boxes()
        if self.after is not None and self.info is not None:
            changed = changed_range(Edits.from_json(old), self.project.edits, self.num_frames)
            if changed is not None:
                changed = self.after.scored_part(changed)      # only scores that exist are kept up to date
            if changed is not None:
                self._queue_rescore(changed)
        self._request_frame(self.playhead)
        self._request_preview()      # the preview controller re-prepares only when it must

    def undo(self) -> None:
        if self.project.history.undo() is None:
            self.info_message("Nothing to undo.")

    def redo(self) -> None:
        if self.project.history.redo() is None:
            self.info_message("Nothing to redo.")

    def _edit(self, fn) -> bool:
        """Run one history command; a bad request (ProjectError) is shown, the edits stay as they were."""
        try:
            fn(self.project.history)
            return True
        except LipDubError as exc:
            self.show_error(str(exc), "Correction")
            return False

    def _on_correction(self, name: str, args) -> None:
        rng = self.project.range
        ph = self.playhead
        if name == "override":
            kind, engine = args
            if rng is None:
                self.show_error("Set an in/out range first (I and O, or Shift+drag on the timeline).")
                return
            self._edit(lambda h: h.add_override(rng[0], rng[1], kind, engine))
        elif name == "teeth":
            if rng is None:
                self.show_error("Set an in/out range first (I and O, or Shift+drag on the timeline).")
                return
            self._edit(lambda h: h.set_teeth_shot(rng[0], rng[1], ph, self.project.teeth_strength))
        elif name == "voice_offset":
            self._edit(lambda h: h.set_voice_offset(int(args)))
        elif name == "mask_key":
            self._edit(lambda h: h.set_mask_keyframe(ph, self.mask_at(ph)))
        elif name == "mask_unkey":
            self._edit(lambda h: h.remove_mask_keyframe(ph))
        elif name == "remove":
            kind, index = args

            def drop(attr, i):
                def mutate(e):
                    lst = list(getattr(e, attr))
                    del lst[i]
                    setattr(e, attr, lst)
                return mutate

            if kind == "override":
                self._edit(lambda h: h.remove_override(index))
            elif kind == "mask_key":
                self._edit(lambda h: h.remove_mask_keyframe(index))
            elif kind == "teeth":
                self._edit(lambda h: h.apply("Remove teeth shot", drop("teeth_shots", index)))
            elif kind == "box":
                self._edit(lambda h: h.apply("Remove face box fix", drop("box_fixes", index)))
            elif kind == "voice_offset":
                self._edit(lambda h: h.set_voice_offset(0))

    def _on_box_drawn(self, x0: float, y0: float, x1: float, y1: float) -> None:
        frame = self.playhead
        if self._edit(lambda h: h.set_box_fix(frame, (x0, y0, x1, y1))):
            self.corrections.clear_tool()

    def _on_polygon_drawn(self, points, mode: str) -> None:
        frame = self.playhead
        t = self.chosen_track()
        if t is None or not (frame < len(t.present) and t.present[frame]):
            self.show_error("There is no tracked face in this frame to attach the mask area to: draw it on a "
                            "frame where the face is tracked.")
            return
        from core.edits import MaskPolygon
        from core.faces.geometry import frame_to_face

        pts = [tuple(map(float, q)) for q in frame_to_face(points, t.landmarks[frame])]
        self._edit(lambda h: h.add_mask_polygon(frame, MaskPolygon(pts, mode), default=self.project.mask))

    def _refit_boxes(self) -> None:
        """Show the landmarks re-tracked from the editor's box fixes (the pipeline does the same at export)."""
        base = self._auto_track_set
        fixes = list(self.project.edits.box_fixes)
        if base is None:
            return
        if not fixes:
            self._set_track_set(base, keep_auto=True)
            return
        video, info = self.project.video, self.info
        track_id = self.chosen_track().track_id if self.chosen_track() is not None else None

        def work(progress, cancel):
            import copy

            from core.faces.fixes import apply_box_fixes

            ts = copy.copy(base)
            ts.tracks = [apply_box_fixes(video, info, t, fixes, cancel=cancel) if t.track_id == track_id else t
                         for t in base.tracks]
            return ts

        self._start_job("refit", "Re-tracking from the fixed box", work,
                        lambda ts: self._set_track_set(ts, keep_auto=True))

    def _on_view(self, v0: float, v1: float) -> None:
        for lane in self.lanes:
            lane.set_view(v0, v1)

    # ---- range --------------------------------------------------------------------------------------------
    def set_in(self) -> None:
        if self.info is None:
            return
        a = self.playhead
        b = self.project.range[1] if self.project.range and self.project.range[1] > a else self.num_frames
        self.timeline.set_range((a, b))

    def set_out(self) -> None:
        if self.info is None:
            return
        b = self.playhead + 1
        a = self.project.range[0] if self.project.range and self.project.range[0] < b else 0
        self.timeline.set_range((a, b))

    def clear_range(self) -> None:
        self.timeline.set_range(None)

    def _on_range(self, rng) -> None:
        self.project.range = rng
        self._touch()
        self.corrections.set_range(rng)
        for lane in self.lanes:
            if hasattr(lane, "set_range"):
                lane.set_range(rng)
        if rng:
            self.info_message(f"Range {rng[0]}–{rng[1]} ({rng[1] - rng[0]} frames, "
                              f"{timecode(rng[0], self.fps)} – {timecode(rng[1], self.fps)})")

    # ============================================================================================ preview ==
    def set_preview_enabled(self, on: bool) -> None:
        self.preview_ctrl.set_enabled(on)
        if on:
            self._request_preview()
        else:
            self.preview.clear()

    def set_preview_mode(self, mode: str) -> None:
        self.preview.set_mode(mode)
        if not hasattr(self, "mode_combo"):
            return
        if self.mode_combo.currentData() != mode:
            self.mode_combo.setCurrentIndex(self.mode_combo.findData(mode))
        a = self.mode_actions.get(mode)
        if a is not None and not a.isChecked():
            a.setChecked(True)

    def _request_preview(self) -> None:
        if not self.preview_ctrl.enabled or self.info is None or self.project.voice is None:
            return
        settings = self.dub_settings()
        if settings is None:
            return
        self.preview_ctrl.request(settings, self.playhead)

    def models_dir(self) -> Optional[str]:
        """The project's models folder, else the one last chosen in the settings dialog (QSettings)."""
        return self.project.models_dir or (self.qsettings.value("models/dir") or None)

    def dub_settings(self, **kw):
        """The project's DubSettings for preview/export, or None (the reason shown on the preview)."""
        kw.setdefault("models_dir", self.models_dir())
        try:
            return self.project.to_dub_settings(track_cache_dir=self.track_cache_dir, **kw)
        except Exception as exc:  # noqa: BLE001 - incl. a core module missing from this build
            msg = describe_exception(exc) if isinstance(exc, LipDubError) else \
                str(core_bridge.missing_feature("Dubbing", "core.pipeline")) if isinstance(exc, ImportError) \
                else describe_exception(exc)
            self.preview.set_status(msg)
            return None

    def _on_preview(self, index: int, original, dubbed) -> None:
        if index != self.playhead and not self.player.playing:
            return
        self.preview.set_pair(original, dubbed, index)
        self.previewRendered.emit(index)

    # ---- playback -----------------------------------------------------------------------------------------
    def set_playing(self, on: bool) -> None:
        if not on:
            self.player.stop()
            return
        if self.info is None:
            self.play_action.setChecked(False)
            return
        rng = self.project.range
        start, stop = (rng if rng else (self.playhead, self.num_frames))
        if not rng and start >= self.num_frames - 1:
            start = 0
        v = self.project.voice
        self.player.play(v.path if v else self.project.video, start, stop, self.fps)

    def render_and_play(self) -> None:
        """Dub the range to a throw-away file (fast encoder settings) and play it with its voice."""
        if self.info is None or self.project.voice is None:
            self.show_error("Open a video and add a voice track first.")
            return
        rng = self.project.range or (self.playhead, min(self.num_frames, self.playhead + int(round(5 * self.fps))))
        if rng[1] <= rng[0]:
            rng = (0, self.num_frames)
        out = str(self._scratch_file(f"preview_{rng[0]}_{rng[1]}"))
        settings = self.dub_settings(output=out, frame_range=rng, preset="ultrafast", crf=23)
        if settings is None:
            self.show_error(self.preview.status or "The dub settings are incomplete.")
            return
        pipeline = core_bridge.pipeline()

        def work(progress, cancel):
            return pipeline.run_dub(settings, progress=progress, cancel=cancel, score=False)

        self.player.stop()
        self._start_job("render-preview", f"Rendering frames {rng[0]}–{rng[1] - 1}", work,
                        lambda res, r=rng: self._play_rendered(res, r))

    def _scratch_file(self, stem: str) -> Path:
        """A unique .mp4 path in this window's temporary folder (removed when the window closes)."""
        if self._preview_dir is None:
            import tempfile

            self._preview_dir = tempfile.TemporaryDirectory(prefix="lipdub_preview_")
        return Path(self._preview_dir.name) / f"{stem}_{int(time.time() * 1000)}.mp4"

    def _play_rendered(self, result, rng) -> None:
        from .player import PlayerDialog

        dlg = getattr(self, "player_dialog", None)
        if dlg is None:
            dlg = PlayerDialog(self)
            self.player_dialog = dlg
        msgs = " ".join(getattr(result, "messages", []) or [])
        dlg.load(result.output, f"Frames {rng[0]}–{rng[1] - 1} ({timecode(rng[0], self.fps)} – "
                                f"{timecode(rng[1], self.fps)}), {result.faces_found} dubbed. {msgs}".strip())
        dlg.show()
        dlg.raise_()
        self.previewFileReady.emit(result.output)

    # ============================================================================================== panel ==
    def _on_panel_changed(self, kind: str) -> None:
        if kind == "mask" and self.project.edits.mask_keyframes:
            # keyframed mask: the edit sets (or updates) the keyframe at the playhead, undoably
            m = self.settings_panel.mask_settings()
            self._edit(lambda h: h.set_mask_keyframe(self.playhead, m))
            return
        self.settings_panel.apply_to(self.project)
        self._touch()
        if kind == "track":
            self.settings_panel.set_tracks(self.track_set, self.project.face_track)
            self._track_changed()
            return
        self._request_frame(self.playhead)
        self._request_preview()
        if kind == "other":                      # the length policy lives here
            self._update_length_note()
        self._rescore_all_scored()

    def show_settings(self) -> None:
        dlg = SettingsDialog(self.project, self)
        dlg.setAttribute(Qt.WA_DeleteOnClose)
        self.settings_dialog = dlg

        def accepted():
            vals = dlg.values()
            changed = any(getattr(self.project, k) != v for k, v in vals.items())
            for k, v in vals.items():
                setattr(self.project, k, v)
            if changed:
                self._touch()
                self.preview_ctrl.invalidate()
                self._request_preview()
                self._rescore_all_scored()
                if vals.get("models_dir"):
                    self.qsettings.setValue("models/dir", vals["models_dir"])

        dlg.accepted.connect(accepted)
        dlg.open()

    def show_export(self) -> None:
        if self.info is None or self.project.voice is None:
            self.show_error("Open a video and add a voice track before exporting.")
            return
        self.player.stop()
        dlg = ExportDialog(self.project, self.num_frames, self.fps, self.runner, self,
                           overrides={"track_cache_dir": self.track_cache_dir, "models_dir": self.models_dir()})
        dlg.exportSucceeded.connect(self._export_done)
        dlg.exportSucceeded.connect(lambda *_: self._touch())
        self.export_dialog = dlg
        dlg.open()
        return dlg

    def _export_done(self, result) -> None:
        self._remember_recent("exports", result.output)
        rep = getattr(result, "report", None)
        if rep is not None and self.project.voice is not None:
            rng = self.export_dialog.frame_range() if self.export_dialog is not None else None
            off = rng[0] if rng else 0
            self._after_for_voice().splice(_curve(rep), off, report=rep)
            self._show_reports()
            self.scoringFinished.emit("after")

    # ---- the dubbed result's sync, range by range -----------------------------------------------------------
    def _after_for_voice(self) -> DubbedScore:
        voice = self.project.voice.path
        if self.after is None or self.after.voice != voice or len(self.after.curve) != self.num_frames:
            self.after = DubbedScore.empty(voice, self.num_frames)
        return self.after

    def score_dubbed(self) -> None:
        """Dub and score the in/out range (or the whole clip); later corrections re-score what they touch."""
        if self.info is None or self.project.voice is None:
            self.show_error("Open a video and add a voice track first.")
            return
        self._after_for_voice()
        rng = self.project.range or (0, self.num_frames)
        self._queue_rescore(tuple(rng), now=True)

    def _rescore_all_scored(self) -> None:
        """A dub setting changed (mask, teeth, engine...): every scored frame may change."""
        if self.after is not None and self.info is not None:
            changed = self.after.scored_part((0, self.num_frames))
            if changed is not None:
                self._queue_rescore(changed)

    def _queue_rescore(self, changed: tuple, now: bool = False) -> None:
        """Merge `changed` into the frames waiting to be re-scored; a running re-score of older edits stops."""
        parts = [r for r in (self._rescore_pending, self._rescore_running, changed) if r is not None]
        self._rescore_pending = (min(r[0] for r in parts), max(r[1] for r in parts))
        job = self.runner.get("rescore")
        if job is not None:
            job.cancel()
        self._rescore_timer.start(0 if now else self._rescore_timer.interval())

    def _start_rescore(self) -> None:
        if self._rescore_pending is None or self.after is None or self.project.voice is None:
            return
        if self.runner.get("rescore") is not None:        # still stopping: try again shortly
            self._rescore_timer.start(50)
            return
        changed, self._rescore_pending = self._rescore_pending, None
        render, keep = rescore_plan(changed, self.num_frames)
        out = self._scratch_file(f"rescore_{render[0]}_{render[1]}")
        settings = self.dub_settings(output=str(out), frame_range=render, preset="ultrafast", crf=20)
        if settings is None:
            self.show_error(self.preview.status or "The dub settings are incomplete.", "Sync of the dub")
            return
        pipeline, voice = core_bridge.pipeline(), self.project.voice.path
        self._rescore_running = changed

        def work(progress, cancel):
            try:
                return pipeline.run_dub(settings, progress=progress, cancel=cancel, score=True)
            finally:
                out.unlink(missing_ok=True)       # only the score is kept

        def done(result, render=render, keep=keep, voice=voice):
            self._rescore_running = None
            rep = getattr(result, "report", None)
            if rep is None:
                self.info_message("The dub could not be scored: no sync scorer is available.")
                return
            if self.after is None or self.after.voice != voice:
                return                             # the voice or video changed meanwhile
            self.after.splice(_curve(rep), render[0], keep, report=rep)
            self._show_reports()
            self.scoringFinished.emit("after")

        def failed(msg):
            self._rescore_running = None
            self.show_error(msg, "Sync of the dub")

        job = self._start_job("rescore", f"Scoring the dub, frames {keep[0]}–{keep[1] - 1}", work, done, failed)
        job.cancelled.connect(self._live(lambda: setattr(self, "_rescore_running", None)))

    def show_about(self) -> None:
        QMessageBox.about(self, "About LipDub Studio",
                          "<b>LipDub Studio</b><br>Dub a clip with a new voice and make the lips follow it.<br><br>"
                          "The bundled sample and shipped models derive from the GRID audio-visual corpus "
                          "(Cooke, Barker, Cunningham &amp; Shao, 2006), CC BY 4.0.")

    # ============================================================================================ project ==
    def new_project(self) -> bool:
        if not self.maybe_save():
            return False
        self._set_project(Project())
        return True

    def open_project_dialog(self) -> None:
        if not self.maybe_save():
            return
        start = self.qsettings.value("dirs/project", "")
        path, _ = QFileDialog.getOpenFileName(self, "Open project", start, PROJECT_FILTER)
        if path:
            self.qsettings.setValue("dirs/project", str(Path(path).parent))
            self.open_project(path, ask=False)

    def open_project(self, path: str, ask: bool = True) -> bool:
        if ask and not self.maybe_save():
            return False
        try:
            p = Project.load(path)
        except ProjectError as exc:
            self.show_error(str(exc), "Open project")
            return False
        self._set_project(p)
        self._remember_recent("projects", p.path)
        return True

    def _set_project(self, p: Project, dirty: bool = False) -> None:
        self.player.stop()
        self.cancel_background()
        self.project = p
        self.dirty = dirty
        self.after = None
        self.reports.clear()
        self.track_set = None
        self.preview_ctrl.invalidate()
        self.preview.clear()
        self.settings_panel.load(p)
        self._bind_history()
        self._refresh_voice_list()
        missing = p.missing_media()
        if missing:
            self.show_error("Some media files of this project are missing:\n" + "\n".join(missing) +
                            "\nOpen or add them again (File menu).", "Missing media")
        for v in p.voices:
            if v.path not in missing:
                self._load_voice(v.path)
        if p.video and p.video not in missing:
            self.open_video(p.video, keep_project_state=True)
        else:
            self.info = None
            self.timeline.set_media(0, 25.0)
            self.face_view.set_image(None)
            self.face_view.set_overlay(OverlayState())
            self.orig_lane.set_audio(None, 25.0, "Original audio")
            self._show_active_voice()
            self.sync_track.clear_curves()
        self._update_title()
        self._update_enabled()
        self.projectLoaded.emit()

    def save_project(self) -> bool:
        if not self.project.path:
            return self.save_project_as()
        return self._save_to(self.project.path)

    def save_project_as(self) -> bool:
        start = self.project.path or str(Path(self.qsettings.value("dirs/project", str(Path.home()))) /
                                         (self.project.title + EXTENSION))
        path, _ = QFileDialog.getSaveFileName(self, "Save project", start, PROJECT_FILTER)
        if not path:
            return False
        if not path.endswith(EXTENSION):
            path += EXTENSION
        self.qsettings.setValue("dirs/project", str(Path(path).parent))
        return self._save_to(path)

    def _save_to(self, path: str) -> bool:
        self.project.playhead = self.playhead
        old = self.project.path
        try:
            self.project.save(path)
        except ProjectError as exc:
            self.show_error(str(exc), "Save project")
            return False
        if old is None:
            self.project.discard_autosave(self.autosave_dir)
        self.dirty = False
        self._update_title()
        self._remember_recent("projects", self.project.path)
        self.info_message(f"Saved {self.project.path}")
        return True

    def autosave(self) -> Optional[str]:
        if not self.dirty or (self.project.video is None and not self.project.voices):
            return None
        try:
            return self.project.write_autosave(self.autosave_dir)
        except OSError as exc:
            self.info_message(f"Autosave failed: {exc}")
            return None

    def ask_unsaved(self) -> str:
        """'save' | 'discard' | 'cancel' (replaceable in tests)."""
        r = QMessageBox.question(self, "Unsaved changes",
                                 f"Save the changes to {self.project.title} before closing it?",
                                 QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(r, "cancel")

    def maybe_save(self) -> bool:
        """True when it is fine to drop the current project."""
        if not self.dirty:
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save_project()
        if answer == "discard":
            self.project.discard_autosave(self.autosave_dir)
            return True
        return False

    def ask_recover(self, rec) -> bool:
        what = rec.project or "an unsaved project"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.time))
        return QMessageBox.question(self, "Recover work?",
                                    f"LipDub Studio did not close properly. Recover the autosaved copy of {what} "
                                    f"from {when}?") == QMessageBox.Yes

    def check_recovery(self) -> bool:
        """Offer to recover autosaves left by a crash. Returns True if one was recovered."""
        projects = [p for p in self._recent("projects") if p]
        for rec in find_recoverable(self.autosave_dir, projects):
            if self.ask_recover(rec):
                try:
                    p = recover(rec.autosave)
                except ProjectError as exc:
                    self.show_error(str(exc), "Recover")
                    continue
                self._set_project(p, dirty=True)
                Path(rec.autosave).unlink(missing_ok=True)
                self.autosave()
                return True
            Path(rec.autosave).unlink(missing_ok=True)
        return False

    # ---- recent files -------------------------------------------------------------------------------------
    def _recent(self, kind: str) -> list:
        v = self.qsettings.value(f"recent/{kind}", [])
        if isinstance(v, str):
            v = [v]
        return [x for x in (v or []) if x]

    def _remember_recent(self, kind: str, path: Optional[str]) -> None:
        if not path:
            return
        items = [p for p in self._recent(kind) if p != path]
        items.insert(0, path)
        self.qsettings.setValue(f"recent/{kind}", items[:MAX_RECENT])

    def _fill_recent(self) -> None:
        m = self.recent_menu
        m.clear()
        any_item = False
        for kind, label, fn in (("projects", "Projects", lambda p: self.open_project(p)),
                                ("videos", "Videos", self.open_video),
                                ("voices", "Voice tracks", self.add_voice)):
            items = [p for p in self._recent(kind) if Path(p).exists()]
            if not items:
                continue
            m.addSection(label)
            for p in items:
                a = m.addAction(Path(p).name)
                a.setToolTip(p)
                a.triggered.connect(lambda *_, f=fn, q=p: f(q))
                any_item = True
        if not any_item:
            a = m.addAction("(nothing yet)")
            a.setEnabled(False)

    # ======================================================================================== drag & drop ==
    def dragEnterEvent(self, e) -> None:
        if e.mimeData().hasUrls() and any(u.isLocalFile() for u in e.mimeData().urls()):
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:
        paths = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        self.open_paths(paths)
        e.acceptProposedAction()

    def open_paths(self, paths) -> None:
        """Dropped or command-line files: a project opens; the first video becomes the video when none is
        open yet (or when a video and audio are dropped together); other files become voice tracks."""
        projects = [p for p in paths if Path(p).suffix.lower() == EXTENSION]
        if projects:
            self.open_project(projects[0])
            return
        videos = [p for p in paths if Path(p).suffix.lower() in VIDEO_EXT]
        others = [p for p in paths if p not in videos]
        if videos and (self.info is None or others or len(videos) > 1):
            self.open_video(videos[0])
            videos = videos[1:]
        for p in videos + others:
            if Path(p).suffix.lower() in AUDIO_EXT | VIDEO_EXT:
                self.add_voice(p)
            else:
                self.show_error(f"{Path(p).name} is not a video, audio or project file.")

    # ============================================================================================= close ==
    def closeEvent(self, e) -> None:
        if not self.maybe_save():
            e.ignore()
            return
        self.shutdown()
        e.accept()

    def shutdown(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.autosave_timer.stop()
        self.player.stop()
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.sync()
        self.preview_ctrl.shutdown()
        self.runner.shutdown(15000)
        self.loader.call_soon(self.frames.close)
        self.loader.stop()
        self.project.discard_autosave(self.autosave_dir)
        self.close_error_boxes()
        dlg = getattr(self, "player_dialog", None)
        if dlg is not None:
            dlg.done(0)
        if self._preview_dir is not None:
            self._preview_dir.cleanup()
            self._preview_dir = None
