"""Batch dubbing from a CSV manifest: `python main.py batch MANIFEST.csv [options]`.

The manifest is a CSV file whose first line names the columns (any order, case-insensitive, extra columns
ignored; `,`, `;` or tab separated, UTF-8 with or without BOM):

    video,voice,output,project
    clips/a.mp4,voices/a.wav,out/a_dub.mp4,
    ,,out/b_dub.mp4,projects/b.lipdub

- The second row above is a project row: the project's video, active voice and settings.
- `video`, `voice`, `output` are required columns; `project` (a `.lipdub` file, see `core.project`) is optional, and
  so is `driver`: a video of the voice performer whose mouth the dub follows (`dub --driver`, core.performer); the
  row's voice is then the driver's sound when its voice cell is empty.
- Relative paths are relative to the manifest's folder. Output folders are created when missing.
- A project row takes the project's settings (engine, mask, face, pads, length policy, range, teeth, crf/preset,
  corrections...). Non-empty `video`/`voice`/`output` cells override the project's video/active voice/export
  output. Options given explicitly on the command line override both the defaults and the project's settings.
- Rows are numbered from 1 = the first line after the header. Blank lines are ignored.

Each row is rendered headless with `core.pipeline.run_dub` (the same settings model as `dub` and the editor).
A row that fails (a typed `LipDubError`, or an unexpected exception) is recorded with its one-line reason and
the batch goes on. Each row renders to a temporary file next to its output and is renamed only when the row
succeeded, so a failed or cancelled row never leaves a partial output (an existing output is left untouched).
Ctrl-C (or the cancel token) stops the current row; the rows not started are reported as `skipped`.

The summary CSV (`--out-summary`, default `<manifest stem>_summary.csv` beside the manifest) has one line per row:
row, video, voice, output, status (ok | failed | skipped | cancelled), seconds, frames, error, lse_c (when scored),
and the output's quality check (`core.qc`, unless --no-qc / --no-score): qc_flagged (share of frames flagged for
any kind), qc_blur, qc_seam, qc_flicker, qc_open_in_silence (share per kind), qc_psnr_outside, qc_ssim_outside
(the frame outside the mask), qc_ssim_mouth and qc_sharpness (mouth against the original).
Last, damaged_frames (runs of output frames from damaged input, "32-74 80", with --allow-damaged; a damaged row fails
otherwise, its error naming the damage: `core.media_damage`).
It is written atomically, also after a cancel. A one-line total goes to stderr.

Exit codes: 0 every row ok (or skipped with --skip-existing) · 9 at least one row failed · 130 cancelled ·
2 the manifest itself is unusable (missing, unreadable, no header, missing columns, no rows) or a bad option.

`--ray [ADDRESS]` runs the rows as Ray tasks (`core.batch_ray`: same row code, retries, a summary rewritten as rows
finish); `--split-shots` renders each clip as segments split at its scene cuts (`core.shots`); `--json` prints the
summary on stdout.

`add_parser` / `run_from_args` are the command-line layer of `core.cli` (they print to stderr, like it);
`read_manifest` / `run_batch` are the Qt-free, print-free API.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .device import DEVICES
from .engines import registry as engines
from .errors import CancelledError, LipDubError, OutputError
from .media import PRESETS
from .media_damage import frame_runs
from .progress import CancelToken, ProgressFn, check
from .timing import LENGTH_POLICIES

EXIT_OK = 0
EXIT_BAD_MANIFEST = 2
EXIT_SOME_FAILED = 9
EXIT_CANCELLED = CancelledError.exit_code  # 130

REQUIRED_COLUMNS = ("video", "voice", "output")
OPTIONAL_COLUMNS = ("project", "driver")
QC_FIELDS = ("qc_flagged", "qc_blur", "qc_seam", "qc_flicker", "qc_open_in_silence", "qc_psnr_outside",
             "qc_ssim_outside", "qc_ssim_mouth", "qc_sharpness")
SUMMARY_FIELDS = ("row", "video", "voice", "output", "status", "seconds", "frames", "error", "lse_c") + QC_FIELDS \
    + ("damaged_frames",)
STATUSES = ("ok", "failed", "skipped", "cancelled")


class ManifestError(LipDubError):
    """The manifest cannot be used at all (as opposed to one bad row, which only fails that row)."""

    exit_code = EXIT_BAD_MANIFEST


@dataclass
class BatchItem:
    row: int                         # 1 = first line after the header
    video: Optional[str]             # absolute paths (None: cell empty)
    voice: Optional[str]
    output: Optional[str]
    project: Optional[str] = None
    driver: Optional[str] = None     # the voice performer's video (core.performer)


@dataclass
class ItemResult:
    row: int
    video: str = ""
    voice: str = ""
    output: str = ""
    status: str = "skipped"
    seconds: float = 0.0
    frames: int = 0
    error: str = ""
    lse_c: Optional[float] = None
    qc: Optional[dict] = None        # the output's core.qc summary, when checked
    damaged_frames: List[int] = field(default_factory=list)   # output frames from damaged input (--allow-damaged)

    def qc_row(self) -> Dict[str, str]:
        """The QC columns: share of frames flagged (any kind, then per kind), PSNR / SSIM outside the mask,
        mouth SSIM and sharpness ratio; empty when the row was not checked."""
        q = self.qc
        if not q:
            return {k: "" for k in QC_FIELDS}

        def num(x, digits):
            return "" if x is None or isinstance(x, str) else f"{x:.{digits}f}"

        f = q.get("flagged", {})
        return {"qc_flagged": num(f.get("any"), 3), "qc_blur": num(f.get("blur"), 3), "qc_seam": num(f.get("seam"), 3),
                "qc_flicker": num(f.get("flicker"), 3), "qc_open_in_silence": num(f.get("open_in_silence"), 3),
                "qc_psnr_outside": q["psnr_outside"] if isinstance(q.get("psnr_outside"), str)
                else num(q.get("psnr_outside"), 2),
                "qc_ssim_outside": num(q.get("ssim_outside"), 4), "qc_ssim_mouth": num(q.get("ssim_mouth"), 4),
                "qc_sharpness": num(q.get("sharpness_ratio"), 3)}

    def as_row(self) -> Dict[str, str]:
        """The summary CSV's row; `damaged_frames` as runs of output frames ("32-74 80"), empty when clean."""
        runs = " ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in frame_runs(self.damaged_frames))
        return {"row": str(self.row), "video": self.video, "voice": self.voice, "output": self.output,
                "status": self.status, "seconds": f"{self.seconds:.2f}", "frames": str(self.frames),
                "error": self.error, "lse_c": "" if self.lse_c is None else f"{self.lse_c:.3f}", **self.qc_row(),
                "damaged_frames": runs}


