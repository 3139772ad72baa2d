import os
import random
import shutil
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from core import media
from core.errors import AudioError, CancelledError, FFmpegMissingError, MediaError, OutputError
from core.progress import CancelToken
from data_paths import GRID_OTHERS


@pytest.fixture(scope="module")
def grid_frames(grid_clip):
    return np.stack(list(media.iter_frames(grid_clip)))


def _frames(path, info=None, **kw):
    return np.stack(list(media.iter_frames(path, info, **kw)))


# ---------------------------------------------------------------------------------------------- argument builders
def test_build_probe_args():
    args = media.build_probe_args("ffprobe", "/a b/c.mp4", packets=123)
    assert args[0] == "ffprobe" and args[-1] == "/a b/c.mp4"
    assert args[args.index("-print_format") + 1] == "json"
    assert "-show_format" in args and "-show_streams" in args
    assert args[args.index("-read_intervals") + 1] == "%+#123"
    assert args[args.index("-show_entries") + 1] == "packet=stream_index,pts,duration"


def _info(**kw):
    base = dict(path="x.mp4", has_video=True, has_audio=False, width=360, height=288, coded_width=360,
                coded_height=288, fps=25.0, fps_fraction=Fraction(25), num_frames=75, duration=3.0, rotation=0,
                sar="1:1", pix_fmt="yuv420p", video_codec="h264", is_vfr=False, audio_sample_rate=None,
                audio_channels=None, audio_codec=None, video_stream_index=0)
    base.update(kw)
    return media.MediaInfo(**base)


def test_build_decode_args_cfr():
    info = _info(video_stream_index=2)
    a = media.build_decode_args("ff", "in.mp4", info, 0, version=(5, 1))
    assert a[0] == "ff" and "-ss" not in a and "-vf" not in a
    assert a[a.index("-i") + 1] == "in.mp4"
    assert a[a.index("-map") + 1] == "0:2"
    assert a[a.index("-fps_mode") + 1] == "passthrough"
    assert a[a.index("-pix_fmt") + 1] == "bgr24" and a[a.index("-f") + 1] == "rawvideo" and a[-1] == "pipe:1"
    assert "-copyts" in a and a.index("-copyts") < a.index("-i")
    assert {"-an", "-sn", "-dn", "-nostdin"} <= set(a)
    # frame 60 at 25 fps: key-frame seek 2 s before, then keep frames from 59.5/25 s on
    a = media.build_decode_args("ff", "in.mp4", info, 60, version=(5, 1))
    assert a[a.index("-ss") + 1] == "0.400000" and a.index("-ss") < a.index("-i")
    assert "-noaccurate_seek" in a
    assert a[a.index("-vf") + 1] == "select='gte(t\\,2.380000)'"
    # close to the start: no seek, only the select
    a = media.build_decode_args("ff", "in.mp4", info, 10, version=(5, 1))
    assert "-ss" not in a and a[a.index("-vf") + 1] == "select='gte(t\\,0.380000)'"
    # old ffmpeg: -vsync instead of -fps_mode
    a = media.build_decode_args("ff", "in.mp4", info, 0, version=(4, 4))
    assert "-fps_mode" not in a and a[a.index("-vsync") + 1] == "0"


def test_build_decode_args_vfr_resamples_on_absolute_grid():
    info = _info(is_vfr=True, fps_fraction=Fraction(30000, 1001), fps=29.97, video_start=1.0)
    a = media.build_decode_args("ff", "in.mp4", info, 0, version=(6, 0))
    assert a[a.index("-vf") + 1] == "fps=fps=30000/1001:round=near"
    a = media.build_decode_args("ff", "in.mp4", info, 100, version=(6, 0))
    vf = a[a.index("-vf") + 1].split(",", 1)
    assert vf[0] == "fps=fps=30000/1001:round=near"
    # grid origin round(1.0 * 29.97) = 30, frame 100 -> slot 130, threshold at slot 129.5
    assert vf[1] == f"select='gte(t\\,{129.5 * 1001 / 30000:.6f})'"


