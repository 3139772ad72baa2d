"""Tracker on real GRID clips (in memory) and edits of them: accuracy vs per-frame detection, smoothing,
two faces, scene cut, black frames, identity switch, no face, progress and cancel."""
import cv2
import numpy as np
import pytest

from data_paths import GRID_OTHERS, GRID_S1, heldout_names, read_frames
from core.errors import CancelledError, NoFaceError
from core.faces import geometry as G
from core.faces.detect import default_backend
from core.faces.track import TrackerSettings, track_frames
from core.progress import CancelToken

FPS = 25.0


@pytest.fixture(scope="module")
def be():
    return default_backend()


@pytest.fixture(scope="module")
def clip_a():
    return read_frames(GRID_S1 / "video" / (heldout_names()[0] + ".mp4"))


@pytest.fixture(scope="module")
def clip_other():
    return read_frames(GRID_OTHERS / "sbwe5n.mpg")


def full_detection(be, frames):
    """Reference: detection + landmarks on every frame (largest face)."""
    return np.array([be.landmarks(f, be.detect(f)[0]) for f in frames])


def jitter(lm):
    """Mean |second difference| of the rigid points (eyes, brows, nose): frame-to-frame shake."""
    return float(np.abs(np.diff(lm[:, G.STABLE], 2, axis=0)).mean())


