"""Bounded hand-offs between threads, so that the stages of a streamed job overlap on both cores.

`prefetch` runs a producer (a decoder) ahead of its consumer; `Sink` runs a consumer (the encoder's feed) behind its
producer. Both hold at most `depth` items, so memory stays bounded by a few frames, and both hand a failure in their
thread to the caller. ffmpeg runs in child processes and cv2/numpy release the GIL, so a pipe read or write in one
thread really does overlap with rendering in another.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterator, Optional


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _put(q: "queue.Queue", x, stop: threading.Event) -> bool:
    """Put `x` unless `stop` is set first (a full queue is polled, so a stopped consumer never leaves us stuck)."""
    while not stop.is_set():
        try:
            q.put(x, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def prefetch(it: Iterator, depth: int = 3) -> Iterator:
    """Iterate `it` in a background thread, `depth` items ahead, so decoding (ffmpeg writes into a 64 KB pipe
    and waits for us) overlaps with the work on the other core. Items must be independent arrays.
    Errors are re-raised here; closing this generator stops the thread and closes `it` (in its own thread)."""
    q: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    end = object()

    def run():
        last = end
        try:
            for x in it:
                if not _put(q, x, stop):
                    break
        except BaseException as e:  # handed to the consumer
            last = _Failure(e)
        finally:
            if hasattr(it, "close"):
                try:
                    it.close()
                except Exception:
                    pass
            _put(q, last, stop)

    th = threading.Thread(target=run, name="lipdub-frame-prefetch", daemon=True)
    th.start()
    try:
        while True:
            x = q.get()
            if x is end:
                return
            if isinstance(x, _Failure):
                raise x.exc
            yield x
    finally:
        stop.set()
        th.join(timeout=10)


class Sink:
    """Call `consume(item)` for every `put(item)` in a background thread, at most `depth` items behind.

    `close()` waits until everything put was consumed; a failure of `consume` is raised by the next `put` or by
    `close`, and the items after it are dropped. `stop()` (on the caller's own failure) drops what is queued and
    waits for the thread: unblock a `consume` stuck in I/O first (e.g. kill the process it writes to)."""

    def __init__(self, consume: Callable[[object], None], depth: int = 8, name: str = "lipdub-sink"):
        self._consume = consume
        self._q: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._failure: Optional[BaseException] = None
        self.busy_seconds = 0.0            # time spent inside consume (for stage timings)
        self._end = object()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            x = self._q.get()
            if x is self._end or self._stop.is_set():
                return
            if self._failure is not None:
                continue                    # drain: the caller learns of the failure at its next put/close
            t0 = time.perf_counter()
            try:
                self._consume(x)
            except BaseException as e:
                self._failure = e
            finally:
                self.busy_seconds += time.perf_counter() - t0

    def _raise(self) -> None:
        if self._failure is not None:
            raise self._failure

    def put(self, x) -> None:
        self._raise()
        if not self._thread.is_alive() or not _put(self._q, x, self._stop):
            raise RuntimeError("put() on a closed or stopped sink")

    def close(self) -> None:
        """Wait until every item put was consumed; raise the consumer's failure, if any."""
        if self._thread.is_alive():
            _put(self._q, self._end, self._stop)
            self._thread.join()
        self._raise()

    def stop(self) -> None:
        self._stop.set()
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass
        try:
            self._q.put_nowait(self._end)
        except queue.Full:
            pass
        self._thread.join(timeout=10)


class FrameShare:
    """The frames of one decoding pass handed to a reader in another thread that would otherwise decode the same
    video itself (the classic engine's texture library reads the frames the adaptation's scoring pass decodes).

    The pass calls `add(i, frame)` for frames 0, 1, 2, ... in order and `done()` when it stops, wherever that is
    (`done()` alone when no pass comes). The reader iterates `frames(n, decode)`: frames 0 .. n-1, the pass's while
    they come, then `decode(k)`'s (an iterator of frames k .. n-1) from wherever the pass stopped. Both must give
    the same frames (the same decoder from the start), so the reader sees what it would have decoded itself.
    At most `depth` frames wait: the pass waits while the reader is that far behind; a reader that stops (`close`,
    also when `frames` ends) releases the pass, whose later frames are then dropped. Frames must not be modified."""

    def __init__(self, depth: int = 8):
        import collections

        self._cond = threading.Condition()
        self._q: "collections.deque" = collections.deque()
        self._depth = max(1, int(depth))
        self._next = 0              # the frame index the pass must add next
        self._finished = False      # the pass stopped (or an out-of-order frame ended the sharing)
        self._closed = False        # the reader stopped
        self.shared = 0             # frames the reader took from the pass

    def add(self, i: int, frame) -> None:
        with self._cond:
            if self._closed or self._finished:
                return
            if int(i) != self._next:            # not the pass from the start after all: the reader decodes on
                self._finished = True
                self._cond.notify_all()
                return
            while len(self._q) >= self._depth and not self._closed:
                self._cond.wait()
            if self._closed:
                return
            self._q.append(frame)
            self._next += 1
            self._cond.notify_all()

    def done(self) -> None:
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._q.clear()
            self._cond.notify_all()

    def frames(self, n: int, decode: Callable[[int], Iterator]) -> Iterator:
        k = 0
        try:
            while k < n:
                with self._cond:
                    while not self._q and not self._finished:
                        self._cond.wait()
                    if not self._q:
                        break
                    frame = self._q.popleft()
                    self._cond.notify_all()
                yield frame
                k += 1
            self.shared = k
            self.close()
            if k < n:
                yield from decode(k)
        finally:
            self.close()
