"""Batch dubbing on Ray: `python main.py batch MANIFEST.csv --ray [ADDRESS]`.

Each manifest row is one Ray task that runs the sequential path's row logic (`core.batch.run_item`: the row's
project and options, skip-existing, temporary output renamed only on success), so a row renders exactly as
it would without Ray. What Ray adds:
- where: no address starts a local Ray instance with this machine's cores (`--ray-cpus` to use fewer);
  `auto` or `ray://host:port` joins a running cluster. Every worker must see the manifest's paths (shared
  storage) and have LipDub Studio installed.
- one dub per CPU: a task asks for one CPU and runs torch, OpenCV and BLAS single-threaded, so workers do not
  oversubscribe the cores.
- worker death: a task whose worker process dies is re-run (`--retries`, default 2) on another worker; the hidden
  temporary files the dead attempt left beside the output are removed first. A partial output is never
  visible under the output's name.
- long clips (`--split-shots`): the row task prepares the clip once, then renders its shot segments as tasks of
  their own and joins them (`core.shots`).
- the summary CSV is rewritten atomically each time a row finishes (unfinished rows say `pending`).
- one progress bar on stderr: rows done / failed / running, with an ETA.
Ctrl-C cancels: running rows are interrupted (status `cancelled`, no output) and queued rows are `skipped`.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .batch import BatchItem, BatchResult, ItemResult, describe, item_settings, run_item
from .errors import LipDubError
from .progress import CancelToken

log = logging.getLogger(__name__)

DEFAULT_RETRIES = 2
# Every worker runs one dub on one core: the libraries' own thread pools would only fight over it.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "NUMEXPR_NUM_THREADS": "1"}
POLL_SECONDS = 0.5


def require_ray():
    try:
        import ray
    except ImportError:
        raise LipDubError("--ray needs the Ray package, which this installation does not include: install "
                          "LipDub Studio with its 'ray' extra (pip install 'lipdub-studio[ray]', or "
                          "pip install 'ray[client]' beside it), or leave out --ray.") from None
    return ray


def connect(address: Optional[str] = None, num_cpus: Optional[int] = None) -> bool:
    """Start a local Ray instance (address None) or join a cluster ("auto", "ray://host:port", "host:port").
    Returns True when this call started Ray (the caller shuts it down), False when Ray was already running."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(SINGLE_THREAD_ENV)
    kwargs = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    logging.getLogger("ray").setLevel(logging.ERROR)   # start-up notices would break the progress bar
    try:
        if address is None:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
            # "local": a new instance of our own, never another program's. Ray lowers its workers' priority
            # (nice +15) by default: on a workstation that is also doing other work they would get only idle
            # cycles, and the batch would crawl.
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, runtime_env={"env_vars": env},
                     _system_config={"worker_niceness": 0}, **kwargs)
        else:
            ray.init(address=address, runtime_env={"env_vars": env}, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise LipDubError(f"Cannot start or reach {where}: {' '.join(str(exc).split())}") from None
    return True


def single_threaded() -> None:
    """Torch and OpenCV on one thread in this worker (the BLAS pools already are, through SINGLE_THREAD_ENV)."""
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def sweep_attempt_leftovers(final: Path, owners) -> None:
    """Delete the hidden temporary files the dead attempts of this row (`owners`: their core.atomic owner names,
    `{host}-{pid}`) left beside its output: the row's temporary output and the files written through it. Ray
    retries a row only once its attempt died, so this covers another host's attempt too (core.atomic's own sweep
    keeps those: it cannot tell a dead process of another host from a live one)."""
    from .atomic import temporaries_of

    for who in owners:
        for name in temporaries_of(final, f"{who}."):
            try:
                Path(name).unlink()
            except OSError:
                pass


# --------------------------------------------------------------------------------------------- Ray tasks
_remote: Dict[str, object] = {}


def _tasks():
    """The Ray remote functions and the progress board actor (made on first use: Ray is optional)."""
    if _remote:
        return _remote
    ray = require_ray()

    @ray.remote(num_cpus=0)
    class Board:
        """Which rows have started, on which worker process, and how often (attempts)."""

        def __init__(self):
            self.starts: Dict[int, List[int]] = {}
            self.owners: Dict[int, List[str]] = {}

        def started(self, row: int, pid: int, owner: str) -> List[str]:
            """Note an attempt; -> the owners (core.atomic.owner) of the row's earlier, dead attempts."""
            self.starts.setdefault(row, []).append(pid)
            earlier = list(self.owners.get(row, []))
            self.owners.setdefault(row, []).append(owner)
            return earlier

        def snapshot(self) -> Dict[int, List[int]]:
            return self.starts

    @ray.remote(num_cpus=1)
    def row_task(item: BatchItem, final: Optional[str], overrides, mask_overrides, score: bool,
                 skip_existing: bool, split_shots: bool, min_shot_seconds: float, retries: int,
                 board, engine_args) -> ItemResult:
        single_threaded()
        if board is not None:
            from .atomic import owner

            earlier = ray.get(board.started.remote(item.row, os.getpid(), owner()))
            if final:
                sweep_attempt_leftovers(Path(final), earlier)
        runner = None
        if split_shots:
            from functools import partial

            from .shots import run_dub_split

            runner = partial(run_dub_split, min_shot_seconds=min_shot_seconds,
                             render_many=partial(render_segments_on_ray, retries=retries))
        return run_item(item, overrides, mask_overrides, score=score, skip_existing=skip_existing, runner=runner,
                        engine_args=engine_args)

    @ray.remote(num_cpus=1)
    def segment_task(job, start: int, stop: int, path: str):
        from .shots import render_segment

        single_threaded()
        return render_segment(job, start, stop, path)

    _remote.update(Board=Board, row_task=row_task, segment_task=segment_task)
    return _remote


def render_segments_on_ray(job, parts, retries: int = DEFAULT_RETRIES):
    """`core.shots.RenderMany` on Ray: the whole-clip state goes to the object store once, one task a segment."""
    ray = require_ray()
    segment_task = _tasks()["segment_task"].options(max_retries=retries)
    ref = ray.put(job)
    return ray.get([segment_task.remote(ref, a, b, path) for a, b, path in parts])


# --------------------------------------------------------------------------------------------- the driver
class RayBatchResult(BatchResult):
    """A BatchResult that also says how many times each row was started (more than once: retried)."""

    def __init__(self):
        super().__init__()
        self.attempts: Dict[int, int] = {}


def plan_outputs(items: List[BatchItem], overrides, mask_overrides, engine_args=None) -> Dict[int, object]:
    """Per row: its resolved output path, or the ItemResult of a row that fails before any work (bad project,
    empty cells, an output another row also writes). The rest is checked again by the row task."""
    plan: Dict[int, object] = {}
    claimed: Dict[str, int] = {}
    for item in items:
        try:
            final = Path(item_settings(item, overrides, mask_overrides, engine_args).output).resolve()
            owner = claimed.setdefault(str(final), item.row)
            if owner != item.row:
                raise LipDubError(f"Row {item.row}: the output {final} is also the output of row {owner}: "
                                  "give each row its own output file.")
            plan[item.row] = final
        except Exception as exc:  # noqa: BLE001 - the row fails, the batch goes on
            plan[item.row] = ItemResult(row=item.row, video=item.video or "", voice=item.voice or "",
                                        output=item.output or "", status="failed", error=describe(exc))
    return plan


def run_batch_ray(items: List[BatchItem], overrides: Optional[dict] = None, mask_overrides: Optional[dict] = None,
                  *, address: Optional[str] = None, num_cpus: Optional[int] = None, score: bool = True,
                  skip_existing: bool = False, split_shots: bool = False, min_shot_seconds: float = 2.0,
                  retries: int = DEFAULT_RETRIES, cancel: Optional[CancelToken] = None,
                  on_done: Optional[Callable[[int, ItemResult], None]] = None,
                  on_progress: Optional[Callable[[int, int, int, int], None]] = None,
                  on_start: Optional[Callable[[int, int], None]] = None,
                  engine_args: Optional[argparse.Namespace] = None) -> RayBatchResult:
    """Render every row as a Ray task. Never raises for a row problem or a cancel (like `batch.run_batch`).
    `engine_args`: the parsed command line whose engine options override each row's (as in `batch.run_item`).
    Callbacks (on the driver): on_done(k, result) as each row finishes; on_progress(done, failed, running, total)
    about twice a second; on_start(row, pid) when a row's attempt starts on a worker process."""
    ray = require_ray()
    started_here = connect(address, num_cpus)
    out = RayBatchResult()
    t0 = time.perf_counter()
    results: Dict[int, ItemResult] = {}
    index = {item.row: k for k, item in enumerate(items)}
    try:
        tasks = _tasks()
        board = tasks["Board"].remote()
        row_task = tasks["row_task"].options(max_retries=max(0, int(retries)), retry_exceptions=False)
        plan = plan_outputs(items, overrides, mask_overrides, engine_args)
        pending: Dict[object, BatchItem] = {}
        for item in items:
            planned = plan[item.row]
            if isinstance(planned, ItemResult):
                results[item.row] = planned
                continue
            ref = row_task.remote(item, str(planned), overrides, mask_overrides, score, skip_existing,
                                  split_shots, min_shot_seconds, max(0, int(retries)), board, engine_args)
            pending[ref] = item
        for row, r in sorted(results.items()):
            if on_done:
                on_done(index[row], r)
        seen_starts: Dict[int, int] = {}
        cancelled = False
        try:
            while pending:
                if cancel is not None and cancel.cancelled and not cancelled:
                    cancelled = True
                    for ref in pending:
                        ray.cancel(ref)          # a running row gets KeyboardInterrupt: run_item cleans up
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    item = pending.pop(ref)
                    results[item.row] = _outcome(ray, ref, item)
                    if on_done:
                        on_done(index[item.row], results[item.row])
                starts = ray.get(board.snapshot.remote())
                for row, pids in starts.items():
                    for pid in pids[seen_starts.get(row, 0):]:
                        if on_start:
                            on_start(row, pid)
                    seen_starts[row] = len(pids)
                if on_progress:
                    running = sum(1 for it in pending.values() if it.row in starts)
                    failed = sum(1 for r in results.values() if r.status == "failed")
                    on_progress(len(results), failed, running, len(items))
            out.attempts = {row: len(pids) for row, pids in ray.get(board.snapshot.remote()).items()}
        except KeyboardInterrupt:            # a second Ctrl-C: stop the workers now, still write the summary
            cancelled = True
            for ref, item in pending.items():
                ray.cancel(ref, force=True)
                results[item.row] = ItemResult(row=item.row, video=item.video or "", voice=item.voice or "",
                                               output=item.output or "", status="cancelled",
                                               error="stopped by a second Ctrl-C: no output was written")
        out.cancelled = cancelled or any(r.status == "cancelled" for r in results.values())
    finally:
        if started_here:
            ray.shutdown()
    out.items = [results[item.row] for item in items]
    out.seconds = time.perf_counter() - t0
    return out


def _outcome(ray, ref, item: BatchItem) -> ItemResult:
    """The row task's ItemResult, or what became of a task that did not return one."""
    base = dict(row=item.row, video=item.video or "", voice=item.voice or "", output=item.output or "")
    try:
        return ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        return ItemResult(**base, status="skipped", error="not started: the batch was cancelled")
    except ray.exceptions.RayError as exc:      # e.g. the worker died more often than --retries allows
        return ItemResult(**base, status="failed", error=describe(LipDubError(
            f"Ray could not run the row: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")))


def pending_rows(items: List[BatchItem], done: Dict[int, ItemResult]) -> List[ItemResult]:
    """Every row for the summary written while the batch runs: finished ones, and `pending` for the rest."""
    return [done.get(item.row) or ItemResult(row=item.row, video=item.video or "", voice=item.voice or "",
                                             output=item.output or "", status="pending", error="not finished yet")
            for item in items]


class RowsBar:
    """One overall tqdm bar on stderr: rows finished (with ETA), and how many failed / are running."""

    def __init__(self, total: int, enabled: bool = True):
        self.bar = None
        self._last = None
        if enabled and sys.stderr is not None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="rows", unit="row", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, done: int, failed: int, running: int, total: int) -> None:
        if self.bar is not None and (done, failed, running) != self._last:
            self._last = (done, failed, running)
            self.bar.set_postfix_str(f"failed {failed}, running {running}", refresh=False)
            self.bar.n = done
            self.bar.refresh()

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------------------------- command line
def add_arguments(b) -> None:
    """The distributed options of `batch` (core.batch.add_parser)."""
    from .shots import DEFAULT_MIN_SHOT_SECONDS

    b.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="render rows as Ray tasks: alone, on a local Ray instance using this machine's cores; "
                        "with 'auto' or ray://HOST:PORT, on that cluster (paths must be on storage every worker "
                        "sees; put it after MANIFEST)")
    b.add_argument("--ray-cpus", type=int, metavar="N", help="cores of the local Ray instance (default: all)")
    b.add_argument("--retries", type=int, default=DEFAULT_RETRIES, metavar="N",
                   help=f"re-run a row whose Ray worker died up to N times (default {DEFAULT_RETRIES})")
    b.add_argument("--split-shots", action="store_true",
                   help="render each clip as segments split at scene cuts (in parallel with --ray), joined "
                        "without re-encoding")
    b.add_argument("--min-shot-seconds", type=float, default=DEFAULT_MIN_SHOT_SECONDS, metavar="S",
                   help=f"with --split-shots: shorter shots stay with the previous one (default "
                        f"{DEFAULT_MIN_SHOT_SECONDS:g})")


