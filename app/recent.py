"""Recently used projects, videos, voice tracks and exports (QSettings), offered in File ▸ Open Recent."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtWidgets import QMenu

MAX_RECENT = 8


class RecentFiles:
    def __init__(self, qsettings):
        self.qsettings = qsettings

    def items(self, kind: str) -> list:
        v = self.qsettings.value(f"recent/{kind}", [])
        if isinstance(v, str):
            v = [v]
        return [x for x in (v or []) if x]

    def remember(self, kind: str, path: Optional[str]) -> None:
        if not path:
            return
        items = [p for p in self.items(kind) if p != path]
        items.insert(0, path)
        self.qsettings.setValue(f"recent/{kind}", items[:MAX_RECENT])

    def fill_menu(self, menu: QMenu, openers) -> None:
        """openers: (kind, section label, fn(path)) in menu order."""
        menu.clear()
        any_item = False
        for kind, label, fn in openers:
            items = [p for p in self.items(kind) if Path(p).exists()]
            if not items:
                continue
            menu.addSection(label)
            for p in items:
                a = menu.addAction(Path(p).name)
                a.setToolTip(p)
                a.triggered.connect(lambda *_, f=fn, q=p: f(q))
                any_item = True
        if not any_item:
            menu.addAction("(nothing yet)").setEnabled(False)