def test_build_encode_args():
    a = media.build_encode_args("ff", "out.mp4", 360, 288, Fraction(30000, 1001), crf=23, preset="fast",
                                sar="4:3", version=(5, 1), container="mp4")
    assert a[a.index("-f") + 1] == "rawvideo" and a[a.index("-pix_fmt") + 1] == "bgr24"
    assert a[a.index("-s") + 1] == "360x288"
    assert a[a.index("-framerate") + 1] == "30000/1001"
    assert a[a.index("-i") + 1] == "pipe:0"
    assert a[a.index("-map") + 1] == "0:v:0"
    assert a[a.index("-c:v") + 1] == "libx264"
    assert a[a.index("-crf") + 1] == "23" and a[a.index("-preset") + 1] == "fast"
    assert a[len(a) - 1 - a[::-1].index("-pix_fmt") + 1] == "yuv420p"
    vf = a[a.index("-vf") + 1]
    assert "setsar=sar=4/3" in vf and "out_color_matrix=bt709" in vf
    assert a[a.index("-colorspace") + 1] == "bt709"
    assert a[a.index("-fps_mode") + 1] == "passthrough"
    assert a[a.index("-movflags") + 1] == "+faststart"
    assert a[-1] == "out.mp4" and a[-2] == "mp4"


def test_build_mux_args_and_rotation_tags():
    a = media.build_mux_args("ff", "v.mp4", "voice.wav", "o.mp4", 2.5, audio_stream=3, sample_rate=48000,
                             version=(5, 1))
    inputs = [a[i + 1] for i, x in enumerate(a) if x == "-i"]
    assert inputs == ["v.mp4", "voice.wav"]
    maps = [a[i + 1] for i, x in enumerate(a) if x == "-map"]
    assert maps == ["0:v:0", "1:3"]
    assert a[a.index("-c:v") + 1] == "copy" and a[a.index("-c:a") + 1] == "aac"
    assert a[a.index("-ar") + 1] == "48000" and a[a.index("-t") + 1] == "2.500000"
    assert a[a.index("-af") + 1] == "apad"
    a = media.build_mux_args("ff", "v.mp4", None, "o.mp4", 2.5, version=(5, 1))
    assert [a[i + 1] for i, x in enumerate(a) if x == "-map"] == ["0:v:0"] and "-c:a" not in a
    # rotation 90 clockwise: ffmpeg >= 6 input option (counter-clockwise degrees); 5.x legacy tag
    a = media.build_mux_args("ff", "v.mp4", None, "o.mp4", 1, rotation=90, version=(7, 0))
    assert a[a.index("-display_rotation") + 1] == "270" and a.index("-display_rotation") < a.index("-i")
    a = media.build_mux_args("ff", "v.mp4", None, "o.mp4", 1, rotation=90, version=(5, 1))
    assert a[a.index("-metadata:s:v:0") + 1] == "rotate=270"
    assert media._rotation_args(0, (5, 1)) == ([], [])


def test_tool_paths(monkeypatch, tmp_path):
    assert Path(media.ffmpeg_path()).is_file()
    assert Path(media.ffprobe_path()).is_file()
    fake = tmp_path / "myffmpeg"
    fake.write_text("")
    monkeypatch.setenv("LIPDUB_FFMPEG", str(fake))
    assert media.ffmpeg_path() == str(fake)
    monkeypatch.setenv("LIPDUB_FFMPEG", str(tmp_path / "nope"))
    with pytest.raises(FFmpegMissingError, match="LIPDUB_FFMPEG"):
        media.ffmpeg_path()
    monkeypatch.delenv("LIPDUB_FFMPEG")
    # nothing on PATH: imageio-ffmpeg's binary; neither: a clear error
    monkeypatch.setattr(shutil, "which", lambda name: None)
    import imageio_ffmpeg

    assert media.ffmpeg_path() == imageio_ffmpeg.get_ffmpeg_exe()
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: (_ for _ in ()).throw(RuntimeError("none")))
    with pytest.raises(FFmpegMissingError, match="install FFmpeg"):
        media.ffmpeg_path()
    with pytest.raises(FFmpegMissingError, match="ffprobe was not found"):
        media.ffprobe_path()


