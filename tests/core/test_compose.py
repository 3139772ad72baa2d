"""core.compose: soft lower-face mask, colour match, composite (real GRID landmarks + synthetic images)."""

import numpy as np
import pytest

from core.compose import color_match, composite, lower_face_mask, mask_roi
from core.engines.base import MaskSettings, RenderedPatch
from core.faces import geometry as geo
from tools.grid_cache import load_clip
from data_paths import heldout_names


H, W = 288, 360


@pytest.fixture(scope="module")
def lms():
    d = load_clip(heldout_names()[0])
    assert d["present"].all()
    return d["landmarks"].astype(np.float32)


def _at(mask, roi, pt):
    x, y = int(round(pt[0])), int(round(pt[1]))
    if not (roi[0] <= x < roi[2] and roi[1] <= y < roi[3]):
        return 0.0
    return float(mask[y - roi[1], x - roi[0]])


def test_mask_range_mouth_and_far_away(lms):
    for i in (0, 20, 45):
        lm = lms[i]
        m, roi = lower_face_mask((H, W), lm, MaskSettings())
        assert m.dtype == np.float32 and m.shape == (roi[3] - roi[1], roi[2] - roi[0])
        assert m.min() >= 0.0 and m.max() <= 1.0
        # 1 over the whole mouth and the chin centre
        for p in list(lm[48:68]) + [lm[8] + (lm[57] - lm[8]) * 0.3]:
            assert _at(m, roi, p) == 1.0
        # 0 at the eyes, the brows and the nose bridge (inside or outside the ROI)
        for p in list(lm[36:48]) + list(lm[17:27]) + [lm[27], lm[28]]:
            assert _at(m, roi, p) == 0.0
        # soft: no hard rectangle edge, the ROI border row/cols are 0
        assert m[0].max() == 0 and m[-1].max() == 0 and m[:, 0].max() == 0 and m[:, -1].max() == 0
        # a real soft band exists
        assert ((m > 0.05) & (m < 0.95)).sum() > 100


def test_feather_widens_soft_band_and_dilation_grows(lms):
    lm = lms[10]
    bands, areas = [], []
    for f in (0.05, 0.15, 0.4):
        m, _ = lower_face_mask((H, W), lm, MaskSettings(feather=f))
        bands.append(int(((m > 0.1) & (m < 0.9)).sum()))
        areas.append(float(m.sum()))
    assert bands[0] < bands[1] < bands[2]
    assert bands[2] > 2 * bands[0]
    # total weight stays about the same (feather is centred on the outline)
    assert max(areas) / min(areas) < 1.25
    a0 = lower_face_mask((H, W), lm, MaskSettings(dilation=0.0))[0].sum()
    a1 = lower_face_mask((H, W), lm, MaskSettings(dilation=0.3))[0].sum()
    assert a1 > 1.3 * a0


def test_extents_reach_up_and_down(lms):
    lm = lms[10].astype(np.float64)
    iod = float(geo.inter_ocular(lm))
    below_chin = lm[8] + np.array([0.0, 0.45 * iod])
    nose_mid = lm[30] + (lm[33] - lm[30]) * 0.2
    m, roi = lower_face_mask((H, W), lm, MaskSettings())
    assert _at(m, roi, below_chin) == 0.0 and _at(m, roi, nose_mid) < 0.5
    m, roi = lower_face_mask((H, W), lm, MaskSettings(extent_down=0.6))
    assert _at(m, roi, below_chin) > 0.9
    m, roi = lower_face_mask((H, W), lm, MaskSettings(extent_up=0.4))
    assert _at(m, roi, nose_mid) > 0.9


def test_mask_scales_with_face_size(lms):
    lm = lms[30].astype(np.float64)
    m1, r1 = lower_face_mask((H, W), lm, MaskSettings())
    lm2 = lm * 2.5
    m2, r2 = lower_face_mask((H * 3, W * 3), lm2, MaskSettings())
    ratio = m2.sum() / m1.sum()
    assert 2.5 ** 2 * 0.92 < ratio < 2.5 ** 2 * 1.08
    band1 = ((m1 > 0.1) & (m1 < 0.9)).sum()
    band2 = ((m2 > 0.1) & (m2 < 0.9)).sum()
    assert 2.5 ** 2 * 0.8 < band2 / band1 < 2.5 ** 2 * 1.25
    assert mask_roi((H, W), lm, MaskSettings()) == r1


