"""Train LiteSyncNet (core/models/lite_sync_net.py), the offline SyncNet-style scorer, on GRID speaker s1.

    python -m tools.train_sync prep  [--jobs 2]               # crops + mel of the training clips -> crop cache
    python -m tools.train_sync train [--epochs 8] [--out DIR]  # resumable: checkpoint every epoch in DIR
    python -m tools.train_sync export --out DIR                 # best.pt -> resources/models/sync_lite.{pt,json}

Data: the 750 GRID s1 clips that are NOT in grid_s1/heldout.txt (the 250 held-out clips and grid_others are
never read here). Validation (early stopping, decision threshold): every 15th of the 750 sorted names (50 clips);
the other 700 are trained on.

Crop cache ($LIPDUB_SYNC_CROPS, else `sync_crops` in the user cache folder, core.paths): NAME.npz with `crops` (N, 64, 88) uint8, the
same geometry as the scorer's 48x64 crop (core.models.lite_sync_net.crop_affine) with a margin for augmentation,
and `mel` (80, T) float32 from core.audio (the scorer's own mel, so train and inference features match).

Training pairs: for every clip in a batch, two runs of 8 consecutive window positions; video window i and audio
window j of the same clip form a positive if i == j and a same-clip negative if |i - j| >= 2 (|i - j| = 1 is
ignored: it overlaps 80%); every audio window of the other clips in the batch is a cross-clip negative. Loss: balanced BCE on `scale * cosine + bias` plus an
InfoNCE term (softmax over all audio windows of the batch, the aligned one is the target). Augmentation: random
similarity warp (scale, rotation, shift) + per-frame jitter, mirror, static blotches, gamma, lighting ramp,
blur, noise; mel gain,
mel band shift, noise floor, band masks; random frame rate (23-31 fps resampling of the 25 fps clip, with the audio
window aligned as at inference); a simulated room (reverberant tail, EQ tilt, noise: `room_mel`) on half the clips'
voices, as the clip's own voice on real footage is room sound.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
S1 = SHARED / "grid_s1"

from core.models import lite_sync_net as L  # noqa: E402
from core.paths import user_cache_dir  # noqa: E402

CANVAS_H, CANVAS_W = 64, 88          # cached crop (same centre/scale as the 48x64 scorer crop)
DIST_SCALE = 10.0                    # must match core.sync.scorers.lite.DIST_SCALE
VSHIFT = 15
SEED = 1234


def crop_cache_dir() -> Path:
    env = os.environ.get("LIPDUB_SYNC_CROPS")
    return Path(env) if env else user_cache_dir("sync_crops")


def split_names():
    """(train, val) clip names: s1's training pool (every 15th held back for validation) plus s4's training half.
    Held-out s1 clips, s4's evaluation half and grid_others are never read here (tools/grid_splits.py)."""
    from tools import grid_splits

    pool = grid_splits.s1_pool()
    val = pool[::15]
    train = [n for n in pool if n not in set(val)] + grid_splits.s4_train_names()
    held = set(grid_splits.s1_heldout_names()) | set(grid_splits.s4_eval_names())
    assert not (set(train) | set(val)) & held
    return train, val


# ------------------------------------------------------------------------------------------------ audio
def _core_audio():
    try:
        from core import audio as A
        return A
    except ImportError:
        return None


def melspectrogram(wav: np.ndarray) -> np.ndarray:
    """core.audio.melspectrogram (the scorer's mel). Private Wav2Lip-exact copy only if core.audio is absent."""
    A = _core_audio()
    if A is not None:
        return np.asarray(A.melspectrogram(wav), np.float32)
    import librosa
    from scipy import signal

    x = signal.lfilter([1, -0.97], [1], np.asarray(wav, np.float64))
    d = librosa.stft(y=x, n_fft=800, hop_length=200, win_length=800, center=True, pad_mode="reflect")
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    s = 20 * np.log10(np.maximum(1e-5, basis @ np.abs(d))) - 20
    return np.clip(8 * ((s + 100) / 100) - 4, -4, 4).astype(np.float32)


def load_audio(path) -> np.ndarray:
    A = _core_audio()
    if A is not None:
        return A.load_audio(str(path))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", "16000", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.float32).copy()


