"""The window's Qt-free session model: its events, derived state and typed correction commands; and the
live-playback frame buffer (render ahead, skip late frames), all without a window."""
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from data_paths import ROOT

from app.live_playback import FrameAhead
from app.session import Session
from app.session import commands as cmd
from core.errors import LipDubError


def test_session_imports_no_qt():
    code = ("import sys, app.session, app.session.commands; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')); "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def _tracks(n=20, missing=()):
    present = np.ones(n, bool)
    present[list(missing)] = False
    t = SimpleNamespace(track_id=3, present=present, boxes=np.zeros((n, 4)), landmarks=np.zeros((n, 68, 2)))
    return SimpleNamespace(tracks=[t], num_frames=n, primary=lambda: t,
                           get=lambda i: t if i == 3 else (_ for _ in ()).throw(KeyError(i)))


def test_events_say_what_changed(tmp_path):
    s = Session()
    seen = []
    for name in Session.EVENTS:
        getattr(s.events, name).connect(lambda e: seen.append((e.type, dict(e.info))))
    s.set_video(str(tmp_path / "v.mp4"), SimpleNamespace(fps=25.0, num_frames=20))
    assert ("media", {}) in seen and s.dirty and s.num_frames == 20
    seen.clear()
    s.add_voice(str(tmp_path / "a.wav"))
    assert [t for t, _ in seen] == ["voices"] and s.has_voice
    s.set_tracks(_tracks(missing=(5, 6)))
    assert seen[-1] == ("tracks", {"auto": True})
    assert s.chosen_track().track_id == 3
    assert np.flatnonzero(s.missing_face()).tolist() == [5, 6]
    assert s.report_key() == (str(tmp_path / "a.wav"), 3, 0)
    s.set_range((2, 9))
    assert seen[-1] == ("range", {"range": (2, 9)})
    n = len(seen)
    s.set_range((2, 9))                                    # no change, no event
    assert len(seen) == n
    s.set_playhead(4)
    assert seen[-1] == ("playhead", {"frame": 4}) and s.project.playhead == 4
    s.settings_changed("track")                            # the chosen face: a tracks event
    assert seen[-1] == ("tracks", {"auto": False})
    s.mark_saved()
    assert seen[-1] == ("dirty", {"dirty": False}) and not s.dirty


def test_typed_corrections_on_the_history():
    s = Session()
    s.set_video("v.mp4", SimpleNamespace(fps=25.0, num_frames=20))
    s.set_tracks(_tracks())
    got = []
    s.events.edits.connect(lambda e: got.append((e.label, e.old, e.new)))
    with pytest.raises(LipDubError, match="in/out range"):
        s.apply(cmd.AddOverride("keep_original"))         # needs a range
    assert got == [] and s.project.edits.overrides == []
    s.set_range((5, 10))
    s.set_playhead(7)
    s.apply(cmd.AddOverride("keep_original"))
    s.apply(cmd.TeethFromPlayhead())
    s.apply(cmd.SetVoiceOffset(3))
    s.apply(cmd.KeyMask())
    e = s.project.edits
    assert [(o.start, o.end, o.kind) for o in e.overrides] == [(5, 10, "keep_original")]
    assert (e.teeth_shots[0].start, e.teeth_shots[0].end, e.teeth_shots[0].frame) == (5, 10, 7)
    assert e.voice_offset == 3 and [k.frame for k in e.mask_keyframes] == [7]
    assert [label for label, _, _ in got] == ["Keep original 5-9", "Teeth proxy: frame 7", "Voice offset +3 frames",
                                              "Mask keyframe at 7"]
    assert got[2][1]["voice_offset"] == 0 and got[2][2]["voice_offset"] == 3
    s.apply(cmd.RemoveEdit("teeth", 0))
    s.apply(cmd.RemoveEdit("voice_offset", 0))
    assert s.project.edits.teeth_shots == [] and s.project.edits.voice_offset == 0
    s.project.history.undo()
    assert s.project.edits.voice_offset == 3 and got[-1][0] == "Voice offset +0 frames"


class _FakeDub:
    """Renders frame i in `cost` seconds (as a DubSession would), recording what was rendered."""

    def __init__(self, n, cost):
        self.num_frames, self.cost, self.rendered = n, cost, []
        self.lock = threading.Lock()

    def render_frame(self, i):
        time.sleep(self.cost)
        with self.lock:
            self.rendered.append(i)
        return np.full(1, i), np.full(1, -i)


def _wait(cond, timeout=5.0):
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout
        time.sleep(0.002)


def test_frame_ahead_renders_ahead_and_skips_late_frames():
    dub = _FakeDub(200, 0.005)
    ahead = FrameAhead(dub, 10, 200, threads=2, fps=25.0)
    ahead.start()
    try:
        _wait(lambda: ahead.ready(10) and ahead.ready(17))
        time.sleep(0.05)
        assert max(dub.rendered) <= 10 + 8 + ahead.lead       # never more than AHEAD frames ahead of the clock
        orig, dubbed = ahead.take(10)
        assert orig[0] == 10 and dubbed[0] == -10
        assert ahead.take(12) is not None and ahead.ready(13) and not ahead.ready(11)   # older ones discarded
        ahead.take(100)                                       # the clock jumped: frames in between are not rendered
        _wait(lambda: ahead.ready(101 + ahead.lead))
        assert not any(20 + ahead.lead < i < 100 for i in dub.rendered)
        dub.cost = 0.2                                        # slow renders: claims move ahead of the clock
        _wait(lambda: ahead.lead >= 4, timeout=10)
        ahead.take(120)
        n = len(dub.rendered)
        _wait(lambda: len(dub.rendered) >= n + 4, timeout=10)
        assert min(dub.rendered[n + 2:]) >= 120 + 4           # (two renders were in flight at the jump)
    finally:
        ahead.stop()
    assert not ahead.running


def test_frame_ahead_reports_a_render_error():
    class Broken(_FakeDub):
        def render_frame(self, i):
            raise LipDubError("no face")

    ahead = FrameAhead(Broken(10, 0), 0, 10, threads=1)
    ahead.start()
    _wait(lambda: ahead.error is not None)
    ahead.stop()
    assert ahead.error == "no face"


def test_a_performer_video_is_a_voice_track_that_drives_the_dub(tmp_path):
    s = Session()
    s.set_video(str(tmp_path / "v.mp4"), SimpleNamespace(fps=25.0, num_frames=20))
    s.add_voice(str(tmp_path / "a.wav"))
    s.add_voice(str(tmp_path / "booth.mp4"), performer=True)
    v = s.project.voice
    assert v.performer and v.display_name() == "booth.mp4 (performer video)"
    assert s.project.to_dub_settings(output=str(tmp_path / "o.mp4")).driver == v.path
    s.set_active_voice(0)
    assert s.project.to_dub_settings(output=str(tmp_path / "o.mp4")).driver is None
