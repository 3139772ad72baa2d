"""Atomic file writes: a temporary file in the target's folder, renamed over the target only once complete.

A failed or cancelled write leaves the old file (or none) at the target, never half a file. The finished file
gets the permissions of the file it replaces, else the usual ones for a new file (0666 minus the umask), not the
0600 of a temporary file.

Temporaries are hidden and named after their owner (`.{stem}.{host}-{pid}.XXXX{suffix}`): a process killed
mid-write (kill -9, power cut) cannot remove its own, so the next write of the same target removes those whose
owner no longer runs on this host, and the temporaries written through them (`..{stem}.{host}-{pid}.…`: a batch
row's output is written through its own temporary). Another host's temporaries (a shared folder) are never touched.
"""
from __future__ import annotations

import glob
import os
import re
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Optional


def new_file_mode(target: Path) -> int:
    """Permissions for a finished file: those of the file it replaces, else the default for new files."""
    try:
        return Path(target).stat().st_mode & 0o777
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def owner() -> str:
    """This process's part of its temporaries' names: `{host}-{pid}`."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _running(pid: int) -> bool:
    if os.name != "posix":
        return True                 # (no signal-0 probe elsewhere: their temporaries are kept)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                 # another user's live process
    return True


def temporaries_of(target, owner_prefix: str = "") -> list:
    """Paths of `target`'s temporaries whose owner part starts with `owner_prefix`, and of the temporaries written
    through them (one more leading dot)."""
    target = Path(target)
    folder = target.resolve().parent
    return [n for dots in (".", "..")
            for n in glob.glob(glob.escape(str(folder / f"{dots}{target.stem}.{owner_prefix}")) + "*")]


def remove_stale_temporaries(target) -> list:
    """Remove the temporaries of `target` left by processes of this host that no longer run. Returns them."""
    target = Path(target)
    host = socket.gethostname()
    own = re.compile(rf"^\.\.?{re.escape(target.stem)}\.{re.escape(host)}-(\d+)\.")
    removed = []
    for name in temporaries_of(target, f"{host}-"):
        m = own.match(Path(name).name)
        if m and not _running(int(m.group(1))):
            try:
                Path(name).unlink()
                removed.append(Path(name))
            except OSError:
                pass                # (gone already, or not ours to remove: left alone)
    return removed


def temporary_beside(target, suffix: str) -> Path:
    """A new empty hidden file in `target`'s folder to write `target` through (see the module's naming); the
    stale temporaries of `target` are removed first."""
    target = Path(target)
    remove_stale_temporaries(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.{owner()}.", suffix=suffix, dir=str(target.resolve().parent))
    os.close(fd)
    return Path(name)


def name_beside(target, suffix: str, tag: str) -> Path:
    """A new owner-named path in `target`'s folder (`.{stem}.{host}-{pid}.{tag}-XXXX{suffix}`), not created: for a
    writer that makes the file itself, with its normal permissions. The stale temporaries of `target` are removed
    first."""
    import secrets

    target = Path(target)
    remove_stale_temporaries(target)
    return target.resolve().parent / f".{target.stem}.{owner()}.{tag}-{secrets.token_hex(4)}{suffix}"


@contextmanager
def atomic_write(target, mode: str = "w", encoding: Optional[str] = None, newline: Optional[str] = None,
                 fsync: bool = False) -> Iterator[IO]:
    """`with atomic_write(path) as fh: ...` writes `path` completely or not at all (text: UTF-8 by default)."""
    target = Path(target)
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    tmp = temporary_beside(target, target.suffix + ".tmp")
    try:
        perms = new_file_mode(target)
        with open(tmp, mode, encoding=encoding, newline=newline) as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, perms)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