# ------------------------------------------------------------------------------------------------ prep
def _prep_one(name: str) -> str:
    import cv2
    from tools import grid_splits
    from tools.grid_cache import load_clip

    out = crop_cache_dir() / f"{name}.npz"
    mel_src = "core.audio" if _core_audio() is not None else "private"
    if out.exists():
        with np.load(out) as z:
            data = {k: z[k] for k in z.files}
        if str(data.get("mel_src", "private")) == mel_src:
            return "cached"
        data["mel"] = melspectrogram(load_audio(grid_splits.video_path(name)))   # crops kept, mel redone
        data["mel_src"] = np.array(mel_src)
        tmp = out.with_suffix(".tmp.npz")
        np.savez(tmp, **data)
        os.replace(tmp, out)
        return "mel updated"
    track = load_clip(name)
    cap = cv2.VideoCapture(str(grid_splits.video_path(name)))
    crops = []
    i = 0
    last = None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i < len(track["present"]) and track["present"][i]:
            last = (track["landmarks"][i], track["boxes"][i])
        lm, box = last if last is not None else (None, None)
        crops.append(L.face_crop(frame, lm, box, CANVAS_H, CANVAS_W))
        i += 1
    cap.release()
    wav = load_audio(grid_splits.video_path(name))
    mel = melspectrogram(wav)
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, crops=np.array(crops, np.uint8), mel=mel, fps=np.float32(25.0),
             present=track["present"].astype(bool), mel_src=np.array(mel_src))
    os.replace(tmp, out)
    return f"{len(crops)} frames"


def cmd_prep(a):
    from multiprocessing import Pool
    from tqdm import tqdm

    crop_cache_dir().mkdir(parents=True, exist_ok=True)
    train, val = split_names()
    names = train + val
    with Pool(a.jobs) as pool:
        for _ in tqdm(pool.imap_unordered(_prep_one, names), total=len(names), desc="crops+mel"):
            pass


def load_cached(names):
    clips = []
    for n in names:
        with np.load(crop_cache_dir() / f"{n}.npz") as z:
            if _core_audio() is not None and str(z.get("mel_src", "private")) != "core.audio":
                raise SystemExit(f"{n}: cached mel is not core.audio's; run `python -m tools.train_sync prep`")
            clips.append({"name": n, "crops": z["crops"], "mel": z["mel"]})
    return clips


# ------------------------------------------------------------------------------------------------ sampling
class Sampler:
    """Builds one training batch: video windows, audio windows and their clip/position labels."""

    def __init__(self, clips, rng: np.random.Generator, runs=2, run=8, fps_aug=0.3, room_aug=0.0):
        self.clips = clips
        self.rng = rng
        self.runs = runs
        self.run = run
        self.fps_aug = fps_aug
        self.room_aug = room_aug

    def batch(self, clip_ids):
        vids, mels, v_meta, a_meta = [], [], [], []
        for ci, cid in enumerate(clip_ids):
            c = self.clips[cid]
            n_src = len(c["crops"])
            fps = 25.0
            if self.rng.random() < self.fps_aug:
                fps = float(self.rng.uniform(23.0, 31.0))
            n_virt = int(math.floor(n_src * fps / 25.0 + 1e-6))
            src_idx = np.minimum(np.floor(np.arange(n_virt) * 25.0 / fps + 0.5).astype(int), n_src - 1)
            nw = n_virt - L.NUM_FRAMES + 1
            # runs of consecutive windows: every pair inside a run is a small-shift example (|d| = 0..run-1)
            runs = [np.arange(r, r + self.run) for r in self.rng.integers(0, nw - self.run + 1, size=self.runs)]
            pos = np.unique(np.concatenate(runs))
            apos = pos
            starts = L.audio_window_starts(fps, nw)
            room = self.room_aug > 0 and self.rng.random() < self.room_aug   # no draw at 0: the old stream
            mel = room_mel(c["mel"], self.rng) if room else c["mel"]
            mw = L.mel_windows(mel, starts[apos])
            for i in pos:
                vids.append(c["crops"][src_idx[i:i + L.NUM_FRAMES]])
                v_meta.append((ci, i))
            mels.append(mw)
            a_meta += [(ci, j) for j in apos]
        return (np.stack(vids), np.concatenate(mels), np.array(v_meta), np.array(a_meta))


# ------------------------------------------------------------------------------------------------ augmentation
ROOM_RT60 = (0.2, 0.9)       # s: reverberation time of the simulated room
ROOM_DRR_DB = (-3.0, 12.0)   # direct-to-reverberant energy ratio
ROOM_SNR_DB = (8.0, 35.0)    # speech (the louder half of the columns) to noise, per band on average
ROOM_TILT_DB = 8.0           # +- EQ tilt from the lowest to the highest band


