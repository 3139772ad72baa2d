"""core.sync.scoring + core.sync.scorers: syncnet_python's LSE on the reference fixtures, window->frame mapping, MFCC,
crops, streaming score_clip on a real GRID clip (filled syncnet_v2), cancel/progress, get_scorer."""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from core.errors import CancelledError, MediaError, ModelCorruptError, NoFaceError
from core.progress import CancelToken
from core.sync import scoring
from core.sync.scoring import (SyncReport, SyncScorer, fill_track, lse_from_features, resample_indices, score_clip,
                               window_to_frame_index)
from models_helper import REFERENCE, ref, save_flat, save_wav2lip_style, tensors

LSE = REFERENCE / "lse"


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: avoid oversubscription
    yield
    torch.set_num_threads(n)


# ------------------------------------------------------------------------------------------- LSE fixtures
@pytest.mark.parametrize("case", ["random", "shifted"])
def test_lse_reproduces_syncnet_python(case):
    expect = json.loads((LSE / "lse_results.json").read_text())[case]
    rep = lse_from_features(np.load(LSE / f"{case}_video_feat.npy"), np.load(LSE / f"{case}_audio_feat.npy"),
                            vshift=expect["vshift"])
    assert rep.offset_frames == expect["offset"] and rep.min_index == expect["minidx"]
    assert rep.lse_d == pytest.approx(expect["min_dist"], abs=1e-4)
    assert rep.lse_c == pytest.approx(expect["conf"], abs=1e-4)
    np.testing.assert_allclose(rep.dists, np.load(LSE / f"{case}_dists.npy"), atol=1e-4, rtol=0)
    np.testing.assert_allclose(rep.mean_dists, np.load(LSE / f"{case}_mdist.npy"), atol=1e-4, rtol=0)
    np.testing.assert_allclose(rep.window_conf_raw, np.load(LSE / f"{case}_fconf.npy"), atol=1e-4, rtol=0)
    np.testing.assert_allclose(rep.window_conf, np.load(LSE / f"{case}_fconfm.npy"), atol=1e-4, rtol=0)
    # 40 windows of 5 frames come from 44 frames; window i is shown at its centre frame i+2, edges held
    assert rep.per_frame.shape == (44,) and rep.per_frame_raw.shape == (44,)
    np.testing.assert_array_equal(rep.per_frame[2:42], rep.window_conf)
    assert rep.per_frame[0] == rep.per_frame[1] == rep.window_conf[0]
    assert rep.per_frame[42] == rep.per_frame[43] == rep.window_conf[-1]


def test_lse_sign_convention_on_a_known_lag():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((60, 64)).astype(np.float32)
    rep = lse_from_features(base[5:45], base[3:43], vshift=6)   # audio row t == video row t - 2
    assert rep.offset_frames == -2 and rep.dists.shape == (40, 13)
    assert rep.lse_d < 1.0 and rep.lse_c > 5     # only the 2 edge windows that meet zero padding are off


def test_the_distance_table_of_a_long_clip_fits_in_little_memory():
    """calc_pdist over 10 min of windows (15000 x 256 features) in a process of its own: each chunk's distances go
    into one table made up front, so the chunks' freed temporaries are reused instead of left stranded between
    the small results (measured: the list of results held +479 MB after the call, the table +69 MB); and every
    entry is the docstring's ||v_i - a_(i+j-vshift) + 1e-6||."""
    import sys
    import textwrap
    from pathlib import Path

    code = textwrap.dedent("""
        import numpy as np, torch
        from core.sync.scoring import calc_pdist
        def rss():
            return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024
        rng = np.random.default_rng(0)
        v, a = (rng.normal(size=(15000, 256)).astype(np.float32) for _ in range(2))
        before = rss()
        d = calc_pdist(v, a, 15)
        print(rss() - before, tuple(d.shape))
    """)
    root = Path(scoring.__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=root).stdout.split(None, 1)
    assert float(out[0]) < 200 and out[1].strip() == "(15000, 31)", out
    rng = np.random.default_rng(1)
    v, a = rng.normal(size=(300, 8)).astype(np.float32), rng.normal(size=(300, 8)).astype(np.float32)
    d = scoring.calc_pdist(v, a, 3, chunk=64).numpy()
    padded = np.pad(a, ((3, 3), (0, 0)))
    expect = np.stack([np.linalg.norm(v - padded[j:j + 300] + 1e-6, axis=1) for j in range(7)], axis=1)
    np.testing.assert_allclose(d, expect, rtol=1e-6)


