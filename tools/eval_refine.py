"""Does per-clip refinement (core/sync/refine.py) help on a long face the scorer never saw?

    python -m tools.eval_refine --heads FILE [--steps 300] [--json out.json]        # the heads alone, cached embeddings
    python -m tools.eval_refine --heads FILE --product [--reverse] [--json out.json]  # the product's lane, end to end

FILE: sync_asd heads trained with GRID s4 held out (`python -m tools.train_sync_asd train --s4 heldout --out FILE`),
so s4 (49 clips, 147 s, one speaker) is an unseen face. Its clips in name order stand for one long clip: the
refinement reads the first half (its own voice, in sync), the figures are taken on the second half only, before and
after, with the clean picture and voice, the camera-degraded picture and the room-degraded voices of the prep
(tools/train_sync_asd.py: `prep` caches them). Figures: own offset found within +-1 frame (shifts -8..8), the share
of voiced frames shaded low with the own voice, the voice 8 frames late and another clip's voice (fixed threshold).

`--product`: the first half's clips joined into one long video (ffmpeg concat) are adapted as the dub does
(core.adapt.adapt_clip with the `fused` scorer over FILE: the lane threshold and, with enough speech, the refit);
each clip of the second half is then scored as the lane does (core.sync.scoring.score_clip, the adaptation's threshold
and judgeability) with its own voice, the voice 8 frames late and the next clip's voice: without and with the refit.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_heads(path):
    """(SyncHeads, the file's training record) of a heads file written by tools.train_sync_asd."""
    import torch

    from core.sync.asd.head import SyncHeads

    payload = torch.load(path, map_location="cpu", weights_only=True)
    heads = SyncHeads(**payload.get("config", {}))
    heads.load_state_dict(payload["state_dict"])
    return heads.eval(), payload.get("training", {})


def refinement_data(heads, clips):
    """(trunk (M, 640), audio_emb (M, D), speech (M,)) of the clips end to end (clean picture and voice)."""
    import torch

    from core.sync.asd.head import WINDOW, windows

    trunks, audio, speech = [], [], []
    with torch.no_grad():
        for v, a, voiced in clips.values():
            vw = windows(torch.as_tensor(v[0]))
            trunks.append(vw.flatten(1).numpy())
            audio.append(heads.audio(windows(torch.as_tensor(a[0]))).numpy())
            speech.append(np.array([voiced[t:t + WINDOW].mean() for t in range(len(vw))]))
    return np.concatenate(trunks), np.concatenate(audio), np.concatenate(speech)


def variant(clips, cv: int, ca: int):
    return {n: (v[cv:cv + 1], a[ca:ca + 1], voiced) for n, (v, a, voiced) in clips.items()}


def product_lane(heads_path: Path, first: list, rest: list, workdir: Path, proxy: bool = False) -> dict:
    """The product's lane on `rest` after adapting on `first` joined into one video (see the module docstring).
    `proxy`: every video as its HD head-motion proxy and every judged voice through a room (tools.proxies)."""
    import subprocess

    from core import media
    from core.adapt import Adaptation, adapt_clip
    from core.faces.track import track_video
    from core.mouth_shape import AudioToMouth
    from core.sync.scorers.fused import FusedScorer
    from core.sync.scoring import score_clip
    from tools import grid_splits
    from tools.eval_sync import delay, load_wav
    from tools.proxies import degrade_voice, make_proxy

    workdir.mkdir(parents=True, exist_ok=True)
    listing = workdir / "first.txt"
    listing.write_text("".join(f"file '{grid_splits.GRID_S4 / 'video' / (n + '.mp4')}'\n" for n in first))
    long_clip = workdir / "first_half.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-c:a", "aac", str(long_clip)], check=True)
    if proxy:
        long_clip = make_proxy(long_clip, workdir / "first_half_hd.mp4")
    scorer = FusedScorer.load(heads_path)
    info = media.probe(str(long_clip))
    track = track_video(str(long_clip)).tracks[0]
    refit = adapt_clip(str(long_clip), info, track, model=AudioToMouth.load(), scorer=scorer, use_cache=False)
    plain = Adaptation(head=None, own_offset=refit.own_offset, own_confidence=refit.own_confidence,
                       own_speaking=refit.own_speaking)
    print("adaptation:", refit.message)
    out = {"adaptation": refit.to_json(), "clips": {}}
    totals = {k: {c: [0, 0] for c in ("own", "late8", "other")} for k in ("before", "after")}
    for i, name in enumerate(rest):
        path = grid_splits.GRID_S4 / "video" / f"{name}.mp4"
        own = load_wav(path)
        voices = {"own": own, "late8": delay(own, 8), "other": load_wav(grid_splits.GRID_S4 / "video" /
                                                                        f"{rest[(i + 1) % len(rest)]}.mp4")}
        if proxy:
            path = make_proxy(path, workdir / f"{name}_hd.mp4")
            voices = {k: degrade_voice(v, seed=i).astype(np.float32) for k, v in voices.items()}
        path = str(path)
        cinfo = media.probe(path)
        ctrack = track_video(path).tracks[0]
        row = {}
        for label, ad in (("before", plain), ("after", refit)):
            sc, face = ad.lane_scorer(scorer), None
            for case, wav in voices.items():
                rep = score_clip(path, wav, ctrack, sc, fps=float(cinfo.fps), low_threshold=ad.low_threshold,
                                 judgeable=ad.judgeable, face=face)
                face = rep.face
                voiced = rep.voiced & rep.valid
                low = int((rep.low & voiced).sum())
                totals[label][case][0] += low
                totals[label][case][1] += int(voiced.sum())
                row[f"{label}_{case}"] = round(low / max(int(voiced.sum()), 1), 3)
        out["clips"][name] = row
    out["low_share"] = {k: {c: round(a / max(b, 1), 3) for c, (a, b) in v.items()} for k, v in totals.items()}
    out["threshold"] = {"before": plain.low_threshold, "after": refit.low_threshold}
    for k in ("before", "after"):
        print(f"{k:6s} threshold {out['threshold'][k]:.2f}  " +
              "  ".join(f"{c} {v:.3f}" for c, v in out["low_share"][k].items()))
    return out


