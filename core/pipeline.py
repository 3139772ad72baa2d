"""One dub job: probe -> fit lengths -> track -> engine.prepare -> stream (render, composite, teeth) -> encode.

The pipeline never knows which engine runs (see `core.engines.base.Engine`). It prepares a clip (probe, damage
check, track, adaptation, engines) and hands it to the render path (`core.render`: the output schedule, the
source frames streamed, the renderer, the writer), which reports progress per stage and checks the cancel token
between batches. The output is written to a temporary file and renamed only on success
(`core.media.VideoWriter`).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from . import audio as audio_mod
from . import media, timing
from .device import AUTO, resolve_device
from .edits import Edits, shift_voice
from .engines import registry as engines
from .engines.base import DubContext, Engine, MaskSettings
from .engines.teeth import suggest_teeth_frames
from .errors import LipDubError, MediaError, ModelError, NoFaceError, OutputError
from .heap import limit_arenas, release_free_memory
from .progress import CancelToken, ProgressFn, check
from .render.renderer import FrameRenderer, proxy_from_frame
from .render.schedule import output_schedule, remap_track, voice_for
from .render.stages import StageTimer
from .render.writer import render_file

log = logging.getLogger(__name__)

RELEASE_TRACKER_SECONDS = 60.0   # from this clip length a job's memory matters more than reloading the face
                                 # tracker's models (~0.5-0.9 s) for the next clip: it drops them once tracked


@dataclass
class DubSettings:
    video: str
    audio: str
    output: Optional[str] = None
    engine: str = engines.DEFAULT_ENGINE
    face_track: Optional[int] = None
    pads: Tuple[int, int, int, int] = (0, 10, 0, 0)
    mask: MaskSettings = field(default_factory=MaskSettings)
    length_policy: str = "shortest"
    frame_range: Optional[Tuple[int, int]] = None
    crf: int = 18
    preset: str = "medium"
    device: str = AUTO                 # core.device.resolve_device: CUDA when torch sees a GPU, else CPU
    models_dir: Optional[str] = None
    teeth_frame: Optional[int] = None
    teeth_strength: float = 1.0
    batch_size: int = 16
    track_cache_dir: Optional[str] = None
    detect_every: int = 5
    engine_options: dict = field(default_factory=dict)  # {engine name: its options dataclass}; absent: defaults
    edits: Optional[Edits] = None     # the editor's corrections (keyframed mask, overrides, offsets, fixes)
    adapt: bool = True                # learn this actor from the clip's own voice first (core.adapt)
    adapt_cache_dir: Optional[str] = None
    speaker_cache_dir: Optional[str] = None   # core.sync.asd.speaker's cache (the default face per shot)
    allow_damaged: bool = False       # dub a damaged input as it decodes (else DamagedMediaError, exit code 4)
    driver: Optional[str] = None      # the voice performer's video: its mouth drives the dub (core.performer)


@dataclass
class DubResult:
    output: Optional[str]
    num_frames: int
    fps: float
    messages: list
    timings: Dict[str, float]          # seconds per stage
    stage_frames: Dict[str, int]       # frames processed per stage
    faces_found: int                   # output frames that had a face to dub
    report: object = None              # SyncReport of the result, when scored
    adaptation: object = None          # core.adapt.Adaptation, when the engine adapts to the actor
    damaged_frames: list = field(default_factory=list)   # output file frames from damaged video or voice
    damage: list = field(default_factory=list)           # core.media_damage.DamageReport of each damaged input
    performer_offset: Optional[int] = None  # the performer video's A/V offset the dub corrected (frames), if driven


def make_engine(settings: DubSettings, name: Optional[str] = None) -> Engine:
    """Engine `name` (default: the settings' engine) with its options from the settings."""
    return engines.create(name or settings.engine, settings.engine_options, models_dir=settings.models_dir,
                          device=settings.device)


def validate_paths(settings: DubSettings) -> None:
    """Checks that need no decoding: inputs exist, the output is writable and is not an input."""
    inputs = [("video", settings.video), ("voice", settings.audio)]
    if settings.driver:
        inputs.append(("performer video", settings.driver))
    for label, p in inputs:
        path = Path(p)
        if not path.exists():
            raise MediaError(f"The {label} file does not exist: {p}")
        if not path.is_file() or not os.access(path, os.R_OK):
            raise MediaError(f"The {label} file cannot be read: {p}")
        if path.stat().st_size == 0:
            raise MediaError(f"The {label} file is empty (0 bytes): {p}")
    if settings.output:
        out = Path(settings.output).resolve()
        for _label, p in inputs:
            if out == Path(p).resolve():
                raise OutputError(f"The output path is the same as an input file: {settings.output}. "
                                  "Choose another output name.")
        parent = out.parent
        if not parent.is_dir():
            raise OutputError(f"The output folder does not exist: {parent}")
        if not os.access(parent, os.W_OK):
            raise OutputError(f"The output folder is not writable: {parent}")


@dataclass
class PreparedClip:
    """Everything computed before rendering: media info, schedule, fitted voice, chosen track, context."""

    info: object
    ctx: DubContext
    out_indices: np.ndarray            # output frame indices to render (the frame range)
    messages: list
    track_set: object
    track: object
    adaptation: object = None          # core.adapt.Adaptation, when adaptation ran
    scorer: object = None              # the sync lane's scorer, when adaptation loaded it (score_output reuses it)
    general_scorer: object = None      # ... before its refit on this face (the performer's offset uses it)
    speaker: object = None             # core.sync.asd.speaker.FaceChoice, when the face was chosen by who speaks
    edits: Edits = field(default_factory=Edits)
    video_damage: object = None        # core.media_damage.DamageReport of the video's picture
    voice_damage: object = None        # ... and of the voice's sound
    driver_damage: object = None       # ... and of the performer video's picture (core.performer), when there is one
    voice: Optional[np.ndarray] = None  # the voice as recorded, before the editor's offset (core.performer)
    preload: object = None             # core.preload.Preload: torch and the networks, loading in a thread

    def damage_reports(self) -> list:
        """The damage report of each damaged input, each file once."""
        reports = {}
        for r in (self.video_damage, self.voice_damage, self.driver_damage):
            if r is not None and r.damaged:
                reports.setdefault((r.path, r.kind), r)
        return list(reports.values())

    def damaged_frames(self, out_idx: np.ndarray) -> list:
        """Frames of the output file for `out_idx` that show damaged video or carry damaged voice."""
        from .media_damage import output_damage

        return output_damage(self.video_damage, self.voice_damage, self.ctx.source_index, self.ctx.fps, out_idx,
                             self.edits.voice_offset)



def prepare_clip(settings: DubSettings, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelToken] = None, timer: Optional[StageTimer] = None) -> PreparedClip:
    """Everything computed before rendering, the per-clip adaptation included."""
    prep = prepare_unadapted(settings, progress, cancel, timer)
    adapt_prepared(prep, settings, progress, cancel, timer)
    follow_performer(prep, settings, progress, cancel, timer)
    return prep


