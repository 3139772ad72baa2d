"""core.in_flight: a clip's tracking and adaptation computed once when two jobs of the window ask for them at once."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from data_paths import GRID_S1, heldout_names

from core.errors import CancelledError
from core.in_flight import InFlight
from core.progress import CancelToken


def _both(fn, n: int = 2):
    """fn(k) in n threads started together: their results (an exception is returned as the result)."""
    out = [None] * n
    go = threading.Barrier(n)

    def run(k):
        go.wait()
        try:
            out[k] = fn(k)
        except BaseException as e:       # noqa: BLE001 - handed to the test
            out[k] = e

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def _maker(flight, store, computed, fail_first=False):
    """get(k): `flight.once` of key "x" over the dict `store`, thread k computing slowly (the first one failing)."""
    def compute(k):
        computed.append(k)
        time.sleep(0.3)
        if fail_first and len(computed) == 1:
            raise RuntimeError("the first computation failed")
        store["x"] = f"made by {k}"
        return store["x"]

    return lambda k: flight.once("x", lambda: store.get("x"), lambda: compute(k))


def test_the_first_caller_computes_and_the_second_waits_for_it():
    computed = []
    a, b = _both(_maker(InFlight(), {}, computed))
    assert len(computed) == 1 and a == b == f"made by {computed[0]}"


def test_a_waiting_caller_computes_when_the_first_fails_and_can_be_cancelled():
    flight, computed = InFlight(), []
    results = _both(_maker(flight, {}, computed, fail_first=True))
    assert len(computed) == 2 and computed[0] != computed[1]
    assert isinstance(results[computed[0]], RuntimeError) and results[computed[1]] == f"made by {computed[1]}"

    token, started = CancelToken(), threading.Event()

    def hold():
        with flight.turn("y") as mine:
            assert mine
            started.set()
            time.sleep(1.0)

    holder = threading.Thread(target=hold)
    holder.start()
    started.wait(5)
    threading.Timer(0.2, token.cancel).start()
    t0 = time.perf_counter()
    with pytest.raises(CancelledError):
        with flight.turn("y", token):
            pass
    assert time.perf_counter() - t0 < 0.6          # not until the holder is done
    holder.join()


def test_two_jobs_tracking_one_clip_at_once_track_it_once(tmp_path, monkeypatch):
    from core.faces import track as track_mod

    calls = []
    real = track_mod.track_frames

    def counted(*args, **kwargs):
        calls.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(track_mod, "track_frames", counted)
    video = str(GRID_S1 / "video" / (heldout_names()[3] + ".mp4"))
    a, b = _both(lambda k: track_mod.track_video(video, cache_dir=tmp_path))
    assert len(calls) == 1
    assert {a.stats["cache"], b.stats["cache"]} == {"miss", "hit"}
    np.testing.assert_array_equal(a.primary().landmarks, b.primary().landmarks)


def test_two_jobs_adapting_to_one_clip_at_once_adapt_once(tmp_path, monkeypatch):
    from core import adapt
    from core.faces.track import track_video
    from core.sync.scoring import get_scorer

    calls = []

    def slow(video, info, track, model, scorer, progress, cancel, frames, t0):
        calls.append(threading.current_thread().name)
        time.sleep(0.3)
        return adapt.not_adapted("made once", own_offset=2)

    monkeypatch.setattr(adapt, "_adapt", slow)
    from core import media

    video = str(GRID_S1 / "video" / (heldout_names()[3] + ".mp4"))
    track, info, scorer = track_video(video).primary(), media.probe(video), get_scorer("auto")

    class Share:            # the texture library's core.streams.FrameShare: told when no pass will hand it frames
        told = False

        def done(self):
            self.told = True

    shares = [Share(), Share()]
    a, b = _both(lambda k: adapt.adapt_clip(video, info, track, scorer=scorer, cache_dir=tmp_path, frames=shares[k]))
    assert len(calls) == 1
    assert a.message == b.message == "made once" and a.own_offset == b.own_offset == 2
    assert sorted(s.told for s in shares) == [False, True]      # the waiting one's reader decodes meanwhile
