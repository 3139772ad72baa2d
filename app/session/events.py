"""A tiny evented-model toolkit (after napari's `EmitterGroup`): named emitters with typed payloads.

Callbacks run synchronously in the emitting thread; the session is only changed from the UI thread, so
widgets may subscribe directly.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, List

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    type: str
    info: dict = field(default_factory=dict)

    def __getattr__(self, key):
        try:
            return self.info[key]
        except KeyError:
            raise AttributeError(key) from None


class Emitter:
    def __init__(self, name: str):
        self.name = name
        self._callbacks: List[Callable[[Event], None]] = []

    def connect(self, callback: Callable[[Event], None]) -> Callable[[Event], None]:
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[[Event], None]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def __call__(self, **info) -> Event:
        event = Event(self.name, info)
        for cb in list(self._callbacks):
            cb(event)
        return event


class EmitterGroup:
    """One attribute per event name: `group.tracks.connect(cb)`, `group.tracks(reason="auto")`."""

    def __init__(self, *names: str):
        for n in names:
            setattr(self, n, Emitter(n))

    def connect_all(self, callback: Callable[[Event], None], *names: str) -> None:
        for n in names:
            getattr(self, n).connect(callback)
