"""GUI responsiveness numbers (a measurement, not a test):

1. scrubbing a 512x512 clip: time from moving the playhead to the face view having painted that frame with
   its overlays (box, landmarks, mask outline), for drag-like steps, random jumps and revisits;
2. an hour-long 16 kHz voice track: time to load it and draw its waveform (in the window, and fully zoomed
   out on an hour-long axis), and the cost of a redraw when zooming/panning.

    .venv/bin/python tools/measure_gui.py [--clips 5] [--work DIR (default: lipdub_measure in the temp folder)]
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


def stats(xs):
    a = np.array(xs) * 1000
    return f"median {np.median(a):6.1f} ms  p95 {np.percentile(a, 95):6.1f} ms  max {a.max():6.1f} ms  (n={len(a)})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=5, help="GRID clips concatenated into the 512x512 test video")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "lipdub_measure"))
    a = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    clip, hour = make_inputs(Path(a.work), a.clips)

    from PySide6.QtCore import QEventLoop, QSettings
    from PySide6.QtWidgets import QApplication

    from app import core_bridge
    from app.main_window import MainWindow
    from app.waveform import PeakPyramid, WaveformLane

    app = QApplication.instance() or QApplication([])

    def wait(cond, timeout=120.0):
        t0 = time.perf_counter()
        while not cond():
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError
            app.processEvents(QEventLoop.AllEvents, 5)   # measurement harness only; the app never does this

    tmp = tempfile.mkdtemp(prefix="lipdub_measure_")
    win = MainWindow(settings=QSettings(str(Path(tmp) / "s.ini"), QSettings.IniFormat), autosave_dir=tmp,
                     auto_analyze=False, track_cache_dir=str(Path(a.work) / "tracks"))
    win.resize(1400, 900)
    win.show()
    loaded = []
    win.mediaLoaded.connect(lambda: loaded.append(1))
    win.open_video(clip)
    wait(lambda: loaded)
    n = win.num_frames
    print(f"clip: {clip} ({win.info.width}x{win.info.height}, {n} frames)")
    done = []
    win.trackingFinished.connect(lambda: done.append(1))
    t0 = time.perf_counter()
    win.start_tracking()
    wait(lambda: done or win.last_error, 600)
    print(f"tracking: {time.perf_counter() - t0:.1f} s ({'ok' if done else win.last_error})")
    wait(lambda: win.runner.get("thumbs") is None, 120)
    # scrubbing before the scrub-cache pass is complete: exact decoding only (forward = sequential decode)
    t0 = time.perf_counter()
    wait(lambda: win.runner.get("prefetch") is None, 300)
    print(f"scrub cache: {len(win.scrub)} frames, {win.scrub.bytes / 2 ** 20:.1f} MB "
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
    win.frames.cache.clear()
    while i < n - 5:
        i += random.randint(1, 4)
        drag.append(show(i))
    ov_ok = fv.overlay.mask_outline is not None and any(f.chosen for f in fv.overlay.faces)
    # random jumps anywhere (seek + decode)
    jumps = []
    for _ in range(40):
        win.frames.cache.clear()
        jumps.append(show(random.randrange(n)))
    # backward drag (reverse scrubbing: seeks)
    back = []
    win.frames.cache.clear()
    for i in range(n - 1, max(0, n - 60), -2):
        back.append(show(i))
    # revisits (cache)
    revisit = [show(random.randrange(max(1, n - 60), n)) for _ in range(40)]
    # the exact frame replacing the cached copy once the playhead rests (120 ms idle timer + decode)
    rest = []
    for _ in range(10):
        i = random.randrange(n)
        win.frames.cache.clear()
        t0 = time.perf_counter()
        win.timeline.set_playhead(i)
        wait(lambda: win.face_view.painted_index == i and win.face_exact, 10)
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
    win.voiceLoaded.connect(got.append)
    d0 = win.voice_lane.draw_count
    t0 = time.perf_counter()
    win.add_voice(hour)
    wait(lambda: got and win.voice_lane.draw_count > d0, 60)
    app.processEvents()
    t_win = time.perf_counter() - t0
    data = win.audio[str(Path(hour).resolve())]
    print(f"hour voice ({len(data.wav) / 16000 / 60:.0f} min, {len(data.wav) / 1e6:.1f} M samples) loaded + drawn "
          f"in the window: {t_win:.2f} s")

    # the same, fully zoomed out on an hour-long axis, step by step
    t0 = time.perf_counter()
    wav = core_bridge.load_audio(hour)
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
    win.dirty = False
    win.shutdown()
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