# ------------------------------------------------------------------------------------------------------- probe
def test_probe_grid_clip(grid_clip):
    i = media.probe(grid_clip)
    assert (i.has_video, i.has_audio) == (True, True)
    assert (i.width, i.height, i.coded_width, i.coded_height) == (360, 288, 360, 288)
    assert i.fps_fraction == Fraction(25) and i.fps == 25.0
    assert i.num_frames == 75 and i.duration == pytest.approx(3.0)
    assert (i.rotation, i.sar, i.is_vfr, i.video_codec, i.pix_fmt) == (0, "1:1", False, "h264", "yuv420p")
    assert (i.audio_sample_rate, i.audio_channels, i.audio_codec) == (44100, 1, "aac")
    assert i.num_audio_streams == 1 and i.audio_duration == pytest.approx(2.978, abs=0.01)


def test_probe_odd_inputs(odd_media):
    i = media.probe(odd_media("r2997"))      # 1.2 s at 29.97 fps
    assert i.fps_fraction == Fraction(30000, 1001) and i.num_frames == 36 and not i.is_vfr
    assert i.duration == pytest.approx(36 * 1001 / 30000)
    i = media.probe(odd_media("mkv2997"))
    assert i.fps_fraction == Fraction(30000, 1001) and i.num_frames == 36 and not i.is_vfr
    i = media.probe(odd_media("rot90"))
    assert i.rotation == 90 and (i.width, i.height) == (288, 360) and (i.coded_width, i.coded_height) == (360, 288)
    i = media.probe(odd_media("vfr"))
    assert i.is_vfr and i.has_video and not i.has_audio
    assert not media.probe(odd_media("cfr")).is_vfr
    i = media.probe(odd_media("odd"))
    assert (i.width, i.height) == (181, 145) and i.pix_fmt == "yuv444p"
    i = media.probe(odd_media("noaudio"))
    assert i.has_video and not i.has_audio and i.audio_sample_rate is None
    with pytest.raises(AudioError, match="no audio stream"):
        media.probe(odd_media("noaudio"), need_audio=True)
    i = media.probe(odd_media("audio"))
    assert not i.has_video and i.has_audio and i.num_frames == 0 and i.duration == pytest.approx(2.978, abs=0.01)
    with pytest.raises(MediaError, match="no video stream"):
        media.probe(odd_media("audio"), need_video=True)
    with pytest.raises(MediaError, match="no video stream"):
        next(media.iter_frames(odd_media("audio")))


def test_probe_mpeg1_with_decoder_warnings():
    path = sorted(GRID_OTHERS.glob("*.mpg"))[0]
    i = media.probe(path)
    assert i.video_codec == "mpeg1video" and i.num_frames == 75 and i.fps_fraction == 25
    assert (i.audio_codec, i.audio_channels) == ("mp2", 2)
    frames = _frames(path, i)
    assert frames.shape == (75, 288, 360, 3) and frames.mean() > 30


def test_probe_bad_inputs(odd_media, tmp_path):
    cases = {
        tmp_path / "missing.mp4": "does not exist",
        tmp_path: "is a folder",
        odd_media("empty"): r"empty \(0 bytes\)",
        odd_media("garbage"): "not a readable video or audio file",
    }
    for path, msg in cases.items():
        with pytest.raises(MediaError, match=msg) as e:
            media.probe(path)
        assert str(Path(path).name) in str(e.value) and "\n" not in str(e.value)
    notmedia = tmp_path / "notes.txt"
    notmedia.write_text("hello, not a video\n" * 50)
    with pytest.raises(MediaError, match="text file"):
        media.probe(notmedia)


