"""The state of one dub, Qt-free: the window's parts read it and subscribe to its events (see `model.Session`)."""
from .events import Emitter, Event
from .model import AudioData, Session

__all__ = ["AudioData", "Emitter", "Event", "Session"]
