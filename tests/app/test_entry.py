"""`python main.py` for the window: argument handling and a real start-up in a subprocess."""
import os
import subprocess
import sys

from data_paths import ROOT

from app.main import run


def test_bad_arguments_return_codes(tmp_path, capsys):
    assert run(["open"]) == 2
    assert run(["open", str(tmp_path / "missing.lipdub")]) == 4
    assert run([str(tmp_path / "missing.mp4"), str(tmp_path / "voice.wav")]) == 4
    err = capsys.readouterr().err
    assert "file not found" in err and "Traceback" not in err


def test_main_py_opens_the_window_with_media(grid_pair, tmp_path):
    video, voice = grid_pair
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               XDG_DATA_HOME=str(tmp_path / "data"))
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "--smoke-test", video, voice], capture_output=True,
                       text=True, timeout=180, env=env, cwd=str(ROOT))
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    assert "ok: 75 frames, 1 voice track(s)" in r.stdout
