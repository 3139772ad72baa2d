"""Fixtures for driving the real studio window offscreen (pytest-qt)."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from data_paths import GRID_S1, SAMPLES, heldout_names  # noqa: E402


@pytest.fixture(scope="session")
def grid_pair():
    """(video, voice): two held-out GRID s1 clips; the second one's audio is the new voice."""
    names = heldout_names()
    v = GRID_S1 / "video" / f"{names[0]}.mp4"
    a = GRID_S1 / "video" / f"{names[1]}.mp4"
    assert v.is_file() and a.is_file(), "../shared/data/grid_s1 is missing"
    return str(v), str(a)


@pytest.fixture(scope="session")
def sample_voice():
    return str(SAMPLES / "voice_sample.wav")


@pytest.fixture(scope="session")
def track_cache(private_cache):
    """The run's shared track cache (tests/conftest.py): a clip the core tests tracked is a cache hit here."""
    return str(private_cache / "tracks")


@pytest.fixture
def make_window(qtbot, tmp_path, track_cache):
    """Factory for MainWindow instances with private QSettings/autosave folders; closed after the test."""
    from PySide6.QtCore import QSettings

    from app.main_window import MainWindow

    made = []

    def make(auto_analyze=True, settings_file=None, autosave_dir=None):
        s = QSettings(str(settings_file or tmp_path / "settings.ini"), QSettings.IniFormat)
        w = MainWindow(settings=s, autosave_dir=str(autosave_dir or tmp_path / "autosave"),
                       auto_analyze=auto_analyze, track_cache_dir=track_cache)
        w.project_io.ask_unsaved = lambda: "discard"
        w.project_io.ask_recover = lambda rec: False
        qtbot.addWidget(w)
        w.resize(1200, 800)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.session.dirty = False
        w.shutdown()
        w.close()

