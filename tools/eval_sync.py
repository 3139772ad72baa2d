"""Evaluate a sync scorer (lite, sync_asd, or any scorer file) on data it was never trained on.

    python -m tools.eval_sync [--scorer lite|sync_asd|FILE] [--json OUT] [--limit N] [--update-meta]

A scorer with its own frame rate (`native_fps`: sync_asd works at 25 fps) sees each clip resampled to it, as
core.sync.scoring does; its shifts ("8 frames late") are then in its own frames.

Sets: GRID s1 held-out (grid_s1/heldout.txt, 250 clips), s4's evaluation half (s4_eval), grid_others (10
speakers, one clip each), `proxies` (grid_others as 1080p head-motion CRF 30 proxies with degraded voices,
tools.proxies), and `others_room` / `s4_eval_room` (the clips' own video, their voices degraded as the proxies',
to separate the voice's share of the loss from the picture's); s1_val (the scorer's validation split) for tuning,
`s1_val_mpeg1` (the same clips coded as grid_others' MPEG-1 files: tools.proxies.make_mpeg1) to tune against
that codec's blocks, and `s1_val_room` (their voices degraded as the proxies').
Everything goes through the shipped inference path: `face_input` on the decoded frames with the cached dlib
landmarks (tools.grid_cache), `audio_features` on the 16 kHz wav, `core.sync.scoring.lse_from_features`
(syncnet_python's offset search over +-15 frames).

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


def delay(wav, k, fps=25.0):
    """Audio delayed by k video frames (k < 0: advanced); same length."""
    n = len(wav)
    s = int(round(abs(k) * 16000 / fps))
    if k >= 0:
        return np.concatenate([np.zeros(s, np.float32), wav])[:n]
    return np.concatenate([wav[s:], np.zeros(s, np.float32)])[:n]


def clip_track(name, path):
    """Cached dlib track of a GRID clip, or of any other file (a proxy) under its own name."""
    from tools.grid_cache import default_cache_dir, extract, load_clip

    try:
        return load_clip(name)
    except FileNotFoundError:
        f = default_cache_dir() / f"{name}.npz"
        if not f.exists():
            f.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(f, **extract(Path(path)))
        with np.load(f) as z:
            return {k: z[k] for k in z.files}


def clip_inputs(scorer, path, name, fps):
    """The scorer's face inputs of a clip, at the scorer's frame rate (`native_fps`: the nearest frame in time,
    as core.sync.scoring does), and the source frame of each."""
    from core.sync.scoring import fill_track, resample_indices

    track = clip_track(name, path)
    frames = decode(path)
    n = min(len(frames), len(track["present"]))
    boxes, lms, _ = fill_track(track["boxes"][:n], track["landmarks"][:n], track["present"][:n])
    src = resample_indices(n, fps, scorer.native_fps)
    return np.stack([scorer.face_input(frames[i], boxes[i], lms[i]) for i in src]), src


def scorer_fps(scorer, fps: float) -> float:
    """The frame rate a clip at `fps` is scored at."""
    return float(scorer.native_fps) if scorer.native_fps else float(fps)


def lane_low_share(report, wav, fps, n, span, threshold, frames=slice(None)):
    """Share of voiced frames (among `frames`) the calibrated sync lane marks low (core.sync.lane), and the
    voiced count."""
    from core.audio import voice_activity
    from core.sync.scoring import window_to_frame_index
    from core.sync.lane import calibrate, low_frames

    cal = calibrate(report.dists, report.vshift, span=span)
    conf = cal.confidence[window_to_frame_index(n, len(cal.confidence))]
    voiced = voice_activity(wav, fps, n)
    low = low_frames(conf, voiced, threshold=threshold)[frames]
    return float(low.sum() / max(voiced[frames].sum(), 1)), int(voiced[frames].sum())


def adapted_threshold(rec):
    """Per-clip threshold learnt from the first half of the clip's own voice, as core.sync.lane_adapt sets it
    (`face_threshold`: the own offset found by both witnesses, core.sync.av_offset, kept near 0 where the face
    supports it, `own_offset_choice`; the level there; the face's P(speaking) with that half, core.sync.asd.speaker);
    the lane is then measured on the second half only, never on what it adapted on. The offset, level and
    P(speaking) are found once per clip; the threshold is derived at each call (`--tune` varies sync_lane.OWN_SHARE).
    A clip the adaptation calls unjudgeable (`face_judgeable`) has no frame low, as in the product (its lane is
    grey): the per-speaker rows say so."""
    from core.sync.lane_adapt import face_threshold

    if "own_fit" not in rec:
        rec["own_fit"] = own_fit_first_half(rec)
    return face_threshold(*rec["own_fit"]), slice(rec["frames"] // 2, None)


def adapted_judgeable(rec) -> bool:
    from core.sync.lane_adapt import face_judgeable

    if "own_fit" not in rec:
        rec["own_fit"] = own_fit_first_half(rec)
    return face_judgeable(*rec["own_fit"])


def own_fit_first_half(rec):
    """(own offset, own level, P(speaking)) from the first half of the clip's own voice (P(speaking): NaN unless
    `rec["path"]` is a video the active-speaker network can read)."""
    from core.audio import voice_activity
    from core.sync.av_offset import candidate_evidence, mouth_curve
    from core.mouth_shape import AudioToMouth
    from core.sync.lane import own_level
    from core.sync.lane_adapt import own_offset_choice

    r, wav = rec["lane"]["own"]
    half, fps = rec["frames"] // 2, rec["fps"]
    voiced = voice_activity(wav, fps, rec["frames"])[2:2 + len(r.dists)]   # window i's centre frame
    first = np.arange(len(r.dists)) < half - 2
    md = r.dists[first].mean(0)
    offsets = r.vshift - np.arange(len(md))
    track = clip_track(rec["name"], None)
    src = rec["src"][:half]
    head = wav[:int(half * 16000 / fps)]
    mouth = mouth_curve(AudioToMouth.load(), head, fps, track["landmarks"][src], track["present"][src], offsets)

    def level_at(o):
        return own_level(r.dists[first], r.vshift, o, voiced[first])

    offset = own_offset_choice(offsets, candidate_evidence(md, mouth), level_at)
    return offset, level_at(offset), first_half_speaking(rec, head, track)


def first_half_speaking(rec, head, track) -> float:
    """The face's mean P(speaking) with the first half of its own voice (core.sync.asd.speaker.own_speaking, the
    adaptation's own-voice test), on the clip's video and cached dlib track."""
    from core import media
    from core.faces.track import FaceTrack
    from core.sync.asd.speaker import own_speaking

    path = rec.get("path")
    if path is None:
        return float("nan")
    info = media.probe(str(path))
    n = len(track["present"])
    face = FaceTrack(0, np.asarray(track["boxes"], np.float32), np.asarray(track["landmarks"], np.float32),
                     np.asarray(track["present"], bool))
    wav = np.zeros(int(round(n / info.fps * 16000)), np.float32)
    wav[:len(head)] = head[:len(wav)]
    return own_speaking(str(path), info, face, wav, use_cache=False)


LANE_CASES = {"own": 0, "late8": 8}


def embed_shifts(scorer, path, name, wav, fps, reach):
    """A clip's video embedded once and its voice at every window position a delay of up to `reach` frames needs
    (a delay of k frames moves the audio by exactly k windows): (trunk, video features, every audio window,
    frames). The audio of delay k is `every[reach - k:reach - k + len(video features)]`."""
    fin, src = clip_inputs(scorer, path, name, fps)
    trunk = scorer.video_trunk(fin)
    n = len(fin)
    every = scorer.audio_features(wav, scorer_fps(scorer, fps), n + 2 * reach, first_window=-reach)
    return trunk, scorer.project_video(trunk), every, n, src


def evaluate_set(scorer, items, desc, all_others=False):
    """items: list of (name, video path, wav, fps). Returns per-clip raw results; `lane` keeps the reports and
    voices of the own voice, the voice 8 frames late and another clip's voice (`embed_shifts`); `all_others`: also
    every other clip's voice (`others_all`; for the per-speaker sets)."""
    from core.sync.scoring import lse_from_features
    from tqdm import tqdm

    reach = max(abs(k) for k in SHIFTS + FAR)
    out = []
    feats = {}
    for name, path, wav, clip_fps in tqdm(items, desc=desc, dynamic_ncols=True):
        trunk, vfeat, every, n, src = embed_shifts(scorer, path, name, wav, clip_fps, reach)
        fps = scorer_fps(scorer, clip_fps)
        m = len(vfeat)
        feats[name] = (vfeat, n, fps)
        rec = {"name": name, "shift": {}, "lane": {}, "fps": fps, "frames": n, "trunk": trunk, "every": every,
               "wav": wav, "src": src, "path": path}
        for k in SHIFTS + FAR:
            r = lse_from_features(vfeat, every[reach - k:reach - k + m], scorer.vshift)
            for case, kk in LANE_CASES.items():
                if kk == k:
                    rec["lane"][case] = (r, delay(wav, k, fps))
            md = r.mean_dists
            med = float(np.median(md))
            rec["shift"][k] = {"offset": r.offset_frames, "lse_d": r.lse_d, "lse_c": r.lse_c,
                               "conf0": (med - float(md[r.vshift])) / max(r.lse_c, 1e-6),
                               "win_conf0": (med - r.dists[:, r.vshift]).tolist()}
        out.append(rec)
    # mismatched audio: the next item's wav (another sentence / another speaker)
    for i, rec in enumerate(out):
        vfeat, n, fps = feats[rec["name"]]
        other = np.resize(items[(i + 1) % len(items)][2], len(items[i][2]))
        rec["other_audio"] = scorer.audio_features(other, fps, n)
        r = lse_from_features(vfeat, rec["other_audio"], scorer.vshift)
        rec["mismatch"] = {"lse_d": r.lse_d, "lse_c": r.lse_c, "offset": r.offset_frames}
        rec["lane"]["other"] = (r, other)
        # every other item's voice ("another voice" without the luck of one pairing: GRID sentences share one
        # grammar and rhythm, and one pairing can be nearly in step by chance)
        rec["others_all"] = []
        for j, item in enumerate(items if all_others else []):
            if j != i:
                wj = np.resize(item[2], len(items[i][2]))
                rec["others_all"].append((lse_from_features(vfeat, scorer.audio_features(wj, fps, n), scorer.vshift),
                                          wj))
    return out


