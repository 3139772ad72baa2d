"""Evaluate the lite sync scorer (or any `core.scoring` scorer file) on data it was never trained on.

    python -m tools.eval_sync [--weights resources/models/sync_lite.pt] [--json OUT] [--limit N] [--update-meta]

Sets: GRID s1 held-out (grid_s1/heldout.txt, 250 clips) and grid_others (10 speakers, one clip each).
Everything goes through the shipped inference path: `face_input` on the decoded frames with the cached dlib
landmarks (tools.grid_cache), `audio_features` on the 16 kHz wav, `core.scoring.lse_from_features` (syncnet_python's
offset search over +-15 frames).

Metrics per set (and per speaker for grid_others):
  * offset recovery: the wav is delayed by k frames (k = -8..+8; k > 0: k*640 samples of silence prepended, k < 0:
    the first |k|*640 samples dropped; the length is kept). A delay of k frames must give offset -k (syncnet's
    sign: positive offset = audio leads). Reported: share of (clip, k) with |offset + k| <= 1, and exact.
  * in-sync vs off-sync classification at offset 0 (no search): window i is called in sync if
    median(mean distances over offsets) - dist_i(offset 0) > window_threshold; a clip if
    median(mdist) - mdist(offset 0) > clip_threshold. Thresholds were chosen on the training validation split
    (stored in the weight file). Positives: k = 0; negatives: |k| >= 3. Balanced accuracy.
  * LSE-D / LSE-C (syncnet definition) for the aligned audio, the audio shifted within the search range
    (|k| >= 3: LSE-C stays high by design, the search finds the shift), shifted beyond it (k = +-20), and a
    different clip's audio (s1: the next held-out clip; others: the next speaker's clip).
  * speed: frames/s of crops + mel + embeddings for a 60 s clip (GRID frames tiled), 1 thread and 2 threads.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
S1 = SHARED / "grid_s1"
OTHERS = SHARED / "grid_others"
SPF = 640  # 16 kHz samples per 25 fps frame
SHIFTS = list(range(-8, 9))
FAR = [-20, 20]


def decode(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def load_wav(path):
    from tools.train_sync import load_audio
    return np.asarray(load_audio(path), np.float32)


def delay(wav, k):
    """Audio delayed by k frames at 25 fps (k < 0: advanced); same length."""
    n = len(wav)
    if k >= 0:
        return np.concatenate([np.zeros(k * SPF, np.float32), wav])[:n]
    return np.concatenate([wav[-k * SPF:], np.zeros(-k * SPF, np.float32)])[:n]


def clip_inputs(scorer, path, name):
    from tools.grid_cache import load_clip

    track = load_clip(name, Path("/work/cache/grid"))
    frames = decode(path)
    n = min(len(frames), len(track["present"]))
    from core.scoring import fill_track
    boxes, lms, _ = fill_track(track["boxes"][:n], track["landmarks"][:n], track["present"][:n])
    return np.stack([scorer.face_input(frames[i], boxes[i], lms[i]) for i in range(n)])


def score_clip(scorer, vfeat, wav, n, fps=25.0):
    from core.scoring import lse_from_features

    afeat = scorer.audio_features(wav, fps, n)
    return lse_from_features(vfeat, afeat, scorer.vshift)


def evaluate_set(scorer, items, desc):
    """items: list of (name, video path, wav). Returns per-clip raw results."""
    from tqdm import tqdm

    out = []
    feats = {}
    for name, path, wav in tqdm(items, desc=desc, dynamic_ncols=True):
        fin = clip_inputs(scorer, path, name)
        vfeat = scorer.video_features(fin)
        feats[name] = (vfeat, len(fin))
        rec = {"name": name, "shift": {}}
        for k in SHIFTS + FAR:
            r = score_clip(scorer, vfeat, delay(wav, k), len(fin))
            md = r.mean_dists
            med = float(np.median(md))
            rec["shift"][k] = {"offset": r.offset_frames, "lse_d": r.lse_d, "lse_c": r.lse_c,
                               "conf0": (med - float(md[r.vshift])) / max(r.lse_c, 1e-6),
                               "win_conf0": (med - r.dists[:, r.vshift]).tolist()}
        out.append(rec)
    # mismatched audio: the next item's wav (another sentence / another speaker)
    for i, rec in enumerate(out):
        vfeat, n = feats[rec["name"]]
        other = items[(i + 1) % len(items)][2]
        r = score_clip(scorer, vfeat, other, n)
        rec["mismatch"] = {"lse_d": r.lse_d, "lse_c": r.lse_c, "offset": r.offset_frames}
    return out


def summarise(recs, window_thr, clip_thr):
    hits = [abs(r["shift"][k]["offset"] + k) <= 1 for r in recs for k in SHIFTS]
    exact = [r["shift"][k]["offset"] == -k for r in recs for k in SHIFTS]
    aligned = [abs(r["shift"][0]["offset"]) <= 1 for r in recs]
    w_in = np.concatenate([r["shift"][0]["win_conf0"] for r in recs])
    w_off = np.concatenate([r["shift"][k]["win_conf0"] for r in recs for k in SHIFTS if abs(k) >= 3])
    c_in = np.array([r["shift"][0]["conf0"] for r in recs])
    c_off = np.array([r["shift"][k]["conf0"] for r in recs for k in SHIFTS if abs(k) >= 3])
    tpr_w, tnr_w = float((w_in > window_thr).mean()), float((w_off <= window_thr).mean())
    tpr_c, tnr_c = float((c_in > clip_thr).mean()), float((c_off <= clip_thr).mean())
    return {
        "clips": len(recs),
        "offset_recovery_pm1": float(np.mean(hits)), "offset_exact": float(np.mean(exact)),
        "aligned_offset_pm1": float(np.mean(aligned)),
        "window_tpr": tpr_w, "window_tnr": tnr_w, "window_bal_acc": 0.5 * (tpr_w + tnr_w),
        "clip_tpr": tpr_c, "clip_tnr": tnr_c, "clip_bal_acc": 0.5 * (tpr_c + tnr_c),
        "lse_d_sync": float(np.mean([r["shift"][0]["lse_d"] for r in recs])),
        "lse_c_sync": float(np.mean([r["shift"][0]["lse_c"] for r in recs])),
        "lse_c_shift_in_range": float(np.mean([r["shift"][k]["lse_c"] for r in recs for k in SHIFTS if abs(k) >= 3])),
        "lse_c_shift_20": float(np.mean([r["shift"][k]["lse_c"] for r in recs for k in FAR])),
        "lse_c_other_audio": float(np.mean([r["mismatch"]["lse_c"] for r in recs])),
        "lse_d_other_audio": float(np.mean([r["mismatch"]["lse_d"] for r in recs])),
        "conf0_sync": float(c_in.mean()), "conf0_shift": float(c_off.mean()),
    }


def speed(scorer, seconds=60, threads=(1, 2)):
    """frames/s of face_input + audio_features + video_features on a 60 s 25 fps clip (GRID frames tiled)."""
    import torch
    from tools.grid_cache import load_clip

    name = (S1 / "heldout.txt").read_text().split()[0]
    frames = decode(S1 / "video" / f"{name}.mp4")
    tr = load_clip(name, Path("/work/cache/grid"))
    wav = load_wav(S1 / "video" / f"{name}.mp4")
    n = seconds * 25
    idx = np.arange(n) % len(frames)
    wav_long = np.resize(wav, seconds * 16000)
    res = {}
    old = torch.get_num_threads()
    for th in threads:
        torch.set_num_threads(th)
        scorer.audio_features(wav_long[:32000], 25.0, 50)  # warm-up (librosa, torch)
        t0 = time.perf_counter()
        fin = np.stack([scorer.face_input(frames[i], tr["boxes"][i], tr["landmarks"][i]) for i in idx])
        t1 = time.perf_counter()
        af = scorer.audio_features(wav_long, 25.0, n)
        t2 = time.perf_counter()
        vf = scorer.video_features(fin)
        t3 = time.perf_counter()
        assert len(af) == len(vf) == n - 4
        res[f"threads_{th}"] = {"frames": n, "crop_s": round(t1 - t0, 3), "audio_s": round(t2 - t1, 3),
                                "video_s": round(t3 - t2, 3), "fps": round(n / (t3 - t0), 1)}
    torch.set_num_threads(old)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="default: the shipped resources/models/sync_lite.pt")
    ap.add_argument("--json", default="/work/cache/sync_eval.json")
    ap.add_argument("--limit", type=int, default=0, help="only the first N held-out s1 clips")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--update-meta", action="store_true", help="write the metrics into resources/models/sync_lite.json")
    a = ap.parse_args()

    import torch

    from core.scorers.lite import LiteScorer

    torch.set_num_threads(a.threads)
    scorer = LiteScorer.load(a.weights)
    wt, ct = scorer.window_threshold, scorer.clip_threshold
    held = (S1 / "heldout.txt").read_text().split()
    if a.limit:
        held = held[:a.limit]
    s1_items = [(n, S1 / "video" / f"{n}.mp4", load_wav(S1 / "video" / f"{n}.mp4")) for n in held]
    oth_items = [(p.stem, p, load_wav(p)) for p in sorted(OTHERS.glob("*.mpg"))]
    t0 = time.time()
    s1 = evaluate_set(scorer, s1_items, "s1 held-out")
    oth = evaluate_set(scorer, oth_items, "grid_others")
    result = {"weights": str(scorer.path), "window_threshold": wt, "clip_threshold": ct,
              "s1_heldout": summarise(s1, wt, ct), "others": summarise(oth, wt, ct),
              "others_per_speaker": {r["name"]: summarise([r], wt, ct) for r in oth},
              "eval_wall_s": round(time.time() - t0, 1)}
    if not a.no_speed:
        result["speed"] = speed(scorer)

    # table
    cols = ["clips", "offset_recovery_pm1", "offset_exact", "aligned_offset_pm1", "window_bal_acc", "clip_bal_acc",
            "lse_d_sync", "lse_c_sync", "lse_c_shift_in_range", "lse_c_shift_20", "lse_c_other_audio"]
    short = ["n", "rec+-1", "exact", "k=0 ok", "win acc", "clip acc", "LSE-D", "LSE-C", "C shift", "C k=20",
             "C other"]
    print(f"{'set':<16}" + "".join(f"{s:>9}" for s in short))
    rows = [("s1 held-out", result["s1_heldout"]), ("others (all)", result["others"])]
    rows += [(k, v) for k, v in result["others_per_speaker"].items()]
    for label, m in rows:
        print(f"{label[:16]:<16}" + "".join(f"{m[c]:>9.0f}" if c == "clips" else f"{m[c]:>9.3f}" for c in cols))
    if "speed" in result:
        for k, v in result["speed"].items():
            print(f"speed {k}: {v['fps']} frames/s (crops {v['crop_s']} s, mel+audio {v['audio_s']} s, "
                  f"video {v['video_s']} s for {v['frames']} frames)")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(result, indent=1))
    print(f"wrote {a.json}")
    if a.update_meta:
        meta_path = ROOT / "resources" / "models" / "sync_lite.json"
        meta = json.loads(meta_path.read_text())
        keep = ["offset_recovery_pm1", "offset_exact", "aligned_offset_pm1", "window_bal_acc", "clip_bal_acc",
                "lse_d_sync", "lse_c_sync", "lse_c_shift_in_range", "lse_c_shift_20", "lse_c_other_audio"]
        meta["metrics"] = {
            "s1_heldout": {k: round(result["s1_heldout"][k], 4) for k in keep + ["clips"]},
            "grid_others": {k: round(result["others"][k], 4) for k in keep + ["clips"]},
            "grid_others_offset_recovery_per_speaker": {k: round(v["offset_recovery_pm1"], 4)
                                                        for k, v in result["others_per_speaker"].items()},
            "window_threshold": wt, "clip_threshold": ct,
        }
        if "speed" in result:
            meta["metrics"]["speed_fps"] = {k: v["fps"] for k, v in result["speed"].items()}
        meta_path.write_text(json.dumps(meta, indent=1) + "\n")
        print(f"updated {meta_path}")


if __name__ == "__main__":
    main()
