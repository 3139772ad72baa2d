"""syncnet_python's scorer (`syncnet_v2.model`): the reference LSE-D / LSE-C of the lip-sync literature.

Pipeline as in syncnet_python (`run_pipeline.py` crop + `SyncNetInstance.evaluate`):
- audio: `python_speech_features.mfcc` (13 coefficients, 25 ms windows every 10 ms, 26 filters, nfft 512,
  preemphasis 0.97, lifter 22, energy appended) on the 16 kHz signal at int16 scale (our float wav * 32768),
  transposed to (13, T); the audio window of video frame v is MFCC columns 4v .. 4v+20 (0.2 s) at 25 fps;
- video: 25 fps, 224x224 face crops, BGR, raw 0..255 floats (no normalisation), 5 frames per window;
- crop: syncnet_python's, around the tracked face box: with s = half the box's larger side, a square of side
  2.8 s from s above the box centre to 1.8 s below it (crop_scale 0.4: the mouth and chin sit in the lower half),
  pixels outside the frame filled with grey 110, resized to 224x224 (bilinear).
  syncnet_python gets its boxes from S3FD; dlib's HOG boxes are tighter, so the box is first scaled by
  `box_scale` (1.2 by default: an approximation, not validated against the released weights here).
- like `evaluate`, the last window is dropped (`num_windows = frames - 5`).

Windows are batched as (B, 3, 5, 224, 224). (Feeding a whole (1, 3, L, 224, 224) sequence gives the same features,
since the first conv is the only temporal kernel, but measured 1.5x slower on CPU; so is an equivalent Conv2d net.)
"""
from __future__ import annotations

import numpy as np

from ...audio import SAMPLE_RATE
from ...models.registry import ModelSpec
from .base import SyncScorer
from .registry import ScorerPlugin, network_loader

MFCC_PER_FRAME = 4        # 100 MFCC frames/s at 25 video frames/s
MFCC_WINDOW = 20          # 0.2 s
CROP_SIZE = 224
CROP_SCALE = 0.4
PAD_VALUE = 110


def mfcc(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(13, T) float64 MFCC exactly as SyncNetInstance (input float in [-1, 1]; rescaled to int16 units)."""
    import python_speech_features

    signal = np.asarray(wav, np.float64).reshape(-1) * 32768.0
    return np.ascontiguousarray(python_speech_features.mfcc(signal, sample_rate).T)


def syncnet_crop(frame: np.ndarray, box: np.ndarray, box_scale: float = 1.2, size: int = CROP_SIZE) -> np.ndarray:
    """syncnet_python's face crop around `box` (x0, y0, x1, y1) -> (size, size, 3) uint8."""
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    bs = max(x1 - x0, y1 - y0) / 2.0 * box_scale
    bs = max(bs, 2.0)
    top, bottom = int(cy - bs), int(cy + bs * (1 + 2 * CROP_SCALE))
    left, right = int(cx - bs * (1 + CROP_SCALE)), int(cx + bs * (1 + CROP_SCALE))
    h, w = frame.shape[:2]
    pad_t, pad_l = max(0, -top), max(0, -left)
    pad_b, pad_r = max(0, bottom - h), max(0, right - w)
    sub = frame[max(0, top):min(h, bottom), max(0, left):min(w, right)]
    if pad_t or pad_l or pad_b or pad_r:
        sub = cv2.copyMakeBorder(sub, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_CONSTANT,
                                 value=(PAD_VALUE, PAD_VALUE, PAD_VALUE))
    return cv2.resize(sub, (size, size), interpolation=cv2.INTER_LINEAR)


class SyncNetV2Scorer(SyncScorer):
    name = "syncnet_v2"
    window = 5
    native_fps = 25.0
    batch_size = 16

    def __init__(self, model, device: str = "cpu", box_scale: float = 1.2):
        self.model = model.eval()
        self.device = device
        self.box_scale = box_scale

    def face_input(self, frame, box, landmarks) -> np.ndarray:
        return syncnet_crop(frame, box, self.box_scale)

    def video_features(self, face_inputs: np.ndarray) -> np.ndarray:
        import torch

        x = np.asarray(face_inputs)                      # (L, 224, 224, 3) BGR uint8
        n = len(x) - self.window + 1
        if n < 1:
            return np.zeros((0, 1024), np.float32)
        # (n, 224, 224, 3, 5) view -> (n, 3, 5, 224, 224) float32 copy
        win = np.lib.stride_tricks.sliding_window_view(x, self.window, axis=0)
        out = []
        with torch.no_grad():
            for s in range(0, n, self.batch_size):
                batch = np.ascontiguousarray(win[s:s + self.batch_size].transpose(0, 3, 4, 1, 2), dtype=np.float32)
                out.append(self.model.forward_lip(torch.from_numpy(batch).to(self.device)).float().cpu())
        return torch.cat(out).numpy()

    def audio_windows(self, wav: np.ndarray, fps: float, num_frames: int) -> np.ndarray:
        """(num_frames - 4, 1, 13, 20) float32 MFCC windows (right-padded by edge values if the audio runs short)."""
        cc = mfcc(wav).astype(np.float32)
        n = max(0, num_frames - self.window + 1)
        starts = np.floor(np.arange(n) * (100.0 / fps) + 1e-6).astype(np.int64)  # 4v at 25 fps
        need = int(starts[-1]) + MFCC_WINDOW if n else 0
        if cc.shape[1] < need:
            cc = np.pad(cc, ((0, 0), (0, need - cc.shape[1])), mode="edge")
        out = np.stack([cc[:, s:s + MFCC_WINDOW] for s in starts]) if n else np.zeros((0, 13, MFCC_WINDOW), np.float32)
        return out[:, None]

    def audio_features(self, wav: np.ndarray, fps: float, num_frames: int) -> np.ndarray:
        import torch

        windows = self.audio_windows(wav, fps, num_frames)
        feats = []
        with torch.no_grad():
            for s in range(0, len(windows), 256):
                feats.append(self.model.forward_aud(torch.from_numpy(windows[s:s + 256]).to(self.device)).float().cpu())
        return torch.cat(feats).numpy() if feats else np.zeros((0, 1024), np.float32)

    def num_windows(self, num_frames: int) -> int:
        return max(0, num_frames - self.window)  # syncnet_python: lastframe = min_length - 5


MODEL = ModelSpec("syncnet_v2", "syncnet_v2.model", "syncnet_v2", None,
                  "syncnet_python's download_model.sh (https://github.com/joonson/syncnet_python): "
                  "http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
                  "syncnet_python (VGG, University of Oxford; code MIT licence): check the authors' terms for the "
                  "weights", False, title="SyncNet v2 (syncnet_python, the LSE-D/LSE-C reference)",
                  min_bytes=13_631_616 * 4)

PLUGIN = ScorerPlugin(name="syncnet_v2", model=MODEL, layouts=("syncnet_v2",),
                      load=network_loader(SyncNetV2Scorer, "syncnet_v2"), auto_rank=0)   # the LSE reference
