"""Damaged media never passes silently (issue 21): the bundled sample damaged the ways files arrive damaged (cut
off at 50/90/99 %, 50 random bytes flipped, 4 KB zeroed in the middle) is refused by `dub`, `score` and `batch`
with exit code 4 and the damage named, or dubbed with --allow-damaged and its damaged frames listed; a clean file
of every kind of the media matrix reports no damage. The fuzz corpus is in test_damage_fuzz.py."""
from __future__ import annotations

import csv
import json
import random
from fractions import Fraction

import numpy as np
import pytest

from cli_runner import run_cli
from core import media
from core.media_damage import (DamageReport, DamagedMediaError, build_scan_args, check_damage, frame_runs,
                               output_damage, parse_scan, runs_text, scan_damage)
from data_paths import SAMPLES
from media_matrix import VIDEO_CASES, VOICE_CASES

SAMPLE = SAMPLES / "grid_s1_sample.mp4"
VOICE = SAMPLES / "voice_sample.wav"


def damaged_copies(folder):
    """The issue's five copies of the bundled sample (seeded)."""
    data = SAMPLE.read_bytes()
    n = len(data)
    out = {}
    for pct in (50, 90, 99):
        out[f"cut{pct}"] = data[:n * pct // 100]
    rng = random.Random(21)
    flipped = bytearray(data)
    for _ in range(50):
        i = rng.randrange(n)
        flipped[i] ^= 1 << rng.randrange(8)
    out["flip50"] = bytes(flipped)
    zeroed = bytearray(data)
    zeroed[n // 2:n // 2 + 4096] = bytes(4096)
    out["zero4k"] = bytes(zeroed)
    paths = {}
    for name, blob in out.items():
        p = folder / f"{name}.mp4"
        p.write_bytes(blob)
        paths[name] = p
    return paths


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    return damaged_copies(tmp_path_factory.mktemp("damaged"))


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in stderr, stderr
    return lines[0]


# ------------------------------------------------------------------------------------------------ pure parts
def test_scan_args_exact():
    assert build_scan_args("ffmpeg", "in.mp4", 0) == [
        "ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info", "-debug_ts", "-threads", "1",
        "-err_detect", "crccheck+buffer", "-skip_loop_filter", "all", "-copyts", "-i", "in.mp4", "-map", "0:0", "-max_error_rate", "1", "-f", "null", "-"]


def _info(**kw):
    base = dict(path="x.mp4", has_video=True, has_audio=True, width=4, height=4, coded_width=4, coded_height=4,
                fps=25.0, fps_fraction=Fraction(25), num_frames=6, duration=0.24, rotation=0, sar="1:1",
                pix_fmt="yuv420p", video_codec="h264", is_vfr=False, audio_sample_rate=16000, audio_channels=1,
                audio_codec="aac", audio_duration=0.24, video_stream_index=0, audio_stream_index=1,
                format_name="mov,mp4,m4a,3gp,3g2,mj2")
    base.update(kw)
    return media.MediaInfo(**base)


def _demux(kind, t, d=0.04):
    return (f"[info] demuxer -> ist_index:0 type:{kind} next_dts:0 next_dts_time:0 next_pts:0 next_pts_time:0 "
            f"pkt_pts:1 pkt_pts_time:{t} pkt_dts:1 pkt_dts_time:{t} duration:1 duration_time:{d} off:0 off_time:0")


def _decoded(t):
    return (f"[info] decoder -> ist_index:0 type:video frame_pts:1 frame_pts_time:{t} best_effort_ts:1 "
            f"best_effort_ts_time:{t} keyframe:0 frame_type:2 time_base:1/12800")


def test_parse_video_scan_attributes_errors_to_the_packet_being_decoded():
    """Packets 0..5 at 25 fps; packet 2 fails to decode (two errors, one repeated), frame 4 never comes out;
    demuxer and parser messages count as errors but name no frame."""
    lines = [_demux("video", 0.0), _decoded(0.0), _demux("video", 0.04), _decoded(0.04),
             "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x1] [error] stream 0, offset 0x10: partial file",
             _demux("video", 0.08), "[h264 @ 0x2] [error] error while decoding MB 3 4, bytestream 12",
             "[h264 @ 0x2] [error] error while decoding MB 3 4, bytestream 12",
             "[h264 @ 0x2] [error]     Last message repeated 1 times",
             "[h264 @ 0x2] [info] concealing 10 DC, 10 AC, 10 MV errors in P frame", _decoded(0.08),
             _demux("video", 0.12), _decoded(0.12), _demux("video", 0.2), _decoded(0.2)]
    rep = parse_scan("\n".join(lines), "x.mp4", _info(), "video")
    assert rep.damaged and rep.errors == 3 and rep.demux_errors == 1 and rep.decoded == 5
    assert rep.bad_frames == (2,) and rep.missing_frames == (4,)
    assert rep.describe() == ("video damaged: frame 4 of 6 could not be decoded (0.16–0.20 s); "
                              "frame 2 of 6 was decoded with errors (0.08–0.12 s)")
    assert rep.frame_mask().tolist() == [False, False, True, False, True, False]


def test_parse_clean_and_repeated_frames():
    clean = [x for t in (0.0, 0.04, 0.08, 0.12, 0.16, 0.2) for x in (_demux("video", t), _decoded(t))]
    rep = parse_scan("\n".join(clean), "x.mp4", _info(), "video")
    assert not rep.damaged and rep.frames == () and rep.describe() == "video: no damage found"
    twice = clean[:-1] + [_decoded(0.16)]            # the last frame replaced by a second copy of frame 4
    rep = parse_scan("\n".join(twice), "x.mp4", _info(), "video")
    assert rep.missing_frames == (4, 5)


def test_parse_other_ffmpeg_wordings_never_call_a_clean_file_damaged():
    """ffmpeg 7 prefixes its -debug_ts lines with the stream's context and words the decoder line without
    `frame_`; an ffmpeg whose wording is not understood at all (no decoded frame named, no error) is judged by
    the container's packets instead of calling every frame missing."""
    times = (0.0, 0.04, 0.08, 0.12, 0.16, 0.2)
    ff7 = [f"[vist#0:0/h264 @ 0x1] [info] decoder -> pts:1 pts_time:{t} pkt_dts:1 pkt_dts_time:{t} duration:1 "
           f"duration_time:0.04 keyframe:0 frame_type:2 time_base:1/12800" for t in times]
    lines = [x for pair in zip([_demux("video", t) for t in times], ff7) for x in pair]
    rep = parse_scan("\n".join(lines), "x.mp4", _info(), "video")
    assert not rep.damaged and rep.decoded == 6
    unknown = [_demux("video", t) for t in times] + ["[info] decodeur -> something else"]
    assert not parse_scan("\n".join(unknown), "x.mp4", _info(), "video").damaged
    cut = [_demux("video", t) for t in times[:3]]                      # ... but a cut still shows
    assert parse_scan("\n".join(cut), "x.mp4", _info(), "video").missing_frames == (3, 4, 5)


def test_parse_audio_scan_gaps_errors_and_early_end():
    lines = [_demux("audio", 0.0, 0.02), _demux("audio", 0.02, 0.02),
             "[aac @ 0x3] [error] channel element 0.0 is not allocated", _demux("audio", 0.1, 0.02)]
    rep = parse_scan("\n".join(lines), "v.m4a", _info(audio_duration=0.3), "audio")
    # packet 1 failed (0.02-0.04), nothing came for 0.04-0.10, and the sound ends at 0.12 instead of 0.30
    assert rep.audio_ranges == ((0.02, 0.1), (0.12, 0.3))
    assert rep.describe() == "sound damaged: 0.02–0.10 s, 0.12–0.30 s could not be decoded"


def test_runs_and_messages():
    assert frame_runs([9, 3, 4, 5]) == [(3, 5), (9, 9)]
    assert runs_text(range(31, 75)) == "31–74"
    assert runs_text([1, 3, 5, 7, 9, 11], limit=4) == "1, 3, 5, 7 and 2 more"
    rep = DamageReport(path="clip.mp4", kind="video", num_frames=75, fps=25.0, missing_frames=tuple(range(31, 75)))
    assert rep.describe() == "video damaged: frames 31–74 of 75 could not be decoded (1.24–3.00 s)"
    with pytest.raises(DamagedMediaError) as e:
        check_damage([rep, DamageReport(path="v.wav", kind="audio")], allow=False)
    assert e.value.exit_code == 4 and "\n" not in str(e.value) and str(e.value).startswith(
        "clip.mp4: video damaged: frames 31–74 of 75 could not be decoded (1.24–3.00 s). The file is damaged")
    assert check_damage([rep], allow=True) == [
        "Warning: clip.mp4: video damaged: frames 31–74 of 75 could not be decoded (1.24–3.00 s) (dubbed as it is)."]
    assert check_damage([DamageReport(path="c.mp4", kind="video")], allow=False) == []


def test_output_damage_follows_the_schedule_range_and_voice_offset():
    video = DamageReport(path="c.mp4", kind="video", num_frames=10, fps=25.0, missing_frames=(8, 9))
    voice = DamageReport(path="v.wav", kind="audio", audio_ranges=((0.0, 0.05),))
    loop = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert output_damage(video, None, loop, 25.0, np.arange(20)) == [8, 9, 18, 19]
    assert output_damage(video, None, loop, 25.0, np.arange(5, 12)) == [3, 4]      # frames of the output file
    assert output_damage(None, voice, loop, 25.0, np.arange(20)) == [0, 1]
    assert output_damage(None, voice, loop, 25.0, np.arange(20), voice_offset=3) == [3, 4]
    assert output_damage(None, None, loop, 25.0, np.arange(20)) == []


# ------------------------------------------------------------------------------------ the five copies
EXPECT_MISSING_FROM = {"cut50": 32, "cut90": 65}


@pytest.mark.parametrize("name", ["cut50", "cut90", "cut99", "flip50", "zero4k"])
def test_damaged_sample_is_found(damaged, name):
    info = media.probe(damaged[name])
    rep = scan_damage(damaged[name], info, "video")
    assert rep.damaged and rep.frames, rep
    if name in EXPECT_MISSING_FROM:      # everything from the cut on is missing: the picture froze there before
        assert rep.missing_frames == tuple(range(EXPECT_MISSING_FROM[name], 75))
    assert rep.describe().startswith("video damaged: ")


def test_hole_inside_a_clip_holds_the_picture_and_keeps_later_frames_in_time(damaged):
    """4 KB zeroed in the middle lose frames 32-34: once the scan has found the hole, every decode of the file
    holds frame 31 over it and frame i after it is the source's frame i (before: frame i+3, the last three
    frames repeated, the lips 120 ms ahead of the voice)."""
    path = damaged["zero4k"]
    info = media.probe(path)
    clean = list(media.iter_frames(SAMPLE))
    media._ON_GRID.discard(media._grid_key(path))      # as before any scan (another test may have scanned it)
    shifted = list(media.iter_frames(path, info))
    rep = scan_damage(path, info, "video", use_cache=False)
    assert rep.missing_frames == (32, 33, 34)
    frames = list(media.iter_frames(path, info))
    assert len(frames) == len(shifted) == 75
    assert all(np.array_equal(frames[i], frames[31]) for i in (32, 33, 34))

    def diff(a, b):
        return float(np.abs(a.astype(np.int16) - b).mean())

    for i in (45, 60):      # after the hole (concealed: not bit-exact), closest to its own time, no longer to i+3
        assert diff(frames[i], clean[i]) < diff(frames[i], clean[i + 3])
        assert diff(shifted[i], clean[i + 3]) < diff(shifted[i], clean[i])
    with media.FrameReader(path) as reader:             # the window's random access agrees
        assert all(np.array_equal(reader.read(i), frames[i]) for i in (31, 33, 40, 74))


def test_clean_sample_and_voice_report_no_damage():
    info = media.probe(SAMPLE)
    for kind in ("video", "audio"):
        assert not scan_damage(SAMPLE, info, kind, use_cache=False).damaged
    assert not scan_damage(VOICE, media.probe(VOICE), "audio").damaged


@pytest.mark.parametrize("name", ["cut50", "cut90", "cut99", "flip50", "zero4k"])
def test_dub_refuses_a_damaged_video_with_the_damage_named(damaged, tmp_path, name):
    out = tmp_path / "dub.mp4"
    rc, stdout, stderr = run_cli("dub", "--video", damaged[name], "--audio", VOICE, "-o", out, "--quiet")
    assert rc == 4, stderr
    line = one_error_line(stderr)
    assert "video damaged: " in line and "--allow-damaged" in line and str(damaged[name]) in line
    assert list(tmp_path.iterdir()) == []


def test_dub_refuses_a_damaged_voice(damaged, tmp_path):
    out = tmp_path / "dub.mp4"
    rc, _, stderr = run_cli("dub", "--video", SAMPLE, "--audio", damaged["cut50"], "-o", out, "--quiet")
    assert rc == 4 and "sound damaged: " in one_error_line(stderr)
    assert list(tmp_path.iterdir()) == []


def test_dub_refuses_a_damaged_performer_video(damaged, tmp_path):
    out = tmp_path / "dub.mp4"
    rc, _, stderr = run_cli("dub", "--video", SAMPLE, "--driver", damaged["zero4k"], "--audio", SAMPLE, "-o", out,
                            "--quiet")
    line = one_error_line(stderr)
    assert rc == 4 and "video damaged: frames 32–34 of 75" in line and str(damaged["zero4k"]) in line
    assert list(tmp_path.iterdir()) == []


def test_damaged_performer_frames_are_not_followed(damaged):
    """--allow-damaged with a performer video that lost frames 32-34 (and has a few concealed after them): a held or
    concealed picture is no performance, so the voice drives those frames; the warning and the result's damage list say so."""
    from core.pipeline import DubSettings, prepare_clip

    settings = DubSettings(video=str(SAMPLE), audio=str(SAMPLE), driver=str(damaged["zero4k"]), adapt=False)
    with pytest.raises(DamagedMediaError, match="frames 32–34"):
        prepare_clip(settings)
    settings.allow_damaged = True
    prep = prepare_clip(settings)
    assert prep.driver_damage.missing_frames == (32, 33, 34) and not prep.video_damage.damaged
    assert [r.path for r in prep.damage_reports()] == [str(damaged["zero4k"])]
    assert prep.damaged_frames(prep.out_indices) == []           # the output's own picture and voice are whole
    motion = prep.ctx.performer
    bad = np.asarray(prep.driver_damage.frames)                   # 32-34 missing, and a few decoded with errors
    assert set(range(32, 35)) <= set(bad.tolist()) and bad.max() < 45
    shown = bad - motion.offset_frames                             # output frames showing those performer frames
    assert not motion.trusted[shown].any() and motion.trusted[:25].any()
    assert any(f"{bad.size} damaged frames of" in m and "not followed" in m for m in prep.messages), prep.messages
    assert any(m.startswith("Warning: ") and "video damaged: frames 32–34" in m for m in prep.messages)


def test_the_damage_scan_runs_while_the_face_is_tracked(monkeypatch, tmp_path):
    """The video's damage scan and the tracker run at once: the scan waits until tracking has started (it would wait
    in vain, and the test fail, if the scan still ran before the tracker)."""
    import threading

    import core.faces.track as track_mod
    import core.media_damage as damage_mod
    from core.pipeline import DubSettings, prepare_clip

    tracking = threading.Event()
    scan, track = damage_mod.scan_damage, track_mod.track_video
    waited = []

    def scan_after_tracking_began(path, *a, **k):
        waited.append(tracking.wait(timeout=20))
        return scan(path, *a, use_cache=False, **{key: v for key, v in k.items() if key != "use_cache"})

    def tracker(*a, **k):
        tracking.set()
        return track(*a, **k)

    monkeypatch.setattr(damage_mod, "scan_damage", scan_after_tracking_began)
    monkeypatch.setattr(track_mod, "track_video", tracker)
    prep = prepare_clip(DubSettings(video=str(SAMPLE), audio=str(VOICE), adapt=False,
                                    track_cache_dir=str(tmp_path / "tracks")))
    assert waited and all(waited)
    assert not prep.video_damage.damaged and not prep.voice_damage.damaged


def test_a_damaged_video_is_refused_when_the_tracker_fails_on_it_first(damaged, monkeypatch, tmp_path):
    import core.faces.track as track_mod
    from core.errors import MediaError
    from core.pipeline import DubSettings, prepare_clip

    def broken_tracker(*a, **k):
        raise MediaError("the tracker could not read the file")

    monkeypatch.setattr(track_mod, "track_video", broken_tracker)
    settings = DubSettings(video=str(damaged["cut50"]), audio=str(VOICE), adapt=False,
                           track_cache_dir=str(tmp_path / "tracks"))
    with pytest.raises(DamagedMediaError, match="video damaged"):
        prepare_clip(settings)
    settings.allow_damaged = True                  # allowed: the tracker's own error
    with pytest.raises(MediaError, match="the tracker could not read"):
        prepare_clip(settings)


def test_dub_allow_damaged_lists_the_frozen_frames(damaged, tmp_path):
    """The issue's case: the copy cut at 50 % used to export 75 frames, frozen from frame 32, without a word."""
    out = tmp_path / "dub.mp4"
    rc, stdout, stderr = run_cli("dub", "--video", damaged["cut50"], "--audio", VOICE, "-o", out, "--quiet",
                                 "--allow-damaged", "--json", "--no-score", "--preset", "ultrafast", "--crf", "30")
    assert rc == 0, stderr
    doc = json.loads(stdout)
    assert doc["damaged_frames"] == list(range(32, 75))
    assert doc["damage"][0]["missing_frames"] == list(range(32, 75))
    warn = "video damaged: frames 32–74 of 75 could not be decoded (1.28–3.00 s)"
    assert warn in stderr and any(warn in m for m in doc["messages"])
    assert media.probe(out).num_frames == 75


def test_dub_json_lists_no_damage_for_a_clean_file(tmp_path):
    rc, stdout, stderr = run_cli("dub", "--video", SAMPLE, "--audio", VOICE, "-o", tmp_path / "d.mp4", "--quiet",
                                 "--json", "--no-score", "--preset", "ultrafast", "--crf", "30", "--range", "0", "8")
    assert rc == 0, stderr
    doc = json.loads(stdout)
    assert doc["damaged_frames"] == [] and doc["damage"] == []
    assert "damaged" not in stderr


def test_score_refuses_then_allows_a_damaged_video(damaged):
    rc, _, stderr = run_cli("score", "--video", damaged["cut90"], "--quiet", "--json", "--no-adapt")
    assert rc == 4 and "video damaged: frames 65–74" in one_error_line(stderr)
    rc, stdout, stderr = run_cli("score", "--video", damaged["cut90"], "--quiet", "--json", "--no-adapt",
                                 "--allow-damaged")
    assert rc == 0, stderr
    doc = json.loads(stdout)
    assert set(range(65, 75)) <= set(doc["damaged_frames"]) and len(doc["per_frame"]) == 75
    assert "video damaged: frames 65–74" in stderr


def test_score_json_lists_no_damage_for_a_clean_file():
    rc, stdout, stderr = run_cli("score", "--video", SAMPLE, "--quiet", "--json", "--no-adapt")
    assert rc == 0, stderr
    assert json.loads(stdout)["damaged_frames"] == []


def test_batch_reports_damage_per_row(damaged, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"video,voice,output\n{damaged['cut90']},{VOICE},{tmp_path / 'a.mp4'}\n"
                        f"{SAMPLE},{VOICE},{tmp_path / 'b.mp4'}\n")
    common = ("--quiet", "--no-score", "--preset", "ultrafast", "--crf", "30", "--range", "60", "75")
    rc, stdout, stderr = run_cli("batch", manifest, "--json", *common)
    assert rc == 9, stderr
    doc = json.loads(stdout)
    rows = doc["rows"]
    assert rows[0]["status"] == "failed" and "video damaged: frames 65–74 of 75" in rows[0]["error"]
    assert rows[1]["status"] == "ok" and rows[1]["damaged_frames"] == "" and doc["damaged_frames"]["2"] == []
    assert not (tmp_path / "a.mp4").exists()
    rc, stdout, stderr = run_cli("batch", manifest, "--json", "--allow-damaged", *common)
    assert rc == 0, stderr
    doc = json.loads(stdout)
    rows = doc["rows"]
    assert rows[0]["status"] == "ok" and rows[0]["damaged_frames"] == "5-14"      # frames 65-74 of 60-75
    assert doc["damaged_frames"] == {"1": list(range(5, 15)), "2": []}
    with open(tmp_path / "m_summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert [r["damaged_frames"] for r in summary] == ["5-14", ""]


# ------------------------------------------------------------------------------------- no false alarms
@pytest.mark.parametrize("case", VIDEO_CASES)
def test_clean_matrix_video_reports_no_damage(matrix_media, case):
    path = matrix_media.video(case)
    info = media.probe(path)
    for kind in ("video", "audio"):
        rep = scan_damage(path, info, kind, use_cache=False)
        assert not rep.damaged, rep.describe()
    assert rep.decoded > 0 or not info.has_audio


@pytest.mark.parametrize("case", VOICE_CASES + ("wav_pcm_24_48000_2ch", "wav_float_96000_6ch", "wav_pcm_16_8000_1ch"))
def test_clean_matrix_voice_reports_no_damage(matrix_media, case):
    path = matrix_media.voice(case)
    rep = scan_damage(path, media.probe(path), "audio", use_cache=False)
    assert not rep.damaged and rep.decoded > 0, rep.describe()
