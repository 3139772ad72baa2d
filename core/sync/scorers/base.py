"""The interface every sync scorer implements (`core.sync.scoring.score_clip` drives it)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Optional

import numpy as np

DEFAULT_VSHIFT = 15   # syncnet_python's offset search: -15 .. +15 frames


class SyncScorer(ABC):
    """An audio-visual sync model, as used by `score_clip`.

    `face_input(frame, box, landmarks)` preprocesses one frame (crop) and may return any array (uint8 saves
    memory); `video_features(face_inputs)` maps L consecutive inputs (a stacked array) to the L - window + 1 window
    features; `audio_features(wav, fps, num_frames)` gives the num_frames - window + 1 matching audio features
    (window i of both covers frames i .. i+window-1). Rows are compared by Euclidean distance.
    """

    name: str = "scorer"
    window: int = 5                         # video frames per feature
    native_fps: Optional[float] = None      # resample the clip to this rate first (None: score at the clip's rate)
    batch_size: int = 32                    # windows per forward pass
    vshift: int = DEFAULT_VSHIFT            # offsets searched: -vshift .. +vshift scorer frames

    @abstractmethod
    def face_input(self, frame: np.ndarray, box: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        ...

    @abstractmethod
    def video_features(self, face_inputs: np.ndarray) -> np.ndarray:
        ...

    @abstractmethod
    def audio_features(self, wav: np.ndarray, fps: float, num_frames: int) -> np.ndarray:
        ...

    def num_windows(self, num_frames: int) -> int:
        """Windows scored for a clip of num_frames (scorer) frames."""
        return max(0, num_frames - self.window + 1)