# ------------------------------------------------------------------------------------------------ rejected experiment
# Per-clip fine-tuning of the scorer's video projection (issue 8 suggested it). Measured with --scorer-adapt on the
# first half / second half of grid_others clips, it made offsets and the lane worse (see docs/MEASUREMENTS.md), so
# the product adapts only the lane's threshold (core.sync.lane.clip_threshold); the code stays here to re-measure.
SCORER_STEPS = 120        # full-batch Adam steps on the clip's windows
SCORER_LR = 2e-3
SCORER_RIDGE = 0.5        # pull of the projection towards the shipped one (relative squared distance)
SCORER_TEMPERATURE = 10.0  # logit scale of the cosine, as in training (tools/train_sync.py)


def adapt_scorer_projection(trunk: np.ndarray, audio: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                            steps: int = SCORER_STEPS, ridge: float = SCORER_RIDGE):
    """Refit the LiteScorer's video projection on one clip's in-sync windows against its shifted ones.

    `trunk` (M, C): the video tower's features of the clip's windows; `audio` (M + 2V, D): the own voice's
    audio embeddings at window positions -V .. M+V-1, already aligned (row i + V belongs with window i).
    Loss: for every window, softmax over its 2V+1 offsets (neighbours at +-1 masked: they overlap 80%), the
    aligned one the target; plus `ridge` * |theta - theta_shipped|^2 / |theta_shipped|^2. Returns (weight, bias).
    """
    import torch
    from torch.nn import functional as F

    t = torch.as_tensor(np.asarray(trunk, np.float32))
    a = F.normalize(torch.as_tensor(np.asarray(audio, np.float32)), dim=1)
    m = len(t)
    v = (len(a) - m) // 2
    if m < 2 or v < 2:
        return np.asarray(weight), np.asarray(bias)
    cand = a.unfold(0, 2 * v + 1, 1).permute(0, 2, 1)[:m]          # (M, 2V+1, D): candidates of window i
    mask = torch.zeros(2 * v + 1, dtype=torch.bool)
    mask[[v - 1, v + 1]] = True
    w0 = torch.as_tensor(np.asarray(weight, np.float32))
    b0 = torch.as_tensor(np.asarray(bias, np.float32))
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    norm0 = float((w0 ** 2).sum() + (b0 ** 2).sum())
    opt = torch.optim.Adam([w, b], lr=SCORER_LR)
    target = torch.full((m,), v, dtype=torch.long)
    for _ in range(steps):
        e = F.normalize(t @ w.T + b, dim=1)
        logits = SCORER_TEMPERATURE * torch.einsum("md,mkd->mk", e, cand)
        loss = F.cross_entropy(logits.masked_fill(mask, -1e4), target)
        loss = loss + ridge * (((w - w0) ** 2).sum() + ((b - b0) ** 2).sum()) / norm0
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach().numpy(), b.detach().numpy()


