"""Classic engine: retrieval DP, weighted median, piecewise-affine warp, desired shapes, and an oracle cross-dub
on two held-out GRID s1 clips checked by re-detecting landmarks on the rendered output."""
import time


import cv2
import numpy as np
import pytest

from core.compose import composite, lower_face_mask
from core.engines import retrieval, warp
from core.engines.base import DubContext, MaskSettings
from core.engines.classic import ClassicOptions
from core.engines.classic.engine import (ANTICIPATION_S, ClassicEngine, mask_landmarks_for, predicted_targets,
                                         silence_weights, transfer_mouth_shapes)
from core.faces import geometry as geo
from tools.grid_cache import load_clip
from data_paths import GRID_S1, heldout_names, read_frames


# ------------------------------------------------------------------------------------------------ retrieval

def test_viterbi_prefers_coherent_runs_on_synthetic_costs():
    rng = np.random.default_rng(0)
    n, k = 40, 6
    # state 0 is a coherent run that is always slightly worse than the per-frame best (which hops around)
    unary = rng.uniform(0.7, 1.5, (n, k))
    unary[:, 0] = 0.6
    hop = rng.integers(1, k, n)
    unary[np.arange(n), hop] = 0.0
    stay = np.full((k, k), 2.0)
    np.fill_diagonal(stay, 0.0)
    path = retrieval.viterbi(unary, np.repeat(stay[None], n - 1, 0))
    assert np.all(path == 0)
    # without a temporal term it follows the per-frame minimum
    free = retrieval.viterbi(unary, np.zeros((n - 1, k, k)))
    assert np.array_equal(free, np.argmin(unary, 1))
    # callable pairwise gives the same answer as the array form
    assert np.array_equal(retrieval.viterbi(unary, lambda t: stay), path)


def _synthetic_library(n=40, period=20, seed=0):
    """A library whose mouth opening repeats with a period: frame t and t+period have almost the same shape."""
    rng = np.random.default_rng(seed)
    crop = warp.CanonicalCrop(ppi=24)
    lib = retrieval.TextureLibrary(crop, capacity=n)
    tmpl = np.zeros((68, 2))
    tmpl[:, 0] = np.linspace(-1, 1, 68)
    tmpl[:, 1] = 1.3
    w, h = crop.size
    for t in range(n):
        c = tmpl.copy()
        op = 0.15 * (1 + np.sin(2 * np.pi * t / period)) / 2
        c[retrieval.MOUTH_PTS, 1] += np.linspace(-1, 1, 20) * op
        c[[65, 66, 67], 1] += op
        c += rng.normal(0, 0.002, c.shape)
        lib.add(t, rng.integers(0, 256, (h, w, 3), dtype=np.uint8), c)
    lib.finish()
    return lib


def test_select_follows_a_coherent_source_run():
    lib = _synthetic_library()
    rng = np.random.default_rng(5)
    # desired shapes = frames 3..17 with noise: frames t and t+20 are equally good matches every time
    targets = lib.canon[3:18].astype(np.float64) + rng.normal(0, 0.003, (15, 68, 2))
    targets[1::2] = lib.canon[24:38:2] + rng.normal(0, 0.003, (7, 68, 2))
    sel = retrieval.select(lib, targets, k=6, blend=1, jump=1.0)
    frames = lib.frames[sel.rows[:, 0]]
    assert np.all(np.diff(frames) == 1)                       # one coherent run
    free = retrieval.select(lib, targets, k=6, blend=1, jump=0.0)
    hops = np.sum(np.diff(lib.frames[free.rows[:, 0]]) != 1)
    assert hops >= 5                                          # the shape term alone hops between periods
    assert np.all(sel.shape_error < 0.03)


