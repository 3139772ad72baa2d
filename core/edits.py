"""The editor's corrections to a dub, Qt-free, and their undo/redo history.

- Mask settings keyframed over output frames (linear interpolation between keyframes; a hand-drawn polygon
  adds or removes area and is stored in face coordinates, so it follows the face).
- Range overrides: "keep_original" (no dubbing), "mouth_closed", "engine" (force an engine on the range), or
  "voice_driven" (where the voice performer's video drives the dub, these frames follow the voice instead).
- Voice offset (frames; positive = the voice plays later), face-box fixes on keyframes, per-shot teeth proxy.

Every change goes through `EditHistory.apply(label, fn)`, which records a before/after snapshot of the (small)
`Edits` value: undo/redo are exact, the GUI binds them to Ctrl+Z / Ctrl+Shift+Z, and history and edits are saved
in the project file (`to_json`). The pipeline reads the same object, so the CLI renders what the editor saw.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from .engines.base import MaskSettings
from .errors import ProjectError

OVERRIDE_KINDS = ("keep_original", "mouth_closed", "engine", "voice_driven")
OVERRIDE_LABELS = {"keep_original": "Keep original", "mouth_closed": "Mouth closed", "voice_driven": "Driven by voice"}
POLYGON_MODES = ("add", "remove")
INTERPOLATED = ("dilation", "feather", "extent_up", "extent_down")
MAX_HISTORY = 200


@dataclass
class MaskPolygon:
    """A hand-drawn region in face coordinates (inter-ocular units, origin between the eyes, y down)."""

    points: List[Tuple[float, float]]
    mode: str = "add"

    def __post_init__(self):
        if self.mode not in POLYGON_MODES:
            raise ProjectError(f"Unknown mask polygon mode '{self.mode}' (use add or remove).")
        if len(self.points) < 3:
            raise ProjectError("A mask polygon needs at least 3 points.")
        self.points = [(float(x), float(y)) for x, y in self.points]


@dataclass
class MaskKeyframe:
    frame: int
    settings: MaskSettings = field(default_factory=MaskSettings)
    polygons: List[MaskPolygon] = field(default_factory=list)


@dataclass
class RangeOverride:
    start: int                 # first output frame
    end: int                   # one past the last
    kind: str = "keep_original"
    engine: Optional[str] = None

    def __post_init__(self):
        if self.kind not in OVERRIDE_KINDS:
            raise ProjectError(f"Unknown override '{self.kind}' (use one of {', '.join(OVERRIDE_KINDS)}).")
        if self.end <= self.start:
            raise ProjectError(f"An override range must not be empty: [{self.start}, {self.end}).")
        if self.kind == "engine" and not self.engine:
            raise ProjectError("An engine override must name the engine.")

    def contains(self, frame: int) -> bool:
        return self.start <= frame < self.end


@dataclass
class BoxFix:
    frame: int                 # source frame
    box: Tuple[float, float, float, float]


@dataclass
class TeethShot:
    start: int
    end: int
    frame: int                 # source frame used as the proxy
    strength: float = 1.0


@dataclass
class Edits:
    mask_keyframes: List[MaskKeyframe] = field(default_factory=list)
    overrides: List[RangeOverride] = field(default_factory=list)
    voice_offset: int = 0
    box_fixes: List[BoxFix] = field(default_factory=list)
    teeth_shots: List[TeethShot] = field(default_factory=list)

    # ------------------------------------------------------------------ queries used by the pipeline and GUI
    def is_empty(self) -> bool:
        return not (self.mask_keyframes or self.overrides or self.voice_offset or self.box_fixes
                    or self.teeth_shots)

    def mask_at(self, frame: int, default: Optional[MaskSettings] = None) -> Tuple[MaskSettings, List[MaskPolygon]]:
        """Mask settings at `frame`: interpolated between the surrounding keyframes, held outside them.
        Polygons and the colour-match switch come from the keyframe at or before the frame."""
        kfs = sorted(self.mask_keyframes, key=lambda k: k.frame)
        if not kfs:
            return copy.deepcopy(default or MaskSettings()), []
        before = [k for k in kfs if k.frame <= frame]
        after = [k for k in kfs if k.frame > frame]
        if not before:
            return copy.deepcopy(after[0].settings), list(after[0].polygons)
        a = before[-1]
        if not after or a.frame == frame:
            return copy.deepcopy(a.settings), list(a.polygons)
        b = after[0]
        t = (frame - a.frame) / float(b.frame - a.frame)
        s = copy.deepcopy(a.settings)
        for name in INTERPOLATED:
            setattr(s, name, (1 - t) * getattr(a.settings, name) + t * getattr(b.settings, name))
        return s, list(a.polygons)

    def override_at(self, frame: int) -> Optional[RangeOverride]:
        """The most recently added override covering `frame` (later edits win)."""
        for o in reversed(self.overrides):
            if o.contains(frame):
                return o
        return None

    def override_kinds(self, num_frames: int) -> np.ndarray:
        """(N,) object array: override kind per output frame ('' where none)."""
        out = np.full(num_frames, "", dtype=object)
        for o in self.overrides:
            out[max(0, o.start):min(num_frames, o.end)] = o.kind if o.kind != "engine" else f"engine:{o.engine}"
        return out

    def teeth_at(self, frame: int) -> Optional[TeethShot]:
        for t in reversed(self.teeth_shots):
            if t.start <= frame < t.end:
                return t
        return None

    # ------------------------------------------------------------------ (de)serialisation
    def to_json(self) -> dict:
        return {
            "mask_keyframes": [{"frame": k.frame, "settings": asdict(k.settings),
                                "polygons": [{"mode": p.mode, "points": [list(q) for q in p.points]}
                                             for p in k.polygons]} for k in self.mask_keyframes],
            "overrides": [asdict(o) for o in self.overrides],
            "voice_offset": int(self.voice_offset),
            "box_fixes": [{"frame": b.frame, "box": list(b.box)} for b in self.box_fixes],
            "teeth_shots": [asdict(t) for t in self.teeth_shots],
        }

    @classmethod
    def from_json(cls, doc: Optional[dict]) -> "Edits":
        if not doc:
            return cls()
        try:
            mask_names = {f.name for f in fields(MaskSettings)}
            return cls(
                mask_keyframes=[MaskKeyframe(
                    frame=int(k["frame"]),
                    settings=MaskSettings(**{n: v for n, v in k.get("settings", {}).items() if n in mask_names}),
                    polygons=[MaskPolygon(points=[tuple(q) for q in p["points"]], mode=p.get("mode", "add"))
                              for p in k.get("polygons", [])]) for k in doc.get("mask_keyframes", [])],
                overrides=[RangeOverride(int(o["start"]), int(o["end"]), o.get("kind", "keep_original"),
                                         o.get("engine")) for o in doc.get("overrides", [])],
                voice_offset=int(doc.get("voice_offset", 0)),
                box_fixes=[BoxFix(int(b["frame"]), tuple(float(v) for v in b["box"]))
                           for b in doc.get("box_fixes", [])],
                teeth_shots=[TeethShot(int(t["start"]), int(t["end"]), int(t["frame"]),
                                       float(t.get("strength", 1.0))) for t in doc.get("teeth_shots", [])],
            )
        except ProjectError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ProjectError(f"The project's edits are damaged ({type(exc).__name__}: {exc}).") from exc


class EditHistory:
    """Undo/redo over `Edits` by snapshots. `apply` runs a mutation and records it as one undoable step."""

    def __init__(self, edits: Optional[Edits] = None, listener: Optional[Callable[[str], None]] = None):
        self.edits = edits or Edits()
        self._undo: List[Tuple[str, dict, dict]] = []
        self._redo: List[Tuple[str, dict, dict]] = []
        self.listener = listener   # called with the step's label after every change (GUI refresh, re-render)

    def apply(self, label: str, mutate: Callable[[Edits], None]) -> None:
        before = self.edits.to_json()
        work = Edits.from_json(before)
        mutate(work)                       # raises ProjectError on bad input, leaving edits untouched
        after = work.to_json()
        if after == before:
            return
        self.edits = work
        self._undo.append((label, before, after))
        del self._undo[:-MAX_HISTORY]
        self._redo.clear()
        self._notify(label)

    def undo(self) -> Optional[str]:
        if not self._undo:
            return None
        label, before, after = self._undo.pop()
        self.edits = Edits.from_json(before)
        self._redo.append((label, before, after))
        self._notify(label)
        return label

    def redo(self) -> Optional[str]:
        if not self._redo:
            return None
        label, before, after = self._redo.pop()
        self.edits = Edits.from_json(after)
        self._undo.append((label, before, after))
        self._notify(label)
        return label

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_label(self) -> str:
        return self._undo[-1][0] if self._undo else ""

    @property
    def redo_label(self) -> str:
        return self._redo[-1][0] if self._redo else ""

    def _notify(self, label: str) -> None:
        if self.listener is not None:
            self.listener(label)

    def to_json(self) -> dict:
        return {"edits": self.edits.to_json(),
                "undo": [list(s) for s in self._undo], "redo": [list(s) for s in self._redo]}

    @classmethod
    def from_json(cls, doc: Optional[dict]) -> "EditHistory":
        if not doc:
            return cls()
        h = cls(Edits.from_json(doc.get("edits")))
        try:
            h._undo = [(str(l), dict(b), dict(a)) for l, b, a in doc.get("undo", [])]
            h._redo = [(str(l), dict(b), dict(a)) for l, b, a in doc.get("redo", [])]
        except (TypeError, ValueError) as exc:
            raise ProjectError(f"The project's undo history is damaged ({exc}).") from exc
        return h

    # ------------------------------------------------------------------ the editing commands
    def set_mask_keyframe(self, frame: int, settings: MaskSettings,
                          polygons: Optional[Sequence[MaskPolygon]] = None) -> None:
        def mutate(e: Edits):
            old = [k for k in e.mask_keyframes if k.frame == frame]
            keep = list(polygons) if polygons is not None else (old[0].polygons if old else [])
            e.mask_keyframes = [k for k in e.mask_keyframes if k.frame != frame]
            e.mask_keyframes.append(MaskKeyframe(int(frame), copy.deepcopy(settings), keep))
            e.mask_keyframes.sort(key=lambda k: k.frame)

        self.apply(f"Mask keyframe at {frame}", mutate)

    def add_mask_polygon(self, frame: int, polygon: MaskPolygon, default: Optional[MaskSettings] = None) -> None:
        def mutate(e: Edits):
            settings, polys = e.mask_at(frame, default)
            e.mask_keyframes = [k for k in e.mask_keyframes if k.frame != frame]
            e.mask_keyframes.append(MaskKeyframe(int(frame), settings, polys + [polygon]))
            e.mask_keyframes.sort(key=lambda k: k.frame)

        self.apply(f"{'Add' if polygon.mode == 'add' else 'Remove'} mask area at {frame}", mutate)

    def remove_mask_keyframe(self, frame: int) -> None:
        self.apply(f"Delete mask keyframe at {frame}",
                   lambda e: setattr(e, "mask_keyframes", [k for k in e.mask_keyframes if k.frame != frame]))

    def add_override(self, start: int, end: int, kind: str, engine: Optional[str] = None) -> None:
        o = RangeOverride(int(start), int(end), kind, engine)   # validates before anything changes
        label = OVERRIDE_LABELS.get(kind, f"Use {engine}")
        self.apply(f"{label} {start}-{end - 1}", lambda e: e.overrides.append(o))

    def remove_override(self, index: int) -> None:
        def mutate(e: Edits):
            if not 0 <= index < len(e.overrides):
                raise ProjectError(f"There is no override number {index}.")
            del e.overrides[index]

        self.apply("Remove override", mutate)

    def set_voice_offset(self, frames: int) -> None:
        self.apply(f"Voice offset {int(frames):+d} frames", lambda e: setattr(e, "voice_offset", int(frames)))

    def set_box_fix(self, frame: int, box: Sequence[float]) -> None:
        b = tuple(float(v) for v in box)
        if len(b) != 4 or not (b[2] > b[0] and b[3] > b[1]):
            raise ProjectError(f"A face box needs x0 < x1 and y0 < y1, got {b}.")

        def mutate(e: Edits):
            e.box_fixes = [f for f in e.box_fixes if f.frame != frame] + [BoxFix(int(frame), b)]
            e.box_fixes.sort(key=lambda f: f.frame)

        self.apply(f"Face box at {frame}", mutate)

    def set_teeth_shot(self, start: int, end: int, frame: int, strength: float = 1.0) -> None:
        if end <= start:
            raise ProjectError(f"A teeth-proxy shot must not be empty: [{start}, {end}).")

        def mutate(e: Edits):
            e.teeth_shots = [t for t in e.teeth_shots if not (t.start == start and t.end == end)]
            e.teeth_shots.append(TeethShot(int(start), int(end), int(frame), float(strength)))

        self.apply(f"Teeth proxy: frame {frame}", mutate)


# Box fixes change the track from the fix on; the track's zero-phase smoothing also reaches a few frames back.
BOX_FIX_REACH_BACK = 5


def changed_range(old: Edits, new: Edits, num_frames: int) -> Optional[Tuple[int, int]]:
    """The smallest frame range [a, b) outside which `old` and `new` render the same frames (None: no change).

    Used to re-render and re-score only what an edit touched. Conservative where the effect is not local:
    a voice offset shifts the whole clip; a mask keyframe reaches to its neighbouring keyframes (interpolation),
    or to the clip's ends beyond the first/last one (held values); a box fix reaches to the next fix (the
    tracker re-runs from it) or the end. Frames are clipped to [0, num_frames)."""
    n = int(num_frames)
    spans: List[Tuple[int, int]] = []
    if old.voice_offset != new.voice_offset:
        spans.append((0, n))

    # overrides and teeth shots act on their own spans: an item in only one of the two lists changed its span
    for attr in ("overrides", "teeth_shots"):
        a, b = getattr(old, attr), getattr(new, attr)
        spans += [(x.start, x.end) for x in a if x not in b] + [(x.start, x.end) for x in b if x not in a]

    def kf_json(k: MaskKeyframe):
        return {"settings": asdict(k.settings), "polygons": [(q.mode, q.points) for q in k.polygons]}

    old_k = {k.frame: repr(kf_json(k)) for k in old.mask_keyframes}
    new_k = {k.frame: repr(kf_json(k)) for k in new.mask_keyframes}
    frames = sorted(set(old_k) | set(new_k))
    for i, f in enumerate(frames):
        if old_k.get(f) != new_k.get(f):
            lo = frames[i - 1] if i > 0 else 0
            hi = frames[i + 1] + 1 if i + 1 < len(frames) else n
            spans.append((lo, hi))

    old_b = {b.frame: tuple(b.box) for b in old.box_fixes}
    new_b = {b.frame: tuple(b.box) for b in new.box_fixes}
    fixes = sorted(set(old_b) | set(new_b))
    for i, f in enumerate(fixes):
        if old_b.get(f) != new_b.get(f):
            spans.append((f - BOX_FIX_REACH_BACK, fixes[i + 1] if i + 1 < len(fixes) else n))

    spans = [(max(0, a), min(n, b)) for a, b in spans]
    spans = [(a, b) for a, b in spans if b > a]
    if not spans:
        return None
    return min(a for a, _ in spans), max(b for _, b in spans)


def shifted_length(num_samples: int, offset_frames: int, fps: float, sample_rate: int) -> int:
    """len(shift_voice(wav, ...)) for a voice of `num_samples`, without building it."""
    n = int(round(abs(offset_frames) * sample_rate / fps))
    if offset_frames > 0:
        return int(num_samples) + n
    if offset_frames < 0:
        return int(num_samples) - n if n < num_samples else 1
    return int(num_samples)


def shift_samples(offset_frames: int, fps: float, sample_rate: int) -> int:
    """How many samples `shift_voice` puts in front of the voice (negative: cuts from its start)."""
    n = int(round(abs(offset_frames) * sample_rate / fps))
    return n if offset_frames >= 0 else -n


def shift_voice(wav: np.ndarray, offset_frames: int, fps: float, sample_rate: int) -> np.ndarray:
    """Voice delayed by `offset_frames` (positive: later, silence in front; negative: its start cut off)."""
    n = abs(shift_samples(offset_frames, fps, sample_rate))
    if offset_frames > 0:
        return np.concatenate([np.zeros(n, wav.dtype), wav])
    if offset_frames < 0:
        return wav[n:] if n < len(wav) else np.zeros(1, wav.dtype)
    return wav