def prepare_unadapted(settings: DubSettings, progress: Optional[ProgressFn] = None,
                      cancel: Optional[CancelToken] = None, timer: Optional[StageTimer] = None) -> PreparedClip:
    """`prepare_clip` short of the adaptation (`adapt_prepared`) and the performer (`follow_performer`): the
    context's mouth head and performance are None."""
    from .faces.track import track_video

    timer = timer or StageTimer()
    validate_paths(settings)
    info = media.probe(settings.video)
    if not info.has_video:
        raise MediaError(f"The video file has no video stream: {settings.video}")
    if info.num_frames <= 0:
        raise MediaError(f"The video has no frames: {settings.video}")
    if settings.driver:
        from .performer import check_driver

        check_driver(settings.driver, settings.audio)
    wav = voice = audio_mod.load_audio(settings.audio)   # voice: as recorded, before the editor's offset
    if wav.size == 0:
        raise MediaError(f"The voice file contains no audio samples: {settings.audio}")
    # the damage scans (ffmpeg, one core) run while the face is tracked (GIL-bound, one core); a damaged input is
    # still refused with its damage named, also when the tracker failed on it first
    checks = _in_thread(check_inputs, settings, info, cancel, timer, name="lipdub-damage-scan")
    try:
        fps = float(info.fps)
        edits = settings.edits or Edits()
        schedule, message = output_schedule(info.num_frames, fps, len(wav), edits.voice_offset, settings.length_policy)
        if edits.voice_offset:
            wav = shift_voice(wav, edits.voice_offset, fps, audio_mod.SAMPLE_RATE)
        num_out = len(schedule)
        wav_out = timing.fit_wav(wav, num_out, fps)

        out_indices = np.arange(num_out)
        if settings.frame_range is not None:
            a, b = settings.frame_range
            a, b = max(0, int(a)), min(num_out, int(b))
            if b <= a:
                raise LipDubError(f"The frame range {settings.frame_range} is empty for a {num_out}-frame output.")
            out_indices = out_indices[a:b]

        t0 = time.perf_counter()
        check(cancel)
        track_set = track_video(settings.video, progress=progress, cancel=cancel,
                                cache_dir=settings.track_cache_dir, detect_every=settings.detect_every)
        if not settings.driver:         # (with a performer video, once that is tracked too: follow_performer)
            release_tracker(info)
    except BaseException:
        checks.result()     # the damage first, as when the scans ran before everything
        raise
    timer.add("track", time.perf_counter() - t0, info.num_frames)
    video_damage, voice_damage, driver_damage, damage_warnings = checks.result()
    messages = damage_warnings + ([message] if message else [])
    if not track_set.tracks:
        raise NoFaceError(f"No face was found anywhere in {settings.video}: nothing to dub.")
    device = resolve_device(settings.device)
    speaker = None
    if settings.face_track is None:
        # no face chosen: in each shot with several faces, the one that speaks the clip's own sound
        from .sync.asd.speaker import default_face
        from .sync.lane_adapt import own_voice

        t0 = time.perf_counter()
        own = own_voice(settings.video, info) if len(track_set.tracks) > 1 else None
        speaker = default_face(settings.video, info, track_set, own, cache_dir=settings.speaker_cache_dir,
                               models_dir=settings.models_dir, device=device, progress=progress, cancel=cancel)
        timer.add("speaker", time.perf_counter() - t0, info.num_frames)
        track = speaker.track
        if speaker.message:
            messages.append("Face: " + speaker.message)
    else:
        track = track_set.get(settings.face_track)
    if edits.box_fixes:
        from .faces.fixes import apply_box_fixes

        track = apply_box_fixes(settings.video, info, track, edits.box_fixes, cancel=cancel)

    mel = audio_mod.melspectrogram(wav_out)
    vad = audio_mod.voice_activity(wav_out, fps, num_out)
    force_closed = np.zeros(num_out, bool)
    for o in edits.overrides:
        if o.kind == "mouth_closed":
            force_closed[max(0, o.start):min(num_out, o.end)] = True
    vad = vad & ~force_closed   # the classic engine closes the mouth where the voice is silent
    ctx = DubContext(
        video_path=str(settings.video), fps=fps, width=info.width, height=info.height,
        num_output_frames=num_out, source_index=np.asarray(schedule, np.int64), wav=wav_out, mel=mel,
        voice_active=vad, boxes=track.boxes, landmarks=track.landmarks, present=track.present,
        mask=settings.mask, pads=tuple(settings.pads), device=device,
        batch_size=settings.batch_size, teeth_frame=settings.teeth_frame, teeth_strength=settings.teeth_strength,
        force_closed=force_closed,
    )
    return PreparedClip(info=info, ctx=ctx, out_indices=out_indices, messages=messages,
                        track_set=track_set, track=track, edits=edits, speaker=speaker, video_damage=video_damage,
                        voice_damage=voice_damage, driver_damage=driver_damage, voice=voice)


