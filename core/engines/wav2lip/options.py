"""The Wav2Lip engine's options."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class Wav2LipOptions:
    checkpoint: Optional[str] = None   # registry name (wav2lip, wav2lip_gan) or a file in that format; None: wav2lip
