"""Headless command line: `python main.py dub|score|qc|models|batch ...`.

Exit codes (also in the README):
    0 success · 1 other LipDub error · 2 bad command line · 3 ffmpeg missing · 4 unreadable/invalid/damaged media
    5 output problem · 6 no face found · 7 model file missing/corrupt · 8 project error · 130 cancelled (Ctrl-C)
    9 some batch rows failed (the others were rendered; see the summary CSV)
    70 internal error (a bug: rerun with --debug for the traceback)
Errors print one line on stderr, never a traceback (unless --debug).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import signal
import sys
import warnings
from pathlib import Path
from typing import List, Optional

from . import batch as batch_cmd
from . import batch_ray
from .device import AUTO, DEVICES
from .engines import registry as engines
from .errors import CancelledError, LipDubError
from .progress import CancelToken
from .timing import LENGTH_POLICIES

EXIT_INTERNAL = 70


class StageBars:
    """tqdm progress bars on stderr, one per stage, with ETA."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and sys.stderr is not None
        self.bars = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            bar = tqdm(total=total or None, desc=f"{stage:>9}", unit="f", file=sys.stderr, leave=True,
                       dynamic_ncols=True)
            self.bars[stage] = bar
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", help="folder with model files (default: $LIPDUB_MODELS_DIR or the user data dir)")
    p.add_argument("--device", default=AUTO, choices=DEVICES, help="auto (CUDA when torch sees a GPU, else the CPU; "
                                                                  "the default), cpu or cuda")
    add_face_and_logging(p)
    add_allow_damaged(p)


def add_face_and_logging(p: argparse.ArgumentParser) -> None:
    p.add_argument("--face", type=int, default=None, metavar="N", help="track id of the face to use (default: the main face)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")


def add_allow_damaged(p: argparse.ArgumentParser, default=False) -> None:
    p.add_argument("--allow-damaged", action="store_true", default=default,
                   help="use a damaged input as far as it decodes (default: refuse it with exit code 4); the "
                        "damaged frames are listed in the warning and as damaged_frames in --json")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lipdub", description="LipDub Studio command line.")
    sub = ap.add_subparsers(dest="command", required=True)

    d = sub.add_parser("dub", help="dub a video with a new voice track")
    d.add_argument("--video", required=True)
    d.add_argument("--audio", help="the new voice (any audio or video file; default: the --driver video's sound)")
    d.add_argument("--driver", metavar="PERFORMER_VIDEO",
                   help="a video of the voice performer: the dub's mouth follows the performer's (classic engine), "
                        "and the voice is its sound unless --audio is given")
    d.add_argument("-o", "--output", required=True, help="output .mp4 (written atomically)")
    d.add_argument("--pads", type=int, nargs=4, default=[0, 10, 0, 0], metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                   help="face crop padding in pixels (Wav2Lip engine)")
    d.add_argument("--mask-dilation", type=float, default=None, help="mask growth, in inter-ocular units")
    d.add_argument("--mask-feather", type=float, default=None, help="mask feather width, in inter-ocular units")
    d.add_argument("--mask-up", type=float, default=None, help="extra mask reach up the cheeks (inter-ocular units)")
    d.add_argument("--mask-down", type=float, default=None, help="extra mask reach below the chin (inter-ocular units)")
    d.add_argument("--no-color-match", action="store_true")
    d.add_argument("--length", default="shortest", choices=LENGTH_POLICIES,
                   help="when voice and video lengths differ (default: end at the shorter)")
    d.add_argument("--range", type=int, nargs=2, metavar=("IN", "OUT"), help="dub only output frames [IN, OUT)")
    d.add_argument("--crf", type=int, default=18)
    d.add_argument("--preset", default="medium")
    d.add_argument("--teeth-frame", type=int, default=None, help="frame to use as teeth proxy (default: suggested)")
    d.add_argument("--teeth-strength", type=float, default=1.0)
    d.add_argument("--batch-size", type=int, default=16,
                   help="frames rendered per batch, at most (large frames: fewer, core.render.writer.frames_per_batch)")
    d.add_argument("--report", help="write the result's per-frame sync confidence as CSV")
    d.add_argument("--no-score", action="store_true", help="skip scoring the result")
    d.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    d.add_argument("--adapt", action=argparse.BooleanOptionalAction, default=True,
                   help="learn the actor from the clip's own voice before dubbing (default: on)")
    _add_common(d)
    engines.add_arguments(d)

    s = sub.add_parser("score", help="measure lip sync: LSE-D, LSE-C, AV offset and per-frame confidence")
    s.add_argument("--video", required=True)
    s.add_argument("--audio", help="voice to score against (default: the video's own audio)")
    s.add_argument("--scorer", default="auto", help="auto, lite, syncnet_v2, lipsync_expert, or a model file")
    s.add_argument("--csv", help="write per-frame confidence as CSV")
    s.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    s.add_argument("--adapt", action=argparse.BooleanOptionalAction, default=True,
                   help="set the low-sync threshold for this face from the video's own voice (default: on)")
    _add_common(s)

    q = sub.add_parser("qc", help="quality report of a dub: blur, seam, flicker, mouth open in silence",
                       description="Check a dub against the original it was made from: per-frame flags (blur, "
                                   "seam, flicker, open_in_silence) and a summary (PSNR/SSIM outside the mask, "
                                   "mouth SSIM and sharpness, LMD with --reference). Rules: docs/QC.md.")
    q.add_argument("--video", required=True, help="the original video the dub was made from")
    q.add_argument("--dub", required=True, help="the dubbed video")
    q.add_argument("--voice", help="the voice track (default: the dub's own sound)")
    q.add_argument("--reference", help="a clip whose mouth really said the voice (adds LMD to the summary)")
    q.add_argument("--range", type=int, nargs=2, metavar=("IN", "OUT"),
                   help="the dub is output frames [IN, OUT) (as made with dub --range)")
    q.add_argument("--length", default="shortest", choices=LENGTH_POLICIES, help="the length policy of the dub")
    out = q.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object (per-frame flags + summary)")
    out.add_argument("--csv", metavar="FILE", help="write per-frame flags and measures as CSV")
    add_face_and_logging(q)

    m = sub.add_parser("models", help="list known models, where they go and whether they are present")
    m.add_argument("--models-dir")
    m.add_argument("--debug", action="store_true")
    m.add_argument("--quiet", action="store_true")

    batch_ray.add_arguments(batch_cmd.add_parser(sub))   # --ray, --split-shots...
    return ap


