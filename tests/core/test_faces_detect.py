"""dlib backend on real GRID frames: downscaled detection scales back, landmarks at full resolution,
re-identification descriptor separates people."""
import cv2
import numpy as np
import pytest

from data_paths import GRID_OTHERS, GRID_S1, heldout_names
from core.errors import ModelMissingError
from core.faces import geometry as G
from core.faces.detect import DlibBackend, default_backend, downscale_factor


def frame_of(path, index=30):
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, f = cap.read()
    cap.release()
    assert ok
    return f


@pytest.fixture(scope="module")
def be():
    return default_backend()


@pytest.fixture(scope="module")
def grid_frame():
    return frame_of(GRID_S1 / "video" / (heldout_names()[0] + ".mp4"))


def test_one_face_with_plausible_landmarks(be, grid_frame):
    boxes = be.detect(grid_frame)
    assert len(boxes) == 1 and boxes[0].dtype == np.float32 and boxes[0].shape == (4,)
    x0, y0, x1, y1 = boxes[0]
    assert 80 < x1 - x0 < 200 and 0 <= x0 and x1 <= 360
    lm = be.landmarks(grid_frame, boxes[0])
    assert lm.shape == (68, 2) and lm.dtype == np.float32
    r_eye, l_eye = G.eye_centres(lm)
    assert r_eye[0] < l_eye[0]                                           # image-left eye is the right eye
    assert lm[G.MOUTH, 1].mean() > lm[G.NOSE, 1].mean() > lm[G.RIGHT_EYE, 1].mean()
    assert 40 < G.inter_ocular(lm) < 90


def test_large_frames_are_detected_downscaled_and_fitted_at_full_resolution(be, grid_frame):
    big = cv2.resize(grid_frame, (1280, 720), interpolation=cv2.INTER_CUBIC)   # not uniform: 3.56 x 2.5
    pf = be.prepare(big)
    assert max(pf.small.shape) == 640 and pf.gray.shape == (720, 1280)
    small_box = be.detect(grid_frame)[0]
    big_box = be.detect(pf)[0]
    assert big_box[2] > 700                                              # full-frame coordinates
    lm_small = be.landmarks(grid_frame, small_box)
    lm_big = be.landmarks(pf, big_box)
    sx, sy = 1280 / 360, 720 / 288
    # the stretched face's nose and eyes land where the small frame's do, scaled
    err = np.abs(lm_big[G.STABLE] / [sx, sy] - lm_small[G.STABLE]).mean()
    assert err < 1.5, err
    assert downscale_factor(720, 1280, 640) == 0.5 and downscale_factor(288, 360, 640) == 1.0


def test_no_face_in_black_or_noise(be):
    assert be.detect(np.zeros((288, 360, 3), np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 255, (288, 360, 3), np.uint8)
    assert be.detect(noise) == []


def test_descriptor_separates_people(be, grid_frame):
    def desc(f):
        b = be.detect(f)[0]
        return be.descriptor(f, b, be.landmarks(f, b))

    same_a = desc(grid_frame)
    same_b = desc(frame_of(GRID_S1 / "video" / (heldout_names()[2] + ".mp4"), 50))
    other = desc(frame_of(GRID_OTHERS / "lbax4n.mpg", 40))
    assert same_a.shape == (128,)
    assert np.linalg.norm(same_a - same_b) < 0.45
    assert np.linalg.norm(same_a - other) > 0.6


def test_missing_predictor_is_a_model_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPDUB_DLIB_PREDICTOR", str(tmp_path / "none.dat"))
    with pytest.raises(ModelMissingError, match="none.dat"):
        DlibBackend()


def test_two_threads_detecting_at_once_get_what_each_would_alone(be):
    """The window runs jobs side by side (the analysis' tracking, a preview's or an export's), all on the shared
    backend. dlib's detector leaves the GIL and keeps its working buffers in the object: two threads detecting at once
    used to get boxes of each other's frames (measured: 68 of 600 detections wrong)."""
    import threading

    frames = []
    for k in range(4):                      # faces of two sizes: s1 (360x288) and grid_others
        path = GRID_S1 / "video" / (heldout_names()[k] + ".mp4") if k < 2 else sorted(GRID_OTHERS.glob("*.mpg"))[k]
        frames += [frame_of(path, i) for i in range(0, 75, 8)]
    alone = [be.detect_scored(f) for f in frames]
    for _ in range(2):
        got = [[None] * len(frames) for _ in range(2)]

        def run(t):
            for i in (range(len(frames)) if t == 0 else reversed(range(len(frames)))):
                got[t][i] = be.detect_scored(frames[i])

        threads = [threading.Thread(target=run, args=(t,)) for t in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for t in range(2):
            for a, b in zip(alone, got[t]):
                assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_jobs_asking_for_the_shared_backend_at_once_load_it_once(monkeypatch):
    """Jobs side by side in the window each call `default_backend()` when they start tracking: they get one backend,
    loaded once (~0.9 s and ~75 MB each time otherwise)."""
    import threading
    import time

    from core.faces import detect

    loads = []

    class SlowBackend:
        def __init__(self):
            loads.append(self)
            time.sleep(0.2)             # as the models' load, long enough for the other thread to ask meanwhile

    monkeypatch.setattr(detect, "DlibBackend", SlowBackend)
    monkeypatch.setattr(detect, "_DEFAULT", None)
    got = []
    threads = [threading.Thread(target=lambda: got.append(detect.default_backend())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and all(g is loads[0] for g in got)