def test_window_to_frame_index_and_explicit_num_frames():
    np.testing.assert_array_equal(window_to_frame_index(8, 4, 5), [0, 0, 0, 1, 2, 3, 3, 3])
    np.testing.assert_array_equal(window_to_frame_index(3, 1, 5), [0, 0, 0])
    feats = np.random.default_rng(1).standard_normal((10, 8)).astype(np.float32)
    rep = lse_from_features(feats, feats, vshift=3, num_frames=20)
    assert rep.per_frame.shape == (20,)
    np.testing.assert_array_equal(rep.per_frame[2:12], rep.window_conf)
    assert (rep.per_frame[12:] == rep.window_conf[-1]).all()
    with pytest.raises(ValueError):
        lse_from_features(feats, feats[:9])


def test_report_json_round_trip():
    rep = lse_from_features(np.load(LSE / "shifted_video_feat.npy"), np.load(LSE / "shifted_audio_feat.npy"))
    rep.per_frame = rep.per_frame.copy()
    rep.per_frame[0] = np.nan
    rep.valid = np.ones(len(rep.per_frame), bool)
    d = json.loads(json.dumps(rep.to_json(include_dists=True)))
    assert d["offset_frames"] == 3 and d["per_frame"][0] is None and len(d["per_frame"]) == 44
    assert "dists" not in rep.to_json()
    back = SyncReport.from_json(d)
    assert back.offset_frames == 3 and back.lse_c == pytest.approx(rep.lse_c, abs=1e-4)
    assert back.dists.shape == (40, 31) and np.isnan(back.per_frame[0]) and back.valid.all()


# ------------------------------------------------------------------------------------------- helpers
def test_fill_track_interpolates_and_holds():
    n = 6
    boxes = np.full((n, 4), np.nan, np.float32)
    lms = np.full((n, 68, 2), np.nan, np.float32)
    present = np.zeros(n, bool)
    for i, v in ((1, 10.0), (4, 40.0)):
        boxes[i], lms[i], present[i] = v, v, True
    fb, fl, det = fill_track(boxes, lms, present)
    np.testing.assert_allclose(fb[:, 0], [10, 10, 20, 30, 40, 40])
    np.testing.assert_allclose(fl[:, 30, 1], [10, 10, 20, 30, 40, 40])
    np.testing.assert_array_equal(det, present)
    with pytest.raises(NoFaceError):
        fill_track(boxes, lms, np.zeros(n, bool))


def test_resample_indices():
    np.testing.assert_array_equal(resample_indices(10, 25.0, 25.0), np.arange(10))
    np.testing.assert_array_equal(resample_indices(10, 25.0, None), np.arange(10))
    idx = resample_indices(300, 30000 / 1001, 25.0)       # 10 s of NTSC video -> 250 frames at 25 fps
    assert len(idx) == 250 and idx[0] == 0 and (np.diff(idx) >= 1).all() and idx[-1] <= 299
    t_src, t_dst = idx * 1001 / 30000, np.arange(250) / 25.0
    assert np.abs(t_src - t_dst).max() <= 0.5 * 1001 / 30000 + 1e-9
    up = resample_indices(40, 20.0, 25.0)                  # 20 fps -> 25: some frames repeat
    assert len(up) == 50 and (np.diff(up) >= 0).all() and (np.diff(up) == 0).any()


def test_syncnet_mfcc_matches_reference():
    from scipy.io import wavfile

    from core.sync.scorers.syncnet_v2 import mfcc

    sr, pcm = wavfile.read(REFERENCE / "audio" / "speech16k.wav")
    assert sr == 16000 and pcm.dtype == np.int16
    got = mfcc(pcm.astype(np.float32) / 32768.0)
    exp = ref("audio", "mfcc.npy")
    assert got.shape == exp.shape == (13, 311)
    np.testing.assert_allclose(got, exp, rtol=1e-9, atol=1e-9)


