"""PocketSphinx phone decoding: the same voice always decodes the same, whatever the process decoded before
(a dub must not depend on which clips a window, a batch or a Ray worker handled earlier)."""
from core import phones
from core.audio import load_audio
from data_paths import GRID_S1, heldout_names


def test_a_voice_decodes_the_same_whatever_came_before():
    a, b = (load_audio(GRID_S1 / "video" / f"{n}.mp4") for n in heldout_names()[:2])
    first = phones.decode_phones(a)
    assert first and {p for p, _, _ in first} - {"SIL"}          # real phones, not only silence
    phones.decode_phones(b)
    assert phones.decode_phones(a) == first
    assert phones.decode_phones(a) == first
