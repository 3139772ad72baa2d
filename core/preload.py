"""What a dub can load on the other core while it probes, scans and tracks: torch (its import is ~1.6 s of every
process, and holds the GIL, while probing, the damage scan and the track cache mostly wait on ffmpeg child
processes) and the networks the adaptation and the sync report load next (the mouth model, the lane's scorer).

`Preload` runs that in a thread; the job then takes the scorer from it (`scorer()`) instead of loading it again.
Nothing here decides anything: a failure is forgotten (the job loads the same thing itself, and reports the error
as it always did), and what is loaded is exactly what the job would load (same files, device, options).
"""
from __future__ import annotations

import logging
import threading
from typing import Optional

log = logging.getLogger(__name__)


class Preload:
    """Import torch, then load the mouth model `mouth_model` (when `mouth` is True; None: the shipped one) into
    `core.mouth_shape`'s per-process cache and, when `scorer` is True, the sync lane's scorer
    (`get_scorer("auto", models_dir, device)`), in a daemon thread."""

    def __init__(self, *, device: str, models_dir=None, mouth: bool = False, mouth_model=None,
                 scorer: bool = False):
        self.device = device
        self.models_dir = models_dir
        self._want_mouth, self._mouth_model = bool(mouth), mouth_model
        self._want_scorer = bool(scorer)
        self._scorer = None
        self._scorer_device: Optional[str] = None
        self._thread = threading.Thread(target=self._run, name="lipdub-preload", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            from .device import resolve_device

            device = resolve_device(self.device)        # imports torch
            if self._want_mouth:
                from .mouth_shape import AudioToMouth

                AudioToMouth.load(self._mouth_model)
            if self._want_scorer:
                from .sync.scorers.registry import get_scorer

                self._scorer = get_scorer("auto", models_dir=self.models_dir, device=device)
                self._scorer_device = device
        except BaseException as exc:       # the job loads it again and reports what goes wrong
            log.debug("preloading failed (%s: %s); the job loads its models itself", type(exc).__name__, exc)

    def wait(self) -> None:
        self._thread.join()

    def scorer(self, models_dir=None, device: Optional[str] = None):
        """The preloaded lane scorer for `models_dir` and the resolved `device` (once: a second call gets None),
        or None when it was not asked for, failed, or was loaded for other settings."""
        self.wait()
        s, self._scorer = self._scorer, None
        if s is None or models_dir != self.models_dir or (device is not None and device != self._scorer_device):
            return None
        return s