def with_video_projection(scorer, weight, bias):
    """A copy of a LiteScorer whose video projection is replaced."""
    import copy

    import torch

    from core.sync.scorers.lite import LiteScorer

    model = copy.deepcopy(scorer.model)
    with torch.no_grad():
        model.video_fc.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        model.video_fc.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return LiteScorer(model, scorer.device, dist_scale=scorer.dist_scale, path=scorer.path)


def scorer_adaptation_summary(scorer, recs, adapt_scorer=True):
    """Adapt on the first half of each clip (its own voice: the lane threshold, and with `adapt_scorer` the
    scorer's video projection), measure on the second half only: offset recovery of shifts -8..8 and the lane's
    low shares (own voice, 8 frames late, another clip's voice)."""
    from core.audio import voice_activity
    from core.sync.scoring import lse_from_features
    from core.sync.lane import calibrate, clip_threshold, low_frames, own_level

    reach = max(abs(k) for k in SHIFTS + FAR)
    v = 8                                      # offsets the adaptation contrasts (a half clip is short)
    hits, low = [], {"own": [0, 0], "late8": [0, 0], "other": [0, 0]}
    for rec in recs:
        trunk, every, n, fps = rec["trunk"], rec["every"], rec["frames"], rec["fps"]
        m = len(trunk)
        h = m // 2
        first = scorer.project_video(trunk[:h])
        md = lse_from_features(first, every[reach:reach + h], scorer.vshift).mean_dists
        own_offset = scorer.vshift - int(md.argmin())
        s = scorer
        if adapt_scorer:
            rows = slice(reach - v - own_offset, reach - v - own_offset + h + 2 * v)
            w, b = adapt_scorer_projection(trunk[:h], every[rows], scorer.model.video_fc.weight.detach().numpy(),
                                           scorer.model.video_fc.bias.detach().numpy())
            s = with_video_projection(scorer, w, b)
        vf = s.project_video(trunk)
        own_first = lse_from_features(vf[:h], every[reach:reach + h], s.vshift)
        voiced_w = voice_activity(rec["wav"], fps, n)[2:2 + m]
        thr = clip_threshold(own_level(own_first.dists, s.vshift, own_offset, voiced_w[:h]))
        second = vf[h:]
        for k in SHIFTS:
            r = lse_from_features(second, every[reach - k + h:reach - k + m], s.vshift)
            hits.append(abs(r.offset_frames + k) <= 1)
        for case, audio, k, wav in (("own", every, 0, rec["wav"]), ("late8", every, 8, delay(rec["wav"], 8, fps)),
                                    ("other", None, 0, rec["lane"]["other"][1])):
            a = audio[reach - k + h:reach - k + m] if audio is not None else rec["other_audio"][h:m]
            r = lse_from_features(second, a, s.vshift)
            conf = calibrate(r.dists, r.vshift).confidence
            voiced = voice_activity(wav, fps, n)[2 + h:2 + m]
            lo = low_frames(conf, voiced, threshold=thr)
            low[case][0] += int(lo.sum())
            low[case][1] += int(voiced.sum())
    tag = "scorer_adapted" if adapt_scorer else "threshold_only"
    out = {f"second_half_offset_pm1_{tag}": float(np.mean(hits))}
    out.update({f"second_half_low_{c}_{tag}": a / max(b, 1) for c, (a, b) in low.items()})
    return out


