"""The dubbed result's sync and quality flags, range by range: Score Dubbed Result dubs, scores and checks
(core.qc) the range; from then on each correction re-renders and re-scores only the frames it can change, and a
dub setting all scored frames."""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from core import pipeline
from core.edits import Edits, changed_range

from .dubbed_score import rescore_plan


def check_quality(settings, output, track=None, progress=None, cancel=None):
    """core.qc's report of a rendered dub (None when it cannot be checked: the sync score still counts)."""
    import logging

    from core.errors import CancelledError, LipDubError
    from core.qc.report import qc_for_settings

    try:
        return qc_for_settings(settings, str(output), track=track, progress=progress, cancel=cancel)
    except CancelledError:
        raise
    except LipDubError as exc:
        logging.getLogger(__name__).warning("quality check skipped: %s", exc)
        return None


class RescoreController(QObject):
    def __init__(self, win):
        super().__init__(win)
        self.win, self.session, self.jobs, self.messages = win, win.session, win.jobs, win.messages
        self.pending = None             # frames still to re-render and re-score
        self.running = None
        self._timer = QTimer(self)      # edits come in bursts (dragging a slider): wait for a pause
        self._timer.setSingleShot(True)
        self._timer.setInterval(400)
        self._timer.timeout.connect(self._start)
        ev = self.session.events
        ev.edits.connect(self._on_edits)
        ev.settings.connect(lambda e: e.kind != "track" and self.rescore_all_scored())

    def score_dubbed(self) -> None:
        """Dub and score the in/out range (or the whole clip); later corrections re-score what they touch."""
        s = self.session
        if s.info is None or not s.has_voice:
            self.messages.error("Open a video and add a voice track first.")
            return
        s.after_for_voice()
        self.queue(tuple(s.project.range or (0, s.num_frames)), now=True)

    def _on_edits(self, e) -> None:
        s = self.session
        if s.after is None or s.info is None:
            return
        changed = changed_range(Edits.from_json(e.old), s.project.edits, s.num_frames)
        if changed is not None:
            changed = s.after.scored_part(changed)      # only scores that exist are kept up to date
        if changed is not None:
            self.queue(changed)

    def rescore_all_scored(self) -> None:
        """A dub setting changed (mask, teeth, engine...): every scored frame may change."""
        s = self.session
        if s.after is not None and s.info is not None:
            changed = s.after.scored_part((0, s.num_frames))
            if changed is not None:
                self.queue(changed)

    def queue(self, changed: tuple, now: bool = False) -> None:
        """Merge `changed` into the frames waiting to be re-scored; a running re-score of older edits stops."""
        parts = [r for r in (self.pending, self.running, changed) if r is not None]
        self.pending = (min(r[0] for r in parts), max(r[1] for r in parts))
        self.jobs.cancel("rescore")
        self._timer.start(0 if now else self._timer.interval())

    def _start(self) -> None:
        s = self.session
        if self.pending is None or s.after is None or not s.has_voice:
            return
        if self.jobs.get("rescore") is not None:        # still stopping: try again shortly
            self._timer.start(50)
            return
        changed, self.pending = self.pending, None
        render, keep = rescore_plan(changed, s.num_frames)
        out = self.win.scratch.file(f"rescore_{render[0]}_{render[1]}")
        settings = self.win.dub_settings(output=str(out), frame_range=render, preset="ultrafast", crf=20)
        if settings is None:
            self.messages.error(self.win.preview.status or "The dub settings are incomplete.", "Sync of the dub")
            return
        voice = s.project.voice.path
        track = s.chosen_track()
        self.running = changed

        def work(progress, cancel):
            try:
                result = pipeline.run_dub(settings, progress=progress, cancel=cancel, score=True)
                result.qc = check_quality(settings, out, track, progress, cancel)
                return result
            finally:
                out.unlink(missing_ok=True)       # only the score and the quality flags are kept

        def done(result):
            self.running = None
            s.splice_qc(voice, getattr(result, "qc", None), render[0], keep)
            if result.report is None:
                self.messages.info("The dub could not be scored: no sync scorer is available.")
            elif s.splice_after(voice, result.report, render[0], keep):
                self.win.analysis.scoringFinished.emit("after")

        def failed(msg):
            self.running = None
            self.messages.error(msg, "Sync of the dub")

        job = self.jobs.start("rescore", f"Scoring the dub, frames {keep[0]}–{keep[1] - 1}", work, done, failed)
        job.cancelled.connect(self.jobs.live(lambda: setattr(self, "running", None)))

    def export_done(self, result, frame_range) -> None:
        """An export's own score (and quality check) covers its range."""
        s = self.session
        if s.has_voice:
            s.splice_qc(s.project.voice.path, getattr(result, "qc", None), frame_range[0] if frame_range else 0)
        if result.report is not None and s.has_voice:
            if s.splice_after(s.project.voice.path, result.report, frame_range[0] if frame_range else 0):
                self.win.analysis.scoringFinished.emit("after")
