"""One batch of output frames: the engine's patches composited onto the frames, the teeth proxy applied,
the editor's corrections honoured. Shared by export and preview."""
from __future__ import annotations

import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .. import media
from ..edits import Edits
from ..engines.base import DubContext, Engine
from ..engines.teeth import TeethProxy, apply_teeth
from ..errors import LipDubError
from .stages import StageTimer


class FrameRenderer:
    """Engine output -> composite -> teeth proxy for a batch of frames, honouring the editor's corrections
    (keep-original and forced-engine ranges, keyframed mask, per-shot teeth proxy). Shared by export and preview."""

    def __init__(self, engines: Dict[str, Engine], main: str, ctx: DubContext, edits: Edits, teeth_proxy=None,
                 teeth_strength: float = 1.0, video_path: Optional[str] = None, info=None):
        self.engines = engines
        self.main = main
        self.ctx = ctx
        self.edits = edits
        self.teeth_proxy = teeth_proxy
        self.teeth_strength = teeth_strength
        self.video_path = video_path
        self.info = info
        self._shot_proxies: dict = {}

    def frames_independent(self) -> bool:
        """Whether every engine renders each frame on its own (`Engine.frames_independent`): a batch may then be
        split between threads (`render_file`)."""
        return all(getattr(e, "frames_independent", False) for e in self.engines.values())

    def engine_for(self, out_index: int) -> Optional[str]:
        """Engine name for an output frame, or None to keep the original frame."""
        ov = self.edits.override_at(out_index)
        if ov is None or ov.kind == "mouth_closed":
            return self.main
        if ov.kind == "keep_original":
            return None
        return ov.engine if ov.engine in self.engines else self.main

    def _proxy(self, out_index: int):
        shot = self.edits.teeth_at(out_index)
        if shot is None:
            return self.teeth_proxy, self.teeth_strength
        if shot.frame not in self._shot_proxies:
            self._shot_proxies[shot.frame] = proxy_from_frame(self.video_path, self.info, self.ctx, shot.frame)
        return self._shot_proxies[shot.frame], shot.strength

    def render(self, frames: Sequence[np.ndarray], out_indices: Sequence[int], timer: StageTimer,
               reuse_frames: bool = False) -> Tuple[list, int]:
        """(output frames, how many were dubbed). `reuse_frames`: the caller hands over `frames` (each a distinct
        array used nowhere else): a dubbed frame is composited into its own source frame instead of a copy."""
        from ..compose import composite

        t0 = time.perf_counter()
        patches: list = [None] * len(frames)
        groups: Dict[str, list] = {}
        for k, o in enumerate(out_indices):
            name = self.engine_for(int(o))
            if name is not None:
                groups.setdefault(name, []).append(k)
        for name, ks in groups.items():
            res = self.engines[name].render([frames[k] for k in ks], [out_indices[k] for k in ks])
            for k, p in zip(ks, res):
                patches[k] = p
        timer.add("generate", time.perf_counter() - t0, len(frames))
        t0 = time.perf_counter()
        out, dubbed = [], 0
        for frame, o, patch in zip(frames, out_indices, patches):
            if patch is None:
                out.append(frame)
                continue
            dubbed += 1
            mask, polygons = self.edits.mask_at(int(o), self.ctx.mask)
            result = composite(frame, patch, mask, polygons, inplace=reuse_frames and frame.flags.writeable)
            proxy, strength = self._proxy(int(o))
            if proxy is not None and strength > 0:
                # (composite's result is a new frame of ours: changed in place, not copied again)
                result = apply_teeth(result, patch.mask_landmarks, proxy, strength, inplace=True)
            out.append(result)
        timer.add("composite", time.perf_counter() - t0, len(frames))
        return out, dubbed


def proxy_from_frame(video_path, info, ctx: DubContext, idx: int):
    if not (0 <= idx < len(ctx.present)) or not ctx.present[idx]:
        raise LipDubError(f"The teeth-proxy frame {idx} has no tracked face: pick a frame where the face is found.")
    frame = media.read_frame(video_path, int(idx), info)
    return TeethProxy.from_frame(frame, ctx.landmarks[idx], frame_index=int(idx))
