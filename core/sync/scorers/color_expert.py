"""Wav2Lip's lip-sync expert (`lipsync_expert.pth`, SyncNet_color) as a scorer.

As in Wav2Lip's `color_syncnet_train.py`:
- video: 25 fps, face crops resized to 96x96, BGR / 255, lower half kept (rows 48:96); 5 consecutive frames stacked
  frame-major into 15 channels -> (15, 48, 96);
- audio: Wav2Lip's mel spectrogram (`core.audio.melspectrogram`); the window of the 5 frames starting at frame i is the
  16 mel columns (0.2 s) from `int(80 * i / fps)` (`core.audio.mel_chunks`: training's crop_audio_window, with the
  inference loop's clamp at the end);
- both embeddings are L2-normalised (512-d), so distances lie in [0, 2] (d^2 = 2 - 2 cos): LSE-D / LSE-C from this
  scorer are on a different scale from syncnet_v2's and must not be compared with published numbers.
Crop: the tracked box scaled by `box_scale` about its centre (dlib's boxes are tighter than Wav2Lip's S3FD boxes;
1.2 is an approximation, not validated against the released weights here), clamped to the frame.
"""
from __future__ import annotations

import numpy as np

from ...engines.wav2lip import WAV2LIP_LICENCE, WAV2LIP_README
from ...models.registry import ModelSpec
from .base import SyncScorer
from .registry import ScorerPlugin, network_loader

FACE_SIZE = 96


def expert_crop(frame: np.ndarray, box: np.ndarray, box_scale: float = 1.2) -> np.ndarray:
    """Lower half (48, 96, 3) uint8 of the 96x96 face crop around `box`."""
    import cv2

    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    hw, hh = (x1 - x0) / 2.0 * box_scale, (y1 - y0) / 2.0 * box_scale
    l, r = int(max(0, round(cx - hw))), int(min(w, round(cx + hw)))
    t, b = int(max(0, round(cy - hh))), int(min(h, round(cy + hh)))
    if r - l < 2 or b - t < 2:  # degenerate box: a blank crop rather than a crash
        return np.zeros((FACE_SIZE // 2, FACE_SIZE, 3), np.uint8)
    face = cv2.resize(frame[t:b, l:r], (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(face[FACE_SIZE // 2:])


class ColorExpertScorer(SyncScorer):
    name = "lipsync_expert"
    window = 5
    native_fps = 25.0
    batch_size = 16          # measured faster on CPU than 64 (cache)

    def __init__(self, model, device: str = "cpu", box_scale: float = 1.2):
        self.model = model.eval()
        self.device = device
        self.box_scale = box_scale

    def face_input(self, frame, box, landmarks) -> np.ndarray:
        return expert_crop(frame, box, self.box_scale)

    def face_windows(self, face_inputs: np.ndarray) -> np.ndarray:
        """(L, 48, 96, 3) uint8 -> (L-4, 15, 48, 96) float32 in [0, 1], channels frame-major (f0 BGR, f1 BGR, ...)."""
        x = np.asarray(face_inputs)
        n = len(x) - self.window + 1
        if n < 1:
            return np.zeros((0, 3 * self.window, FACE_SIZE // 2, FACE_SIZE), np.float32)
        win = np.lib.stride_tricks.sliding_window_view(x, self.window, axis=0)   # (n, 48, 96, 3, 5)
        win = win.transpose(0, 4, 3, 1, 2).reshape(n, 3 * self.window, FACE_SIZE // 2, FACE_SIZE)
        return win.astype(np.float32) / 255.0

    def video_features(self, face_inputs: np.ndarray) -> np.ndarray:
        import torch

        faces = self.face_windows(face_inputs)
        out = []
        with torch.no_grad():
            for s in range(0, len(faces), self.batch_size):
                emb = self.model.face_encoder(torch.from_numpy(faces[s:s + self.batch_size]).to(self.device))
                out.append(torch.nn.functional.normalize(emb.flatten(1), p=2, dim=1).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 512), np.float32)

    def mel_windows(self, wav: np.ndarray, fps: float, num_frames: int) -> np.ndarray:
        """(num_frames - 4, 1, 80, 16) float32: the mel chunk of each window's first frame (Wav2Lip's pairing)."""
        from ... import audio as audio_mod

        mel = audio_mod.melspectrogram(np.asarray(wav, np.float32))
        n = max(0, num_frames - self.window + 1)
        return audio_mod.mel_chunks(mel, fps, num_frames, 0, n)[:, None]

    def audio_features(self, wav: np.ndarray, fps: float, num_frames: int) -> np.ndarray:
        import torch

        mels = self.mel_windows(wav, fps, num_frames)
        out = []
        with torch.no_grad():
            for s in range(0, len(mels), 256):
                emb = self.model.audio_encoder(torch.from_numpy(mels[s:s + 256]).to(self.device))
                out.append(torch.nn.functional.normalize(emb.flatten(1), p=2, dim=1).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 512), np.float32)


MODEL = ModelSpec("lipsync_expert", "lipsync_expert.pth", "syncnet_color", None,
                  f"{WAV2LIP_README}: the 'Expert Discriminator' checkpoint", WAV2LIP_LICENCE, False,
                  title="Wav2Lip lip-sync expert (SyncNet_color)", min_bytes=16_435_072 * 4)

PLUGIN = ScorerPlugin(name="lipsync_expert", model=MODEL, layouts=("syncnet_color",),
                      load=network_loader(ColorExpertScorer, "syncnet_color"), aliases=("color_expert",))
