"""A crash in the middle of writing the autosave (issue 9): the process is killed (SIGKILL) half-way through the
JSON; the previous autosave copy is intact and the next start of the window offers it, and recovers it."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from data_paths import ROOT, SAMPLES

CHILD = textwrap.dedent("""
    import json, os, signal, sys
    sys.path.insert(0, sys.argv[1])
    from core.project import Project

    autosave_dir, video, voice = sys.argv[2:5]
    p = Project(video=video)
    p.add_voice(voice)
    p.range = (0, 10)
    print(p.write_autosave(autosave_dir), flush=True)     # the good copy

    real_dump = json.dump
    def dump_then_die(doc, fh, **kw):                        # the machine dies half-way through the next one
        text = json.dumps(doc, **kw)
        fh.write(text[:len(text) // 2])
        fh.flush()
        os.fsync(fh.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    json.dump = dump_then_die
    p.range = (5, 60)
    p.write_autosave(autosave_dir)
""")


def test_autosave_killed_mid_write_keeps_the_last_copy_and_is_offered_on_next_start(qtbot, make_window, tmp_path):
    video, voice = SAMPLES / "grid_s1_sample.mp4", SAMPLES / "voice_sample.wav"
    autosave_dir = tmp_path / "autosave"
    r = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(autosave_dir), str(video), str(voice)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    good = Path(r.stdout.strip())
    doc = json.loads(good.read_text(encoding="utf-8"))           # whole, valid JSON: the first copy
    assert doc["range"] == [0, 10]
    leftovers = [f.name for f in autosave_dir.iterdir() if f != good]
    assert leftovers and all(n.startswith(".") and n.endswith(".tmp") for n in leftovers)   # only the torn temp

    win = make_window(auto_analyze=False, autosave_dir=autosave_dir)
    offered = []
    win.project_io.ask_recover = lambda rec: offered.append(rec) or True
    assert win.project_io.check_recovery()                      # what app.main does at start-up
    assert [Path(rec.autosave) for rec in offered] == [good.resolve()]
    project = win.session.project
    assert project.video == str(video.resolve()) and project.voice.path == str(voice.resolve())
    assert tuple(project.range) == (0, 10) and win.session.dirty
