"""Which GRID clips each training and evaluation script may read: one definition for all of them.

- s1: `grid_s1/heldout.txt` (250 clips) is evaluation only; the other 750 are for training and validation.
- s4: every second clip in sorted order (24 clips, `s4_eval_names`) is evaluation only; the other 25 are trained on
  (`s4_train_names`). Models trained on them are *not* speaker-independent figures for s4: the unseen-speaker
  figures come from grid_others, which no script trains on.
- grid_others: ten speakers, one clip each, evaluation only.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
GRID_S1 = DATA / "grid_s1"
GRID_S4 = DATA / "grid_s4"
GRID_OTHERS = DATA / "grid_others"


def s1_names() -> list[str]:
    return sorted(p.stem for p in (GRID_S1 / "video").glob("*.mp4"))


def s1_heldout_names() -> list[str]:
    return (GRID_S1 / "heldout.txt").read_text().split()


def s1_pool() -> list[str]:
    """The 750 s1 clips that may be trained on (never the held-out ones)."""
    held = set(s1_heldout_names())
    return [n for n in s1_names() if n not in held]


def s4_names() -> list[str]:
    return sorted(p.stem for p in (GRID_S4 / "video").glob("*.mp4"))


def s4_train_names() -> list[str]:
    return s4_names()[0::2]


def s4_eval_names() -> list[str]:
    return s4_names()[1::2]


def others_names() -> list[str]:
    return sorted(p.stem for p in GRID_OTHERS.glob("*.mpg"))


def video_path(name: str) -> Path:
    """The clip of that name in any of the three sets."""
    for p in (GRID_S1 / "video" / f"{name}.mp4", GRID_S4 / "video" / f"{name}.mp4", GRID_OTHERS / f"{name}.mpg"):
        if p.exists():
            return p
    raise FileNotFoundError(f"no GRID clip named {name}")