def test_syncnet_crop_geometry():
    from core.sync.scorers.syncnet_v2 import syncnet_crop

    h, w = 400, 500
    yy, xx = np.mgrid[0:h, 0:w]
    frame = np.stack([xx % 256, yy % 256, np.full_like(xx, 7)], -1).astype(np.uint8)
    box = np.array([200, 100, 300, 200], np.float32)     # centre (250, 150), half side 50 (box_scale 1)
    crop = syncnet_crop(frame, box, box_scale=1.0)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    # square from x = 250 - 70 .. 250 + 70 and y = 150 - 50 .. 150 + 90
    assert abs(int(crop[0, 0, 0]) - 180) <= 1 and abs(int(crop[0, 0, 1]) - 100) <= 1
    assert abs(int(crop[-1, -1, 0]) - 320) % 256 <= 2 and abs(int(crop[-1, -1, 1]) - 240) <= 2
    edge = syncnet_crop(frame, np.array([-40, -40, 40, 40], np.float32), box_scale=1.0)
    assert (edge[0, 0] == 110).all() and edge[-1, -1, 2] == 7      # outside the frame: grey 110


def test_syncnet_audio_windows_follow_syncnet_python():
    from core.sync.scorers.syncnet_v2 import SyncNetV2Scorer, mfcc

    wav = np.random.default_rng(2).standard_normal(16000).astype(np.float32) * 0.1
    sc = SyncNetV2Scorer(torch.nn.Identity())
    win = sc.audio_windows(wav, 25.0, 25)                   # 1 s: 25 frames -> 21 windows of 20 MFCC columns
    cc = mfcc(wav).astype(np.float32)
    assert win.shape == (21, 1, 13, 20)
    assert cc.shape[1] == 99
    for v in (0, 7, 19):
        np.testing.assert_array_equal(win[v, 0], cc[:, 4 * v:4 * v + 20])
    # the 21st window would need column 99: padded with the edge (syncnet_python never uses it, see num_windows)
    np.testing.assert_array_equal(win[20, 0, :, :19], cc[:, 80:99])
    np.testing.assert_array_equal(win[20, 0, :, 19], cc[:, 98])
    assert sc.num_windows(25) == 20                         # syncnet_python drops the last window


# ------------------------------------------------------------------------------------------- score_clip
class ToyScorer(SyncScorer):
    """Cheap deterministic scorer: crop = mean colour of the box; features = the 5 crops of a window."""

    name = "toy"

    def __init__(self, batch_size=4, native_fps=None):
        self.batch_size = batch_size
        self.native_fps = native_fps
        self.calls = 0

    def face_input(self, frame, box, landmarks):
        x0, y0, x1, y1 = (int(v) for v in box)
        return frame[max(0, y0):y1, max(0, x0):x1].reshape(-1, 3).mean(0).astype(np.float32)

    def video_features(self, face_inputs):
        self.calls += 1
        x = np.asarray(face_inputs, np.float32)
        return np.stack([x[i:i + 5].reshape(-1) for i in range(len(x) - 4)])

    def audio_features(self, wav, fps, num_frames):
        return np.zeros((num_frames - 4, 15), np.float32)


@dataclass
class Track:
    boxes: np.ndarray
    landmarks: np.ndarray
    present: np.ndarray
    track_id: int = 0


@pytest.fixture(scope="module")
def grid():
    names = (REFERENCE.parent / "data" / "grid_s1" / "heldout.txt").read_text().split()
    name = names[0]
    video = REFERENCE.parent / "data" / "grid_s1" / "video" / f"{name}.mp4"
    from tools.grid_cache import load_clip

    d = load_clip(name)
    track = Track(d["boxes"].copy(), d["landmarks"].copy(), d["present"].copy())
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(video), "-vn", "-ac", "1", "-ar", "16000",
                          "-f", "f32le", "-"], capture_output=True, check=True,
                         stdin=subprocess.DEVNULL).stdout
    return video, np.frombuffer(pcm, np.float32).copy(), track


def test_score_clip_streaming_equals_one_shot(grid):
    video, wav, track = grid
    one = ToyScorer(batch_size=1000)
    rep_one = score_clip(video, wav, track, one, fps=25.0)
    assert one.calls == 1
    for bs in (1, 4, 13):
        sc = ToyScorer(batch_size=bs)
        rep = score_clip(video, wav, track, sc, fps=25.0)
        assert sc.calls > 1
        np.testing.assert_allclose(rep.dists, rep_one.dists, rtol=1e-6)
    # the clip's voice is 47,926 samples (2.995 s): like syncnet_python, score floor(2.995 * 25) = 74 frames
    assert len(wav) == 47926
    assert rep_one.dists.shape == (70, 31) and rep_one.per_frame.shape == (75,)
    assert rep_one.valid[:74].all() and not rep_one.valid[74] and rep_one.fps == 25.0


