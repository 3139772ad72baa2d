"""Evaluation of the dub quality report (core.qc): made defects, clean re-encodes, real dubs.

    python -m tools.eval_qc [--clips 5] [--dubs 5] [--json out/eval_qc.json]

Clips: the first `--clips` held-out GRID s1 clips (tools/grid_splits.py) and the first `--clips` grid_others
speakers (evaluation only; never trained on). Everything is measured through the product's `core.qc.run_qc`
(the same path as `main.py qc`), the originals' tracks from the tracker (cached in a temporary folder).

1. Made defects (tools/qc_defects.py) on every clip, encoded like a dub (H.264 CRF 18, the clip's own sound):
   detection rate = share of the frames a defect affects that its kind flags. Affected frames: every frame with
   a face for blur / box / step / jitter; for open_silence the silent frames the open-mouth rule judges (2
   frames from speech) where the original's mouth is not already open (below the clip's open level: pasting an
   open mouth over an open one changes nothing); the rate on every silent frame is reported too.
2. A clean re-encode of every clip (CRF 18): the share of judged frames flagged, per kind (false flags).
3. Real dubs made with the product (core.pipeline.run_dub, classic engine, defaults, adaptation off as in
   tools/eval_dub_speakers): `--dubs` cross-dubs of held-out s1 clips (video X with the voice of another held-out
   clip Y, tools/eval_crossdub.pick_pairs, LMD against Y's real mouth) and `--dubs` grid_others speakers dubbed
   with their own voice. Flag shares per clip and per speaker, the worst named.
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

DEFECTS = ("blur", "box", "step", "jitter", "open_silence")


def clip_data(name: str, tracks: Path):
    from core import audio, media
    from core.faces.track import track_video
    from tests.data_paths import read_frames
    from tools import grid_splits

    p = grid_splits.video_path(name)
    tr = track_video(str(p), cache_dir=str(tracks)).primary()
    frames = read_frames(p)
    n = min(len(frames), len(tr.present))
    info = media.probe(str(p))
    silent = ~audio.voice_activity(audio.load_audio(str(p)), float(info.fps), n)
    return p, tr, frames[:n], silent


def open_affected(tr, silent, n):
    """Silent frames the open-mouth rule judges where the original's mouth is below the clip's open level."""
    from core.faces.geometry import inter_ocular, mouth_opening
    from core.qc.rules import Thresholds, judged_silence, open_level

    lm = np.asarray(tr.landmarks[:n], np.float64)
    with np.errstate(invalid="ignore"):
        op = np.where(tr.present[:n], mouth_opening(lm) / inter_ocular(lm), np.nan)
    t = Thresholds()
    quiet = judged_silence(silent[:n], t.silence_margin)
    return quiet & np.isfinite(op) & (op < open_level(op, t))


def eval_clip(name: str, tmp: Path) -> dict:
    from core.qc.report import run_qc
    from core.qc.rules import KINDS
    from tools import qc_defects as D

    p, tr, frames, silent = clip_data(name, tmp / "tracks")
    n = len(frames)
    row = {"clip": name, "frames": n}
    clean = D.write_video(tmp / f"{name}_clean.mp4", frames, 25, audio_from=p)
    rep = run_qc(str(p), str(clean), track_cache_dir=str(tmp / "tracks"))
    row["clean"] = {k: rep.summary["flagged"][k] for k in KINDS}
    row["clean_summary"] = {k: rep.summary[k] for k in ("psnr_outside", "ssim_outside", "ssim_mouth",
                                                        "sharpness_ratio")}
    row["defects"] = {}
    for d in DEFECTS:
        kind = D.KINDS[d]
        if d == "open_silence":
            fr, hit = D.open_silence(frames, tr.landmarks, tr.present, silent)
        else:
            fr, hit = getattr(D, d)(frames, tr.landmarks, tr.present)
        out = D.write_video(tmp / f"{name}_{d}.mp4", fr, 25, audio_from=p)
        rep = run_qc(str(p), str(out), track_cache_dir=str(tmp / "tracks"))
        aff = hit[:rep.num_frames] & rep.judged
        res = {"kind": kind}
        if d == "open_silence":
            res["all_silent_rate"] = float(rep.flags[kind][aff].mean()) if aff.any() else None
            aff = aff & open_affected(tr, silent, rep.num_frames)
        res["affected"] = int(aff.sum())
        res["rate"] = float(rep.flags[kind][aff].mean()) if aff.any() else None
        res["other_kinds"] = {k: rep.summary["flagged"][k] for k in KINDS if k != kind}
        row["defects"][d] = res
    print(f"{name}: clean " + " ".join(f"{k} {v:.2f}" for k, v in row["clean"].items()) + " | detected "
          + " ".join(f"{d} {r['rate']:.2f}" if r["rate"] is not None else f"{d} n/a"
                     for d, r in row["defects"].items()), flush=True)
    return row


def real_dubs(n_pairs: int, n_others: int, tmp: Path) -> list:
    from core.pipeline import DubSettings, run_dub
    from core.qc.report import run_qc
    from core.qc.rules import KINDS
    from tools import grid_splits
    from tools.eval_crossdub import pick_pairs

    jobs = [("s1", x, y) for x, y in pick_pairs(n_pairs)]
    jobs += [(f"others:{n}", n, n) for n in grid_splits.others_names()[:n_others]]
    rows = []
    for speaker, x, y in jobs:
        vx, vy = grid_splits.video_path(x), grid_splits.video_path(y)
        out = tmp / f"dub_{x}_{y}.mp4"
        run_dub(DubSettings(video=str(vx), audio=str(vy), output=str(out), adapt=False,
                            track_cache_dir=str(tmp / "tracks"), adapt_cache_dir=str(tmp / "adapt")), score=False)
        t0 = time.perf_counter()
        rep = run_qc(str(vx), str(out), track_cache_dir=str(tmp / "tracks"),
                     reference=str(vy) if x != y else None)
        dt = time.perf_counter() - t0
        s = rep.summary
        row = {"speaker": speaker.split(":")[0], "video": x, "voice": y, "frames": rep.num_frames,
               "flagged": s["flagged"], "lmd": s["lmd"], "psnr_outside": s["psnr_outside"],
               "ssim_outside": s["ssim_outside"], "ssim_mouth": s["ssim_mouth"],
               "sharpness_ratio": s["sharpness_ratio"], "qc_seconds": round(dt, 2),
               "flagged_frames": {k: np.flatnonzero(rep.flags[k]).tolist() for k in KINDS}}
        rows.append(row)
        print(f"dub {x} <- {y}: " + " ".join(f"{k} {s['flagged'][k]:.2f}" for k in KINDS)
              + f" | PSNR out {s['psnr_outside']} SSIM out {s['ssim_outside']} mouth SSIM {s['ssim_mouth']} "
              f"sharpness {s['sharpness_ratio']} LMD {s['lmd']}", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=5, help="clips per set (held-out s1, grid_others)")
    ap.add_argument("--dubs", type=int, default=5, help="real dubs per set")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    import torch
    torch.set_num_threads(1)
    from core.qc.rules import KINDS
    from tools import grid_splits

    tmp = Path(tempfile.mkdtemp(prefix="evalqc_"))
    result = {"clips": {}, "dubs": []}
    for set_name, names in (("s1_heldout", grid_splits.s1_heldout_names()[:a.clips]),
                            ("others", grid_splits.others_names()[:a.clips])):
        result["clips"][set_name] = [eval_clip(n, tmp) for n in names]
    rows = [r for rs in result["clips"].values() for r in rs]
    result["detection"] = {}
    for d in DEFECTS:
        rates = [(r["clip"], r["defects"][d]["rate"], r["defects"][d]["affected"]) for r in rows
                 if r["defects"][d]["rate"] is not None]
        hit = sum(rt * na for _, rt, na in rates)
        tot = sum(na for _, _, na in rates)
        worst = min(rates, key=lambda x: x[1])
        result["detection"][d] = {"kind": rows[0]["defects"][d]["kind"], "rate": hit / max(tot, 1),
                                  "frames": tot, "worst_clip": worst[0], "worst_rate": worst[1]}
    result["clean"] = {k: {"mean": float(np.mean([r["clean"][k] for r in rows])),
                           "max": float(max(r["clean"][k] for r in rows)),
                           "worst_clip": max(rows, key=lambda r: r["clean"][k])["clip"]} for k in KINDS}
    result["dubs"] = real_dubs(a.dubs, a.dubs, tmp)
    per = {}
    for r in result["dubs"]:
        per.setdefault(r["speaker"], []).append(r)
    result["dub_speakers"] = {
        spk: {k: {"mean": float(np.mean([r["flagged"][k] for r in rs])),
                  "worst": max(rs, key=lambda r: r["flagged"][k])["video"],
                  "worst_share": float(max(r["flagged"][k] for r in rs))} for k in KINDS}
        for spk, rs in per.items()}
    print("detection:", {d: round(v["rate"], 3) for d, v in result["detection"].items()})
    print("clean re-encode false flags:", {k: (round(v["mean"], 4), round(v["max"], 4))
                                           for k, v in result["clean"].items()})
    for spk, v in result["dub_speakers"].items():
        print(f"real dubs {spk}:", {k: (round(x["mean"], 3), x["worst"], round(x["worst_share"], 3))
                                    for k, x in v.items()})
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
