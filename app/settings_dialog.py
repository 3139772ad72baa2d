"""Engine and model settings (dialog), and the dub-settings side panel (face, mask, teeth, length)."""
from __future__ import annotations

import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QSpinBox, QStackedWidget, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from core.device import AUTO
from core.engines import registry as engines
from core.engines.base import MaskSettings

from . import core_bridge

def cuda_available() -> Optional[bool]:
    """True/False if torch is already loaded, None if unknown (never imports torch on the UI thread)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def registry_specs(kinds=None):
    from core.model_catalog import known_models

    specs = list(known_models().values())
    if kinds:
        specs = [s for s in specs if getattr(s, "kind", "") in kinds]
    return specs


def spec_status(spec, models_dir: str) -> str:
    """'shipped', 'present' or 'missing' (existence only; the SHA-256 is verified when the model loads)."""
    if getattr(spec, "shipped", False):
        return "shipped"
    return "present" if (Path(models_dir) / spec.filename).is_file() else "missing"


class EngineOptionsForm(QWidget):
    """One engine's options, rendered from its plug-in's declarative `OptionField`s."""

    modelChosen = Signal()

    def __init__(self, plugin, options, parent=None):
        super().__init__(parent)
        self.plugin = plugin
        self.options = options
        self.widgets = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for f in plugin.fields:
            w = self._widget(f, getattr(options, f.name))
            self.widgets[f.name] = w
            if f.tip:
                w.setToolTip(f.tip)
            if f.kind == "model":
                other = QPushButton("Other file…")
                other.clicked.connect(lambda _=False, c=w: self._browse_model(c))
                row = QHBoxLayout()
                row.addWidget(w, 1)
                row.addWidget(other)
                form.addRow(f.label, _wrap(row))
            else:
                form.addRow(f.label, w)

    def _widget(self, f, value):
        if f.kind == "float":
            w = QDoubleSpinBox()
            w.setRange(f.minimum, f.maximum)
            w.setSingleStep(f.step)
            w.setDecimals(max(0, -int(math.floor(math.log10(f.step)))) if f.step > 0 else 2)
            w.setValue(float(value))
        elif f.kind == "int":
            w = QSpinBox()
            w.setRange(int(f.minimum), int(f.maximum))
            w.setSingleStep(max(1, int(f.step)))
            w.setValue(int(value))
        elif f.kind == "bool":
            w = QCheckBox()
            w.setChecked(bool(value))
        elif f.kind == "choice":
            w = QComboBox()
            for data, text in f.choices:
                w.addItem(text, data)
            w.setCurrentIndex(max(0, w.findData(value)))
        elif f.kind == "model":
            w = QComboBox()
            w.setProperty("model_kinds", list(f.model_kinds))
            w.setProperty("initial", value)
            w.currentIndexChanged.connect(lambda *_: self.modelChosen.emit())
        else:
            raise ValueError(f"engine {self.plugin.name}: unknown option kind {f.kind!r}")
        return w

    def fill_models(self, models_dir: str) -> None:
        """(Re)list the registry models of each model option, with their presence in `models_dir`."""
        for f in self.plugin.fields:
            if f.kind != "model":
                continue
            combo = self.widgets[f.name]
            current = combo.currentData() or combo.property("initial")
            combo.blockSignals(True)
            combo.clear()
            for spec in registry_specs(f.model_kinds):
                combo.addItem(f"{spec.title or spec.name} — {spec.filename} ({spec_status(spec, models_dir)})",
                              spec.name)
            if current and combo.findData(current) < 0:
                combo.addItem(f"{Path(current).name} (file)", current)
            if combo.count() == 0:
                combo.addItem("No model file known — choose a file", None)
            if current:
                combo.setCurrentIndex(max(0, combo.findData(current)))
            combo.blockSignals(False)

    def _browse_model(self, combo) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "PyTorch checkpoints (*.pth *.pt *.tar)")
        if path:
            combo.addItem(f"{Path(path).name} (file)", path)
            combo.setCurrentIndex(combo.count() - 1)

    def model_combos(self):
        return [self.widgets[f.name] for f in self.plugin.fields if f.kind == "model"]

    def value(self, name: str):
        w = self.widgets[name]
        if isinstance(w, QDoubleSpinBox):
            return float(w.value())
        if isinstance(w, QSpinBox):
            return int(w.value())
        if isinstance(w, QCheckBox):
            return w.isChecked()
        return w.currentData()

    def result(self):
        """The options with every shown field taken from its widget."""
        return replace(self.options, **{name: self.value(name) for name in self.widgets})


class SettingsDialog(QDialog):
    """Engine and its options (rendered from the engine registry), model files (licence shown, from the model
    registry), device, models folder."""

    def __init__(self, project, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Engine and model settings")
        self.setMinimumWidth(560)
        self.project = project
        lay = QVBoxLayout(self)
        form = QFormLayout()

        self.engine_combo = QComboBox()
        self.engine_pages = QStackedWidget()
        self.forms = {}
        for plugin in engines.plugins():
            self.engine_combo.addItem(plugin.title, plugin.name)
            page = EngineOptionsForm(plugin, engines.options_for(plugin.name, project.engine_options))
            page.modelChosen.connect(self._update_licence)
            self.forms[plugin.name] = page
            self.engine_pages.addWidget(page)
        self.engine_combo.setCurrentIndex(max(0, self.engine_combo.findData(project.engine)))
        form.addRow("Engine", self.engine_combo)
        form.addRow("", self.engine_pages)

        self.models_edit = QLineEdit(project.models_dir or core_bridge.default_models_dir())
        mb = QPushButton("Browse…")
        mb.clicked.connect(self._browse_models)
        ob = QPushButton("Open")
        ob.setToolTip("Open the models folder in the file manager")
        ob.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(self.models_edit.text())))
        row = QHBoxLayout()
        row.addWidget(self.models_edit, 1)
        row.addWidget(mb)
        row.addWidget(ob)
        form.addRow("Models folder", _wrap(row))
        self.licence_label = QLabel("")
        self.licence_label.setWordWrap(True)
        self.licence_label.setTextInteractionFlags(Qt.TextSelectableByMouse | Qt.LinksAccessibleByMouse)
        self.licence_label.setOpenExternalLinks(True)
        form.addRow("Licence", self.licence_label)

        self.device_combo = QComboBox()
        self.device_combo.addItem("Automatic (CUDA GPU when available, else CPU)", AUTO)
        self.device_combo.addItem("CPU", "cpu")
        self.device_combo.addItem("CUDA GPU", "cuda")
        if cuda_available() is False:
            self.device_combo.model().item(2).setEnabled(False)
            self.device_combo.setItemText(2, "CUDA GPU (not available on this computer)")
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(project.device)))
        form.addRow("Device", self.device_combo)
        lay.addLayout(form)

        lay.addWidget(QLabel("<b>Known models</b> (put missing files in the models folder; they are checked "
                             "when loaded):"))
        self.models_table = QTreeWidget()
        self.models_table.setRootIsDecorated(False)
        self.models_table.setHeaderLabels(["Model", "Kind", "File", "Status", "Licence"])
        self.models_table.header().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.models_table.setMinimumHeight(140)
        self.models_table.itemClicked.connect(self._model_clicked)
        lay.addWidget(self.models_table)
        self.models_label = QLabel("")
        self.models_label.setWordWrap(True)
        lay.addWidget(self.models_label)
        bb = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)

        self.engine_combo.currentIndexChanged.connect(self._engine_changed)
        self.models_edit.editingFinished.connect(self._fill_models)
        self._fill_models()
        self._engine_changed()

    # ---- public accessors ---------------------------------------------------------------------------------
    def option_widget(self, engine: str, name: str) -> QWidget:
        """The widget showing option `name` of `engine`."""
        return self.forms[engine].widgets[name]

    # ---- content ------------------------------------------------------------------------------------------
    def _fill_models(self) -> None:
        mdir = self.models_edit.text()
        for page in self.forms.values():
            page.fill_models(mdir)
        all_specs = registry_specs()
        self.models_table.clear()
        for s in all_specs:
            it = QTreeWidgetItem([getattr(s, "title", "") or s.name, s.kind, s.filename, spec_status(s, mdir),
                                  s.licence])
            it.setToolTip(4, f"{s.licence}\nSource: {getattr(s, 'source', '')}")
            it.setData(0, Qt.UserRole, s.name)
            self.models_table.addTopLevelItem(it)
        self.models_label.setText("" if all_specs else "The model registry is not available in this build.")
        self._update_licence()

    def _engine_changed(self) -> None:
        self.engine_pages.setCurrentWidget(self.forms[self.engine_combo.currentData()])
        self._update_licence()

    def _update_licence(self) -> None:
        """The licence of the model the current engine will load (its first model option)."""
        combos = self.forms[self.engine_combo.currentData()].model_combos()
        data = combos[0].currentData() if combos else None
        spec = next((s for s in registry_specs() if s.name == data), None)
        if spec is not None:
            src = getattr(spec, "source", "") or ""
            link = f' — <a href="{src}">{src}</a>' if src.startswith("http") else (f" — {src}" if src else "")
            self.licence_label.setText(f"{spec.licence}{link}")
        elif data:
            self.licence_label.setText("A file you supplied: you are responsible for its licence.")
        else:
            self.licence_label.setText("")

    def _model_clicked(self, item, column) -> None:
        """Choosing a model in the table selects the engine that loads it, with that model."""
        name = item.data(0, Qt.UserRole)
        for engine, page in self.forms.items():
            for combo in page.model_combos():
                i = combo.findData(name)
                if i >= 0:
                    self.engine_combo.setCurrentIndex(self.engine_combo.findData(engine))
                    combo.setCurrentIndex(i)
                    return

    def _browse_models(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Models folder", self.models_edit.text())
        if d:
            self.models_edit.setText(d)
            self._fill_models()

    def values(self) -> dict:
        """Project fields: engine, engine_options, device, models_dir. Options equal to an engine's defaults
        are stored only if the project already had them."""
        mdir = self.models_edit.text().strip()
        default = core_bridge.default_models_dir()
        options = dict(self.project.engine_options)
        for name, page in self.forms.items():
            opts = page.result()
            if name in options or opts != engines.get(name).options():
                options[name] = opts
        return {
            "engine": self.engine_combo.currentData(),
            "engine_options": options,
            "device": self.device_combo.currentData(),
            "models_dir": None if not mdir or os.path.normpath(mdir) == os.path.normpath(default) else mdir,
        }


class DubSettingsPanel(QWidget):
    """Face to dub, mask shape, teeth, length policy. Emits changed(kind) with kind 'mask' or 'other'."""

    changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        g = QGroupBox("Face")
        f = QFormLayout(g)
        self.track_combo = QComboBox()
        self.track_combo.setToolTip("Which tracked face is dubbed (or click a face in the frame)")
        self.track_combo.addItem("Automatic (the face that speaks, per shot)", None)
        f.addRow("Dub", self.track_combo)
        self.tracks_label = QLabel("Not tracked yet")
        self.tracks_label.setWordWrap(True)
        f.addRow(self.tracks_label)
        lay.addWidget(g)

        g = QGroupBox("Mask (units: distance between the eyes)")
        f = QFormLayout(g)
        self.spins = {}
        for key, label, tip in (("dilation", "Grow", "Grow the blended area outward"),
                                ("feather", "Feather", "Width of the soft edge"),
                                ("extent_up", "Reach up", "Extra reach up the cheeks"),
                                ("extent_down", "Reach down", "Extra reach below the chin")):
            s = QDoubleSpinBox()
            s.setRange(0.0, 2.0)
            s.setSingleStep(0.02)
            s.setDecimals(2)
            s.setToolTip(tip)
            s.valueChanged.connect(lambda *_: self._emit("mask"))
            f.addRow(label, s)
            self.spins[key] = s
        self.color_check = QCheckBox("Match skin colour")
        self.color_check.toggled.connect(lambda *_: self._emit("mask"))
        f.addRow(self.color_check)
        lay.addWidget(g)

        g = QGroupBox("Dub")
        f = QFormLayout(g)
        self.teeth_spin = QDoubleSpinBox()
        self.teeth_spin.setRange(0.0, 2.0)
        self.teeth_spin.setSingleStep(0.1)
        self.teeth_spin.setToolTip("Strength of the teeth proxy in open mouths (0: off)")
        self.teeth_spin.valueChanged.connect(lambda *_: self._emit("other"))
        f.addRow("Teeth", self.teeth_spin)
        self.length_combo = QComboBox()
        for p, t in (("shortest", "End with the shorter"), ("trim", "Trim to the video"), ("loop", "Loop the video"),
                     ("pingpong", "Ping-pong the video"), ("hold", "Hold the last frame")):
            self.length_combo.addItem(t, p)
        self.length_combo.setToolTip("What happens when the voice and the video differ in length")
        self.length_combo.currentIndexChanged.connect(lambda *_: self._emit("other"))
        f.addRow("Length", self.length_combo)
        self.length_note = QLabel("")
        self.length_note.setWordWrap(True)
        f.addRow(self.length_note)
        self.adapt_check = QCheckBox("Learn the actor from the clip's own voice")
        self.adapt_check.setToolTip("Before dubbing, the clip's own voice teaches the mouth model this actor's "
                                    "articulation and the sync lane this face's threshold (cached per clip)")
        self.adapt_check.toggled.connect(lambda *_: self._emit("other"))
        f.addRow(self.adapt_check)
        self.track_combo.currentIndexChanged.connect(lambda *_: self._emit("track"))
        lay.addWidget(g)
        lay.addStretch(1)
        self._loading = False

    def _emit(self, kind: str) -> None:
        if not self._loading:
            self.changed.emit(kind)

    def load(self, project) -> None:
        self._loading = True
        try:
            for k, s in self.spins.items():
                s.setValue(float(getattr(project.mask, k)))
            self.color_check.setChecked(bool(project.mask.color_match))
            self.teeth_spin.setValue(project.teeth_strength)
            self.adapt_check.setChecked(bool(project.adapt))
            self.length_combo.setCurrentIndex(max(0, self.length_combo.findData(project.length_policy)))
            self.track_combo.setCurrentIndex(max(0, self.track_combo.findData(project.face_track)))
        finally:
            self._loading = False

    def set_length_note(self, text: str) -> None:
        self.length_note.setText(text)
        self.length_note.setVisible(bool(text))

    def mask_settings(self) -> MaskSettings:
        return MaskSettings(**{k: float(s.value()) for k, s in self.spins.items()},
                            color_match=self.color_check.isChecked())

    def show_mask(self, m: MaskSettings) -> None:
        """Display mask values without emitting changes (e.g. the keyframed mask at the playhead)."""
        self._loading = True
        try:
            for k, s in self.spins.items():
                s.setValue(float(getattr(m, k)))
            self.color_check.setChecked(bool(m.color_match))
        finally:
            self._loading = False

    def set_tracks(self, track_set, chosen: Optional[int]) -> None:
        self._loading = True
        try:
            self.track_combo.clear()
            self.track_combo.addItem("Automatic (the face that speaks, per shot)", None)
            if track_set is None:
                self.tracks_label.setText("Not tracked yet")
            else:
                n = track_set.num_frames
                for t in track_set.tracks:
                    pct = 100.0 * float(t.present.sum()) / max(1, n)
                    self.track_combo.addItem(f"Face {t.track_id} ({pct:.0f}% of frames)", t.track_id)
                self.tracks_label.setText(f"{len(track_set.tracks)} face(s) tracked" if track_set.tracks
                                          else "No face found in this video")
            idx = self.track_combo.findData(chosen)
            self.track_combo.setCurrentIndex(max(0, idx))
        finally:
            self._loading = False

    def apply_to(self, project) -> None:
        project.mask = self.mask_settings()
        project.teeth_strength = float(self.teeth_spin.value())
        project.adapt = self.adapt_check.isChecked()
        project.length_policy = self.length_combo.currentData()
        project.face_track = self.track_combo.currentData()


def _wrap(layout) -> QWidget:
    w = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    w.setLayout(layout)
    return w
