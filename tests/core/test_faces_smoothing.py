"""One-Euro smoothing: no lag on ramps, sharp steps, less noise, reset at cuts (synthetic signals)."""
import numpy as np

from core.faces.smoothing import OneEuroParams, one_euro, segments, smooth_sequence

FPS = 25.0
P = OneEuroParams(min_cutoff=0.5, beta=3.0, d_cutoff=2.0)   # the tracker's landmark defaults


def _pts(x):
    """(T,) -> (T, 1, 2) points moving along x."""
    return np.stack([np.asarray(x, float), np.zeros(len(x))], -1)[:, None, :]


def test_ramp_has_no_lag_offline_but_lags_causally():
    t = np.arange(100)
    x = _pts(t * 10.0)                                    # 10 px/frame, face 100 px wide -> 2.5 faces/s
    zp = one_euro(x, FPS, P, scale=np.full(100, 100.0))
    causal = one_euro(x, FPS, P, scale=np.full(100, 100.0), zero_phase=False)
    assert np.abs(zp[10:-10, 0, 0] - t[10:-10] * 10.0).max() < 0.5
    assert (t[10:-10] * 10.0 - causal[10:-10, 0, 0]).min() > 1.0   # a one-pass filter does lag


def test_step_is_followed_within_a_frame_without_overshoot():
    t = np.arange(100)
    y = one_euro(_pts(np.where(t < 50, 0.0, 50.0)), FPS, P, scale=np.full(100, 100.0))[:, 0, 0]
    assert y[:48].max() < 1.5 and y[49] < 0.2 * 50          # hardly any anticipation
    assert y[50] > 0.8 * 50 and y[52] > 0.98 * 50            # no visible lag
    assert y.max() <= 50.0 + 1e-3 and y.min() >= -1e-3       # no overshoot


def test_jitter_on_a_still_point_is_reduced():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1.0, (200, 5, 2)) + 100.0
    y = one_euro(noise, FPS, P, scale=np.full(200, 60.0))
    assert y.std(axis=0).mean() < 0.5 * noise.std(axis=0).mean()


def test_segments_split_at_gaps_and_cuts():
    present = np.array([1, 1, 1, 0, 0, 1, 1, 1, 1, 1], bool)
    assert segments(present) == [(0, 3), (5, 10)]
    assert segments(present, cuts=[7]) == [(0, 3), (5, 7), (7, 10)]


def test_filter_resets_at_a_cut_and_keeps_nan_where_absent():
    t = np.arange(60)
    x = _pts(np.where(t < 30, 0.0, 200.0)).astype(np.float32)
    present = np.ones(60, bool)
    present[10:12] = False
    x[10:12] = np.nan
    y = smooth_sequence(x, present, FPS, OneEuroParams(min_cutoff=0.2, beta=0.0), cuts=[30])
    assert np.isnan(y[10:12]).all()
    assert np.allclose(y[28:30, 0, 0], 0.0, atol=1e-4)        # nothing from after the cut leaks before it
    assert np.allclose(y[30:32, 0, 0], 200.0, atol=1e-4)
    # without the cut the same (slow) filter blurs the jump across frames
    z = smooth_sequence(x, present, FPS, OneEuroParams(min_cutoff=0.2, beta=0.0))
    assert z[29, 0, 0] > 20.0 and z[30, 0, 0] < 180.0
