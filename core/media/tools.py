"""Finding and running the ffmpeg and ffprobe command-line tools."""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import List, Optional, Tuple, Union


from ..errors import FFmpegMissingError

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

INSTALL_HINT = ("install FFmpeg (Debian/Ubuntu: 'sudo apt install ffmpeg', macOS: 'brew install ffmpeg', "
                "Windows: 'winget install ffmpeg') and make sure it is on PATH, or set $LIPDUB_FFMPEG/$LIPDUB_FFPROBE")


def _configured_or_on_path(variable: str, name: str) -> Optional[str]:
    """The executable `$variable` names (FFmpegMissingError when it names no file), else `name` on PATH, else None."""
    env = os.environ.get(variable)
    if env:
        if Path(env).is_file():
            return env
        raise FFmpegMissingError(f"${variable} points to {env}, which does not exist; fix it or unset it.")
    return shutil.which(name)


def ffmpeg_path() -> str:
    """The ffmpeg executable: $LIPDUB_FFMPEG, else ffmpeg on PATH, else imageio-ffmpeg's bundled binary."""
    exe = _configured_or_on_path("LIPDUB_FFMPEG", "ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and Path(exe).is_file():
            return exe
    except Exception:  # not installed, or no binary for this platform
        pass
    raise FFmpegMissingError(f"ffmpeg was not found: {INSTALL_HINT}.")


def ffprobe_path() -> str:
    """The ffprobe executable: $LIPDUB_FFPROBE, else ffprobe on PATH, else next to ffmpeg.

    Raises FFmpegMissingError when there is none (``probe`` then falls back to parsing ``ffmpeg -i``)."""
    exe = _configured_or_on_path("LIPDUB_FFPROBE", "ffprobe")
    if exe:
        return exe
    try:
        ff = Path(ffmpeg_path())
        cand = ff.with_name(ff.name.replace("ffmpeg", "ffprobe"))
        if cand != ff and cand.is_file():
            return str(cand)
    except FFmpegMissingError:
        pass
    raise FFmpegMissingError(f"ffprobe was not found: {INSTALL_HINT}.")


_VERSION_CACHE: dict = {}


def ffmpeg_version(exe: Optional[str] = None) -> Tuple[int, int]:
    """(major, minor) of an ffmpeg binary; git builds without a release number count as (99, 0)."""
    exe = exe or ffmpeg_path()
    if exe not in _VERSION_CACHE:
        try:
            out = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True,
                                 timeout=30, **_popen_kwargs()).stdout
        except (OSError, subprocess.SubprocessError) as e:
            raise FFmpegMissingError(f"{exe} cannot be run ({e}): {INSTALL_HINT}.") from None
        m = re.search(r"version\s+n?(\d+)\.(\d+)", out)
        _VERSION_CACHE[exe] = (int(m.group(1)), int(m.group(2))) if m else (99, 0)
    return _VERSION_CACHE[exe]


def _popen_kwargs() -> dict:
    if sys.platform == "win32":  # no console window flashing up from the GUI
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
    return {}


def _fps_mode_args(mode: str, version: Tuple[int, int]) -> List[str]:
    if version >= (5, 1):
        return ["-fps_mode", mode]
    return ["-vsync", {"passthrough": "0", "cfr": "1", "vfr": "2"}[mode]]


class _Proc:
    """An ffmpeg child process with a stderr-draining thread and clean shutdown."""

    def __init__(self, args: List[str], *, stdin=False, stdout=True):
        self.args = args
        try:
            self.p = subprocess.Popen(args, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                      stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, **_popen_kwargs())
        except OSError as e:
            raise FFmpegMissingError(f"{args[0]} cannot be run ({e}): {INSTALL_HINT}.") from None
        self._err: deque = deque(maxlen=40)
        self._t = threading.Thread(target=self._drain, daemon=True)
        self._t.start()

    def _drain(self) -> None:
        try:
            for line in iter(self.p.stderr.readline, b""):
                self._err.append(line.decode("utf-8", "replace").rstrip())
        except (OSError, ValueError):
            pass

    def stderr_tail(self, n: int = 1) -> str:
        self._t.join(timeout=2)
        lines = [ln for ln in self._err if ln.strip()]
        return " | ".join(lines[-n:])

    def read_exact(self, n: int) -> Optional[bytearray]:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.p.stdout.readinto(view[got:])
            if not k:
                return None
            got += k
        return buf

    def wait(self, timeout: Optional[float] = None) -> int:
        return self.p.wait(timeout=timeout)

    def close(self) -> None:
        """Stop the process (if still running) and release its pipes; safe to call twice."""
        p = self.p
        for f in (p.stdin, p.stdout):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._t.join(timeout=2)
        if p.stderr is not None and not self._t.is_alive():
            try:
                p.stderr.close()
            except OSError:
                pass