def test_probe_without_ffprobe_parses_ffmpeg(monkeypatch, grid_clip, odd_media):
    paths = [grid_clip, odd_media("r2997"), odd_media("rot90"), odd_media("audio")]
    ref = [media.probe(p) for p in paths]

    def missing():
        raise FFmpegMissingError("no ffprobe")

    monkeypatch.setattr(media.probing, "ffprobe_path", missing)     # as probe() finds it
    for p, r in zip(paths, ref):
        i = media.probe(p)
        assert i.probed_with == "ffmpeg"
        for f in ("has_video", "has_audio", "width", "height", "coded_width", "coded_height", "fps_fraction",
                  "num_frames", "rotation", "sar", "video_codec", "audio_sample_rate", "audio_channels",
                  "audio_codec", "video_stream_index", "audio_stream_index"):
            assert getattr(i, f) == getattr(r, f), (p, f)
    with pytest.raises(MediaError, match="not a readable"):
        media.probe(odd_media("garbage"))


def test_probe_remembers_an_unchanged_file(monkeypatch, grid_clip, odd_media, tmp_path):
    """A file probed before and unchanged since is described from memory (a dub probes its inputs from several
    stages); a copy at another path, a file rewritten in place, a failed probe and the ffmpeg fallback are not."""
    import shutil

    calls = []
    real = media.probing._probe_file
    monkeypatch.setattr(media.probing, "_probe_file", lambda p, **k: calls.append(str(p)) or real(p, **k))
    monkeypatch.setattr(media.probing, "_PROBED", type(media.probing._PROBED)())
    clip = tmp_path / "clip.mp4"
    shutil.copyfile(grid_clip, clip)
    first = media.probe(clip)
    assert media.probe(clip) == first and media.probe(str(clip)) == first and len(calls) == 1
    with pytest.raises(MediaError, match="no video stream"):        # what is asked is still checked
        media.probe(odd_media("audio"), need_video=True)
    with pytest.raises(MediaError, match="no video stream"):
        media.probe(odd_media("audio"), need_video=True)
    assert len(calls) == 2
    shutil.copyfile(odd_media("r2997"), clip)                      # rewritten in place: probed again
    again = media.probe(clip)
    assert len(calls) == 3 and again.num_frames == 36 and again.fps_fraction == Fraction(30000, 1001)
    for _ in range(2):
        with pytest.raises(MediaError, match="not a readable"):
            media.probe(odd_media("garbage"))
    assert len(calls) == 5

    def missing():
        raise FFmpegMissingError("no ffprobe")

    monkeypatch.setattr(media.probing, "ffprobe_path", missing)     # as probe() finds it
    assert media.probe(clip).probed_with == "ffmpeg" and len(calls) == 6


# ------------------------------------------------------------------------------------------------------ decoding
@pytest.mark.parametrize("kind", ["r2997", "mkv2997", "vfr", "odd", "noaudio"])
def test_iter_frames_count_and_size(odd_media, kind):
    info = media.probe(odd_media(kind))
    frames = _frames(odd_media(kind), info)
    assert frames.shape == (info.num_frames, info.height, info.width, 3) and frames.dtype == np.uint8


def test_iter_frames_rotation_is_applied(odd_media, grid_frames):
    path = odd_media("rot90")
    frames = _frames(path)
    n = len(frames)
    # the rotated file is a stream copy: the pixels are the source's, turned 90 degrees clockwise
    assert np.array_equal(frames, np.rot90(grid_frames[:n], k=-1, axes=(1, 2)))


def test_iter_frames_vfr_is_resampled(odd_media, grid_frames):
    info = media.probe(odd_media("vfr"))
    frames = _frames(odd_media("vfr"), info)
    # source frame k (k >= 15) is shown from (2k - 15) * 40 ms: the output at the average rate must show
    # every source frame in order, some repeated, never going back
    src = [int(np.argmin(np.abs(grid_frames[:30].astype(np.int16) - f).mean(axis=(1, 2, 3)))) for f in frames]
    assert src[0] == 0 and np.all(np.diff(src) >= 0) and max(src) >= 28
    assert np.any(np.diff(src) == 0)          # slower part: frames held