def test_select_can_bar_the_frames_near_each_output_frames_own():
    lib = _synthetic_library()
    own = np.arange(3, 18)
    targets = lib.canon[own].astype(np.float64)
    sel = retrieval.select(lib, targets, k=6, blend=3, jump=1.0)
    assert np.all(lib.frames[sel.rows[:, 0]] == own)            # its own frames match exactly
    barred = retrieval.select(lib, targets, k=6, blend=3, jump=1.0, exclude_near=5, query_frames=own)
    assert np.all(np.abs(lib.frames[barred.rows] - own[:, None]) > 5)
    assert np.all(np.abs(lib.frames[barred.rows[:, 0]] - own) == 20)   # the same shape a period later
    assert np.all(barred.shape_error < 0.03)


def test_weighted_median_matches_sorting_definition():
    rng = np.random.default_rng(3)
    for m in (1, 2, 3, 5):
        v = rng.integers(0, 8, (m, 50)).astype(np.uint8)
        w = rng.uniform(0.1, 2.0, m)
        got = retrieval.weighted_median(v, w)
        for c in range(50):
            o = np.argsort(v[:, c], kind="stable")
            cw = np.cumsum(w[o])
            assert got[c] == v[o[np.argmax(cw >= cw[-1] / 2 - 1e-6)], c]
    # a heavy outlier is voted down; a dominant weight wins
    imgs = np.stack([np.full((4, 4, 3), 10), np.full((4, 4, 3), 12), np.full((4, 4, 3), 250)]).astype(np.uint8)
    assert np.all(retrieval.weighted_median(imgs, [1, 1, 1]) == 12)
    assert np.all(retrieval.weighted_median(imgs, [1, 1, 5]) == 250)


# ------------------------------------------------------------------------------------------------ warp

def test_piecewise_affine_warp_moves_marked_points_to_targets():
    rng = np.random.default_rng(7)
    h, w = 120, 140
    gx, gy = np.meshgrid(np.linspace(30, 110, 5), np.linspace(30, 90, 4))
    src = np.stack([gx.ravel(), gy.ravel()], 1) + rng.uniform(-3, 3, (20, 2))
    dst = src + rng.uniform(-5, 5, src.shape)
    border = warp.boundary_points(-1, -1, w, h, per_side=3)
    src_all, dst_all = np.concatenate([src, border]), np.concatenate([dst, border])
    tris = warp.triangulate(src_all)
    # one small Gaussian blob per control point
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w), np.float64)
    for p in src:
        img += np.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2) / (2 * 1.2 ** 2))
    img8 = np.clip(img * 255, 0, 255).astype(np.uint8)
    out = warp.warp_image(img8, src_all, dst_all, tris).astype(np.float64)
    errs, moved = [], []
    for p, q in zip(src, dst):
        # the blob's peak, refined to sub-pixel by a parabola through the 3x3 neighbourhood
        x0, y0 = int(round(q[0])) - 3, int(round(q[1])) - 3
        win = out[y0:y0 + 7, x0:x0 + 7]
        iy, ix = np.unravel_index(np.argmax(win), win.shape)
        iy, ix = min(max(iy, 1), 5), min(max(ix, 1), 5)
        dx = (win[iy, ix + 1] - win[iy, ix - 1]) / (2 * (2 * win[iy, ix] - win[iy, ix + 1] - win[iy, ix - 1]) + 1e-9)
        dy = (win[iy + 1, ix] - win[iy - 1, ix]) / (2 * (2 * win[iy, ix] - win[iy + 1, ix] - win[iy - 1, ix]) + 1e-9)
        c = np.array([x0 + ix + dx, y0 + iy + dy])
        errs.append(np.linalg.norm(c - q))
        moved.append(np.linalg.norm(p - q))
    assert np.max(errs) < 0.5, errs
    # the backward maps send every target point to its source point
    mx, my = warp.pwa_maps(src_all, dst_all, tris, (h, w))
    bil = lambda m, q: cv2.remap(m, np.float32([[q[0]]]), np.float32([[q[1]]]), cv2.INTER_LINEAR)[0, 0]
    for p, q in zip(src, dst):
        assert abs(bil(mx, q) - p[0]) < 0.3 and abs(bil(my, q) - p[1]) < 0.3   # sub-pixel (edge labels)
    assert np.median(moved) > 3.0      # the points really moved (an identity warp would fail)
    # fixed border: the image edge is unchanged
    assert np.abs(out[0].astype(int) - img8[0]).max() <= 1


