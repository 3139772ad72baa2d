"""main.exit_now: a finished command-line process ends without the interpreter's teardown, but after what a normal
exit does first (non-daemon threads joined, atexit handlers, buffered output flushed), with the command's exit code."""
import subprocess
import sys

from data_paths import ROOT

CHILD = r"""
import atexit, sys, threading, time, tempfile, pathlib
sys.path.insert(0, sys.argv[1])
import main
out = pathlib.Path(sys.argv[2])
keep = tempfile.TemporaryDirectory(dir=out)          # cleaned up by its atexit finaliser
(pathlib.Path(keep.name) / "x").write_text("x")
atexit.register(lambda: (out / "atexit").write_text("ran"))
threading.Thread(target=lambda: (time.sleep(0.3), (out / "thread").write_text("done"))).start()
sys.stdout.write('{"buffered": true}')               # no newline: still in the buffer
main.exit_now(int(sys.argv[3]) if sys.argv[3] != "none" else None)
"""


def test_exit_now_finishes_like_a_normal_exit(tmp_path):
    for code, expect in (("0", 0), ("7", 7), ("none", 0)):
        d = tmp_path / code
        d.mkdir()
        r = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(d), code], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == expect, r.stderr
        assert r.stdout == '{"buffered": true}'
        assert (d / "atexit").read_text() == "ran" and (d / "thread").read_text() == "done"
        assert sorted(p.name for p in d.iterdir()) == ["atexit", "thread"]      # the temporary folder is gone
