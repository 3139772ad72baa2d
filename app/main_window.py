"""The studio window: lays out the widgets, makes the controllers and wires them to the session.

State lives in `session.Session` (Qt-free; it says what changed); `views.SessionViews` redraws widgets from
it; controllers carry out the work per concern (media, analysis, rescore, playback, navigation, project
I/O), long work in background jobs; the menus, shortcuts and enabled states are data (`actions`).
"""
from __future__ import annotations

import logging
from typing import Optional

from PySide6.QtCore import QSettings, QSize, Qt
from PySide6.QtWidgets import (QComboBox, QDockWidget, QHBoxLayout, QLabel, QListWidget, QMainWindow, QMessageBox,
                               QPushButton, QSplitter, QTabWidget, QToolBar, QVBoxLayout, QWidget)

from core.device import describe_device
from core.errors import LipDubError

from .actions import SEPARATOR, TOOLBAR, ActionTable
from .analysis import AnalysisController
from .corrections import CorrectionsPanel
from .export_dialog import ExportDialog
from .face_view import FaceView
from .frame_display import FrameDisplay
from .jobs import Jobs
from .media_controller import MediaController
from .messages import Messages
from .navigation import Navigation
from .performer_view import PerformerDisplay, PerformerView
from .playback import PlaybackController
from .preview import PreviewView
from .project_io import ProjectIO
from .recent import RecentFiles
from .rescore import RescoreController
from .scratch import ScratchFiles
from .session import Session
from .session import commands as cmd
from .settings_dialog import DubSettingsPanel, SettingsDialog
from .qc_lane import QCLane
from .speaking_lane import SpeakingLane
from .sync_track import SyncStatusPanel, SyncTrack
from .timeline import TimelineWidget
from .views import SessionViews
from .waveform import WaveformLane
from .workers import describe_exception

log = logging.getLogger(__name__)

ABOUT = ("<b>LipDub Studio</b><br>Dub a clip with a new voice and make the lips follow it.<br><br>"
         "The bundled sample and shipped models derive from the GRID audio-visual corpus "
         "(Cooke, Barker, Cunningham &amp; Shao, 2006), CC BY 4.0.")