def test_grid_clip_matches_per_frame_detection_and_is_smoother(be, clip_a):
    full = full_detection(be, clip_a)
    ts = track_frames(clip_a, len(clip_a), FPS, backend=be)
    assert ts.num_frames == len(clip_a) == 75 and (ts.width, ts.height) == (360, 288)
    assert len(ts.tracks) == 1
    t = ts.primary()
    assert t.present.all()
    assert ts.stats["detections"] <= len(clip_a) // 5 + 1          # keyframes only, no re-detection storm
    r = np.corrcoef(G.mouth_opening(full), G.mouth_opening(t.landmarks))[0, 1]
    assert r >= 0.98, r
    assert np.abs(t.landmarks - full).mean() < 1.0                  # pixels, on a ~60 px inter-ocular face
    assert jitter(t.landmarks) < 0.5 * jitter(full)                 # smoothing removes most of the shake
    assert jitter(t.raw_landmarks) > 0.8 * jitter(full)             # ... which the unsmoothed fit still has
    b = t.boxes
    assert np.isfinite(b).all() and (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()


def test_fast_motion_is_followed(be, clip_a):
    # the face slides +-80 px at 1 Hz (up to 20 px per frame) on a wider canvas
    moving = []
    for i, f in enumerate(clip_a[:40]):                                 # 1.6 periods
        m = np.float32([[1, 0, 60 + 80 * np.sin(2 * np.pi * i / FPS)], [0, 1, 0]])
        moving.append(cv2.warpAffine(f, m, (480, 288), borderMode=cv2.BORDER_REPLICATE))
    full = full_detection(be, moving)
    ts = track_frames(moving, len(moving), FPS, backend=be)
    assert len(ts.tracks) == 1 and ts.tracks[0].present.all()
    lm = ts.tracks[0].landmarks
    centre_err = np.abs(lm[:, G.STABLE].mean(1) - full[:, G.STABLE].mean(1)).max()
    assert centre_err < 3.0, centre_err                              # no visible lag behind the face
    assert np.corrcoef(G.mouth_opening(full), G.mouth_opening(lm))[0, 1] > 0.95


def side_by_side(left, right_small):
    out = []
    for a, b in zip(left, right_small):
        canvas = np.full((288, 360, 3), 0, np.uint8)
        canvas[:] = b[0, 0]
        h, w = b.shape[:2]
        canvas[288 - h:, (360 - w) // 2:(360 - w) // 2 + w] = b
        out.append(np.hstack([a, canvas]))
    return out


def test_two_faces_two_stable_tracks_and_the_main_one_is_primary(be, clip_a, clip_other):
    small = [cv2.resize(f, (300, 240), interpolation=cv2.INTER_AREA) for f in clip_other[:75]]
    frames = side_by_side(clip_a, small)
    ts = track_frames(frames, len(frames), FPS, backend=be)
    assert len(ts.tracks) == 2
    ids = ts.ids
    assert len(set(ids)) == 2
    for t in ts.tracks:
        assert t.num_present >= 0.95 * len(frames)
        cx = (t.boxes[t.present, 0] + t.boxes[t.present, 2]) / 2
        assert (cx < 360).all() or (cx > 360).all()                   # never jumps to the other face
    left = next(t for t in ts.tracks if np.nanmean(t.boxes[:, 0]) < 360)
    right = next(t for t in ts.tracks if t is not left)
    assert left.median_size() > right.median_size()
    assert ts.primary() is left                                        # the larger, always-present face
    assert ts.get(right.track_id) is right
    cx, cy = (right.boxes[40, 0] + right.boxes[40, 2]) / 2, (right.boxes[40, 1] + right.boxes[40, 3]) / 2
    assert ts.track_at(40, cx, cy) is right                            # click-to-choose in the GUI
    assert ts.track_at(40, 5, 5) is None
    with pytest.raises(NoFaceError, match="no face track 99"):
        ts.get(99)


def test_scene_cut_is_detected_and_the_new_face_tracked(be, clip_a, clip_other):
    frames = clip_a + clip_other[:50]
    ts = track_frames(frames, len(frames), FPS, backend=be)
    assert list(ts.cuts) == [75]
    assert ts.detected[75]                                              # detection ran at the cut itself
    before = [t for t in ts.tracks if t.present[:75].any()]
    after = [t for t in ts.tracks if t.present[75:].any()]
    assert len(before) == 1 and len(after) == 1
    assert before[0].track_id != after[0].track_id                     # a different person, a different id
    assert before[0].present[:75].all() and not before[0].present[75:].any()
    assert after[0].present[75:].all()
    # smoothing did not blend the two faces across the cut
    jump = np.abs(after[0].landmarks[75] - after[0].raw_landmarks[75]).max()
    assert jump < 3.0


def test_black_frames_mid_clip(be, clip_a):
    frames = clip_a[:30] + [np.zeros_like(clip_a[0])] * 10 + clip_a[40:]
    ts = track_frames(frames, len(frames), FPS, backend=be)
    assert len(ts.tracks) == 1                                          # the same person keeps the same id
    t = ts.tracks[0]
    assert not t.present[30:40].any()
    assert np.isnan(t.boxes[30:40]).all() and np.isnan(t.landmarks[30:40]).all()
    assert t.present[:30].all() and t.present[40:].all()               # tracked again right after
    assert {30, 40} <= set(ts.cuts.tolist())


def test_face_swap_without_a_visible_cut_gets_a_new_id(be, clip_a, clip_other):
    frames = clip_a[:40] + clip_other[:35]
    st = TrackerSettings(cut_hist=10.0, cut_diff=10.0)                  # cut detector off: only the fit check
    ts = track_frames(frames, len(frames), FPS, backend=be, settings=st)
    assert len(ts.cuts) == 0
    owners = [tuple(t.track_id for t in ts.tracks if t.present[i]) for i in (10, 39, 45, 70)]
    assert all(len(o) == 1 for o in owners)
    assert owners[0] == owners[1] and owners[2] == owners[3] and owners[1] != owners[2]


def test_no_face_anywhere_is_not_an_exception_until_asked(be):
    rng = np.random.default_rng(1)
    frames = [np.zeros((120, 160, 3), np.uint8)] * 5 + [rng.integers(0, 255, (120, 160, 3), np.uint8) for _ in range(5)]
    ts = track_frames(frames, 12, FPS, backend=be)
    assert ts.tracks == [] and ts.num_frames == 12                     # padded to the expected count
    with pytest.raises(NoFaceError):
        ts.require_face()
    with pytest.raises(NoFaceError):
        ts.primary()


def test_progress_and_cancel(be, clip_a):
    calls = []
    track_frames(clip_a[:12], 12, FPS, backend=be, progress=lambda *a: calls.append(a))
    assert calls[0] == ("track", 1, 12) and calls[-1] == ("track", 12, 12)
    assert [c[1] for c in calls] == list(range(1, 13))

    token = CancelToken()

    def prog(stage, done, total):
        if done == 5:
            token.cancel()

    with pytest.raises(CancelledError):
        track_frames(iter(clip_a), 75, FPS, backend=be, progress=prog, cancel=token)


class InjectFalseFace:
    """The real backend plus one spurious detection on the (static) background at frame 0."""

    def __init__(self, inner):
        self.inner, self.n = inner, 0
        self.name = "inject"

    def prepare(self, f):
        return self.inner.prepare(f)

    def detect(self, f):
        self.n += 1
        boxes = self.inner.detect(f)
        if self.n == 1:
            boxes = boxes + [np.array([250, 10, 350, 110], np.float32)]
        return boxes

    def landmarks(self, f, b):
        return self.inner.landmarks(f, b)


def test_a_one_off_false_detection_is_dropped(be, clip_a):
    ts = track_frames(clip_a[:40], 40, FPS, backend=InjectFalseFace(be))
    assert ts.stats["dropped"] == 1
    assert ts.ids == [0] and ts.tracks[0].present.all()
    assert ts.tracks[0].boxes[:, 2].max() < 250                         # the real face, not the fake one


def test_prefetch_keeps_order_passes_errors_and_closes_the_source():
    import threading

    from core.streams import prefetch

    assert list(prefetch(iter(range(20)), depth=2)) == list(range(20))

    def failing():
        yield 1
        yield 2
        raise ValueError("decoder broke")

    got = []
    with pytest.raises(ValueError, match="decoder broke"):
        for x in prefetch(failing()):
            got.append(x)
    assert got == [1, 2]

    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    stream = prefetch(endless(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()                                                      # e.g. the job was cancelled
    assert closed.wait(5.0)
    assert not any(t.name == "lipdub-frame-prefetch" and t.is_alive() for t in threading.enumerate())
