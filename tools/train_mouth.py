"""Train the audio -> mouth-shape model (core/mouth_shape.py, core/models/mouth_net.py) on GRID speakers s1 and s4.

    python -m tools.train_mouth [--epochs 80] [--work DIR] [--out resources/models/mouth_shape.pt] [--fresh]
                                [--no-s4] [--aug-copies 2] [--warp 0.1]

Data (tools/grid_splits.py): the 750 s1 clips *not* in grid_s1/heldout.txt, every 10th of them (sorted) a
validation split used for early stopping / model selection, plus s4's 25 training clips (`--no-s4` leaves them
out, for measuring adaptation on a speaker the model never saw). The 250 held-out s1 clips, s4's evaluation half
and grid_others are never read here.
Augmentation: `--aug-copies` copies of every training voice through a random recording chain
(tools.proxies.random_voice_chain: room reverb, EQ tilt, noise at 5-30 dB SNR, gain), drawn at random in place of
the clean voice; `--warp`: a random vocal-tract-length warp of the mel axis per clip and batch (1 +- warp).
Targets: SHAPE_POINTS in the canonical face (IOD 1), minus each clip's own neutral mouth, through a PCA
(fit on the training split, 99% variance). Loss: MSE of the reconstructed points (= coefficient MSE, the basis is
orthonormal). Resumable: a checkpoint is written after every epoch to --work; rerunning continues from it.
Writes the model file, its JSON description (SHA-256, validation metrics) and keeps training history in --work.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
GRID_S1 = DATA / "grid_s1"
GRID_OTHERS = DATA / "grid_others"
MODEL_OUT = ROOT / "resources" / "models" / "mouth_shape.pt"
SEED = 1234
VARIANCE_KEPT = 0.99


# --------------------------------------------------------------------------------------------- data
def load_wav(path: Path) -> np.ndarray:
    from core.audio import load_audio
    return np.asarray(load_audio(str(path)), np.float32)


def heldout_names() -> list[str]:
    from tools import grid_splits
    return grid_splits.s1_heldout_names()


def training_split(with_s4: bool = True) -> tuple[list[str], list[str]]:
    """(train, val) names, both disjoint from every evaluation set."""
    from tools import grid_splits

    pool = grid_splits.s1_pool()
    val = pool[::10]
    train = [n for n in pool if n not in set(val)] + (grid_splits.s4_train_names() if with_s4 else [])
    held = set(grid_splits.s1_heldout_names()) | set(grid_splits.s4_eval_names()) | set(grid_splits.others_names())
    assert not (set(train) | set(val)) & held
    return train, val


def video_path(name: str) -> Path:
    from tools import grid_splits
    return grid_splits.video_path(name)


def clip_track(name: str) -> dict:
    from tools.grid_cache import load_clip
    return load_clip(name)


def prepare_clip(name: str, aug_copies: int = 0, phones: bool = False) -> dict:
    """Everything training/evaluation needs for one clip; `aug_copies` features of randomly degraded voices;
    `phones`: the network's inputs include PocketSphinx phone shares (decoded from each voice, degraded ones too)."""
    from core import mouth_shape as ms
    from tools.proxies import random_voice_chain

    tr = clip_track(name)
    lm, present, fps = tr["landmarks"], tr["present"].astype(bool), float(tr["fps"])
    n = len(lm)
    wav = load_wav(video_path(name))
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    aug = [ms.model_inputs(random_voice_chain(wav, seed + j), fps, n, phones) for j in range(aug_copies)]
    canon, tf = ms.normalize(lm)
    valid = present & np.isfinite(canon.reshape(n, -1)).all(axis=1)
    neutral = ms.clip_neutral(canon, valid)
    disp = canon[:, ms.SHAPE_POINTS] - neutral[None]
    disp[~valid] = 0.0
    feats = ms.model_inputs(wav, fps, n, phones)
    return dict(name=name, fps=fps, wav=wav, feats=feats, loud=ms.log_rms(wav, fps, n),
                disp=disp.astype(np.float32), valid=valid, neutral=neutral, canon=canon,
                aug=np.stack(aug) if aug else np.zeros((0, n, feats.shape[1]), np.float32))


def prepare_many(names: list[str], jobs: int = 2, aug_copies: int = 0, phones: bool = False) -> list[dict]:
    from functools import partial

    from tqdm import tqdm
    with Pool(jobs) as pool:
        return list(tqdm(pool.imap(partial(prepare_clip, aug_copies=aug_copies, phones=phones), names, chunksize=8),
                         total=len(names), desc="prepare", ncols=90))