@pytest.mark.parametrize("kind", ["cfr", "vfr"])
def test_iter_frames_start_stop_match_full_decode(odd_media, kind):
    path = odd_media(kind)
    info = media.probe(path)
    full = _frames(path, info)
    for a, b in [(0, 5), (7, 12), (info.num_frames - 3, None)]:
        part = _frames(path, info, start=a, stop=b)
        assert np.array_equal(part, full[a:b]), (a, b)


def test_iter_frames_seek_in_mpeg1_open_gop():
    path = sorted(GRID_OTHERS.glob("*.mpg"))[0]
    info = media.probe(path)
    full = _frames(path, info)
    for a in (13, 20, 60):
        assert np.array_equal(_frames(path, info, start=a, stop=a + 3), full[a:a + 3]), a


def test_iter_frames_closes_ffmpeg_on_early_stop(monkeypatch, grid_clip):
    procs = []
    orig = media._Proc

    class Recording(orig):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            procs.append(self)

    monkeypatch.setattr(media.decoding, "_Proc", Recording)      # as iter_frames() finds it
    gen = media.iter_frames(grid_clip)
    next(gen)
    next(gen)
    assert procs[0].p.poll() is None          # still decoding
    gen.close()
    assert procs[0].p.poll() is not None      # stopped and reaped


def test_iter_frames_pads_when_decoder_stops_short(grid_clip, grid_frames):
    info = media.probe(grid_clip)
    longer = media.MediaInfo(**{**info.__dict__, "num_frames": info.num_frames + 2})
    frames = _frames(grid_clip, longer)
    assert len(frames) == 77 and np.array_equal(frames[-1], grid_frames[-1])


@pytest.mark.parametrize("kind,cv2_used", [("cfr", True), ("mkv2997", True), ("rot90", True), ("odd", True),
                                           ("vfr", False)])
def test_iter_frames_auto_backend_matches_the_pipe(odd_media, kind, cv2_used, monkeypatch):
    """backend="auto": OpenCV's in-process decoder where FrameReader trusts it, the very frames of the pipe (every
    frame, and a start/stop range: the seek); the pipe for the rest (VFR)."""
    path = odd_media(kind)
    info = media.probe(path)
    full = _frames(path, info)
    opened = []
    real = media.decoding._Cv2Backend

    def spy(*a, **k):
        opened.append(a[0])
        return real(*a, **k)

    monkeypatch.setattr(media.decoding, "_Cv2Backend", spy)
    assert np.array_equal(_frames(path, info, backend="auto"), full)
    a, b = info.num_frames // 2, info.num_frames - 2
    assert np.array_equal(_frames(path, info, start=a, stop=b, backend="auto"), full[a:b])
    assert bool(opened) == cv2_used


def test_iter_frames_auto_backend_continues_on_the_pipe(odd_media, monkeypatch):
    """Where OpenCV stops early, the pipe goes on from that frame: still every frame, in order."""
    path = odd_media("cfr")
    info = media.probe(path)
    full = _frames(path, info)
    real = media.decoding._Cv2Backend.read_next

    def short(self):
        return None if self.pos >= 10 else real(self)

    monkeypatch.setattr(media.decoding._Cv2Backend, "read_next", short)
    got = _frames(path, info, start=3, backend="auto")
    assert np.array_equal(got, full[3:])
    with pytest.raises(ValueError):
        next(media.iter_frames(path, info, backend="gpu"))


# ------------------------------------------------------------------------------------------------- FrameReader
@pytest.mark.parametrize("kind,backend", [("cfr", "opencv"), ("mkv2997", "opencv"), ("rot90", "opencv"),
                                          ("odd", "opencv"), ("vfr", "ffmpeg")])
