"""Per-clip adaptation (core.adapt): the ridge refit on synthetic data, and on a real clip of GRID s4 made of
four of its evaluation clips (never trained on), measured on *other* s4 evaluation clips' voices against their
real mouths; a silent video falls back with a clear message; the second run is a cache hit."""
from __future__ import annotations

import subprocess
from types import SimpleNamespace

import numpy as np
import pytest

from core import adapt
from core import mouth_shape as ms
from data_paths import SHARED

S4 = SHARED / "data" / "grid_s4" / "video"
S4_EVAL = sorted(p.stem for p in S4.glob("*.mp4"))[1::2]   # tools/grid_splits.py: never trained on


def test_fit_head_recovers_a_speaker_who_articulates_twice_as_much():
    rng = np.random.default_rng(0)
    base = ms.MouthHead(weight=rng.normal(0, 0.1, (6, 16)), bias=np.zeros(6))
    hidden = rng.normal(0, 1, (400, 16))
    target = 2.0 * base.apply(hidden) + 0.3
    head = adapt.fit_head(base, hidden, target, ridge=0.01)
    pred = head.apply(hidden)
    assert np.std(pred) / np.std(base.apply(hidden)) == pytest.approx(2.0, rel=0.05)
    assert np.abs(pred - target).mean() < 0.05 * np.abs(target).mean()
    # a strong pull keeps the shipped layer
    kept = adapt.fit_head(base, hidden, target, ridge=1e6)
    np.testing.assert_allclose(kept.weight, base.weight, atol=1e-4)


def _concat(names, out):
    lst = out.with_suffix(".txt")
    lst.write_text("".join(f"file '{S4 / (n + '.mp4')}'\n" for n in names))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst), "-c:v", "libx264",
                    "-crf", "20", "-preset", "veryfast", "-c:a", "aac", str(out)], check=True)
    return out


def _real_mouth(path):
    from core.faces.track import track_video

    tr = track_video(path).primary()
    canon, _ = ms.normalize(tr.landmarks)
    valid = tr.present & np.isfinite(canon.reshape(len(canon), -1)).all(axis=1)
    neutral = ms.clip_neutral(canon, valid)
    return ms.shape_opening(canon[:, ms.SHAPE_POINTS]), neutral, valid


@pytest.fixture(scope="module")
def actor_clip(tmp_path_factory):
    """Four s4 evaluation clips joined (12 s), their sound turned into a real-recording proxy (room reverb, EQ,
    noise: tools.proxies.degrade_voice), as a dubbing job's own clip would sound."""
    import soundfile as sf

    from core.audio import load_audio
    from tools.proxies import degrade_voice

    d = tmp_path_factory.mktemp("adapt")
    joined = _concat(S4_EVAL[:4], d / "joined.mp4")
    sf.write(str(d / "own.wav"), degrade_voice(load_audio(joined), seed=1), 16000)
    out = d / "actor.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(joined), "-i", str(d / "own.wav"), "-map", "0:v",
                    "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def first_adaptation(actor_clip, tmp_path_factory):
    """The actor clip adapted once for the module, into an empty cache folder (a cache miss), counting how often
    PocketSphinx decodes a voice meanwhile: the adaptation that test_adaptation_on_a_real_clip_improves_other_sentences
    measures and the first run of test_second_run_is_a_cache_hit (one refit instead of two)."""
    from core import media, phones
    from core.faces.track import track_video

    info = media.probe(actor_clip)
    track = track_video(actor_clip).primary()
    cache = tmp_path_factory.mktemp("adapt_cache")
    decoded = []
    real = phones._decode
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(phones, "_decode", lambda x: decoded.append(len(x)) or real(x))
        mp.setattr(phones, "_DECODED", type(phones._DECODED)())
        result = adapt.adapt_clip(str(actor_clip), info, track, cache_dir=cache)
    return SimpleNamespace(result=result, decoded=decoded, cache=cache, info=info, track=track)