def lane_summary(recs, span, threshold, adaptive=False):
    """Per case (own voice, 8 frames late, another clip's voice, and every other clip's voice where the set has
    them): share of all voiced frames marked low. `adaptive`: each clip's threshold from the first half of its own
    voice, measured on the second half; a clip the adaptation calls unjudgeable has no frame low."""
    out = {}
    for case in ("own", "late8", "other", "other_all"):
        low = tot = 0.0
        for rec in recs:
            pairs = rec.get("others_all", []) if case == "other_all" else [rec["lane"][case]]
            thr, frames = adapted_threshold(rec) if adaptive else (threshold, slice(None))
            judged = adapted_judgeable(rec) if adaptive else True
            for r, wav in pairs:
                share, voiced = lane_low_share(r, wav, rec["fps"], rec["frames"], span, thr, frames)
                low += share * voiced * judged
                tot += voiced
        if case != "other_all" or tot:
            out[f"low_{case}" + ("_adapted" if adaptive else "")] = low / max(tot, 1)
    return out


def summarise(recs, window_thr, clip_thr):
    hits = [abs(r["shift"][k]["offset"] + k) <= 1 for r in recs for k in SHIFTS]
    exact = [r["shift"][k]["offset"] == -k for r in recs for k in SHIFTS]
    aligned = [abs(r["shift"][0]["offset"]) <= 1 for r in recs]
    w_in = np.concatenate([r["shift"][0]["win_conf0"] for r in recs])
    w_off = np.concatenate([r["shift"][k]["win_conf0"] for r in recs for k in SHIFTS if abs(k) >= 3])
    c_in = np.array([r["shift"][0]["conf0"] for r in recs])
    c_off = np.array([r["shift"][k]["conf0"] for r in recs for k in SHIFTS if abs(k) >= 3])
    nan = float("nan")
    tpr_w, tnr_w = ((float((w_in > window_thr).mean()), float((w_off <= window_thr).mean()))
                    if window_thr is not None else (nan, nan))
    tpr_c, tnr_c = ((float((c_in > clip_thr).mean()), float((c_off <= clip_thr).mean()))
                    if clip_thr is not None else (nan, nan))
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
    tr = load_clip(name)
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


