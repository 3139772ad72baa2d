"""track_video on a real file: the per-clip cache (hit on rerun, key changes, env override, damage, atomic)."""
import os
import shutil

import numpy as np
import pytest

from data_paths import GRID_S1, heldout_names
from core.errors import MediaError
from core.faces import cache
from core.faces.detect import default_backend
from core.faces.track import FaceTrack, TrackSet, track_video


class Counting:
    """The default backend, counting detector and landmark calls."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.name = inner.name

    def settings_key(self):
        return self.inner.settings_key()

    def prepare(self, f):
        return self.inner.prepare(f)

    def detect(self, f):
        self.calls += 1
        return self.inner.detect(f)

    def landmarks(self, f, b):
        self.calls += 1
        return self.inner.landmarks(f, b)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    src = GRID_S1 / "video" / (heldout_names()[1] + ".mp4")
    dst = tmp_path_factory.mktemp("clip") / "talk.mp4"
    shutil.copy(src, dst)
    return dst


def test_rerun_loads_from_cache_without_detecting(clip, tmp_path):
    be = Counting(default_backend())
    first = track_video(clip, backend=be, cache_dir=tmp_path)
    assert first.stats["cache"] == "miss" and be.calls > 75
    files = list(tmp_path.iterdir())
    assert [f.suffix for f in files] == [".npz"]                        # no temp file left behind
    be.calls = 0
    progress = []
    second = track_video(clip, backend=be, cache_dir=tmp_path, progress=lambda *a: progress.append(a))
    assert second.stats["cache"] == "hit" and be.calls == 0
    assert progress[-1] == ("track", 75, 75)
    assert second.ids == first.ids and second.num_frames == first.num_frames == 75
    a, b = first.primary(), second.primary()
    assert np.array_equal(a.present, b.present)
    assert np.allclose(a.landmarks, b.landmarks, equal_nan=True) and np.allclose(a.boxes, b.boxes, equal_nan=True)
    # other tracker settings -> another entry
    be.calls = 0
    third = track_video(clip, backend=be, cache_dir=tmp_path, detect_every=3)
    assert third.stats["cache"] == "miss" and be.calls > 0 and len(list(tmp_path.iterdir())) == 2
    assert third.stats["detections"] == 25


def test_key_follows_the_clip_content_and_settings(clip, tmp_path):
    s = {"detect_every": 5}
    k1 = cache.cache_key(clip, s)
    assert cache.cache_key(clip, {"detect_every": 4}) != k1
    copy = tmp_path / "copy.mp4"
    shutil.copy(clip, copy)
    assert cache.cache_key(copy, s) != k1                               # another path is another clip
    k2 = cache.cache_key(copy, s)
    with open(copy, "r+b") as f:                                        # same size, last MB changed
        f.seek(-10, os.SEEK_END)
        f.write(b"0123456789")
    st = os.stat(copy)
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.cache_key(copy, s) != k2


def test_env_override_and_damaged_entry(clip, tmp_path, monkeypatch):
    monkeypatch.setenv("LIPDUB_CACHE_DIR", str(tmp_path))
    assert cache.default_cache_dir() == tmp_path / "tracks"
    assert cache.default_cache_dir(tmp_path / "x") == tmp_path / "x"
    ts = TrackSet(3, 10, 10, 25.0, [FaceTrack(0, np.zeros((3, 4), np.float32), np.zeros((3, 68, 2), np.float32),
                                              np.ones(3, bool))])
    f = cache.store(ts, clip, {"k": 1})
    assert f.parent == tmp_path / "tracks" and cache.load(clip, {"k": 1}, TrackSet.load).ids == [0]
    f.write_bytes(b"not a zip")
    assert cache.load(clip, {"k": 1}, TrackSet.load) is None and not f.exists()         # a damaged entry is a miss


def test_trackset_roundtrip_keeps_nan_ids_and_metadata(tmp_path):
    n = 6
    boxes = np.full((n, 4), np.nan, np.float32)
    boxes[2:4] = [[1, 2, 30, 40], [2, 3, 31, 41]]
    lms = np.full((n, 68, 2), np.nan, np.float32)
    lms[2:4] = np.random.default_rng(0).random((2, 68, 2))
    present = ~np.isnan(boxes[:, 0])
    ts = TrackSet(n, 640, 360, 29.97, [FaceTrack(7, boxes, lms, present, lms.copy())], np.array([3]),
                  present.copy(), {"detect_every": 5}, {"fps": 1.0})
    p = ts.save(tmp_path / "t.npz")
    back = TrackSet.load(p)
    assert back.ids == [7] and back.fps == pytest.approx(29.97) and (back.width, back.height) == (640, 360)
    t = back.get(7)
    assert np.array_equal(t.present, present) and np.allclose(t.boxes, boxes, equal_nan=True)
    assert np.allclose(t.raw_landmarks, lms, equal_nan=True)
    assert list(back.cuts) == [3] and back.settings == {"detect_every": 5}


def test_missing_video_is_a_media_error(tmp_path):
    with pytest.raises(MediaError, match="nope.mp4"):
        track_video(tmp_path / "nope.mp4", cache_dir=tmp_path)


def test_cancel_leaves_no_cache_entry(clip, tmp_path):
    from core.errors import CancelledError
    from core.progress import CancelToken

    token = CancelToken()

    def prog(stage, done, total):
        assert stage == "track" and total == 75
        if done == 10:
            token.cancel()

    with pytest.raises(CancelledError):
        track_video(clip, cache_dir=tmp_path, progress=prog, cancel=token)
    assert list(tmp_path.iterdir()) == []
