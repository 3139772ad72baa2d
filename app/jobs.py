"""The window's background jobs: start them with the usual outcome handling, show them in the status bar,
cancel them. Results arriving after the window started closing are dropped."""
from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton

from .export_dialog import stage_label
from .workers import Job, JobRunner

# jobs "Cancel" in the status bar stops (export has its own dialog)
BACKGROUND_JOBS = ("probe", "thumbs", "prefetch", "track", "score", "preview-prepare", "render-preview", "refit",
                   "rescore", "live-prepare", "speaker")


class Jobs(QObject):
    def __init__(self, window, messages, max_threads: int = 3):
        super().__init__(window)
        self.messages = messages
        self.closing = False
        self.runner = JobRunner(self, max_threads=max_threads)
        self.label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel the background analysis")
        self.cancel_button.clicked.connect(self.cancel_background)
        for w in (self.label, self.progress, self.cancel_button):
            window.statusBar().addPermanentWidget(w)
        self.runner.jobStarted.connect(self.live(self.update_status))
        self.runner.jobFinished.connect(self.live(self.update_status))
        self.update_status()

    def live(self, fn):
        """A slot wrapper that does nothing once the window is closing (queued results may still arrive)."""
        def slot(*args):
            if not self.closing:
                fn(*args)
        return slot

    def get(self, name: str):
        return self.runner.get(name)

    def start(self, name: str, label: str, fn, on_ok=None, on_fail=None, job_cls=Job, quiet_cancel=False) -> Job:
        job = job_cls(name, fn, label)
        job.progress.connect(self.live(self.update_status))
        if on_ok is not None:
            job.succeeded.connect(self.live(on_ok))
        job.failed.connect(self.live(on_fail or (lambda msg, lab=label: self.messages.error(msg, lab))))
        if not quiet_cancel:
            job.cancelled.connect(self.live(lambda lab=label: self.messages.info(f"{lab}: cancelled.")))
        return self.runner.start(job)

    def cancel(self, *names: str) -> None:
        for name in names:
            j = self.runner.get(name)
            if j is not None:
                j.cancel()

    def cancel_background(self) -> None:
        self.cancel(*BACKGROUND_JOBS)

    def update_status(self, *a) -> None:
        jobs = [j for j in self.runner.running() if j.name != "export"]
        for w in (self.progress, self.cancel_button):
            w.setVisible(bool(jobs))
        if not jobs:
            self.label.setText("")
            return
        stage, done, total = jobs[0].last_progress
        names = ", ".join(x.label for x in jobs)
        self.label.setText(f"{names}: {stage_label(stage)}" if stage else names + "…")
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
        else:
            self.progress.setRange(0, 0)

    def shutdown(self, ms: int = 15000) -> None:
        self.closing = True
        self.runner.shutdown(ms)
