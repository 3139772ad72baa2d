"""Widget- and worker-level behaviour (no media needed beyond synthetic arrays)."""
import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.timeline import TimelineWidget, runs, timecode
from app.waveform import PeakPyramid, WaveformLane
from app.workers import Job, JobRunner, LatestWorker
from core.errors import MediaError


def test_timecode():
    assert timecode(0, 25) == "00:00:00:00"
    assert timecode(24, 25) == "00:00:00:24"
    assert timecode(25, 25) == "00:00:01:00"
    assert timecode(25 * 3661 + 7, 25) == "01:01:01:07"
    # 29.97: frame 30 is still inside second 1 (30 frames = 1.001 s)
    assert timecode(29, 30000 / 1001) == "00:00:00:29"
    assert timecode(30, 30000 / 1001) == "00:00:01:00"


def test_runs():
    assert runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    assert runs(np.zeros(3, bool)) == []


def test_peak_pyramid_matches_brute_force():
    rng = np.random.default_rng(0)
    wav = (rng.standard_normal(1_000_003) * 0.1).astype(np.float32)
    wav[123_456] = 0.99      # a single-sample peak must survive downsampling
    wav[654_321] = -0.97
    pyr = PeakPyramid(wav)
    t, y = pyr.segment(0, len(wav), 800)
    assert len(t) <= 4 * 800            # ~2 points per pixel
    assert y.max() == pytest.approx(0.99) and y.min() == pytest.approx(-0.97)
    # a zoomed view: min/max per block equal the raw data's
    s0, s1 = 100_000, 300_000
    t, y = pyr.segment(s0, s1, 500)
    block = [b for b, _, _ in pyr.levels if b <= (s1 - s0) / 500][-1]
    b0 = s0 // block
    assert y[0] == wav[b0 * block:(b0 + 1) * block].min()
    assert y[1] == wav[b0 * block:(b0 + 1) * block].max()
    # finer than the pyramid's base block: reduced on the fly from the raw samples
    t, y = pyr.segment(10_000, 30_000, 800)             # 25 samples per pixel
    assert y[0] == wav[10_000:10_025].min() and y[1] == wav[10_000:10_025].max()
    assert len(t) <= 4 * 800
    # zoomed in far: raw samples
    t, y = pyr.segment(5000, 5100, 800)
    assert np.array_equal(y, wav[5000:5100])


def test_waveform_lane_draws_only_the_visible_part(qtbot):
    lane = WaveformLane("Voice")
    qtbot.addWidget(lane)
    lane.resize(800, 100)
    lane.show()
    fps = 25.0
    hour = np.zeros(16000 * 3600, np.float32)
    hour[::1000] = 0.5
    pyr = PeakPyramid(hour)
    lane.set_audio(pyr, fps)
    lane.set_view(0, 3600 * fps)
    x, y = lane.curve.getData()
    assert 0 < len(x) <= 4 * 800
    lane.set_view(1000, 1010)        # 10 frames = 6400 samples: raw
    x, y = lane.curve.getData()
    assert x.min() >= 999 and x.max() <= 1011


def make_timeline(qtbot, n=250, fps=25.0):
    tl = TimelineWidget()
    qtbot.addWidget(tl)
    tl.resize(1000 + TimelineWidget.GUTTER, 80)
    tl.show()
    tl.set_media(n, fps)
    return tl


def test_timeline_click_drag_zoom_pan_range(qtbot):
    tl = make_timeline(qtbot)
    y = 30
    with qtbot.waitSignal(tl.playheadChanged) as sig:
        qtbot.mouseClick(tl, Qt.LeftButton, pos=QPoint(int(tl.x_of(100.5)), y))
    assert sig.args == [100] and tl.playhead == 100
    # drag from 100 to 150
    qtbot.mousePress(tl, Qt.LeftButton, pos=QPoint(int(tl.x_of(100.5)), y))
    qtbot.mouseMove(tl, QPoint(int(tl.x_of(150.5)), y))
    qtbot.mouseRelease(tl, Qt.LeftButton, pos=QPoint(int(tl.x_of(150.5)), y))
    assert tl.playhead == 150
    # zoom in around the playhead keeps it in view
    tl.zoom(4.0)
    assert tl.v1 - tl.v0 == pytest.approx(250 / 4)
    assert tl.v0 <= 150 <= tl.v1
    w = tl.v1 - tl.v0
    tl.pan(1000)
    assert tl.v1 == pytest.approx(250) and tl.v1 - tl.v0 == pytest.approx(w)   # clamped at the end
    tl.pan(-1000)
    assert tl.v0 == 0
    # stepping past the view scrolls it
    tl.set_playhead(200)
    assert tl.v0 <= 200 < tl.v1
    # shift-drag sets the range
    tl.fit()
    with qtbot.waitSignal(tl.rangeChanged) as sig:
        qtbot.mousePress(tl, Qt.LeftButton, Qt.ShiftModifier, pos=QPoint(int(tl.x_of(20)), y))
        qtbot.mouseMove(tl, QPoint(int(tl.x_of(60)), y))
        qtbot.mouseRelease(tl, Qt.LeftButton, Qt.ShiftModifier, pos=QPoint(int(tl.x_of(60)), y))
    assert tl.range is not None and abs(tl.range[0] - 20) <= 1 and abs(tl.range[1] - 60) <= 1
    tl.set_playhead(300)
    assert tl.playhead == 249    # clamped


