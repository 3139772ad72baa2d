"""LipDub Studio entry point.

    python main.py                      the studio window
    python main.py open PROJECT.lipdub  the window with a project
    python main.py VIDEO AUDIO          the window with media loaded
    python main.py dub|score|qc|models ... headless command line (see `python main.py dub --help`)
"""
import os
import sys
from pathlib import Path

HEADLESS_COMMANDS = {"dub", "score", "qc", "models", "batch", "-h", "--help"}


def _user_cache_dir() -> Path:
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("LipDubStudio"))
    except ImportError:
        return Path.home() / ".cache" / "LipDubStudio"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # numba (librosa) must cache its compiled code somewhere writable, also from a read-only install.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(_user_cache_dir() / "numba"))
    if argv and argv[0] in HEADLESS_COMMANDS:
        from core.cli import main as cli_main

        return cli_main(argv)
    from app.main import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
