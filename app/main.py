"""GUI entry point, called by the repository's main.py:

    python main.py                      the studio window
    python main.py open PROJECT.lipdub  the window with a project
    python main.py VIDEO AUDIO...       the window with a video and voice track(s) loaded
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lipdub", description="LipDub Studio window.",
                                 usage="%(prog)s [open PROJECT | VIDEO [AUDIO ...]]")
    ap.add_argument("paths", nargs="*", help="'open PROJECT', or a video followed by voice tracks")
    ap.add_argument("--no-analyze", action="store_true", help="do not track and score automatically")
    ap.add_argument("--debug", action="store_true", help="debug logging")
    return ap


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

    win = MainWindow(auto_analyze=not a.no_analyze)
    win.show()

    def after_show():
        if project:
            win.open_project(project, ask=False)
        elif paths:
            win.open_paths(paths)
        else:
            win.check_recovery()

    QTimer.singleShot(0, after_show)
    return app.exec()
