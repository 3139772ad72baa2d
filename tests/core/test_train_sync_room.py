"""tools.train_sync.room_mel: the simulated room the scorer's training voices are put in (reverberant tail,
noise, EQ), on a synthetic burst and on a real GRID voice."""
import numpy as np
import pytest

from data_paths import GRID_S1, heldout_names
from tools.train_sync import room_mel

FLOOR = -4.0


def burst(columns=160, start=20, stop=40, level=2.0):
    m = np.full((80, columns), FLOOR, np.float32)
    m[:, start:stop] = level
    return m


@pytest.mark.parametrize("seed", range(6))
def test_a_burst_leaves_a_decaying_tail_over_a_noise_floor(seed):
    clean = burst()
    out = room_mel(clean, np.random.default_rng(seed))
    assert out.shape == clean.shape and out.dtype == np.float32
    assert out.min() >= -4.0 and out.max() <= 4.0
    before = out[:, :15].mean()                  # only noise: the tail runs forwards in time
    just_after = out[:, 41:44].mean()
    late = out[:, 140:].mean()
    assert before > FLOOR + 0.2                   # noise lifts the digital silence
    assert just_after > late + 0.2, (just_after, late)   # reverberation: the burst rings on, then dies away
    assert abs(late - before) < 0.3               # ... down to the same noise floor as before it
    assert abs(out[:, 22:38].mean() - 2.0) < 0.6  # the burst itself keeps its level (EQ tilt and tail aside)


def test_same_generator_state_same_room_and_another_seed_another_room():
    clean = burst()
    a = room_mel(clean, np.random.default_rng(7))
    b = room_mel(clean, np.random.default_rng(7))
    c = room_mel(clean, np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_real_voice_pauses_fill_with_room_and_the_words_stay():
    from core.audio import load_audio, melspectrogram

    clean = melspectrogram(load_audio(str(GRID_S1 / "video" / f"{heldout_names()[0]}.mp4")))
    loud = clean.mean(0)
    quiet = loud <= np.percentile(loud, 10)
    words = loud >= np.percentile(loud, 75)
    for seed in range(4):
        out = room_mel(clean, np.random.default_rng(seed))
        assert out[:, quiet].mean() > clean[:, quiet].mean() + 0.3       # pauses: tails and noise
        # speech within about 12 dB of what it was (EQ, and noise in the bands where speech is weak)
        assert abs(out[:, words].mean() - clean[:, words].mean()) < 1.0
        # the words still shape the spectrogram: loud columns stay louder than the pauses
        assert out[:, words].mean() > out[:, quiet].mean() + 0.25