@dataclass
class BatchResult:
    items: List[ItemResult] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.items if r.status == status)

    @property
    def exit_code(self) -> int:
        if self.cancelled:
            return EXIT_CANCELLED
        return EXIT_SOME_FAILED if self.count("failed") else EXIT_OK

    def total_line(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in STATUSES if self.count(s) or s in ("ok", "failed")]
        return f"batch: {', '.join(parts)} of {len(self.items)} rows in {self.seconds:.1f} s"


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe(exc: BaseException) -> str:
    """The one-line reason recorded for a failed row."""
    if isinstance(exc, LipDubError):
        return one_line(str(exc)) or type(exc).__name__
    return one_line(f"internal error: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------------------------- manifest
def read_manifest(path) -> List[BatchItem]:
    """Parse the manifest. Raises ManifestError (one line) when the file as a whole is unusable."""
    p = Path(path)
    if not p.exists():
        raise ManifestError(f"The manifest does not exist: {path}")
    if not p.is_file():
        raise ManifestError(f"The manifest is not a file: {path}")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"The manifest {path} is not a UTF-8 text file: save it as CSV (UTF-8).") from None
    except OSError as exc:
        raise ManifestError(f"Cannot read the manifest {path}: {exc.strerror or exc}") from None
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), None)
    if first is None:
        raise ManifestError(f"The manifest {path} is empty: its first line must name the columns "
                            f"{', '.join(REQUIRED_COLUMNS)} (and optionally project).")
    delim = max(",;\t", key=first.count) if any(c in first for c in ",;\t") else ","
    try:
        rows = list(csv.reader(lines, delimiter=delim))
    except csv.Error as exc:
        raise ManifestError(f"The manifest {path} is not valid CSV: {exc}") from None
    while rows and not any(c.strip() for c in rows[0]):
        rows.pop(0)
    header = [c.strip().lower() for c in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ManifestError(f"The manifest {path} has no {', '.join(repr(m) for m in missing)} column"
                            f"{'s' if len(missing) > 1 else ''}: its first line must name the columns "
                            f"{', '.join(REQUIRED_COLUMNS)} (and optionally project); it names {', '.join(c.strip() for c in rows[0])}.")
    col = {name: header.index(name) for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if name in header}
    base = p.resolve().parent

    def cell(values, name):
        i = col.get(name)
        if i is None or i >= len(values):
            return None
        v = values[i].strip()
        if not v:
            return None
        q = Path(v).expanduser()
        return str(q if q.is_absolute() else (base / q).resolve())

    items = []
    for n, values in enumerate(rows[1:], start=1):
        if not any(v.strip() for v in values):
            continue
        items.append(BatchItem(row=n, video=cell(values, "video"), voice=cell(values, "voice"),
                               output=cell(values, "output"), project=cell(values, "project"),
                               driver=cell(values, "driver")))
    if not items:
        raise ManifestError(f"The manifest {path} lists no rows to dub (only a header).")
    return items


# --------------------------------------------------------------------------------------------- settings
def item_settings(item: BatchItem, overrides: Optional[dict] = None, mask_overrides: Optional[dict] = None,
                  engine_args: Optional[argparse.Namespace] = None):
    """The DubSettings of one row: the project's (if any) or the defaults, then the explicit options
    (`engine_args`: parsed command line whose engine options override the row's)."""
    from .pipeline import DubSettings

    overrides = dict(overrides or {})
    if item.driver:
        overrides["driver"] = item.driver
        if not item.voice:
            item = replace(item, voice=item.driver)
    if item.project:
        from .project import Project

        proj = Project.load(item.project)          # ProjectError, one line
        if item.video:
            proj.video = item.video
        if item.voice:
            proj.add_voice(item.voice, activate=True)
        output = item.output or proj.export.output
        if not output:
            raise LipDubError(f"Row {item.row}: no output path: fill the output cell (the project "
                              f"{Path(item.project).name} has no export file name either).")
        settings = proj.to_dub_settings(output=output, frame_range=proj.range)
    else:
        empty = [name for name in REQUIRED_COLUMNS if not getattr(item, name)]
        if empty:
            raise LipDubError(f"Row {item.row}: the {' and '.join(empty)} cell{'s are' if len(empty) > 1 else ' is'} "
                              "empty: fill it in, or name a project in the project column.")
        settings = DubSettings(video=item.video, audio=item.voice, output=item.output)
    if mask_overrides:
        overrides["mask"] = replace(settings.mask, **mask_overrides)
    if engine_args is not None:
        overrides["engine_options"] = engines.options_from_args(engine_args, settings.engine_options)
    return replace(settings, **overrides) if overrides else settings


def _temp_output(final: Path) -> Path:
    """A fresh owner-named name beside the target (core.atomic: what a killed run left is removed by the next run
    of the row), not created: the writer gives the file its normal permissions."""
    from .atomic import name_beside

    return name_beside(final, final.suffix or ".mp4", tag="batch")



def run_item(item: BatchItem, overrides: Optional[dict] = None, mask_overrides: Optional[dict] = None,
             progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
             score: bool = True, skip_existing: bool = False, claimed: Optional[Dict[str, int]] = None,
             runner: Optional[Callable] = None, engine_args: Optional[argparse.Namespace] = None,
             qc: bool = True) -> ItemResult:
    """Render one row. Never raises: the outcome (ok / failed / skipped / cancelled) is in the result.
    Output goes to a temporary file beside the target, renamed only on success. With `score` and `qc` the output
    is also checked (core.qc: the summary goes to the row's qc_* columns; a check that fails leaves them
    empty, never the row)."""
    from .pipeline import run_dub, validate_paths

    runner = runner or run_dub
    res = ItemResult(row=item.row, video=item.video or "", voice=item.voice or "", output=item.output or "")
    t0 = time.perf_counter()
    tmp: Optional[Path] = None
    try:
        check(cancel)
        settings = item_settings(item, overrides, mask_overrides, engine_args)
        final = Path(settings.output).resolve()
        res.video, res.voice, res.output = str(settings.video), str(settings.audio), str(final)
        if claimed is not None:
            owner = claimed.get(str(final))
            if owner is not None and owner != item.row:
                raise LipDubError(f"Row {item.row}: the output {final} is also the output of row {owner}: "
                                  "give each row its own output file.")
            claimed[str(final)] = item.row
        if skip_existing and final.is_file():
            res.status, res.error = "skipped", "the output already exists (--skip-existing)"
            return res
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"Cannot create the output folder {final.parent}: {exc.strerror or exc}") from None
        validate_paths(replace(settings, output=str(final)))   # inputs exist, output is not an input...
        tmp = _temp_output(final)
        result = runner(replace(settings, output=str(tmp)), progress=progress, cancel=cancel, score=score)
        check(cancel)
        if score and qc:
            res.qc = _quality(replace(settings, output=str(tmp)), tmp, progress, cancel)
        os.replace(tmp, final)
        tmp = None
        res.status, res.frames = "ok", int(result.num_frames)
        res.damaged_frames = [int(k) for k in getattr(result, "damaged_frames", None) or []]
        report = getattr(result, "report", None)
        if report is not None and math.isfinite(float(report.lse_c)):
            res.lse_c = float(report.lse_c)
    except (CancelledError, KeyboardInterrupt):
        res.status, res.error = "cancelled", "cancelled by the user: no output was written"
    except Exception as exc:  # noqa: BLE001 - any problem fails only this row
        res.status, res.error = "failed", describe(exc)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        res.seconds = time.perf_counter() - t0
    return res


