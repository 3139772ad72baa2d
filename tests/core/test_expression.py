"""The actor's slow lip expression apart from speech (core.expression)."""
from __future__ import annotations

import numpy as np
import pytest

from data_paths import GRID_S1, heldout_names

from core import expression as ex
from core import mouth_shape as ms

FPS = 25.0


def _speech(n: int, neutral: np.ndarray, seed: int = 0) -> np.ndarray:
    """Fast speech-like motion: the lower lip and jaw drop at syllable rate, the corners narrow a little as it opens."""
    rng = np.random.default_rng(seed)
    open_ = np.clip(np.convolve(rng.normal(0, 1, n), np.ones(3) / 3, "same"), 0, None) * 0.12
    d = np.zeros((n, ms.K, 2))
    lower = [ms.SHAPE_POINTS.tolist().index(p) for p in (55, 56, 57, 58, 59, 65, 66, 67)]
    d[:, lower, 1] = open_[:, None]
    d[:, :len(ms.JAW_LOWER), 1] = 0.6 * open_[:, None]
    d -= 0.3 * open_[:, None, None] * ex.expression_modes(neutral)[0]
    return d


def _smile(n: int) -> np.ndarray:
    t = np.arange(n) / FPS
    return np.clip(1.0 - np.abs(t - 4.0) / 1.5, 0, 1)          # rises over 1.5 s and falls again


def test_modes_leave_the_inner_opening_alone():
    neutral = ms.TEMPLATE[ms.SHAPE_POINTS]
    base = ms.shape_opening(neutral)
    for mode in ex.expression_modes(neutral):
        assert ms.shape_opening(neutral + 0.1 * mode) == pytest.approx(base, abs=2e-3)
    width = ex.expression_modes(neutral)[0]
    left, right = ms.shape_row(48), ms.shape_row(54)
    assert width[left, 0] == pytest.approx(-1) and width[right, 0] == pytest.approx(1)


def test_slow_expression_finds_a_smile_under_speech():
    neutral = ms.TEMPLATE[ms.SHAPE_POINTS]
    n = 200
    smile = _smile(n)
    modes = ex.expression_modes(neutral)
    d = _speech(n, neutral) + np.einsum("n,kc->nkc", 0.08 * smile, modes[0] + 0.5 * modes[1])
    slow = ex.slow_expression(d, neutral, fps=FPS)
    assert np.corrcoef(slow[:, 0], smile)[0, 1] > 0.95
    assert slow[100, 0] - slow[0, 0] == pytest.approx(0.08, abs=0.02)
    assert slow[100, 1] - slow[0, 1] == pytest.approx(0.04, abs=0.015)
    # speech alone carries no slow expression
    plain = ex.slow_expression(_speech(n, neutral, 1), neutral, fps=FPS)
    assert np.abs(plain - plain.mean(axis=0)).max() < 0.01


def test_keep_expression_puts_the_actors_smile_on_new_speech_and_keeps_the_speech():
    neutral = ms.TEMPLATE[ms.SHAPE_POINTS]
    n = 200
    modes = ex.expression_modes(neutral)
    actor = _speech(n, neutral, 2) + np.einsum("n,kc->nkc", 0.08 * _smile(n), modes[0])
    new = _speech(n, neutral, 3)
    out = ex.keep_expression(new, actor, neutral, FPS)
    got = ex.slow_expression(out, neutral, fps=FPS)[:, 0]
    want = ex.slow_expression(actor, neutral, fps=FPS)[:, 0]
    assert np.abs(got - want).max() < 0.01
    # the new speech is what moves: the opening is the new voice's, frame by frame
    assert np.allclose(ms.shape_opening(neutral + out), ms.shape_opening(neutral + new), atol=3e-3)
    # a track without frames (actor absent) adds nothing odd
    none = ex.keep_expression(new, np.full_like(actor, np.nan), neutral, FPS)
    assert np.isfinite(none).all()


def test_a_real_clip_has_a_steady_expression():
    """A held-out GRID s1 sentence, said without smiling: its slow part stays within a few hundredths of an IOD (the
    lips at rest before the sentence are a little narrower, their corners lower, than between its words), while the
    frame-by-frame mode coefficients (speech) range much wider."""
    from core.faces.track import track_video

    t = track_video(str(GRID_S1 / "video" / (heldout_names()[0] + ".mp4"))).primary()
    canon, _ = ms.normalize(t.landmarks)
    neutral = ms.clip_neutral(canon, t.present)
    d = canon[:, ms.SHAPE_POINTS] - neutral
    slow = ex.slow_expression(d, neutral, t.present, FPS)
    coef = ex.mode_coefficients(d[t.present], ex.expression_modes(neutral))
    assert np.ptp(slow[t.present], axis=0).max() < 0.07
    assert np.all(np.ptp(slow[t.present], axis=0) < 0.6 * np.ptp(coef, axis=0))


@pytest.mark.parametrize("n", [3, 12, 30, 38, 39, 40])
def test_clips_shorter_than_the_smoothing_keep_their_length(n):
    """A voice of 1.2 s (30 frames at 25 fps) is shorter than the 1 s Gaussian's support (39 taps): the result must
    still have one row per frame (np.convolve "same" returned the kernel's length and a short dub crashed)."""
    neutral = ms.TEMPLATE[ms.SHAPE_POINTS]
    new = _speech(n, neutral, seed=1)
    actor = _speech(n, neutral, seed=2) + 0.05 * ex.expression_modes(neutral)[0][None]
    out = ex.keep_expression(new, actor, neutral, FPS)
    assert out.shape == new.shape and np.isfinite(out).all()
    assert ex.slow_expression(actor, neutral, fps=FPS).shape == (n, 2)
