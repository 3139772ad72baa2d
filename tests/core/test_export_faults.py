"""Faults during export (issue 9): the process killed (kill -9), a full disk, a read-only output folder, the output
named as an input, the input unplugged mid-run. Each gives its own one-line message and exit code (README: 4 media,
5 output), an earlier file under the output name survives, and no partial file is ever left under that name."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_runner import run_cli
from core import media
from core.errors import MediaError, OutputError
from core.pipeline import DubSettings, run_dub
from data_paths import GRID_S1, ROOT, heldout_names

VOICE = ROOT / "resources" / "samples" / "voice_sample.wav"
PREVIOUS = b"an earlier export the user wants to keep"


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture(scope="module")
def heavy_clip(tmp_path_factory):
    """A 3 s GRID clip at high quality (about 1 MB), so decoding is still reading it when the export starts."""
    out = tmp_path_factory.mktemp("faults") / "clip.mp4"
    src = GRID_S1 / "video" / f"{heldout_names()[5]}.mp4"
    subprocess.run([media.ffmpeg_path(), "-v", "error", "-y", "-i", str(src), "-c:v", "libx264", "-preset",
                    "ultrafast", "-crf", "4", "-c:a", "copy", str(out)], check=True)
    return out


@contextlib.contextmanager
def tmpfs(folder: Path, options: str):
    """A small tmpfs mounted at `folder` (root only); skip the test when this machine does not allow it."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


# ------------------------------------------------------------------------------------------------- kill -9
def test_kill_9_mid_export_keeps_the_earlier_output(tmp_path, heavy_clip):
    out = tmp_path / "dub.mp4"
    out.write_bytes(PREVIOUS)
    p = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "dub", "--video", str(heavy_clip), "--audio",
                          str(VOICE), "-o", str(out), "--quiet", "--no-score", "--preset", "slow"],
                         cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        # the export has started when its hidden temporary video file has frames in it
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and p.poll() is None:
            if any(f.stat().st_size > 0 for f in tmp_path.glob(".dub.*.part*")):
                break
            time.sleep(0.05)
        assert p.poll() is None, p.stderr.read().decode()
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)         # the ffmpeg children it started
        p.stderr.close()
    assert p.returncode == -signal.SIGKILL
    assert out.read_bytes() == PREVIOUS
    visible = sorted(f.name for f in tmp_path.iterdir() if not f.name.startswith("."))
    assert visible == ["dub.mp4"]                     # only hidden temporary files may remain
    assert list(tmp_path.glob(".dub.*.part*"))
    # the next export to the same name succeeds and replaces it
    rc, _, stderr = run_cli("dub", "--video", heavy_clip, "--audio", VOICE, "-o", out, "--quiet", "--no-score",
                            "--preset", "ultrafast", "--range", "0", "10")
    assert rc == 0, stderr
    assert media.probe(out).num_frames == 10
    assert [f.name for f in tmp_path.iterdir()] == ["dub.mp4"]   # ... and removes what the killed one left


# ------------------------------------------------------------------------------------------------ full disk
@pytest.mark.parametrize("size", ["48k", "160k", "400k"])
def test_full_disk_is_a_clear_output_error(tmp_path, size):
    """The disk fills while the video is encoded (48k), while the sound is muxed (160k), or at the end (400k):
    exit 5, one line that says the disk is full, nothing left in the folder."""
    video = ROOT / "resources" / "samples" / "grid_s1_sample.mp4"
    with tmpfs(tmp_path / "disk", f"size={size}") as disk:
        out = disk / "dub.mp4"
        rc, _, stderr = run_cli("dub", "--video", video, "--audio", VOICE, "-o", out, "--quiet", "--no-score",
                                "--preset", "ultrafast", "--crf", "10")
        if rc == 0:                                     # it fitted: a complete file, then nothing to prove
            assert media.probe(out).num_frames == 75 and size == "400k"
            pytest.skip("the export fitted in the disk")
        assert rc == 5, stderr
        line = one_error_line(stderr)
        assert "disk" in line.lower() and "space" in line.lower(), line
        assert list(disk.iterdir()) == []


