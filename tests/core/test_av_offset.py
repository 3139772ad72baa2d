"""The offset from two witnesses (core.sync.av_offset): the scorer's distance curve and the mouth model's opening.
On speakers neither model was trained on (grid_others), injected delays are found within one frame, and the LSE
figures stay the scorer's own."""
import numpy as np
import pytest

from core.sync import av_offset
from core.audio import load_audio
from core.faces.track import track_video
from core.mouth_shape import AudioToMouth
from core.sync.scoring import get_scorer, score_clip
from data_paths import GRID_OTHERS

SPF = 640   # 16 kHz samples per 25 fps frame


def delayed(wav, k):
    """The voice k frames late (k < 0: early), same length."""
    s = abs(k) * SPF
    return np.concatenate([np.zeros(s, np.float32), wav])[:len(wav)] if k >= 0 else \
        np.concatenate([wav[s:], np.zeros(s, np.float32)])


def test_robust_z_is_in_units_of_spread_and_zero_for_a_flat_curve():
    z = av_offset.robust_z(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert z[2] == 0.0 and z[4] > 50 and np.all(np.diff(z) > 0)
    assert np.all(av_offset.robust_z(np.full(7, 3.0)) == 0)


@pytest.fixture(scope="module")
def unseen():
    clips = sorted(GRID_OTHERS.glob("*.mpg"))[:3]
    return [(str(p), load_audio(p), track_video(str(p)).primary()) for p in clips]


def test_unseen_speakers_delays_are_found_within_one_frame(unseen):
    scorer, model = get_scorer("lite"), AudioToMouth.load()
    hits = []
    for path, wav, track in unseen:
        face = None     # the clip's face windows, read once and reused for its eight scorings (score_clip's `face`)
        for k in (-6, -3, 3, 6):
            rep = score_clip(path, delayed(wav, k), track, scorer, fps=25.0, offset_model=model, face=face)
            face = rep.face
            plain = score_clip(path, delayed(wav, k), track, scorer, fps=25.0, face=face)
            assert rep.offset_scorer == plain.offset_frames          # the scorer's own answer is kept beside it
            assert (rep.lse_d, rep.lse_c) == (plain.lse_d, plain.lse_c)
            hits.append(abs(rep.offset_frames + k) <= 1)
    assert all(hits), hits


def test_a_still_face_leaves_the_scorer_alone(unseen):
    """No movement to correlate: the mouth curve is flat, the fused offset is the scorer's."""
    path, wav, track = unseen[0]
    still = np.repeat(track.landmarks[:1], len(track.landmarks), axis=0)
    r = av_offset.mouth_curve(AudioToMouth.load(), wav, 25.0, still, track.present, np.arange(-15, 16))
    assert np.all(r == 0)


def test_the_mouth_witness_reads_only_the_voices_first_minutes(unseen, monkeypatch):
    """On a long clip the witness reads its first WITNESS_SECONDS (here 1.6 s of a 3 s clip): the same curve as the
    clip cut there, and PocketSphinx decodes only that part."""
    from core import phones

    path, wav, track = unseen[1]
    model, offsets = AudioToMouth.load(), np.arange(-8, 9)
    cut = av_offset.mouth_curve(model, wav[:int(1.6 * 16000)], 25.0, track.landmarks[:40], track.present[:40],
                                offsets)
    whole = av_offset.mouth_curve(model, wav, 25.0, track.landmarks, track.present, offsets)
    decoded = []
    real = phones._decode
    monkeypatch.setattr(phones, "_decode", lambda x: decoded.append(len(x)) or real(x))
    monkeypatch.setattr(phones, "_DECODED", type(phones._DECODED)())
    monkeypatch.setattr(av_offset, "WITNESS_SECONDS", 1.6)
    av_offset.decode_witness_phones(model, wav)
    bounded = av_offset.mouth_curve(model, wav, 25.0, track.landmarks, track.present, offsets)
    np.testing.assert_array_equal(bounded, cut)
    assert not np.allclose(bounded, whole)
    assert decoded == [int(1.6 * 16000)]          # once, before the curve, and only the witness's span


def test_own_offset_stays_near_zero_where_the_face_supports_it():
    """core.sync.lane_adapt.own_offset_choice: a far peak gives way to the best candidate within reach when the
    face's level there clears the floor; a far peak the face only supports stays (a badly muxed file)."""
    from core.sync.lane_adapt import MAX_OWN_OFFSET, MIN_OWN_CONFIDENCE, own_offset_choice

    offsets = np.arange(-15, 16)
    evidence = -np.abs(offsets - 12).astype(float)          # peak at +12 ...
    evidence[offsets == -1] = -2.0                          # ... and a lesser one at -1
    strong, weak = MIN_OWN_CONFIDENCE + 0.5, MIN_OWN_CONFIDENCE - 0.5
    assert own_offset_choice(offsets, evidence, lambda o: strong) == -1
    assert own_offset_choice(offsets, evidence, lambda o: strong if o == 12 else weak) == 12
    assert own_offset_choice(offsets, evidence, lambda o: weak) == 12      # nothing near 0: refused as before
    within = -np.abs(offsets - 3).astype(float)
    assert own_offset_choice(offsets, within, lambda o: weak) == 3         # a best within reach is never moved
    assert abs(3) <= MAX_OWN_OFFSET


def test_the_witnesses_evidence_is_kept_on_the_report(unseen):
    """score_clip keeps both witnesses' evidence per candidate; its best is the reported offset."""
    path, wav, track = unseen[1]
    rep = score_clip(path, delayed(wav, 4), track, get_scorer("lite"), fps=25.0, offset_model=AudioToMouth.load())
    offsets, evidence = rep.offset_evidence
    assert len(offsets) == len(evidence) == 2 * rep.vshift + 1
    assert offsets[np.argmax(evidence)] == rep.offset_frames and abs(rep.offset_frames + 4) <= 1
