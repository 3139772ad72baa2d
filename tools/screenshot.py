"""Start the real studio window, load a GRID clip and a voice, track + score, and save a PNG screenshot.

    .venv/bin/python tools/screenshot.py [--video V] [--audio A] [--out out/screenshot.png] [--preview] [--dubbed]
                                         [--performer]

Uses the current DISPLAY; without one it starts `Xvfb :99` (and stops it afterwards). QT_QPA_PLATFORM=offscreen
also works (no X server needed).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def default_media():
    grid = DATA / "grid_s1"
    held = (grid / "heldout.txt").read_text().split() if (grid / "heldout.txt").is_file() else []
    if len(held) >= 2:
        return str(grid / "video" / f"{held[0]}.mp4"), str(grid / "video" / f"{held[1]}.mp4")
    return str(ROOT / "resources/samples/grid_s1_sample.mp4"), str(ROOT / "resources/samples/voice_sample.wav")


def ensure_display():
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen" or os.environ.get("DISPLAY"):
        return None
    if not shutil.which("Xvfb"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return None
    proc = subprocess.Popen(["Xvfb", ":99", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["DISPLAY"] = ":99"
    time.sleep(1.0)
    return proc


def wait_for(app, cond, timeout):
    from PySide6.QtCore import QEventLoop, QTimer

    t0 = time.monotonic()
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: (cond() or time.monotonic() - t0 > timeout) and loop.quit())
    timer.start()
    loop.exec()
    timer.stop()
    return cond()


def main(argv=None) -> int:
    v, a = default_media()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=v)
    ap.add_argument("--audio", default=a)
    ap.add_argument("--out", default=str(ROOT / "out" / "screenshot.png"))
    ap.add_argument("--frame", type=int, default=None, help="playhead frame (default: a low-confidence one)")
    ap.add_argument("--preview", action="store_true", help="also render the dubbed preview (split view)")
    ap.add_argument("--dubbed", action="store_true",
                    help="also dub and score the whole clip, so the sync lane shows before and after")
    ap.add_argument("--speaking", action="store_true",
                    help="also wait for who speaks the clip's own sound (the speaking lane)")
    ap.add_argument("--performer", action="store_true",
                    help="add --audio as a performer video (its picture beside the face view)")
    ap.add_argument("--timeout", type=float, default=240)
    ap.add_argument("--size", default="1500x950")
    args = ap.parse_args(argv)

    xvfb = ensure_display()
    try:
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        from app.main_window import MainWindow

        app = QApplication.instance() or QApplication([])
        tmp = tempfile.mkdtemp(prefix="lipdub_shot_")
        win = MainWindow(settings=QSettings(str(Path(tmp) / "s.ini"), QSettings.IniFormat), autosave_dir=tmp)
        w, h = (int(x) for x in args.size.split("x"))
        win.resize(w, h)
        win.show()
        errors, damage = [], []
        # a damaged input is said in a message but the analysis goes on: not a reason to stop waiting
        win.messages.errorShown.connect(lambda m: (damage if " damaged: " in m else errors).append(m))
        scored = []
        win.analysis.scoringFinished.connect(scored.append)
        spoken = []
        win.analysis.speakingFinished.connect(lambda: spoken.append(True))
        t0 = time.monotonic()
        if args.performer:
            win.project_io.open_paths([args.video])
            win.media.add_voice(args.audio, performer=True)
        else:
            win.project_io.open_paths([args.video, args.audio])
        ok = wait_for(app, lambda: bool(scored) or bool(errors), args.timeout)
        print(f"analysis {'done' if ok and scored else 'NOT done'} in {time.monotonic() - t0:.1f} s; "
              f"errors: {errors}; damage: {damage}")
        if args.speaking:
            ok = wait_for(app, lambda: bool(spoken) or len(errors) > 0, args.timeout)
            print(f"speaking analysis {'done' if ok and spoken else 'NOT done'}; "
                  f"{getattr(win.session.speaking, 'choice', None) and win.session.speaking.choice.message}")
            scored.clear()     # the face may have followed the speaker: the original is scored again
            wait_for(app, lambda: win.session.current_report() is not None or len(errors) > 0, args.timeout)
        win.messages.close_boxes()
        frame = args.frame
        if frame is None:
            low = win.sync_track.low_runs()
            frame = (low[0][0] + low[0][1]) // 2 if low else win.session.num_frames // 2
        if args.dubbed:
            win.rescore.score_dubbed()
            wait_for(app, lambda: (win.session.after is not None and win.session.after.report is not None) or len(errors) > 0,
                     args.timeout)
            print(f"dubbed result scored: {win.session.after is not None and win.session.after.report is not None}")
        win.timeline.set_range((max(0, frame - 15), min(win.session.num_frames, frame + 25)))
        win.timeline.set_playhead(frame)
        wait_for(app, lambda: win.face_view.painted_index == frame, 10)
        if args.preview:
            win.playback.set_preview_mode("split")
            win.actions_table["preview"].setChecked(True)
            rendered = []
            win.playback.previewRendered.connect(rendered.append)
            wait_for(app, lambda: frame in rendered or bool(errors[1:] if scored else errors), args.timeout)
            print(f"preview rendered: {frame in rendered}")
        wait_for(app, lambda: False, 1.0)   # let thumbnails and repaints settle
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        win.grab().save(args.out)
        print(f"wrote {args.out}")
        win.session.dirty = False
        win.close()
        return 0
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)


if __name__ == "__main__":
    sys.exit(main())
