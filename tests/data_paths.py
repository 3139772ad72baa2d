"""Where the test data lives: one place for every test module.

(Not in conftest.py: tests/core/conftest.py and tests/conftest.py share the module name `conftest`, so
`from conftest import ...` resolves to whichever pytest imported last.)
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GRID_S1 = SHARED / "data" / "grid_s1"
GRID_OTHERS = SHARED / "data" / "grid_others"
REFERENCE = SHARED / "reference"
SAMPLES = ROOT / "resources" / "samples"


def heldout_names():
    """The held-out GRID s1 clip names (evaluation only, never trained on)."""
    return (GRID_S1 / "heldout.txt").read_text().split()


def read_frames(path) -> list:
    """Every frame of a (small) clip as BGR uint8 arrays, as OpenCV decodes it. For tests on 3 s clips only:
    the program itself streams (core.media)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
    finally:
        cap.release()
    assert frames, f"could not decode {path}"
    return frames
