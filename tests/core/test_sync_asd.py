"""The face-general sync scorer (sync_asd: Light-ASD encoders + our heads), its fusion with sync_lite, and the
lane's "cannot judge this face"."""
import json
import subprocess
import sys

import numpy as np
import pytest

from data_paths import GRID_OTHERS, ROOT

from core.audio import load_audio
from core.sync import lane as sync_lane
from core.sync.lane_adapt import face_judgeable
from core.sync.scoring import SyncReport, get_scorer, judge_low, lse_from_features, score_clip


def test_judgeable_rule():
    assert sync_lane.judgeable(float("nan"))                       # no own voice: nothing says otherwise
    assert sync_lane.judgeable(sync_lane.MIN_LOW_THRESHOLD + 0.5)
    assert not sync_lane.judgeable(sync_lane.MIN_LOW_THRESHOLD - 0.5)
    # the face speaks its own sound at a small offset, yet its own voice scores like a wrong offset: cannot judge
    assert not face_judgeable(0, 0.4, own_speaking=0.95)
    # a sound that is not this face's voice says nothing about the face: the lane keeps judging
    assert face_judgeable(12, 0.4, own_speaking=0.95)
    assert face_judgeable(0, 0.4, own_speaking=0.2)


def test_an_unjudgeable_face_has_no_low_frame_and_says_so_in_json():
    rng = np.random.default_rng(0)
    v, a = rng.normal(size=(60, 8)), rng.normal(size=(60, 8))
    rep = lse_from_features(v, a, 15)
    rep.per_frame = np.full(64, -1.0, np.float32)
    rep.voiced = np.ones(64, bool)
    rep.valid = np.ones(64, bool)
    assert judge_low(rep, 1.0).low.all() and rep.to_json()["judgeable"] is True
    judge_low(rep, 1.0, judgeable=False)
    assert not rep.low.any()
    doc = json.loads(json.dumps(rep.to_json()))
    assert doc["judgeable"] is False and not any(doc["low"])
    assert SyncReport.from_json(doc).judgeable is False


@pytest.fixture(scope="module")
def unseen_clip():
    """A speaker no model was trained on (grid_others, evaluation only), tracked by the product."""
    from core.faces.track import track_video

    path = sorted(GRID_OTHERS.glob("*.mpg"))[0]
    return path, load_audio(path), track_video(path).primary()


def _late(wav, frames):
    return np.concatenate([np.zeros(frames * 640, np.float32), wav])[:len(wav)]


@pytest.mark.parametrize("name", ["sync_asd", "fused"])
def test_lane_on_an_unseen_face_separates_own_voice_from_late(unseen_clip, name):
    path, wav, track = unseen_clip
    scorer = get_scorer(name)
    assert scorer.native_fps == 25.0
    own = score_clip(path, wav, track, scorer)
    late = score_clip(path, _late(wav, 8), track, scorer, face=own.face)
    assert own.face.trunk is not None                # kept for refinement: projects back to the features
    np.testing.assert_allclose(scorer.project_video(own.face.trunk), own.face.features, atol=1e-4)
    own_low = own.low.sum() / own.voiced.sum()
    late_low = late.low.sum() / late.voiced.sum()
    assert own_low <= 0.5 and late_low >= 0.8 and late_low - own_low >= 0.4, (own_low, late_low)
    assert abs(own.offset_frames) <= 1
    # a voice 4 frames late is found 4 frames late (syncnet's sign: negative = the audio lags)
    shifted = score_clip(path, _late(wav, 4), track, scorer, face=own.face)
    assert abs(shifted.offset_frames + 4) <= 1


