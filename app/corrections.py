"""The corrections panel: what the editor changes where the machine got it wrong (core.edits).

Range corrections act on the in/out range: keep the original frames, force the mouth closed, force an
engine, or take the teeth from the frame under the playhead. The voice can be shifted by whole frames.
Tools draw on the frame: a face box (re-tracks the landmarks from there) or a mask area to add or remove.
Everything goes through `core.edits.EditHistory`, so it is undoable (Ctrl+Z / Ctrl+Shift+Z) and saved.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QPushButton, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from core.edits import OVERRIDE_LABELS
from core.engines import registry as engines

from .session import commands as cmd
from .timeline import timecode


class CorrectionsPanel(QWidget):
    """Emits command(Command) (`app.session.commands`); the session carries it out on the project's history."""

    command = Signal(object)
    toolChanged = Signal(object)          # None | "box" | "add" | "remove"
    jumpTo = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)

        g = QGroupBox("In/out range")
        gl = QGridLayout(g)
        self.range_label = QLabel("No range: set one with I and O, or Shift+drag on the timeline")
        self.range_label.setWordWrap(True)
        gl.addWidget(self.range_label, 0, 0, 1, 2)
        self.keep_button = QPushButton("Keep original")
        self.keep_button.setToolTip("Do not dub these frames")
        self.keep_button.clicked.connect(lambda: self.command.emit(cmd.AddOverride("keep_original")))
        self.closed_button = QPushButton("Mouth closed")
        self.closed_button.setToolTip("Dub these frames with the mouth closed (e.g. the voice is someone else's)")
        self.closed_button.clicked.connect(lambda: self.command.emit(cmd.AddOverride("mouth_closed")))
        self.voice_button = QPushButton("Driven by voice")
        self.voice_button.setToolTip("With a performer video as the voice: these frames follow the voice, not the "
                                     "performer's mouth (e.g. the performer looks away)")
        self.voice_button.clicked.connect(lambda: self.command.emit(cmd.AddOverride("voice_driven")))
        gl.addWidget(self.keep_button, 1, 0)
        gl.addWidget(self.closed_button, 1, 1)
        self.engine_combo = QComboBox()
        for plugin in engines.plugins():
            self.engine_combo.addItem(plugin.label, plugin.name)
        self.engine_button = QPushButton("Use engine")
        self.engine_button.setToolTip("Dub these frames with the chosen engine")
        self.engine_button.clicked.connect(
            lambda: self.command.emit(cmd.AddOverride("engine", self.engine_combo.currentData())))
        gl.addWidget(self.engine_combo, 2, 0)
        gl.addWidget(self.engine_button, 2, 1)
        self.teeth_button = QPushButton("Teeth from this frame")
        self.teeth_button.setToolTip("Use the teeth seen at the playhead for the in/out range")
        self.teeth_button.clicked.connect(lambda: self.command.emit(cmd.TeethFromPlayhead()))
        gl.addWidget(self.teeth_button, 3, 0)
        gl.addWidget(self.voice_button, 3, 1)
        self.range_buttons = [self.keep_button, self.closed_button, self.engine_button, self.teeth_button,
                              self.voice_button]
        lay.addWidget(g)

        g = QGroupBox("Voice and frame")
        gl = QGridLayout(g)
        gl.addWidget(QLabel("Voice offset"), 0, 0)
        self.offset_spin = QSpinBox()
        self.offset_spin.setRange(-500, 500)
        self.offset_spin.setSuffix(" frames")
        self.offset_spin.setToolTip("Shift the voice: positive plays it later")
        self.offset_spin.editingFinished.connect(
            lambda: self.command.emit(cmd.SetVoiceOffset(self.offset_spin.value())))
        gl.addWidget(self.offset_spin, 0, 1)
        self.key_button = QPushButton("Mask keyframe here")
        self.key_button.setToolTip("Store the mask settings at the playhead; with keyframes the mask is "
                                   "interpolated between them and edits update the keyframe here")
        self.key_button.clicked.connect(lambda: self.command.emit(cmd.KeyMask()))
        self.unkey_button = QPushButton("Delete keyframe")
        self.unkey_button.clicked.connect(lambda: self.command.emit(cmd.UnkeyMask()))
        gl.addWidget(self.key_button, 1, 0)
        gl.addWidget(self.unkey_button, 1, 1)
        tools = QHBoxLayout()
        self.tool_buttons = {}
        self._tools = QButtonGroup(self)
        self._tools.setExclusive(False)
        for tool, text, tip in (("box", "Fix box", "Drag a box around the face in this frame: landmarks are "
                                 "re-tracked from it"),
                                ("add", "+ Mask", "Click the corners of an area to add to the mask"),
                                ("remove", "− Mask", "Click the corners of an area to take out of the mask")):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setCheckable(True)
            b.toggled.connect(lambda on, t=tool: self._tool_toggled(t, on))
            self._tools.addButton(b)
            self.tool_buttons[tool] = b
            tools.addWidget(b)
        gl.addLayout(tools, 2, 0, 1, 2)
        self.mask_state = QLabel("")
        self.mask_state.setWordWrap(True)
        gl.addWidget(self.mask_state, 3, 0, 1, 2)
        lay.addWidget(g)

        g = QGroupBox("Corrections")
        gl = QVBoxLayout(g)
        self.list = QListWidget()
        self.list.setToolTip("Double-click to go there")
        self.list.itemActivated.connect(lambda it: self.jumpTo.emit(int(it.data(Qt.UserRole + 1))))
        gl.addWidget(self.list)
        row = QHBoxLayout()
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove_selected)
        row.addStretch(1)
        row.addWidget(self.remove_button)
        gl.addLayout(row)
        lay.addWidget(g, 1)
        self.fps = 25.0
        self.set_range(None)

    def _tool_toggled(self, tool: str, on: bool) -> None:
        if on:
            for t, b in self.tool_buttons.items():
                if t != tool and b.isChecked():
                    b.blockSignals(True)
                    b.setChecked(False)
                    b.blockSignals(False)
            self.toolChanged.emit(tool)
        elif not any(b.isChecked() for b in self.tool_buttons.values()):
            self.toolChanged.emit(None)

    def clear_tool(self) -> None:
        for b in self.tool_buttons.values():
            b.setChecked(False)

    def set_range(self, rng) -> None:
        for b in self.range_buttons:
            b.setEnabled(rng is not None)
        if rng is None:
            self.range_label.setText("No range: set one with I and O, or Shift+drag on the timeline")
        else:
            self.range_label.setText(f"Frames {rng[0]}–{rng[1] - 1} ({timecode(rng[0], self.fps)} – "
                                     f"{timecode(rng[1], self.fps)})")

    def show_edits(self, edits, playhead: int) -> None:
        """Refresh from a core.edits.Edits."""
        self.offset_spin.blockSignals(True)
        self.offset_spin.setValue(int(edits.voice_offset))
        self.offset_spin.blockSignals(False)
        keys = [k.frame for k in edits.mask_keyframes]
        self.unkey_button.setEnabled(playhead in keys)
        self.mask_state.setText(f"Mask: {len(keys)} keyframe(s), edits at the playhead update its keyframe"
                                if keys else "Mask: the same for the whole clip")
        self.list.clear()

        def add(text, kind, index, frame):
            it = QListWidgetItem(text)
            it.setData(Qt.UserRole, (kind, index))
            it.setData(Qt.UserRole + 1, frame)
            self.list.addItem(it)

        for i, o in enumerate(edits.overrides):
            label = OVERRIDE_LABELS.get(o.kind, f"Engine {o.engine}")
            add(f"{label}: frames {o.start}–{o.end - 1}", "override", i, o.start)
        for i, t in enumerate(edits.teeth_shots):
            add(f"Teeth from frame {t.frame}: frames {t.start}–{t.end - 1}", "teeth", i, t.start)
        for k in edits.mask_keyframes:
            n = len(k.polygons)
            add(f"Mask keyframe at {k.frame}" + (f" ({n} drawn area{'s' if n != 1 else ''})" if n else ""),
                "mask_key", k.frame, k.frame)
        for i, b in enumerate(edits.box_fixes):
            add(f"Face box fixed at frame {b.frame}", "box", i, b.frame)
        if edits.voice_offset:
            add(f"Voice offset {edits.voice_offset:+d} frames", "voice_offset", 0, 0)
        self.remove_button.setEnabled(self.list.count() > 0)

    def _remove_selected(self) -> None:
        it = self.list.currentItem()
        if it is not None:
            self.command.emit(cmd.RemoveEdit(*it.data(Qt.UserRole)))
