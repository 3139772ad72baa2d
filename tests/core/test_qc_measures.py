"""core.qc's per-frame measures on synthetic crops (no video): the SSIM map against scikit-image's, and the seam
measure on a brightness step pasted across hair-like strands (the case the seam rule used to miss)."""
import cv2
import numpy as np
import pytest

from core.qc import measure as QM
from core.qc import metrics as M
from core.qc.rules import Thresholds

IOD = 47.0     # px: a GRID face's inter-ocular distance in the crop


def textured(seed=0, size=128, strands=150):
    """Smooth skin-like shading crossed by thin dark strands (hair over a cheek, as on brbk7n): dense enough that
    the old seam rule (any edge of the original nearby explains a new one) saw no step at all."""
    rng = np.random.default_rng(seed)
    g = 140 + cv2.GaussianBlur(rng.normal(0, 12, (size, size)).astype(np.float32), (0, 0), 6)
    for _ in range(strands):
        p = rng.uniform(0, size, 2)
        d = rng.normal(0, 1, 2)
        q = p + d / np.linalg.norm(d) * rng.uniform(30, 90)
        cv2.line(g, tuple(int(v) for v in p), tuple(int(v) for v in q), float(rng.uniform(70, 100)), 1,
                 cv2.LINE_AA)
    return g


def stepped(g, delta=10.0):
    """A hard-edged half-disc (a pasted lower face) `delta` grey levels brighter."""
    m = np.zeros(g.shape, np.uint8)
    cv2.ellipse(m, (64, 40), (50, 60), 0, 0, 180, 1, -1)
    return np.clip(g + delta * m, 0, 255).astype(np.float32)


def test_ssim_map_is_scikit_images():
    from skimage.metrics import structural_similarity

    a = textured(1)
    b = np.clip(a + np.random.default_rng(2).normal(0, 8, a.shape), 0, 255).astype(np.float32)
    _, ref = structural_similarity(a, b, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False, full=True)
    assert np.abs(M.ssim_map(a, b) - ref).max() < 1e-3
    assert M.ssim_map(a[:5, :5], b[:5, :5]) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_brightness_step_across_strands_is_a_seam(seed):
    g = textured(seed)
    zone = np.ones(g.shape, bool)
    t = Thresholds()
    assert QM.seam_length(g, stepped(g), zone, IOD) > t.seam_length
    # coding-noise-like differences alone draw no seam
    noisy = np.clip(g + np.random.default_rng(seed + 10).normal(0, 1.5, g.shape), 0, 255).astype(np.float32)
    assert QM.seam_length(g, noisy, zone, IOD) <= t.seam_length


def test_moved_strands_are_not_a_seam():
    """The dub shifted the content by a pixel (motion, not a paste): the flow explains it."""
    g = textured(3)
    moved = cv2.warpAffine(g, np.float32([[1, 0, 1.0], [0, 1, 0.5]]), g.shape[::-1], borderMode=cv2.BORDER_REFLECT)
    assert QM.seam_length(g, moved, np.ones(g.shape, bool), IOD) <= Thresholds().seam_length


def test_opencv_single_threaded_restores_the_pool():
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        with M.opencv_single_threaded():
            assert cv2.getNumThreads() == 1
            with M.opencv_single_threaded():          # overlapping checks (two threads)
                assert cv2.getNumThreads() == 1
            assert cv2.getNumThreads() == 1
        assert cv2.getNumThreads() == 2
        with pytest.raises(RuntimeError):
            with M.opencv_single_threaded():
                raise RuntimeError("a failing measure")
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)