def _mask_settings(a):
    from .engines.base import MaskSettings

    m = MaskSettings()
    for attr, val in (("dilation", a.mask_dilation), ("feather", a.mask_feather),
                      ("extent_up", a.mask_up), ("extent_down", a.mask_down)):
        if val is not None:
            if not math.isfinite(val) or val < 0:
                raise LipDubError(f"--mask-{attr.replace('extent_', '')} must be a non-negative number, got {val}.")
            setattr(m, attr, val)
    m.color_match = not a.no_color_match
    return m


def write_csv(path: str, report, fps: float) -> None:
    """Per-frame CSV, written atomically: frame, time_s, confidence (the sync lane's calibrated confidence at
    offset 0), low (1 where the window shades the frame), voiced, and syncnet_python's confidence."""
    from .atomic import atomic_write

    n = len(report.per_frame)
    low = report.low if report.low is not None else [False] * n
    voiced = report.voiced if report.voiced is not None else [True] * n
    syncnet = report.per_frame_syncnet if report.per_frame_syncnet is not None else report.per_frame
    with atomic_write(Path(path).resolve(), newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "time_s", "confidence", "low", "voiced", "confidence_syncnet"])
        for i in range(n):
            w.writerow([i, f"{i / fps:.3f}", f"{float(report.per_frame[i]):.4f}", int(bool(low[i])),
                        int(bool(voiced[i])), f"{float(syncnet[i]):.4f}"])


def _summary_line(report) -> str:
    line = (f"sync ({report.scorer}): LSE-D {report.lse_d:.3f}  LSE-C {report.lse_c:.3f}  "
            f"AV offset {report.offset_frames:+d} frames")
    if not getattr(report, "judgeable", True):
        from .sync.lane import CANNOT_JUDGE

        line += f"  ({CANNOT_JUDGE})"
    elif report.low is not None and report.voiced is not None and report.voiced.any():
        line += f"  low sync on {report.low.sum() / report.voiced.sum():.0%} of voiced frames"
    return line


