"""tools.train_sync_asd's third picture (`footage_chain`: upper-lip occluder, low contrast, block codec) on
synthetic crops, and the prep folder that keeps it apart from the shipped recipe's."""
import numpy as np
import pytest

from tools.train_sync_asd import (block_codec, camera_chain, fill_nan_landmarks, footage_chain, lip_occluder,
                                  low_contrast, prep_dir)


def faces(t=24, seed=0):
    rng = np.random.default_rng(seed)
    base = np.full((112, 112), 170, np.float32) + rng.normal(0, 6, (112, 112))
    return np.clip(np.repeat(base[None], t, 0), 0, 255).astype(np.uint8)


def landmarks(t=24):
    lm = np.full((68, 2), 56.0, np.float32)
    lm[:17] = np.stack([np.linspace(10, 102, 17), np.linspace(20, 100, 17)], 1)    # jaw (only its extent matters)
    lm[33] = (56, 60)                                                              # nose's base
    lm[48:55] = np.stack([np.linspace(40, 72, 7), [74, 72, 71, 70, 71, 72, 74]], 1)  # upper lip's outer contour
    lm[57] = (56, 86)                                                              # lower lip's bottom
    return np.repeat(lm[None], t, 0)


@pytest.mark.parametrize("seed", range(4))
def test_the_occluder_darkens_between_nose_and_lip_only(seed):
    crops = faces()
    out = lip_occluder(crops, landmarks(), np.random.default_rng(seed))
    assert out.shape == crops.shape and out.dtype == np.uint8
    band = (slice(None), slice(66, 70), slice(48, 64))        # above the lip's top, below the nose
    assert out[band].mean() < 0.75 * crops[band].mean()
    far = (slice(None), slice(0, 40), slice(None))           # forehead and eyes untouched
    assert np.array_equal(out[far], crops[far])


def test_low_contrast_flattens_and_darkens():
    crops = faces()
    crops[:, 50:60] = 40
    out = low_contrast(crops, np.random.default_rng(1))
    assert out.std() < 0.8 * crops.std() and out.mean() < crops.mean()


def test_the_codec_changes_the_picture_in_groups_of_twelve():
    rng = np.random.default_rng(3)
    crops = np.clip(faces() + rng.integers(0, 60, (24, 112, 112)), 0, 255).astype(np.uint8)
    out = block_codec(crops, np.random.default_rng(5))
    assert out.shape == crops.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - crops).mean() > 2


def test_same_stream_same_picture_and_at_least_one_family():
    crops, lms = faces(), landmarks()
    a = footage_chain(crops, lms, np.random.default_rng([7, 3]))
    b = footage_chain(crops, lms, np.random.default_rng([7, 3]))
    assert np.array_equal(a, b)
    for s in range(12):     # never the camera chain alone: the same stream through camera_chain alone differs
        rng = np.random.default_rng([s, 3])
        rng.random(3)
        assert not np.array_equal(footage_chain(crops, lms, np.random.default_rng([s, 3])),
                                  camera_chain(crops, rng))


def test_missing_landmarks_take_the_nearest_frames():
    lms = landmarks(5)
    lms[1:3] = np.nan
    lms[4] += 1
    out = fill_nan_landmarks(lms)
    assert np.isfinite(out).all() and np.array_equal(out[1], lms[0]) and np.array_equal(out[3], lms[3])


def test_the_third_picture_has_a_prep_folder_of_its_own():
    assert prep_dir().name == "sync_asd_prep"
    assert prep_dir("lr_asd").name == "sync_asd_prep_lr_asd"
    assert prep_dir(pictures=3).name == "sync_asd_prep_p3"
