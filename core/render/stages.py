"""Wall time and frames per stage of a dub (decode, generate, composite, encode...), as the bench and
`--json` report them."""
from __future__ import annotations

from typing import Dict


class StageTimer:
    """Accumulates wall time per stage (for progress ETA and tools.bench)."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}
        self.frames: Dict[str, int] = {}

    def add(self, stage: str, seconds: float, frames: int = 0) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.frames[stage] = self.frames.get(stage, 0) + frames