def test_frame_reader_matches_iter_frames(odd_media, kind, backend):
    path = odd_media(kind)
    info = media.probe(path)
    full = _frames(path, info)
    order = list(range(info.num_frames))
    random.Random(1).shuffle(order)
    order = order[:8] + [5, 6, 7, 3, info.num_frames - 1, 0]
    with media.FrameReader(path, info) as r:
        assert r.backend == backend
        for i in order:
            assert np.array_equal(r.read(i), full[i]), i
        with pytest.raises(IndexError):
            r.read(info.num_frames)
    if backend == "opencv" and kind in ("cfr", "rot90"):
        with media.FrameReader(path, info, backend="ffmpeg", cache_frames=2) as r:
            for i in (order[0], order[1], 4):
                assert np.array_equal(r.read(i), full[i]), i


def test_frame_reader_mpeg1_uses_exact_pipe():
    path = sorted(GRID_OTHERS.glob("*.mpg"))[1]
    info = media.probe(path)
    full = _frames(path, info)
    r = media.FrameReader(path, info)
    assert r.backend == "ffmpeg"
    for i in (40, 2, 21, 22, 74):
        assert np.array_equal(r.read(i), full[i]), i
    r.close()
    assert np.array_equal(media.read_frame(path, 33, info), full[33])


def test_frame_reader_seek_latency_512(odd_media):
    path = odd_media("sq512")
    info = media.probe(path)
    assert (info.width, info.height, info.num_frames) == (512, 512, 75)
    with media.FrameReader(path, info, cache_frames=4) as r:      # a small cache: every seek decodes
        times = []
        for i in random.Random(2).sample(range(75), 15):
            t = time.perf_counter()
            r.read(i)
            times.append(time.perf_counter() - t)
        seq = time.perf_counter()
        r.read(30)
        seq = time.perf_counter()
        for i in range(31, 46):
            r.read(i)
        seq = (time.perf_counter() - seq) / 15
    # the target is 50 ms on an idle machine; the test machine's 2 cores are shared, so scale by the load
    load = max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    print(f"seek median {np.median(times) * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms, "
          f"sequential {seq * 1e3:.2f} ms/frame, load factor {load:.1f}")
    assert np.median(times) < 0.05 * load
    assert seq < 0.01 * load


# -------------------------------------------------------------------------------------------------- VideoWriter
def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".part" in p.name]


def test_writer_roundtrip_2997_with_audio_array(odd_media, tmp_path):
    src = odd_media("r2997")
    info = media.probe(src)
    frames = _frames(src, info)
    voice = (0.3 * np.sin(np.arange(16000 * 2) / 16000 * 2 * np.pi * 220)).astype(np.float32)   # 2 s > 1 s video
    out = tmp_path / "out.mp4"
    with media.VideoWriter(out, info.width, info.height, info.fps_fraction, audio=voice, preset="ultrafast",
                           inputs=[src]) as w:
        for f in frames:
            w.write(f)
    o = media.probe(out)
    assert o.fps_fraction == Fraction(30000, 1001) and o.num_frames == len(frames)
    assert (o.width, o.height, o.sar, o.rotation) == (info.width, info.height, "1:1", 0)
    assert o.has_audio and o.audio_codec == "aac"
    assert o.audio_duration == pytest.approx(o.duration, abs=0.03)        # audio cut to the video
    back = _frames(out, o)
    assert np.abs(back.astype(np.int16) - frames).mean() < 3.0
    assert _no_temp_files(tmp_path)
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)                  # not mkstemp's private mode


