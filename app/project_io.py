"""The project file: new, open, save, save as, autosave and crash recovery, and opening dropped or
command-line files."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox

from core.errors import ProjectError
from core.project import EXTENSION, Project, find_recoverable, recover

from .media_controller import AUDIO_EXT, VIDEO_EXT

PROJECT_FILTER = f"LipDub project (*{EXTENSION});;All files (*)"


class ProjectIO(QObject):
    projectLoaded = Signal()

    def __init__(self, win, autosave_dir: Optional[str], autosave_interval_ms: int):
        super().__init__(win)
        self.win, self.session, self.messages = win, win.session, win.messages
        self.autosave_dir = autosave_dir
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(autosave_interval_ms)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()

    @property
    def project(self) -> Project:
        return self.session.project

    # ---- questions (replaceable in tests) ---------------------------------------------------------------------
    def ask_unsaved(self) -> str:
        """'save' | 'discard' | 'cancel'."""
        r = QMessageBox.question(self.win, "Unsaved changes",
                                 f"Save the changes to {self.project.title} before closing it?",
                                 QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(r, "cancel")

    def ask_recover(self, rec) -> bool:
        what = rec.project or "an unsaved project"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.time))
        return QMessageBox.question(self.win, "Recover work?",
                                    f"LipDub Studio did not close properly. Recover the autosaved copy of {what} "
                                    f"from {when}?") == QMessageBox.Yes

    # ---- open -----------------------------------------------------------------------------------------------
    def new_project(self) -> bool:
        if not self.maybe_save():
            return False
        self.set_project(Project())
        return True

    def open_project_dialog(self) -> None:
        if not self.maybe_save():
            return
        start = self.win.qsettings.value("dirs/project", "")
        path, _ = QFileDialog.getOpenFileName(self.win, "Open project", start, PROJECT_FILTER)
        if path:
            self.win.qsettings.setValue("dirs/project", str(Path(path).parent))
            self.open_project(path, ask=False)

    def open_project(self, path: str, ask: bool = True) -> bool:
        if ask and not self.maybe_save():
            return False
        try:
            p = Project.load(path)
        except ProjectError as exc:
            self.messages.error(str(exc), "Open project")
            return False
        self.set_project(p)
        self.win.recent.remember("projects", p.path)
        return True

    def set_project(self, p: Project, dirty: bool = False) -> None:
        self.win.playback.stop()
        self.win.jobs.cancel_background()
        self.session.set_project(p, dirty)
        missing = p.missing_media()
        if missing:
            self.messages.error("Some media files of this project are missing:\n" + "\n".join(missing) +
                                "\nOpen or add them again (File menu).", "Missing media")
        for v in p.voices:
            if v.path not in missing:
                self.win.media.load_voice(v.path)
        if p.video and p.video not in missing:
            self.win.media.open_video(p.video, keep_project_state=True)
        self.projectLoaded.emit()

    def open_paths(self, paths) -> None:
        """Dropped or command-line files: a project opens; the first video becomes the video when none is
        open yet (or when a video and audio are dropped together); other files become voice tracks."""
        projects = [p for p in paths if Path(p).suffix.lower() == EXTENSION]
        if projects:
            self.open_project(projects[0])
            return
        videos = [p for p in paths if Path(p).suffix.lower() in VIDEO_EXT]
        others = [p for p in paths if p not in videos]
        if videos and (self.session.info is None or others or len(videos) > 1):
            self.win.media.open_video(videos[0])
            videos = videos[1:]
        for p in videos + others:
            if Path(p).suffix.lower() in AUDIO_EXT | VIDEO_EXT:
                self.win.media.add_voice(p)
            else:
                self.messages.error(f"{Path(p).name} is not a video, audio or project file.")

    # ---- save -----------------------------------------------------------------------------------------------
    def save_project(self) -> bool:
        if not self.project.path:
            return self.save_project_as()
        return self.save_to(self.project.path)

    def save_project_as(self) -> bool:
        start = self.project.path or str(Path(self.win.qsettings.value("dirs/project", str(Path.home()))) /
                                         (self.project.title + EXTENSION))
        path, _ = QFileDialog.getSaveFileName(self.win, "Save project", start, PROJECT_FILTER)
        if not path:
            return False
        if not path.endswith(EXTENSION):
            path += EXTENSION
        self.win.qsettings.setValue("dirs/project", str(Path(path).parent))
        return self.save_to(path)

    def save_to(self, path: str) -> bool:
        self.project.playhead = self.session.playhead
        old = self.project.path
        try:
            self.project.save(path)
        except ProjectError as exc:
            self.messages.error(str(exc), "Save project")
            return False
        if old is None:
            self.project.discard_autosave(self.autosave_dir)
        self.session.mark_saved()
        self.win.recent.remember("projects", self.project.path)
        self.messages.info(f"Saved {self.project.path}")
        return True

    def autosave(self) -> Optional[str]:
        if not self.session.dirty or (self.project.video is None and not self.project.voices):
            return None
        try:
            return self.project.write_autosave(self.autosave_dir)
        except OSError as exc:
            self.messages.info(f"Autosave failed: {exc}")
            return None

    def maybe_save(self) -> bool:
        """True when it is fine to drop the current project."""
        if not self.session.dirty:
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save_project()
        if answer == "discard":
            self.project.discard_autosave(self.autosave_dir)
            return True
        return False

    def check_recovery(self) -> bool:
        """Offer to recover autosaves left by a crash. Returns True if one was recovered."""
        projects = [p for p in self.win.recent.items("projects") if p]
        for rec in find_recoverable(self.autosave_dir, projects):
            if self.ask_recover(rec):
                try:
                    p = recover(rec.autosave)
                except ProjectError as exc:
                    self.messages.error(str(exc), "Recover")
                    continue
                self.set_project(p, dirty=True)
                Path(rec.autosave).unlink(missing_ok=True)
                self.autosave()
                return True
            Path(rec.autosave).unlink(missing_ok=True)
        return False

    def shutdown(self) -> None:
        self.autosave_timer.stop()
        self.project.discard_autosave(self.autosave_dir)
