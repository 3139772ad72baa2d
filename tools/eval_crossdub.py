"""Cross-dub evaluation of the classic engine, where the ground truth exists (GRID s1 really said every sentence).

    python -m tools.eval_crossdub [--pairs 12] [--json out/crossdub.json]

For pairs (X, Y) of *held-out* s1 clips (`--split val`: of the mouth model's validation clips, for choosing engine
settings) with different sentences, dub video X with the audio of Y and
1. track the output's mouth (fresh dlib detection, no cache) and compare it with Y's real tracked mouth:
   LMD (mouth points, inter-ocular units, each clip's own neutral mouth removed) and Pearson r of the inner-mouth
   opening; against (a) the undubbed X, (b) the engine driven by the mean shape, (c) the engine driven by
   loudness (opening proportional to log-RMS);
2. score sync with the shipped scorer: dubbed X + Y's voice vs the original X + Y's voice (mismatched), and X
   dubbed with its own voice (must stay in sync), with real Y + Y's voice as the reference.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
S1 = ROOT.parent / "shared" / "data" / "grid_s1"


def sentence(name: str) -> str:
    words = [ln.split()[2] for ln in (S1 / "align" / f"{name}.align").read_text().splitlines() if ln.strip()]
    return " ".join(w for w in words if w not in ("sil", "sp"))


def split_names(split: str) -> list:
    """'heldout' (evaluation) or 'val' (the mouth model's validation clips: where engine settings may be chosen)."""
    if split == "val":
        from tools.train_mouth import training_split
        return training_split()[1]
    return (S1 / "heldout.txt").read_text().split()


def pick_pairs(n: int, split: str = "heldout"):
    names = split_names(split)
    rng = np.random.default_rng(0)
    pairs = []
    while len(pairs) < n:
        x, y = rng.choice(names, 2, replace=False)
        if sentence(x).split()[0] != sentence(y).split()[0]:   # different command word: clearly different
            pairs.append((str(x), str(y)))
    return pairs


def mouth_series(landmarks: np.ndarray, present: np.ndarray):
    """Neutral-relative canonical mouth points (N,20,2) and inner opening (N,) in IOD units."""
    from core import mouth_shape as ms
    from core.faces import geometry as geo

    canon, _ = ms.normalize(landmarks)
    neutral = ms.clip_neutral(canon, present)          # (K,2) over SHAPE_POINTS
    mouth_rows = ms.MOUTH_IN_SHAPE
    pts = canon[:, ms.SHAPE_POINTS][:, mouth_rows] - neutral[mouth_rows]
    return pts, geo.mouth_opening(canon)


def compare(a_lm, a_pres, b_lm, b_pres):
    pa, oa = mouth_series(a_lm, a_pres)
    pb, ob = mouth_series(b_lm, b_pres)
    n = min(len(pa), len(pb))
    ok = a_pres[:n] & b_pres[:n]
    lmd = float(np.linalg.norm(pa[:n][ok] - pb[:n][ok], axis=-1).mean())
    r = float(np.corrcoef(oa[:n][ok], ob[:n][ok])[0, 1])
    return lmd, r


def track_fresh(path: str):
    from core.faces.track import track_video

    with tempfile.TemporaryDirectory() as d:
        return track_video(path, cache_dir=d).primary()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--split", choices=("heldout", "val"), default="heldout",
                    help="pairs of held-out clips (evaluation) or of the mouth model's validation clips (selection)")
    ap.add_argument("--model-only", action="store_true", help="skip the two baselines (faster, for selection)")
    ap.add_argument("--json")
    ap.add_argument("--scorer", default="lite", help="the sync scorer of step 2 (lite: comparable with the figures "
                                                     "before the fused lane; auto: the lane's)")
    a = ap.parse_args()

    import torch

    from core import audio as audio_mod
    from core import mouth_shape as ms
    from core.engines.classic import ClassicOptions
    from core.pipeline import DubSettings, run_dub
    from core.sync.scoring import get_scorer, score_clip
    from tools.grid_cache import load_clip

    torch.set_num_threads(2)
    model = ms.AudioToMouth.load()
    scorer = get_scorer(a.scorer)
    rows = []
    t_dub, n_dub = 0.0, 0
    tmp = Path(tempfile.mkdtemp(prefix="crossdub_"))
    for x, y in pick_pairs(a.pairs, a.split):
        vx, vy = S1 / "video" / f"{x}.mp4", S1 / "video" / f"{y}.mp4"
        cx, cy = load_clip(x), load_clip(y)
        wav_y = audio_mod.load_audio(str(vy))
        wav_x = audio_mod.load_audio(str(vx))
        n = len(cx["present"])
        row = {"x": x, "y": y, "x_sentence": sentence(x), "y_sentence": sentence(y)}
        row["undubbed"] = compare(cx["landmarks"], cx["present"], cy["landmarks"], cy["present"])
        conditions = {
            "model": None,
            "mean_shape": model.baseline_mean(n),
            "loudness": model.baseline_loudness(wav_y, 25.0, n),
        }
        if a.model_only:
            conditions = {"model": None}
        for cond, disp in conditions.items():
            out = tmp / f"{x}_{y}_{cond}.mp4"
            opts = {}
            if disp is not None:
                opts["classic"] = ClassicOptions(
                    target_landmarks=ms.target_landmarks(cx["landmarks"], cx["present"], disp))
            t0 = time.perf_counter()
            run_dub(DubSettings(video=str(vx), audio=str(vy), output=str(out), engine_options=opts,
                                track_cache_dir=str(tmp / "tracks")))
            t_dub += time.perf_counter() - t0
            n_dub += n
            tr = track_fresh(str(out))
            row[cond] = compare(tr.landmarks, tr.present, cy["landmarks"], cy["present"])
            if cond == "model":
                rep = score_clip(str(out), wav_y, tr, scorer)
                row["sync_dubbed"], row["offset_dubbed"] = rep.lse_c, rep.offset_frames
        # sync references: mismatched original, own-audio dub, and the real Y
        row["sync_original_mismatched"] = score_clip(str(vx), wav_y, _cached_track(cx), scorer).lse_c
        row["sync_real_y"] = score_clip(str(vy), wav_y, _cached_track(cy), scorer).lse_c
        own = tmp / f"{x}_own.mp4"
        run_dub(DubSettings(video=str(vx), audio=str(vx), output=str(own), track_cache_dir=str(tmp / "tracks")))
        rep = score_clip(str(own), wav_x, track_fresh(str(own)), scorer)
        row["sync_own_audio_dub"], row["offset_own_audio_dub"] = rep.lse_c, rep.offset_frames
        row["sync_original_own"] = score_clip(str(vx), wav_x, _cached_track(cx), scorer).lse_c
        rows.append(row)
        base = "".join(f" {c} {row[c][1]:.2f}" for c in ("mean_shape", "loudness") if c in row)
        print(f"{x}<-{y}: r model {row['model'][1]:.2f}{base} undubbed {row['undubbed'][1]:.2f} | LSE-C dubbed "
              f"{row['sync_dubbed']:.2f} vs mismatched {row['sync_original_mismatched']:.2f} "
              f"(real {row['sync_real_y']:.2f})", flush=True)

    def agg(key, i):
        return float(np.mean([r[key][i] for r in rows]))

    summary = {"pairs": len(rows), "dub_fps": n_dub / t_dub if t_dub else None}
    for cond in ("model", "mean_shape", "loudness", "undubbed"):
        if cond in rows[0]:
            summary[cond] = {"lmd": agg(cond, 0), "opening_r": agg(cond, 1)}
    for key in ("sync_dubbed", "sync_original_mismatched", "sync_real_y", "sync_own_audio_dub", "sync_original_own"):
        summary[key] = float(np.mean([r[key] for r in rows]))
    for key in ("offset_dubbed", "offset_own_audio_dub"):   # share of dubs found in sync within +-1 frame
        summary[key + "_within_1"] = float(np.mean([abs(r[key]) <= 1 for r in rows]))
    summary["dubbed_beats_mismatched"] = float(np.mean([r["sync_dubbed"] > r["sync_original_mismatched"] for r in rows]))
    print(json.dumps(summary, indent=1))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


def _cached_track(c: dict):
    from core.faces.track import FaceTrack

    return FaceTrack(track_id=0, boxes=c["boxes"], landmarks=c["landmarks"], present=c["present"].astype(bool))


if __name__ == "__main__":
    sys.exit(main())