def engine_arguments(a: argparse.Namespace) -> argparse.Namespace:
    """The command line's values without its handlers (functions stay on the driver; values travel to workers)."""
    return argparse.Namespace(**{k: v for k, v in vars(a).items() if not callable(v)})


def run_from_args(a, items: List[BatchItem], overrides: dict, mask: dict, summary: Path,
                  cancel: Optional[CancelToken] = None) -> RayBatchResult:
    """`batch --ray`: the rows on Ray with one overall progress bar; the summary rewritten as rows finish."""
    from .batch import ManifestError, row_line, write_summary

    if a.ray and a.ray != "auto" and not a.ray.startswith("ray://") and ":" not in a.ray:
        raise ManifestError(f"--ray {a.ray}: give no address (a local Ray instance), 'auto', ray://HOST:PORT or "
                            "HOST:PORT (put --ray after the manifest).")
    if a.ray_cpus is not None and a.ray_cpus < 1:
        raise ManifestError(f"--ray-cpus must be at least 1, got {a.ray_cpus}.")
    if a.retries < 0:
        raise ManifestError(f"--retries must be 0 or more, got {a.retries}.")
    if a.min_shot_seconds <= 0:
        raise ManifestError(f"--min-shot-seconds must be positive, got {a.min_shot_seconds}.")
    require_ray()
    quiet = bool(getattr(a, "quiet", False))
    bar = RowsBar(len(items), enabled=not quiet)
    done: Dict[int, ItemResult] = {}

    def on_done(k: int, r: ItemResult) -> None:
        done[r.row] = r
        write_summary(summary, pending_rows(items, done))
        if not quiet:
            bar.write(row_line(k, len(items), r))

    try:
        return run_batch_ray(items, overrides, mask, address=a.ray or None, num_cpus=a.ray_cpus,
                             score=not a.no_score, skip_existing=a.skip_existing, split_shots=a.split_shots,
                             min_shot_seconds=a.min_shot_seconds, retries=a.retries, cancel=cancel,
                             on_done=on_done, on_progress=bar, engine_args=engine_arguments(a))
    finally:
        bar.close()