def main(argv=None) -> int:
    import torch

    from core.sync.asd.head import EMBED, WINDOW
    from core.sync.refine import ANCHOR, LEARNING_RATE, STEPS, refine_head
    from tools import grid_splits
    from tools.train_sync_asd import load_prepped, selection_metrics

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--heads", required=True)
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=LEARNING_RATE)
    p.add_argument("--anchor", type=float, default=ANCHOR)
    p.add_argument("--reverse", action="store_true", help="refine on the second half, judge on the first")
    p.add_argument("--product", action="store_true", help="the product's lane end to end (see above)")
    p.add_argument("--proxy", action="store_true", help="--product on HD head-motion proxies, voices through a room")
    p.add_argument("--workdir", default=None, help="--product: where the joined clip goes (default: a temp folder)")
    p.add_argument("--json")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    heads, training = load_heads(a.heads)
    if training.get("s4") != "heldout":
        print("warning: these heads were not trained with --s4 heldout: s4 is not an unseen face for them")
    names = grid_splits.s4_names()
    if a.product:
        import tempfile

        half = len(names) // 2
        first, rest = (names[half:], names[:half]) if a.reverse else (names[:half], names[half:])
        out = product_lane(Path(a.heads), first, rest, Path(a.workdir or tempfile.mkdtemp(prefix="eval_refine_")),
                           proxy=a.proxy)
        if a.json:
            Path(a.json).write_text(json.dumps(out, indent=1))
        return 0
    clips = load_prepped(names)
    half = len(names) // 2
    first, rest = {n: clips[n] for n in names[:half]}, {n: clips[n] for n in names[half:]}
    if a.reverse:
        first, rest = {n: clips[n] for n in names[half:]}, {n: clips[n] for n in names[:half]}
    trunk, audio, speech = refinement_data(heads, first)
    print(f"refining on {len(first)} clips ({len(trunk) / 25:.0f} s, {speech.mean() * len(trunk) / 25:.0f} s voiced);"
          f" judging on {len(rest)}")
    tuned = refine_head(heads.video, lambda h, x: h(x.view(len(x), WINDOW, EMBED)), trunk, audio, speech,
                        steps=a.steps, seed=a.seed, learning_rate=a.lr, anchor=a.anchor)
    refined = copy.deepcopy(heads)
    refined.video = tuned
    sets = {"clean": (0, 0), "camera": (1, 0)}
    sets.update({f"room{k}": (0, k) for k in range(1, next(iter(rest.values()))[1].shape[0])})
    out = {}
    for label, (cv, ca) in sets.items():
        data = variant(rest, cv, ca)
        before, after = selection_metrics(heads, data), selection_metrics(refined, data)
        out[label] = {"before": before, "after": after}
        print(f"{label:7s} " + "  ".join(f"{k} {before[k]:.3f}->{after[k]:.3f}" for k in before))
    if a.json:
        Path(a.json).write_text(json.dumps({"heads": str(a.heads), "steps": a.steps, "lr": a.lr, "anchor": a.anchor,
                                            "reverse": a.reverse, "sets": out}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