class MainWindow(QMainWindow):
    def __init__(self, settings: Optional[QSettings] = None, autosave_dir: Optional[str] = None,
                 auto_analyze: bool = True, autosave_interval_ms: int = 60_000, track_cache_dir=None):
        super().__init__()
        self.qsettings = settings if settings is not None else QSettings("LipDub", "LipDub Studio")
        self.auto_analyze = auto_analyze
        self.track_cache_dir = track_cache_dir
        self.session = Session()
        self.recent = RecentFiles(self.qsettings)
        self.scratch = ScratchFiles()
        self.messages = Messages(self)
        self.export_dialog = self.settings_dialog = None
        self._build_widgets()
        self.jobs = Jobs(self, self.messages)
        self.device_label = QLabel("")   # the compute device ('auto' shows what it resolved to once torch is loaded)
        self.statusBar().insertPermanentWidget(0, self.device_label)
        self.jobs.runner.jobFinished.connect(self.jobs.live(self.show_device))
        self.show_device()
        self.actions_table = ActionTable(self)
        self._build_toolbar()
        self.views = SessionViews(self)
        self.frames = FrameDisplay(self)
        self.performer = PerformerDisplay(self)
        self.media = MediaController(self)
        self.analysis = AnalysisController(self)
        self.rescore = RescoreController(self)
        self.playback = PlaybackController(self)
        self.navigation = Navigation(self)
        self.project_io = ProjectIO(self, autosave_dir, autosave_interval_ms)
        self._wire()
        self.setAcceptDrops(True)
        self.session.set_project(self.session.project)      # every view draws the empty project
        geo = self.qsettings.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1280, 860)

    # ---- layout -----------------------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.face_view = FaceView()
        self.performer_view = PerformerView()      # shown while the active voice is a performer video
        self.preview = PreviewView()
        top = QSplitter(Qt.Horizontal)
        top.addWidget(self.face_view)
        top.addWidget(self.performer_view)
        top.addWidget(self.preview)
        top.setSizes([640, 420, 640])
        self.sync_panel = SyncStatusPanel()
        self.timeline = TimelineWidget()
        self.orig_lane = WaveformLane("Original audio", color=(150, 150, 160))
        self.voice_lane = WaveformLane("Voice", color=(90, 170, 255))
        self.sync_track = SyncTrack()
        self.speaking_lane = SpeakingLane()
        self.qc_lane = QCLane()
        self.lanes = [self.orig_lane, self.voice_lane, self.sync_track, self.qc_lane, self.speaking_lane]
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.setSpacing(1)
        for w, stretch in ((self.sync_panel, 0), (self.timeline, 0), (self.orig_lane, 2), (self.voice_lane, 2),
                           (self.sync_track, 3), (self.qc_lane, 2), (self.speaking_lane, 2)):
            bl.addWidget(w, stretch)
        split = QSplitter(Qt.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setSizes([500, 360])
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.setCentralWidget(split)

        # right dock: voices, dub settings, corrections
        self.voice_list = QListWidget()
        self.voice_list.setToolTip("Voice tracks: double-click one to make it the active voice")
        self.voice_list.setMaximumHeight(120)
        self.settings_panel = DubSettingsPanel()
        self.corrections = CorrectionsPanel()
        dock_w = QWidget()
        dl = QVBoxLayout(dock_w)
        dl.setContentsMargins(2, 2, 2, 2)
        dl.addWidget(QLabel("<b>Voice tracks</b>"))
        dl.addWidget(self.voice_list)
        vb = QHBoxLayout()
        self.add_voice_button = QPushButton("Add…")
        self.remove_voice_button = QPushButton("Remove")
        vb.addWidget(self.add_voice_button)
        vb.addWidget(self.remove_voice_button)
        dl.addLayout(vb)
        self.dock_tabs = QTabWidget()
        self.dock_tabs.addTab(self.settings_panel, "Settings")
        self.dock_tabs.addTab(self.corrections, "Corrections")
        dl.addWidget(self.dock_tabs, 1)
        dock = QDockWidget("Dub", self)
        dock.setObjectName("dub_dock")
        dock.setWidget(dock_w)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(Qt.RightDockWidgetArea, dock)

    def _build_toolbar(self) -> None:
        self.voice_combo = QComboBox()
        self.voice_combo.setMinimumWidth(180)
        self.voice_combo.setToolTip("The active voice track")
        self.mode_combo = QComboBox()
        for mode, text in (("after", "After"), ("before", "Before"), ("split", "Split")):
            self.mode_combo.addItem(text, mode)
        self.mode_combo.setToolTip("Show the dubbed frame, the original, or both split (drag the divider)")
        tb = QToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setIconSize(QSize(18, 18))
        tb.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.addToolBar(tb)
        for name in TOOLBAR:
            if name is SEPARATOR:
                tb.addSeparator()
            elif name == "voice_combo":
                tb.addWidget(QLabel(" Voice: "))
                tb.addWidget(self.voice_combo)
            elif name == "mode_combo":
                tb.addWidget(self.mode_combo)
            else:
                tb.addAction(self.actions_table[name])

    def _wire(self) -> None:
        s = self.session
        self.face_view.trackClicked.connect(s.choose_track)
        self.face_view.boxDrawn.connect(lambda *box: self.apply(cmd.FixBox(box)) and self.corrections.clear_tool())
        self.face_view.polygonDrawn.connect(lambda pts, mode: self.apply(cmd.DrawMaskArea(pts, mode)))
        for lane in self.lanes:
            lane.frameClicked.connect(lambda f: self.timeline.set_playhead(f))
            lane.wheel.connect(self.timeline.handle_wheel)
        self.timeline.playheadChanged.connect(s.set_playhead)
        self.timeline.viewChanged.connect(self.on_view)
        self.timeline.rangeChanged.connect(s.set_range)
        self.voice_list.itemActivated.connect(lambda it: s.set_active_voice(self.voice_list.row(it)))
        self.voice_combo.currentIndexChanged.connect(lambda i: i >= 0 and s.set_active_voice(i))
        self.add_voice_button.clicked.connect(self.media.add_voice_dialog)
        self.remove_voice_button.clicked.connect(self.media.remove_active_voice)
        self.settings_panel.changed.connect(self._on_panel_changed)
        self.corrections.command.connect(self.apply)
        self.corrections.toolChanged.connect(self.face_view.set_tool)
        self.corrections.jumpTo.connect(lambda f: self.timeline.set_playhead(f))
        self.mode_combo.currentIndexChanged.connect(
            lambda i: self.playback.set_preview_mode(self.mode_combo.itemData(i)))
        self.actions_table.recent_menu.aboutToShow.connect(self.fill_recent_menu)
        s.events.settings.connect(lambda e: e.kind == "other" and self.media.update_length_note())

    def on_view(self, v0: float, v1: float) -> None:
        for lane in self.lanes:
            lane.set_view(v0, v1)

    def fill_recent_menu(self) -> None:
        self.recent.fill_menu(self.actions_table.recent_menu, (
            ("projects", "Projects", lambda p: self.project_io.open_project(p)),
            ("videos", "Videos", self.media.open_video),
            ("voices", "Voice tracks", self.media.add_voice)))

    # ---- dub settings and corrections -------------------------------------------------------------------------
    def models_dir(self) -> Optional[str]:
        """The project's models folder, else the one last chosen in the settings dialog (QSettings)."""
        return self.session.project.models_dir or (self.qsettings.value("models/dir") or None)

    def dub_settings(self, **kw):
        """The project's DubSettings for preview/export, or None (the reason shown on the preview)."""
        kw.setdefault("models_dir", self.models_dir())
        kw.setdefault("allow_damaged", True)     # damaged input was said on opening and is hatched on the timeline
        try:
            return self.session.project.to_dub_settings(track_cache_dir=self.track_cache_dir, **kw)
        except Exception as exc:  # noqa: BLE001 - any reason is shown where the dub would be
            self.preview.set_status(describe_exception(exc))
            return None

    def apply(self, command) -> bool:
        """Carry out a correction; a request that cannot be carried out is shown, the edits stay as they were."""
        try:
            self.session.apply(command)
            return True
        except LipDubError as exc:
            self.messages.error(str(exc), "Correction")
            return False

    def undo(self) -> None:
        if self.session.project.history.undo() is None:
            self.messages.info("Nothing to undo.")

    def redo(self) -> None:
        if self.session.project.history.redo() is None:
            self.messages.info("Nothing to redo.")

    def _on_panel_changed(self, kind: str) -> None:
        if kind == "mask" and self.session.project.edits.mask_keyframes:
            # keyframed mask: the edit sets (or updates) the keyframe at the playhead, undoably
            self.apply(cmd.KeyMask(self.settings_panel.mask_settings()))
            return
        self.settings_panel.apply_to(self.session.project)
        self.session.settings_changed(kind)

    def show_device(self, *a) -> None:
        self.device_label.setText(describe_device(self.session.project.device))

    def show_settings(self) -> None:
        dlg = SettingsDialog(self.session.project, self)
        dlg.setAttribute(Qt.WA_DeleteOnClose)
        self.settings_dialog = dlg

        def accepted():
            p, vals = self.session.project, dlg.values()
            changed = any(getattr(p, k) != v for k, v in vals.items())
            for k, v in vals.items():
                setattr(p, k, v)
            if changed:
                if vals.get("models_dir"):
                    self.qsettings.setValue("models/dir", vals["models_dir"])
                self.session.settings_changed("engine")
            self.show_device()

        dlg.accepted.connect(accepted)
        dlg.open()

    def show_export(self) -> Optional[ExportDialog]:
        s = self.session
        if s.info is None or not s.has_voice:
            self.messages.error("Open a video and add a voice track before exporting.")
            return None
        self.playback.stop()
        dlg = ExportDialog(s.project, s.num_frames, s.fps, self.jobs.runner, self,
                           overrides={"track_cache_dir": self.track_cache_dir, "models_dir": self.models_dir(),
                                      "allow_damaged": True}, damage_note=s.damage_note())
        dlg.exportSucceeded.connect(lambda res: self.rescore.export_done(res, dlg.frame_range()))
        dlg.exportSucceeded.connect(lambda *_: s.touch())
        dlg.exportSucceeded.connect(lambda res: self.recent.remember("exports", res.output))
        self.export_dialog = dlg
        dlg.open()
        return dlg

    def show_about(self) -> None:
        QMessageBox.about(self, "About LipDub Studio", ABOUT)

    # ---- drag & drop, close -----------------------------------------------------------------------------------
    def dragEnterEvent(self, e) -> None:
        if e.mimeData().hasUrls() and any(u.isLocalFile() for u in e.mimeData().urls()):
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:
        self.project_io.open_paths([u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()])
        e.acceptProposedAction()

    def closeEvent(self, e) -> None:
        if not self.project_io.maybe_save():
            e.ignore()
            return
        self.shutdown()
        e.accept()

    def shutdown(self) -> None:
        if self.jobs.closing:
            return
        self.jobs.closing = self.messages.quiet = True
        self.playback.stop()
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.sync()
        self.playback.shutdown()
        self.jobs.shutdown(15000)
        self.frames.shutdown()
        self.performer.shutdown()
        self.project_io.shutdown()
        self.messages.close_boxes()
        self.scratch.cleanup()
