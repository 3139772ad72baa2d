"""Export: output path, quality (CRF / preset), range; runs `core.pipeline.run_dub` in a worker with a
progress bar, ETA and Cancel. The core writes to a temporary file and renames it only on success, so a
cancelled or failed export leaves nothing behind. On success the dialog offers to show the file."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDialog, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QMessageBox, QProgressBar, QPushButton, QRadioButton, QSpinBox,
                               QVBoxLayout, QWidget)

from core import pipeline
from core.project import PRESETS

from .timeline import timecode
from .workers import Job, JobRunner

STAGE_NAMES = {"track": "Tracking faces", "detect": "Tracking faces", "decode": "Decoding", "prepare": "Preparing engine",
               "mouth": "Predicting mouth shapes", "library": "Building mouth library", "dub": "Dubbing frames",
               "generate": "Generating", "encode": "Encoding", "score": "Scoring the result", "sync": "Scoring the result",
               "qc": "Checking quality"}


def stage_label(stage: str) -> str:
    return STAGE_NAMES.get(stage, stage.replace("_", " ").capitalize())


def format_eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class EtaEstimator:
    """Remaining time of the current stage from its own rate (stages differ wildly in speed)."""

    def __init__(self) -> None:
        self.stage = None
        self.t0 = 0.0
        self.d0 = 0

    def update(self, stage: str, done: int, total: int, now: Optional[float] = None) -> Optional[float]:
        now = time.monotonic() if now is None else now
        if stage != self.stage:
            self.stage, self.t0, self.d0 = stage, now, done
            return None
        if total <= 0 or done <= self.d0 or now - self.t0 < 0.3:
            return None
        rate = (done - self.d0) / (now - self.t0)
        return (total - done) / rate


def qc_text(rep) -> str:
    """The export's quality check in one sentence ("" when not checked)."""
    if rep is None:
        return ""
    from core.qc.rules import KINDS

    counts = ", ".join(f"{int(rep.flags[k].sum())} {k.replace('_', ' ')}" for k in KINDS)
    return (f" Quality check: {rep.count()} of {rep.num_frames} frames flagged ({counts})"
            + (": use Navigate ▸ Next Flagged Frame (F) to look at them." if rep.count() else "."))


