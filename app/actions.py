"""The window's commands as data: menu, text, shortcut, tip, icon, slot and when each is enabled.

`slot` is a dotted path from the window ("media.open_video_dialog"), called with `args` (checkable actions
also get the new state). `enabled` names a condition on the session (see CONDITIONS).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Dict, Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QStyle

SP = QStyle.StandardPixmap
KS = QKeySequence.StandardKey


@dataclass(frozen=True)
class Spec:
    name: str
    menu: str
    text: str
    slot: str
    args: tuple = ()
    shortcut: object = None           # str, a QKeySequence.StandardKey, or a tuple of them
    tip: str = ""
    icon: Optional[SP] = None
    checkable: bool = False
    checked: bool = False
    group: Optional[str] = None       # exclusive group of checkable actions
    enabled: str = "always"


SEPARATOR = None
RECENT = "recent"      # where File ▸ Open Recent goes

SPECS = (
    Spec("new_project", "&File", "&New Project", "project_io.new_project", shortcut=KS.New),
    Spec("open_video", "&File", "Open &Video…", "media.open_video_dialog", shortcut="Ctrl+Shift+O",
         tip="Open the video to dub", icon=SP.SP_DialogOpenButton),
    Spec("add_voice", "&File", "Add Voice &Track…", "media.add_voice_dialog", shortcut="Ctrl+Shift+A",
         tip="Add a new voice track (audio or video file)", icon=SP.SP_MediaVolume),
    Spec("add_performer", "&File", "Add &Performer Video…", "media.add_performer_dialog",
         tip="Add a video of the voice performer: its sound is the voice and the dub's mouth follows theirs "
             "(classic engine)"),
    Spec("open_project", "&File", "&Open Project…", "project_io.open_project_dialog", shortcut=KS.Open),
    RECENT, SEPARATOR,
    Spec("save", "&File", "&Save Project", "project_io.save_project", shortcut=KS.Save),
    Spec("save_as", "&File", "Save Project &As…", "project_io.save_project_as", shortcut=KS.SaveAs),
    Spec("export", "&File", "&Export…", "show_export", shortcut="Ctrl+E", tip="Export the dubbed video",
         icon=SP.SP_DialogSaveButton, enabled="video_and_voice"),
    SEPARATOR,
    Spec("quit", "&File", "&Quit", "close", shortcut=KS.Quit),

    Spec("undo", "&Edit", "&Undo", "undo", shortcut=KS.Undo, enabled="can_undo"),
    Spec("redo", "&Edit", "&Redo", "redo", shortcut=(KS.Redo, "Ctrl+Shift+Z"), enabled="can_redo"),
    SEPARATOR,
    Spec("set_in", "&Edit", "Set &In", "navigation.set_in", shortcut="I", tip="Start the dub range at the playhead",
         enabled="video"),
    Spec("set_out", "&Edit", "Set &Out", "navigation.set_out", shortcut="O",
         tip="End the dub range after the playhead", enabled="video"),
    Spec("clear_range", "&Edit", "&Clear Range", "navigation.clear_range", shortcut="Alt+X", enabled="video"),
    Spec("remove_voice", "&Edit", "&Remove Active Voice Track", "media.remove_active_voice", enabled="voice"),
    SEPARATOR,
    Spec("settings", "&Edit", "Engine and &Models…", "show_settings", shortcut="Ctrl+,"),

    Spec("prev_frame", "&Navigate", "Previous Frame", "navigation.step", (-1,), shortcut="Left"),
    Spec("next_frame", "&Navigate", "Next Frame", "navigation.step", (1,), shortcut="Right"),
    Spec("back_second", "&Navigate", "Back One Second", "navigation.step_seconds", (-1,), shortcut="Shift+Left"),
    Spec("forward_second", "&Navigate", "Forward One Second", "navigation.step_seconds", (1,),
         shortcut="Shift+Right"),
    Spec("first_frame", "&Navigate", "First Frame", "navigation.go_to", (0,), shortcut="Home"),
    Spec("last_frame", "&Navigate", "Last Frame", "navigation.go_to", (-1,), shortcut="End"),
    Spec("next_low", "&Navigate", "Next Low-Confidence Stretch", "navigation.jump_low", (1,), shortcut="N",
         tip="Jump to the next stretch where lips and voice disagree"),
    Spec("prev_low", "&Navigate", "Previous Low-Confidence Stretch", "navigation.jump_low", (-1,),
         shortcut="Shift+N"),
    Spec("next_flagged", "&Navigate", "Next &Flagged Frame", "navigation.jump_flagged", (1,), shortcut="F",
         tip="Jump to the next frame the quality check flagged (blur, seam, flicker, open mouth in silence)"),
    Spec("prev_flagged", "&Navigate", "Previous Flagged Frame", "navigation.jump_flagged", (-1,),
         shortcut="Shift+F"),

    Spec("zoom_in", "&View", "Zoom &In", "timeline.zoom", (2.0,), shortcut="="),
    Spec("zoom_out", "&View", "Zoom &Out", "timeline.zoom", (0.5,), shortcut="-"),
    Spec("fit", "&View", "&Fit Timeline", "timeline.fit", shortcut="\\"),
    SEPARATOR,
    Spec("preview", "&View", "&Preview Dubbed Frame", "playback.set_preview_enabled", shortcut="P",
         tip="Render the dubbed frame at the playhead", checkable=True, enabled="video_and_voice"),
    Spec("mode_after", "&View", "&After (dubbed)", "playback.set_preview_mode", ("after",), shortcut="A",
         checkable=True, checked=True, group="mode"),
    Spec("mode_before", "&View", "&Before (original)", "playback.set_preview_mode", ("before",), shortcut="B",
         checkable=True, group="mode"),
    Spec("mode_split", "&View", "&Split View", "playback.set_preview_mode", ("split",), shortcut="S",
         checkable=True, group="mode"),
    SEPARATOR,
    Spec("show_box", "&View", "Show Face &Box", "face_view.set_layer", ("show_box",), checkable=True, checked=True),
    Spec("show_landmarks", "&View", "Show &Landmarks", "face_view.set_layer", ("show_landmarks",), checkable=True,
         checked=True),
    Spec("show_mask", "&View", "Show &Mask Outline", "face_view.set_layer", ("show_mask",), checkable=True,
         checked=True),

    Spec("track", "&Analyze", "&Track Faces", "analysis.start_tracking", shortcut="Ctrl+T",
         tip="Find and follow the faces in the video", icon=SP.SP_FileDialogContentsView, enabled="video"),
    Spec("score", "&Analyze", "&Score Sync", "analysis.start_scoring", shortcut="Ctrl+R",
         tip="Measure how well the lips follow the voice", icon=SP.SP_BrowserReload, enabled="video_and_voice"),
    Spec("score_dubbed", "&Analyze", "Score &Dubbed Result", "rescore.score_dubbed", shortcut="Ctrl+Shift+R",
         tip="Dub the in/out range (or the whole clip) and measure its sync; after each correction only the "
             "frames it touched are re-scored"),
    Spec("play", "&Analyze", "&Play Dubbed", "playback.set_playing", shortcut="Space",
         tip="Play the in/out range (or from the playhead) dubbed, with the active voice", checkable=True,
         icon=SP.SP_MediaPlay, enabled="video"),
    Spec("half_speed", "&Analyze", "Play at &Half Speed", "playback.set_half_speed", shortcut="Shift+Space",
         tip="Play (dubbed or not) at half speed, the voice too: to check the lips closely", checkable=True),
    Spec("render_play", "&Analyze", "&Render and Play Dubbed Range", "playback.render_and_play",
         shortcut="Ctrl+Shift+P", tip="Dub the in/out range (or 5 s from the playhead) to a file and play it "
                                      "with its voice", icon=SP.SP_MediaSeekForward, enabled="video_and_voice"),

    Spec("about", "&Help", "&About LipDub Studio", "show_about"),
)

TOOLBAR = ("open_video", "add_voice", "voice_combo", SEPARATOR, "track", "score", "play", "render_play", SEPARATOR,
           "preview", "mode_combo", SEPARATOR, "export")

CONDITIONS = {
    "always": lambda s: True,
    "video": lambda s: s.has_video,
    "voice": lambda s: s.has_voice,
    "video_and_voice": lambda s: s.has_video and s.has_voice,
    "can_undo": lambda s: s.project.history.can_undo,
    "can_redo": lambda s: s.project.history.can_redo,
}


class ActionTable:
    """Builds the QActions, menus and enabled states from SPECS for a window."""

    def __init__(self, win, specs=SPECS):
        self.win = win
        self.specs = [s for s in specs if isinstance(s, Spec)]
        self.actions: Dict[str, QAction] = {}
        self.groups: Dict[str, QActionGroup] = {}
        self.recent_menu = QMenu("Open &Recent", win)
        menus: Dict[str, QMenu] = {}
        last_menu = None
        for spec in specs:
            if spec is SEPARATOR or spec == RECENT:
                if last_menu is not None:
                    last_menu.addSeparator() if spec is SEPARATOR else last_menu.addMenu(self.recent_menu)
                continue
            menu = menus.get(spec.menu) or menus.setdefault(spec.menu, win.menuBar().addMenu(spec.menu))
            last_menu = menu
            menu.addAction(self._make(spec))

    def _make(self, spec: Spec) -> QAction:
        a = QAction(spec.text, self.win)
        keys = spec.shortcut if isinstance(spec.shortcut, tuple) else (spec.shortcut,) if spec.shortcut else ()
        if keys:
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(Qt.WindowShortcut)
        if spec.tip:
            a.setStatusTip(spec.tip)
            a.setToolTip(spec.tip)
        if spec.icon is not None:
            a.setIcon(self.win.style().standardIcon(spec.icon))
        a.setCheckable(spec.checkable)
        a.setChecked(spec.checked)
        if spec.group:
            self.groups.setdefault(spec.group, QActionGroup(self.win)).addAction(a)
            a.toggled.connect(lambda on, sp=spec: on and self._call(sp))
        elif spec.checkable:
            a.toggled.connect(lambda on, sp=spec: self._call(sp, on))
        else:
            a.triggered.connect(lambda *_, sp=spec: self._call(sp))
        self.win.addAction(a)
        self.actions[spec.name] = a
        return a

    def _call(self, spec: Spec, *extra) -> None:
        fn = operator.attrgetter(spec.slot)(self.win)
        fn(*spec.args, *extra)

    def __getitem__(self, name: str) -> QAction:
        return self.actions[name]

    def refresh(self) -> None:
        """Enabled states from the session."""
        for spec in self.specs:
            self.actions[spec.name].setEnabled(CONDITIONS[spec.enabled](self.win.session))

    def show_history(self, history) -> None:
        self.refresh()
        undo, redo = self.actions["undo"], self.actions["redo"]
        undo.setText(f"&Undo {history.undo_label}" if history.can_undo else "&Undo")
        redo.setText(f"&Redo {history.redo_label}" if history.can_redo else "&Redo")