def _quality(settings, path, progress=None, cancel=None) -> Optional[dict]:
    """The core.qc summary of a rendered row (None, logged, when it cannot be checked)."""
    import logging

    from .qc.report import qc_for_settings

    try:
        return qc_for_settings(settings, str(path), progress=progress, cancel=cancel).summary
    except CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a check problem must not fail a rendered row
        logging.getLogger(__name__).warning("quality check of %s skipped: %s", path, describe(exc))
        return None


def run_batch(items: List[BatchItem], overrides: Optional[dict] = None, mask_overrides: Optional[dict] = None,
              progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None, score: bool = True,
              skip_existing: bool = False,
              on_start: Optional[Callable[[int, BatchItem], None]] = None,
              on_done: Optional[Callable[[int, ItemResult], None]] = None,
              runner: Optional[Callable] = None, engine_args: Optional[argparse.Namespace] = None,
              qc: bool = True) -> BatchResult:
    """Render every row in order, going on past failures; stops at a cancel (current row `cancelled`,
    the rest `skipped`). Never raises for a row problem or a cancel."""
    out = BatchResult()
    t0 = time.perf_counter()
    claimed: Dict[str, int] = {}
    for k, item in enumerate(items):
        if out.cancelled or (cancel is not None and cancel.cancelled):
            out.cancelled = True
            out.items.append(ItemResult(row=item.row, video=item.video or "", voice=item.voice or "",
                                        output=item.output or "", status="skipped",
                                        error="not started: the batch was cancelled"))
            continue
        if on_start:
            on_start(k, item)
        res = run_item(item, overrides, mask_overrides, progress, cancel, score, skip_existing, claimed, runner,
                       engine_args, qc=qc)
        out.cancelled = res.status == "cancelled"
        out.items.append(res)
        if on_done:
            on_done(k, res)
    out.seconds = time.perf_counter() - t0
    return out


