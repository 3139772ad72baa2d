"""Proof that engines are plug-ins: a third engine defined only here is usable from the command line, a project
file and the window's settings dialog, without any other module knowing it.

"mouth closed" closes the mouth over the voice's silent stretches (fills the inner mouth with the lips' colour)
and leaves every voiced frame to the original.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
import pytest

from core import media
from core.engines import registry as engines
from core.engines.base import Engine, RenderedPatch
from data_paths import SAMPLES

VIDEO = SAMPLES / "grid_s1_sample.mp4"
VOICE = SAMPLES / "voice_sample.wav"
INNER_MOUTH = np.arange(60, 68)
OUTER_LIPS = np.arange(48, 60)


@dataclass
class MouthClosedOptions:
    strength: float = 1.0      # 1: the inner mouth fully covered with lip colour


class MouthClosedEngine(Engine):
    name = "mouth_closed"
    rendered: list = []        # (out index, strength) of every patch made, for the test to inspect

    def __init__(self, options, *, models_dir=None, device="cpu"):
        self.options = options

    def prepare(self, ctx, progress=None, cancel=None):
        self.ctx = ctx

    def render(self, frames, out_indices):
        return [self._close(f, int(o)) for f, o in zip(frames, out_indices)]

    def _close(self, frame, o):
        ctx = self.ctx
        s = int(ctx.source_index[o])
        if ctx.voice_active[o] or not ctx.present[s]:
            return None                                   # voiced (or no face): the original frame
        lm = ctx.landmarks[s]
        x0, y0 = np.floor(lm[OUTER_LIPS].min(0)).astype(int) - 4
        x1, y1 = np.ceil(lm[OUTER_LIPS].max(0)).astype(int) + 4
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, frame.shape[1]), min(y1, frame.shape[0])
        crop = frame[y0:y1, x0:x1].copy()
        off = np.array([x0, y0], np.float32)
        lips = np.zeros(crop.shape[:2], np.uint8)
        cv2.fillPoly(lips, [np.round(lm[OUTER_LIPS] - off).astype(np.int32)], 255)
        inner = np.zeros_like(lips)
        cv2.fillPoly(inner, [np.round(lm[INNER_MOUTH] - off).astype(np.int32)], 255)
        colour = np.median(crop[(lips > 0) & (inner == 0)], axis=0)
        a = self.options.strength * (inner > 0)[..., None]
        image = (crop * (1 - a) + colour * a).astype(np.uint8)
        MouthClosedEngine.rendered.append((o, self.options.strength))
        return RenderedPatch(box=(x0, y0, x1, y1), image=image, mask_landmarks=lm, mouth_open=0.0)


def _add_arguments(group):
    group.add_argument("--closed-strength", type=float, help="how fully the mouth is closed (0..1)")


def _options_from_args(args, options):
    v = getattr(args, "closed_strength", None)
    return replace(options, strength=v) if v is not None else options


PLUGIN = engines.EnginePlugin(
    name="mouth_closed", label="Mouth closed", title="Mouth closed (test engine: closes the mouth in silence)",
    options=MouthClosedOptions, create=lambda options, **kw: MouthClosedEngine(options, **kw),
    add_arguments=_add_arguments, options_from_args=_options_from_args,
    fields=(engines.OptionField("strength", "Strength", "float", 0.0, 1.0, 0.05, tip="1: fully closed"),))


@pytest.fixture
def third_engine():
    engines.register(PLUGIN)
    MouthClosedEngine.rendered = []
    yield PLUGIN
    engines.unregister(PLUGIN.name)


def test_third_engine_from_the_command_line(third_engine, tmp_path, capsys):
    import json

    from core import audio
    from core.cli import main

    out = tmp_path / "closed.mp4"
    code = main(["dub", "--video", str(VIDEO), "--audio", str(VOICE), "-o", str(out), "--engine", "mouth_closed",
                 "--closed-strength", "0.9", "--range", "0", "30", "--no-score", "--quiet", "--json"])
    assert code == 0 and out.is_file()
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    wav = audio.load_audio(str(VOICE))
    info = media.probe(str(VIDEO))
    silent = ~audio.voice_activity(wav, info.fps, info.num_frames)[:30]
    assert silent.any() and (~silent).any()
    # the engine patched exactly the silent frames, with the option given on the command line, and the
    # pipeline composited exactly those
    assert {o for o, _ in MouthClosedEngine.rendered} == set(np.flatnonzero(silent))
    assert {s for _, s in MouthClosedEngine.rendered} == {0.9}
    assert summary["num_frames"] == 30 and summary["faces_found"] == int(silent.sum())


def test_models_command_says_which_engine_loads_a_model(tmp_path, capsys):
    from core.cli import main

    assert main(["models", "--models-dir", str(tmp_path)]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()[1:]}
    assert "engine wav2lip" in lines["wav2lip_gan"] and "engine classic" in lines["mouth_shape"]
    assert "engine" not in lines["syncnet_v2"]          # a scorer model, no engine loads it


def test_third_engine_options_round_trip_through_a_project_file(third_engine, tmp_path):
    from core.project import Project

    p = Project(video=str(VIDEO), engine="mouth_closed", engine_options={"mouth_closed": MouthClosedOptions(0.4)})
    p.add_voice(str(VOICE))
    p.save(str(tmp_path / "closed.lipdub"))
    q = Project.load(str(tmp_path / "closed.lipdub"))
    assert q.engine == "mouth_closed" and q.engine_options["mouth_closed"] == MouthClosedOptions(0.4)
    s = q.to_dub_settings(output=str(tmp_path / "o.mp4"))
    assert engines.create(s.engine, s.engine_options).options.strength == 0.4


def test_third_engine_in_the_settings_dialog_and_corrections(third_engine, make_window):
    win = make_window(auto_analyze=False)
    assert win.corrections.engine_combo.findData("mouth_closed") >= 0   # offered for engine ranges too
    win.show_settings()
    dlg = win.settings_dialog
    dlg.engine_combo.setCurrentIndex(dlg.engine_combo.findData("mouth_closed"))
    spin = dlg.option_widget("mouth_closed", "strength")
    assert spin.isVisibleTo(dlg) and spin.value() == 1.0 and spin.maximum() == 1.0
    spin.setValue(0.25)
    dlg.accept()
    assert win.session.project.engine == "mouth_closed"
    assert win.session.project.engine_options["mouth_closed"] == MouthClosedOptions(0.25)
