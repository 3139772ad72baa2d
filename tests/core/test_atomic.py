"""core.atomic: whole file or nothing, with the permissions of a normal new file."""
import os
import stat

import pytest

from core.atomic import atomic_write


def test_new_file_gets_umask_permissions_not_temp_file_ones(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "report.csv"
        with atomic_write(target, newline="") as fh:
            fh.write("frame,confidence\n0,1.5\n")
        assert target.read_text() == "frame,confidence\n0,1.5\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]
    finally:
        os.umask(old)


def test_failure_keeps_the_old_file_and_its_mode(tmp_path):
    target = tmp_path / "project.lipdub"
    target.write_text("good")
    target.chmod(0o600)
    with pytest.raises(RuntimeError):
        with atomic_write(target, fsync=True) as fh:
            fh.write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["project.lipdub"]
    with atomic_write(target) as fh:
        fh.write("better")
    assert target.read_text() == "better" and stat.S_IMODE(target.stat().st_mode) == 0o600


def test_binary_mode(tmp_path):
    with atomic_write(tmp_path / "t.npz", "wb") as fh:
        fh.write(b"\x00\x01")
    assert (tmp_path / "t.npz").read_bytes() == b"\x00\x01"


def test_the_next_write_removes_what_a_killed_writer_left_and_nothing_else(tmp_path):
    """A process killed mid-write cannot remove its temporary; the next write of the same target removes those
    of dead processes on this host, and keeps live owners', other hosts' and other targets' temporaries."""
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    host = socket.gethostname()
    target = tmp_path / "dub.mp4"
    target.write_bytes(b"earlier")
    torn = [tmp_path / f".dub.{host}-{dead_pid}.a1b2c3.part.video.mp4", tmp_path / f".dub.{host}-{dead_pid}.x.mp4.tmp",
            tmp_path / f"..dub.{host}-{dead_pid}.batch-0a.{host}-{dead_pid}.y.mp4"]   # written through a temporary
    kept = [tmp_path / f".dub.{host}-{os.getppid()}.zz.part.video.mp4",      # a live writer of the same target
            tmp_path / f".dub.other-host-{dead_pid}.q.part.video.mp4",       # another machine's (shared folder)
            tmp_path / f".dubbed.{host}-{dead_pid}.q.part.video.mp4"]        # another target's
    for p in torn + kept:
        p.write_bytes(b"half")
    with atomic_write(target, "wb") as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name] + [p.name for p in kept])
