"""The calibrated sync lane (core.sync.lane) on synthetic distance tables and through score_clip on real clips:
the clip's own voice is mostly not low, the same voice 8 frames late and another clip's voice mostly are, and
`score --json` reports `low` exactly as the lane computes it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.sync import lane as sync_lane
from core.sync.scoring import score_clip
from data_paths import GRID_S1, SHARED, heldout_names

V = 15


def _table(m=120, true_offset=0, signal=2.0, seed=0):
    """Window distances: noise everywhere, smaller at the column of `true_offset` (syncnet's sign)."""
    rng = np.random.default_rng(seed)
    d = 10 + rng.normal(0, 0.5, (m, 2 * V + 1))
    d[:, V - true_offset] -= signal
    return d


def test_in_sync_table_is_confident_and_out_of_sync_is_low():
    own = sync_lane.calibrate(_table(), V).confidence
    late = sync_lane.calibrate(_table(true_offset=-8), V).confidence
    assert own.shape == (120,) and np.median(own) > 2 * sync_lane.LOW_THRESHOLD
    assert (late < sync_lane.LOW_THRESHOLD).mean() > 0.95
    # the same table judged at its own offset is confident again (what adaptation uses)
    assert np.median(sync_lane.calibrate(_table(true_offset=-8), V, offset=-8).confidence) > 2 * sync_lane.LOW_THRESHOLD


def test_a_rival_offset_that_fits_clearly_better_makes_the_window_low():
    """Where another offset (>= RIVAL_MIN_SHIFT away) fits a stretch better than offset 0 by more than RIVAL_MARGIN,
    the stretch is out of sync whatever offset 0 scores; where offset 0 is the best, nothing changes."""
    d = _table(seed=5)
    plain = sync_lane.calibrate(d, V).confidence
    rivalled = d.copy()
    rivalled[30:90, V - 9] -= 4.0          # a stretch where the voice 9 frames early fits far better than at 0
    conf = sync_lane.calibrate(rivalled, V).confidence
    reach = sync_lane.SPAN // 2 + 1        # the local average's reach
    inner = slice(30 + reach, 90 - reach)
    assert inner.stop - inner.start >= 30 and (conf[inner] < 0).all()                          # below every threshold (MIN_LOW_THRESHOLD > 0)
    assert np.median(plain[inner]) > 2 * sync_lane.LOW_THRESHOLD   # offset 0 alone still looks fine there
    far = np.r_[0:30 - reach, 90 + reach:120]
    np.testing.assert_allclose(conf[far], plain[far], rtol=0.2)     # elsewhere as before (the null barely moves)
    # a rival within RIVAL_MIN_SHIFT is the same peak seen from a neighbouring offset: not a rival
    near = d.copy()
    near[30:90, V - (sync_lane.RIVAL_MIN_SHIFT - 1)] -= 4.0
    assert (sync_lane.calibrate(near, V).confidence[inner] > 0).all()


def test_confidence_does_not_depend_on_the_scale_of_the_distances():
    """A face or scorer whose distances are all twice as spread gives the same calibrated confidence."""
    d = _table(seed=3)
    a = sync_lane.calibrate(d, V).confidence
    b = sync_lane.calibrate(10 + 2 * (d - 10), V).confidence
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_low_needs_voice_and_a_face():
    conf = np.array([0.0, 0.0, 10.0, 0.0])
    low = sync_lane.low_frames(conf, voiced=np.array([1, 0, 1, 1], bool), valid=np.array([1, 1, 1, 0], bool))
    assert low.tolist() == [True, False, False, False]


def test_bad_offset_is_rejected():
    with pytest.raises(ValueError):
        sync_lane.calibrate(_table(), V, offset=V + 1)


@pytest.fixture(scope="module")
def held_clip():
    from core.audio import load_audio
    from core.faces.track import track_video

    name = heldout_names()[7]
    path = GRID_S1 / "video" / f"{name}.mp4"
    other = sorted((SHARED / "data" / "grid_s4" / "video").glob("*.mp4"))[1]   # another person's sentence
    return path, load_audio(path), load_audio(other), track_video(path).primary()


def test_real_clip_own_voice_late_voice_and_other_voice(held_clip):
    from core.sync.scoring import get_scorer

    path, wav, other, track = held_clip
    scorer = get_scorer("lite")
    late = np.concatenate([np.zeros(8 * 640, np.float32), wav])[:len(wav)]
    shares = {}
    for label, voice in (("own", wav), ("late", late), ("other", np.resize(other, len(wav)))):
        rep = score_clip(path, voice, track, scorer)
        assert rep.low.shape == rep.per_frame.shape == rep.voiced.shape == (len(track.present),)
        assert not rep.low[~rep.voiced].any()
        np.testing.assert_array_equal(rep.low, sync_lane.low_frames(rep.per_frame, rep.voiced, rep.valid))
        shares[label] = rep.low.sum() / rep.voiced.sum()
    assert shares["own"] <= 0.25 and shares["late"] >= 0.8 and shares["other"] >= 0.8, shares


def test_score_json_reports_low_and_its_threshold_and_scores_the_own_sound_once(held_clip, tmp_path, monkeypatch,
                                                                               capsys):
    """`score --json --csv` reports `low` exactly as the lane computes it, with its threshold, in both files. And
    the adaptation scores the clip's own voice to learn the threshold; `score` without --audio reuses that report,
    judged by the learnt threshold, instead of decoding and scoring the video a second time. (One `score` run for
    both: `main.py score` in a process of its own is test_sync_asd.py's.)"""
    from core.sync import scoring
    from core.cli import main as cli_main

    calls = []
    real = scoring.score_clip
    monkeypatch.setattr(scoring, "score_clip", lambda *a, **k: calls.append(k) or real(*a, **k))
    assert cli_main(["score", "--video", str(held_clip[0]), "--json", "--quiet", "--scorer", "lite",
                     "--csv", str(tmp_path / "f.csv")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(calls) == 1 and len(doc["low"]) == 75
    assert doc["low_threshold"] == sync_lane.LOW_THRESHOLD
    conf, low, voiced = np.array(doc["per_frame"], float), np.array(doc["low"]), np.array(doc["voiced"])
    assert len(low) == len(conf) == len(voiced) == 75
    np.testing.assert_array_equal(low, voiced & (conf < doc["low_threshold"]) & np.array(doc["valid"]))
    rows = (tmp_path / "f.csv").read_text().splitlines()
    assert rows[0].split(",")[:4] == ["frame", "time_s", "confidence", "low"]
    assert [int(r.split(",")[3]) for r in rows[1:]] == low.astype(int).tolist()
