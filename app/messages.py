"""Messages to the user: the status bar for news, a non-blocking box for errors (kept for tests and close)."""
from __future__ import annotations

import logging
from typing import Optional

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMainWindow, QMessageBox

log = logging.getLogger(__name__)


class Messages(QObject):
    errorShown = Signal(str)

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self.window = window
        self.last_error: Optional[str] = None
        self.error_boxes = []
        self.quiet = False               # closing: no new boxes

    def error(self, message: str, title: str = "LipDub Studio") -> None:
        """A readable message: status bar + a non-blocking message box."""
        self.last_error = message
        log.info("error shown: %s", message)
        self.window.statusBar().showMessage(message, 15000)
        if not self.quiet:
            box = QMessageBox(QMessageBox.Warning, title, message, QMessageBox.Ok, self.window)
            box.setAttribute(Qt.WA_DeleteOnClose)
            box.finished.connect(lambda *_, b=box: b in self.error_boxes and self.error_boxes.remove(b))
            self.error_boxes.append(box)
            box.open()
        self.errorShown.emit(message)

    def info(self, text: str, ms: int = 8000) -> None:
        self.window.statusBar().showMessage(text, ms)

    def close_boxes(self) -> None:
        for b in list(self.error_boxes):
            b.close()
        self.error_boxes.clear()