class ExportDialog(QDialog):
    exportSucceeded = Signal(object)      # core.pipeline.DubResult
    exportFailed = Signal(str)
    exportCancelled = Signal()
    exportFinished = Signal(str)          # "ok" | "failed" | "cancelled", after the specific signal

    def __init__(self, project, num_frames: int, fps: float, runner: JobRunner, parent=None,
                 overrides: Optional[dict] = None, damage_note: str = ""):
        super().__init__(parent)
        self.overrides = dict(overrides or {})
        self.setWindowTitle("Export dubbed video")
        self.setMinimumWidth(520)
        self.project = project
        self.num_frames = num_frames
        self.fps = fps
        self.runner = runner
        self.job: Optional[Job] = None
        self.result = None
        self.eta = EtaEstimator()
        self.confirm_overwrite = self._confirm_overwrite   # replaceable (tests)

        lay = QVBoxLayout(self)
        form = QFormLayout()
        row = QHBoxLayout()
        self.output_edit = QLineEdit(project.export.output or self._default_output())
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.output_edit, 1)
        row.addWidget(browse)
        form.addRow("Output file", _wrap(row))
        self.crf_spin = QSpinBox()
        self.crf_spin.setRange(0, 51)
        self.crf_spin.setValue(project.export.crf)
        self.crf_spin.setToolTip("x264 constant rate factor: lower is better quality and bigger files (18 ≈ visually lossless)")
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(PRESETS)
        self.preset_combo.setCurrentText(project.export.preset)
        self.preset_combo.setToolTip("x264 preset: slower presets give smaller files at the same quality")
        q = QHBoxLayout()
        q.addWidget(QLabel("CRF"))
        q.addWidget(self.crf_spin)
        q.addSpacing(12)
        q.addWidget(QLabel("Preset"))
        q.addWidget(self.preset_combo, 1)
        form.addRow("Quality", _wrap(q))

        self.range_all = QRadioButton(f"Whole clip ({num_frames} frames)")
        self.range_inout = QRadioButton("In/out range")
        self.range_custom = QRadioButton("Frames")
        self._range_group = QButtonGroup(self)
        for b in (self.range_all, self.range_inout, self.range_custom):
            self._range_group.addButton(b)
        self.in_spin, self.out_spin = QSpinBox(), QSpinBox()
        for s in (self.in_spin, self.out_spin):
            s.setRange(0, max(0, num_frames))
        rng = project.range
        if rng is not None:
            self.range_inout.setText(f"In/out range ({rng[0]}–{rng[1]}, {timecode(rng[0], fps)} – "
                                     f"{timecode(rng[1], fps)})")
            self.range_inout.setChecked(True)
            self.in_spin.setValue(rng[0])
            self.out_spin.setValue(rng[1])
        else:
            self.range_inout.setEnabled(False)
            self.range_all.setChecked(True)
            self.out_spin.setValue(num_frames)
        rc = QHBoxLayout()
        rc.addWidget(self.range_custom)
        rc.addWidget(self.in_spin)
        rc.addWidget(QLabel("to"))
        rc.addWidget(self.out_spin)
        rc.addStretch(1)
        rl = QVBoxLayout()
        rl.addWidget(self.range_all)
        rl.addWidget(self.range_inout)
        rl.addLayout(rc)
        form.addRow("Range", _wrap(rl))
        self.score_check = QCheckBox("Score the result's lip sync (adds the 'after' curve)")
        self.score_check.setChecked(True)
        form.addRow("", self.score_check)
        lay.addLayout(form)
        # damaged input (app.session.Session.damage_note): what the export does with it, before it starts
        self.damage_label = QLabel(damage_note)
        self.damage_label.setWordWrap(True)
        self.damage_label.setStyleSheet("color: #f0a030")
        self.damage_label.setVisible(bool(damage_note))
        lay.addWidget(self.damage_label)

        self.stage_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.eta_label = QLabel("")
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        pr = QHBoxLayout()
        pr.addWidget(self.progress, 1)
        pr.addWidget(self.eta_label)
        lay.addWidget(self.stage_label)
        lay.addLayout(pr)
        lay.addWidget(self.result_label)

        btns = QHBoxLayout()
        self.reveal_button = QPushButton("Show in folder")
        self.reveal_button.setVisible(False)
        self.reveal_button.clicked.connect(self.reveal)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Close")
        self.cancel_button.clicked.connect(self._cancel_or_close)
        btns.addWidget(self.reveal_button)
        btns.addStretch(1)
        btns.addWidget(self.export_button)
        btns.addWidget(self.cancel_button)
        lay.addLayout(btns)

    # ---- helpers ------------------------------------------------------------------------------------------
    def _default_output(self) -> str:
        if self.project.video:
            v = Path(self.project.video)
            return str(v.with_name(v.stem + "_dubbed.mp4"))
        return str(Path.home() / "dubbed.mp4")

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.output_edit.text(), "MP4 video (*.mp4)")
        if path:
            self.output_edit.setText(path)

    def _confirm_overwrite(self, path: str) -> bool:
        return QMessageBox.question(self, "Replace file?", f"{path} exists. Replace it?") == QMessageBox.Yes

    def frame_range(self):
        if self.range_all.isChecked():
            return None
        if self.range_inout.isChecked() and self.project.range is not None:
            return tuple(self.project.range)
        a, b = self.in_spin.value(), self.out_spin.value()
        return (a, b)

    def _error(self, msg: str) -> None:
        self.result_label.setStyleSheet("color: #e05050")
        self.result_label.setText(msg)

    # ---- run ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.job is not None and self.job.running:
            return
        out = self.output_edit.text().strip()
        if not out:
            self._error("Choose an output file.")
            return
        if Path(out).suffix.lower() != ".mp4":
            out += ".mp4"
            self.output_edit.setText(out)
        out = str(Path(out).expanduser().resolve())
        rng = self.frame_range()
        if rng is not None and rng[1] <= rng[0]:
            self._error(f"The range {rng[0]}–{rng[1]} is empty: the out frame must be after the in frame.")
            return
        if Path(out).exists() and not self.confirm_overwrite(out):
            return
        try:
            settings = self.project.to_dub_settings(output=out, frame_range=rng, **self.overrides)
            settings.crf = self.crf_spin.value()
            settings.preset = self.preset_combo.currentText()
        except Exception as exc:  # noqa: BLE001 - shown, not raised
            from .workers import describe_exception

            self._error(describe_exception(exc))
            return
        self.project.export.output = out
        self.project.export.crf = settings.crf
        self.project.export.preset = settings.preset
        score = self.score_check.isChecked()

        def work(progress, cancel):
            result = pipeline.run_dub(settings, progress=progress, cancel=cancel, score=score)
            if score:       # the quality check (core.qc) goes with the score
                from .rescore import check_quality

                result.qc = check_quality(settings, result.output, progress=progress, cancel=cancel)
            return result

        self.job = Job("export", work, "Exporting")
        self.job.progress.connect(self._on_progress)
        self.job.succeeded.connect(self._on_success)
        self.job.failed.connect(self._on_failed)
        self.job.cancelled.connect(self._on_cancelled)
        self.result = None
        self.result_label.setStyleSheet("")
        self.result_label.setText("")
        self.reveal_button.setVisible(False)
        self.stage_label.setText("Starting…")
        self.progress.setRange(0, 0)
        self.eta_label.setText("")
        self.export_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.runner.start(self.job)

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        self.stage_label.setText(f"{stage_label(stage)}: {done}/{total}" if total else f"{stage_label(stage)}…")
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
        else:
            self.progress.setRange(0, 0)
        eta = self.eta.update(stage, done, total)
        self.eta_label.setText(f"ETA {format_eta(eta)}" if eta is not None else "")

    def _finish_ui(self) -> None:
        self.export_button.setEnabled(True)
        self.export_button.setText("Export again")
        self.cancel_button.setText("Close")
        self.progress.setRange(0, 100)
        self.eta_label.setText("")

    def _on_success(self, result) -> None:
        self.result = result
        self._finish_ui()
        self.progress.setValue(100)
        self.stage_label.setText("Done.")
        text = f"Wrote {result.output} ({result.num_frames} frames, {result.faces_found} with a dubbed face"
        t = result.timings.get("total") if isinstance(result.timings, dict) else None
        text += f", {t:.1f} s)." if t else ")."
        rep = getattr(result, "report", None)
        if rep is not None:
            text += f" Sync of the result: LSE-D {rep.lse_d:.2f}, LSE-C {rep.lse_c:.2f}, offset {rep.offset_frames:+d}."
        text += qc_text(getattr(result, "qc", None))
        for m in getattr(result, "messages", []) or []:
            text += f"\n{m}"
        self.result_label.setText(text)
        self.reveal_button.setVisible(True)
        self.exportSucceeded.emit(result)
        self.exportFinished.emit("ok")

    def _on_failed(self, msg: str) -> None:
        self._finish_ui()
        self.progress.setValue(0)
        self.stage_label.setText("Export failed.")
        self._error(msg)
        self.exportFailed.emit(msg)
        self.exportFinished.emit("failed")

    def _on_cancelled(self) -> None:
        self._finish_ui()
        self.progress.setValue(0)
        self.stage_label.setText("Export cancelled: no file was written.")
        self.exportCancelled.emit()
        self.exportFinished.emit("cancelled")

    def cancel(self) -> None:
        if self.job is not None and self.job.running:
            self.stage_label.setText("Cancelling…")
            self.cancel_button.setEnabled(True)
            self.job.cancel()

    def _cancel_or_close(self) -> None:
        if self.job is not None and self.job.running:
            self.cancel()
        else:
            self.accept()

    def reveal(self) -> None:
        if self.result is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(self.result.output).parent)))

    def closeEvent(self, e) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
        super().closeEvent(e)

    def reject(self) -> None:  # Esc
        if self.job is not None and self.job.running:
            self.cancel()
            return
        super().reject()


def _wrap(layout) -> QWidget:
    w = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    w.setLayout(layout)
    return w
