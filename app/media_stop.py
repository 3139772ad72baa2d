"""Stopping a QMediaPlayer without the deadlock its teardown can cause in a Python program.

After `QMediaPlayer.stop()` returns, Qt Multimedia's FFmpeg thread tears the audio renderer down and disconnects it
from the player's QAudioOutput. Qt then calls the output's `disconnectNotify`; the output was made from Python, so
that virtual call goes through PySide and waits for the GIL, while the FFmpeg thread holds one of Qt's connection
locks. If the UI thread, holding the GIL, next needs the same lock (QAction.setChecked after playback stopped did),
both wait forever. `stop_player` therefore waits, with the GIL released, until the renderer has let go.

The same thread also logs Qt warnings (no audio device, ...): a message handler written in Python would need the GIL
there too while the UI thread waits inside stop() for that thread. The app installs none; the tests run pytest-qt
with --no-qt-log for this reason.
"""
from __future__ import annotations

import time

from PySide6.QtCore import SIGNAL

RELEASE_WAIT_S = 1.0      # the renderer lets go in about 1 ms; this only bounds a stalled backend
# the QAudioOutput signals Qt Multimedia's audio renderer connects to
OUTPUT_SIGNALS = (SIGNAL("deviceChanged()"), SIGNAL("volumeChanged(float)"), SIGNAL("mutedChanged(bool)"))


def output_listeners(output) -> int:
    """How many connections Qt Multimedia still holds to the audio output's signals (0 once released)."""
    return 0 if output is None else sum(output.receivers(sig) for sig in OUTPUT_SIGNALS)


def stop_player(player, output) -> None:
    """`player.stop()`, returning once its audio renderer has disconnected from `output` (time.sleep releases
    the GIL, so the FFmpeg thread can finish the Python calls of that disconnection). `output` may be None."""
    player.stop()
    deadline = time.monotonic() + RELEASE_WAIT_S
    while output_listeners(output) and time.monotonic() < deadline:
        time.sleep(0.001)