def test_canonical_alignment_roundtrip_and_crop():
    d = load_clip(heldout_names()[0])
    lm = d["landmarks"].astype(np.float64)
    tmpl = warp.stable_template(lm, d["present"])
    assert abs(geo.inter_ocular(tmpl) - 1.0) < 0.02
    sim = warp.align_to(lm[5], tmpl)
    c = sim.fwd(lm[5])
    assert np.abs(sim.inv(c) - lm[5]).max() < 1e-6
    assert np.abs(c[geo.STABLE] - tmpl[geo.STABLE]).mean() < 0.05
    crop = warp.CanonicalCrop(ppi=40)
    px = crop.to_px(c)
    w, h = crop.size
    # the whole mouth and chin lie inside the crop
    for i in list(range(48, 68)) + [8]:
        assert 0 <= px[i, 0] < w and 0 <= px[i, 1] < h


# ------------------------------------------------------------------------------------------------ shapes

def test_silence_weights_ramp():
    v = np.array([0] * 10 + [1] * 10 + [0] * 10, bool)
    w = silence_weights(v, ramp=3)
    assert np.all(w[10:20] == 1) and np.all(w[:6] == 0) and np.all(w[24:] == 0)
    assert 0 < w[8] < w[9] < 1 and 0 < w[21] < 1 and w[20] > w[21] > w[22]
    assert np.all(silence_weights(np.zeros(5, bool)) == 0)


def test_predicted_targets_close_the_mouth_in_silence(monkeypatch):
    import core.mouth_shape as ms

    d = load_clip(heldout_names()[0])
    n = len(d["present"])
    k = len(ms.SHAPE_POINTS)

    class WideOpen:
        def predict(self, wav, fps, num_frames, head=None):
            disp = np.zeros((num_frames, k, 2), np.float32)
            rows = [list(ms.SHAPE_POINTS).index(p) for p in (65, 66, 67, 56, 57, 58, 8)]
            disp[:, rows, 1] = 0.25     # lower lip and chin drop by 0.25 IOD
            return disp

    monkeypatch.setattr(ms.AudioToMouth, "load", classmethod(lambda cls, path=None, verify=True: WideOpen()))
    vad = np.zeros(n, bool)
    vad[20:50] = True
    ctx = _ctx(heldout_names()[0], d, vad=vad)
    tg = predicted_targets(ctx)
    op = geo.mouth_opening(tg) / geo.inter_ocular(tg)
    assert tg.shape == (n, 68, 2)
    lead = round(ANTICIPATION_S * 25)               # frames before the onset that take the predicted shape
    assert lead >= 3
    assert np.all(op[25:45] > 0.2)                 # voiced: open wide whatever the original did
    assert np.all(op[20 - lead:20] > 0.2)          # ... and just before the sound starts (anticipation)
    assert np.all(op[:20 - lead - 4] < 0.06) and np.all(op[56:] < 0.06)   # silent: closed (neutral)
    assert np.all(np.abs(np.diff(op)) < 0.1)        # smooth transitions
    # points outside the shape set stay where the tracker put them
    assert np.allclose(tg[:, 36:48], d["landmarks"][:, 36:48], atol=1e-3)
    # a range the editor closed stays closed, up to the onset and in the ramps
    closed = np.zeros(n, bool)
    closed[10:20] = closed[50:56] = True
    ctx.force_closed = closed
    op = geo.mouth_opening(predicted_targets(ctx)) / geo.inter_ocular(tg)
    assert np.all(op[10:20] < 0.06) and np.all(op[50:56] < 0.06) and np.all(op[25:45] > 0.2)