def write_summary(path, items: List[ItemResult]) -> None:
    """The summary CSV, written atomically (temp file in the same folder, then rename)."""
    from .atomic import atomic_write

    with atomic_write(Path(path).resolve(), newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(SUMMARY_FIELDS))
        w.writeheader()
        for r in items:
            w.writerow(r.as_row())


# --------------------------------------------------------------------------------------------- command line
def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `batch` subcommand to core.cli's subparsers. Options left out keep the row's own settings
    (the project's, or the defaults), so every default here is None."""
    b = subparsers.add_parser(
        "batch", help="dub every row of a CSV manifest (video, voice, output[, project])",
        description="Dub every row of a CSV manifest with columns video, voice, output and optionally project "
                    "(relative paths are relative to the manifest). Failed rows are recorded and skipped. "
                    "Exit codes: 0 all ok, 9 some rows failed, 130 cancelled, 2 unusable manifest.")
    b.add_argument("manifest", help="CSV file with a header line: video,voice,output[,project]")
    b.add_argument("--out-summary", metavar="CSV",
                   help="summary CSV to write (default: <manifest stem>_summary.csv beside the manifest)")
    b.add_argument("--skip-existing", action="store_true", help="skip rows whose output file already exists")
    b.add_argument("--face", type=int, metavar="N", help="track id of the face to use (default: the main face)")
    b.add_argument("--pads", type=int, nargs=4, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"))
    b.add_argument("--mask-dilation", type=float)
    b.add_argument("--mask-feather", type=float)
    b.add_argument("--mask-up", type=float)
    b.add_argument("--mask-down", type=float)
    b.add_argument("--no-color-match", action="store_true", default=None)
    b.add_argument("--length", choices=LENGTH_POLICIES)
    b.add_argument("--range", type=int, nargs=2, metavar=("IN", "OUT"), help="dub only output frames [IN, OUT)")
    b.add_argument("--crf", type=int)
    b.add_argument("--preset", choices=PRESETS)
    b.add_argument("--teeth-frame", type=int)
    b.add_argument("--teeth-strength", type=float)
    b.add_argument("--batch-size", type=int)
    b.add_argument("--no-score", action="store_true", help="do not score or check the results (no lse_c, no qc_*)")
    b.add_argument("--no-qc", action="store_true", help="do not check the results' quality (no qc_* columns)")
    b.add_argument("--adapt", action=argparse.BooleanOptionalAction, default=None,
                   help="learn each actor from the clip's own voice first (default: the row's project, else on)")
    b.add_argument("--models-dir", help="folder with model files")
    b.add_argument("--device", choices=DEVICES, help="auto, cpu or cuda")
    b.add_argument("--allow-damaged", action="store_true", default=None,
                   help="dub damaged inputs as far as they decode (default: such a row fails with the damage "
                        "named); the damaged frames go in the summary's damaged_frames column")
    b.add_argument("--quiet", action="store_true", help="no progress bars or per-row lines, only the total")
    b.add_argument("--debug", action="store_true", help="debug logging")
    b.add_argument("--json", action="store_true", help="print the summary (one object per row) as JSON on stdout")
    engines.add_arguments(b)
    return b


def overrides_from_args(a) -> tuple:
    """(DubSettings overrides, MaskSettings overrides) for the options given explicitly."""
    ov: dict = {}
    for attr, key in (("engine", "engine"), ("face", "face_track"),
                      ("length", "length_policy"), ("crf", "crf"), ("preset", "preset"), ("device", "device"),
                      ("models_dir", "models_dir"), ("teeth_frame", "teeth_frame"),
                      ("teeth_strength", "teeth_strength"), ("batch_size", "batch_size"), ("adapt", "adapt"),
                      ("allow_damaged", "allow_damaged")):
        v = getattr(a, attr, None)
        if v is not None:
            ov[key] = v
    if getattr(a, "pads", None) is not None:
        ov["pads"] = tuple(a.pads)
    if getattr(a, "range", None) is not None:
        if a.range[0] < 0 or a.range[1] <= a.range[0]:
            raise ManifestError(f"--range {a.range[0]} {a.range[1]} is empty: give IN < OUT, both >= 0.")
        ov["frame_range"] = tuple(a.range)
    if ov.get("crf") is not None and not 0 <= ov["crf"] <= 51:
        raise ManifestError(f"--crf must be between 0 and 51, got {ov['crf']}.")
    if ov.get("batch_size") is not None and ov["batch_size"] < 1:
        raise ManifestError(f"--batch-size must be at least 1, got {ov['batch_size']}.")
    mask: dict = {}
    for attr, key in (("mask_dilation", "dilation"), ("mask_feather", "feather"), ("mask_up", "extent_up"),
                      ("mask_down", "extent_down")):
        v = getattr(a, attr, None)
        if v is not None:
            if not math.isfinite(v) or v < 0:
                raise ManifestError(f"--{attr.replace('_', '-')} must be a non-negative number, got {v}.")
            mask[key] = float(v)
    if getattr(a, "no_color_match", None):
        mask["color_match"] = False
    return ov, mask


def default_summary_path(manifest) -> Path:
    m = Path(manifest).resolve()
    return m.with_name(f"{m.stem}_summary.csv")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def row_line(k: int, n: int, r: ItemResult) -> str:
    """The stderr line of a finished row."""
    extra = f"{r.frames} frames, {r.seconds:.1f} s" if r.status == "ok" else r.error
    if r.status == "ok" and r.lse_c is not None:
        extra += f", LSE-C {r.lse_c:.2f}"
    if r.status == "ok" and r.qc:
        extra += f", QC {int(round(100 * r.qc['flagged']['any']))}% of frames flagged"
    if r.status == "ok" and r.damaged_frames:
        extra += f", {len(r.damaged_frames)} damaged frames: {r.as_row()['damaged_frames']}"
    return f"[{k + 1}/{n}] row {r.row}: {r.status} ({extra})"


def summary_json(result: BatchResult, summary: Path) -> dict:
    """`--json`: the summary CSV's rows, the counts and the exit code; `damaged_frames` per row (as lists: the
    output frames from damaged input, [] for a clean row)."""
    return {"summary": str(summary), "exit_code": result.exit_code, "seconds": round(result.seconds, 2),
            "counts": {s: result.count(s) for s in STATUSES}, "rows": [r.as_row() for r in result.items],
            "damaged_frames": {str(r.row): list(r.damaged_frames) for r in result.items}}


def split_runner(a) -> Optional[Callable]:
    """`--split-shots` without Ray: each row's shot segments rendered in turn (`core.shots`)."""
    if not getattr(a, "split_shots", False):
        return None
    from functools import partial

    from .shots import run_dub_split

    return partial(run_dub_split, min_shot_seconds=a.min_shot_seconds)


def run_from_args(a, progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
                  run_elsewhere: Optional[Callable] = None) -> int:
    """The `batch` subcommand (called by core.cli.main with its progress bars and Ctrl-C cancel token).
    `run_elsewhere(a, items, overrides, mask, summary, cancel)`: runs the rows instead of this process (`--ray`:
    core.batch_ray, which builds on this module). Returns the exit code; a bad manifest/option raises
    ManifestError (exit 2) for core.cli to print."""
    items = read_manifest(a.manifest)
    overrides, mask = overrides_from_args(a)
    summary = Path(a.out_summary).resolve() if a.out_summary else default_summary_path(a.manifest)
    if not summary.parent.is_dir():
        raise ManifestError(f"The summary folder does not exist: {summary.parent}")
    if not os.access(summary.parent, os.W_OK):
        raise ManifestError(f"The summary folder is not writable: {summary.parent}")
    if summary == Path(a.manifest).resolve():
        raise ManifestError("The summary path is the manifest itself: choose another --out-summary.")
    quiet = bool(getattr(a, "quiet", False))
    n = len(items)

    def reset_bars():
        close = getattr(progress, "close", None)
        if close:
            close()

    def on_start(k, item):
        reset_bars()
        if not quiet:
            what = Path(item.project).name if item.project else Path(item.video or "?").name
            _err(f"[{k + 1}/{n}] row {item.row}: {what} -> {item.output or '(project output)'}")

    def on_done(k, r: ItemResult):
        reset_bars()
        if not quiet:
            _err(row_line(k, n, r))

    if run_elsewhere is not None:
        result = run_elsewhere(a, items, overrides, mask, summary, cancel)
    else:
        result = run_batch(items, overrides, mask, progress=progress, cancel=cancel, score=not a.no_score,
                           skip_existing=a.skip_existing, on_start=on_start, on_done=on_done,
                           runner=split_runner(a), engine_args=a, qc=not getattr(a, "no_qc", False))
    reset_bars()
    write_summary(summary, result.items)
    if getattr(a, "json", False):
        print(json.dumps(summary_json(result, summary)), flush=True)
    line = result.total_line() + f"; summary: {summary}"
    if result.cancelled:
        line += " (cancelled: the cancelled row left no output)"
    _err(line)
    return result.exit_code