def cmd_dub(a, bars, cancel) -> int:
    from .pipeline import DubSettings, run_dub

    settings = DubSettings(
        video=a.video, audio=a.audio or a.driver, driver=a.driver, output=a.output, engine=a.engine or engines.DEFAULT_ENGINE,
        engine_options=engines.options_from_args(a), face_track=a.face, pads=tuple(a.pads), mask=_mask_settings(a), length_policy=a.length,
        frame_range=tuple(a.range) if a.range else None, crf=a.crf, preset=a.preset, device=a.device,
        models_dir=a.models_dir, teeth_frame=a.teeth_frame, teeth_strength=a.teeth_strength,
        batch_size=a.batch_size, adapt=a.adapt, allow_damaged=a.allow_damaged,
    )
    if a.report:
        from .pipeline import validate_paths  # fail before hours of work if the report can't be written

        rp = Path(a.report).resolve().parent
        if not rp.is_dir():
            raise LipDubError(f"The report folder does not exist: {rp}")
        validate_paths(settings)
    res = run_dub(settings, progress=bars, cancel=cancel, score=not a.no_score)
    bars.close()
    for msg in res.messages:
        print(msg, file=sys.stderr)
    print(f"wrote {res.output}: {res.num_frames} frames at {res.fps:.3f} fps, "
          f"{res.faces_found} with a dubbed face, in {res.timings.get('total', 0):.1f} s", file=sys.stderr)
    if res.report is not None:
        print(_summary_line(res.report), file=sys.stderr)
        if a.report:
            write_csv(a.report, res.report, res.fps)
    if a.json:
        out = {"output": res.output, "num_frames": res.num_frames, "fps": res.fps, "faces_found": res.faces_found,
               "messages": res.messages, "timings": res.timings,
               "adaptation": res.adaptation.to_json() if res.adaptation is not None else None,
               "damaged_frames": list(res.damaged_frames), "damage": [r.to_json() for r in res.damage],
               "performer_offset": res.performer_offset}
        if res.report is not None:
            out.update(res.report.to_json())
        print(json.dumps(out))
    return 0


def cmd_score(a, bars, cancel) -> int:
    from . import audio as audio_mod
    from . import media
    from .errors import NoFaceError
    from .faces.track import track_video
    from .mouth_shape import AudioToMouth
    from .sync.scoring import get_scorer, judge_low, score_clip

    info = media.probe(a.video, need_video=True)
    damage, warnings = _score_damage(a, info, cancel)
    for line in warnings:
        print(line, file=sys.stderr)
    tracks = track_video(a.video, progress=bars, cancel=cancel)
    if not tracks.tracks:
        raise NoFaceError(f"No face was found anywhere in {a.video}: nothing to score.")
    scorer = get_scorer(a.scorer, models_dir=a.models_dir, device=a.device)
    if a.face is None:   # as the dub: in shots with several faces, the one that speaks the clip's own sound
        from .sync.asd.speaker import default_face
        from .sync.lane_adapt import own_voice

        own_sound = own_voice(a.video, info) if len(tracks.tracks) > 1 else None
        track = default_face(a.video, info, tracks, own_sound, scorer=scorer, progress=bars, cancel=cancel).track
    else:
        track = tracks.get(a.face)
    witness = AudioToMouth.load()          # the offset's second witness (core.sync.av_offset)
    threshold = own = None
    judgeable = True
    if a.adapt:
        from .sync.lane_adapt import lane_adaptation

        lane = lane_adaptation(a.video, info, track, scorer, cancel=cancel, offset_model=witness, progress=bars)
        threshold, judgeable = lane.low_threshold, lane.judgeable
        own = lane.report
        if not a.json:
            print(f"low-sync threshold {threshold:.2f} ({lane.message})", file=sys.stderr)
    if a.audio is None and own is not None:
        report = judge_low(own, threshold, judgeable)   # the clip's own sound: the adaptation has just scored it
        wav = lane.wav
    else:
        wav = audio_mod.load_audio(a.audio or a.video)
        report = score_clip(a.video, wav, track, scorer, progress=bars, cancel=cancel, fps=float(info.fps),
                            low_threshold=threshold, offset_model=witness, face=own.face if own else None,
                            judgeable=judgeable)
    bars.close()
    if a.csv:
        write_csv(a.csv, report, info.fps)
    if a.json:
        out = report.to_json()
        out["speaking"] = speaking_json(a.video, info, tracks, track, wav, bars, cancel)
        out["damaged_frames"] = damage
        print(json.dumps(out))
    else:
        print(_summary_line(report))
    return 0


def speaking_json(video, info, tracks, track, wav, progress=None, cancel=None) -> list:
    """Per video frame: P(speaking) of the scored face with the scored voice (core.sync.asd.speaker), rounded;
    None where the face is absent or the voice silent (it is computed on the voiced frames, with context)."""
    import math

    from . import audio as audio_mod
    from .sync.asd.speaker import cached_speaking_scores, grow

    fps = float(info.fps)
    frames = grow(audio_mod.voice_activity(wav, fps, tracks.num_frames), fps=fps)
    prob = cached_speaking_scores(video, [track], wav, frames=frames, info=info, cuts=list(tracks.cuts),
                                  progress=progress, cancel=cancel).of(track.track_id)
    return [None if not math.isfinite(float(p)) else round(float(p), 3) for p in prob]


