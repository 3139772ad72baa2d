"""The editor's corrections (core.edits) and how the pipeline applies them."""
import json

import numpy as np
import pytest

from core import media
from core.edits import EditHistory, Edits, MaskPolygon, shift_voice
from core.engines.base import MaskSettings
from core.engines.wav2lip import Wav2LipOptions
from core.errors import ProjectError
from core.pipeline import DubSettings, run_dub
from data_paths import ROOT

VIDEO = ROOT / "resources" / "samples" / "grid_s1_sample.mp4"
VOICE = ROOT / "resources" / "samples" / "voice_sample.wav"


def test_mask_keyframes_interpolate_and_hold():
    h = EditHistory()
    h.set_mask_keyframe(10, MaskSettings(dilation=0.0, feather=0.1))
    h.set_mask_keyframe(30, MaskSettings(dilation=0.2, feather=0.3, color_match=False))
    e = h.edits
    assert e.mask_at(0)[0].dilation == 0.0                     # held before the first keyframe
    mid = e.mask_at(20)[0]
    assert mid.dilation == pytest.approx(0.1) and mid.feather == pytest.approx(0.2)
    assert mid.color_match is True                             # switches come from the keyframe before
    assert e.mask_at(99)[0].dilation == pytest.approx(0.2)     # held after the last
    assert e.mask_at(99)[0].color_match is False


def test_undo_redo_every_command_and_json_round_trip():
    h = EditHistory()
    h.set_mask_keyframe(5, MaskSettings(feather=0.4))
    h.add_mask_polygon(5, MaskPolygon([(0, 1), (0.5, 1), (0.5, 1.5)], "remove"))
    h.add_override(10, 20, "keep_original")
    h.add_override(30, 40, "mouth_closed")
    h.add_override(40, 50, "engine", engine="wav2lip")
    h.set_voice_offset(-3)
    h.set_box_fix(12, (10, 20, 110, 140))
    h.set_teeth_shot(0, 75, 33, 0.7)
    full = h.edits.to_json()
    steps = 8
    for _ in range(steps):
        assert h.undo()
    assert h.edits.is_empty() and not h.can_undo
    for _ in range(steps):
        assert h.redo()
    assert h.edits.to_json() == full
    assert h.undo_label.startswith("Teeth proxy")
    # the whole history survives the project file
    again = EditHistory.from_json(json.loads(json.dumps(h.to_json())))
    assert again.edits.to_json() == full
    again.undo()
    assert again.edits.teeth_shots == []
    assert again.edits.override_at(15).kind == "keep_original"
    assert again.edits.override_at(45).engine == "wav2lip"
    assert again.edits.mask_at(5)[1][0].mode == "remove"


def test_new_edit_clears_redo_and_bad_edits_change_nothing():
    h = EditHistory()
    h.add_override(0, 10, "keep_original")
    h.undo()
    h.set_voice_offset(2)
    assert not h.can_redo
    before = h.edits.to_json()
    for bad in (lambda: h.add_override(5, 5, "keep_original"), lambda: h.add_override(0, 5, "nonsense"),
                lambda: h.set_box_fix(0, (10, 10, 5, 50)), lambda: h.remove_override(3),
                lambda: h.add_override(0, 4, "engine")):
        with pytest.raises(ProjectError):
            bad()
    assert h.edits.to_json() == before
    with pytest.raises(ProjectError):
        Edits.from_json({"overrides": [{"start": "x"}]})


def test_shift_voice_units():
    wav = np.arange(16000, dtype=np.float32)
    later = shift_voice(wav, 2, 25.0, 16000)
    assert len(later) == 16000 + 1280 and np.all(later[:1280] == 0) and later[1280] == 0 and later[1281] == 1
    earlier = shift_voice(wav, -2, 25.0, 16000)
    assert earlier[0] == 1280