def test_writer_rotation_sar_odd_size_audio_path(odd_media, tmp_path, grid_clip):
    src = odd_media("rot90")
    info = media.probe(src)
    frames = _frames(src, info)[:20]
    out = tmp_path / "rot.mov"
    with media.VideoWriter(out, info.width, info.height, info.fps_fraction, audio=str(grid_clip),
                           rotation=info.rotation, preset="ultrafast") as w:
        for f in frames:
            w.write(f)
    o = media.probe(out)
    assert o.rotation == 90 and (o.width, o.height) == (288, 360) and (o.coded_width, o.coded_height) == (360, 288)
    assert o.has_audio and o.audio_duration == pytest.approx(20 / 25, abs=0.03)
    assert np.abs(_frames(out, o).astype(np.int16) - frames).mean() < 3.0

    src = odd_media("odd")
    info = media.probe(src)
    frames = _frames(src, info)[:10]
    out = tmp_path / "odd.mp4"
    w = media.VideoWriter(out, 181, 145, Fraction(25), audio=None, sar="4:3", preset="ultrafast")
    assert w.encoded_size == (182, 146)
    for f in frames:
        w.write(f)
    w.close()
    o = media.probe(out)
    assert (o.width, o.height, o.sar, o.num_frames, o.has_audio) == (182, 146, "4:3", 10, False)
    back = _frames(out, o)
    assert np.abs(back[:, :145, :181].astype(np.int16) - frames).mean() < 4.0
    assert np.array_equal(back[:, :, 181], back[:, :, 180]) or np.abs(
        back[:, :, 181].astype(int) - back[:, :, 180]).mean() < 3


@pytest.mark.parametrize("how", ["abort", "exception", "cancel"])
def test_writer_failure_keeps_existing_target(tmp_path, grid_frames, how):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"the good old file")
    token = CancelToken()

    def job():
        w = media.VideoWriter(out, 360, 288, Fraction(25), audio=np.zeros(16000, np.float32), preset="ultrafast")
        with w:
            for i, f in enumerate(grid_frames[:10]):
                w.write(f)
                if i == 4:
                    assert any(".part" in p.name for p in tmp_path.iterdir())
                    if how == "abort":
                        w.abort()
                        return
                    if how == "exception":
                        raise RuntimeError("boom")
                    token.cancel()
                    token.raise_if_cancelled()

    if how == "abort":
        job()
    else:
        with pytest.raises(RuntimeError if how == "exception" else CancelledError):
            job()
    assert out.read_bytes() == b"the good old file"
    assert _no_temp_files(tmp_path)


def test_writer_encoder_failure_is_output_error(tmp_path, grid_frames):
    out = tmp_path / "bad.mp4"
    out.write_bytes(b"previous")
    with pytest.raises(OutputError, match="bad.mp4"):
        with media.VideoWriter(out, 360, 288, Fraction(25), audio=None, preset="no-such-preset") as w:
            for f in grid_frames:
                w.write(f)
    assert out.read_bytes() == b"previous" and _no_temp_files(tmp_path)
    with pytest.raises(OutputError, match="No frames"):
        media.VideoWriter(tmp_path / "empty.mp4", 360, 288, 25, audio=None).close()
    assert not (tmp_path / "empty.mp4").exists() and _no_temp_files(tmp_path)


def test_writer_refuses_bad_output_paths(tmp_path, grid_clip, monkeypatch, odd_media):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(Path(grid_clip).read_bytes())
    with pytest.raises(OutputError, match="same file as the input"):
        media.VideoWriter(clip, 360, 288, 25, audio=None, inputs=[clip])
    with pytest.raises(OutputError, match="same file as the input"):
        media.VideoWriter(tmp_path / "." / "clip.mp4", 360, 288, 25, audio=str(clip))
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="afile"):
        media.VideoWriter(blocker / "out.mp4", 360, 288, 25, audio=None)
    with pytest.raises(OutputError, match="extension"):
        media.VideoWriter(tmp_path / "out.avi", 360, 288, 25, audio=None)
    with pytest.raises(AudioError, match="no audio stream"):
        media.VideoWriter(tmp_path / "o.mp4", 360, 288, 25, audio=str(odd_media("noaudio")))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == tmp_path else real_access(p, m))
    with pytest.raises(OutputError, match="not writable"):
        media.VideoWriter(tmp_path / "out.mp4", 360, 288, 25, audio=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "clip.mp4"]
    # a missing output folder is created
    monkeypatch.undo()
    w = media.VideoWriter(tmp_path / "new" / "sub" / "o.mp4", 360, 288, 25, audio=None)
    w.abort()
    assert (tmp_path / "new" / "sub").is_dir() and not list((tmp_path / "new" / "sub").iterdir())
