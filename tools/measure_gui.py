"""GUI responsiveness numbers (a measurement, not a test):

1. scrubbing a 512x512 clip: time from moving the playhead to the face view having painted that frame with
   its overlays (box, landmarks, mask outline), for drag-like steps, random jumps and revisits;
2. an hour-long 16 kHz voice track: time to load it and draw its waveform (in the window, and fully zoomed
   out on an hour-long axis), and the cost of a redraw when zooming/panning.

3. live dubbed playback on a 720p 29.97 fps clip (classic engine, tracks cached, the dub prepared): frames
   shown per second, dropped share, A/V drift at the end, time from Play to the first dubbed frame.

    .venv/bin/python tools/measure_gui.py [--clips 5] [--work DIR (default: lipdub_measure in the temp folder)] [--live-only] [--seconds 60]
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GRID = ROOT.parent / "shared" / "data" / "grid_s1"


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


def make_inputs(work: Path, clips: int):
    work.mkdir(parents=True, exist_ok=True)
    names = (GRID / "heldout.txt").read_text().split()[:clips]
    clip = work / f"clip512_{clips}.mp4"
    if not clip.is_file():
        lst = work / "list.txt"
        lst.write_text("".join(f"file '{GRID / 'video' / (n + '.mp4')}'\n" for n in names))
        ffmpeg("-f", "concat", "-safe", "0", "-i", lst, "-vf", "scale=512:512,setsar=1", "-c:v", "libx264",
               "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac", clip)
    hour = work / "voice_1h.wav"
    if not hour.is_file():
        ffmpeg("-stream_loop", "-1", "-i", GRID / "video" / (names[0] + ".mp4"), "-vn", "-ac", "1", "-ar", "16000",
               "-t", "3600", hour)
    return str(clip), str(hour)


def open_window(work: Path):
    """(app, wait, window): the QApplication, wait(cond, timeout) pumping its events, a fresh studio window."""
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    app = QApplication.instance() or QApplication([])

    def wait(cond, timeout=1800.0):
        """Run the event loop (as the app does, no busy polling) until `cond()` holds."""
        t0 = time.perf_counter()
        loop, timer = QEventLoop(), QTimer()
        timer.timeout.connect(lambda: (cond() or time.perf_counter() - t0 > timeout) and loop.quit())
        timer.setTimerType(Qt.PreciseTimer)
        timer.start(1)          # (a 1 ms check: latencies measured to the millisecond)
        if not cond():
            loop.exec()
        timer.stop()
        if not cond():
            raise TimeoutError

    tmp = tempfile.mkdtemp(prefix="lipdub_measure_")
    win = MainWindow(settings=QSettings(str(Path(tmp) / "s.ini"), QSettings.IniFormat), autosave_dir=tmp,
                     auto_analyze=False, track_cache_dir=str(work / "tracks"))
    win.resize(1400, 900)
    win.show()
    return app, wait, win


def stats(xs):
    a = np.array(xs) * 1000
    return f"median {np.median(a):6.1f} ms  p95 {np.percentile(a, 95):6.1f} ms  max {a.max():6.1f} ms  (n={len(a)})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=5, help="GRID clips concatenated into the 512x512 test video")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "lipdub_measure"))
    ap.add_argument("--live-only", action="store_true", help="only the live-playback figures")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the 720p clip played live")
    a = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if a.live_only:
        return measure_live(Path(a.work), a.seconds)
    clip, hour = make_inputs(Path(a.work), a.clips)

    from core.audio import load_audio
    from app.waveform import PeakPyramid, WaveformLane

    app, wait, win = open_window(Path(a.work))
    loaded = []
    win.media.mediaLoaded.connect(lambda: loaded.append(1))
    win.media.open_video(clip)
    wait(lambda: loaded)
    n = win.session.num_frames
    print(f"clip: {clip} ({win.session.info.width}x{win.session.info.height}, {n} frames)")
    done = []
    win.analysis.trackingFinished.connect(lambda: done.append(1))
    t0 = time.perf_counter()
    win.analysis.start_tracking()
    wait(lambda: done or win.messages.last_error, 600)
    print(f"tracking: {time.perf_counter() - t0:.1f} s ({'ok' if done else win.messages.last_error})")
    wait(lambda: win.jobs.get("thumbs") is None, 120)
    # scrubbing before the scrub-cache pass is complete: exact decoding only (forward = sequential decode)
    t0 = time.perf_counter()
    wait(lambda: win.jobs.get("prefetch") is None, 300)
    print(f"scrub cache: {len(win.frames.scrub)} frames, {win.frames.scrub.bytes / 2 ** 20:.1f} MB "
          f"(background pass finished {time.perf_counter() - t0:.1f} s after tracking)")

    def show(i):
        t0 = time.perf_counter()
        win.timeline.set_playhead(i)
        wait(lambda: win.face_view.painted_index == i, 10)
        return time.perf_counter() - t0

    fv = win.face_view
    random.seed(0)
    # drag-like: forward 1-4 frames at a time across the clip (new frames, sequential decode)
    i, drag = 0, []
    win.frames.source.cache.clear()
    while i < n - 5:
        i += random.randint(1, 4)
        drag.append(show(i))
    ov_ok = fv.overlay.mask_outline is not None and any(f.chosen for f in fv.overlay.faces)
    # random jumps anywhere (seek + decode)
    jumps = []
    for _ in range(40):
        win.frames.source.cache.clear()
        jumps.append(show(random.randrange(n)))
    # backward drag (reverse scrubbing: seeks)
    back = []
    win.frames.source.cache.clear()
    for i in range(n - 1, max(0, n - 60), -2):
        back.append(show(i))
    # revisits (cache)
    revisit = [show(random.randrange(max(1, n - 60), n)) for _ in range(40)]
    # the exact frame replacing the cached copy once the playhead rests (120 ms idle timer + decode)
    rest = []
    for _ in range(10):
        i = random.randrange(n)
        win.frames.source.cache.clear()
        t0 = time.perf_counter()
        win.timeline.set_playhead(i)
        wait(lambda: win.face_view.painted_index == i and win.frames.exact, 10)
        rest.append(time.perf_counter() - t0)
    print(f"overlays drawn (box, landmarks, mask outline): {ov_ok}")
    print(f"scrub 512x512, drag forward : {stats(drag)}")
    print(f"scrub 512x512, drag backward: {stats(back)}")
    print(f"scrub 512x512, random jumps : {stats(jumps)}")
    print(f"scrub 512x512, cached frames: {stats(revisit)}")
    print(f"exact frame after resting   : {stats(rest)} (includes the 120 ms rest timer)")
    print(f"within 50 ms: forward {np.mean(np.array(drag) < 0.05) * 100:.0f}%, backward "
          f"{np.mean(np.array(back) < 0.05) * 100:.0f}%, jumps {np.mean(np.array(jumps) < 0.05) * 100:.0f}%")

    # hour-long voice in the window
    got = []
    win.media.voiceLoaded.connect(got.append)
    d0 = win.voice_lane.draw_count
    t0 = time.perf_counter()
    win.media.add_voice(hour)
    wait(lambda: got and win.voice_lane.draw_count > d0, 60)
    app.processEvents()
    t_win = time.perf_counter() - t0
    data = win.session.audio[str(Path(hour).resolve())]
    print(f"hour voice ({len(data.wav) / 16000 / 60:.0f} min, {len(data.wav) / 1e6:.1f} M samples) loaded + drawn "
          f"in the window: {t_win:.2f} s")

    # the same, fully zoomed out on an hour-long axis, step by step
    t0 = time.perf_counter()
    wav = load_audio(hour)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    pyr = PeakPyramid(wav)
    t_pyr = time.perf_counter() - t0
    lane = WaveformLane("hour")
    lane.resize(1300, 120)
    lane.show()
    fps = 25.0
    t0 = time.perf_counter()
    lane.set_audio(pyr, fps)
    lane.set_view(0, 3600 * fps)
    lane.repaint()
    t_draw = time.perf_counter() - t0
    print(f"hour voice standalone: load_audio {t_load:.2f} s + peak pyramid {t_pyr:.2f} s + first full-hour draw "
          f"{t_draw * 1000:.0f} ms = {t_load + t_pyr + t_draw:.2f} s")
    redraws = []
    for k in range(30):
        w = 3600 * fps / (2 ** (k % 10))
        x0 = random.uniform(0, 3600 * fps - w)
        t0 = time.perf_counter()
        lane.set_view(x0, x0 + w)
        lane.repaint()
        redraws.append(time.perf_counter() - t0)
    print(f"hour voice zoom/pan redraw: {stats(redraws)}; points drawn at full view: {len(lane.curve.getData()[0])}")
    win.session.dirty = False
    win.shutdown()
    win.close()
    return measure_live(Path(a.work), a.seconds)


def measure_live(work: Path, seconds: float) -> int:
    """Play a 720p 29.97 fps clip dubbed live (its own audio as the voice) from the first frame to the last."""
    from PySide6.QtCore import Qt, QTimer

    from tools.bench import cached_clip

    work.mkdir(parents=True, exist_ok=True)
    clip = Path(cached_clip("720p", seconds))          # the dub-speed benchmark's clip (user cache folder)
    app, wait, win = open_window(work)
    win.project_io.open_paths([str(clip), str(clip)])           # the clip's own audio as the voice
    wait(lambda: win.session.info is not None and win.session.voice_data() is not None)
    t0 = time.perf_counter()
    win.analysis.start_tracking()
    wait(lambda: win.session.track_set is not None or win.messages.last_error)
    print(f"live: {clip.name} {win.session.info.width}x{win.session.info.height} {win.session.fps:.3f} fps, "
          f"{win.session.num_frames} frames; tracks in {time.perf_counter() - t0:.1f} s")
    ctrl = win.playback.preview_ctrl
    t0 = time.perf_counter()
    ctrl.prepare(win.dub_settings())
    wait(lambda: ctrl.session is not None or win.messages.last_error)
    print(f"live: dub prepared (mouth shapes, texture library, retrieval) in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    wait(lambda: all(win.jobs.get(n) is None for n in ("thumbs", "prefetch", "live-prepare")), 900)
    print(f"live: textures warmed (and frame cache filled) in {time.perf_counter() - t0:.1f} s more")
    live = win.playback.live
    shown = [None]
    live.frame.connect(lambda i, o, d: shown.__setitem__(0, i))
    # A/V error sampled when the audio position moves: the position only advances in steps (the output's
    # buffer), so between steps it lags the sound; at a step it is exact. Error = frame shown - frame heard.
    errors, last_pos, stamps = [], [None], []

    def sample():
        a = live.audio_frame()
        if a is not None and shown[0] is not None and a != last_pos[0]:
            last_pos[0] = a
            errors.append((shown[0], shown[0] - int(a)))
            stamps.append((time.perf_counter(), a))
    sampler = QTimer()
    sampler.setTimerType(Qt.PreciseTimer)
    sampler.timeout.connect(sample)
    sampler.start(1)
    done = []
    win.playback.livePlaybackFinished.connect(done.append)
    win.actions_table["play"].trigger()
    assert live.playing, "Play did not start live dubbed playback"
    wait(lambda: done, seconds * 3 + 60)
    st = done[0]
    sampler.stop()
    end = errors[-1][0] if errors else 0
    head = [e for i, e in errors if i < errors[0][0] + 30] if errors else []
    tail = [e for i, e in errors if i >= end - 30]
    clock = "audio position" if errors else "wall clock (no audio output: the drift is not measurable)"
    first = "none" if st.first_frame_ms is None else f"{st.first_frame_ms:.0f} ms"
    print(f"live: shown {st.shown} frames at {st.shown_per_second():.2f} f/s, dropped {st.dropped} "
          f"({st.dropped_share * 100:.1f}%), first dubbed frame {first} after Play; error: {win.messages.last_error}")
    print(f"live: render of one frame: {live.last_render_seconds * 1000:.0f} ms wall, {live.last_render_cpu * 1000:.1f} "
          f"ms CPU (thread time; {2 / max(live.last_render_cpu, 1e-6):.0f} f/s on 2 free cores, GUI thread aside)")
    print(f"live: machine load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if len(stamps) > 1:
        (t0, a0), (t1, a1) = stamps[0], stamps[-1]
        print(f"live: the audio output's clock played {(a1 - a0) / win.session.fps:.2f} s of sound in {t1 - t0:.2f} s "
              f"of wall time: {st.shown_per_second() * (t1 - t0) * win.session.fps / (a1 - a0):.2f} frames shown "
              f"per second of sound")
    if tail:
        print(f"live: A/V error (frame shown - frame heard, at {len(errors)} audio position steps): first second "
              f"mean {np.mean(head):+.2f}, last second mean {np.mean(tail):+.2f} (drift "
              f"{np.mean(tail) - np.mean(head):+.2f}), max |error| in the last second {np.max(np.abs(tail)):.0f} "
              f"frames; audio device: {win.playback.live.clock.device_name()}")
    else:
        print(f"live: clock: {clock}")
    win.session.dirty = False
    win.shutdown()
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