def adapt_prepared(prep: PreparedClip, settings: DubSettings, progress: Optional[ProgressFn] = None,
                   cancel: Optional[CancelToken] = None, timer: Optional[StageTimer] = None, frames=None) -> None:
    """Learn the actor from the clip's own voice (core.adapt), when asked and the engine has a mouth model: sets
    `prep.adaptation`, `prep.scorer` and the context's mouth head. `frames`: see `core.adapt.adapt_clip`."""
    plugin = engines.get(settings.engine)
    if not settings.adapt or plugin.mouth_model is None:
        return
    from .adapt import adapt_clip
    from .mouth_shape import AudioToMouth
    from .sync.scoring import get_scorer

    t0 = time.perf_counter()
    if prep.preload is not None:        # not the same model twice: the preload's, when it is loading it
        prep.preload.wait()
    model = AudioToMouth.load(plugin.mouth_model(engines.options_for(plugin.name, settings.engine_options)))
    # the lane's scorer, as score_output will use it
    scorer = (prep.preload.scorer(settings.models_dir, prep.ctx.device) if prep.preload is not None else None) \
        or get_scorer("auto", models_dir=settings.models_dir, device=prep.ctx.device)
    prep.adaptation = adapt_clip(settings.video, prep.info, prep.track, model=model, scorer=scorer,
                                 cache_dir=settings.adapt_cache_dir, progress=progress, cancel=cancel, frames=frames)
    prep.general_scorer, prep.scorer = scorer, prep.adaptation.lane_scorer(scorer)  # (refit on this face: the actor's)
    (timer or StageTimer()).add("adapt", time.perf_counter() - t0, prep.info.num_frames)
    prep.messages.append(("Adaptation: " if prep.adaptation.adapted else "No adaptation: ")
                         + prep.adaptation.message)
    prep.ctx = replace(prep.ctx, mouth_head=prep.adaptation.head)


