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


def configure_environment() -> None:
    """What the libraries read from the environment when they load: before anything imports them."""
    # numba (librosa) must cache its compiled code somewhere writable, also from a read-only install.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(_user_cache_dir() / "numba"))
    # numpy's and scipy's OpenBLAS: our matrices are small, and after each call its second thread spins for a while
    # waiting for more (0.4-0.6 CPU-s of a 3 s dub, nothing gained on a 20 s one; outputs identical)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_environment()
    if argv and argv[0] in HEADLESS_COMMANDS:
        from core.cli import main as cli_main

        return cli_main(argv)
    from app.main import run

    return run(argv)


def exit_now(code) -> None:
    """End a finished command-line process without the interpreter's teardown (freeing every module and torch's,
    ~0.3-1 s once torch is loaded): what a normal exit does first still happens (non-daemon threads joined, standard
    streams flushed, atexit handlers such as logging's and temporary folders' run), then `os._exit`."""
    import atexit
    import threading

    code = 0 if code is None else code
    if not isinstance(code, int):             # sys.exit("message") semantics
        print(code, file=sys.stderr)
        code = 1
    for t in threading.enumerate():
        if t is not threading.main_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)


if __name__ == "__main__":
    headless = bool(sys.argv[1:]) and sys.argv[1] in HEADLESS_COMMANDS
    rc = main()
    if headless:
        exit_now(rc)
    sys.exit(rc)