def test_score_clip_resamples_to_native_rate_and_maps_back(grid):
    video, wav, track = grid
    rep = score_clip(video, wav, track, ToyScorer(native_fps=20.0), fps=25.0)
    assert rep.scorer_fps == 20.0 and rep.per_frame.shape == (75,)
    assert rep.dists.shape == (59 - 4, 31)                 # floor(2.995 s * 20) = 59 frames at 20 fps
    assert abs(rep.offset_frames - round(rep.offset_native * 25 / 20)) == 0


def test_score_clip_missing_faces_short_audio_cancel_and_progress(grid):
    video, wav, track = grid
    t2 = Track(track.boxes.copy(), track.landmarks.copy(), track.present.copy())
    t2.present[10:20] = False
    t2.boxes[10:20] = np.nan
    rep = score_clip(video, wav[: 16000 * 2], t2, ToyScorer(), fps=25.0)   # 2 s of voice: 50 frames scored
    assert rep.per_frame.shape == (75,) and np.isfinite(rep.per_frame).all()
    assert not rep.valid[10:20].any() and rep.valid[:10].all() and rep.valid[20:50].all()
    assert not rep.valid[50:].any()
    assert rep.dists.shape == (46, 31)

    with pytest.raises(MediaError, match="too short"):
        score_clip(video, wav[:1000], track, ToyScorer(), fps=25.0)

    seen = []
    token = CancelToken()

    def progress(stage, done, total):
        seen.append((stage, done, total))
        if done >= 20:
            token.cancel()

    with pytest.raises(CancelledError):
        score_clip(video, wav, track, ToyScorer(batch_size=8), fps=25.0, progress=progress, cancel=token)
    assert seen[0] == ("score", 0, 74) and all(s == "score" for s, _, _ in seen)
    done = [d for _, d, _ in seen]
    assert done == sorted(done) and done[-1] < 74


def test_on_frame_sees_every_frame_of_the_track_when_the_voice_ends_first(grid, monkeypatch):
    """A reader of the pass's frames (the texture library, the performer's sharpness) gets the track's every frame
    in order, also those after the voice's end, which the scorer does not need: it need not open a decoder of its
    own for them (which would decode from the last keyframe again). The scores do not change."""
    from core import media

    video, wav, track = grid
    seen = []
    short = wav[: 16000 * 2]                                             # the voice ends at frame 50 of 75
    rep = score_clip(video, short, track, ToyScorer(), fps=25.0, on_frame=lambda i, f: seen.append((i, f)))
    assert [i for i, _ in seen] == list(range(75))
    decoded = list(media.iter_frames(video))
    assert all(np.array_equal(f, decoded[i]) for i, f in seen[::7] + seen[-2:])
    np.testing.assert_array_equal(rep.dists, score_clip(video, short, track, ToyScorer(), fps=25.0).dists)
    # a long tail after the voice is left to the reader's own decoder (the pass does not wait for it through it)
    from core.sync import scoring

    monkeypatch.setattr(scoring, "READER_TAIL_FRAMES", 10)
    seen.clear()
    score_clip(video, short, track, ToyScorer(), fps=25.0, on_frame=lambda i, f: seen.append((i, f)))
    assert [i for i, _ in seen] == list(range(60))                      # frames 0-49 scored, then 10 more


class FailingToy(ToyScorer):
    """ToyScorer whose network fails on its third chunk (and records which threads cut crops and embedded)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.threads = set()
        self.crop_threads = set()

    def face_input(self, frame, box, landmarks):
        import threading

        self.crop_threads.add(threading.current_thread().name)
        return super().face_input(frame, box, landmarks)

    def video_features(self, face_inputs):
        import threading

        self.threads.add(threading.current_thread().name)
        if self.calls == 2:
            raise RuntimeError("the network failed on chunk 3")
        return super().video_features(face_inputs)


def test_the_networks_embed_beside_the_cropping_and_their_errors_reach_the_caller(grid):
    """The crops are cut in a worker thread, a chunk ahead, while the caller's thread embeds (its heap keeps the
    networks' transients: core.heap; test_score_clip_streaming_equals_one_shot: in order); an error in the networks
    is the caller's, not a hang or a lost chunk, and the worker stops."""
    import threading

    video, wav, track = grid
    sc = FailingToy(batch_size=8)
    before = set(threading.enumerate())
    with pytest.raises(RuntimeError, match="chunk 3"):
        score_clip(video, wav, track, sc, fps=25.0)
    assert sc.calls == 2 and sc.threads == {threading.current_thread().name}
    assert sc.crop_threads and threading.current_thread().name not in sc.crop_threads
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive()]


