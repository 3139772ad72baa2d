"""Extract per-frame face boxes and 68 landmarks for the GRID clips (training/evaluation data cache).

    python -m tools.grid_cache [--out DIR] [--jobs 2] [--subset s1|s4|others|all]

Writes one `NAME.npz` per clip (boxes (N,4), landmarks (N,68,2), present (N,), fps) into DIR
(default: $LIPDUB_DATA_CACHE, else `grid` in the user cache folder, see core.paths). Resumable: clips already done are skipped.
dlib HOG detection on every 5th frame, landmarks on every frame (FINDINGS: matches per-frame detection at r>=0.99).
"""
from __future__ import annotations

import argparse
import os
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def default_cache_dir() -> Path:
    """$LIPDUB_DATA_CACHE (a prepared landmark cache), else `grid` in the user cache folder (core.paths)."""
    from core.paths import user_cache_dir

    env = os.environ.get("LIPDUB_DATA_CACHE")
    return Path(env) if env else user_cache_dir("grid")


def clip_paths(subset: str):
    out = []
    if subset in ("s1", "all"):
        out += sorted((SHARED / "grid_s1" / "video").glob("*.mp4"))
    if subset in ("s4", "all"):
        out += sorted((SHARED / "grid_s4" / "video").glob("*.mp4"))
    if subset in ("others", "all"):
        out += sorted((SHARED / "grid_others").glob("*.mpg"))
    return out


def extract(path: Path, detect_every: int = 5):
    import cv2

    backend = _backend()
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    boxes, lms, present = [], [], []
    box = None
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % detect_every == 0 or box is None:
            found = backend.detect(frame)
            if found:
                box = found[0]
        if box is not None:
            lm = backend.landmarks(frame, box)
            boxes.append(box)
            lms.append(lm)
            present.append(True)
        else:
            boxes.append(np.full(4, np.nan, np.float32))
            lms.append(np.full((68, 2), np.nan, np.float32))
            present.append(False)
        i += 1
    cap.release()
    return dict(boxes=np.array(boxes, np.float32), landmarks=np.array(lms, np.float32),
                present=np.array(present, bool), fps=np.float32(fps))


_BACKEND = None


def _backend():
    global _BACKEND
    if _BACKEND is None:
        from core.faces.detect import DlibBackend
        _BACKEND = DlibBackend()
    return _BACKEND


def _work(args):
    path, out_dir = args
    target = Path(out_dir) / (path.stem + ".npz")
    if target.exists():
        return path.stem, "cached"
    data = extract(path)
    from core.atomic import atomic_write

    with atomic_write(target, "wb") as fh:      # a temporary name of its own: two processes may make the same clip
        np.savez_compressed(fh, **data)
    return path.stem, f"{int(data['present'].sum())}/{len(data['present'])} frames with a face"


def load_clip(name: str, cache_dir: Path | None = None) -> dict:
    """Cached track of one clip; extracts it on the spot if missing."""
    cache_dir = Path(cache_dir or default_cache_dir())
    f = cache_dir / f"{name}.npz"
    if not f.exists():
        paths = [p for p in clip_paths("all") if p.stem == name]
        if not paths:
            raise FileNotFoundError(name)
        cache_dir.mkdir(parents=True, exist_ok=True)
        _work((paths[0], cache_dir))
    with np.load(f) as z:
        return {k: z[k] for k in z.files}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=default_cache_dir())
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--subset", default="all", choices=["s1", "s4", "others", "all"])
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    paths = clip_paths(a.subset)
    from tqdm import tqdm
    with Pool(a.jobs) as pool:
        for _ in tqdm(pool.imap_unordered(_work, [(p, a.out) for p in paths]), total=len(paths)):
            pass


if __name__ == "__main__":
    main()