def test_silence_weights_lead_keeps_the_shape_before_each_onset_only():
    v = np.array([0] * 10 + [1] * 5 + [0] * 10, bool)
    w = silence_weights(v, ramp=2, lead=4)
    assert np.all(w[6:15] == 1)                    # 4 frames of lead, then the voice
    assert 0 < w[4] < w[5] < 1 and np.all(w[:4] == 0)
    assert w[15] < 1 and np.all(w[18:] == 0)         # after the voice: the ramp only
    np.testing.assert_array_equal(silence_weights(v, ramp=2), silence_weights(v, ramp=2, lead=0))


def test_mask_landmarks_cover_a_lower_original_chin():
    d = load_clip(heldout_names()[0])
    lm = d["landmarks"][45].astype(np.float64)      # an open mouth
    target = lm.copy()
    target[3:14, 1] -= 8.0                          # chin raised (mouth closes)
    ml = mask_landmarks_for(target, lm)
    assert np.allclose(ml[5:12], lm[5:12]) and np.allclose(ml[48:68], target[48:68])
    at = lambda m, roi, p: m[int(round(p[1])) - roi[1], int(round(p[0])) - roi[0]]
    iod = float(geo.inter_ocular(lm))
    inside_chin = lm[8] + (lm[57] - lm[8]) * (0.05 * iod / np.linalg.norm(lm[57] - lm[8]))
    m, roi = lower_face_mask((288, 360), ml, MaskSettings())
    assert at(m, roi, lm[8]) > 0.85 and at(m, roi, inside_chin) > 0.97
    # with the target alone the old chin would show through
    m, roi = lower_face_mask((288, 360), target, MaskSettings())
    assert at(m, roi, lm[8]) < 0.2


# ------------------------------------------------------------------------------------------------ oracle dub

def _video(name):
    p = GRID_S1 / "video" / f"{name}.mp4"
    return p if p.exists() else GRID_S1.parent / "grid_others" / f"{name}.mpg"


def _ctx(name, d, vad=None):
    n = len(d["present"])
    return DubContext(video_path=str(_video(name)), fps=float(d["fps"]), width=360,
                      height=288, num_output_frames=n, source_index=np.arange(n),
                      wav=np.zeros(int(16000 * n / 25), np.float32), mel=np.zeros((80, 10), np.float32),
                      voice_active=np.ones(n, bool) if vad is None else vad, boxes=d["boxes"],
                      landmarks=d["landmarks"], present=d["present"])


def _frames(name):
    return read_frames(_video(name))


def _openings(frames):
    from core.faces.detect import DlibBackend

    be = DlibBackend()
    op = []
    for f in frames:
        boxes = be.detect(f)
        if not boxes:
            op.append(np.nan)
            continue
        lm = be.landmarks(f, boxes[0])
        op.append(geo.mouth_opening(lm) / geo.inter_ocular(lm))
    return np.array(op)