class VoiceToy(ToyScorer):
    """ToyScorer whose audio features follow the voice (loudness of the window's 5 frames)."""

    def audio_features(self, wav, fps, num_frames):
        spf = int(round(16000 / fps))
        loud = np.array([np.sqrt(np.mean(np.square(wav[i * spf:(i + 1) * spf])) + 1e-9) for i in range(num_frames)])
        win = np.stack([loud[i:i + 5] for i in range(num_frames - 4)]).astype(np.float32)
        return np.repeat(win, 3, axis=1) * 100.0


def test_a_picture_is_read_once_for_several_voices(grid, monkeypatch):
    """The window scores the clip's own voice, then the new one: the second reuses the picture's windows
    (`report.face`) and gives exactly what scoring from scratch gives; a voice the windows do not cover, or another
    scorer, reads the video again."""
    video, wav, track = grid
    own = score_clip(video, wav, track, VoiceToy(), fps=25.0)
    reads = []
    real = scoring.media.iter_frames
    monkeypatch.setattr(scoring.media, "iter_frames", lambda *a, **k: reads.append(1) or real(*a, **k))
    other = np.ascontiguousarray(wav[::-1])
    for voice in (other, other[:16000 * 2]):                                # same length, shorter
        again = score_clip(video, voice, track, VoiceToy(), fps=25.0, face=own.face)
        assert not reads
        fresh = score_clip(video, voice, track, VoiceToy(), fps=25.0)
        assert len(reads) == 1
        reads.clear()
        np.testing.assert_array_equal(again.dists, fresh.dists)
        np.testing.assert_array_equal(again.per_frame, fresh.per_frame)
        assert again.offset_frames == fresh.offset_frames and np.array_equal(again.valid, fresh.valid)
    assert not np.array_equal(fresh.dists[:10], own.dists[:10])        # the voices do differ
    # the own voice (2.995 s) stopped short of the picture's last frame, a longer voice is compared with it: read
    score_clip(video, np.concatenate([other, other]), track, VoiceToy(), fps=25.0, face=own.face)
    assert len(reads) == 1
    longer = score_clip(video, np.concatenate([wav, wav]), track, VoiceToy(), fps=25.0)   # all 75 frames read
    reads.clear()
    score_clip(video, np.concatenate([other, other, other]), track, VoiceToy(), fps=25.0, face=longer.face)
    assert not reads
    short = score_clip(video, wav[:16000 * 2], track, VoiceToy(), fps=25.0)
    score_clip(video, wav, track, VoiceToy(), fps=25.0, face=short.face)      # covers 2 s of 3: read again
    assert len(reads) == 2

    class Other(VoiceToy):
        name = "other"

    score_clip(video, wav, track, Other(), fps=25.0, face=own.face)
    assert len(reads) == 3


def test_voice_computed_before_the_video_is_used_only_when_it_covers_the_scored_frames(grid):
    """`voice_windows` is the voice side `score_clip` computes; handed in (`voice=`), the report is exactly the same
    and the scorer's audio side does not run again, unless the video stops before the voice does."""
    video, wav, track = grid

    class Counting(VoiceToy):
        def audio_features(self, wav, fps, num_frames):
            self.audio_calls = getattr(self, "audio_calls", 0) + 1
            return super().audio_features(wav, fps, num_frames)

    for scorer in (Counting(), Counting(native_fps=20.0)):
        early = scoring.voice_windows(wav, scorer, 25.0)
        assert early[0] == (74 if scorer.native_fps is None else 59) and scorer.audio_calls == 1
        fresh = score_clip(video, wav, track, scorer, fps=25.0)
        given = score_clip(video, wav, track, scorer, fps=25.0, voice=early)
        assert scorer.audio_calls == 2
        np.testing.assert_array_equal(given.dists, fresh.dists)
        np.testing.assert_array_equal(given.per_frame, fresh.per_frame)
        assert given.offset_frames == fresh.offset_frames and given.lse_c == fresh.lse_c
    long_voice = np.concatenate([wav, wav])                     # 150 frames of voice, 75 of video: not used
    scorer = Counting()
    early = scoring.voice_windows(long_voice, scorer, 25.0)
    given = score_clip(video, long_voice, track, scorer, fps=25.0, voice=early)
    assert scorer.audio_calls == 2
    np.testing.assert_array_equal(given.dists, score_clip(video, long_voice, track, scorer, fps=25.0).dists)