def test_adaptation_on_a_real_clip_improves_other_sentences(first_adaptation):
    """Adapt on the actor clip; predict four *other* s4 evaluation sentences from their (equally degraded)
    voices and compare with their real mouths: the general model under-articulates such recordings, the
    adapted one moves the mouth about as much as this speaker does, without following it less well."""
    from core.audio import load_audio
    from tools.proxies import degrade_voice

    result = first_adaptation.result
    assert result.adapted, result.message
    assert abs(result.own_offset) <= 1 and result.fit_r_after >= result.fit_r_before
    model = ms.AudioToMouth.load()
    before, after = [], []
    for i, name in enumerate(S4_EVAL[4:8]):
        path = S4 / f"{name}.mp4"
        real, neutral, valid = _real_mouth(path)
        wav = degrade_voice(load_audio(path), seed=10 + i)
        for head, acc in ((None, before), (result.head, after)):
            pred = ms.shape_opening(neutral[None] + model.predict(wav, 25.0, len(real), head=head))
            acc.append((np.corrcoef(pred[valid], real[valid])[0, 1], np.std(pred[valid]) / np.std(real[valid])))
    r0, a0 = np.mean(before, axis=0)
    r1, a1 = np.mean(after, axis=0)
    assert a0 < 0.75 and a1 > a0 + 0.15 and a1 <= 1.2, (a0, a1)
    assert r1 >= r0 - 0.05, (r0, r1)


def test_second_run_is_a_cache_hit(actor_clip, first_adaptation):
    """... and the clip's own voice is decoded by PocketSphinx once (its offset search and the refit share it)."""
    first, decoded, cache = first_adaptation.result, first_adaptation.decoded, first_adaptation.cache
    assert first.adapted and len(decoded) == 1, decoded
    second = adapt.adapt_clip(str(actor_clip), first_adaptation.info, first_adaptation.track, cache_dir=cache)
    assert first.cache == "miss" and second.cache == "hit"
    np.testing.assert_array_equal(first.head.weight, second.head.weight)
    assert second.own_offset == first.own_offset and second.message == first.message
    assert len(list(cache.glob("*.npz"))) == 1


def test_a_long_clip_is_learnt_from_the_offset_witness_span(actor_clip, first_adaptation, tmp_path, monkeypatch):
    """The mouth refit learns from the span the offset's mouth witness read (here its first 6 s of 12), whose phones
    PocketSphinx decodes once, only that span."""
    from core import phones
    from core.sync import av_offset

    decoded = []
    real = phones._decode
    monkeypatch.setattr(phones, "_decode", lambda x: decoded.append(len(x)) or real(x))
    monkeypatch.setattr(phones, "_DECODED", type(phones._DECODED)())
    monkeypatch.setattr(av_offset, "WITNESS_SECONDS", 6.0)
    short = adapt.adapt_clip(str(actor_clip), first_adaptation.info, first_adaptation.track,
                             cache_dir=tmp_path)
    assert short.cache == "miss" and short.adapted, short.message
    assert decoded == [6 * 16000]
    assert short.frames_used <= 6 * 25 < first_adaptation.result.frames_used
    assert short.own_offset == first_adaptation.result.own_offset


def test_silent_video_falls_back_and_says_so(tmp_path):
    from core import media
    from core.faces.track import track_video

    mute = tmp_path / "mute.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(S4 / f"{S4_EVAL[0]}.mp4"), "-an", "-c:v", "copy",
                    str(mute)], check=True)
    info = media.probe(mute)
    result = adapt.adapt_clip(str(mute), info, track_video(mute).primary(), cache_dir=tmp_path)
    assert not result.adapted and result.head is None
    assert "no sound of its own" in result.message and "general mouth model" in result.message


def test_too_little_speech_is_not_adapted():
    """A single 3 s sentence is not enough to learn a speaker from (FINDINGS: it did not help)."""
    from core.audio import load_audio, voice_activity
    from core.faces.track import track_video

    path = S4 / f"{S4_EVAL[0]}.mp4"
    tr = track_video(path).primary()
    wav = load_audio(path)
    result = adapt.adapt_mouth(ms.AudioToMouth.load(), wav, 25.0, tr.landmarks, tr.present,
                               voice_activity(wav, 25.0, len(tr.present)))
    assert not result.adapted and "needed" in result.message


def test_a_foreign_soundtrack_is_not_learnt_from(actor_clip, tmp_path):
    """A clip whose sound is not its actor's voice (here another speaker's sentence) must not train the model.
    Its picture is the actor clip's (the four s4 sentences joined), stream-copied: the same frames, so the actor
    clip's track is this clip's."""
    from core import media
    from core.faces.track import track_video

    dubbed = tmp_path / "voiceover.mp4"
    other = SHARED / "data" / "grid_s1" / "video" / "bbaf2n.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(actor_clip), "-stream_loop", "-1", "-i", str(other),
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(dubbed)], check=True)
    info = media.probe(dubbed)
    assert info.num_frames == media.probe(actor_clip).num_frames
    result = adapt.adapt_clip(str(dubbed), info, track_video(actor_clip).primary(), cache_dir=tmp_path)
    assert not result.adapted and "does not follow its lips" in result.message, result.message