def room_mel(mel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A whole clip's (80, T) Wav2Lip mel as if recorded in a room: the clip's own voice on real footage is
    reverberant and noisy, the training voices are studio-clean. Done on the whole clip before windows are cut,
    so a window carries the reverberant tail of what came before it. In band power (the mel magnitude squared):
    an exponentially decaying tail per band (60 dB over RT60, shorter in the high bands) at a random
    direct-to-reverberant ratio, an EQ tilt, and stationary pink-ish noise with Gamma-distributed power at a
    random SNR. All in the mel domain, as the crop cache holds mel only (tools.proxies degrades evaluation voices
    on the waveform, with its own impulse responses)."""
    from scipy.signal import lfilter

    from core.audio import mel_level_db, mel_units

    power = 10.0 ** (mel_level_db(mel) / 10.0)
    bands = len(power)
    frac = np.linspace(0.0, 1.0, bands)[:, None]
    rt60 = rng.uniform(*ROOM_RT60) * (1.0 - 0.4 * frac)                  # (bands, 1)
    decay = np.exp(-13.8 / (rt60 * L.MEL_PER_SECOND))                     # per column, power
    tail_gain = 10.0 ** (-rng.uniform(*ROOM_DRR_DB) / 10.0) * (1.0 - decay)   # tail energy / direct energy
    wet = np.empty_like(power)
    for b in range(bands):
        wet[b] = lfilter([0.0, tail_gain[b, 0]], [1.0, -decay[b, 0]], power[b])
    power = (power + wet) * 10.0 ** (rng.uniform(-1, 1) * ROOM_TILT_DB * (frac - 0.5) / 10.0)
    loud = power.sum(0)
    speech = loud[loud >= np.percentile(loud, 50)].mean() / bands
    shape = 1.0 / (1.0 + 8.0 * frac)                                    # more noise power in the low bands
    shape = shape / shape.mean()
    noise = speech * 10.0 ** (-rng.uniform(*ROOM_SNR_DB) / 10.0) * shape * rng.gamma(4.0, 0.25, power.shape)
    return mel_units(10.0 * np.log10(np.maximum(power + noise, 1e-30))).astype(np.float32)


def augment_video(x, gen, train=True):
    """(B, 5, 64, 88) uint8 tensor -> (B, 5, 48, 64) float32 0..255; identity = central crop when train=False."""
    import torch
    from torch.nn import functional as F

    b, t = x.shape[:2]
    x = x.float()
    if not train:
        oy, ox = (CANVAS_H - L.CROP_H) // 2, (CANVAS_W - L.CROP_W) // 2
        return x[:, :, oy:oy + L.CROP_H, ox:ox + L.CROP_W]

    def u(*shape, lo=-1.0, hi=1.0):
        return torch.rand(*shape, generator=gen) * (hi - lo) + lo

    scale = torch.exp(u(b, lo=math.log(0.88), hi=math.log(1.12)))
    rot = u(b) * math.radians(7)
    tx, ty = u(b) * 4.0, u(b) * 3.0
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    # per frame: landmark jitter
    scale_f = scale[:, None] * (1 + u(b, t) * 0.02)
    rot_f = rot[:, None] + u(b, t) * math.radians(1.0)
    tx_f, ty_f = tx[:, None] + u(b, t) * 0.8, ty[:, None] + u(b, t) * 0.8
    cos, sin = torch.cos(rot_f) * scale_f, torch.sin(rot_f) * scale_f
    # output pixel (centred) -> input pixel (centred): p_in = A p_out + t; then to normalised coords
    hw_o, hh_o = L.CROP_W / 2, L.CROP_H / 2
    hw_i, hh_i = CANVAS_W / 2, CANVAS_H / 2
    theta = torch.zeros(b, t, 2, 3)
    theta[..., 0, 0] = cos * flip[:, None] * hw_o / hw_i
    theta[..., 0, 1] = -sin * hh_o / hw_i
    theta[..., 1, 0] = sin * flip[:, None] * hw_o / hh_i
    theta[..., 1, 1] = cos * hh_o / hh_i
    theta[..., 0, 2] = tx_f / hw_i
    theta[..., 1, 2] = ty_f / hh_i
    grid = F.affine_grid(theta.reshape(b * t, 2, 3), (b * t, 1, L.CROP_H, L.CROP_W), align_corners=False)
    y = F.grid_sample(x.reshape(b * t, 1, CANVAS_H, CANVAS_W), grid, mode="bilinear", padding_mode="border",
                      align_corners=False).reshape(b, t, L.CROP_H, L.CROP_W)
    # blur (30%)
    sig = u(b, lo=0.4, hi=1.3)
    blur = torch.rand(b, generator=gen) < 0.3
    if blur.any():
        k = torch.arange(-2, 3).float()
        for bi in torch.nonzero(blur).flatten().tolist():
            g = torch.exp(-k ** 2 / (2 * sig[bi] ** 2))
            g = g / g.sum()
            z = y[bi].reshape(t, 1, L.CROP_H, L.CROP_W)
            z = F.conv2d(F.pad(z, (2, 2, 0, 0), mode="replicate"), g.view(1, 1, 1, 5))
            z = F.conv2d(F.pad(z, (0, 0, 2, 2), mode="replicate"), g.view(1, 1, 5, 1))
            y[bi] = z.reshape(t, L.CROP_H, L.CROP_W)
    # static blotches (beard, moustache, shadows, glasses rims): the same in all 5 frames, so only motion is signal
    yy = torch.arange(L.CROP_H).float()[:, None]
    xx = torch.arange(L.CROP_W).float()[None, :]
    for bi in torch.nonzero(torch.rand(b, generator=gen) < 0.4).flatten().tolist():
        for _ in range(int(torch.randint(1, 4, (1,), generator=gen))):
            cy, cx = float(u(1, lo=0, hi=L.CROP_H)), float(u(1, lo=0, hi=L.CROP_W))
            ry, rx = float(u(1, lo=3, hi=12)), float(u(1, lo=4, hi=24))
            mask = torch.exp(-(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) ** 2)
            gain = float(u(1, lo=0.35, hi=1.5))
            y[bi] = y[bi] * (1 + (gain - 1) * mask)
    # gamma, lighting ramp, noise
    gamma = torch.exp(u(b, lo=math.log(0.65), hi=math.log(1.5)))
    y = 255.0 * (y.clamp(0, 255) / 255.0) ** gamma[:, None, None, None]
    gx = torch.linspace(-1, 1, L.CROP_W)[None, None, None, :]
    gy = torch.linspace(-1, 1, L.CROP_H)[None, None, :, None]
    y = y * (1 + u(b)[:, None, None, None] * 0.25 * gx + u(b)[:, None, None, None] * 0.15 * gy)
    y = y + torch.randn(y.shape, generator=gen) * u(b, lo=0, hi=5.0)[:, None, None, None]
    return y.clamp(0, 255)


def augment_mel(m, gen, train=True):
    """(B, 80, 16) float tensor in Wav2Lip units -> (B, 1, 80, 16)."""
    import torch

    m = m.clone()
    if train:
        b = m.shape[0]
        # band shift (rough vocal-tract-length change), 50%
        sh = torch.randint(-3, 4, (b,), generator=gen)
        sh[torch.rand(b, generator=gen) < 0.5] = 0
        for s in sh.unique().tolist():
            if s == 0:
                continue
            idx = (sh == s)
            z = m[idx]
            if s > 0:
                z = torch.cat([z[:, :1].expand(-1, s, -1), z[:, :-s]], 1)
            else:
                z = torch.cat([z[:, -s:], z[:, -1:].expand(-1, -s, -1)], 1)
            m[idx] = z
        # gain +-10 dB (0.08 units per dB); the silence floor stays at the floor
        gain = (torch.rand(b, generator=gen) * 2 - 1) * 0.8
        floor = m <= -3.999
        m = torch.where(floor, m, (m + gain[:, None, None]).clamp(-4, 4))
        # stationary noise floor, 30%
        lvl = torch.rand(b, generator=gen) * 2.5 - 4.0
        lvl[torch.rand(b, generator=gen) > 0.3] = -4.0
        noise = lvl[:, None, None] + 0.15 * torch.randn(m.shape, generator=gen)
        m = torch.maximum(m, noise).clamp(-4, 4)
        # band mask, 25%
        for bi in torch.nonzero(torch.rand(b, generator=gen) < 0.25).flatten().tolist():
            w = int(torch.randint(2, 10, (1,), generator=gen))
            f0 = int(torch.randint(0, 80 - w, (1,), generator=gen))
            m[bi, f0:f0 + w] = m[bi].mean()
    return m[:, None]


# ------------------------------------------------------------------------------------------------ loss
def pair_loss(model, ev, ea, v_meta, a_meta, nce_weight=1.0):
    import torch
    from torch.nn import functional as F

    cos = ev @ ea.T                                              # (V, A)
    vc, vi = torch.as_tensor(v_meta[:, 0]), torch.as_tensor(v_meta[:, 1])
    ac, ai = torch.as_tensor(a_meta[:, 0]), torch.as_tensor(a_meta[:, 1])
    same = vc[:, None] == ac[None, :]
    d = (vi[:, None] - ai[None, :]).abs()
    pos = same & (d == 0)
    neg_same = same & (d >= 2)
    neg_cross = ~same
    logits = model.logit_scale * cos + model.logit_bias
    bce_pos = F.binary_cross_entropy_with_logits(logits[pos], torch.ones_like(logits[pos]))
    bce_ns = F.binary_cross_entropy_with_logits(logits[neg_same], torch.zeros_like(logits[neg_same]))
    bce_nc = F.binary_cross_entropy_with_logits(logits[neg_cross], torch.zeros_like(logits[neg_cross]))
    bce = 0.5 * bce_pos + 0.3 * bce_ns + 0.2 * bce_nc
    # InfoNCE over the batch's audio windows (|shift| = 1 of the same clip masked out)
    nce_logits = 10.0 * cos
    nce_logits = nce_logits.masked_fill(same & (d == 1), -1e4)
    target = pos.float().argmax(1)
    nce = F.cross_entropy(nce_logits, target)
    with torch.no_grad():
        # rank-1 within the clip: the aligned audio beats every same-clip audio window at |shift| >= 2
        pos_cos = (cos * pos).sum(1)
        worst = cos.masked_fill(~neg_same, -2.0).max(1).values
        acc = (pos_cos > worst).float().mean().item()
    return bce + nce_weight * nce, {"bce": bce.item(), "nce": nce.item(), "pos_cos": cos[pos].mean().item(),
                                    "neg_cos": cos[neg_same].mean().item(), "acc": acc}


# ------------------------------------------------------------------------------------------------ validation
def lse(video_feat, audio_feat, vshift=VSHIFT):
    """syncnet_python's offset/confidence logic (core.sync.scoring.lse_from_features when available)."""
    try:
        from core.sync.scoring import lse_from_features
        r = lse_from_features(video_feat, audio_feat, vshift=vshift)
        return r.offset_frames, r.lse_d, r.lse_c, r.dists
    except ImportError:
        pass
    v = np.asarray(video_feat, np.float64)
    a = np.asarray(audio_feat, np.float64)
    ap = np.pad(a, ((vshift, vshift), (0, 0)))
    n = len(v)
    dists = np.stack([np.linalg.norm(v - ap[k:k + n] + 1e-6, axis=1) for k in range(2 * vshift + 1)], 1)
    mdist = dists.mean(0)
    mi = int(mdist.argmin())
    return vshift - mi, float(mdist[mi]), float(np.median(mdist) - mdist[mi]), dists


def embed_clip(model, clip, max_shift=8):
    """Video features (N-4, D) and audio features at window positions -max_shift..N-4+max_shift (scaled like
    the scorer): delaying the audio by k frames pairs video window i with audio position i-k."""
    import torch

    crops = clip["crops"]
    nw = len(crops) - L.NUM_FRAMES + 1
    win = np.stack([crops[i:i + L.NUM_FRAMES] for i in range(nw)])
    with torch.no_grad():
        ev = model.embed_video(augment_video(torch.from_numpy(win), None, train=False)).numpy() * DIST_SCALE
        starts = L.audio_window_starts(25.0, nw + 2 * max_shift, first=-max_shift)
        mw = L.mel_windows(clip["mel"], starts)
        ea = model.embed_audio(torch.from_numpy(mw)[:, None]).numpy() * DIST_SCALE
    return ev, ea


def validate(model, clips, shifts=tuple(range(-8, 9))):
    """Offset recovery over audio delays, and in-sync vs off-sync (|k| >= 3) separation at offset 0."""
    model.eval()
    hits, conf0_in, conf0_off, win_in, win_off, lsec = [], [], [], [], [], {}
    ms = max(abs(k) for k in shifts)
    for c in clips:
        ev, eall = embed_clip(model, c, ms)
        for k in shifts:
            ea = eall[ms - k:ms - k + len(ev)]
            off, d, conf, dists = lse(ev, ea)
            hits.append(abs(off + k) <= 1)
            lsec.setdefault(k, []).append(conf)
            mdist = dists.mean(0)
            med = float(np.median(mdist))
            c0 = (med - float(mdist[VSHIFT])) / max(med - float(mdist.min()), 1e-6)   # 1: offset 0 is the best
            w0 = med - dists[:, VSHIFT]
            if k == 0:
                conf0_in.append(c0)
                win_in.append(w0)
            elif abs(k) >= 3:
                conf0_off.append(c0)
                win_off.append(w0)
    win_in, win_off = np.concatenate(win_in), np.concatenate(win_off)
    thr_w, acc_w = best_threshold(win_in, win_off)
    thr_c, acc_c = best_threshold(np.array(conf0_in), np.array(conf0_off))
    return {"offset_recovery": float(np.mean(hits)), "window_thr": thr_w, "window_bal_acc": acc_w,
            "clip_thr": thr_c, "clip_bal_acc": acc_c, "lse_c_sync": float(np.mean(lsec[0])),
            "lse_c_shift": float(np.mean([np.mean(v) for k, v in lsec.items() if k != 0]))}


def best_threshold(pos, neg):
    """Threshold t (in-sync iff value > t) maximising balanced accuracy."""
    cand = np.unique(np.concatenate([pos, neg]))
    if len(cand) > 2000:
        cand = np.quantile(cand, np.linspace(0, 1, 2001))
    best = (0.0, -1.0)
    for t in cand:
        acc = 0.5 * ((pos > t).mean() + (neg <= t).mean())
        if acc > best[1]:
            best = (float(t), float(acc))
    return best


# ------------------------------------------------------------------------------------------------ train
def cmd_train(a):
    import torch
    from tqdm import tqdm

    torch.set_num_threads(a.threads)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    train_names, val_names = split_names()
    if a.limit:
        train_names = train_names[:a.limit]
    # s4 has 25 training clips against s1's 700: repeat them so a batch sees the second face often enough
    from tools import grid_splits
    train_names += [n for n in train_names if n in set(grid_splits.s4_train_names())] * (a.s4_repeat - 1)
    tr, va = load_cached(train_names), load_cached(val_names)
    model = L.LiteSyncNet(width=a.width)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    steps_per_epoch = len(tr) // a.clips
    total = steps_per_epoch * a.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=total, pct_start=0.15)
    state = {"epoch": 0, "history": [], "best": -1.0, "wall": 0.0}
    ck = out / "last.pt"
    rng = np.random.default_rng(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    if ck.exists():
        s = torch.load(ck, weights_only=False)
        model.load_state_dict(s["model"])
        opt.load_state_dict(s["opt"])
        sched.load_state_dict(s["sched"])
        state = s["state"]
        rng.bit_generator.state = s["rng"]
        gen.set_state(s["gen"])
        print(f"resumed after epoch {state['epoch']} ({state['wall']:.0f} s so far)")
    sampler = Sampler(tr, rng, runs=a.runs, run=a.run, room_aug=a.room)
    for epoch in range(state["epoch"], a.epochs):
        t0 = time.time()
        model.train()
        order = rng.permutation(len(tr))
        logs = []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{a.epochs}", dynamic_ncols=True)
        for step in bar:
            ids = order[step * a.clips:(step + 1) * a.clips]
            v, m, vm, am = sampler.batch(ids)
            xv = augment_video(torch.from_numpy(v), gen, train=True)
            xm = augment_mel(torch.from_numpy(m), gen, train=True)
            ev, ea = model(xv, xm)
            loss, info = pair_loss(model, ev, ea, vm, am, nce_weight=a.nce)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            logs.append(info)
            if step % 5 == 0:
                bar.set_postfix(bce=f"{np.mean([x['bce'] for x in logs[-20:]]):.3f}",
                                nce=f"{np.mean([x['nce'] for x in logs[-20:]]):.3f}",
                                pos=f"{np.mean([x['pos_cos'] for x in logs[-20:]]):.2f}",
                                neg=f"{np.mean([x['neg_cos'] for x in logs[-20:]]):.2f}",
                                r1=f"{np.mean([x['acc'] for x in logs[-20:]]):.2f}")
        val = validate(model, va)
        state["wall"] += time.time() - t0
        rec = {"epoch": epoch + 1, "wall_s": round(state["wall"], 1),
               **{k: float(np.mean([x[k] for x in logs])) for k in logs[0]}, **val}
        state["history"].append(rec)
        state["epoch"] = epoch + 1
        score = val["offset_recovery"] + val["window_bal_acc"]
        print(json.dumps(rec))
        if score > state["best"]:
            state["best"] = score
            torch.save({"state_dict": model.state_dict(), "config": {"width": a.width, "emb_dim": L.EMB_DIM},
                        "val": val, "epoch": epoch + 1}, out / "best.pt")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "state": state, "rng": rng.bit_generator.state, "gen": gen.get_state()}, ck)
        (out / "history.json").write_text(json.dumps({"args": vars(a), "train_clips": len(tr),
                                                      "val_clips": len(va), "history": state["history"]}, indent=1))


