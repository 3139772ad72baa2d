"""PyInstaller runtime hook: runs before main.py in the frozen app.

The install folder may be read-only (a system-wide install), so everything the app writes goes to the user's
folders:
- NUMBA_CACHE_DIR -> <user cache>/LipDubStudio/numba, should numba be bundled (it is not today: nothing in
  core/ or app/ imports librosa any more); without it numba would try to write inside the bundle.
- LIPDUB_DLIB_PREDICTOR -> the 68-point predictor inside the bundle (core.faces.detect also finds it through
  the bundled face_recognition_models package; this is the belt to that brace).
- Child processes (ffmpeg, ffprobe from the system) must not inherit the bundle's library path, or they may load
  the bundle's copies of shared libraries: restore LD_LIBRARY_PATH as it was before the bootloader changed it.
Variables already set by the user are left alone.
"""
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

APP_NAME = "LipDubStudio"


def _user_cache_dir() -> Path:
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    except Exception:  # pragma: no cover - platformdirs is bundled
        return Path(os.path.expanduser("~")) / ".cache" / APP_NAME


def _writable_dir(preferred: Path, fallback_name: str) -> str:
    for d in (preferred, Path(tempfile.gettempdir()) / f"{fallback_name}-{os.getuid() if hasattr(os, 'getuid') else 0}"):
        try:
            d.mkdir(parents=True, exist_ok=True)
            probe = d / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
            return str(d)
        except OSError:
            continue
    return str(preferred)


def _inside(path: str, base: Path) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), str(base)]) == str(base)
    except ValueError:
        return False


def _setup() -> None:
    base = Path(getattr(sys, "_MEIPASS", os.path.dirname(os.path.abspath(sys.executable))))
    if not os.environ.get("NUMBA_CACHE_DIR") and importlib.util.find_spec("numba") is not None:
        os.environ["NUMBA_CACHE_DIR"] = _writable_dir(_user_cache_dir() / "numba", "lipdub-numba")
    predictor = base / "face_recognition_models" / "models" / "shape_predictor_68_face_landmarks.dat"
    if not os.environ.get("LIPDUB_DLIB_PREDICTOR") and predictor.is_file():
        os.environ["LIPDUB_DLIB_PREDICTOR"] = str(predictor)
    if sys.platform.startswith("linux"):
        orig = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
        if orig is not None:
            os.environ["LD_LIBRARY_PATH"] = orig
        elif "LD_LIBRARY_PATH" in os.environ:
            keep = [p for p in os.environ["LD_LIBRARY_PATH"].split(os.pathsep) if p and not _inside(p, base)]
            if keep:
                os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(keep)
            else:
                del os.environ["LD_LIBRARY_PATH"]


_setup()
