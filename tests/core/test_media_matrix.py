"""Real-world media matrix (issue 9): every common video and voice kind goes through the core as a user's file
would (probe, streaming decode, load_audio, `dub` with its sync score through the command line's own entry point);
invalid files give their one-line error and exit code. No case may end in exit 70 (internal error).

Inputs are made once per session by tests/media_matrix.py from a held-out GRID s1 clip; dubs run in-process
(`core.cli.main`) so the model loading is paid once, and each (video, voice, policy) is dubbed at most once.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from core import audio, media
from cli_runner import run_cli
from core.cli import EXIT_INTERNAL
from media_matrix import (CLIP_SECONDS, LEADING_SILENCE_SECONDS, ROTATIONS, VIDEO_CASES, VOICE_CASES,
                          VOICE_SECONDS, WAV_CASES)

SR = audio.SAMPLE_RATE
BASE_VIDEO = "h264_mp4"
BASE_VOICE = "wav_pcm_16_16000_1ch"
MAX_AV_LAG_S = 0.010        # the output's sound against the voice it was given
_DUBS: dict = {}


def dub(tmp_path_factory, video, voice, policy="shortest"):
    """The JSON summary of `dub` (and its output path), each combination rendered once per session."""
    key = (str(video), str(voice), policy)
    if key not in _DUBS:
        out = tmp_path_factory.mktemp("dub") / "out.mp4"
        rc, stdout, stderr = run_cli("dub", "--video", video, "--audio", voice, "-o", out, "--length", policy,
                                     "--preset", "ultrafast", "--crf", "28", "--quiet", "--json")
        assert rc == 0, stderr
        _DUBS[key] = (json.loads(stdout), out)
    return _DUBS[key]


def lag_seconds(x: np.ndarray, ref: np.ndarray, max_lag_s: float = 0.2) -> float:
    """Delay of `x` against `ref` (positive: x is late), from the cross-correlation of their first 0.8 s of speech."""
    m = int(max_lag_s * SR)
    seg = ref[m:m + int(0.8 * SR)]
    assert np.abs(seg).max() > 0.05, "no speech to align on"      # the check must not pass on silence
    c = np.correlate(x[:seg.size + 2 * m], seg, "valid")
    return (int(np.argmax(c)) - m) / SR


def assert_valid_dub(summary, out, src_info, voice_wav, frames):
    """Right length, frame rate and size; the sound is the voice from its first sample; the result is scored."""
    info = media.probe(out)
    assert summary["num_frames"] == info.num_frames == frames
    assert info.fps_fraction == src_info.fps_fraction
    assert (info.width - src_info.width, info.height - src_info.height) in {(0, 0), (1, 0), (0, 1), (1, 1)}
    assert info.has_audio and abs(info.audio_duration - info.duration) < 0.03    # AAC frames of 21 ms
    sound = audio.load_audio(out)
    assert abs(lag_seconds(sound, voice_wav)) <= MAX_AV_LAG_S
    assert len(summary["per_frame"]) == frames and np.isfinite([summary["lse_d"], summary["lse_c"]]).all()


# ----------------------------------------------------------------------------------------------------- video
@pytest.mark.parametrize("case", VIDEO_CASES)
def test_video_probe_and_streaming_decode(matrix_media, case):
    base = media.probe(matrix_media.video(BASE_VIDEO))
    path = matrix_media.video(case)
    info = media.probe(path)
    frames = list(media.iter_frames(path, info))
    assert len(frames) == info.num_frames > 0
    # the in-process decoder (tracking, scoring, the render's source frames) gives the pipe's very frames
    in_process = list(media.iter_frames(path, info, backend="auto"))
    assert len(in_process) == len(frames) and all(np.array_equal(a, b) for a, b in zip(in_process, frames))
    assert all(f.shape == (info.height, info.width, 3) and f.dtype == np.uint8 for f in frames)
    assert info.has_audio == (case != "no_audio")
    assert abs(info.duration - CLIP_SECONDS) < 0.1
    if case.startswith("rot"):
        rot = int(case[3:])
        assert info.rotation == rot and (info.width, info.height) == (base.width, base.height)
        assert (info.coded_width, info.coded_height) == ((288, 360) if rot in (90, 270) else (360, 288))
        # decoded upright: the same picture as the unrotated clip (two encodes of one source)
        ref = next(media.iter_frames(matrix_media.video(BASE_VIDEO)))
        assert np.abs(frames[0].astype(int) - ref).mean() < 3.0
    elif case.startswith("fps"):
        expect = {"fps23976": 24000 / 1001, "fps2997": 30000 / 1001, "fps30": 30, "fps50": 50, "fps5994": 60000 / 1001}
        assert info.fps == pytest.approx(expect[case], rel=1e-6) and not info.is_vfr
    elif case == "vfr":
        assert info.is_vfr
    elif case == "odd_size":
        assert (info.width, info.height) == (361, 287)
    elif case != "mpeg2_mpg":   # MPEG-PS: the picture starts a frame late, the clip is 29 frames
        assert (info.width, info.height, info.fps_fraction, info.num_frames) == \
               (base.width, base.height, base.fps_fraction, base.num_frames)


@pytest.mark.parametrize("case", VIDEO_CASES)
def test_video_dubs_and_scores(matrix_media, tmp_path_factory, case):
    video, voice = matrix_media.video(case), matrix_media.voice(BASE_VOICE)
    src = media.probe(video)
    summary, out = dub(tmp_path_factory, video, voice)
    assert summary["faces_found"] >= src.num_frames - 1
    assert_valid_dub(summary, out, src, audio.load_audio(voice), src.num_frames)


def test_video_sound_that_starts_late_stays_in_sync(matrix_media):
    """Its sound starts 0.4 s after the first frame: loaded from time 0, silent until then, and in sync with
    the same clip whose sound starts with the picture (it used to be shifted 0.4 s early)."""
    late = audio.load_audio(matrix_media.video("late_audio"))
    ref = audio.load_audio(matrix_media.video(BASE_VIDEO))
    assert abs(len(late) - len(ref)) < 0.03 * SR
    assert np.abs(late[:int(0.35 * SR)]).max() < 1e-3
    tail = int(0.45 * SR)
    assert abs(lag_seconds(late[tail:], ref[tail:], 0.1)) <= MAX_AV_LAG_S


def test_video_own_sound_as_voice_keeps_sync(matrix_media, tmp_path_factory):
    """The late-audio clip dubbed with itself: the output's sound is the clip's, in place."""
    video = matrix_media.video("late_audio")
    summary, out = dub(tmp_path_factory, video, video)
    sound, own = audio.load_audio(out), audio.load_audio(video)
    tail = int(0.45 * SR)
    assert summary["num_frames"] == media.probe(video).num_frames
    assert abs(lag_seconds(sound[tail:], own[tail:], 0.1)) <= MAX_AV_LAG_S


# ----------------------------------------------------------------------------------------------------- voice
def _assert_same_voice(wav, ref, min_corr):
    assert wav.dtype == np.float32 and wav.ndim == 1 and wav.flags.writeable
    assert abs(len(wav) - VOICE_SECONDS * SR) <= 0.03 * SR
    assert np.abs(wav).max() <= 1.0
    lag = lag_seconds(wav, ref)
    assert abs(lag) <= MAX_AV_LAG_S
    n = min(len(wav), len(ref))
    assert np.corrcoef(wav[:n], ref[:n])[0, 1] > min_corr
    level_db = 20 * np.log10(np.sqrt(np.mean(wav[:n] ** 2) / np.mean(ref[:n] ** 2)))
    assert abs(level_db) < 1.0, level_db      # 5.1 dialogue (centre) used to come out 15.6 dB too quiet


@pytest.mark.parametrize("case", WAV_CASES)
def test_wav_voice_loads(matrix_media, case):
    """16/24-bit and float WAV at 8-96 kHz, mono, stereo and 5.1 (dialogue in the centre): 16 kHz mono, the
    same voice (8 kHz keeps only the band below 4 kHz)."""
    _assert_same_voice(audio.load_audio(matrix_media.voice(case)), matrix_media.reference16k(),
                       0.9 if "_8000_" in case else 0.995)


@pytest.mark.parametrize("case", [c for c in VOICE_CASES if c != "leading_silence_wav"])
def test_coded_voice_loads(matrix_media, case):
    _assert_same_voice(audio.load_audio(matrix_media.voice(case)), matrix_media.reference16k(), 0.98)


DUBBED_VOICES = VOICE_CASES + ("wav_pcm_24_48000_2ch", "wav_float_96000_6ch", "wav_pcm_16_8000_1ch")


@pytest.mark.parametrize("case", DUBBED_VOICES)
def test_voice_dubs_and_scores(matrix_media, tmp_path_factory, case):
    video, voice = matrix_media.video(BASE_VIDEO), matrix_media.voice(case)
    src = media.probe(video)
    summary, out = dub(tmp_path_factory, video, voice)
    wav = audio.load_audio(voice)
    assert_valid_dub(summary, out, src, wav, src.num_frames)
    if case == "leading_silence_wav":   # the silence is kept: the speech starts 0.5 s into the output
        sound = audio.load_audio(out)
        assert np.abs(sound[:int((LEADING_SILENCE_SECONDS - 0.05) * SR)]).max() < 1e-3
        assert np.abs(sound[int(LEADING_SILENCE_SECONDS * SR):]).max() > 0.05


# --------------------------------------------------------------------------------------------- length policy
LONG_VOICE_S, SHORT_VOICE_S = 3.0, 0.6     # much longer / shorter than the 1.2 s video


# A voice shorter than the video: loop, pingpong and hold then show the video's first frames for the voice's length,
# the very schedule of "shortest" (tests/core/test_timing.py): not dubbed again.
@pytest.mark.parametrize("policy, voice_s", [(p, LONG_VOICE_S) for p in ("shortest", "trim", "loop", "pingpong", "hold")]
                         + [("shortest", SHORT_VOICE_S), ("trim", SHORT_VOICE_S)])
def test_length_policies(matrix_media, tmp_path_factory, policy, voice_s):
    video = matrix_media.video(BASE_VIDEO)
    voice = matrix_media.voice_of_length(voice_s)
    src = media.probe(video)
    voice_frames = int(round(voice_s * src.fps))
    # shortest: the shorter; trim: the video's length; loop/pingpong/hold: the voice's length
    expect = {"shortest": min(src.num_frames, voice_frames), "trim": src.num_frames}.get(policy, voice_frames)
    summary, out = dub(tmp_path_factory, video, voice, policy)
    assert_valid_dub(summary, out, src, audio.load_audio(voice), expect)
    if voice_s < CLIP_SECONDS and policy == "trim":     # the voice is padded with silence to the video's end
        sound = audio.load_audio(out)
        assert np.abs(sound[int((voice_s + 0.05) * SR):]).max() < 1e-3


# --------------------------------------------------------------------------------------------- invalid input
def _invalid(matrix_media, case):
    video, voice = matrix_media.video(BASE_VIDEO), matrix_media.voice(BASE_VOICE)
    return {
        "voice_is_a_video_without_sound": (video, matrix_media.video("no_audio"), 4, "no audio"),
        "voice_is_text_named_mp3": (video, matrix_media.text_as_mp3(), 4, "not a readable"),
        "video_is_a_voice": (voice, voice, 4, "no video"),
        "video_is_truncated_mp4": (matrix_media.truncated_video(), voice, 4, "not a readable"),
    }[case]


@pytest.mark.parametrize("case", ["voice_is_a_video_without_sound", "voice_is_text_named_mp3", "video_is_a_voice",
                                  "video_is_truncated_mp4"])
def test_invalid_media_one_line_error(matrix_media, tmp_path, case):
    video, voice, code, words = _invalid(matrix_media, case)
    out = tmp_path / "out.mp4"
    rc, stdout, stderr = run_cli("dub", "--video", video, "--audio", voice, "-o", out, "--quiet")
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert rc == code != EXIT_INTERNAL, stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0].lower(), stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_score_an_audio_file_as_video_is_a_media_error(matrix_media):
    rc, _, stderr = run_cli("score", "--video", matrix_media.voice("m4a_16k_mono"), "--quiet")
    assert rc == 4 and stderr.startswith("error:") and "no video" in stderr, stderr


@pytest.mark.parametrize("case", ["no_audio", "rot90", "vfr", "hevc10_mkv"])
def test_score_command_on_matrix_videos(matrix_media, case):
    """`score --video` with the video's own sound (a voice for the silent one)."""
    video = matrix_media.video(case)
    extra = ["--audio", matrix_media.voice("m4a_16k_mono")] if case == "no_audio" else []
    rc, stdout, stderr = run_cli("score", "--video", video, *extra, "--json", "--quiet")
    assert rc == 0, stderr
    rep = json.loads(stdout)
    assert len(rep["per_frame"]) == media.probe(video).num_frames


def test_matrix_covers_the_issue():
    """The counts reported in the issue note: keep them honest."""
    assert len(VIDEO_CASES) == 22 and len(WAV_CASES) == 54 and len(VOICE_CASES) == 8
    assert set(ROTATIONS) == {90, 180, 270}