def test_timeline_wheel_zooms_at_cursor(qtbot):
    tl = make_timeline(qtbot)
    anchor = 50.0
    x_before = tl.x_of(anchor)
    tl.handle_wheel(0, 120, Qt.NoModifier, anchor)
    assert tl.v1 - tl.v0 < 250
    assert tl.x_of(anchor) == pytest.approx(x_before, abs=1.0)


def test_job_reports_errors_readably(qtbot):
    runner = JobRunner()

    def bad(progress, cancel):
        raise ValueError("boom")

    job = Job("x", bad)
    with qtbot.waitSignal(job.failed) as sig:
        runner.start(job)
    assert sig.args[0] == "Internal error: ValueError: boom"

    job = Job("y", lambda p, c: (_ for _ in ()).throw(MediaError("Cannot read clip.mp4: not a video.")))
    with qtbot.waitSignal(job.failed) as sig:
        runner.start(job)
    assert sig.args[0] == "Cannot read clip.mp4: not a video."

    started = threading.Event()

    def slow(progress, cancel):
        started.set()
        for i in range(200):
            progress("work", i, 200)
            cancel.raise_if_cancelled()
            time.sleep(0.01)
        return "finished"

    job = Job("z", slow)
    with qtbot.waitSignal(job.cancelled, timeout=5000):
        runner.start(job)
        assert started.wait(5)
        job.cancel()
    assert job.state == "cancelled" and job.result is None
    assert runner.shutdown(5000)


def test_latest_worker_drops_stale_requests(qtbot):
    served = []
    gate = threading.Event()

    def compute(key, payload):
        if key == 0:
            gate.wait(5)
        served.append(key)
        return key * 10

    w = LatestWorker(compute)
    w.start()
    try:
        results = []
        w.ready.connect(lambda k, r: results.append((k, r)))
        w.request(0)
        time.sleep(0.1)               # 0 is being computed (blocked)
        for k in range(1, 20):        # a burst while busy: only the last one must be served
            w.request(k)
        gate.set()
        qtbot.waitUntil(lambda: (19, 190) in results, timeout=5000)
        assert served == [0, 19]
    finally:
        w.stop()


def test_qt_binding_does_not_leak_references(qtbot):
    """PySide6 6.12.0 (abi3 wheel) on CPython 3.11 drops a reference to None on every void method call and to
    True on every signal emit, so the app dies with 'none_dealloc' after a few thousand paint calls. Guard the
    installed binding against that (6.11.3 is fine)."""
    import sys

    from PySide6.QtCore import QObject, Signal
    from PySide6.QtGui import QImage, QPainter

    class O(QObject):
        s = Signal(bool)

    img = QImage(16, 16, QImage.Format_RGB32)
    p = QPainter(img)
    o = O()
    o.s.connect(lambda on: None)
    n0, t0 = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(300):
        p.drawLine(0, 0, 5, 5)
        o.s.emit(True)
    p.end()
    assert sys.getrefcount(None) - n0 > -50
    assert sys.getrefcount(True) - t0 > -50