@pytest.mark.parametrize("x_name", ["s1", "brbk7n"])
def test_oracle_cross_dub_follows_the_other_clips_mouth(x_name):
    """Dub clip X with held-out s1 clip Y's real mouth shapes; dlib on the output must see Y's openings.
    X is another held-out s1 sentence, or an unseen GRID speaker (a woman, MPEG-1 source)."""
    names = heldout_names()
    x, y = (names[0] if x_name == "s1" else x_name), names[1]
    dx, dy = load_clip(x), load_clip(y)
    n = len(dx["present"])
    targets = transfer_mouth_shapes(dx["landmarks"], dx["present"], dy["landmarks"], dy["present"])
    present = dx["present"].copy()
    present[[3, 40]] = False                       # two frames "without a face": must be left untouched
    dx_mod = dict(dx, present=present)
    ctx = _ctx(x, dx_mod)

    t0 = time.process_time()
    eng = ClassicEngine(ClassicOptions(target_landmarks=targets))
    eng.prepare(ctx)
    frames = _frames(x)
    out = []
    for s in range(0, n, 16):
        patches = eng.render(frames[s:s + 16], list(range(s, min(n, s + 16))))
        for f, p in zip(frames[s:s + 16], patches):
            out.append(f if p is None else composite(f, p, ctx.mask))
    cpu = time.process_time() - t0
    assert eng.render([frames[3], frames[40]], [3, 40]) == [None, None]
    assert out[3] is frames[3]
    assert eng.teeth_proxy is not None and eng.teeth_frame is not None

    op_out = _openings(out)
    op_y = geo.mouth_opening(dy["landmarks"]) / geo.inter_ocular(dy["landmarks"])
    op_x = geo.mouth_opening(dx["landmarks"]) / geo.inter_ocular(dx["landmarks"])
    ok = np.isfinite(op_out) & present            # frames left untouched on purpose show X's own mouth
    assert ok.sum() >= n - 4
    r_out = np.corrcoef(op_out[ok], op_y[ok])[0, 1]
    r_floor = np.corrcoef(op_x, op_y)[0, 1]
    r_orig = np.corrcoef(op_out[ok], op_x[ok])[0, 1]
    print(f"{x}<-{y}: r(out,Y)={r_out:.3f} floor r(X,Y)={r_floor:.3f} r(out,X)={r_orig:.3f}")
    assert r_out > 0.8, (r_out, r_floor)
    assert r_out > r_floor + 0.3 and r_out > r_orig + 0.2
    # the rendered openings have the right size too (Y's displacement on X's own neutral mouth)
    op_t = geo.mouth_opening(targets) / geo.inter_ocular(targets)
    assert np.median(np.abs(op_out[ok] - op_t[ok])) < 0.03
    # generous bound on CPU time (prepare + render + composite of 75 frames)
    assert cpu < 60, cpu


def test_prepare_honours_teeth_frame_and_cancel():
    from core.errors import CancelledError
    from core.progress import CancelToken

    name = heldout_names()[0]
    d = load_clip(name)
    ctx = _ctx(name, d)
    ctx.teeth_frame, ctx.teeth_strength = 12, 0.5
    stages = []
    identity = ClassicOptions(target_landmarks=d["landmarks"].copy())
    eng = ClassicEngine(identity)
    eng.prepare(ctx, progress=lambda st, a, b: stages.append(st))
    assert eng.teeth_frame == 12 and eng.teeth_proxy.frame_index == 12 and eng.teeth_strength == 0.5
    assert "library" in stages
    # identity targets: the dub of a frame stays close to the original frame
    f = _frames(name)[30]
    p = eng.render([f], [30])[0]
    out = composite(f, p, ctx.mask)
    assert np.abs(out.astype(float) - f).mean() < 2.0
    # warm() keeps the frame's retrieved texture (JPEG): the same patch up to the JPEG rounding of the mouth
    warmed = []
    eng.warm([30, 31], progress=lambda st, a, b: warmed.append((st, a, b)))
    assert warmed[-1] == ("textures", 2, 2) and set(eng._textures) == {30, 31}
    w = eng.render([f], [30])[0]
    assert w.box == p.box and np.array_equal(w.mask_landmarks, p.mask_landmarks)
    diff = np.abs(w.image.astype(int) - p.image.astype(int))
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 8, (diff.mean(), diff.max())
    eng._textures[30] = None                       # (a frame whose retrieval found nothing keeps the jaw only)
    assert not np.array_equal(eng.render([f], [30])[0].image, p.image)
    tok = CancelToken()
    tok.cancel()
    with pytest.raises(CancelledError):
        ClassicEngine(identity).prepare(_ctx(name, d), cancel=tok)



