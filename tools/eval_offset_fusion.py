"""The A/V offset from two witnesses (core.sync.av_offset): the sync scorer's distance curve and the audio->mouth
model's predicted opening correlated with the tracked opening. How often is an injected delay found within one frame,
with the scorer alone, the mouth model alone, and both at several weights?

For every clip and every injected delay k = -8..+8 (as tools/eval_sync.py: a delay of k frames must give offset -k),
exactly what `core.sync.scoring.score_clip(..., offset_model=...)` computes: the scorer's mean distance per candidate
offset (sync_lite, -15..+15) and `core.sync.av_offset.mouth_curve` for the delayed voice, combined by
`core.sync.av_offset.best_candidate`. The shipped weight (MOUTH_WEIGHT) was set a priori (equal say); s1_val, the
selection set, is the only set it may be judged on; every other set is evaluation.

    LIPDUB_DATA_CACHE=... python -m tools.eval_offset_fusion [--sets s1_val others s4_eval proxies] [--weights W]
        [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHIFTS = list(range(-8, 9))
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def clip_curves(scorer, model, name, path, wav, fps):
    """(candidate offsets, {k: (scorer mean distances, mouth r, scorer's own offset)})."""
    from core.sync.av_offset import mouth_curve
    from core.sync.scoring import lse_from_features
    from tools.eval_sync import clip_track, delay, embed_shifts

    reach = max(abs(k) for k in SHIFTS)
    _, vfeat, every, n = embed_shifts(scorer, path, name, wav, fps, reach)
    m = len(vfeat)
    track = clip_track(name, path)
    offsets = scorer.vshift - np.arange(2 * scorer.vshift + 1)        # mean_dists[j] <-> offset vshift - j
    out = {}
    for k in SHIFTS:
        r = lse_from_features(vfeat, every[reach - k:reach - k + m], scorer.vshift)
        mouth = mouth_curve(model, delay(wav, k, fps), fps, track["landmarks"][:n], track["present"][:n], offsets)
        out[k] = (np.asarray(r.mean_dists, np.float64), mouth, int(r.offset_frames))
    return offsets, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["s1_val", "others", "s4_eval", "proxies"])
    ap.add_argument("--limit", type=int, default=100, help="first N clips of s1 sets")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--weights", default=None, help="sync_lite weights (default: the shipped ones)")
    a = ap.parse_args()

    import torch

    from core import mouth_shape as ms
    from core.sync.av_offset import best_candidate
    from core.sync.scorers.lite import LiteScorer
    from tools.eval_sync import load_sets

    torch.set_num_threads(1)
    scorer = LiteScorer.load(a.weights)
    model = ms.AudioToMouth.load()
    results = {}
    for label, items in load_sets(a.sets, a.limit):
        rows = []
        for name, path, wav, fps in items:
            try:
                offsets, curves = clip_curves(scorer, model, name, path, wav, fps)
            except Exception as exc:  # noqa: BLE001 - a clip without a face: skipped, counted
                print(f"skip {name}: {exc}", file=sys.stderr)
                continue
            rows.append(curves)
        res = {"clips": len(rows)}
        for w in WEIGHTS:
            hits = [abs(int(offsets[best_candidate(md, mouth, w)]) + k) <= 1
                    for curves in rows for k, (md, mouth, _) in curves.items()]
            res[f"w={w:g}"] = float(np.mean(hits))
        res["mouth_only"] = float(np.mean([abs(int(offsets[int(np.argmax(mouth))]) + k) <= 1
                                           for c in rows for k, (_, mouth, _) in c.items()]))
        res["scorer_only"] = float(np.mean([abs(o + k) <= 1 for c in rows for k, (_, _, o) in c.items()]))
        results[label] = res
        print(label, json.dumps(res), flush=True)
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