def test_scrub_cache_keeps_frames_near_the_playhead():
    from app.frame_cache import ScrubCache

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (64, 80, 3), dtype=np.uint8) for _ in range(3)]
    import cv2

    one = max(len(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]) for f in frames)
    cache = ScrubCache(max_bytes=int(one * 10.5), max_side=960)
    cache.reset("a.mp4")
    cache.centre = 100
    for i in range(0, 40):
        cache.put("a.mp4", i, frames[i % 3])
    assert cache.bytes <= cache.max_bytes
    kept = cache.frames()
    assert kept == list(range(40 - len(kept), 40)) and 9 <= len(kept) <= 12   # the ones nearest frame 100
    assert cache.get("a.mp4", 39).shape == (64, 80, 3)
    assert cache.get("b.mp4", 39) is None                                 # another video: nothing
    assert not cache.put("b.mp4", 1, frames[0])
    # large frames are stored reduced
    big = np.zeros((1080, 1920, 3), np.uint8)
    cache.reset("c.mp4")
    cache.put("c.mp4", 0, big)
    assert cache.get("c.mp4", 0).shape == (540, 960, 3)


def test_dubbed_score_splices_and_narrows_to_scored_frames():
    from app.dubbed_score import CONTEXT, REACH, DubbedScore, rescore_plan

    d = DubbedScore.empty("voice.wav", 100)
    assert d.scored_part((10, 20)) is None                        # nothing scored yet: nothing to keep up to date
    d.splice(np.arange(20, dtype=float), 10, report="r")          # an exported range: frames 10-29
    assert d.scored.sum() == 20 and d.report_range == (10, 30) and d.curve[10] == 0 and np.isnan(d.curve[9])
    assert d.scored_part((50, 60)) is None                        # far from anything scored
    assert d.scored_part((0, 100)) == (10 - REACH, 30 + REACH)    # only what moves the scored frames
    assert d.scored_part((32, 40)) == (32, 36)                    # within reach of frame 29
    render, keep = rescore_plan((32, 36), 100)
    assert keep == (32 - REACH, 36 + REACH) and render == (keep[0] - CONTEXT, keep[1] + CONTEXT)
    d.splice(np.full(render[1] - render[0], 7.0), render[0], keep)
    assert (d.curve[keep[0]:keep[1]] == 7).all() and d.curve[keep[0] - 1] == keep[0] - 1 - 10
    assert np.isnan(d.curve[keep[1]]) and d.report_range == (10, 30)   # no report given: the panel keeps its own
    assert rescore_plan((0, 5), 100) == ((0, 5 + REACH + CONTEXT), (0, 5 + REACH))


def test_qc_lane_flags_hover_and_runs(qtbot):
    import numpy as np

    from app.dubbed_score import DubbedQC
    from app.qc_lane import QCLane
    from core.qc.report import QCReport
    from core.qc.rules import KINDS

    lane = QCLane()
    qtbot.addWidget(lane)
    assert "not run yet" in lane.summary()
    n = 40
    f = {k: np.zeros(10, bool) for k in KINDS}
    f["seam"][2:4] = True
    f["blur"][3] = True
    rep = QCReport(num_frames=10, fps=25.0, flags=f, judged=np.ones(10, bool), summary={"flagged": {}})
    q = DubbedQC.empty("v.wav", n)
    q.splice(rep, offset=20)
    assert q.count() == 2 and q.checked[20:30].all() and not q.checked[:20].any()
    lane.set_flags(q.flags, q.checked)
    assert lane.flagged_runs() == [(22, 24)]
    assert lane.kinds_at(23) == ["blur", "seam"]
    assert "blurry" in lane.hover_text(23) and "seam" in lane.hover_text(23)
    assert lane.hover_text(25) == "Frame 25: no quality flag" and lane.hover_text(5) == "Frame 5: not checked"
    assert "2 of 10 checked frames flagged" in lane.summary()


def test_stop_player_returns_once_qt_multimedia_let_go_of_the_audio_output(qtbot, sample_voice):
    """After stop(), Qt Multimedia's FFmpeg thread disconnects its audio renderer from our (Python-made) audio output
    and needs the GIL to do so; stop_player returns only once it has, so the UI thread can never be holding the
    GIL while waiting for a lock that thread holds (the live-playback deadlock)."""
    from PySide6.QtCore import QUrl
    from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer

    from app.media_stop import output_listeners, stop_player

    player = QMediaPlayer()
    output = QAudioOutput()
    player.setAudioOutput(output)
    player.setSource(QUrl.fromLocalFile(sample_voice))
    player.play()
    qtbot.waitUntil(lambda: output_listeners(output) > 0, timeout=10_000)    # the renderer listens to the output
    for _ in range(3):
        stop_player(player, output)
        assert output_listeners(output) == 0
        player.play()
        qtbot.waitUntil(lambda: output_listeners(output) > 0, timeout=10_000)
    stop_player(player, output)
    assert output_listeners(output) == 0
    assert output_listeners(None) == 0
