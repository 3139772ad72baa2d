"""The editor's corrections as typed commands on `core.edits.EditHistory` (undoable, saved with the project).

A command carries what the user chose; `apply(history, session)` adds what the session knows (the in/out
range, the playhead, the project's mask) and raises `LipDubError` for a request that cannot be carried out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from core.edits import MaskPolygon
from core.errors import LipDubError

NEED_RANGE = "Set an in/out range first (I and O, or Shift+drag on the timeline)."


def _range(session) -> Tuple[int, int]:
    if session.project.range is None:
        raise LipDubError(NEED_RANGE)
    return session.project.range


class Command:
    def apply(self, history, session) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class AddOverride(Command):
    """Keep the original frames, close the mouth, or force an engine over the in/out range."""
    kind: str
    engine: Optional[str] = None

    def apply(self, history, session) -> None:
        a, b = _range(session)
        history.add_override(a, b, self.kind, self.engine)


@dataclass(frozen=True)
class TeethFromPlayhead(Command):
    """The in/out range takes its teeth proxy from the frame under the playhead."""

    def apply(self, history, session) -> None:
        a, b = _range(session)
        history.set_teeth_shot(a, b, session.playhead, session.project.teeth_strength)


@dataclass(frozen=True)
class SetVoiceOffset(Command):
    frames: int

    def apply(self, history, session) -> None:
        history.set_voice_offset(int(self.frames))


@dataclass(frozen=True)
class KeyMask(Command):
    """A mask keyframe at the playhead: the given settings, else the mask in force there."""
    settings: object = None

    def apply(self, history, session) -> None:
        f = session.playhead
        history.set_mask_keyframe(f, self.settings if self.settings is not None else session.mask_at(f))


@dataclass(frozen=True)
class UnkeyMask(Command):
    frame: Optional[int] = None            # None: the playhead

    def apply(self, history, session) -> None:
        history.remove_mask_keyframe(session.playhead if self.frame is None else self.frame)


@dataclass(frozen=True)
class FixBox(Command):
    box: Tuple[float, float, float, float]

    def apply(self, history, session) -> None:
        history.set_box_fix(session.playhead, self.box)


@dataclass(frozen=True)
class DrawMaskArea(Command):
    """A drawn area in frame pixels at the playhead, stored in face coordinates so it follows the face."""
    points: Sequence[Tuple[float, float]]
    mode: str = "add"

    def apply(self, history, session) -> None:
        from core.faces.geometry import frame_to_face

        f, t = session.playhead, session.chosen_track()
        if t is None or not (f < len(t.present) and t.present[f]):
            raise LipDubError("There is no tracked face in this frame to attach the mask area to: draw it on a "
                              "frame where the face is tracked.")
        pts = [tuple(map(float, q)) for q in frame_to_face(self.points, t.landmarks[f])]
        history.add_mask_polygon(f, MaskPolygon(pts, self.mode), default=session.project.mask)


@dataclass(frozen=True)
class RemoveEdit(Command):
    """Remove one entry of the corrections list: kind is override | mask_key | teeth | box | voice_offset."""
    kind: str
    index: int

    def apply(self, history, session) -> None:
        if self.kind == "override":
            history.remove_override(self.index)
        elif self.kind == "mask_key":
            history.remove_mask_keyframe(self.index)
        elif self.kind == "voice_offset":
            history.set_voice_offset(0)
        elif self.kind in ("teeth", "box"):
            attr, label = {"teeth": ("teeth_shots", "Remove teeth shot"),
                           "box": ("box_fixes", "Remove face box fix")}[self.kind]

            def drop(e, i=self.index):
                lst = list(getattr(e, attr))
                del lst[i]
                setattr(e, attr, lst)

            history.apply(label, drop)
        else:
            raise LipDubError(f"Unknown correction '{self.kind}'.")
