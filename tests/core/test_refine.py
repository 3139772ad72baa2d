"""Per-clip refinement of the sync scorer's video head (core.sync.refine), on synthetic windows and on a long real
clip (GRID s4 sentences joined)."""
import subprocess

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from core.sync import refine
from data_paths import SHARED

GRID_S4 = SHARED / "data" / "grid_s4" / "video"


class UnitLinear(nn.Module):
    def __init__(self, c, d):
        super().__init__()
        self.fc = nn.Linear(c, d)

    def forward(self, x):
        return F.normalize(self.fc(x), dim=1)


def shift_accuracy(head, x, audio):
    """Share of windows whose own audio window is the nearest among shifts -12..12 (except +-1)."""
    with torch.no_grad():
        v = head(torch.as_tensor(x)).numpy()
    hits = []
    for t in range(refine.MAX_SHIFT, len(x) - refine.MAX_SHIFT):
        cands = [t + s for s in range(-refine.MAX_SHIFT, refine.MAX_SHIFT + 1) if abs(s) != 1]
        hits.append(cands[int(np.argmax(audio[cands] @ v[t]))] == t)
    return float(np.mean(hits))


def test_refine_head_learns_this_faces_alignment_and_keeps_the_original():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 32)).astype(np.float32)          # per-window picture features of "this face"
    true = rng.standard_normal((32, 16)).astype(np.float32)         # how its lips map to the voice's space
    audio = x @ true
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    torch.manual_seed(0)
    head = UnitLinear(32, 16)
    before = {k: v.clone() for k, v in head.state_dict().items()}
    acc0 = shift_accuracy(head, x, audio)
    tuned = refine.refine_head(head, lambda h, z: h(z), x, audio, np.ones(len(x)), steps=300, learning_rate=3e-3,
                               anchor=0.0)
    assert acc0 < 0.3 and shift_accuracy(tuned, x, audio) > 0.9
    assert all(torch.equal(before[k], v) for k, v in head.state_dict().items())    # a copy was tuned


def test_refine_head_learns_only_from_the_training_windows():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 8)).astype(np.float32)
    audio = rng.standard_normal((400, 4)).astype(np.float32)
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    seen = []
    train = np.zeros(400, bool)
    train[:100] = True
    head = UnitLinear(8, 4)
    refine.refine_head(head, lambda h, z: seen.append(z.detach().numpy()) or h(z), x, audio, np.ones(400),
                       steps=20, train=train)
    rows = {tuple(r) for batch in seen for r in batch}
    assert rows and rows <= {tuple(r) for r in x[:100]}


def test_refine_head_trains_on_one_thread_with_the_weights_of_two(monkeypatch):
    """The refit's many small steps run on one torch thread (core.device.one_torch_thread): the caller's thread count
    is restored after, and the refit weights are the ones two threads give."""
    from contextlib import nullcontext

    from core import device

    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 640)).astype(np.float32)
    audio = F.normalize(torch.as_tensor(rng.standard_normal((400, 128)).astype(np.float32)), dim=1).numpy()
    speech = (rng.random(400) > 0.3).astype(np.float64)
    head = nn.Sequential(nn.Linear(640, 512), nn.ReLU(), nn.Linear(512, 128), UnitLinear(128, 128))
    seen = []

    def project(h, batch):
        seen.append(torch.get_num_threads())
        return h(batch)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = refine.refine_head(head, project, x, audio, speech, steps=20)
        assert set(seen) == {1} and torch.get_num_threads() == 2
        with device.one_torch_thread():                    # nested, restored
            with device.one_torch_thread():
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        monkeypatch.setattr(device, "one_torch_thread", nullcontext)    # the same refit on two threads
        seen.clear()
        two = refine.refine_head(head, project, x, audio, speech, steps=20)
        assert set(seen) == {2}
    finally:
        torch.set_num_threads(before)
    for p, p1, p2 in zip(head.parameters(), one.parameters(), two.parameters()):
        assert torch.equal(p1, p2) and not torch.equal(p, p1)