def test_prepare_early_then_prepare_renders_as_prepare_alone():
    """The pipeline builds the library while the adaptation runs (prepare_early), then adds the mouth head."""
    from dataclasses import replace

    from core.mouth_shape import AudioToMouth

    name = heldout_names()[1]
    d = load_clip(name)
    ctx = _ctx(name, d)
    ctx.wav = np.random.default_rng(0).normal(0, 0.1, len(ctx.wav)).astype(np.float32)
    head = AudioToMouth.load().head.scaled(1.5, np.zeros(1))
    alone = ClassicEngine()
    alone.prepare(replace(ctx, mouth_head=head))
    early = ClassicEngine()
    early.prepare_early(ctx)
    lib = early.lib
    early.prepare(replace(ctx, mouth_head=head))
    assert early.lib is lib                                    # the library was not built twice
    assert np.array_equal(early.targets, alone.targets)
    plain = ClassicEngine()
    plain.prepare(ctx)
    assert not np.array_equal(plain.targets, early.targets)     # the head was used
    f = _frames(name)[40]
    a, b = alone.render([f], [40])[0], early.render([f], [40])[0]
    assert a.box == b.box and np.array_equal(a.image, b.image)
    other = ClassicEngine()
    other.prepare_early(ctx)
    lib = other.lib
    other.prepare(replace(ctx, teeth_frame=12))                 # another context: prepared from scratch
    assert other.lib is not lib and other.teeth_frame == 12


def test_targets_computed_while_the_library_builds_are_the_targets(monkeypatch):
    """The pipeline computes the mouth targets (prepare_adapted) while prepare_early's library is still being built:
    prepare then uses them, for the very same context only."""
    from dataclasses import replace

    from core.engines.classic import engine as classic
    from core.mouth_shape import AudioToMouth

    name = heldout_names()[1]
    d = load_clip(name)
    ctx = _ctx(name, d)
    ctx.wav = np.random.default_rng(1).normal(0, 0.1, len(ctx.wav)).astype(np.float32)
    adapted = replace(ctx, mouth_head=AudioToMouth.load().head.scaled(1.5, np.zeros(1)))
    alone = ClassicEngine()
    alone.prepare(adapted)
    calls = []
    real = classic.predicted_targets
    monkeypatch.setattr(classic, "predicted_targets", lambda *a, **k: calls.append(1) or real(*a, **k))
    eng = ClassicEngine()
    eng.prepare_early(ctx)
    eng.prepare_adapted(adapted)
    eng.prepare(adapted)
    assert len(calls) == 1 and np.array_equal(eng.targets, alone.targets)
    f = _frames(name)[40]
    a, b = alone.render([f], [40])[0], eng.render([f], [40])[0]
    assert a.box == b.box and np.array_equal(a.image, b.image)
    eng.prepare_adapted(adapted)
    eng.prepare(replace(adapted, teeth_frame=12))            # another context: its own targets
    assert len(calls) == 3


def test_texture_is_computed_only_where_the_frame_shows_it():
    """The retrieved texture is warped only under the mouth alpha (plus the cubic warp's reach): the rendered
    patches are bit-identical to those made from the whole texture."""
    from core.engines.classic import engine as classic

    name = heldout_names()[2]
    d = load_clip(name)
    y = load_clip(heldout_names()[3])                # another sentence's mouth, so the textures move
    eng = ClassicEngine(ClassicOptions(target_landmarks=transfer_mouth_shapes(d["landmarks"], d["present"],
                                                                             y["landmarks"], y["present"])))
    eng.prepare(_ctx(name, d))
    frames = _frames(name)
    w, h = eng.crop.size
    smaller = 0
    for o in (5, 30, 55):
        region = classic.support(eng.mouth_alpha(o), classic.TEXTURE_MARGIN)
        assert region is not None
        x0, y0, x1, y1 = region
        smaller += (x1 - x0) * (y1 - y0) < 0.9 * w * h     # (82-86% of the crop on this clip)
        whole, part = eng.texture(o), eng.texture(o, region)
        assert part.shape == whole.shape and np.array_equal(part[y0:y1, x0:x1], whole[y0:y1, x0:x1])
        fast = eng.render([frames[o]], [o])[0]
        eng._textures[o] = cv2.imencode(".png", whole)[1]          # the whole texture (lossless)
        slow = eng.render([frames[o]], [o])[0]
        del eng._textures[o]
        assert fast.box == slow.box and np.array_equal(fast.image, slow.image)
    assert smaller == 3