def test_a_dark_mustached_mpeg1_face_is_read_through_its_codec_blocks():
    """swiz3n (grid_others, evaluation only): a dark, mustached, low-contrast mouth in 360x288 MPEG-1. On the authors'
    crop the encoder followed the codec's 8-pixel blocks and their I-frame flicker (its offset found for 0 of 9
    delays); the scorer's blurred crop (core.sync.asd.features.smooth_face_crop) reads the lips, as on the same clip
    re-encoded to H.264."""
    from core.faces.track import track_video

    path = GRID_OTHERS / "swiz3n.mpg"
    wav, track = load_audio(path), track_video(path).primary()
    scorer = get_scorer("sync_asd")
    face = None
    for delay in (0, 4, -4):
        moved = _late(wav, delay) if delay >= 0 else np.concatenate([wav[-delay * 640:],
                                                                     np.zeros(-delay * 640, np.float32)])
        rep = score_clip(path, moved, track, scorer, face=face)
        face = rep.face
        assert abs(rep.offset_frames + delay) <= 1, (delay, rep.offset_frames, rep.lse_c)


def test_the_blur_is_in_frame_pixels():
    """One frame pixel whatever the face's size: a small face's crop is blurred by about a crop pixel, an HD face's
    (shrunk to the crop) by a fraction of one."""
    from core.sync.asd import features as AF

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (1080, 1920, 3), np.uint8)
    small, large = np.array([900, 500, 980, 580], np.float32), np.array([700, 300, 1180, 780], np.float32)

    def change(box):
        return np.abs(AF.smooth_face_crop(frame, None, box).astype(float) - AF.face_crop(frame, None, box)).mean()

    assert change(small) > 3 * change(large) > 0


def test_fused_distance_is_both_scorers_distances_combined():
    from core.sync.scorers.fused import LITE_WEIGHT

    fused = get_scorer("fused")
    lite, asd = fused.lite, fused.asd
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(9)]
    box, lms = np.array([30, 20, 130, 110], np.float32), np.full((68, 2), np.nan, np.float32)
    fin = np.stack([fused.face_input(f, box, lms) for f in frames])
    ev = fused.video_features(fin)
    wav = rng.normal(0, 0.1, 16000).astype(np.float32)
    ea = fused.audio_features(wav, 25.0, 9)
    lv = lite.video_features(np.stack([lite.face_input(f, box, lms) for f in frames]))
    av = asd.video_features(np.stack([asd.face_input(f, box, lms) for f in frames]))
    la, aa = lite.audio_features(wav, 25.0, 9), asd.audio_features(wav, 25.0, 9)
    d = np.linalg.norm(ev - ea, axis=1)
    expect = np.sqrt(LITE_WEIGHT ** 2 * np.linalg.norm(lv - la, axis=1) ** 2 + np.linalg.norm(av - aa, axis=1) ** 2)
    np.testing.assert_allclose(d, expect, rtol=1e-4)


def test_score_json_says_judgeable(tmp_path):
    path = sorted(GRID_OTHERS.glob("*.mpg"))[0]
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "score", "--video", str(path), "--json",
                          "--quiet", "--scorer", "sync_asd"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["judgeable"] is True and doc["scorer"] == "sync_asd"
    assert len(doc["low"]) == 75


def test_the_shipped_scorer_reads_the_voice_with_both_networks_audio_encoders_as_their_authors():
    """sync_asd's voice side is Light-ASD's audio encoder and LR-ASD's beside it (core.sync.asd.net.SecondVoice),
    each giving its authors' embeddings on the reference inputs; active-speaker detection keeps Light-ASD alone."""
    import torch

    from data_paths import REFERENCE

    from core.sync.asd.net import ASDModel, SecondVoice
    from core.sync.asd.weights import load_asd
    from core.sync.scorers.asd import AsdScorer

    scorer = AsdScorer.load()
    assert isinstance(scorer.asd, SecondVoice) and scorer.heads.audio.mean.shape[0] == 256
    with np.load(REFERENCE / "asd" / "inputs.npz") as z:
        mfcc = torch.as_tensor(z["mfcc"])[None]
    with torch.no_grad():
        both = scorer.asd.audio(mfcc)[0].numpy()
        alone = load_asd("cpu").audio(mfcc)[0].numpy()
    for half, ref in ((both[:, :128], "light_asd_finetuning_TalkSet"), (both[:, 128:], "lr_asd_finetuning_TalkSet")):
        with np.load(REFERENCE / "asd" / f"{ref}.npz") as z:
            np.testing.assert_allclose(half, z["audio_embed"], atol=1e-4, rtol=0, err_msg=ref)
    assert isinstance(load_asd("cpu"), ASDModel) and alone.shape[-1] == 128
    np.testing.assert_array_equal(alone, both[:, :128])


