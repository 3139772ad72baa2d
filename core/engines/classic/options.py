"""The classic engine's options (the defaults are the tuned values)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class ClassicOptions:
    k: int = 12                    # candidate mouths retrieved per frame
    blend: int = 5                 # of which this many are blended (weighted median)
    jump: float = 1.0              # cost of jumping to another stretch of the clip: higher = steadier texture
    sigma: float = 0.03            # shape-distance scale of the candidates' weights (IOD units)
    max_library: int = 3000        # most mouth crops kept from the clip
    max_library_mb: float = 300.0
    ppi: float = 0.0               # canonical crop pixels per IOD; 0: from the face size (ppi_scale, max_ppi)
    ppi_scale: float = 1.5
    max_ppi: float = 96.0
    mouth_model: Optional[str] = None   # audio -> mouth model file; None: the shipped one
    keep_expression: bool = True   # keep the actor's slow lip expression (smile, pout), replace only speech motion
    # (N_out, 68, 2) frame-space targets replacing the model's prediction (oracle tests, evaluations): code only
    target_landmarks: Optional[np.ndarray] = field(default=None, compare=False, repr=False,
                                                     metadata={"persist": False})
    # textures only from source frames more than this many frames from the output frame's own (evaluations: a clip
    # re-dubbed from itself then shows its other words, as a dub across sentences does): code only
    exclude_near: int = field(default=0, metadata={"persist": False})
