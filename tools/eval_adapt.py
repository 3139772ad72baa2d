"""Does per-clip adaptation (core.adapt) help on speakers the mouth model never saw? Predictions, no rendering.

    python -m tools.eval_adapt --model M.pt [--ridge 0.1 0.5 2] [--adapt-clips 4] [--json OUT]

Never evaluated on what was adapted on: for GRID s4's evaluation half (24 clips; use a model trained with
`tools.train_mouth --no-s4` for an unseen-speaker figure), the clips are split into groups of `--adapt-clips`
(the "actor's clip" the adaptation sees: 4 clips = 12 s of speech), and every *other* s4 evaluation clip's voice
is predicted with the adapted model and compared with that clip's real mouth. Variants: the clean voice, and
the voice through `tools.proxies.degrade_voice` (reverb, EQ, noise) for both the adaptation and the test.

Metrics per test clip, then averaged: Pearson r of the inner-lip opening (prediction vs real), and amplitude =
std of the predicted opening / std of the real one (1.0: articulates as much as the speaker does).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def opening_metrics(model, clip, wav, head=None):
    from core import mouth_shape as ms
    from tools.train_mouth import pearson

    n = len(clip["disp"])
    m = clip["valid"]
    pred = model.predict(wav, clip["fps"], n, head=head)
    po = ms.shape_opening(clip["neutral"][None] + pred)[m]
    to = ms.shape_opening(clip["neutral"][None] + clip["disp"])[m]
    return pearson(po, to), float(np.std(po) / max(np.std(to), 1e-9))


def adapt_on(model, clips, voices, ridge):
    """Adapt on several clips joined end to end (as one longer clip of the actor)."""
    from core.adapt import adapt_mouth
    from core.audio import voice_activity

    fps = clips[0]["fps"]
    # each clip's frames are laid after the previous one's: cut the joined voice at frame boundaries
    n = sum(len(c["canon"]) for c in clips)
    spf = 16000 / fps
    parts = [np.resize(v, int(round(len(c["canon"]) * spf))) for c, v in zip(clips, voices)]
    wav = np.concatenate(parts)
    lm = np.concatenate([c["landmarks"] for c in clips])
    present = np.concatenate([c["valid"] for c in clips])
    return adapt_mouth(model, wav, fps, lm, present, voice_activity(wav, fps, n), ridge=ridge)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--ridge", type=float, nargs="+", default=[0.05, 0.2, 0.5, 2.0])
    ap.add_argument("--adapt-clips", type=int, default=4)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    import torch

    from core.mouth_shape import AudioToMouth
    from tools import grid_splits
    from tools.grid_cache import load_clip
    from tools.proxies import degrade_voice
    from tools.train_mouth import prepare_clip

    torch.set_num_threads(1)
    model = AudioToMouth.load(a.model, verify=False)
    names = grid_splits.s4_eval_names()
    clips = []
    for nm in names:
        c = prepare_clip(nm)
        c["landmarks"] = load_clip(nm)["landmarks"]
        clips.append(c)
    voices = {"clean": [c["wav"] for c in clips],
              "degraded": [degrade_voice(c["wav"], seed=i) for i, c in enumerate(clips)]}
    k = a.adapt_clips
    groups = [list(range(i, i + k)) for i in range(0, len(clips) - k + 1, k)]
    result = {"model": str(a.model), "adapt_clips": k, "groups": len(groups), "test_clips": len(clips) - k}
    for cond, vs in voices.items():
        base = [opening_metrics(model, c, v) for c, v in zip(clips, vs)]
        result[cond] = {"shipped": {"r": float(np.nanmean([b[0] for b in base])),
                                    "amplitude": float(np.mean([b[1] for b in base]))}}
        for ridge in a.ridge:
            rs, amps, fits = [], [], []
            for g in groups:
                ad = adapt_on(model, [clips[i] for i in g], [vs[i] for i in g], ridge)
                fits.append((ad.fit_r_before, ad.fit_r_after))
                for j, c in enumerate(clips):
                    if j in g:
                        continue
                    r, amp = opening_metrics(model, c, vs[j], head=ad.head)
                    rs.append(r)
                    amps.append(amp)
            result[cond][f"ridge_{ridge}"] = {"r": float(np.nanmean(rs)), "amplitude": float(np.mean(amps)),
                                              "fit_r_before": float(np.mean([f[0] for f in fits])),
                                              "fit_r_after": float(np.mean([f[1] for f in fits]))}
        for key, v in result[cond].items():
            print(f"{cond:<9} {key:<12} r {v['r']:.3f}  amplitude {v['amplitude']:.3f}"
                  + (f"  (in-clip fit r {v['fit_r_before']:.3f} -> {v['fit_r_after']:.3f})" if "fit_r_after" in v
                     else ""))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
