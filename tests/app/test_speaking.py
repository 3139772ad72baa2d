"""Who speaks in the window: the session's default face follows the speaking face shot by shot (as the pipeline),
a face the user chooses overrides it, and the speaking lane draws one curve per face and the speaker per shot."""
from types import SimpleNamespace

import numpy as np

from app.session import Session
from app.session.model import SpeakingResult
from app.speaking_lane import SpeakingLane
from core.faces.track import FaceTrack, TrackSet
from core.sync.asd.speaker import FaceChoice, ShotSpeaker, SpeakingScores


def _track_set(n=20):
    def track(tid, x):
        boxes = np.tile(np.array([x, 0, x + 10, 10], np.float32), (n, 1))
        return FaceTrack(tid, boxes, np.full((n, 68, 2), float(x), np.float32), np.ones(n, bool))

    return TrackSet(n, 100, 100, 25.0, [track(0, 0), track(1, 50)], cuts=np.array([10]))


def _result(video, ts, n=20):
    shots = [ShotSpeaker(0, 10, 0, by="asd"), ShotSpeaker(10, 20, 1, by="asd")]
    p0 = np.r_[np.full(10, 0.9), np.full(10, 0.1)].astype(np.float32)
    lane = SpeakingScores(25.0, n, {0: p0, 1: (1 - p0).astype(np.float32)})
    choice = FaceChoice(track=ts.get(0), shots=shots, scores=lane, fallback_id=0)
    return SpeakingResult(video, choice, lane, np.ones(n, bool))


def test_session_default_face_follows_the_speaker_until_a_face_is_chosen(tmp_path):
    s = Session()
    video = str(tmp_path / "v.mp4")
    s.set_video(video, SimpleNamespace(fps=25.0, num_frames=20))
    s.add_voice(str(tmp_path / "a.wav"))
    ts = _track_set()
    s.set_tracks(ts)
    assert s.chosen_track() is ts.get(0) and len(s.report_key()) == 3
    seen = []
    s.events.tracks.connect(lambda e: seen.append("tracks"))
    s.events.speaking.connect(lambda e: seen.append("speaking"))
    s.set_speaking(_result(video, ts))
    assert seen == ["speaking", "tracks"]                     # the face changed: scores follow
    t = s.chosen_track()
    assert t.boxes[5, 0] == 0 and t.boxes[15, 0] == 50        # face 0 in the first shot, face 1 in the second
    assert len(s.report_key()) == 4 and s.speaking.speaker_at(15) == 1
    s.choose_track(0)                                         # the user's choice wins
    assert s.chosen_track() is ts.get(0) and len(s.report_key()) == 3
    s.set_tracks(_track_set())                                # new tracking: who speaks is stale
    assert s.speaking is None


def test_speaking_lane_draws_each_face_and_the_speaker_per_shot(qtbot, tmp_path):
    lane = SpeakingLane()
    qtbot.addWidget(lane)
    ts = _track_set()
    lane.set_result(_result(str(tmp_path / "v.mp4"), ts))
    assert sorted(lane.curves) == [0, 1] and len(lane.bands) == 2
    assert abs(lane.value_at(3)[0] - 0.9) < 1e-6 and abs(lane.value_at(3)[1] - 0.1) < 1e-6
    assert "speaks: face 0, face 1" in lane.label.textItem.toPlainText()
    lane.set_result(None, analysing=True)
    assert not lane.curves and "analysing" in lane.label.textItem.toPlainText()