def test_short_clips_and_scorers_without_a_head_are_not_refined():
    from core.sync.scoring import FaceWindows

    face = FaceWindows(scorer="x", features=np.zeros((100, 4), np.float32), frames=104, requested=104,
                       available=104, detected=np.ones(104, bool), trunk=np.zeros((100, 8), np.float32))
    wav = np.zeros(16000 * 5, np.float32)
    assert refine.refine_scorer(object(), face, wav, np.ones(100), 25.0) is None          # no `refined`

    class Refinable:
        window, vshift, name = 5, 15, "x"

        def refined(self, *a, **k):
            raise AssertionError("a 4 s clip must not be refined")

    assert refine.refine_scorer(Refinable(), face, wav, np.ones(100), 25.0) is None        # 4 s < MIN_SPEECH_SECONDS


def test_the_refit_level_comes_from_the_windows_it_did_not_learn_from(monkeypatch):
    """The lane's threshold after a refit comes from the held-out chunks alone: how the refit head scores the windows
    it learnt from (there it pushed wrong offsets far away) must not move the level, null included."""
    from types import SimpleNamespace

    from core.sync import scoring
    from core.sync.lane import own_level
    from core.sync.scoring import FaceWindows

    m, vshift = 600, 15                                       # 24 s of windows: enough speech to refit
    rng = np.random.default_rng(0)
    base = rng.normal(1.0, 0.1, (m, 2 * vshift + 1))
    base[:, vshift] -= 0.3                                    # offset 0 fits a little better everywhere
    held = (np.arange(m) // refine.HOLD_CHUNK) % refine.HOLD_EVERY == refine.HOLD_EVERY - 1
    face = FaceWindows(scorer="x", features=np.zeros((m, 4), np.float32), frames=m + 4, requested=m + 4,
                       available=m + 4, detected=np.ones(m + 4, bool), trunk=np.zeros((m, 8), np.float32))

    def learnt(contrast):         # the table with the learnt windows' wrong offsets `contrast` times further away
        return base + (contrast - 1.0) * (base - base[:, vshift:vshift + 1]) * ~held[:, None]

    class Refinable:
        window, vshift, name = 5, 15, "x"

        def audio_features(self, *a):
            return np.zeros((m, 4), np.float32)

        def refined(self, *a, **k):
            return SimpleNamespace(project_video=lambda t: np.zeros((len(t), 4), np.float32))

    levels = []
    for contrast in (1.0, 10.0):
        monkeypatch.setattr(scoring, "lse_from_features",
                            lambda *a, table=learnt(contrast), **k: SimpleNamespace(dists=table, vshift=vshift))
        _, level = refine.refine_scorer(Refinable(), face, np.zeros(16000 * 25, np.float32), np.ones(m), 25.0)
        levels.append(level)
    assert levels[0] == pytest.approx(levels[1])
    assert levels[0] == pytest.approx(own_level(base[held], vshift, 0))
    assert own_level(learnt(10.0), vshift, 0) > levels[0] + 1       # what a level over every window would say


def test_a_long_clip_is_refit_on_the_witness_span_only(monkeypatch):
    """refine_for_clip learns from the windows inside the offset witness's span (core.sync.av_offset.WITNESS_SECONDS),
    with only that much of the voice, however long the clip."""
    from types import SimpleNamespace

    from core.sync import av_offset
    from core.sync.scoring import FaceWindows

    m = 1500                                                  # 60 s of windows at 25 fps
    face = FaceWindows(scorer="x", features=np.zeros((m, 4), np.float32), frames=m + 4, requested=m + 4,
                       available=m + 4, detected=np.ones(m + 4, bool), trunk=np.zeros((m, 8), np.float32))
    seen = {}
    monkeypatch.setattr(refine, "refine_scorer", lambda scorer, face, wav, voiced, fps, video_fps=None:
                        seen.update(wav=len(wav), windows=len(voiced)))
    report = SimpleNamespace(face=face, fps=25.0, scorer_fps=25.0)
    scorer = SimpleNamespace(window=5)
    wav = np.random.default_rng(0).normal(0, 0.1, 16000 * 61).astype(np.float32)
    refine.refine_for_clip(scorer, report, wav)
    assert seen == {"wav": 16000 * 61, "windows": m}           # under the span: every window, the whole voice
    monkeypatch.setattr(av_offset, "WITNESS_SECONDS", 20.0)
    refine.refine_for_clip(scorer, report, wav)
    assert seen == {"wav": 16000 * 20, "windows": 20 * 25 - 5}  # the windows wholly inside the first 20 s


def test_adaptation_cache_keeps_the_refit_head(tmp_path):
    from core.adapt import Adaptation, load_adaptation, store_adaptation

    head = {"net.0.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "mean": np.ones(3, np.float32)}
    ad = Adaptation(head=None, own_offset=1, own_confidence=2.0, own_speaking=0.9, sync_head=head,
                    refined_confidence=3.5)
    store_adaptation(ad, tmp_path / "a.npz")
    back = load_adaptation(tmp_path / "a.npz")
    assert back.sync_head.keys() == head.keys() and all(np.array_equal(back.sync_head[k], head[k]) for k in head)
    assert back.lane_confidence == 3.5 and back.to_json()["sync_refined"]
    assert Adaptation(head=None, own_confidence=2.0).lane_confidence == 2.0


@pytest.fixture(scope="module")
def long_s4(tmp_path_factory):
    """36 s of one speaker: GRID s4's first twelve sentences joined (the scorer's training saw only s4's even half),
    at GRID s1's 360x288 (tracking the 720x576 original took a quarter of the suite's longest test)."""
    names = sorted(p.stem for p in GRID_S4.glob("*.mp4"))
    folder = tmp_path_factory.mktemp("long_s4")
    listing = folder / "list.txt"
    listing.write_text("".join(f"file '{GRID_S4 / (n + '.mp4')}'\n" for n in names[:12]))
    out = folder / "long.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-vf", "scale=360:288", "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-c:a", "aac",
                    str(out)], check=True)
    return str(out), str(GRID_S4 / f"{names[30]}.mp4")