@pytest.fixture(scope="module")
def syncnet_v2_scorer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    save_flat(folder / "syncnet_v2.model", "syncnet_v2")
    scorer = scoring.get_scorer("auto", models_dir=folder)
    return folder, scorer


def test_score_clip_grid_with_filled_syncnet_v2(grid, syncnet_v2_scorer):
    from core.sync.scorers.syncnet_v2 import SyncNetV2Scorer

    video, wav, track = grid
    _, scorer = syncnet_v2_scorer
    assert isinstance(scorer, SyncNetV2Scorer)
    seen = []
    rep = score_clip(video, wav, track, scorer, progress=lambda *a: seen.append(a))
    assert rep.scorer == "syncnet_v2" and rep.fps == 25.0 and rep.scorer_fps == 25.0
    assert rep.dists.shape == (69, 31)          # syncnet_python: min(75, floor(47926 / 640)) - 5 = 69 windows
    assert rep.per_frame.shape == rep.per_frame_raw.shape == rep.valid.shape == (75,)
    assert -15 <= rep.offset_frames <= 15
    for v in (rep.dists, rep.per_frame, rep.per_frame_raw):
        assert np.isfinite(v).all()
    assert np.isfinite([rep.lse_d, rep.lse_c]).all() and rep.lse_c >= 0 and rep.lse_d > 0
    assert seen[-1] == ("score", 74, 74) and rep.valid[:74].all()
    json.dumps(rep.to_json())


# ------------------------------------------------------------------------------------------- get_scorer
def test_get_scorer_names_and_files(tmp_path, monkeypatch, syncnet_v2_scorer):
    from core.sync.scorers.color_expert import ColorExpertScorer
    from core.sync.scorers.syncnet_v2 import SyncNetV2Scorer

    folder, _ = syncnet_v2_scorer
    sentinel = object()
    from dataclasses import replace

    from core.sync.scorers import registry
    from core.sync.scorers.lite import DEFAULT_PATH

    from core.models.registry import shipped_models_dir

    for name in ("lite", "fused"):
        plugin = registry.find(name)
        monkeypatch.setitem(registry._REGISTRY._plugins, name,
                            replace(plugin, load=lambda path, device: (sentinel, path)))
    empty = tmp_path / "empty"
    empty.mkdir()
    # without syncnet_v2, the lane's default is the fused scorer over the shipped sync_asd heads
    assert scoring.get_scorer("auto", models_dir=empty) == (sentinel, shipped_models_dir() / "sync_asd.pt")
    assert scoring.get_scorer("lite") == (sentinel, DEFAULT_PATH)
    assert isinstance(scoring.get_scorer("syncnet_v2", models_dir=folder), SyncNetV2Scorer)
    assert isinstance(scoring.get_scorer(str(folder / "syncnet_v2.model")), SyncNetV2Scorer)
    expert = save_wav2lip_style(tmp_path / "lipsync_expert.pth", "syncnet_color")
    with expert.open("r+b") as fh:          # pass the registry's size check for this name (weights alone: 66 MB)
        fh.seek(0, 2)
        fh.truncate(max(fh.tell(), 16_435_072 * 4 + 1))
    assert isinstance(scoring.get_scorer("lipsync_expert", models_dir=tmp_path), ColorExpertScorer)
    other = tmp_path / "my_lite.pt"
    torch.save({"weights": torch.zeros(3)}, str(other))
    assert scoring.get_scorer(str(other)) == (sentinel, other)
    disc = save_wav2lip_style(tmp_path / "disc.pth", "wav2lip_disc_qual")
    with pytest.raises(ModelCorruptError, match="not a sync scorer"):
        scoring.get_scorer(str(disc))


# ------------------------------------------------------------------------------------------- colour expert
@pytest.fixture(scope="module")
def expert_scorer():
    from core.models.load import SyncNetColor
    from core.sync.scorers.color_expert import ColorExpertScorer

    net = SyncNetColor()
    net.load_state_dict(tensors("syncnet_color"))
    return ColorExpertScorer(net.eval())


