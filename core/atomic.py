"""Atomic file writes: a temporary file in the target's folder, renamed over the target only once complete.

A failed or cancelled write leaves the old file (or none) at the target, never half a file. The finished file
gets the permissions of the file it replaces, else the usual ones for a new file (0666 minus the umask), not the
0600 of a temporary file.
"""
from __future__ import annotations

import os
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


@contextmanager
def atomic_write(target, mode: str = "w", encoding: Optional[str] = None, newline: Optional[str] = None,
                 fsync: bool = False) -> Iterator[IO]:
    """`with atomic_write(path) as fh: ...` writes `path` completely or not at all (text: UTF-8 by default)."""
    target = Path(target)
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    try:
        perms = new_file_mode(target)
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, perms)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
