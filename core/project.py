"""The LipDub Studio project: everything the editor set up for one dub, as a versioned JSON file.

Qt-free, so the GUI and the command line read the same file (`Project.to_dub_settings()` gives exactly the
settings the editor saw).

File format (``.lipdub``, UTF-8 JSON)::

    {"format": "lipdub-project", "version": 3,
     "video": "clip.mp4",                         # relative to the project file's folder when possible
     "voices": [{"path": "voice.wav", "name": "Take 2"},
                {"path": "booth.mp4", "name": "", "performer": true}], "active_voice": 0,   # performer: since 3
     "face_track": null, "engine": "classic", "device": "auto", "models_dir": null,
     "engine_options": {"wav2lip": {"checkpoint": "wav2lip_gan"}, ...},   # per engine: its options dataclass
     "mask": {"dilation": 0.08, "feather": 0.15, "extent_up": 0.0, "extent_down": 0.0, "color_match": true},
     "pads": [0, 10, 0, 0], "length_policy": "shortest", "range": [in, out] | null,
     "teeth_frame": null, "teeth_strength": 1.0, "adapt": true,
     "export": {"output": null, "crf": 18, "preset": "medium"}, "playhead": 0,
     "edits": {"edits": {...}, "undo": [...], "redo": [...]}}   # core.edits.EditHistory.to_json()

Saving is atomic (temp file in the same folder, fsync, rename). While the editor works, the GUI writes an
*autosave* copy (absolute paths, plus the path of the project it belongs to); after a crash
`find_recoverable()` lists autosaves newer than their project and `recover()` opens one.
Every load problem raises `core.errors.ProjectError` with a one-line message naming the file.
Version 1 files (a top-level "checkpoint" for the Wav2Lip engine, device "cpu" by default) and version 2 files
still load. Version 3 added what a version-2 build would silently drop or stop on (a voice track that is the
performer's video, "Driven by voice" ranges): such a build now says "saved by a newer LipDub Studio".
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .atomic import atomic_write
from .device import AUTO
from .edits import EditHistory
from .engines import registry as engines
from .engines.base import MaskSettings
from .errors import ProjectError
from .media import PRESETS
from .timing import LENGTH_POLICIES

FORMAT = "lipdub-project"
SCHEMA_VERSION = 3            # 3: performer videos as voices, "voice_driven" ranges (an older build must refuse)
EXTENSION = ".lipdub"
AUTOSAVE_SUFFIX = ".autosave"


@dataclass
class VoiceTrack:
    path: str                 # absolute in memory
    name: str = ""
    performer: bool = False   # a video of the voice performer: the dub's mouth follows theirs (core.performer)

    def display_name(self) -> str:
        return (self.name or Path(self.path).name) + (" (performer video)" if self.performer else "")


@dataclass
class ExportSettings:
    output: Optional[str] = None   # absolute in memory
    crf: int = 18
    preset: str = "medium"


@dataclass
class Project:
    video: Optional[str] = None                     # absolute path in memory
    voices: List[VoiceTrack] = field(default_factory=list)
    active_voice: int = -1                          # index into voices, -1 when there is none
    face_track: Optional[int] = None                # None: the primary track
    engine: str = engines.DEFAULT_ENGINE
    engine_options: Dict[str, Any] = field(default_factory=dict)   # {engine name: its options}; absent: defaults
    device: str = AUTO
    models_dir: Optional[str] = None
    mask: MaskSettings = field(default_factory=MaskSettings)
    pads: Tuple[int, int, int, int] = (0, 10, 0, 0)
    length_policy: str = "shortest"
    range: Optional[Tuple[int, int]] = None         # [in, out) output frames
    teeth_frame: Optional[int] = None
    teeth_strength: float = 1.0
    adapt: bool = True                              # learn the actor from the clip's own voice (core.adapt)
    export: ExportSettings = field(default_factory=ExportSettings)
    playhead: int = 0
    # the editor's corrections with their undo/redo history (compared through to_json)
    history: EditHistory = field(default_factory=EditHistory, compare=False)
    # not serialised
    path: Optional[str] = field(default=None, compare=False)

    @property
    def edits(self):
        return self.history.edits

    # ---- voices -------------------------------------------------------------------------------------------
    @property
    def voice(self) -> Optional[VoiceTrack]:
        if 0 <= self.active_voice < len(self.voices):
            return self.voices[self.active_voice]
        return None

    def add_voice(self, path: str, name: str = "", activate: bool = True, performer: bool = False) -> int:
        """Add a voice track (`performer`: a video of the voice performer, whose mouth the dub follows)."""
        path = str(Path(path).resolve())
        for i, v in enumerate(self.voices):
            if v.path == path:
                v.performer = v.performer or performer
                if activate:
                    self.active_voice = i
                return i
        self.voices.append(VoiceTrack(path, name, performer))
        if activate or self.active_voice < 0:
            self.active_voice = len(self.voices) - 1
        return len(self.voices) - 1

    def remove_voice(self, index: int) -> None:
        del self.voices[index]
        if not self.voices:
            self.active_voice = -1
        elif self.active_voice >= index:
            self.active_voice = max(0, self.active_voice - 1)

    def missing_media(self) -> List[str]:
        paths = ([self.video] if self.video else []) + [v.path for v in self.voices]
        return [p for p in paths if not Path(p).is_file()]

    @property
    def title(self) -> str:
        if self.path:
            return Path(self.path).stem
        if self.video:
            return Path(self.video).stem
        return "Untitled"

    # ---- conversion ---------------------------------------------------------------------------------------
    def to_dub_settings(self, output: Optional[str] = None, frame_range=None, **overrides):
        """The `core.pipeline.DubSettings` of this project (what export and preview run)."""
        from .pipeline import DubSettings

        if not self.video:
            raise ProjectError("The project has no video: open a video first.")
        if self.voice is None:
            raise ProjectError("The project has no voice track: add a voice track first.")
        kw = dict(video=self.video, audio=self.voice.path, driver=self.voice.path if self.voice.performer else None,
                  output=output, engine=self.engine,
                  engine_options=dict(self.engine_options), face_track=self.face_track, pads=tuple(self.pads),
                  mask=MaskSettings(**asdict(self.mask)), length_policy=self.length_policy,
                  frame_range=tuple(frame_range) if frame_range is not None else None,
                  crf=self.export.crf, preset=self.export.preset, device=self.device, models_dir=self.models_dir,
                  teeth_frame=self.teeth_frame, teeth_strength=self.teeth_strength, adapt=self.adapt)
        if "edits" in {f.name for f in fields(DubSettings)}:
            from .edits import Edits

            kw["edits"] = Edits.from_json(self.history.edits.to_json())   # a copy: the job owns it
        kw.update(overrides)
        return DubSettings(**kw)

    def to_json(self, base_dir: Optional[Path] = None) -> dict:
        """The JSON document. Media paths are made relative to `base_dir` when given (and possible)."""

        def rel(p):
            return _relativize(p, base_dir) if p else p

        return {
            "format": FORMAT,
            "version": SCHEMA_VERSION,
            "video": rel(self.video),
            "voices": [{"path": rel(v.path), "name": v.name, **({"performer": True} if v.performer else {})}
                       for v in self.voices],
            "active_voice": self.active_voice,
            "face_track": self.face_track,
            "engine": self.engine,
            "engine_options": {name: _engine_options_json(name, opts, rel) for name, opts in self.engine_options.items()},
            "device": self.device,
            "models_dir": self.models_dir,
            "mask": asdict(self.mask),
            "pads": list(self.pads),
            "length_policy": self.length_policy,
            "range": list(self.range) if self.range is not None else None,
            "teeth_frame": self.teeth_frame,
            "teeth_strength": self.teeth_strength,
            "adapt": self.adapt,
            "export": {"output": rel(self.export.output), "crf": self.export.crf, "preset": self.export.preset},
            "playhead": self.playhead,
            "edits": self.history.to_json(),
        }

    @classmethod
    def from_json(cls, doc: dict, base_dir: Optional[Path] = None, source: str = "the project") -> "Project":
        """Parse and validate a document (any supported version). Relative paths resolve against `base_dir`."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ProjectError(f"{source} is not a LipDub Studio project (no '\"format\": \"{FORMAT}\"' field).")
        version = doc.get("version")
        if not isinstance(version, int) or version < 1:
            raise ProjectError(f"{source} has an invalid schema version {version!r}.")
        if version > SCHEMA_VERSION:
            raise ProjectError(f"{source} was saved by a newer LipDub Studio (project version {version}, this "
                               f"version reads up to {SCHEMA_VERSION}): update the application to open it.")
        doc = _migrate(doc, version)

        def err(what):
            return ProjectError(f"{source} is damaged: {what}.")

        def absp(p, key):
            if p is None:
                return None
            if not isinstance(p, str) or not p:
                raise err(f"'{key}' must be a file path")
            return _absolutize(p, base_dir)

        def opt_int(key, lo=None):
            v = doc.get(key)
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
                raise err(f"'{key}' must be a whole number{'' if lo is None else f' >= {lo}'}")
            return v

        p = cls()
        p.video = absp(doc.get("video"), "video")
        voices = doc.get("voices", [])
        if not isinstance(voices, list):
            raise err("'voices' must be a list")
        for k, v in enumerate(voices):
            if not isinstance(v, dict) or "path" not in v:
                raise err(f"voice track {k + 1} has no path")
            name = v.get("name") or ""
            if not isinstance(name, str):
                raise err(f"voice track {k + 1} has a non-text name")
            performer = v.get("performer", False)
            if not isinstance(performer, bool):
                raise err(f"voice track {k + 1}: 'performer' must be true or false")
            p.voices.append(VoiceTrack(absp(v["path"], "voices.path"), name, performer))
        active = doc.get("active_voice", 0 if p.voices else -1)
        if isinstance(active, bool) or not isinstance(active, int) or not (-1 <= active < len(p.voices)):
            raise err(f"'active_voice' {active!r} does not name one of the {len(p.voices)} voice tracks")
        p.active_voice = active if p.voices else -1
        if p.voices and p.active_voice < 0:
            p.active_voice = 0
        p.face_track = opt_int("face_track", 0)
        engine = doc.get("engine", engines.DEFAULT_ENGINE)
        if engine not in engines.names():
            raise err(f"unknown engine {engine!r} (expected one of {', '.join(engines.names())})")
        p.engine = engine
        for key in ("device", "models_dir"):
            v = doc.get(key, getattr(p, key))
            if v is not None and not isinstance(v, str):
                raise err(f"'{key}' must be text")
            setattr(p, key, v)
        if p.device is None:
            p.device = AUTO
        if p.models_dir:
            p.models_dir = _absolutize(p.models_dir, base_dir)
        opts = doc.get("engine_options", {})
        if not isinstance(opts, dict):
            raise err("'engine_options' must be an object")
        for name, od in opts.items():
            if name not in engines.names():
                continue   # an engine this installation does not have: its options are dropped
            try:
                p.engine_options[name] = _engine_options_from_json(name, od, base_dir)
            except ValueError as exc:
                raise err(str(exc)) from None
        mask = doc.get("mask", {})
        if not isinstance(mask, dict):
            raise err("'mask' must be an object")
        m = MaskSettings()
        for f in fields(MaskSettings):
            if f.name in mask:
                v = mask[f.name]
                if f.name == "color_match":
                    if not isinstance(v, bool):
                        raise err("'mask.color_match' must be true or false")
                elif isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= v <= 10):
                    raise err(f"'mask.{f.name}' must be a number between 0 and 10")
                setattr(m, f.name, float(v) if f.name != "color_match" else v)
        p.mask = m
        pads = doc.get("pads", [0, 10, 0, 0])
        if (not isinstance(pads, list) or len(pads) != 4
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in pads)):
            raise err("'pads' must be four whole numbers")
        p.pads = tuple(pads)
        lp = doc.get("length_policy", "shortest")
        if lp not in LENGTH_POLICIES:
            raise err(f"unknown length policy {lp!r}")
        p.length_policy = lp
        rng = doc.get("range")
        if rng is not None:
            if (not isinstance(rng, list) or len(rng) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in rng)
                    or rng[0] < 0 or rng[1] <= rng[0]):
                raise err(f"'range' {rng!r} must be [in, out) with 0 <= in < out")
            p.range = (rng[0], rng[1])
        p.teeth_frame = opt_int("teeth_frame", 0)
        ts = doc.get("teeth_strength", 1.0)
        if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not (0 <= ts <= 2):
            raise err("'teeth_strength' must be a number between 0 and 2")
        p.teeth_strength = float(ts)
        adapt = doc.get("adapt", True)   # projects written before adaptation existed: on, like a new project
        if not isinstance(adapt, bool):
            raise err("'adapt' must be true or false")
        p.adapt = adapt
        ex = doc.get("export", {})
        if not isinstance(ex, dict):
            raise err("'export' must be an object")
        crf = ex.get("crf", 18)
        if isinstance(crf, bool) or not isinstance(crf, int) or not (0 <= crf <= 51):
            raise err("'export.crf' must be a whole number between 0 and 51")
        preset = ex.get("preset", "medium")
        if preset not in PRESETS:
            raise err(f"unknown export preset {preset!r}")
        out = ex.get("output")
        p.export = ExportSettings(output=absp(out, "export.output") if out else None, crf=crf, preset=preset)
        ph = doc.get("playhead", 0)
        p.playhead = ph if isinstance(ph, int) and not isinstance(ph, bool) and ph >= 0 else 0
        ed = doc.get("edits")
        if ed is not None and not isinstance(ed, dict):
            raise err("'edits' must be an object")
        try:
            p.history = EditHistory.from_json(ed)
        except ProjectError as exc:
            raise ProjectError(f"{source}: {exc}") from exc
        return p

    # ---- files --------------------------------------------------------------------------------------------
    def save(self, path: Optional[str] = None) -> str:
        """Write the project atomically to `path` (default: where it was loaded from/saved to last).
        Removes the autosave copy. Returns the absolute path written."""
        path = path or self.path
        if not path:
            raise ProjectError("The project has never been saved: choose a file name.")
        target = Path(path).resolve()
        if not target.parent.is_dir():
            raise ProjectError(f"Cannot save the project: the folder {target.parent} does not exist.")
        doc = self.to_json(base_dir=target.parent)
        try:
            _atomic_write_json(target, doc)
        except OSError as exc:
            raise ProjectError(f"Cannot save the project to {target}: {exc.strerror or exc}.") from exc
        old_autosave = autosave_path(self.path) if self.path else None
        self.path = str(target)
        for a in {old_autosave, autosave_path(self.path)}:
            if a is not None:
                Path(a).unlink(missing_ok=True)
        return self.path

    @classmethod
    def load(cls, path: str) -> "Project":
        target = Path(path)
        if not target.is_file():
            raise ProjectError(f"The project file does not exist: {path}")
        try:
            text = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProjectError(f"Cannot read the project file {path}: {exc}") from exc
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProjectError(f"The project file {path} is not valid JSON (line {exc.lineno}): it may be "
                               "damaged; an autosave copy may exist next to it.") from exc
        p = cls.from_json(doc, base_dir=target.resolve().parent, source=f"The project file {path}")
        p.path = str(target.resolve())
        return p

    # ---- autosave -----------------------------------------------------------------------------------------
    def write_autosave(self, autosave_dir: Optional[str] = None) -> str:
        """Write the crash-recovery copy (absolute paths). Next to the project file when it has one, else
        in `autosave_dir` (the app's data folder). Returns its path."""
        if self.path:
            target = Path(autosave_path(self.path))
        else:
            d = Path(autosave_dir or default_autosave_dir())
            d.mkdir(parents=True, exist_ok=True)
            target = d / f"untitled-{os.getpid()}{EXTENSION}{AUTOSAVE_SUFFIX}"
        doc = self.to_json(base_dir=None)
        doc["autosave_of"] = self.path
        doc["autosave_time"] = time.time()
        _atomic_write_json(target, doc)
        return str(target)

    def discard_autosave(self, autosave_dir: Optional[str] = None) -> None:
        if self.path:
            Path(autosave_path(self.path)).unlink(missing_ok=True)
        d = Path(autosave_dir or default_autosave_dir())
        (d / f"untitled-{os.getpid()}{EXTENSION}{AUTOSAVE_SUFFIX}").unlink(missing_ok=True)