def follow_performer(prep: PreparedClip, settings: DubSettings, progress: Optional[ProgressFn] = None,
                     cancel: Optional[CancelToken] = None, timer: Optional[StageTimer] = None) -> None:
    """With a performer video (`settings.driver`) and an engine that follows mouth shapes (classic): the
    performance on the output frames (core.performer), into the context."""
    if not settings.driver:
        return
    plugin = engines.get(settings.engine)
    if plugin.mouth_model is None:
        release_tracker(prep.info)
        prep.messages.append(f"Performer: the {settings.engine} engine follows the voice, not the performer's mouth")
        return
    from .performer import motion_for_dub

    t0 = time.perf_counter()
    num_out = prep.ctx.num_output_frames
    try:
        performer = motion_for_dub(settings.driver, prep.voice, prep.ctx.fps, num_out, prep.edits.voice_offset,
                                   damage=prep.driver_damage, scorer=prep.general_scorer,
                                   models_dir=settings.models_dir, device=prep.ctx.device,
                                   track_cache_dir=settings.track_cache_dir, detect_every=settings.detect_every,
                                   messages=prep.messages, progress=progress, cancel=cancel)
    finally:
        release_tracker(prep.info)
    for o in prep.edits.overrides:        # the editor's "driven by voice" ranges: the performer is not followed there
        if o.kind == "voice_driven":
            performer.trusted[max(0, o.start):min(num_out, o.end)] = False
    (timer or StageTimer()).add("performer", time.perf_counter() - t0, num_out)
    prep.ctx = replace(prep.ctx, performer=performer)


def release_tracker(info) -> None:
    """Once a long clip (RELEASE_TRACKER_SECONDS) and its performer video are tracked: drop the face tracker's
    models (the adaptation and the render do not need them) and the tracking's freed transients, which would stay
    resident beside them."""
    from .faces.detect import release_default_backend

    if info.num_frames / max(float(info.fps), 1e-6) >= RELEASE_TRACKER_SECONDS:
        release_default_backend()
        release_free_memory()


