"""core.mouth_shape: canonical face geometry, audio features at any fps, the shipped audio -> mouth model.

The accuracy thresholds are the held-out figures measured by tools/eval_mouth.py (see
resources/models/mouth_shape.md) minus a margin for the small sample used here.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from core import mouth_shape as ms
from core.errors import ModelCorruptError, ModelMissingError, NoFaceError
from core.faces import geometry as g
from data_paths import GRID_S1, heldout_names

# tools/eval_mouth.py on all 250 held-out s1 clips: opening r 0.884 (clip mean), mouth LMD 0.0243 IOD, loudness
# baseline r 0.621. These 5 clips: r 0.866, LMD 0.0257 (driven by the wrong clip's audio: r 0.39, LMD 0.038).
MIN_OPENING_R = 0.80
MAX_LMD = 0.029


def _random_similarity(rng):
    ang = rng.uniform(-0.5, 0.5)
    s = rng.uniform(0.3, 4.0)
    r = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    t = rng.uniform(-300, 300, size=2)
    return s, r, t


def _face(rng, n=6):
    base = ms.TEMPLATE * 80 + np.array([180, 140])
    return (base[None] + rng.normal(0, 1.5, size=(n, 68, 2))).astype(np.float32)


def test_template_is_canonical():
    assert ms.TEMPLATE.shape == (68, 2)
    assert g.inter_ocular(ms.TEMPLATE) == pytest.approx(1.0)
    r, l = g.eye_centres(ms.TEMPLATE)
    assert np.allclose((r + l) / 2, 0, atol=1e-9)
    assert np.allclose(ms.TEMPLATE[ms.FLIP] * [-1, 1], ms.TEMPLATE)   # left/right symmetric
    assert sorted(ms.FLIP) == list(range(68))


def test_normalize_denormalize_round_trip():
    rng = np.random.default_rng(0)
    lm = _face(rng)
    canon, tf = ms.normalize(lm)
    assert canon.shape == lm.shape and tf.shape == (len(lm), 2, 3)
    assert np.allclose(g.inter_ocular(canon), 1.0, atol=1e-5)
    back = ms.denormalize(canon, tf)
    assert np.abs(back - lm).max() < 1e-3
    for i in range(len(lm)):   # one (2,3) transform at a time, on a subset of points
        one = ms.denormalize(canon[i, ms.SHAPE_POINTS], tf[i])
        assert np.abs(one - lm[i, ms.SHAPE_POINTS]).max() < 1e-3


def test_canonical_shape_invariant_to_similarity():
    rng = np.random.default_rng(1)
    lm = _face(rng)
    canon, _ = ms.normalize(lm)
    for _ in range(5):
        s, r, t = _random_similarity(rng)
        moved = g.apply_similarity(lm.reshape(-1, 2), s, r, t).reshape(lm.shape)
        c2, _ = ms.normalize(moved)
        assert np.abs(c2 - canon).max() < 1e-4
    # a mouth movement is *not* normalised away
    opened = lm.copy()
    opened[:, [56, 57, 58, 65, 66, 67]] += [0, 12]
    c3, _ = ms.normalize(opened)
    assert (g.mouth_opening(c3) > g.mouth_opening(canon) + 0.05).all()


def test_normalize_missing_frames_and_clip_neutral():
    rng = np.random.default_rng(2)
    lm = _face(rng, 10)
    opening = np.linspace(0, 15, 10)
    lm[:, 65:68, 1] += opening[:, None]            # frame 0 most closed, frame 9 most open
    lm[3] = np.nan
    canon, tf = ms.normalize(lm)
    assert np.isnan(canon[3]).all() and np.isnan(tf[3]).all() and np.isfinite(canon[[0, 4]]).all()
    present = np.ones(10, bool)
    present[3] = False
    neutral = ms.clip_neutral(canon, present)
    assert neutral.shape == (ms.K, 2)
    closed = canon[[0, 1, 2]][:, ms.SHAPE_POINTS].mean(0)   # 10% of 9 valid frames -> at least 3
    assert np.allclose(neutral, closed, atol=1e-5)
    with pytest.raises(NoFaceError):
        ms.clip_neutral(canon, np.zeros(10, bool))


def test_target_landmarks_places_mouth_in_frame_space():
    rng = np.random.default_rng(3)
    lm = _face(rng, 8)
    s, r, t = _random_similarity(rng)
    lm = g.apply_similarity(lm.reshape(-1, 2), s, r, t).reshape(lm.shape)
    present = np.ones(8, bool)
    present[5] = False
    lm[5] = np.nan
    zero = np.zeros((8, ms.K, 2), np.float32)
    canon, tf = ms.normalize(lm)
    neutral = ms.clip_neutral(canon, present)
    out = ms.target_landmarks(lm, present, zero)
    assert out.shape == lm.shape and np.isnan(out[5]).all()
    others = np.setdiff1d(np.arange(68), ms.SHAPE_POINTS)
    assert np.array_equal(out[present][:, others], lm[present][:, others])
    # zero displacement -> the neutral mouth, seen through each frame's transform
    c_out, _ = ms.normalize(out)
    assert np.abs(c_out[present][:, ms.SHAPE_POINTS] - neutral).max() < 1e-3
    # an opening displacement opens the frame-space mouth by that many IOD
    disp = zero.copy()
    disp[:, [ms.shape_row(65), ms.shape_row(66), ms.shape_row(67)], 1] = 0.1
    out2 = ms.target_landmarks(lm, present, disp)
    iod = g.inter_ocular(lm[present])
    gain = (g.mouth_opening(out2[present]) - g.mouth_opening(out[present])) / iod
    assert np.allclose(gain, 0.1, atol=2e-3)
    with pytest.raises(ValueError):
        ms.target_landmarks(lm, present, zero[:4])


def _bursts(seconds, sr=16000):
    """Noise + tone bursts switching on and off at 3 Hz (a crude syllable rhythm)."""
    rng = np.random.default_rng(5)
    t = np.arange(int(seconds * sr)) / sr
    env = (np.sin(2 * np.pi * 3 * t) > 0).astype(np.float32)
    sig = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * rng.normal(size=len(t))
    return (sig * env).astype(np.float32), env


def test_audio_features_any_fps_and_degenerate_input():
    wav, env = _bursts(2.0)
    for fps, n in ((25.0, 50), (30000 / 1001, 60), (60.0, 120), (23.976, 48)):
        f = ms.audio_features(wav, fps, n)
        assert f.shape == (n, ms.NUM_FEATURES) and f.dtype == np.float32 and np.isfinite(f).all()
        # sounding frames have higher features than silent ones, at the right times for this fps
        centre = ((np.arange(n) + 0.5) / fps * 16000).astype(int)
        on = np.array([env[max(c - 320, 0):c + 320].min() > 0 for c in centre])
        off = np.array([env[max(c - 320, 0):c + 320].max() == 0 for c in centre])
        assert on.sum() > 5 and off.sum() > 5
        assert f[on].mean() > f[off].mean() + 2.0
    # loudness does not matter (per-utterance normalisation)
    assert np.allclose(ms.audio_features(wav * 0.05, 25, 50), ms.audio_features(wav, 25, 50), atol=0.05)
    assert not np.allclose(ms.audio_features(wav[::-1].copy(), 25, 50), ms.audio_features(wav, 25, 50), atol=0.5)
    for w in (np.zeros(3200, np.float32), np.zeros(0, np.float32), np.full(10, np.nan, np.float32),
              (np.random.default_rng(0).normal(0, 1e-7, 1600)).astype(np.float32)):
        f = ms.audio_features(w, 29.97, 9)
        assert f.shape == (9, ms.NUM_FEATURES) and np.isfinite(f).all()
    assert ms.audio_features(wav, 25, 0).shape == (0, ms.NUM_FEATURES)
    with pytest.raises(ValueError):
        ms.audio_features(wav, 0, 10)


# --------------------------------------------------------------------------------------------- shipped model
@pytest.fixture(scope="module")
def model():
    import torch
    torch.set_num_threads(1)
    return ms.AudioToMouth.load()


def test_log_mel_is_the_same_in_chunks(monkeypatch):
    """The spectra of a long voice are computed a chunk at a time (memory): the log-mel and energy are bit for bit
    the one-pass values, on real speech and at chunk edges."""
    from core.audio import load_audio

    wav = load_audio(GRID_S1 / "video" / f"{heldout_names()[0]}.mp4")
    for w in (wav, wav[:399], wav[:1000]):
        full, energy = ms.log_mel(w, min_seconds=3.5, with_energy=True)
        for chunk in (5, 64, 2):
            monkeypatch.setattr(ms, "MEL_CHUNK", chunk)
            out, e = ms.log_mel(w, min_seconds=3.5, with_energy=True)
            assert np.array_equal(out, full) and np.array_equal(e, energy)
            assert np.array_equal(ms.log_mel(w), ms.log_mel(w, with_energy=True)[0])
        monkeypatch.setattr(ms, "MEL_CHUNK", 10 ** 9)
        assert np.array_equal(ms.log_mel(w, min_seconds=3.5), full)


def test_shipped_model_is_described_and_verified(model, tmp_path):
    meta = json.loads((ms.shipped_model_path().with_suffix(".json")).read_text())
    assert meta["name"] == "mouth_shape" and meta["kind"] == "audio_to_mouth" and "CC BY 4.0" in meta["licence"]
    from core.models.registry import sha256_file
    assert sha256_file(ms.shipped_model_path()) == meta["sha256"]
    assert ms.shipped_model_path().stat().st_size < 5e6
    # loads with weights_only=True (plain tensors and values)
    import torch
    payload = torch.load(ms.shipped_model_path(), weights_only=True)
    assert payload["pca_basis"].shape[1] == 2 * ms.K
    basis = payload["pca_basis"].double()
    assert torch.allclose(basis @ basis.T, torch.eye(len(basis), dtype=torch.float64), atol=1e-4)
    # a corrupted copy (same JSON, one byte changed) is refused; a missing file is reported as such
    bad = tmp_path / "mouth_shape.pt"
    data = bytearray(ms.shipped_model_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    shutil.copy(ms.shipped_model_path().with_suffix(".json"), tmp_path / "mouth_shape.json")
    with pytest.raises(ModelCorruptError):
        ms.AudioToMouth.load(bad)
    with pytest.raises(ModelMissingError):
        ms.AudioToMouth.load(tmp_path / "nothing.pt")


def test_a_model_file_is_loaded_once_until_it_changes(model, tmp_path):
    assert ms.AudioToMouth.load() is ms.AudioToMouth.load()
    copy = tmp_path / "mine.pt"
    shutil.copy(ms.shipped_model_path(), copy)
    mine = ms.AudioToMouth.load(copy)
    assert mine is not ms.AudioToMouth.load() and ms.AudioToMouth.load(copy) is mine
    copy.write_bytes(copy.read_bytes())                  # rewritten (same content, new time): read again
    os.utime(copy, ns=(copy.stat().st_mtime_ns + 10**9,) * 2)
    assert ms.AudioToMouth.load(copy) is not mine


def _load_audio(path):
    from tools.train_mouth import load_wav   # core.audio.load_audio, as the app and the training used
    return load_wav(path)


def _track(name):
    from tools.grid_cache import load_clip
    return load_clip(name)


def test_heldout_accuracy_beats_loudness(model):
    names = heldout_names()[::50][:5]            # 5 held-out clips spread over the list
    rs, lmds, r_loud = [], [], []
    for name in names:
        tr = _track(name)
        wav = _load_audio(GRID_S1 / "video" / f"{name}.mp4")
        canon, _ = ms.normalize(tr["landmarks"])
        valid = tr["present"].astype(bool) & np.isfinite(canon.reshape(len(canon), -1)).all(1)
        neutral = ms.clip_neutral(canon, valid)
        n = len(canon)
        pred = neutral + model.predict(wav, float(tr["fps"]), n)
        loud = neutral + model.baseline_loudness(wav, float(tr["fps"]), n)
        true = canon[:, ms.SHAPE_POINTS]
        to = ms.shape_opening(true)[valid]
        rs.append(np.corrcoef(ms.shape_opening(pred)[valid], to)[0, 1])
        r_loud.append(np.corrcoef(ms.shape_opening(loud)[valid], to)[0, 1])
        lmds.append(np.linalg.norm(pred - true, axis=-1)[valid][:, ms.MOUTH_IN_SHAPE].mean())
    assert np.mean(rs) > MIN_OPENING_R, rs
    assert np.mean(lmds) < MAX_LMD, lmds
    assert np.mean(rs) > np.mean(r_loud) + 0.1, (rs, r_loud)


def test_predict_other_fps_silence_and_speed(model):
    import time
    name = heldout_names()[1]
    wav = _load_audio(GRID_S1 / "video" / f"{name}.mp4")
    d25 = model.predict(wav, 25.0, 75)
    n30 = int(3.0 * 30000 / 1001)
    d30 = model.predict(wav, 30000 / 1001, n30)
    assert d25.shape == (75, ms.K, 2) and d30.shape == (n30, ms.K, 2) and np.isfinite(d30).all()
    # the same mouth motion in time: 29.97 fps frames sampled at 25 fps times match the 25 fps prediction
    base = ms.TEMPLATE[ms.SHAPE_POINTS]
    o25 = ms.shape_opening(base + d25)
    o30 = ms.shape_opening(base + d30)
    o30_at25 = np.interp((np.arange(75) + 0.5) / 25, (np.arange(n30) + 0.5) / (30000 / 1001), o30)
    assert np.corrcoef(o25, o30_at25)[0, 1] > 0.95
    silent = model.predict(np.zeros(3200, np.float32), 29.97, 6)
    assert silent.shape == (6, ms.K, 2) and np.isfinite(silent).all()
    assert model.predict(np.zeros(0, np.float32), 25, 3).shape == (3, ms.K, 2)
    # silence keeps the mouth closer to neutral than speech does
    assert ms.shape_opening(base + silent).mean() < np.percentile(o25, 90)
    # a minute of voice at 29.97 fps (its speed is measured by tools/eval_mouth.py, not here)
    long = np.tile(wav, 21)[: 60 * 16000]
    d = model.predict(long, 30000 / 1001, 1798)
    assert d.shape == (1798, ms.K, 2) and np.isfinite(d).all()
