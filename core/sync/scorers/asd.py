"""`AsdScorer` ("sync_asd"): the face-general sync scorer. Its picture side is Light-ASD's visual encoder, which
learnt lip motion on thousands of faces (AVA-ActiveSpeaker, TalkSet; MIT, credit in resources/models/sync_asd.md),
frozen and shared with active-speaker detection; its voice side is Light-ASD's and LR-ASD's audio encoders on MFCCs,
side by side (core.sync.asd.net.SecondVoice: LR-ASD's reads reverberant, noisy voices Light-ASD's misses); two heads
trained by tools/train_sync_asd.py on GRID map 5-frame windows of both into one space (core.sync.asd.head).

Conventions as every scorer (core.sync.scorers.base): 25 fps (`native_fps`, the encoders' rate), window i covers
frames i .. i+4, embeddings L2-normalised and scaled by `DIST_SCALE` (10), compared by Euclidean distance. Audio
window i is the voice under frames i .. i+4 (four MFCC rows per frame, the encoders' own alignment).

The visual encoder looks 6 frames either side (its temporal convolutions); `video_features` runs it on whole
chunks (`batch_size` + 4 frames, `core.sync.scoring.face_windows`), so only the frames at a chunk's edge see its
zero padding. Its embeddings are standardised over the chunk (`core.sync.asd.head.normalise_clip`, as in
training): the heads see how the face moves, not what it looks like.

It reads the authors' crop blurred by one frame pixel (`core.sync.asd.features.smooth_face_crop`): on small,
block-coded faces the encoder otherwise follows the codec's blocks. The heads were trained on the authors' crops
through a camera chain that blurs by up to 1.5 pixels; heads retrained on the blurred crops measured no better
(docs/MEASUREMENTS.md), so the shipped ones stay. Active-speaker detection keeps the authors' crop: blurred, it
calls a still face more "speaking".
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ...errors import MediaError, ModelError
from ..asd import features as AF
from .base import SyncScorer
from .registry import ScorerPlugin

MODEL_NAME = "sync_asd"
DIST_SCALE = 10.0
AUDIO_CHUNK = 512       # frames (20 s) of voice encoded at a time (memory; the result does not depend on it) ...
AUDIO_MARGIN = 64       # ... with this much context on each side (both multiples of 16: see audio_trunk)
PROJECT_CHUNK = 2048     # windows through a head at a time: a 10 min clip's ~0.1 GB of activations at once before
                        # (each window's values do not depend on the chunking: tested)


class AsdScorer(SyncScorer):
    name = "sync_asd"
    window = 5
    native_fps = AF.FPS
    batch_size = 96           # windows per chunk (100 frames): memory bounded, as fast as longer chunks

    def __init__(self, asd, heads, device: str = "cpu", path: Optional[Path] = None):
        self.asd = asd.eval()
        self.heads = heads.eval()
        self.device = device
        self.path = path

    @classmethod
    def load(cls, path=None, device: str = "cpu") -> "AsdScorer":
        """The heads file (None: the shipped resources/models/sync_asd.pt, SHA-256 checked) over the shipped
        Light-ASD encoders; a file that also holds a `second_voice` (an architecture and the authors' audio encoder
        weights of another ASD network) reads the voice with both audio encoders (core.sync.asd.net.SecondVoice)."""
        import torch

        from ...models.registry import resolve_model
        from ..asd.head import SyncHeads
        from ..asd.net import SecondVoice
        from ..asd.weights import load_asd

        p = resolve_model(MODEL_NAME if path is None else Path(path))
        asd = load_asd(device)
        try:
            payload = torch.load(p, map_location=device, weights_only=True)
            heads = SyncHeads.from_config(dict(payload.get("config", {})))
            heads.load_state_dict(payload["state_dict"], strict=True)
            second = payload.get("second_voice")
            if second is not None:
                asd = SecondVoice(asd, second["arch"], second["state"]).to(device)
        except Exception as exc:  # unpickling / layout errors all mean "not our heads file"
            raise ModelError(f"{p} is not a sync_asd heads file ({type(exc).__name__}: {exc}).") from exc
        return cls(asd, heads.to(device).float(), device, path=p)

    # ------------------------------------------------------------------ SyncScorer
    def face_input(self, frame: np.ndarray, box, landmarks) -> np.ndarray:
        return AF.smooth_face_crop(frame, landmarks, box)

    def video_trunk(self, face_inputs) -> np.ndarray:
        """(N, 112, 112) crops -> (N - 4, 5 * 128) float32: each window's five per-frame visual embeddings (the
        frozen encoder, run over the whole chunk), what the video head reads and per-clip refinement refits."""
        import torch

        from ..asd.head import EMBED, normalise_clip, windows
        from ..asd.net import visual_in_parts

        x = np.asarray(face_inputs)
        if len(x) < self.window:
            return np.zeros((0, self.window * EMBED), np.float32)
        with torch.inference_mode():
            faces = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)[None]
            per_frame = visual_in_parts(self.asd.visual, faces)[0]
            return windows(normalise_clip(per_frame)).flatten(1).float().cpu().numpy()

    def project_video(self, trunk: np.ndarray) -> np.ndarray:
        """(M, 5 * 128) window trunks -> (M, D) scaled unit embeddings through the (possibly refined) video head."""
        return self._project(trunk, self.heads.video)

    def video_features(self, face_inputs) -> np.ndarray:
        return self.project_video(self.video_trunk(face_inputs))

    def audio_trunk(self, wav, num_frames: int, first_frame: int = 0) -> np.ndarray:
        """(num_frames, E) per-frame audio embeddings (E: 128, or 256 with a second voice encoder) of frames
        first_frame .. first_frame + num_frames - 1 of the 25 fps timeline whose frame 0 starts at the voice's first
        sample (beyond the voice: faint noise)."""
        import torch

        spf = int(round(AF.SAMPLE_RATE / AF.FPS))
        wav = np.asarray(wav, np.float32).reshape(-1)
        before = max(0, -first_frame)
        need = (first_frame + num_frames + 2) * spf           # +2 frames: the encoder's look-ahead at the end
        after = max(0, need - len(wav))
        wav = AF.pad_voice(wav, before * spf, after)
        start = max(0, first_frame) * spf
        voice = wav[start:start + (num_frames + 2) * spf]
        total = len(voice) // spf                             # frames of voice, the look-ahead included
        parts = []
        with torch.inference_mode():
            # a long voice in chunks: the encoders' activations over a whole 10 min voice took ~0.6 GB at once.
            # Each chunk reads AUDIO_MARGIN frames of voice beyond it on both sides (far more than the encoders'
            # reach), and both constants are multiples of 16 frames, so every chunk starts on the one pass's grid
            # of 64 MFCC rows and its convolutions round alike: the chunks join to exactly the one-pass result
            # (unaligned, with 16 frames of margin, the joins differed by ~5e-7).
            for s in range(0, total, AUDIO_CHUNK):
                a0, a1 = max(0, s - AUDIO_MARGIN), min(total, s + AUDIO_CHUNK + AUDIO_MARGIN)
                feats = AF.mfcc(voice[a0 * spf:a1 * spf])
                a = self.asd.audio(torch.from_numpy(feats).to(self.device)[None])[0].float().cpu().numpy()
                parts.append(a[s - a0:s - a0 + min(AUDIO_CHUNK, total - s)])
        return np.concatenate(parts)[:num_frames]

    def audio_features(self, wav, fps: float, num_frames: int, first_window: int = 0) -> np.ndarray:
        """(num_frames - 4, D) audio window embeddings (`first_window`: start elsewhere, negative = before)."""
        import torch

        if not fps or not np.isfinite(fps) or fps <= 0:
            raise MediaError(f"Invalid video frame rate {fps!r}: cannot align the audio for sync scoring.")
        n = int(num_frames)
        if n < self.window:
            return np.zeros((0, self.heads.audio.net[-1].out_features), np.float32)
        from ..asd.head import windows

        trunk = windows(torch.as_tensor(self.audio_trunk(wav, n, int(first_window)))).flatten(1)
        return self._project(trunk.numpy(), self.heads.audio)

    # ------------------------------------------------------------------ per-clip refinement (core.sync.refine)
    def refined(self, trunk: np.ndarray, aligned_wav: np.ndarray, speech: np.ndarray, train=None,
                audio: Optional[np.ndarray] = None) -> "AsdScorer":
        """This scorer with its video head refit on the clip's own voice (`aligned_wav`, moved to its own offset).
        `audio`: this scorer's `audio_features` of that voice for the trunk's windows, when the caller has them."""
        from ..asd.head import EMBED
        from ..refine import refine_head

        if audio is None:
            audio = self.audio_features(aligned_wav, self.native_fps, len(trunk) + self.window - 1)
        audio = np.asarray(audio, np.float32)[:len(trunk)]
        head = refine_head(self.heads.video, lambda h, x: h(x.view(len(x), self.window, EMBED)), trunk,
                           audio / DIST_SCALE, speech, train=train)
        return self.with_video_head(head.state_dict())

    def video_head_state(self) -> dict:
        return {k: v.detach().cpu().numpy() for k, v in self.heads.video.state_dict().items()}

    def with_video_head(self, state: dict) -> "AsdScorer":
        """A scorer sharing this one's encoders and voice head, with the video head `state` (a refit's)."""
        import copy

        import torch

        heads = copy.deepcopy(self.heads)
        heads.video.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})
        return AsdScorer(self.asd, heads.eval(), self.device, path=self.path)

    # ------------------------------------------------------------------ helpers
    def _project(self, trunk: np.ndarray, head) -> np.ndarray:
        import torch

        from ...audio import chunk_bounds

        t = np.asarray(trunk, np.float32)
        if len(t) == 0:
            return np.zeros((0, head.net[-1].out_features), np.float32)
        out = []
        with torch.inference_mode():
            for a, b in chunk_bounds(len(t), PROJECT_CHUNK):
                x = torch.as_tensor(t[a:b]).to(self.device)
                out.append((DIST_SCALE * head(x.reshape(len(x), self.window, -1))).float().cpu().numpy())
        return np.concatenate(out)


def _load(path: Path, device: str) -> SyncScorer:
    return AsdScorer.load(path, device)


PLUGIN = ScorerPlugin(name="sync_asd", model=MODEL_NAME, load=_load, layouts=("sync_asd",), aliases=("asd",))