def _in_thread(fn, *args, name: str):
    """`fn(*args)` started in a thread of its own: a Future (its result() re-raises fn's exception)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)


def check_inputs(settings: DubSettings, info, cancel: Optional[CancelToken] = None,
                 timer: Optional[StageTimer] = None):
    """(video damage, voice damage, performer damage, warnings): one decode pass over the video's picture, one over
    the voice's sound and, with a performer video (`settings.driver`), one over its picture (`core.media_damage`;
    None when there is none); a damaged input is refused (DamagedMediaError, exit code 4) unless
    `settings.allow_damaged`, and then each damaged file gets one warning line."""
    from .media_damage import check_damage, scan_damage

    def same(a, b) -> bool:
        return Path(a).resolve() == Path(b).resolve()

    t0 = time.perf_counter()
    video = scan_damage(settings.video, info, "video", cancel=cancel)
    voice_info = info if same(settings.audio, settings.video) else media.probe(settings.audio)
    voice = scan_damage(settings.audio, voice_info, "audio", cancel=cancel)
    driver = None
    if settings.driver:
        driver = video if same(settings.driver, settings.video) else \
            scan_damage(settings.driver, media.probe(settings.driver), "video", cancel=cancel)
    if timer is not None:
        timer.add("damage", time.perf_counter() - t0, info.num_frames)
    checked = [video, voice] + ([driver] if driver is not None and driver is not video else [])
    warnings = check_damage(checked, settings.allow_damaged)
    return video, voice, driver, warnings


def make_engines(settings: DubSettings) -> Dict[str, Engine]:
    """The main engine plus any engine an override range forces, each prechecked (not yet prepared)."""
    names = [settings.engine] + [o.engine for o in (settings.edits or Edits()).overrides
                                 if o.kind == "engine" and o.engine]
    engines: Dict[str, Engine] = {}
    try:
        for name in dict.fromkeys(names):
            eng = make_engine(settings, name)
            eng.precheck()
            engines[name] = eng
    except BaseException:
        for eng in engines.values():
            eng.close()
        raise
    return engines


def prepare_engines(settings: DubSettings, prep: PreparedClip, progress=None, cancel=None,
                    timer: Optional[StageTimer] = None) -> Dict[str, Engine]:
    """Adapt to the actor (`adapt_prepared`) and prepare the engines on the clip. What an engine can do without the
    adapted mouth head (`Engine.prepare_early`: the classic engine's texture library) runs in a thread meanwhile: the
    adaptation's networks and the library's decoding pass share the two cores; what needs the adaptation but not the
    early work (`Engine.prepare_adapted`: the classic engine's mouth targets) runs once the adaptation is done, while
    the early work may still be running. The first engine that reads the whole video early
    (`Engine.shares_decode`) is handed the frames the adaptation's scoring pass decodes (core.streams.FrameShare)
    instead of decoding them a second time."""
    import threading

    from .errors import CancelledError
    from .streams import FrameShare

    timer = timer or StageTimer()
    engines = make_engines(settings)
    early_ctx = prep.ctx
    stop = CancelToken()          # the early work stops when the job is cancelled or the adaptation fails
    failure: list = []
    reader = next((e for e in engines.values() if getattr(e, "shares_decode", False)), None)
    share = FrameShare() if reader is not None else None

    def early() -> None:
        try:
            for eng in engines.values():
                if eng is reader:
                    eng.prepare_early(early_ctx, progress, _Either(cancel, stop), frames=share)
                else:
                    eng.prepare_early(early_ctx, progress, _Either(cancel, stop))
        except CancelledError:
            pass
        except BaseException as e:   # raised in the job's thread, after the adaptation
            failure.append(e)
        finally:
            if share is not None:    # a reader that failed before reading must not leave the scoring pass waiting
                share.close()

    worker = threading.Thread(target=early, name="lipdub-prepare-early", daemon=True)
    worker.start()
    try:
        t0 = None
        try:
            adapt_prepared(prep, settings, progress, cancel, timer, frames=share)
            if share is not None:       # no scoring pass (no adaptation, a cached one) or it is over
                share.done()
            follow_performer(prep, settings, progress, cancel, timer)
            t0 = time.perf_counter()        # "prepare": what is left once the adaptation is done
            check(cancel)
            if prep.preload is not None:    # the engines load the mouth model the preload may be loading
                prep.preload.wait()
            for eng in engines.values():    # what needs the adaptation, while the early work may still run
                eng.prepare_adapted(prep.ctx, progress, cancel)
        except BaseException:
            stop.cancel()
            raise
        finally:
            t0 = t0 or time.perf_counter()
            if share is not None:
                share.done()
            worker.join()
        if failure:
            raise failure[0]
        check(cancel)
        for eng in engines.values():
            eng.prepare(prep.ctx, progress, cancel)
        timer.add("prepare", time.perf_counter() - t0, 0)
    except BaseException:
        for eng in engines.values():
            eng.close()
        raise
    return engines


class _Either:
    """A cancel token that fires when either of two does."""

    def __init__(self, a: Optional[CancelToken], b: CancelToken):
        self.a, self.b = a, b

    @property
    def cancelled(self) -> bool:
        return (self.a is not None and self.a.cancelled) or self.b.cancelled

    def raise_if_cancelled(self) -> None:
        if self.a is not None:
            self.a.raise_if_cancelled()
        self.b.raise_if_cancelled()


def _teeth_proxy(prep: PreparedClip, engine: Engine):
    """The engine's proxy when it built one (classic), else one from the chosen/suggested frame."""
    proxy = getattr(engine, "teeth_proxy", None)
    if proxy is not None:
        return proxy
    ctx = prep.ctx
    idx = ctx.teeth_frame
    if idx is None:
        picks = suggest_teeth_frames(ctx.video_path, ctx.landmarks, ctx.present, k=1)
        if not picks:
            return None
        idx = picks[0]
    if not (0 <= idx < len(ctx.present)) or not ctx.present[idx]:
        return None
    return proxy_from_frame(ctx.video_path, prep.info, ctx, int(idx))


@dataclass
class PreparedDub:
    """A clip prepared for rendering: the whole-clip state (tracking, voice, engines' retrieval/teeth choices)
    that every output frame depends on. Computed once; `renderer` then renders any range of output frames
    (`core.shots` ships it to parallel segment renders)."""

    prep: PreparedClip
    engines: Dict[str, Engine]
    renderer: "FrameRenderer"

    def close(self) -> None:
        for eng in self.engines.values():
            eng.close()


def prepare_dub(settings: DubSettings, progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
                timer: Optional[StageTimer] = None, score: bool = False) -> PreparedDub:
    """`score`: the result will be scored (`dub_result`), so its scorer is loaded early too."""
    timer = timer or StageTimer()
    limit_arenas()                     # before the job's threads start (core.heap)
    make_engine(settings).precheck()   # fail fast (missing weights) before tracking
    preload = start_preload(settings, score)
    prep = prepare_unadapted(settings, progress, cancel, timer)
    prep.preload = preload
    engines = prepare_engines(settings, prep, progress, cancel, timer)
    renderer = FrameRenderer(engines, settings.engine, prep.ctx, prep.edits,
                             _teeth_proxy(prep, engines[settings.engine]),
                             settings.teeth_strength, settings.video, prep.info)
    release_free_memory()       # the analysis' transients, before the render holds its frames for the whole clip
    return PreparedDub(prep, engines, renderer)


def start_preload(settings: DubSettings, score: bool = False):
    """A `core.preload.Preload` of what this job will load (torch, the engine's mouth model, the lane's scorer when
    it adapts or scores), loading in a thread while the job probes, scans and tracks."""
    from .preload import Preload

    plugin = engines.get(settings.engine)
    mouth = plugin.mouth_model is not None
    return Preload(device=settings.device, models_dir=settings.models_dir, mouth=mouth,
                   mouth_model=plugin.mouth_model(engines.options_for(plugin.name, settings.engine_options))
                   if mouth else None, scorer=(settings.adapt and mouth) or score)


def begin_dub(settings: DubSettings, progress: Optional[ProgressFn] = None,
              cancel: Optional[CancelToken] = None, score: bool = False) -> Tuple[PreparedDub, StageTimer, float]:
    """The start of a job that writes `settings.output`: (prepared clip, its stage timer, start time)."""
    if not settings.output:
        raise OutputError("No output path was given.")
    t_all = time.perf_counter()
    timer = StageTimer()
    return prepare_dub(settings, progress, cancel, timer, score=score), timer, t_all


def run_dub(settings: DubSettings, progress: Optional[ProgressFn] = None,
            cancel: Optional[CancelToken] = None, score: bool = False) -> DubResult:
    dub, timer, t_all = begin_dub(settings, progress, cancel, score=score)
    prep = dub.prep
    ctx, out_idx = prep.ctx, prep.out_indices
    report_voice = ReportVoice(settings, prep, out_idx) if score else None   # computed while the output renders
    try:
        dubbed = render_file(settings.output, dub.renderer, out_idx, audio=voice_for(ctx, out_idx), crf=settings.crf,
                             preset=settings.preset, batch_size=settings.batch_size, timer=timer, progress=progress,
                             cancel=cancel)
    finally:
        dub.close()
    del dub                 # the engines' state (the texture library) ...
    release_free_memory()   # ... and the render's frames go back before the report (or the caller's next job)
    return dub_result(settings, prep, out_idx, dubbed, timer, t_all, score, progress, cancel,
                      report_voice=report_voice)


def dub_result(settings: DubSettings, prep: PreparedClip, out_idx: np.ndarray, dubbed: int, timer: StageTimer,
               t_all: float, score: bool, progress: Optional[ProgressFn] = None,
               cancel: Optional[CancelToken] = None, report_voice: Optional["ReportVoice"] = None) -> DubResult:
    """The DubResult of a written output, scored against its voice when asked."""
    total = len(out_idx)
    result = DubResult(output=str(settings.output), num_frames=total, fps=prep.ctx.fps, messages=prep.messages,
                       adaptation=prep.adaptation, damaged_frames=prep.damaged_frames(out_idx),
                       damage=list(prep.damage_reports()),
                       timings=dict(timer.seconds), stage_frames=dict(timer.frames), faces_found=dubbed,
                       performer_offset=None if prep.ctx.performer is None else int(prep.ctx.performer.offset_frames))
    if score:
        # The video is already written: a scorer problem must not lose it, only the report.
        t0 = time.perf_counter()
        try:
            result.report = score_output(settings.output, voice_for(prep.ctx, out_idx), prep, out_idx, settings,
                                         progress, cancel, voice=report_voice)
        except ModelError as exc:
            result.messages.append(f"Sync report skipped: {exc}")
        timer.add("score", time.perf_counter() - t0, total)
        result.timings = dict(timer.seconds)
    result.timings["total"] = time.perf_counter() - t_all
    return result


def report_scorer(prep: PreparedClip, settings: DubSettings):
    """The scorer of the result's sync report: the adaptation's (refit on this face), else the preloaded one, else
    the lane's scorer loaded now."""
    from .sync.scoring import get_scorer

    return prep.scorer or (prep.preload.scorer(settings.models_dir, prep.ctx.device) if prep.preload else None) \
        or get_scorer("auto", models_dir=settings.models_dir, device=prep.ctx.device)


class ReportVoice:
    """The voice side of the result's sync report (`core.sync.scoring.voice_windows` of the output's voice, by the
    report's scorer), computed in a thread while the output renders: it needs only the voice, the render is
    numpy/cv2 and the networks release the GIL. A failure leaves it to `score_output` (which reports it as before)."""

    def __init__(self, settings: DubSettings, prep: PreparedClip, out_idx: np.ndarray):
        import threading

        self.scorer = self.value = None
        try:
            self.scorer = report_scorer(prep, settings)
        except Exception as exc:     # a missing scorer model: score_output says so after the render
            log.debug("no early report scorer (%s)", exc)
            self._thread = None
            return
        wav, fps = voice_for(prep.ctx, out_idx), prep.ctx.fps
        self._thread = threading.Thread(target=self._run, args=(wav, fps), name="lipdub-report-voice", daemon=True)
        self._thread.start()

    def _run(self, wav: np.ndarray, fps: float) -> None:
        from .sync.scoring import voice_windows

        try:
            self.value = voice_windows(wav, self.scorer, fps)
        except Exception as exc:     # computed again by score_clip, which raises it in the job's thread
            log.debug("the report's voice features failed early (%s)", exc)

    def result(self):
        """(scorer frames, audio features) or None."""
        if self._thread is not None:
            self._thread.join()
        return self.value


def score_output(video: str, wav: np.ndarray, prep: PreparedClip, out_idx: np.ndarray,
                 settings: DubSettings, progress=None, cancel=None, voice: Optional[ReportVoice] = None):
    """Sync report of a rendered output against its voice. Dubbing pastes into the same geometry, so the
    source track (remapped through the schedule) locates the face in the output without re-detecting.
    `voice`: the report's scorer and voice features, computed while the output rendered."""
    from .sync.scoring import score_clip

    scorer = voice.scorer if voice is not None and voice.scorer is not None else report_scorer(prep, settings)
    track = remap_track(prep.track, prep.ctx.source_index[out_idx])
    threshold = prep.adaptation.low_threshold if prep.adaptation is not None else None
    judgeable = prep.adaptation.judgeable if prep.adaptation is not None else True
    return score_clip(video, wav, track, scorer, progress=progress, cancel=cancel, fps=prep.ctx.fps,
                      low_threshold=threshold, judgeable=judgeable,
                      voice=voice.result() if voice is not None and voice.scorer is scorer else None)


class DubSession:
    """A clip prepared once (probe, track, voice, engine.prepare) that renders any output frame on demand.

    Used by the GUI preview: `render_frame(i)` returns (original, dubbed) for output frame i.
    """

    def __init__(self, settings: DubSettings, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelToken] = None):
        self.settings = replace(settings, frame_range=None)
        dub = prepare_dub(self.settings, progress, cancel)
        self.prep, self.engines, self.renderer = dub.prep, dub.engines, dub.renderer
        self._reader = media.FrameReader(self.settings.video)

    def set_edits(self, edits: Edits) -> None:
        """Apply changed corrections that need no re-preparation (mask keyframes, keep-original/engine ranges,
        teeth shots). Voice offset, box fixes, mouth-closed and driven-by-voice ranges change the prepared clip: make
        a new session."""
        self.prep.edits = edits
        self.renderer.edits = edits
        self.renderer._shot_proxies.clear()

    @property
    def num_frames(self) -> int:
        return self.prep.ctx.num_output_frames

    def warm(self, out_indices: Sequence[int], progress: Optional[ProgressFn] = None,
             cancel: Optional[CancelToken] = None) -> None:
        """Let the engines precompute per-frame work for frames that will be rendered again and again."""
        for eng in self.engines.values():
            eng.warm(out_indices, progress, cancel)

    @property
    def ctx(self) -> DubContext:
        return self.prep.ctx

    def render_frame(self, out_index: int) -> Tuple[np.ndarray, np.ndarray]:
        if not 0 <= out_index < self.num_frames:
            raise LipDubError(f"Frame {out_index} is outside the output (0..{self.num_frames - 1}).")
        src = int(self.prep.ctx.source_index[out_index])
        original = self._reader.read(src)
        out, _ = self.renderer.render([original], [out_index], StageTimer())
        return original, out[0]

    def close(self) -> None:
        for eng in self.engines.values():
            eng.close()
        close = getattr(self._reader, "close", None)
        if close:
            close()