def test_injected_enospc_from_the_encoder_is_a_clear_output_error(tmp_path, monkeypatch):
    """Without root: the encoder's pipe refuses with ENOSPC, as on a full disk."""
    import errno

    class FullDisk:
        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self):
            pass

    real_init = media.VideoWriter.__init__

    def init(self, *a, **kw):
        real_init(self, *a, **kw)
        self._proc.p.stdin = FullDisk()

    monkeypatch.setattr(media.VideoWriter, "__init__", init)
    out = tmp_path / "dub.mp4"
    with pytest.raises(OutputError, match="space"):
        run_dub(DubSettings(video=str(ROOT / "resources" / "samples" / "grid_s1_sample.mp4"), audio=str(VOICE),
                            output=str(out), preset="ultrafast", frame_range=(0, 20)))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- output folder
def test_read_only_output_folder(tmp_path):
    video = ROOT / "resources" / "samples" / "grid_s1_sample.mp4"
    folder = tmp_path / "ro"
    if os.geteuid() == 0:                               # root writes through permission bits: use a read-only mount
        ctx = tmpfs(folder, "size=1m,ro")
    else:
        folder.mkdir()
        folder.chmod(0o555)
        ctx = contextlib.nullcontext(folder)
    with ctx:
        rc, _, stderr = run_cli("dub", "--video", video, "--audio", VOICE, "-o", folder / "dub.mp4", "--quiet")
        assert rc == 5, stderr
        assert "not writable" in one_error_line(stderr)
        assert list(folder.iterdir()) == []


def test_output_that_is_the_input_under_another_name(tmp_path):
    """The same file through a symbolic link (test_pipeline covers the plain path)."""
    video = tmp_path / "clip.mp4"
    video.write_bytes((ROOT / "resources" / "samples" / "grid_s1_sample.mp4").read_bytes())
    link = tmp_path / "link.mp4"
    link.symlink_to(video)
    before = video.read_bytes()
    rc, _, stderr = run_cli("dub", "--video", video, "--audio", VOICE, "-o", link, "--quiet")
    assert rc == 5, stderr
    assert "same as an input file" in one_error_line(stderr)
    assert video.read_bytes() == before


# ---------------------------------------------------------------------------------------- input unplugged
def _pull_mid_export(video: Path, how: str):
    """A progress callback that truncates or deletes `video` once the export has written 16 frames."""
    pulled = []

    def progress(stage, done, total):
        if stage == "dub" and done >= 16 and not pulled:
            if how == "truncated":                      # reads now hit the end: a drive gone from under us
                with open(video, "r+b") as fh:
                    fh.truncate(0)
            else:
                video.unlink()
            pulled.append(done)
    return progress, pulled


def test_input_unplugged_mid_run_is_a_media_error(tmp_path, heavy_clip):
    video = tmp_path / "clip.mp4"
    video.write_bytes(heavy_clip.read_bytes())
    out = tmp_path / "dub.mp4"
    out.write_bytes(PREVIOUS)
    progress, pulled = _pull_mid_export(video, "truncated")
    with pytest.raises(MediaError, match="changed or disappeared") as e:
        run_dub(DubSettings(video=str(video), audio=str(VOICE), output=str(out), preset="ultrafast"), progress)
    assert "\n" not in str(e.value) and pulled
    assert out.read_bytes() == PREVIOUS
    assert sorted(f.name for f in tmp_path.iterdir()) == ["clip.mp4", "dub.mp4"]


def test_input_deleted_mid_run_finishes_from_the_open_file_or_stops_cleanly(tmp_path, heavy_clip):
    """POSIX keeps a deleted file readable through the open decoder: the export completes, with every frame.
    Where it cannot (a reopen for a seek, another OS), it is the media error above, never a partial file."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(heavy_clip.read_bytes())
    frames = media.probe(video).num_frames
    out = tmp_path / "dub.mp4"
    out.write_bytes(PREVIOUS)
    progress, pulled = _pull_mid_export(video, "deleted")
    try:
        res = run_dub(DubSettings(video=str(video), audio=str(VOICE), output=str(out), preset="ultrafast"), progress)
    except MediaError as e:
        assert "\n" not in str(e) and out.read_bytes() == PREVIOUS
    else:
        assert res.num_frames == media.probe(out).num_frames == frames
    assert pulled and sorted(f.name for f in tmp_path.iterdir()) == ["dub.mp4"]