# --------------------------------------------------------------------------------------------- fitting
def fit_pca(disp: np.ndarray, kept: float = VARIANCE_KEPT):
    """disp (M, 2K) -> mean (2K,), orthonormal basis (C, 2K), explained-variance ratios of all components."""
    mean = disp.mean(axis=0)
    _, s, vt = np.linalg.svd(disp - mean, full_matrices=False)
    var = s ** 2 / len(disp)
    ratio = var / var.sum()
    c = int(np.searchsorted(np.cumsum(ratio), kept) + 1)
    return mean, vt[:c], ratio, var[:c]


def fit_loudness(loud: np.ndarray, disp: np.ndarray):
    """Least squares disp ≈ loud * w + b over training frames."""
    x = np.stack([loud, np.ones_like(loud)], axis=1)
    coef, *_ = np.linalg.lstsq(x, disp, rcond=None)
    return coef[0], coef[1]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 1e-12 else float("nan")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_work_dir() -> Path:
    from tools.grid_cache import default_cache_dir
    return default_cache_dir().parent / "mouth"


# --------------------------------------------------------------------------------------------- training
def warp_mel(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Vocal-tract-length perturbation on (B, T, CONTEXT*N_MELS) features: band b of clip i reads band
    b * alpha[i] (linear interpolation on the mel axis, edges held)."""
    from core import mouth_shape as ms

    b, t, _ = x.shape
    z = x.reshape(b, t, ms.CONTEXT, ms.N_MELS)
    bands = np.arange(ms.N_MELS, dtype=np.float64)
    out = np.empty_like(z)
    for i in range(b):
        pos = np.clip(bands * alpha[i], 0, ms.N_MELS - 1)
        i0 = np.floor(pos).astype(np.int64)
        i1 = np.minimum(i0 + 1, ms.N_MELS - 1)
        f = (pos - i0).astype(np.float32)
        out[i] = z[i][..., i0] * (1 - f) + z[i][..., i1] * f
    return out.reshape(b, t, -1)


def batches(clips, rng, batch, crop):
    """Random crops of random clips; each clip's voice is its clean one or one of its degraded copies."""
    order = rng.permutation(len(clips))
    for i in range(0, len(order), batch):
        sel = [clips[j] for j in order[i:i + batch]]
        xs, ys, ms_ = [], [], []
        for c in sel:
            n = len(c["x"])
            L = min(crop, n)
            s = int(rng.integers(0, n - L + 1))
            v = int(rng.integers(0, len(c["aug"]) + 1))
            x = c["x"] if v == 0 else c["aug"][v - 1]
            xs.append(x[s:s + L]); ys.append(c["y"][s:s + L]); ms_.append(c["m"][s:s + L])
        L = min(len(x) for x in xs)
        yield (np.stack([x[:L] for x in xs]), np.stack([y[:L] for y in ys]), np.stack([m[:L] for m in ms_]))


def evaluate_val(net, clips, torch, coef_scale, basis, mean, rows_inner):
    """Val MSE (points, canonical units^2, per coordinate) and mean per-clip inner-opening Pearson r."""
    from core import mouth_shape as ms
    net.eval()
    se, cnt, rs = 0.0, 0, []
    with torch.inference_mode():
        for c in clips:
            y = net(torch.from_numpy(c["x"])[None])[0].double().numpy() * coef_scale
            d = (y @ basis + mean).reshape(len(y), -1, 2)
            true = c["disp"]
            m = c["m"]
            se += float(((d - true)[m] ** 2).sum()); cnt += int(m.sum()) * true.shape[1] * 2
            po = ms.shape_opening(c["neutral"][None] + d)[m]
            to = ms.shape_opening(c["neutral"][None] + true)[m]
            r = pearson(po, to)
            if np.isfinite(r):
                rs.append(r)
    net.train()
    return se / max(cnt, 1), float(np.mean(rs))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--lookahead", type=int, default=5)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--freq-mask", type=int, default=20, help="SpecAugment-style: max mel bands masked per clip")
    ap.add_argument("--patience", type=int, default=20)
    ap.add_argument("--work", type=Path, default=default_work_dir())
    ap.add_argument("--no-s4", action="store_true", help="train on s1 only (s4 then stays unseen)")
    ap.add_argument("--aug-copies", type=int, default=2, help="degraded copies of each training voice")
    ap.add_argument("--warp", type=float, default=0.1, help="vocal-tract-length warp range of the mel axis")
    ap.add_argument("--phones", action="store_true", help="add PocketSphinx phone shares to the inputs")
    ap.add_argument("--out", type=Path, default=MODEL_OUT)
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--threads", type=int, default=1,
                    help="1 is much faster than 2 when the 2 cores are shared with other jobs")
    a = ap.parse_args(argv)

    import torch
    from tqdm import tqdm

    from core import mouth_shape as ms
    from core.models.mouth_net import MouthNet

    torch.set_num_threads(a.threads)
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    a.work.mkdir(parents=True, exist_ok=True)
    held = set(heldout_names())
    train_names, val_names = training_split(with_s4=not a.no_s4)
    assert not (set(train_names) | set(val_names)) & held

    # one prepared file holds s1 and s4; the s1-only variant reads it and drops s4
    data_file = a.work / f"train_data_s1s4_aug{a.aug_copies}{'_ph' if a.phones else ''}.npz"
    t_prep = time.time()
    if data_file.exists():
        with np.load(data_file, allow_pickle=False) as z:   # read each array once (NpzFile re-reads per access)
            arr = {k: z[k] for k in ("names", "feats", "loud", "disp", "valid", "neutral", "aug")}
        clips = [dict(name=str(n), feats=arr["feats"][i], loud=arr["loud"][i], disp=arr["disp"][i],
                      valid=arr["valid"][i], neutral=arr["neutral"][i], aug=arr["aug"][i])
                 for i, n in enumerate(arr["names"])]
    else:
        clips = prepare_many(training_split(with_s4=True)[0] + val_names, aug_copies=a.aug_copies, phones=a.phones)
        n = min(len(c["feats"]) for c in clips)   # GRID clips: 74-75 frames; trim to a common length for storage
        clips = [dict(c, feats=c["feats"][:n], loud=c["loud"][:n], disp=c["disp"][:n], valid=c["valid"][:n],
                      aug=c["aug"][:, :n]) for c in clips]
        np.savez(data_file, names=np.array([c["name"] for c in clips]),
                 feats=np.stack([c["feats"] for c in clips]), loud=np.stack([c["loud"] for c in clips]),
                 disp=np.stack([c["disp"] for c in clips]), valid=np.stack([c["valid"] for c in clips]),
                 neutral=np.stack([c["neutral"] for c in clips]), aug=np.stack([c["aug"] for c in clips]))
    prep_seconds = time.time() - t_prep
    by_name = {c["name"]: c for c in clips if c["name"] in set(train_names) | set(val_names)}
    tr = [by_name[n] for n in train_names]
    va = [by_name[n] for n in val_names]

    # PCA + baselines on the training split only
    D = np.concatenate([c["disp"][c["valid"]].reshape(-1, 2 * ms.K) for c in tr]).astype(np.float64)
    Lo = np.concatenate([c["loud"][c["valid"]] for c in tr]).astype(np.float64)
    pca_mean, basis, ratio, var = fit_pca(D)
    coef_scale = float(np.sqrt(var.mean()))
    loud_w, loud_b = fit_loudness(Lo, D)
    C = len(basis)
    print(f"PCA: {C} components keep {np.cumsum(ratio)[C - 1]:.4f} of the variance "
          f"({len(D)} training frames, {len(tr)} train / {len(va)} val clips)")

    def pack(c):
        y = ((c["disp"].reshape(len(c["disp"]), -1) - pca_mean) @ basis.T / coef_scale).astype(np.float32)
        return dict(x=c["feats"].astype(np.float32), y=y, m=c["valid"].astype(bool), disp=c["disp"],
                    neutral=c["neutral"], aug=c["aug"].astype(np.float32))

    trp, vap = [pack(c) for c in tr], [pack(c) for c in va]
    n_in = trp[0]["x"].shape[1]
    net = MouthNet(n_in, C, hidden=a.hidden, lookahead=a.lookahead, dropout=a.dropout)
    nparams = sum(p.numel() for p in net.parameters())
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-2)
    steps_per_epoch = (len(trp) + a.batch - 1) // a.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.epochs * steps_per_epoch,
                                                pct_start=0.1)
    ckpt = a.work / "ckpt.pt"
    start, best, history, wall, since_best = 0, None, [], 0.0, 0
    if ckpt.exists() and not a.fresh:
        st = torch.load(ckpt, map_location="cpu", weights_only=False)
        net.load_state_dict(st["net"]); opt.load_state_dict(st["opt"]); sched.load_state_dict(st["sched"])
        start, best, history, wall = st["epoch"], st["best"], st["history"], st["wall"]
        since_best = st.get("since_best", 0)
        rng = st["rng"]; torch.set_rng_state(st["torch_rng"])
        print(f"resuming after epoch {start} ({wall:.0f} s of training so far)")
    print(f"MouthNet: {nparams} parameters, look-ahead {a.lookahead} frames, receptive field {net.receptive_field}")

    net.train()
    bar = tqdm(range(start, a.epochs), initial=start, total=a.epochs, desc="train", ncols=100)
    for epoch in bar:
        t0 = time.time()
        tot, nb = 0.0, 0
        for x, y, m in batches(trp, rng, a.batch, a.crop):
            x, extra = x[..., :ms.NUM_FEATURES], x[..., ms.NUM_FEATURES:]   # mel part, phone shares
            if a.warp:
                x = warp_mel(x, rng.uniform(1 - a.warp, 1 + a.warp, size=len(x)))
            if a.freq_mask:
                x = x.copy().reshape(x.shape[0], x.shape[1], ms.CONTEXT, ms.N_MELS)
                for b in range(len(x)):
                    w = int(rng.integers(0, a.freq_mask + 1))
                    f0 = int(rng.integers(0, ms.N_MELS - w + 1))
                    x[b, :, :, f0:f0 + w] = 0.0
                x = x.reshape(x.shape[0], x.shape[1], -1)
            x = np.ascontiguousarray(np.concatenate([x, extra], axis=-1), np.float32)
            xt, yt, mt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(m)
            pred = net(xt)
            err = ((pred - yt) ** 2).mean(dim=-1)
            loss = (err * mt).sum() / mt.sum().clamp(min=1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step(); sched.step()
            tot += float(loss); nb += 1
        val_mse, val_r = evaluate_val(net, vap, torch, coef_scale, basis, pca_mean, None)
        wall += time.time() - t0
        history.append(dict(epoch=epoch + 1, train_loss=tot / nb, val_mse=val_mse, val_r=val_r, wall=wall))
        if best is None or val_mse < best["val_mse"]:
            best = dict(epoch=epoch + 1, val_mse=val_mse, val_r=val_r,
                        state={k: v.clone() for k, v in net.state_dict().items()})
            since_best = 0
        else:
            since_best += 1
        bar.set_postfix(loss=f"{tot / nb:.3f}", val_mse=f"{val_mse:.2e}", val_r=f"{val_r:.3f}",
                        best=best["epoch"])
        torch.save(dict(net=net.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(), epoch=epoch + 1,
                        best=best, history=history, wall=wall, since_best=since_best, rng=rng,
                        torch_rng=torch.get_rng_state()), ckpt.with_suffix(".tmp"))
        os.replace(ckpt.with_suffix(".tmp"), ckpt)
        if since_best >= a.patience:
            print(f"early stop: no val improvement for {a.patience} epochs")
            break
    bar.close()
    (a.work / "history.json").write_text(json.dumps(history, indent=1))

    info = dict(seed=SEED, train_clips=len(tr), val_clips=len(va), epochs_run=len(history), best_epoch=best["epoch"],
                val_mse=best["val_mse"], val_opening_r=best["val_r"], train_wall_seconds=round(wall, 1),
                prep_seconds=round(prep_seconds, 1), parameters=nparams, pca_components=C,
                pca_variance_kept=float(np.cumsum(ratio)[C - 1]), lookahead_frames=a.lookahead,
                batch=a.batch, crop=a.crop, lr=a.lr, freq_mask=a.freq_mask, threads=a.threads,
                speakers=["s1"] if a.no_s4 else ["s1", "s4"], aug_copies=a.aug_copies, warp=a.warp,
                feature=dict(sample_rate=ms.SAMPLE_RATE, hop=ms.HOP, win=ms.WIN, n_fft=ms.N_FFT, n_mels=ms.N_MELS,
                             fmin=ms.FMIN, fmax=ms.FMAX, context=ms.CONTEXT, log_eps=ms.LOG_EPS,
                             clip=ms.FEATURE_CLIP))
    payload = dict(
        config=net.config(), state_dict=best["state"], inputs="mel+phones" if a.phones else "mel",
        pca_mean=torch.tensor(pca_mean, dtype=torch.float32), pca_basis=torch.tensor(basis, dtype=torch.float32),
        pca_variance=torch.tensor(var, dtype=torch.float32), coef_scale=coef_scale,
        shape_points=torch.tensor(ms.SHAPE_POINTS, dtype=torch.int64), model_fps=ms.MODEL_FPS,
        template=torch.tensor(ms.TEMPLATE, dtype=torch.float32),
        baselines=dict(mean_displacement=torch.tensor(D.mean(axis=0), dtype=torch.float32),
                       loudness_w=torch.tensor(loud_w, dtype=torch.float32),
                       loudness_b=torch.tensor(loud_b, dtype=torch.float32)),
        info=info)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, a.out)
    meta_path = a.out.with_suffix(".json")
    meta = dict(name="mouth_shape", file=a.out.name, sha256=sha256_file(a.out), kind="audio_to_mouth",
                licence="CC BY 4.0 (trained on GRID)", source="trained by tools/train_mouth.py",
                training_data=("GRID s1 (750 non-held-out clips)" + ("" if a.no_s4 else " + GRID s4 (25 clips: "
                               "every second in sorted order from the first)")),
                title="Audio to mouth shape (offline default engine)",
                metrics=dict(validation=dict(mse=best["val_mse"], opening_r=best["val_r"]),
                             train_wall_seconds=round(wall, 1)))
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(info, indent=1))
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB) and {meta_path}")


if __name__ == "__main__":
    main()
