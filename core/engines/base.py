"""One interface for every lip-sync engine (classic retrieval engine, Wav2Lip generator).

Life cycle, driven by `core.pipeline`:
    engine = core.engines.registry.create(name, engine_options, models_dir=..., device=...)
    engine.precheck()                 # cheap: models present? raises ModelMissingError with a clear message
    engine.prepare_early(ctx, progress, cancel)   # optional: what needs no mouth head/performer (during adaptation)
    engine.prepare(ctx, progress, cancel)   # per clip: audio features, mouth shapes, texture library...
    for each batch of output frames:
        patches = engine.render(frames, out_indices)   # one RenderedPatch (or None) per frame
    engine.close()
The pipeline then composites each patch into its frame with `core.compose` (shared soft mask, colour match)
and applies the teeth proxy, so both engines share masking, compositing, teeth and export.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..progress import CancelToken, ProgressFn


@dataclass
class MaskSettings:
    """How the generated lower face is blended back. Units are fractions of the inter-ocular distance (IOD)
    so the same settings work at any resolution."""

    dilation: float = 0.08   # grow the mask outward by this * IOD
    feather: float = 0.15    # Gaussian feather width, * IOD
    extent_up: float = 0.0   # extra reach up the cheeks (toward the nose), * IOD
    extent_down: float = 0.0 # extra reach below the chin, * IOD
    color_match: bool = True


@dataclass
class DubContext:
    """Everything an engine may need about the clip being dubbed, computed once by the pipeline."""

    video_path: str
    fps: float
    width: int
    height: int
    num_output_frames: int
    source_index: np.ndarray        # (N_out,) int: which source video frame each output frame shows
    wav: np.ndarray                 # voice, float32 mono 16 kHz, already fitted to the output length
    mel: np.ndarray                 # (80, T) Wav2Lip mel of `wav`
    voice_active: np.ndarray        # (N_out,) bool
    boxes: np.ndarray               # (N_src, 4) chosen face track, NaN where absent (source frame indices)
    landmarks: np.ndarray           # (N_src, 68, 2)
    present: np.ndarray             # (N_src,) bool
    mask: MaskSettings = field(default_factory=MaskSettings)
    pads: tuple = (0, 10, 0, 0)     # top, bottom, left, right padding of the face crop (Wav2Lip convention)
    device: str = "cpu"
    batch_size: int = 16
    mouth_head: Optional[object] = None  # core.mouth_shape.MouthHead adapted to this actor (core.adapt), or None
    teeth_frame: Optional[int] = None         # source frame for the teeth proxy (None: suggested)
    teeth_strength: float = 1.0
    force_closed: Optional[np.ndarray] = None  # (N_out,) bool: the editor forced a closed mouth here
    performer: Optional[object] = None         # core.performer.PerformerMotion: the voice performer's mouth, or None


@dataclass
class RenderedPatch:
    """An engine's output for one frame: an image covering `box` (frame coordinates, ints, x0,y0,x1,y1)
    and the landmarks of the *target* mouth geometry from which the blend mask is built."""

    box: tuple
    image: np.ndarray               # uint8 (y1-y0, x1-x0, 3) BGR
    mask_landmarks: np.ndarray      # (68, 2) float32, frame coordinates
    mouth_open: float = 0.0         # inner-lip opening of the target shape, in IOD units (teeth proxy uses it)


class Engine(ABC):
    """Constructed by its plug-in (`core.engines.registry`) with its typed options."""

    name: str = "engine"
    # True when `render` computes each frame from that frame and the prepared state alone, reading (never changing)
    # the engine's state: the same frame whichever thread renders it and whatever it is batched with. The export
    # then renders a batch's halves in two threads. (Not a network's batch: its results may depend on the batch.)
    frames_independent: bool = False
    # True when `prepare_early` reads every frame of the video from the start and accepts `frames`: the pipeline then
    # hands it the frames the adaptation's scoring pass decodes (one decoding pass instead of two)
    shares_decode: bool = False

    def precheck(self) -> None:
        """Raise a `core.errors.LipDubError` if the engine cannot run (missing weights...)."""

    def prepare_early(self, ctx: DubContext, progress: Optional[ProgressFn] = None,
                      cancel: Optional[CancelToken] = None, frames=None) -> None:
        """Optionally do the part of `prepare` that needs neither `ctx.mouth_head` nor `ctx.performer` (the texture
        library): the pipeline runs it in a thread while the per-clip adaptation and the performer run, then calls
        `prepare` with the same context plus those. `prepare` must work whether or not this ran. `frames` (only
        for an engine whose `shares_decode` is True): a core.streams.FrameShare to read the video's frames from."""

    def prepare_adapted(self, ctx: DubContext, progress: Optional[ProgressFn] = None,
                        cancel: Optional[CancelToken] = None) -> None:
        """Optionally do the part of `prepare` that needs the adapted context (`ctx.mouth_head`, `ctx.performer`) but
        not `prepare_early`'s results (the mouth targets): the pipeline runs it in the job's thread while
        `prepare_early` may still be running, then calls `prepare` with the same context (the same object).
        `prepare` must work whether or not this ran."""

    @abstractmethod
    def prepare(self, ctx: DubContext, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None) -> None:
        ...

    @abstractmethod
    def render(self, frames: Sequence[np.ndarray], out_indices: Sequence[int]) -> list:
        """frames[k] is the source frame shown at output index out_indices[k].
        Return a list of `RenderedPatch | None` (None: leave the frame untouched, e.g. no face)."""

    def warm(self, out_indices: Sequence[int], progress: Optional[ProgressFn] = None,
             cancel: Optional[CancelToken] = None) -> None:
        """Optionally precompute what rendering `out_indices` needs, for frames rendered again and again
        (live playback in the window). Rendering must give the same frames with or without it, up to what a
        compact cache costs (the classic engine keeps warmed textures as quality-95 JPEG: live frames may differ
        from the export by a few grey levels inside the mouth)."""

    def close(self) -> None:
        pass
