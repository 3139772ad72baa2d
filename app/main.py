"""GUI entry point, called by the repository's main.py:

    python main.py                      the studio window
    python main.py open PROJECT.lipdub  the window with a project
    python main.py VIDEO AUDIO...       the window with a video and voice track(s) loaded
"""
from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path
from typing import List, Optional

log = logging.getLogger("lipdub.app")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lipdub", description="LipDub Studio window.",
                                 usage="%(prog)s [open PROJECT | VIDEO [AUDIO ...]]")
    ap.add_argument("paths", nargs="*", help="'open PROJECT', or a video followed by voice tracks")
    ap.add_argument("--no-analyze", action="store_true", help="do not track and score automatically")
    ap.add_argument("--smoke-test", action="store_true",
                    help="open the window and the given files, print one line and quit (for packaging checks)")
    ap.add_argument("--debug", action="store_true", help="debug logging")
    return ap


def install_excepthook(window_getter) -> None:
    """Unexpected exceptions in UI-thread slots: logged with the traceback, shown as a one-line message."""
    def hook(etype, value, tb):
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(etype, value, tb)))
        win = window_getter()
        if win is not None and not win.jobs.closing:
            from .workers import describe_exception

            win.messages.error(describe_exception(value) + " (details in the log)")

    sys.excepthook = hook


def run(argv: Optional[List[str]] = None) -> int:
    a = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.DEBUG if a.debug else logging.WARNING, format="%(levelname)s: %(message)s")
    paths = list(a.paths)
    project = None
    if paths and paths[0] == "open":
        if len(paths) != 2:
            print("usage: lipdub open PROJECT.lipdub", file=sys.stderr)
            return 2
        project = paths[1]
        paths = []
    for p in ([project] if project else []) + paths:
        if not Path(p).exists():
            print(f"error: file not found: {p}", file=sys.stderr)
            return 4

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LipDub Studio")
    app.setOrganizationName("LipDub")
    from .main_window import MainWindow

    win = MainWindow(auto_analyze=not (a.no_analyze or a.smoke_test))
    install_excepthook(lambda: win)
    win.show()
    status = {"code": 0}

    if a.smoke_test:
        def smoke_done(ok: bool, what: str) -> None:
            print(("ok: " if ok else "error: ") + what, flush=True)
            status["code"] = 0 if ok else 1
            win.session.dirty = False
            win.close()

        win.media.mediaLoaded.connect(lambda: smoke_done(True, f"{win.session.num_frames} frames, "
                                                         f"{len(win.session.project.voices)} voice track(s)"))
        win.messages.errorShown.connect(lambda msg: smoke_done(False, msg))
        if not project and not paths:
            QTimer.singleShot(500, lambda: smoke_done(True, "window opened"))
        QTimer.singleShot(120_000, lambda: smoke_done(False, "timed out"))

    def after_show():
        if project:
            win.project_io.open_project(project, ask=False)
        elif paths:
            win.project_io.open_paths(paths)
        elif not a.smoke_test:
            win.project_io.check_recovery()

    QTimer.singleShot(0, after_show)
    rc = app.exec()
    return status["code"] if a.smoke_test else rc