def load_sets(names, limit):
    """(label, items) for each requested set; items are (name, video, wav, fps)."""
    from tools import grid_splits, proxies

    sets = []
    for label in names:
        if label in ("s1_val", "s1_val_mpeg1", "s1_val_room"):   # the scorer's own validation split: tuning only
            from tools.train_sync import split_names
            clips = split_names()[1]
        elif label == "s1_heldout":
            clips = grid_splits.s1_heldout_names()
        elif label in ("s4_eval", "s4_eval_room"):
            clips = grid_splits.s4_eval_names()
        elif label in ("others", "others_room", "proxies"):
            clips = grid_splits.others_names()
        else:
            raise SystemExit(f"unknown set {label}")
        if limit and label in ("s1_val", "s1_val_mpeg1", "s1_val_room", "s1_heldout"):
            clips = clips[:limit]
        items = []
        for n in clips:
            src = grid_splits.video_path(n)
            if label == "proxies":
                hd = proxies.make_proxy(src, proxy_dir() / f"{n}_hd.mp4")
                items.append((f"{n}_hd", hd, proxies.degrade_voice(load_wav(src), seed=len(items)), 30000 / 1001))
            elif label.endswith("_mpeg1"):    # coded as grid_others' files are (same frame size: same track)
                items.append((n, proxies.make_mpeg1(src, proxy_dir() / f"{n}.mpg"), load_wav(src), 25.0))
            elif label.endswith("_room"):     # the clip's own video, its voice as the proxies degrade it
                items.append((n, src, proxies.degrade_voice(load_wav(src), seed=len(items)), 25.0))
            else:
                items.append((n, src, load_wav(src), 25.0))
        sets.append((label, items))
    return sets