@pytest.mark.slow
def test_refit_on_a_long_real_clip_separates_own_voice_from_late_on_another_sentence(long_s4):
    from core import audio as audio_mod
    from core import media
    from core.faces.track import track_video
    from core.sync.scoring import get_scorer, score_clip

    long_clip, other_clip = long_s4
    scorer = get_scorer("sync_asd")
    info = media.probe(long_clip)
    track = track_video(long_clip).tracks[0]
    wav = audio_mod.load_audio(long_clip)
    own = score_clip(long_clip, wav, track, scorer, fps=float(info.fps))
    assert abs(own.offset_frames) <= 1
    refit = refine.refine_for_clip(scorer, own, wav)
    assert refit is not None
    refined, level = refit
    assert np.isfinite(level) and level > 1.0
    # the refit head travels as arrays (the adaptation's cache) and comes back identical
    again = scorer.with_video_head(refined.video_head_state())
    np.testing.assert_array_equal(again.project_video(own.face.trunk[:50]), refined.project_video(own.face.trunk[:50]))
    assert not np.allclose(refined.project_video(own.face.trunk[:50]), scorer.project_video(own.face.trunk[:50]))
    # a sentence it did not learn from: its own voice still found in sync, the voice 8 frames late shaded low
    cinfo = media.probe(other_clip)
    ctrack = track_video(other_clip).tracks[0]
    cwav = audio_mod.load_audio(other_clip)
    late = np.concatenate([np.zeros(8 * 640, np.float32), cwav])[:len(cwav)]
    r_own = score_clip(other_clip, cwav, ctrack, refined, fps=float(cinfo.fps))
    r_late = score_clip(other_clip, late, ctrack, refined, fps=float(cinfo.fps), face=r_own.face)
    assert abs(r_own.offset_frames) <= 1
    voiced = r_own.voiced & r_own.valid
    assert r_own.low[voiced].mean() + 0.5 <= r_late.low[voiced].mean()


def test_the_refits_adam_is_torchs_bit_for_bit():
    """refine.Adam replaces torch.optim.Adam (whose construction imports sympy): the same weights after every step."""
    import torch

    def trained(make_optimizer):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
        opt = make_optimizer(net.parameters())
        g = torch.Generator().manual_seed(1)
        history = []
        for _ in range(40):
            x = torch.randn(32, 8, generator=g)
            loss = ((net(x) - x[:, :4]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append([p.detach().clone() for p in net.parameters()])
        return history

    ours = trained(lambda params: refine.Adam(params, lr=3e-3))
    theirs = trained(lambda params: torch.optim.Adam(params, lr=3e-3))
    assert all(torch.equal(a, b) for step_a, step_b in zip(ours, theirs) for a, b in zip(step_a, step_b))
    assert not torch.equal(ours[0][0], ours[-1][0])              # it trained