def test_mask_degenerate_inputs(lms):
    bad = lms[0].copy()
    bad[50] = np.nan
    m, roi = lower_face_mask((H, W), bad, MaskSettings())
    assert m.size == 0 and roi == (0, 0, 0, 0)
    off = lms[0] + 2000.0
    m, roi = lower_face_mask((H, W), off, MaskSettings())
    assert m.size == 0
    # face partly off the frame: mask is clipped, still valid
    shifted = lms[0] + np.array([0.0, 60.0], np.float32)   # chin below the frame edge
    m, roi = lower_face_mask((H, W), shifted, MaskSettings())
    assert roi[3] == H and m.shape == (roi[3] - roi[1], roi[2] - roi[0]) and m.max() == 1.0


def test_color_match_removes_a_colour_cast():
    rng = np.random.default_rng(1)
    target = np.clip(rng.normal(140, 25, (60, 80, 3)), 0, 255).astype(np.uint8)
    cast = np.clip(target.astype(np.int16) + np.array([-25, 10, 30]), 0, 255).astype(np.uint8)
    ring = np.zeros((60, 80), np.float32)
    ring[:, :20] = 1.0
    fixed = color_match(cast, target, ring)
    before = np.abs(cast.astype(float) - target).mean()
    after = np.abs(fixed.astype(float) - target).mean()
    assert before > 15 and after < 4
    # too little weight: unchanged
    assert color_match(cast, target, np.zeros((60, 80), np.float32)) is cast


def _noise_frame(seed):
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def test_composite_only_touches_the_mask(lms):
    frame = _noise_frame(2)
    lm = lms[12]
    box = (40, 60, 320, 280)
    img = np.full((box[3] - box[1], box[2] - box[0], 3), 200, np.uint8)
    patch = RenderedPatch(box=box, image=img, mask_landmarks=lm)
    for cm in (False, True):
        s = MaskSettings(color_match=cm)
        out = composite(frame, patch, s)
        m, roi = lower_face_mask((H, W), lm, s)
        outside = np.ones((H, W), bool)
        outside[roi[1]:roi[3], roi[0]:roi[2]] = m <= 0
        assert np.array_equal(out[outside], frame[outside])
        changed = np.any(out != frame, axis=2)
        assert changed.sum() > 0.8 * (m > 0.5).sum()
        if not cm:
            inner = np.zeros((H, W), bool)
            inner[roi[1]:roi[3], roi[0]:roi[2]] = m >= 1.0
            assert np.all(out[inner] == 200)
    # the input frame is never modified in place
    assert np.array_equal(frame, _noise_frame(2))


def test_composite_small_patch_box_is_tapered_not_cut(lms):
    frame = np.full((H, W, 3), 50, np.uint8)
    lm = lms[12]
    c = lm[48:68].mean(0)
    box = (int(c[0]) - 30, int(c[1]) - 25, int(c[0]) + 30, int(c[1]) + 25)
    img = np.full((box[3] - box[1], box[2] - box[0], 3), 250, np.uint8)
    out = composite(frame, RenderedPatch(box=box, image=img, mask_landmarks=lm), MaskSettings(color_match=False))
    diff = np.abs(out.astype(int) - frame).max(axis=2)
    outside = np.ones((H, W), bool)
    outside[box[1]:box[3], box[0]:box[2]] = False
    assert diff[outside].max() == 0
    # at the box's own edge the blend has faded out: no visible rectangle
    edge = np.concatenate([diff[box[1], box[0]:box[2]], diff[box[3] - 1, box[0]:box[2]],
                           diff[box[1]:box[3], box[0]], diff[box[1]:box[3], box[2] - 1]])
    assert edge.max() <= 25
    assert diff[int(c[1]), int(c[0])] == 200


def test_composite_bad_patch_landmarks_is_noop(lms):
    frame = _noise_frame(3)
    bad = np.full((68, 2), np.nan, np.float32)
    img = np.zeros((10, 10, 3), np.uint8)
    out = composite(frame, RenderedPatch(box=(0, 0, 10, 10), image=img, mask_landmarks=bad))
    assert np.array_equal(out, frame)
