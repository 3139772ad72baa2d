"""The numba kernels (core.engines.kernels) against the plain numpy formulas: bit-identical."""
import numpy as np
import pytest

from core.engines import kernels as K
from core.engines import retrieval

numba = pytest.importorskip("numba")


@pytest.fixture
def plain(monkeypatch):
    """Call a function with numba off (the numpy formulas)."""
    def call(fn, *args):
        with monkeypatch.context() as m:
            m.setattr(K, "_jit", {})
            m.setenv("LIPDUB_NUMBA", "0")
            return fn(*args)
    return call


def _bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint8)


def test_affine_maps_equal(plain):
    rng = np.random.default_rng(0)
    aff = rng.normal(0, 3, (40, 6)).astype(np.float32)
    aff[:, [2, 5]] *= 100
    labels = rng.integers(0, 40, (60, 70)).astype(np.int32)
    assert K._compile("affine_maps") is not None
    for lab, origin in [(labels, (0, 0)), (labels[5:50, 10:60], (10, 5))]:
        got = K.affine_maps(aff, lab, origin)
        want = plain(K.affine_maps, aff, lab, origin)
        for g, w in zip(got, want):
            assert g.shape == lab.shape and np.array_equal(_bits(g), _bits(w))


def test_weighted_median_equal(plain):
    rng = np.random.default_rng(1)
    assert K._compile("weighted_median") is not None
    for _ in range(120):
        m = int(rng.integers(1, 7))
        imgs = rng.integers(0, int(rng.choice([3, 20, 256])), (m, 9, 11, 3)).astype(np.uint8)
        w = [rng.uniform(0, 2, m), np.ones(m), np.round(rng.uniform(0, 2, m), 1)][int(rng.integers(3))]
        w = w.astype(np.float32)
        assert np.array_equal(retrieval.weighted_median(imgs, w), plain(retrieval.weighted_median, imgs, w))


def test_blend_equal(plain):
    rng = np.random.default_rng(2)
    assert K._compile("blend") is not None
    for _ in range(30):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        base = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        over = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        alpha = [rng.uniform(0, 1, (h, w)), np.round(rng.uniform(0, 1, (h, w)), 2),
                 (rng.uniform(0, 1, (h, w)) > 0.5) * 1.0][int(rng.integers(3))].astype(np.float32)
        assert np.array_equal(K.blend(base, over, alpha), plain(K.blend, base, over, alpha))


def test_off_switch(monkeypatch):
    monkeypatch.setattr(K, "_jit", {})
    monkeypatch.setenv("LIPDUB_NUMBA", "0")
    assert K._compile("blend") is None


def test_affines_many_equal_to_one_solve_each():
    from core.engines import warp

    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 250, (50, 2))
    tris = warp.triangulate(pts)
    for _ in range(40):
        dst = pts + rng.normal(0, 3, pts.shape)
        srcs = [pts + rng.normal(0, 5, pts.shape) for _ in range(int(rng.integers(1, 7)))]
        for got, src in zip(warp.affines_many(srcs, dst, tris), srcs):
            assert np.array_equal(got.view(np.int64), warp._affines(src, dst, tris).view(np.int64))


def test_a_classic_render_compiles_one_contiguous_specialisation_of_each_kernel(monkeypatch, tmp_path):
    """The render passes slices (the labels, the images): each kernel is compiled once, for contiguous arrays (a
    second specialisation costs another compile, and numba's loops over non-contiguous arrays do not vectorise)."""
    from core import pipeline
    from data_paths import SAMPLES

    monkeypatch.setattr(K, "_jit", {})
    settings = pipeline.DubSettings(video=str(SAMPLES / "grid_s1_sample.mp4"), audio=str(SAMPLES / "voice_sample.wav"),
                                    output=str(tmp_path / "o.mp4"), track_cache_dir=str(tmp_path / "t"), adapt=False,
                                    frame_range=(20, 30))
    pipeline.run_dub(settings)
    compiled = {name: list(fn.signatures) for name, fn in K._jit.items()}
    assert sorted(compiled) == ["affine_maps", "blend", "weighted_median"]
    for name, signatures in compiled.items():
        assert len(signatures) == 1, name
        assert all(arg.layout == "C" for arg in signatures[0] if hasattr(arg, "layout")), name
