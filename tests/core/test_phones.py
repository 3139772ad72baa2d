"""PocketSphinx phone decoding: the same voice always decodes the same, whatever the process decoded before
(a dub must not depend on which clips a window, a batch or a Ray worker handled earlier), and a voice decoded
moments ago is not decoded again."""
import numpy as np
import pytest

from core import phones
from core.audio import load_audio
from data_paths import GRID_S1, heldout_names


def test_a_voice_decodes_the_same_whatever_came_before(monkeypatch):
    monkeypatch.setattr(phones, "DECODED_KEPT", 0)          # every call decodes
    a, b = (load_audio(GRID_S1 / "video" / f"{n}.mp4") for n in heldout_names()[:2])
    first = phones.decode_phones(a)
    assert first and {p for p, _, _ in first} - {"SIL"}          # real phones, not only silence
    phones.decode_phones(b)
    assert phones.decode_phones(a) == first
    assert phones.decode_phones(a) == first


def test_recent_voices_are_decoded_once(monkeypatch):
    calls = []
    real = phones._decode
    monkeypatch.setattr(phones, "_decode", lambda x: calls.append(len(x)) or real(x))
    monkeypatch.setattr(phones, "_DECODED", type(phones._DECODED)())
    a, b = (load_audio(GRID_S1 / "video" / f"{n}.mp4") for n in heldout_names()[2:4])
    first = phones.decode_phones(a)
    first.append(("AA", 0.0, 0.1))                      # a caller changing its list changes nothing kept
    assert phones.decode_phones(a.copy()) == first[:-1] and len(calls) == 1
    phones.decode_phones(b)
    assert len(calls) == 2
    louder = np.clip(a * 1.5, -1, 1)                   # other samples: decoded
    phones.decode_phones(louder)
    assert len(calls) == 3
    for k in range(phones.DECODED_KEPT):                # pushed out by newer voices: decoded again
        phones.decode_phones(a[: len(a) - 160 * (k + 1)])
    phones.decode_phones(a)
    assert len(calls) == 4 + phones.DECODED_KEPT


def test_moved_phones_match_the_moved_voice_decoded():
    """`shift_segments` stands in for decoding a voice again after silence is put in front of it (the A/V offset
    search and the adaptation move the clip's own voice): the phone of most frames must be the same."""
    wav = load_audio(GRID_S1 / "video" / f"{heldout_names()[4]}.mp4")
    seconds = 7 * 640 / 16000                              # 7 frames at 25 fps
    padded = np.concatenate([np.zeros(7 * 640, np.float32), wav])
    n = int(len(padded) / 640)
    moved = phones.phone_features(padded, 25.0, n, phones.shift_segments(phones.decode_phones(wav), seconds))
    decoded = phones.phone_features(padded, 25.0, n)
    assert moved[:7, phones.PHONE_INDEX["SIL"]].min() == 1.0      # the silence put in front
    agree = (moved.argmax(1) == decoded.argmax(1)).mean()
    assert agree >= 0.8, agree


def test_moving_phones_earlier_cuts_what_falls_before_the_start():
    segs = [("SIL", 0.0, 0.1), ("AA", 0.1, 0.3), ("B", 0.3, 0.5)]
    assert phones.shift_segments(segs, -0.2) == [("AA", 0.0, pytest.approx(0.1)), ("B", pytest.approx(0.1),
                                                                                   pytest.approx(0.3))]
    assert phones.shift_segments(segs, 0.5)[0] == ("SIL", 0.5, 0.6)


def test_pcm_is_made_block_by_block_as_from_the_whole_voice(monkeypatch):
    """`pcm16` scales a long voice a block at a time (memory); the samples must be those of the whole-voice
    formula it replaced, with damaged samples (NaN, infinities) and blocks cut anywhere."""
    def whole(wav):
        x = np.nan_to_num(np.asarray(wav, np.float32).reshape(-1))
        peak = float(np.abs(x).max())
        if peak > 0:
            x = x * (0.7 / peak)
        return (x * 32767).astype(np.int16)

    real = load_audio(GRID_S1 / "video" / f"{heldout_names()[5]}.mp4")
    noisy = np.random.default_rng(3).normal(0, 0.2, 10007).astype(np.float32)
    noisy[[5, 600, 9000]] = [np.nan, np.inf, -np.inf]
    for chunk in (1000, 4097, phones.PCM_CHUNK):
        monkeypatch.setattr(phones, "PCM_CHUNK", chunk)
        for wav in (real, real[:999], noisy, np.zeros(5000, np.float32)):
            np.testing.assert_array_equal(phones.pcm16(wav), whole(wav))
    assert phones.pcm16(np.zeros(0, np.float32)).size == 0
    assert phones.decode_phones(real) == phones._decode(whole(real))
