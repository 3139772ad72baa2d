"""The Wav2Lip generator as an engine: crop the tracked face, mask its lower half, generate from the mel window.

Follows Wav2Lip's inference recipe (96x96 crop with pads, lower half zeroed + the unmasked frame as reference,
BGR/255, one 80x16 mel chunk per video frame) but takes boxes and landmarks from our tracker and hands back a
patch that the shared compositor blends with a soft landmark mask instead of pasting a hard rectangle.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import cv2
import numpy as np

from ... import audio as audio_mod
from ...device import resolve_device
from ...errors import ModelMissingError
from ...faces.geometry import inter_ocular, mouth_opening
from ...models.registry import resolve_model
from ...progress import CancelToken, ProgressFn
from ..base import DubContext, Engine, RenderedPatch
from .options import Wav2LipOptions

log = logging.getLogger(__name__)

FACE_SIZE = 96  # the generator's input/output resolution
SILENT_MEL = -4.0  # Wav2Lip's normalised mel floor: what digital silence looks like to the generator


def padded_box(box: np.ndarray, pads, width: int, height: int) -> Optional[tuple]:
    """Wav2Lip's crop: the face box grown by pads (top, bottom, left, right) and clipped to the frame."""
    if box is None or not np.all(np.isfinite(box)):
        return None
    top, bottom, left, right = pads
    x0 = int(max(0, np.floor(box[0]) - left))
    y0 = int(max(0, np.floor(box[1]) - top))
    x1 = int(min(width, np.ceil(box[2]) + right))
    y1 = int(min(height, np.ceil(box[3]) + bottom))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    return x0, y0, x1, y1


def generator_input(crops: np.ndarray) -> np.ndarray:
    """(B,96,96,3) uint8 BGR crops -> (B,6,96,96) float32: masked frame (lower half zeroed) + reference."""
    x = crops.astype(np.float32) / 255.0
    masked = x.copy()
    masked[:, FACE_SIZE // 2:] = 0.0
    return np.concatenate([masked, x], axis=3).transpose(0, 3, 1, 2).copy()


def mouth_opening_iod(landmarks: np.ndarray) -> float:
    iod = float(inter_ocular(landmarks))
    return float(mouth_opening(landmarks)) / iod if iod > 0 else 0.0


class Wav2LipEngine(Engine):
    name = "wav2lip"

    def __init__(self, options: Optional[Wav2LipOptions] = None, *, models_dir: Optional[str] = None,
                 device: str = "cpu"):
        self.options = options or Wav2LipOptions()
        self.models_dir = models_dir
        self.device = device
        self.model = None
        self.ctx: Optional[DubContext] = None
        self.chunks: Optional[np.ndarray] = None

    def _resolve(self):
        return resolve_model(self.options.checkpoint or "wav2lip", models_dir=self.models_dir)

    def precheck(self) -> None:
        self._path = self._resolve()  # ModelMissingError / ModelCorruptError with a clear message

    def prepare(self, ctx: DubContext, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None) -> None:
        import torch

        from ...models.load import load_wav2lip

        self.ctx = ctx
        device = resolve_device(ctx.device or self.device)
        self.device = device
        self.model = load_wav2lip(str(getattr(self, "_path", None) or self._resolve()), device=device)
        self.half = device.startswith("cuda")  # fp16 on CUDA; fp32 on CPU (bf16 is fast only on some CPUs)
        if self.half:
            self.model = self.model.half()
        self.chunks = audio_mod.mel_chunks(ctx.mel, ctx.fps, ctx.num_output_frames)

    def render(self, frames: Sequence[np.ndarray], out_indices: Sequence[int]) -> list:
        import torch

        if self.model is None:
            raise ModelMissingError("The Wav2Lip engine was not prepared (no generator loaded).")
        ctx = self.ctx
        patches: list = [None] * len(frames)
        jobs = []
        for k, (frame, o) in enumerate(zip(frames, out_indices)):
            s = int(ctx.source_index[o])
            if not ctx.present[s]:
                continue
            box = padded_box(ctx.boxes[s], ctx.pads, frame.shape[1], frame.shape[0])
            if box is None:
                continue
            x0, y0, x1, y1 = box
            crop = cv2.resize(frame[y0:y1, x0:x1], (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
            jobs.append((k, o, s, box, crop))
        if not jobs:
            return patches
        for start in range(0, len(jobs), max(1, ctx.batch_size)):
            part = jobs[start:start + ctx.batch_size]
            faces = torch.from_numpy(generator_input(np.stack([j[4] for j in part])))
            mels = torch.from_numpy(np.stack([self._chunk(j[1]) for j in part])[:, None].astype(np.float32))
            dtype = torch.float16 if self.half else torch.float32
            with torch.no_grad():
                pred = self.model(mels.to(self.device, dtype), faces.to(self.device, dtype))
            pred = (pred.float().cpu().numpy().transpose(0, 2, 3, 1) * 255.0).clip(0, 255).astype(np.uint8)
            for (k, o, s, box, _crop), img in zip(part, pred):
                x0, y0, x1, y1 = box
                image = cv2.resize(img, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
                lm = ctx.landmarks[s]
                patches[k] = RenderedPatch(box=box, image=image, mask_landmarks=lm,
                                           mouth_open=mouth_opening_iod(lm))
        return patches

    def _chunk(self, out_index: int) -> np.ndarray:
        """The mel window of an output frame; the silence floor where the editor forced a closed mouth."""
        closed = self.ctx.force_closed
        if closed is not None and out_index < len(closed) and closed[out_index]:
            return np.full_like(self.chunks[out_index], SILENT_MEL)
        return self.chunks[out_index]

    def close(self) -> None:
        self.model = None
