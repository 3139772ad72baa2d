"""`FusedScorer` ("fused"): `sync_lite` and `sync_asd` side by side, one scorer.

Each window's embedding is the two scorers' embeddings concatenated, `sync_lite`'s times `LITE_WEIGHT`, so the
distance between a lips window and a voice window is sqrt(LITE_WEIGHT^2 d_lite^2 + d_asd^2). Both witnesses must
agree for a pair to look close: `sync_lite` (our own network, sharp on faces like its two training speakers and on
another voice) and `sync_asd` (the ASD visual encoder learnt on thousands of faces: evidence that holds on faces
and recordings unlike GRID). Measured on unseen speakers and real-footage proxies in docs/MEASUREMENTS.md; the
weight was chosen on the selection sets (s1_val, s4's evaluation half), never on the evaluation speakers.

Both run at 25 fps (`sync_asd`'s rate; `sync_lite` was trained at random frame rates 23-31 fps). A face input is
the two crops flattened end to end (uint8), split again by `video_trunk`. LSE-D / LSE-C from this scorer are on its
own scale (distances up to 20 * sqrt(1 + LITE_WEIGHT^2)): compare them only with each other.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..asd import features as AF
from ...models import lite_sync_net as L
from .asd import MODEL_NAME as ASD_MODEL, AsdScorer
from .base import SyncScorer
from .lite import LiteScorer
from .registry import ScorerPlugin

LITE_WEIGHT = 1.0
LITE_SIZE = L.CROP_H * L.CROP_W
ASD_SIZE = AF.CROP * AF.CROP


class FusedScorer(SyncScorer):
    name = "fused"
    window = 5
    native_fps = AF.FPS
    batch_size = AsdScorer.batch_size

    def __init__(self, lite: LiteScorer, asd: AsdScorer, lite_weight: float = LITE_WEIGHT,
                 path: Optional[Path] = None):
        self.lite, self.asd = lite, asd
        self.lite_weight = float(lite_weight)
        self.device = asd.device
        self.path = path

    @classmethod
    def load(cls, path=None, device: str = "cpu") -> "FusedScorer":
        """The shipped sync_lite with the sync_asd heads file `path` (None: the shipped one)."""
        asd = AsdScorer.load(path, device)
        return cls(LiteScorer.load(None, device), asd, path=asd.path)

    def face_input(self, frame: np.ndarray, box, landmarks) -> np.ndarray:
        return np.concatenate([self.lite.face_input(frame, box, landmarks).reshape(-1),
                               self.asd.face_input(frame, box, landmarks).reshape(-1)])

    def _split(self, face_inputs):
        x = np.asarray(face_inputs)
        return (x[:, :LITE_SIZE].reshape(-1, L.CROP_H, L.CROP_W),
                x[:, LITE_SIZE:].reshape(-1, AF.CROP, AF.CROP))

    def video_trunk(self, face_inputs) -> np.ndarray:
        """(N, LITE_SIZE + ASD_SIZE) inputs -> (N - 4, C_lite + C_asd) both trunks side by side."""
        lite_in, asd_in = self._split(face_inputs)
        return np.concatenate([self.lite.video_trunk(lite_in), self.asd.video_trunk(asd_in)], axis=1)

    def _split_trunk(self, trunk: np.ndarray):
        """(lite's, sync_asd's) columns of a `video_trunk` row block."""
        t = np.asarray(trunk, np.float32)
        c = self.lite.model.video_fc.in_features
        return t[:, :c], t[:, c:]

    def project_video(self, trunk: np.ndarray) -> np.ndarray:
        lite_part, asd_part = self._split_trunk(trunk)
        return np.concatenate([self.lite_weight * self.lite.project_video(lite_part),
                               self.asd.project_video(asd_part)], axis=1)

    def video_features(self, face_inputs) -> np.ndarray:
        return self.project_video(self.video_trunk(face_inputs))

    # per-clip refinement (core.sync.refine): the sync_asd side's video head, whose encoder learnt many faces
    def refined(self, trunk: np.ndarray, aligned_wav: np.ndarray, speech: np.ndarray, train=None,
                audio: Optional[np.ndarray] = None) -> "FusedScorer":
        """`audio`: this scorer's `audio_features` of `aligned_wav` (its sync_asd columns are the refit's)."""
        asd_audio = None if audio is None else np.asarray(audio)[:, self.lite.model.audio_fc.out_features:]
        return FusedScorer(self.lite, self.asd.refined(self._split_trunk(trunk)[1], aligned_wav, speech, train=train,
                                                       audio=asd_audio),
                           self.lite_weight, self.path)

    def video_head_state(self) -> dict:
        return self.asd.video_head_state()

    def with_video_head(self, state: dict) -> "FusedScorer":
        return FusedScorer(self.lite, self.asd.with_video_head(state), self.lite_weight, self.path)

    def audio_features(self, wav, fps: float, num_frames: int, first_window: int = 0) -> np.ndarray:
        return np.concatenate([self.lite_weight * self.lite.audio_features(wav, fps, num_frames, first_window),
                               self.asd.audio_features(wav, fps, num_frames, first_window)], axis=1)


PLUGIN = ScorerPlugin(name="fused", model=ASD_MODEL, load=lambda path, device: FusedScorer.load(path, device),
                      aliases=("sync_fused",), auto_rank=1)   # the lane's default unless syncnet_v2 is supplied
