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