@dataclass
class Recoverable:
    autosave: str            # the autosave file
    project: Optional[str]   # the project it belongs to (None: never saved)
    time: float              # when it was written


def autosave_path(project_path: str) -> str:
    p = Path(project_path)
    return str(p.with_name("." + p.name + AUTOSAVE_SUFFIX))


def default_autosave_dir() -> str:
    """$LIPDUB_AUTOSAVE_DIR, else `autosave` in the application's user data folder (core.paths)."""
    env = os.environ.get("LIPDUB_AUTOSAVE_DIR")
    if env:
        return env
    from .paths import user_data_dir

    return str(user_data_dir("autosave"))


def earlier_autosave_dir() -> Path:
    """Where versions before 2026-11-30 kept untitled autosaves (a data folder named "lipdub"): still searched for
    copies to recover, never written."""
    import platformdirs

    return Path(platformdirs.user_data_dir("lipdub")) / "autosave"


def find_recoverable(autosave_dir: Optional[str] = None, project_paths=()) -> List[Recoverable]:
    """Autosave copies left by a session that did not end cleanly: untitled ones in `autosave_dir`, and the
    ones next to each of `project_paths` that are newer than the project file itself."""
    out = []
    folders = [Path(autosave_dir or default_autosave_dir())]
    if autosave_dir is None and not os.environ.get("LIPDUB_AUTOSAVE_DIR"):
        folders.append(earlier_autosave_dir())
    candidates = [a for d in folders if d.is_dir() for a in d.glob(f"*{EXTENSION}{AUTOSAVE_SUFFIX}")]
    for pp in project_paths:
        a = Path(autosave_path(pp))
        if a.is_file():
            candidates.append(a)
    seen = set()
    for a in candidates:
        a = a.resolve()
        if a in seen:
            continue
        seen.add(a)
        try:
            doc = json.loads(a.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            continue
        if a.name.startswith("untitled-") and a.name[len("untitled-"):].split(".")[0] == str(os.getpid()):
            continue  # our own live autosave
        proj = doc.get("autosave_of")
        t = float(doc.get("autosave_time") or a.stat().st_mtime)
        if proj and Path(proj).is_file() and Path(proj).stat().st_mtime >= a.stat().st_mtime:
            continue  # the project was saved after this autosave
        out.append(Recoverable(str(a), proj, t))
    out.sort(key=lambda r: -r.time)
    return out


def recover(autosave_file: str) -> Project:
    """Open an autosave copy. The result belongs to the original project path (if any) and is unsaved."""
    p = Project.load(autosave_file)
    doc = json.loads(Path(autosave_file).read_text(encoding="utf-8"))
    proj = doc.get("autosave_of")
    p.path = proj if isinstance(proj, str) and proj else None
    return p


# ---- helpers ----------------------------------------------------------------------------------------------
def _migrate(doc: dict, version: int) -> dict:
    """Bring an older document up to SCHEMA_VERSION (one step per version). Version 1 is the first."""
    doc = dict(doc)
    if version == 1:   # the Wav2Lip generator was a top-level setting, and the CPU the default device
        ckpt = doc.pop("checkpoint", None)
        if ckpt is not None:
            opts = dict(doc.get("engine_options") or {})
            opts["wav2lip"] = {**opts.get("wav2lip", {}), "checkpoint": ckpt}
            doc["engine_options"] = opts
        doc.setdefault("device", "cpu")
        version = 2
    if version == 2:   # version 3 only added fields (voices[].performer, the "voice_driven" override kind)
        version = 3
    doc["version"] = SCHEMA_VERSION
    return doc


def _is_file_path(value: str) -> bool:
    """A model option names a registry entry ("wav2lip_gan") or a file ("weights/w.pth")."""
    return os.sep in value or "/" in value or Path(value).suffix != ""


def _model_fields(name: str) -> List[str]:
    return [f.name for f in engines.get(name).fields if f.kind == "model"]


def _engine_options_json(name: str, options, rel) -> dict:
    doc = engines.options_to_json(options)
    for key in _model_fields(name):
        if isinstance(doc.get(key), str) and _is_file_path(doc[key]):
            doc[key] = rel(doc[key])
    return doc


def _engine_options_from_json(name: str, doc, base_dir: Optional[Path]):
    options = engines.options_from_json(name, doc)
    for key in _model_fields(name):
        value = getattr(options, key)
        if isinstance(value, str) and value and _is_file_path(value):
            setattr(options, key, _absolutize(value, base_dir))
    return options


def _relativize(p: str, base_dir: Optional[Path]) -> str:
    if base_dir is None:
        return str(Path(p).resolve())
    try:
        return Path(os.path.relpath(Path(p).resolve(), Path(base_dir).resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return str(Path(p).resolve())


def _absolutize(p: str, base_dir: Optional[Path]) -> str:
    q = Path(p).expanduser()
    if not q.is_absolute() and base_dir is not None:
        q = Path(base_dir) / q
    return str(q.resolve())


def _atomic_write_json(target: Path, doc: dict) -> None:
    with atomic_write(target, fsync=True) as fh:     # a crash mid-save never costs the previous project file
        json.dump(doc, fh, indent=2)
        fh.write("\n")
