"""Evaluate the audio -> mouth-shape model on held-out GRID s1 clips and on the ten other GRID speakers.

    python -m tools.eval_mouth [--model resources/models/mouth_shape.pt] [--json out.json] [--update-meta]
                               [--limit N]

For every clip: the model's predicted mouth (clip's own neutral + predicted displacement, canonical face, IOD 1)
against the tracked one, and two no-learning baselines fitted on the training clips (stored in the model file):
(a) mean shape = neutral + mean training displacement, (b) loudness = displacement linear in log-RMS.
Metrics: LMD (mean Euclidean distance of the 20 mouth points, IOD units, valid frames) and Pearson r of the
inner-lip opening (per clip, then averaged; and pooled over all frames). Controls: the model driven by a
*different* clip's audio ("wrong audio"), and the cross-sentence floor (r between two different clips' real
openings). Timing: predict() on 60 s of audio at 25 and 29.97 fps.
--update-meta writes the metrics into the model's JSON description (the .pt file, hence its SHA-256, is unchanged).
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

from tools.train_mouth import GRID_OTHERS, MODEL_OUT, heldout_names, pearson, prepare_clip  # noqa: E402


def clip_metrics(model, c: dict, wav_override=None) -> dict:
    """Per-clip LMD (mouth points) and opening r for the model and both baselines."""
    from core import mouth_shape as ms

    n = len(c["disp"])
    m = c["valid"]
    wav = c["wav"] if wav_override is None else wav_override
    preds = {"model": model.predict(wav, c["fps"], n),
             "mean_shape": model.baseline_mean(n),
             "loudness": model.baseline_loudness(wav, c["fps"], n)}
    true = c["disp"]
    to = ms.shape_opening(c["neutral"][None] + true)[m]
    out = {}
    for k, d in preds.items():
        dist = np.linalg.norm(d - true, axis=-1)[m]                       # (valid, K)
        po = ms.shape_opening(c["neutral"][None] + d)[m]
        out[k] = dict(lmd=float(dist[:, ms.MOUTH_IN_SHAPE].mean()), lmd_shape=float(dist.mean()),
                      r=pearson(po, to) if np.ptp(po) > 1e-9 else float("nan"), po=po, to=to,
                      amplitude=float(np.std(po) / max(np.std(to), 1e-9)))
    return out


def summarise(rows: list[dict]) -> dict:
    res = {}
    for k in rows[0]:
        rs = np.array([r[k]["r"] for r in rows], np.float64)
        po = np.concatenate([r[k]["po"] for r in rows])
        to = np.concatenate([r[k]["to"] for r in rows])
        res[k] = dict(lmd=float(np.mean([r[k]["lmd"] for r in rows])),
                      amplitude=float(np.mean([r[k]["amplitude"] for r in rows])),
                      lmd_shape=float(np.mean([r[k]["lmd_shape"] for r in rows])),
                      r=float(np.nanmean(rs)) if np.isfinite(rs).any() else None,
                      r_pooled=pearson(po, to) if np.ptp(po) > 1e-9 else None)
    return res


def cross_floor(clips: list[dict]) -> float:
    """Mean r between the real openings of clip i and clip i+1 (different sentences)."""
    from core import mouth_shape as ms
    rs = []
    for a, b in zip(clips, clips[1:] + clips[:1]):
        n = min(len(a["disp"]), len(b["disp"]))
        m = a["valid"][:n] & b["valid"][:n]
        oa = ms.shape_opening(a["neutral"][None] + a["disp"][:n])[m]
        ob = ms.shape_opening(b["neutral"][None] + b["disp"][:n])[m]
        rs.append(pearson(oa, ob))
    return float(np.nanmean(rs))


def wrong_audio(model, clips: list[dict]) -> dict:
    """The model driven by the next clip's audio, scored against this clip's real mouth."""
    rows = [clip_metrics(model, c, wav_override=nxt["wav"])["model"]
            for c, nxt in zip(clips, clips[1:] + clips[:1])]
    return dict(lmd=float(np.mean([r["lmd"] for r in rows])), r=float(np.nanmean([r["r"] for r in rows])))


def wrong_phones(model, clips: list[dict]) -> list:
    """A partial stand-in for a voice in a language the English phone decoder does not know: each clip's own
    audio, but the phone sequence decoded from the *next* clip (real-looking phones that do not match the
    sound). If the phone inputs did harm when they are wrong, it shows here against the mel-only model."""
    from core import phones

    decoded = [phones.decode_phones(c["wav"]) for c in clips]
    real = phones.decode_phones
    rows = []
    try:
        for i, c in enumerate(clips):
            phones.decode_phones = lambda wav, seg=decoded[(i + 1) % len(clips)]: seg
            rows.append(clip_metrics(model, c))
    finally:
        phones.decode_phones = real
    return rows


def timing(model, clips: list[dict]) -> dict:
    wav = np.concatenate([c["wav"] for c in clips])
    while len(wav) < 60 * 16000:
        wav = np.concatenate([wav, wav])
    wav = wav[: 60 * 16000]
    out = {}
    for fps in (25.0, 30000 / 1001):
        n = int(60 * fps)
        model.predict(wav[:16000], fps, int(fps))   # warm-up
        t = time.perf_counter()
        d = model.predict(wav, fps, n)
        out[f"predict_60s_{fps:.2f}fps_seconds"] = round(time.perf_counter() - t, 4)
        assert d.shape[0] == n and np.isfinite(d).all()
    return out


def fmt(x, nd=3):
    return "  n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{nd}f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=MODEL_OUT)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--update-meta", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="only the first N held-out clips (quick look)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)

    import torch
    from tqdm import tqdm

    from core.mouth_shape import AudioToMouth

    torch.set_num_threads(a.threads)
    model = AudioToMouth.load(a.model, verify=a.model.with_suffix(".json").exists())
    held = heldout_names()
    if a.limit:
        held = held[: a.limit]
    s1 = [prepare_clip(n) for n in tqdm(held, desc="held-out s1", ncols=90)]
    others = [prepare_clip(p.stem) for p in sorted(GRID_OTHERS.glob("*.mpg"))]

    from tools import grid_splits
    from tools.proxies import degrade_voice

    s4 = [prepare_clip(n) for n in grid_splits.s4_eval_names()]
    s1_rows = [clip_metrics(model, c) for c in tqdm(s1, desc="predict", ncols=90)]
    oth_rows = [clip_metrics(model, c) for c in others]
    # real-recording proxy of the voice: reverberant, EQ-tilted, noisy (tools.proxies.degrade_voice)
    oth_degraded = summarise([clip_metrics(model, c, degrade_voice(c["wav"], seed=i)) for i, c in enumerate(others)])
    s4_rows = [clip_metrics(model, c) for c in s4]
    extra = {}
    if model.uses_phones:
        extra["others_wrong_phones"] = dict(clips=len(others), **summarise(wrong_phones(model, others)))
    result = dict(model=str(a.model), info=model.info, **extra,
                  others_degraded_voice=dict(clips=len(others), **oth_degraded),
                  s4_eval=dict(clips=len(s4), **summarise(s4_rows)),
                  heldout_s1=dict(clips=len(s1), **summarise(s1_rows), wrong_audio=wrong_audio(model, s1),
                                  cross_sentence_floor_r=cross_floor(s1)),
                  others=dict(clips=len(others), **summarise(oth_rows), wrong_audio=wrong_audio(model, others),
                              cross_sentence_floor_r=cross_floor(others)),
                  others_per_speaker={c["name"]: {k: dict(lmd=v["lmd"], r=v["r"]) for k, v in row.items()}
                                      for c, row in zip(others, oth_rows)},
                  timing=timing(model, s1[:20]))
    beats = {sp: bool(v["model"]["lmd"] < min(v["mean_shape"]["lmd"], v["loudness"]["lmd"])
                      and v["model"]["r"] > v["loudness"]["r"]) for sp, v in result["others_per_speaker"].items()}
    result["others_model_beats_both_baselines"] = beats

    lines = [f"{'set':<22}{'method':<13}{'LMD':>8}{'LMD+jaw':>9}{'r(open)':>9}{'r pooled':>9}{'amp':>7}"]
    for key, label in (("heldout_s1", f"held-out s1 ({len(s1)})"), ("others", "10 other speakers"),
                       ("others_degraded_voice", "others, degraded voice"), ("others_wrong_phones", "others, wrong phones"),
                       ("s4_eval", f"s4 eval ({len(s4)})")):
        if key not in result:
            continue
        g = result[key]
        for meth in ("model", "loudness", "mean_shape"):
            v = g[meth]
            lines.append(f"{label:<22}{meth:<13}{fmt(v['lmd'], 4):>8}{fmt(v['lmd_shape'], 4):>9}"
                         f"{fmt(v['r']):>9}{fmt(v['r_pooled']):>9}{fmt(v['amplitude'], 2):>7}")
        if "wrong_audio" not in g:
            continue
        lines.append(f"{label:<22}{'wrong audio':<13}{fmt(g['wrong_audio']['lmd'], 4):>8}{'':>9}"
                     f"{fmt(g['wrong_audio']['r']):>9}")
        lines.append(f"{label:<22}{'floor':<13}{'':>8}{'':>9}{fmt(g['cross_sentence_floor_r']):>9}")
    lines.append("per other speaker: LMD model / loud / mean | r model / loud")
    for sp, v in result["others_per_speaker"].items():
        lines.append(f"  {sp:<16}{v['model']['lmd']:.4f} / {v['loudness']['lmd']:.4f} / {v['mean_shape']['lmd']:.4f}"
                     f" | {v['model']['r']:.3f} / {v['loudness']['r']:.3f}  beats both: {beats[sp]}")
    lines.append(f"timing: {result['timing']}")
    print("\n".join(lines))

    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {a.json}")
    if a.update_meta:
        meta_path = a.model.with_suffix(".json")
        meta = json.loads(meta_path.read_text())

        def short(g):
            return {m: dict(lmd=round(g[m]["lmd"], 4), opening_r=None if g[m]["r"] is None else round(g[m]["r"], 3),
                            amplitude=round(g[m]["amplitude"], 3),
                            opening_r_pooled=None if g[m]["r_pooled"] is None else round(g[m]["r_pooled"], 3))
                    for m in ("model", "loudness", "mean_shape")}
        meta["metrics"].update(
            heldout_s1=dict(clips=len(s1), **short(result["heldout_s1"]),
                            wrong_audio_r=round(result["heldout_s1"]["wrong_audio"]["r"], 3),
                            cross_sentence_floor_r=round(result["heldout_s1"]["cross_sentence_floor_r"], 3)),
            others=dict(clips=len(others), **short(result["others"]),
                        wrong_audio_r=round(result["others"]["wrong_audio"]["r"], 3),
                        cross_sentence_floor_r=round(result["others"]["cross_sentence_floor_r"], 3),
                        speakers_beating_both_baselines=int(sum(beats.values()))),
            others_degraded_voice=dict(clips=len(others), **short(result["others_degraded_voice"])),
            s4_eval=dict(clips=len(s4), **short(result["s4_eval"])),
            timing=result["timing"])
        if "others_wrong_phones" in result:
            meta["metrics"]["others_wrong_phones"] = dict(clips=len(others), **short(result["others_wrong_phones"]))
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        print(f"updated {meta_path}")


if __name__ == "__main__":
    main()
