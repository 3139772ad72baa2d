"""End-to-end dub jobs through core.pipeline and the CLI, on real GRID clips."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from core import media
from core.engines.wav2lip import Wav2LipOptions
from core.errors import CancelledError, NoFaceError
from core.pipeline import DubSettings, run_dub
from core.render.source import SourceFrames
from core.progress import CancelToken
from data_paths import GRID_S1, ROOT, heldout_names

SAMPLES = ROOT / "resources" / "samples"
PY = sys.executable
VOICE = SAMPLES / "voice_sample.wav"
VIDEO = SAMPLES / "grid_s1_sample.mp4"


def ffmpeg(*args):
    subprocess.run([media.ffmpeg_path(), "-v", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def track_cache(private_cache):
    """The run's shared track cache (the sample clip is tracked once for every file that dubs it)."""
    return str(private_cache / "tracks")


def run_cli(*args, timeout=300):
    env = dict(os.environ)
    return subprocess.run([PY, str(ROOT / "main.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(ROOT))


def decode_all(path):
    return np.stack(list(media.iter_frames(str(path))))


# ---------------------------------------------------------------- bad input: one line, specific exit code

@pytest.mark.parametrize("case", ["missing_video", "output_is_input", "output_dir_missing", "empty_file",
                                  "audio_as_video", "video_without_audio_as_voice", "garbage"])
def test_cli_bad_input_one_line_no_traceback(case, tmp_path):
    out = tmp_path / "out.mp4"
    video, voice, expect = VIDEO, VOICE, 4
    if case == "missing_video":
        video = tmp_path / "nope.mp4"
    elif case == "output_is_input":
        out, expect = VIDEO, 5
    elif case == "output_dir_missing":
        out, expect = tmp_path / "no" / "such" / "dir" / "o.mp4", 5
    elif case == "empty_file":
        video = tmp_path / "empty.mp4"
        video.write_bytes(b"")
    elif case == "audio_as_video":
        video = VOICE
    elif case == "video_without_audio_as_voice":
        voice = tmp_path / "silent_video.mp4"
        ffmpeg("-i", VIDEO, "-an", "-c:v", "copy", voice)
    elif case == "garbage":
        video = tmp_path / "garbage.mp4"
        video.write_bytes(os.urandom(5000))
    r = run_cli("dub", "--video", video, "--audio", voice, "-o", out, "--quiet")
    assert r.returncode == expect, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    if case != "output_is_input":
        assert not out.exists()


def test_no_face_anywhere_is_a_clear_error(tmp_path, track_cache):
    clip = tmp_path / "bars.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=1", "-f", "lavfi", "-i",
           "sine=frequency=300:duration=1", "-shortest", "-c:v", "libx264", "-c:a", "aac", clip)
    out = tmp_path / "o.mp4"
    with pytest.raises(NoFaceError):
        run_dub(DubSettings(video=str(clip), audio=str(VOICE), output=str(out), track_cache_dir=track_cache))
    assert not out.exists()


# ---------------------------------------------------------------- the Wav2Lip engine with an official-format file

def test_wav2lip_dub_keeps_format_and_passes_faceless_frames(tmp_path, w2l_checkpoint, track_cache):
    # A clip whose frames 20-29 show no face (black), so they must come out untouched.
    src = GRID_S1 / "video" / (heldout_names()[3] + ".mp4")
    clip = tmp_path / "gap.mp4"
    ffmpeg("-i", src, "-vf", "drawbox=enable='between(n,20,29)':x=0:y=0:w=iw:h=ih:color=black:t=fill",
           "-c:v", "libx264", "-crf", "12", "-c:a", "copy", clip)
    out = tmp_path / "dub.mp4"
    res = run_dub(DubSettings(video=str(clip), audio=str(VOICE), output=str(out), engine="wav2lip",
                              engine_options={"wav2lip": Wav2LipOptions(checkpoint=str(w2l_checkpoint))},
                              track_cache_dir=track_cache, frame_range=(0, 40)))   # the generator: ~0.1 s a frame
    info_in, info_out = media.probe(str(clip)), media.probe(str(out))
    assert (info_out.width, info_out.height) == (info_in.width, info_in.height)
    assert abs(info_out.fps - info_in.fps) < 1e-6
    assert info_out.num_frames == res.num_frames == 40
    assert info_out.has_audio
    assert res.faces_found == 30
    a, b = decode_all(clip)[:40].astype(np.int16), decode_all(out).astype(np.int16)
    faceless = np.abs(a[20:30] - b[20:30]).mean()
    dubbed = np.abs(a[:20] - b[:20]).mean()
    assert faceless < 1.5, faceless           # passed through (up to re-encoding)
    assert dubbed > faceless + 0.5, dubbed    # the random generator visibly changed the face region


def test_cli_dub_wav2lip_json_and_report(tmp_path, w2l_checkpoint):
    """In this process (tests/cli_runner.py: the scorers load once per session); the bad-input tests above run
    main.py itself."""
    from cli_runner import run_cli as run_cli_here

    out, rep = tmp_path / "d.mp4", tmp_path / "per_frame.csv"
    rc, stdout, stderr = run_cli_here("dub", "--video", VIDEO, "--audio", VOICE, "-o", out, "--engine", "wav2lip",
                                      "--checkpoint", w2l_checkpoint, "--report", rep, "--json", "--quiet",
                                      "--range", "10", "40")
    assert rc == 0, stderr
    summary = json.loads(stdout)
    assert summary["num_frames"] == 30
    assert {"lse_d", "lse_c", "offset_frames", "per_frame"} <= set(summary) and summary["performer_offset"] is None
    assert len(summary["per_frame"]) == 30
    assert media.probe(str(out)).num_frames == 30
    rows = rep.read_text().strip().splitlines()
    assert rows[0].startswith("frame,") and len(rows) == 31


def test_wav2lip_missing_checkpoint_message(tmp_path):
    r = run_cli("dub", "--video", VIDEO, "--audio", VOICE, "-o", tmp_path / "o.mp4", "--engine", "wav2lip",
                "--models-dir", tmp_path, "--quiet")
    assert r.returncode == 7, r.stderr
    assert "wav2lip.pth" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------- cancel, atomic output, lengths

def test_cancel_midway_leaves_no_partial_and_keeps_existing(tmp_path, w2l_checkpoint, track_cache):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"previous good file")
    token = CancelToken()

    def progress(stage, done, total):
        if stage == "dub" and done >= 16:
            token.cancel()

    with pytest.raises(CancelledError):
        run_dub(DubSettings(video=str(VIDEO), audio=str(VOICE), output=str(out), engine="wav2lip",
                            engine_options={"wav2lip": Wav2LipOptions(checkpoint=str(w2l_checkpoint))}, track_cache_dir=track_cache), progress, token)
    assert out.read_bytes() == b"previous good file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]


def test_source_frames_pingpong_matches_random_access(tmp_path):
    from core import timing

    info = media.probe(str(VIDEO))
    sched, _ = timing.frame_schedule(info.num_frames, 200, timing.LengthPolicy.PINGPONG)
    sf = SourceFrames(str(VIDEO), info, sched)
    try:
        got = {o: (s, f) for o, s, f in sf.iterate(np.arange(60, 160))}
    finally:
        sf.close()
    frames = decode_all(VIDEO)
    for o in (60, 74, 75, 100, 149, 159):
        s, f = got[o]
        assert s == sched[o]
        assert np.array_equal(f, frames[s])


def test_source_frames_are_each_their_own_array_held_ones_too():
    """The export composites into the frames it is given (core.render.writer): a source frame shown again (hold),
    or past the decoder's last frame, comes as a copy, never the array already handed out."""
    info = media.probe(str(VIDEO))
    n = info.num_frames
    sched = np.array([0, 1, 1, 1, 2, n - 1, n - 1, n + 3, n + 5])
    sf = SourceFrames(str(VIDEO), info, sched)
    try:
        got = list(sf.iterate(np.arange(len(sched))))
    finally:
        sf.close()
    frames = decode_all(VIDEO)
    assert [s for _, s, _ in got] == sched.tolist()
    for k, (_, s, f) in enumerate(got):
        assert np.array_equal(f, frames[min(s, n - 1)])
        assert not any(np.shares_memory(f, g) for _, _, g in got[k + 1:])


def test_loop_policy_output_follows_voice_length(tmp_path, w2l_checkpoint, track_cache):
    # a 1 s clip and a 2 s voice: the random generator costs ~0.13 s a frame, so the looped half is kept short
    clip, voice = tmp_path / "one_second.mp4", tmp_path / "two_seconds.wav"
    ffmpeg("-i", VIDEO, "-t", "1", "-c:v", "libx264", "-crf", "12", "-c:a", "aac", clip)
    ffmpeg("-i", VOICE, "-t", "2", voice)
    out = tmp_path / "loop.mp4"
    res = run_dub(DubSettings(video=str(clip), audio=str(voice), output=str(out), engine="wav2lip",
                              engine_options={"wav2lip": Wav2LipOptions(checkpoint=str(w2l_checkpoint))},
                              length_policy="loop", track_cache_dir=track_cache))
    assert media.probe(str(clip)).num_frames == 25
    info = media.probe(str(out))
    assert info.num_frames == res.num_frames == 50
    assert abs(info.duration - 2.0) < 0.15