def test_pwa_maps_equal_the_per_pixel_affine_exactly():
    """The maps are each pixel's triangle's affine applied to its coordinates, bit for bit as the row-wise
    formula gives them (the export's pictures must not move), for a window of the output too."""
    rng = np.random.default_rng(5)
    h, w = 60, 80
    dst = np.concatenate([rng.uniform([5, 5], [w - 5, h - 5], (12, 2)), warp.boundary_points(-1, -1, w, h, 3)])
    src = dst + rng.normal(0, 2, dst.shape)
    tris = warp.triangulate(dst)
    mx, my = warp.pwa_maps(src, dst, tris, (h, w))
    aff = np.empty((len(tris) + 1, 6), np.float32)
    aff[0] = (1, 0, 0, 0, 1, 0)
    aff[1:] = warp._affines(src, dst, tris).reshape(-1, 6)
    c = aff[warp.label_triangles(dst, tris, (h, w)).ravel()]
    xs = np.tile(np.arange(w, dtype=np.float32), h)
    ys = np.repeat(np.arange(h, dtype=np.float32), w)
    assert np.array_equal(mx.ravel(), c[:, 0] * xs + c[:, 1] * ys + c[:, 2])
    assert np.array_equal(my.ravel(), c[:, 3] * xs + c[:, 4] * ys + c[:, 5])
    labels = warp.label_triangles(dst, tris, (h, w))[25:45, 40:70]
    wx, wy = warp.pwa_maps(src, dst, tris, (20, 30), labels=labels, origin=(40, 25))
    assert np.array_equal(wx, mx[25:45, 40:70]) and np.array_equal(wy, my[25:45, 40:70])


@pytest.mark.parametrize("handed", [0, 17, None])
def test_library_from_the_scoring_pass_frames_is_the_same(handed):
    """The pipeline hands the library the frames the adaptation's scoring pass decodes (core.streams.FrameShare):
    the same library and teeth source whether the pass gives none, a part (then the library decodes the rest
    itself) or all of them; a pass that goes on past the library's end is released."""
    import threading

    from core.media import iter_frames
    from core.streams import FrameShare

    name = heldout_names()[0]
    d = load_clip(name)
    ctx = _ctx(name, d)
    own = ClassicEngine()
    own.prepare_early(ctx)
    share = FrameShare(depth=3)

    def scoring_pass():
        for i, frame in enumerate(iter_frames(ctx.video_path, backend="auto")):
            if handed is not None and i >= handed:
                break
            share.add(i, frame)
        share.done()

    th = threading.Thread(target=scoring_pass)
    th.start()
    shared = ClassicEngine()
    shared.prepare_early(ctx, frames=share)
    th.join(timeout=30)
    assert not th.is_alive()
    assert share.shared == (len(ctx.present) if handed is None else handed)
    for field in ("frames", "images", "canon", "thumbs"):
        assert np.array_equal(getattr(shared.lib, field), getattr(own.lib, field)), field
    assert shared._teeth_source[0] == own._teeth_source[0]
    assert np.array_equal(shared._teeth_source[1], own._teeth_source[1])


def test_a_packed_library_gives_back_the_same_crops_in_a_third_of_the_memory():
    crop = warp.CanonicalCrop(ppi=40)
    w, h = crop.size
    frames = read_frames(GRID_S1 / "video" / f"{heldout_names()[0]}.mp4")[:12]     # real pixels
    canon = np.zeros((68, 2), np.float32)
    libs = [retrieval.TextureLibrary(crop, capacity=len(frames), packed=p) for p in (False, True)]
    for lib in libs:
        for t, frame in enumerate(frames):
            lib.add(t, np.ascontiguousarray(frame[200:200 + h, 150:150 + w]), canon)
        lib.finish()
    plain, packed = libs
    assert packed.images is None
    for r in range(len(frames)):
        assert np.array_equal(packed.image(r), plain.image(r))
    assert np.array_equal(packed.thumbs, plain.thumbs)
    assert sum(p.nbytes for p in packed._pngs) < 0.6 * plain.images.nbytes