def cmd_qc(a, bars, cancel) -> int:
    from .qc.report import run_qc, write_csv as write_qc_csv

    start = 0
    if a.range:
        if a.range[0] < 0 or a.range[1] <= a.range[0]:
            raise LipDubError(f"--range {a.range[0]} {a.range[1]} is empty: give IN < OUT, both >= 0.")
        start = a.range[0]
    if a.csv:
        folder = Path(a.csv).resolve().parent
        if not folder.is_dir():
            from .errors import OutputError

            raise OutputError(f"The CSV folder does not exist: {folder}")
    rep = run_qc(a.video, a.dub, voice=a.voice, face=a.face, reference=a.reference, start=start,
                 length_policy=a.length, progress=bars, cancel=cancel)
    bars.close()
    if a.range and rep.num_frames != a.range[1] - a.range[0]:
        print(f"note: --range covers {a.range[1] - a.range[0]} frames, the dub has {rep.num_frames}", file=sys.stderr)
    if a.csv:
        write_qc_csv(a.csv, rep)
    if a.json:
        print(json.dumps(rep.to_json()))
    else:
        print(rep.summary_line())
    return 0


def _score_damage(a, info, cancel):
    """(damaged video frames, warning lines) for `score`: the video's picture and the sound scored against it
    (the voice, else the video's own); refuses damaged input unless --allow-damaged (exit code 4)."""
    import numpy as np

    from . import media
    from .media_damage import check_damage, output_damage, scan_damage

    video = scan_damage(a.video, info, "video", cancel=cancel)
    sound_path = a.audio or a.video
    sound_info = info if sound_path == a.video else media.probe(sound_path, need_audio=True)
    sound = scan_damage(sound_path, sound_info, "audio", cancel=cancel)
    warnings = check_damage([video, sound], a.allow_damaged)
    n = info.num_frames
    return output_damage(video, sound, np.arange(n), float(info.fps), np.arange(n)), warnings


def cmd_models(a) -> int:
    from .errors import ModelCorruptError, ModelMissingError
    from .model_catalog import known_models, users_of
    from .models.registry import models_dir, resolve_model

    folder = models_dir(a.models_dir)
    print(f"models folder: {folder}")
    for name, spec in known_models().items():
        try:
            resolve_model(name, models_dir=a.models_dir)
            status = "ok"
        except ModelMissingError:
            status = "missing"
        except ModelCorruptError:
            status = "CORRUPT"
        used = ", ".join(users_of(name))
        print(f"  {name:<16} {spec.filename:<22} {status:<8} {used:<22} {spec.licence}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    if a.command == "dub" and not a.audio and not a.driver:
        ap.error("dub needs the new voice: --audio VOICE, or --driver PERFORMER_VIDEO whose sound is the voice")
    logging.basicConfig(level=logging.DEBUG if a.debug else logging.WARNING, format="%(levelname)s: %(message)s")
    if not a.debug:
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    cancel = CancelToken()

    def on_sigint(signum, frame):
        if cancel.cancelled:  # second Ctrl-C: stop waiting for the current batch
            raise KeyboardInterrupt
        cancel.cancel()
        print("\ncancelling (Ctrl-C again to force)...", file=sys.stderr)

    old = signal.signal(signal.SIGINT, on_sigint)
    bars = StageBars(enabled=not a.quiet)
    try:
        if a.command == "dub":
            return cmd_dub(a, bars, cancel)
        if a.command == "score":
            return cmd_score(a, bars, cancel)
        if a.command == "qc":
            return cmd_qc(a, bars, cancel)
        if a.command == "models":
            return cmd_models(a)
        if a.command == "batch":
            on_ray = batch_ray.run_from_args if getattr(a, "ray", None) is not None else None
            return batch_cmd.run_from_args(a, bars, cancel, run_elsewhere=on_ray)
        ap.error(f"unknown command {a.command}")
    except (CancelledError, KeyboardInterrupt):
        bars.close()
        print("cancelled: no output was written.", file=sys.stderr)
        return CancelledError.exit_code
    except LipDubError as exc:
        bars.close()
        if a.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a bug: one line, with the way to get details
        bars.close()
        if a.debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        signal.signal(signal.SIGINT, old)
    return 0