# ------------------------------------------------------------------------------------------------ export
def cmd_export(a):
    import torch

    src = Path(a.out)
    best = torch.load(src / "best.pt", weights_only=False)
    hist = json.loads((src / "history.json").read_text())
    model = L.LiteSyncNet(**best["config"])
    model.load_state_dict(best["state_dict"])
    # shipped file: fp32 state dict + config + decision thresholds; loadable with weights_only=True
    sd = {k: v.detach().float().clone() if v.is_floating_point() else v.clone() for k, v in model.state_dict().items()}
    payload = {"state_dict": sd, "config": dict(best["config"]), "dist_scale": DIST_SCALE,
               "window_threshold": float(best["val"]["window_thr"]), "clip_threshold": float(best["val"]["clip_thr"])}
    dst = Path(a.dest)
    dst.mkdir(parents=True, exist_ok=True)
    pt = dst / "sync_lite.pt"
    torch.save(payload, pt)
    sha = hashlib.sha256(pt.read_bytes()).hexdigest()
    meta_path = dst / "sync_lite.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if meta.get("sha256") != sha:
        meta["metrics"] = {}   # metrics belong to the weights: rerun tools/eval_sync.py --update-meta
    meta.update({"name": "sync_lite", "file": "sync_lite.pt", "sha256": sha, "kind": "sync_scorer",
                 "licence": "CC BY 4.0 (trained on GRID)", "source": "trained by tools/train_sync.py"})
    meta.setdefault("metrics", {})
    h = hist["history"]
    meta["training"] = {"train_clips": hist["train_clips"], "val_clips": hist["val_clips"],
                        "epochs": len(h), "best_epoch": best["epoch"], "wall_time_s": h[-1]["wall_s"],
                        "steps": len(h) * (hist["train_clips"] // hist["args"]["clips"]),
                        "val_at_best": best["val"]}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {pt} ({pt.stat().st_size / 1e6:.2f} MB, sha256 {sha[:12]}...)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prep")
    p.add_argument("--jobs", type=int, default=2)
    t = sub.add_parser("train")
    t.add_argument("--out", default=str(user_cache_dir("sync_train")))
    t.add_argument("--epochs", type=int, default=8)
    t.add_argument("--clips", type=int, default=8, help="clips per batch")
    t.add_argument("--runs", type=int, default=2, help="runs of consecutive windows per clip per batch")
    t.add_argument("--run", type=int, default=8, help="windows per run")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--nce", type=float, default=1.0, help="weight of the InfoNCE term (0: BCE only)")
    t.add_argument("--width", type=int, default=24)
    t.add_argument("--threads", type=int, default=1, help="1 is faster than 2 on a busy 2-core machine")
    t.add_argument("--limit", type=int, default=0, help="use only the first N training clips (pilot)")
    t.add_argument("--s4-repeat", type=int, default=6, help="times each s4 training clip appears per epoch")
    t.add_argument("--seed", type=int, default=SEED, help="another seed measures run-to-run spread")
    t.add_argument("--room", type=float, default=0.5,
                   help="share of clips whose voice gets a simulated room (room_mel); 0.5 is the shipped recipe")
    e = sub.add_parser("export")
    e.add_argument("--out", default=str(user_cache_dir("sync_train")))
    e.add_argument("--dest", default=str(ROOT / "resources" / "models"))
    a = ap.parse_args()
    {"prep": cmd_prep, "train": cmd_train, "export": cmd_export}[a.cmd](a)


if __name__ == "__main__":
    main()