def test_expert_inputs_follow_wav2lip(expert_scorer):
    from core import audio as audio_mod
    from core.sync.scorers.color_expert import expert_crop

    frame = np.zeros((200, 300, 3), np.uint8)
    frame[:100] = (10, 20, 30)
    frame[100:] = (200, 150, 100)
    crop = expert_crop(frame, np.array([100, 50, 200, 150], np.float32), box_scale=1.0)   # centred on row 100
    assert crop.shape == (48, 96, 3) and (crop[2:] == (200, 150, 100)).all()              # the lower half only

    rng = np.random.default_rng(5)
    inputs = rng.integers(0, 256, (7, 48, 96, 3), dtype=np.uint8)
    faces = expert_scorer.face_windows(inputs)
    assert faces.shape == (3, 15, 48, 96)
    for i in range(3):
        for t in range(5):
            for c in range(3):
                np.testing.assert_array_equal(faces[i, 3 * t + c], inputs[i + t, :, :, c] / np.float32(255))

    wav = rng.standard_normal(16000).astype(np.float32) * 0.1
    mels = expert_scorer.mel_windows(wav, 25.0, 25)
    mel = audio_mod.melspectrogram(wav)
    assert mels.shape == (21, 1, 80, 16)
    for i in (0, 5, 20):
        np.testing.assert_allclose(mels[i, 0], mel[:, int(i * 80 / 25):int(i * 80 / 25) + 16], atol=1e-6)

    # the features are exactly the official forward's (audio_emb, face_emb)
    with torch.no_grad():
        a_ref, v_ref = expert_scorer.model(torch.from_numpy(mels[:3]), torch.from_numpy(faces))
    np.testing.assert_allclose(expert_scorer.video_features(inputs), v_ref.numpy(), atol=1e-6)
    np.testing.assert_allclose(expert_scorer.audio_features(wav, 25.0, 25)[:3], a_ref.numpy(), atol=1e-6)


def test_score_clip_grid_with_filled_expert(grid, expert_scorer):
    video, wav, track = grid
    rep = score_clip(video, wav[:16000], track, expert_scorer)   # the first second of voice: 25 frames, 21 windows
    assert rep.scorer == "lipsync_expert" and rep.dists.shape == (21, 31) and rep.per_frame.shape == (75,)
    assert rep.valid[:25].all() and not rep.valid[25:].any()
    assert -15 <= rep.offset_frames <= 15 and np.isfinite(rep.dists).all() and np.isfinite(rep.per_frame).all()
    assert 0 <= rep.lse_d <= 2.0 + 1e-3          # unit embeddings


def test_medfilt_is_scipys():
    import warnings

    from scipy.signal import medfilt as scipy_medfilt

    from core.sync.scoring import MEDFILT_KERNEL, medfilt

    rng = np.random.default_rng(3)
    for n in (1, 4, 9, 30, 301):
        x = rng.normal(0, 1, n).astype(np.float32)
        x[rng.integers(0, n, n // 3)] = 0.25                       # ties
        got = medfilt(x, MEDFILT_KERNEL).astype(np.float32)
        with warnings.catch_warnings():                         # scipy warns when the kernel is longer than x
            warnings.simplefilter("ignore", UserWarning)
            want = scipy_medfilt(x, kernel_size=MEDFILT_KERNEL).astype(np.float32)
        assert np.array_equal(got, want)
        assert not np.array_equal(got, x) or n == 1


def test_the_offset_witness_phones_are_decoded_once_before_the_pictures_pass(grid, monkeypatch):
    """With the mouth model as the offset's second witness, the voice's phones are decoded before the picture is
    read (memory: a long voice's decoder does not stack on the pass) and only once (the witness reuses them)."""
    import core.phones as phones
    from core import mouth_shape
    from core.sync import scoring

    video, wav, track = grid
    events = []
    real_decode, real_windows = phones._decode, scoring.face_windows
    monkeypatch.setattr(phones, "_decode", lambda pcm: events.append("decode") or real_decode(pcm))
    monkeypatch.setattr(scoring, "face_windows", lambda *a, **k: events.append("picture") or real_windows(*a, **k))
    model = mouth_shape.AudioToMouth.load()
    assert model.uses_phones
    rep = score_clip(video, wav * 0.9, track, ToyScorer(), fps=25.0, offset_model=model)   # a voice not decoded yet
    assert events == ["decode", "picture"] and rep.offset_evidence is not None