def test_a_heads_file_without_a_second_voice_reads_the_voice_with_light_asd_alone(tmp_path):
    import torch

    from core.sync.asd.head import SyncHeads
    from core.sync.asd.net import ASDModel
    from core.sync.scorers.asd import AsdScorer

    heads = SyncHeads()
    path = tmp_path / "heads.pt"
    torch.save({"state_dict": heads.state_dict(), "config": {"hidden": 512, "out": 128}}, path)
    scorer = AsdScorer.load(path)
    assert isinstance(scorer.asd, ASDModel)
    wav = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    assert scorer.audio_features(wav, 25.0, 25).shape == (21, 128)


def test_a_long_voice_is_encoded_in_chunks_exactly_as_in_one_pass(monkeypatch):
    # memory: a 10 min voice's MFCCs and encoder activations took ~1.5 GB in one pass; the chunks must join exactly
    import core.sync.scorers.asd as asd_scorer

    scorer = get_scorer("sync_asd")
    voice = np.concatenate([load_audio(str(GRID_OTHERS / f"{n}.mpg")) for n in ("lbax4n", "sbwe5n", "pwij3p")])
    frames = len(voice) // 640 - 2
    for first in (0, -7, 11):
        monkeypatch.setattr(asd_scorer, "AUDIO_CHUNK", 10 ** 9)
        whole = scorer.audio_trunk(voice, frames, first)
        monkeypatch.setattr(asd_scorer, "AUDIO_CHUNK", 32)      # 7 chunks of 1.3 s, each with its 64-frame margins
        chunked = scorer.audio_trunk(voice, frames, first)
        assert chunked.shape == whole.shape == (frames, 256)
        assert np.array_equal(chunked, whole), float(np.abs(chunked - whole).max())
    monkeypatch.setattr(asd_scorer, "AUDIO_MARGIN", 2)          # too little context: the joins show
    assert not np.array_equal(scorer.audio_trunk(voice, frames, first), whole)


def test_a_long_clips_windows_go_through_the_heads_in_chunks_exactly_as_at_once(monkeypatch):
    # memory: a 10 min clip's windows through a head at once held ~0.1 GB of activations
    import core.sync.scorers.asd as asd_scorer

    scorer = get_scorer("sync_asd")
    voice = np.concatenate([load_audio(str(GRID_OTHERS / f"{n}.mpg")) for n in ("lbax4n", "sbwe5n")])
    audio_trunk = scorer.audio_trunk(voice, len(voice) // 640 - 2)
    audio_windows = np.stack([audio_trunk[i:i + 5].reshape(-1) for i in range(len(audio_trunk) - 4)])
    rng = np.random.default_rng(0)
    video_windows = np.abs(rng.standard_normal((1001, 5 * 128))).astype(np.float32)
    for trunk, head in ((audio_windows, scorer.heads.audio), (video_windows, scorer.heads.video)):
        monkeypatch.setattr(asd_scorer, "PROJECT_CHUNK", 10 ** 9)
        whole = scorer._project(trunk, head)
        monkeypatch.setattr(asd_scorer, "PROJECT_CHUNK", 64)
        chunked = scorer._project(trunk, head)
        assert chunked.shape == whole.shape and len(whole) == len(trunk)
        assert np.array_equal(chunked, whole), float(np.abs(chunked - whole).max())
