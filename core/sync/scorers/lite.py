"""`LiteScorer`: our own SyncNet-style lip-sync scorer (LiteSyncNet, trained on GRID by tools/train_sync.py).

It plugs into `core.sync.scoring` like the official SyncNet: `video_features` / `audio_features` give one embedding per
5-frame window and `core.sync.scoring.lse_from_features` turns them into offset, LSE-D, LSE-C and per-frame confidence
with syncnet_python's exact logic (distances over +-15 offsets, zero padding, median filter).

Inputs
  * video: `face_input(frame, box, landmarks)` -> grayscale uint8 (48, 64) lower-face crop, de-rotated along the
    eye line, `PX_PER_IOD` = 40 crop pixels per inter-ocular distance (resolution independent), centred half an
    IOD below the nose base (see `core.models.lite_sync_net.crop_affine`). Without landmarks the face box is used.
    Window i = face inputs i..i+4.
  * audio: `core.audio.melspectrogram` (Wav2Lip's mel, 80 columns/s). Alignment: video window i spans
    [i/fps, (i+5)/fps) seconds; its audio window is the 16 mel columns (0.2 s) whose centre is the centre of that
    span, (i + 2.5)/fps, rounded to the nearest column (`audio_window_starts`). This holds for any fps; at 25 fps
    both windows cover the same 0.2 s. Columns before the start or after the end of `wav` read as silence.

Distances: the embeddings are L2-normalised and multiplied by `DIST_SCALE` = 10, so the Euclidean distance of two
features lies in [0, 20] (sqrt(2) * 10 ~ 14.1 for unrelated windows, 10 against syncnet's zero padding), a range
comparable to SyncNet's (its LSE-D is typically 6-9 and LSE-C 0-10 on real video). Numbers are not
interchangeable with SyncNet's: compare LSE values of one scorer only.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from ...errors import MediaError, ModelError
from ...models import lite_sync_net as L
from ...models.registry import resolve_model, shipped_models_dir
from .base import SyncScorer
from .registry import ScorerPlugin

log = logging.getLogger(__name__)

DIST_SCALE = 10.0
MODEL_NAME = "sync_lite"
DEFAULT_PATH = shipped_models_dir() / f"{MODEL_NAME}.pt"   # resources/models (inside the bundle when frozen)
BATCH = 256


class LiteScorer(SyncScorer):
    name = "sync_lite"
    batch_size = 128   # windows per forward pass in core.sync.scoring.score_clip

    def __init__(self, model, device: str = "cpu", *, dist_scale: float = DIST_SCALE,
                 window_threshold: Optional[float] = None, clip_threshold: Optional[float] = None,
                 path: Optional[Path] = None):
        self.model = model.eval()
        self.device = device
        self.dist_scale = float(dist_scale)
        # decision thresholds chosen on the training validation split (confidence at offset 0, see the model card)
        self.window_threshold = window_threshold
        self.clip_threshold = clip_threshold
        self.path = path

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path=None, device: str = "cpu") -> "LiteScorer":
        """Load weights (None: the shipped resources/models/sync_lite.pt), checked by `core.models.registry`
        (the SHA-256 recorded in the JSON beside the file, `NAME.json`)."""
        import torch

        p = resolve_model(MODEL_NAME if path is None else Path(path))
        try:
            payload = torch.load(p, map_location=device, weights_only=True)
            cfg = dict(payload.get("config", {}))
            model = L.LiteSyncNet(width=int(cfg.get("width", 32)), emb_dim=int(cfg.get("emb_dim", L.EMB_DIM)))
            model.load_state_dict(payload["state_dict"], strict=True)
        except Exception as exc:  # unpickling / layout errors all mean "not our weight file"
            raise ModelError(f"{p} is not a LiteSyncNet weight file ({type(exc).__name__}: {exc}).") from exc
        model.to(device).float().eval()
        return cls(model, device, dist_scale=float(payload.get("dist_scale", DIST_SCALE)),
                   window_threshold=payload.get("window_threshold"), clip_threshold=payload.get("clip_threshold"),
                   path=p)

    # ------------------------------------------------------------------ SyncScorer
    def face_input(self, frame: np.ndarray, box, landmarks) -> np.ndarray:
        """(48, 64) uint8 grayscale lower-face crop (mid-gray if neither landmarks nor box are usable)."""
        return L.face_crop(frame, landmarks, box)

    def video_features(self, face_inputs) -> np.ndarray:
        """(N, 48, 64) face inputs -> (N-4, D) float32; row i embeds inputs i..i+4."""
        return self.project_video(self.video_trunk(face_inputs))

    def video_trunk(self, face_inputs) -> np.ndarray:
        """(N, 48, 64) face inputs -> (N-4, C) float32: the video tower before its projection (what per-clip
        adaptation of the scorer refits the projection on)."""
        x = np.asarray(face_inputs)
        n = len(x) - L.NUM_FRAMES + 1
        if n <= 0:
            return np.zeros((0, self.model.video_fc.in_features), np.float32)
        if x.shape[1:] != (L.CROP_H, L.CROP_W):
            raise ValueError(f"face inputs must be (N, {L.CROP_H}, {L.CROP_W}), got {x.shape}")
        win = np.lib.stride_tricks.sliding_window_view(x, L.NUM_FRAMES, axis=0)   # (n, H, W, 5)
        return self._run(lambda s: np.ascontiguousarray(win[s].transpose(0, 3, 1, 2)), n,
                         lambda t: self.model.video(self.model.normalize_video(t)).flatten(1))

    def project_video(self, trunk: np.ndarray) -> np.ndarray:
        """(M, C) trunk features -> (M, D) scaled unit embeddings through the (possibly adapted) projection."""
        import torch
        from torch.nn import functional as F

        t = np.asarray(trunk, np.float32)
        if len(t) == 0:
            return np.zeros((0, self.model.video_fc.out_features), np.float32)
        with torch.inference_mode():
            e = F.normalize(self.model.video_fc(torch.from_numpy(t).to(self.device)), dim=1)
        return (e.float().cpu().numpy() * self.dist_scale).astype(np.float32)

    def audio_features(self, wav, fps: float, num_frames: int, first_window: int = 0) -> np.ndarray:
        """(num_frames-4, D) float32 for 16 kHz mono `wav` under a video of `num_frames` frames at `fps`.
        `first_window` starts the windows elsewhere (negative: before the video; evaluation embeds every shift
        of one voice at once this way)."""
        from ... import audio as audio_mod

        if not fps or not np.isfinite(fps) or fps <= 0:
            raise MediaError(f"Invalid video frame rate {fps!r}: cannot align the audio for sync scoring.")
        n = int(num_frames) - L.NUM_FRAMES + 1
        if n <= 0:
            return np.zeros((0, self.model.audio_fc.out_features), np.float32)
        wav = np.asarray(wav, np.float32).reshape(-1)
        if len(wav) >= 2 * 800:
            mel = np.asarray(audio_mod.melspectrogram(wav), np.float32)
        else:  # too short for an STFT: treat as silence
            mel = np.full((L.MEL_BANDS, 1), L.SILENCE_MEL, np.float32)
        starts = L.audio_window_starts(fps, n, first=first_window)
        # windows cut batch by batch: all of a long voice's at once took ~100 MB per 10 min
        audio = self._run(lambda s: L.mel_windows(mel, starts[s])[:, None], n, self.model.embed_audio)
        return (audio * self.dist_scale).astype(np.float32)

    # ------------------------------------------------------------------ helpers

    def _run(self, get, n: int, f) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for s in range(0, n, BATCH):
                x = torch.from_numpy(get(slice(s, min(n, s + BATCH)))).to(self.device, torch.float32)
                out.append(f(x).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)


PLUGIN = ScorerPlugin(name="lite", model=MODEL_NAME, load=lambda path, device: LiteScorer.load(path, device),
                      aliases=(MODEL_NAME,), auto_rank=2, other_files=True)