def test_keep_original_range_is_source_and_mask_edits_apply(tmp_path, w2l_checkpoint):
    """Export with edits: frames in a keep-original range equal the source (up to encoding); outside it the
    engine changed the mouth; a narrower mask keyframe changes less of the frame."""
    ckpt = w2l_checkpoint
    h = EditHistory()
    h.add_override(20, 35, "keep_original")
    out = tmp_path / "edited.mp4"
    run_dub(DubSettings(video=str(VIDEO), audio=str(VOICE), output=str(out), engine="wav2lip",
                        engine_options={"wav2lip": Wav2LipOptions(checkpoint=str(ckpt))},
                        edits=h.edits, frame_range=(0, 50), track_cache_dir=str(tmp_path / "t")))
    src = np.stack(list(media.iter_frames(str(VIDEO), stop=50))).astype(np.int16)
    dub = np.stack(list(media.iter_frames(str(out)))).astype(np.int16)
    # compare the lower face, where the engine works: re-encoding noise alone vs the generated mouth
    face = (slice(None), slice(170, 250), slice(110, 250))
    kept = np.abs(src[20:35] - dub[20:35])[face].mean()
    changed = np.abs(src[:20] - dub[:20])[face].mean()
    assert kept < 3.0, kept
    assert changed > 2 * kept, (changed, kept)

    h.set_mask_keyframe(0, MaskSettings(dilation=0.0, feather=0.02))
    narrow = tmp_path / "narrow.mp4"
    run_dub(DubSettings(video=str(VIDEO), audio=str(VOICE), output=str(narrow), engine="wav2lip",
                        engine_options={"wav2lip": Wav2LipOptions(checkpoint=str(ckpt))}, edits=h.edits,
                        frame_range=(0, 20),
                        track_cache_dir=str(tmp_path / "t")))
    nar = np.stack(list(media.iter_frames(str(narrow)))).astype(np.int16)
    changed_px = (np.abs(src[:20] - dub[:20]).max(-1) > 12).mean()
    narrow_px = (np.abs(src[:20] - nar).max(-1) > 12).mean()
    assert narrow_px < 0.8 * changed_px, (narrow_px, changed_px)


def test_mask_polygons_add_and_remove_area_and_follow_the_face():
    from core.compose import lower_face_mask
    from core.faces.geometry import face_to_frame, frame_to_face
    from tools.grid_cache import load_clip

    lm = load_clip("bbaf5a")["landmarks"][0]
    base, roi = lower_face_mask((288, 360), lm, MaskSettings())
    # a remove polygon over the mouth, an add polygon on the forehead (face coordinates)
    mouth = frame_to_face(lm[48:60], lm)
    rm = MaskPolygon([tuple(p) for p in mouth], "remove")
    add = MaskPolygon([(-0.3, -0.8), (0.3, -0.8), (0.3, -0.5), (-0.3, -0.5)], "add")
    m, roi2 = lower_face_mask((288, 360), lm, MaskSettings(), [rm, add])
    mx, my = lm[48:60].mean(0).astype(int)
    assert base[my - roi[1], mx - roi[0]] == 1.0 and m[my - roi2[1], mx - roi2[0]] < 0.5
    fx, fy = face_to_frame([(0.0, -0.65)], lm)[0].astype(int)
    assert roi2[1] <= fy < roi[1]                 # the ROI grew to include the added area
    assert m[fy - roi2[1], fx - roi2[0]] > 0.5
    # the same polygon moves with the face: shift the landmarks, the removed area shifts too
    m3, roi3 = lower_face_mask((288, 360), lm + [20, 5], MaskSettings(), [rm])
    assert m3[my + 5 - roi3[1], mx + 20 - roi3[0]] < 0.5


def test_changed_range_is_what_an_edit_can_touch():
    from core.edits import BOX_FIX_REACH_BACK, changed_range

    n = 75
    h = EditHistory()
    steps = []

    def step(fn):
        before = Edits.from_json(h.edits.to_json())
        fn()
        steps.append(changed_range(before, Edits.from_json(h.edits.to_json()), n))

    step(lambda: h.add_override(10, 20, "keep_original"))
    step(lambda: h.set_mask_keyframe(30, MaskSettings(dilation=0.2)))     # the only keyframe: held everywhere
    step(lambda: h.set_mask_keyframe(50, MaskSettings(dilation=0.3)))     # last keyframe: from the previous one on
    step(lambda: h.set_mask_keyframe(40, MaskSettings(dilation=0.1)))     # between neighbours
    step(lambda: h.set_mask_keyframe(40, MaskSettings(dilation=0.1)))     # no change: not even a history step
    step(lambda: h.set_teeth_shot(60, 70, 62))
    step(lambda: h.set_box_fix(55, (1, 2, 30, 40)))
    step(lambda: h.set_voice_offset(2))
    assert steps == [(10, 20), (0, n), (30, n), (30, 51), None, (60, 70), (55 - BOX_FIX_REACH_BACK, n), (0, n)]
    # undoing is symmetric: the same frames change back
    before = Edits.from_json(h.edits.to_json())
    h.undo()
    h.undo()
    assert changed_range(before, h.edits, n) == (0, n)
    e = Edits.from_json(h.edits.to_json())
    h.remove_override(0)
    assert changed_range(e, h.edits, n) == (10, 20)
    assert changed_range(h.edits, h.edits, n) is None