def proxy_dir() -> Path:
    from tools.grid_cache import default_cache_dir
    return default_cache_dir().parent / "proxies"


SPANS = (9, 15, 25)
PER_SPEAKER_SETS = ("others", "proxies", "others_room")   # one clip per speaker: figures per speaker, and
                                                         # "another voice" also over every other speaker's voice
THRESHOLDS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scorer", default="lite", help="a scorer name (lite, sync_asd, ...) or a scorer model file")
    ap.add_argument("--weights", default=None, help="the weights file of --scorer (default: its shipped one)")
    ap.add_argument("--json", type=Path, default=None, help="write all figures here")
    ap.add_argument("--sets", nargs="+", default=["s1_heldout", "s4_eval", "others", "proxies"])
    ap.add_argument("--limit", type=int, default=0, help="only the first N s1 clips of s1_val / s1_heldout")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tune", action="store_true",
                    help="sweep the lane's span and threshold (run it on s1_val only: that is what tuned them)")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--scorer-adapt", action="store_true",
                    help="also adapt sync_lite's projection on each clip's first half (a rejected experiment), "
                         "measure the rest; the lane's own adaptation is always measured")
    ap.add_argument("--update-meta", action="store_true", help="write the metrics into the model's JSON beside its weights")
    a = ap.parse_args()

    import torch

    from core.sync import lane as sync_lane
    from core.models.registry import resolve_model
    from core.sync.scorers.registry import find, get_scorer

    torch.set_num_threads(a.threads)
    if a.weights and find(a.scorer) is not None:     # a named scorer with another weights file
        scorer = find(a.scorer).load(resolve_model(Path(a.weights)), "cpu")
    else:
        choice = a.weights or a.scorer
        scorer = get_scorer(Path(choice) if Path(choice).suffix else choice, device="cpu")
    if a.scorer_adapt and not hasattr(getattr(scorer, "model", None), "video_fc"):
        ap.error(f"--scorer-adapt re-measures a rejected experiment on sync_lite's video projection; {scorer.name} "
                 f"has none (use --scorer lite). The adapted lane is measured without it.")
    wt, ct = getattr(scorer, "window_threshold", None), getattr(scorer, "clip_threshold", None)
    t0 = time.time()
    result = {"weights": str(scorer.path), "window_threshold": wt, "clip_threshold": ct,
              "lane": {"span": sync_lane.SPAN, "low_threshold": sync_lane.LOW_THRESHOLD}}
    cols = ["clips", "offset_recovery_pm1", "offset_exact", "window_bal_acc", "clip_bal_acc", "lse_c_sync",
            "lse_c_other_audio", "low_own", "low_late8", "low_other", "low_own_adapted", "low_late8_adapted",
            "low_other_adapted", "low_other_all_adapted"]
    short = ["n", "rec+-1", "exact", "win acc", "clip acc", "LSE-C", "C other", "low own", "low +8", "low oth",
             "A own", "A +8", "A oth", "A oth*"]
    print(f"{'set':<16}" + "".join(f"{c:>9}" for c in short))
    for label, items in load_sets(a.sets, a.limit):
        recs = evaluate_set(scorer, items, label, all_others=label in PER_SPEAKER_SETS)
        if a.tune:
            for span in SPANS:
                for thr in THRESHOLDS:
                    m = lane_summary(recs, span, thr)
                    print(f"span {span:>3} thr {thr:>4}: " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()))
            for share in (0.3, 0.4, 0.5, 0.6):
                sync_lane.OWN_SHARE = share
                m = lane_summary(recs, sync_lane.SPAN, sync_lane.LOW_THRESHOLD, adaptive=True)
                print(f"own share {share}: " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()))
        summary = {**summarise(recs, wt, ct), **lane_summary(recs, sync_lane.SPAN, sync_lane.LOW_THRESHOLD),
                   **lane_summary(recs, sync_lane.SPAN, sync_lane.LOW_THRESHOLD, adaptive=True)}
        if a.scorer_adapt:
            summary.update(scorer_adaptation_summary(scorer, recs, adapt_scorer=False))
            summary.update(scorer_adaptation_summary(scorer, recs, adapt_scorer=True))
            print({k: round(v, 3) for k, v in summary.items() if k.startswith("second_half")})
        result[label] = summary
        rows = [(label, summary)]
        if label in PER_SPEAKER_SETS:
            per = {r["name"]: {**summarise([r], wt, ct),
                               **lane_summary([r], sync_lane.SPAN, sync_lane.LOW_THRESHOLD),
                               **lane_summary([r], sync_lane.SPAN, sync_lane.LOW_THRESHOLD, adaptive=True)}
                   for r in recs}
            result[f"{label}_per_speaker"] = per
            rows += list(per.items())
            worst = max(per, key=lambda k: per[k]["low_own_adapted"])
            result[f"{label}_worst_speaker"] = worst
            print(f"worst own-voice face in {label}: {worst}")
        for lab, m in rows:
            print(f"{lab[:16]:<16}" + "".join(f"{m.get(c, float('nan')):>9.0f}" if c == "clips"
                                               else f"{m.get(c, float('nan')):>9.3f}" for c in cols))
        if label in PER_SPEAKER_SETS:
            print(f"{'adaptation':<16}{'offset':>9}{'level':>9}{'speaking':>9}{'threshold':>10}  judgeable")
            for rec in recs:
                off, lvl, spk = rec["own_fit"]
                per[rec["name"]].update(own_offset=off, own_level=lvl, own_speaking=spk,
                                        threshold=adapted_threshold(rec)[0], judgeable=adapted_judgeable(rec))
                print(f"{rec['name'][:16]:<16}{off:>9d}{lvl:>9.2f}{spk:>9.2f}{adapted_threshold(rec)[0]:>10.2f}  "
                      f"{adapted_judgeable(rec)}")
    result["eval_wall_s"] = round(time.time() - t0, 1)
    if not a.no_speed:
        result["speed"] = speed(scorer)
        for k, v in result["speed"].items():
            print(f"speed {k}: {v['fps']} frames/s (crops {v['crop_s']} s, mel+audio {v['audio_s']} s, "
                  f"video {v['video_s']} s for {v['frames']} frames)")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=1))
        print(f"wrote {a.json}")
    if a.update_meta:
        meta_path = Path(str(scorer.path)).with_suffix(".json")
        meta = json.loads(meta_path.read_text())
        keep = ["offset_recovery_pm1", "offset_exact", "aligned_offset_pm1", "window_bal_acc", "clip_bal_acc",
                "lse_d_sync", "lse_c_sync", "lse_c_shift_in_range", "lse_c_shift_20", "lse_c_other_audio",
                "low_own", "low_late8", "low_other", "low_own_adapted", "low_late8_adapted", "low_other_adapted",
                "clips"]
        meta["metrics"] = {label: {k: round(result[label][k], 4) for k in keep} for label in a.sets}
        meta["metrics"].update({"window_threshold": wt, "clip_threshold": ct, "lane": result["lane"]})
        for label in ("others", "proxies"):
            if f"{label}_per_speaker" in result:
                meta["metrics"][f"{label}_offset_recovery_per_speaker"] = {
                    k: round(v["offset_recovery_pm1"], 4) for k, v in result[f"{label}_per_speaker"].items()}
        if "speed" in result:
            meta["metrics"]["speed_fps"] = {k: v["fps"] for k, v in result["speed"].items()}
        meta_path.write_text(json.dumps(meta, indent=1) + "\n")
        print(f"updated {meta_path}")


if __name__ == "__main__":
    main()
