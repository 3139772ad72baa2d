"""Background work for the GUI.

* `Job`: one long core call (tracking, scoring, export, preview preparation) run on a QThreadPool thread.
  It gets a `progress(stage, done, total)` callback and a `core.progress.CancelToken`; its signals
  (delivered queued, in the UI thread) say how it ended. Every exception is caught at this boundary:
  `LipDubError` -> its one-line message, anything else -> "Internal error: ..." (traceback to the log).
* `LatestWorker`: a QThread serving "show me item i" requests where only the newest request matters
  (scrubbing frames, preview renders). Stale requests are dropped, never queued up.

Widgets are never touched from these threads: results travel as Python objects in signals.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal

from core.errors import CancelledError, LipDubError
from core.progress import CancelToken

log = logging.getLogger(__name__)


def describe_exception(exc: BaseException) -> str:
    if isinstance(exc, LipDubError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "Out of memory: close other programs or work on a shorter range."
    return f"Internal error: {type(exc).__name__}: {exc}"


class Job(QObject):
    """`fn(progress, cancel) -> result`, run in a pool thread.

    Signals: progress(stage, done, total) (throttled to ~20/s), succeeded(result), failed(message),
    cancelled(), and finished() after any of those three.
    """

    progress = Signal(str, int, int)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, name: str, fn: Callable[[Callable, CancelToken], Any], label: str = ""):
        super().__init__()
        self.name = name
        self.label = label or name
        self.fn = fn
        self.cancel_token = CancelToken()
        self.result: Any = None
        self.error: Optional[str] = None
        self.state = "pending"            # pending | running | done | failed | cancelled
        self.last_progress = ("", 0, 0)
        self.started_at = 0.0
        self._last_emit = 0.0
        self._done_event = threading.Event()
        self.detached = False             # set when the UI goes away: finish silently

    # -- called from the worker thread --
    def _report(self, stage: str, done: int, total: int) -> None:
        self.last_progress = (stage, int(done), int(total))
        now = time.monotonic()
        if self.detached:
            return
        if now - self._last_emit >= 0.05 or (total and done >= total):
            self._last_emit = now
            self.progress.emit(stage, int(done), int(total))

    def run_here(self) -> None:
        self.state = "running"
        self.started_at = time.monotonic()
        try:
            self.cancel_token.raise_if_cancelled()
            result = self.fn(self._report, self.cancel_token)
        except CancelledError:
            self.state = "cancelled"
            self._emit(self.cancelled)
        except BaseException as exc:  # noqa: BLE001 - the worker boundary: nothing escapes unreported
            if self.cancel_token.cancelled and not isinstance(exc, LipDubError):
                # an engine may fail in odd ways once cancelled; the user asked to stop, say so
                self.state = "cancelled"
                self._emit(self.cancelled)
            else:
                if not isinstance(exc, LipDubError):
                    log.error("job %s failed:\n%s", self.name, traceback.format_exc())
                self.state = "failed"
                self.error = describe_exception(exc)
                self._emit(self.failed, self.error)
        else:
            self.result = result
            self.state = "done"
            self._emit(self.succeeded, result)
        finally:
            self._done_event.set()
            self._emit(self.finished)

    def _emit(self, signal, *args) -> None:
        if not self.detached:
            signal.emit(*args)

    # -- UI thread --
    def cancel(self) -> None:
        self.cancel_token.cancel()

    @property
    def running(self) -> bool:
        return self.state in ("pending", "running")

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self._done_event.wait(timeout)


class _Runnable(QRunnable):
    def __init__(self, job: Job):
        super().__init__()
        self.job = job
        self.setAutoDelete(True)

    def run(self) -> None:
        self.job.run_here()


class JobRunner(QObject):
    """Starts jobs on a private thread pool and keeps them alive until they finish. One job per name:
    starting a job cancels a running one of the same name."""

    jobStarted = Signal(object)
    jobFinished = Signal(object)

    def __init__(self, parent=None, max_threads: int = 3):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.jobs: dict[str, Job] = {}
        self.closed = False

    def start(self, job: Job) -> Job:
        old = self.jobs.get(job.name)
        if old is not None and old.running:
            old.cancel()
        self.jobs[job.name] = job
        job.finished.connect(lambda j=job: self._on_finished(j))
        self.pool.start(_Runnable(job))
        self.jobStarted.emit(job)
        return job

    def _on_finished(self, job: Job) -> None:
        if self.closed:
            return
        if self.jobs.get(job.name) is job:
            del self.jobs[job.name]
        self.jobFinished.emit(job)

    def get(self, name: str) -> Optional[Job]:
        j = self.jobs.get(name)
        return j if j is not None and j.running else None

    def running(self) -> list:
        return [j for j in self.jobs.values() if j.running]

    def cancel_all(self) -> None:
        for j in list(self.jobs.values()):
            j.cancel()

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel everything and wait; afterwards no job result reaches the (closing) UI."""
        self.closed = True
        self.cancel_all()
        for j in list(self.jobs.values()):
            j.detached = True
        return self.pool.waitForDone(timeout_ms)


class LatestWorker(QThread):
    """Serves requests `(key, payload)` with `compute(key, payload)` on its own thread; only the most recent
    pending request is served. Emits ready(key, result) or failed(key, message)."""

    ready = Signal(object, object)
    failed = Signal(object, str)

    def __init__(self, compute: Callable[[Any, Any], Any], name: str = "worker", parent=None):
        super().__init__(parent)
        self.setObjectName(name)
        self._compute = compute
        self._cond = threading.Condition()
        self._pending = None
        self._has_pending = False
        self._stop = False
        self._calls: list = []
        self.busy = False

    def request(self, key, payload=None) -> None:
        with self._cond:
            self._pending = (key, payload)
            self._has_pending = True
            self._cond.notify()

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Run `fn()` on this thread before the next request (e.g. to close a resource it owns)."""
        with self._cond:
            self._calls.append(fn)
            self._cond.notify()

    def run(self) -> None:
        while True:
            with self._cond:
                while not self._has_pending and not self._stop and not self._calls:
                    self._cond.wait()
                if self._stop:
                    calls, self._calls = self._calls, []
                    for fn in calls:
                        self._safe(fn)
                    return
                calls, self._calls = self._calls, []
                item = self._pending if self._has_pending else None
                self._has_pending = False
                self._pending = None
            for fn in calls:
                self._safe(fn)
            if item is None:
                continue
            key, payload = item
            self.busy = True
            try:
                result = self._compute(key, payload)
            except BaseException as exc:  # noqa: BLE001 - worker boundary
                if not isinstance(exc, LipDubError):
                    log.error("%s failed on %r:\n%s", self.objectName(), key, traceback.format_exc())
                self.failed.emit(key, describe_exception(exc))
            else:
                self.ready.emit(key, result)
            finally:
                self.busy = False

    @staticmethod
    def _safe(fn) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001
            log.exception("worker call failed")

    def stop(self, wait_ms: int = 5000) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self.wait(wait_ms)
