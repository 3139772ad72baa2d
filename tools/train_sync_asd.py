"""Train the face-general sync scorer `sync_asd` (core/sync/scorers/asd.py) on GRID s1 + s4's training half.

    python -m tools.train_sync_asd prep [--limit 200] [--part K --parts N]   # frozen ASD embeddings (cached)
    python -m tools.train_sync_asd prep --encoder lr_asd [...]               # LR-ASD's, for the second voice
    python -m tools.train_sync_asd prep --pictures 3                         # + a third picture (`footage_chain`)
    python -m tools.train_sync_asd train [--steps 1500] [--second-voice lr_asd] [--s4 train|heldout] [--out FILE]
                                         [--pictures 3]
    python -m tools.train_sync_asd export FILE        # -> resources/models/sync_asd.pt + .json
    python -m tools.train_sync_asd export FILE --dest out/X.pt   # the same layout elsewhere (eval_sync --weights)

The shipped file: `RECIPE` below (the second voice on).

The picture side is Light-ASD's visual encoder (TalkSet weights, trained on thousands of faces), frozen: what
it learnt about lips on those faces is what makes the scorer hold on faces GRID does not have. The voice side is
Light-ASD's audio encoder on MFCCs, frozen too, and with `--second-voice lr_asd` LR-ASD's audio encoder beside it
(its 128 values a frame appended: it reads reverberant, noisy voices of unseen speakers better, docs/MEASUREMENTS.md;
`export` puts the authors' weights of that encoder, unchanged, in the heads file). The picture's embeddings are
standardised over each clip first (`normalise_clip`: what stays is how the face moves, not what it looks like). What
we train is the two heads that map 5-frame windows of their per-frame embeddings to a shared sync space
(core.sync.asd.head.SyncHeads), with InfoNCE against the same
clip's voice at wrong offsets (the hard negatives that teach timing) and other clips' voices.

Data roles (tools/grid_splits.py, tools/train_sync.split_names): training is the s1 pool's training split (at most
`--limit` clips) plus s4's even half; selection is s1_val and s4's evaluation half; grid_others, its HD proxies and
s1's held-out clips are evaluation only and never read here.

Augmentation (fixed families, set before any evaluation): each training clip's picture is embedded twice, as is and
through a random camera chain (mirror, gain/gamma, blur or down-and-up scaling, a per-clip crop offset and scale
and a small per-frame jitter, as head motion and re-framing); its voice four times, clean and through three
random rooms (`room_wave`: RT60 0.15-0.9 s, direct-to-reverberant -3..12 dB, an EQ tilt, pink-ish noise at
5-35 dB SNR, gain -12..+6 dB). The evaluation's degraded voices come from tools.proxies (a different impulse
generator and a fixed chain).

A third picture (`prep --pictures 3`, `train --pictures 3`; its own prep folder `sync_asd_prep_p3`, each file
recording `pictures`; not in the shipped recipe, issue 17's ninth session): `footage_chain`, what real footage and
the unseen faces have that the camera chain lacks. Its own random stream (the clip's seed and 3), so the first two
pictures and the four voices are the shipped prep's, bit for bit (`prep --pictures 3` copies them from it when
present). Per clip each family is drawn independently (at least one), in the order a face meets them:
  * an upper-lip occluder (p 0.4): a dark band from the nose's base (landmark 33) down to the upper lip's outer
    contour (48-54) and a little over it, as wide as the mouth (48-54) plus 10-25 % each side, following the
    landmarks each frame in crop coordinates (`clip_crops(..., with_landmarks=True)`); its top at 0.1-0.4 of the
    gap from the nose to the lip's top (50-52), its lower edge -0.1..+0.15 of the mouth's height past the contour;
    pixels times 0.25-0.6 and a vertical hair texture (noise blurred along the rows, std 4-16 grey levels), edges
    blurred (sigma 1-3 px);
  * low contrast and darker skin (p 0.5): each pixel pulled toward the clip's mean by a factor 0.35-0.75, then
    times 0.45-0.9;
  * then the camera chain above (always);
  * block-codec artefacts (p 0.7): the crop shrunk to 0.35-1.0 of its size (GRID's MPEG-1 faces are ~100 px, HD
    faces a few hundred), JPEG-coded with a per-clip block-grid offset (0-7 px), its quality drawn anew for each
    group of 12 frames (a random phase) in base +-10 (base 10-50, clipped to 5-60), a brightness step of
    N(0, 2) grey levels at each group's start (I-frame flicker), and back to 112 px.
These ranges were set before any figure of the new heads was seen.
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

SEED = 1234
# the authors' checkpoints whose audio encoder can read the voice beside Light-ASD's (../shared/models/asd, MIT)
SECOND_VOICE_CHECKPOINTS = {"lr_asd": ROOT.parent / "shared" / "models" / "asd" / "lr_asd" / "finetuning_TalkSet.model"}
RECIPE = ("python -m tools.train_sync_asd prep && python -m tools.train_sync_asd prep --encoder lr_asd && "
          "python -m tools.train_sync_asd train --second-voice lr_asd && "
          "python -m tools.train_sync_asd export out/sync_asd_heads.pt")
CAMERA_VARIANTS = 2      # as is + one random camera chain (the shipped recipe)
PICTURE_CHOICES = (2, 3)  # + `footage_chain` (issue 17's ninth session; not shipped)
VOICE_VARIANTS = 4       # clean + three random rooms


def prep_dir(arch: str = "", pictures: int = CAMERA_VARIANTS) -> Path:
    """Where `prep` keeps the embeddings: the shipped Light-ASD's, or (`arch`) another network's (`--encoder`);
    with a number of pictures other than the shipped recipe's, a folder of its own (`_p3`)."""
    from core.paths import user_cache_dir
    return user_cache_dir("sync_asd_prep" + (f"_{arch}" if arch else "")
                          + (f"_p{pictures}" if pictures != CAMERA_VARIANTS else ""))


def encoder_model(path):
    """The network whose encoders `prep` runs: the shipped Light-ASD (None) or an authors' checkpoint file."""
    from core.sync.asd.weights import load_asd
    if path is None:
        return load_asd()
    from core.sync.asd.net import freeze_visual, load_checkpoint
    return freeze_visual(load_checkpoint(Path(path)).eval())


# ------------------------------------------------------------------------------------------------ augmentation
def room_wave(wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 16 kHz voice through a random simulated room and recording chain (same length)."""
    from scipy.signal import fftconvolve, lfilter

    from tools.proxies import noise_and_level

    sr = 16000
    x = np.asarray(wav, np.float64)
    rt60 = rng.uniform(0.15, 0.9)
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    # late reverberation: a few decaying noise bands, denser and darker with time
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail = lfilter([1.0], [1.0, -rng.uniform(0.0, 0.7)], tail)
    tail[: int(rng.uniform(0.002, 0.012) * sr)] = 0.0
    drr = 10 ** (rng.uniform(-3.0, 12.0) / 10)
    tail *= np.sqrt(1.0 / (drr * (tail ** 2).sum() + 1e-12))
    ir = tail
    ir[0] = 1.0
    y = fftconvolve(x, ir)[: len(x)]
    a = rng.uniform(-0.8, 0.8)                          # EQ tilt: bright (a > 0) or dull (a < 0)
    y = lfilter([1.0, -a], [1.0], y) if a > 0 else lfilter([1.0 + a], [1.0, a], y)
    noise = lfilter([1.0], [1.0, -rng.uniform(0.5, 0.95)], rng.standard_normal(len(x)))
    snr = rng.uniform(5.0, 35.0)
    return noise_and_level(y, noise, snr, rng.uniform(-12, 6))


def camera_chain(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T, 112, 112) uint8 face crops through a random camera: mirror, gain/gamma, blur or resolution loss,
    a per-clip re-framing (scale, offset) and per-frame jitter (head motion)."""
    import cv2

    t, h, w = crops.shape
    out = np.empty_like(crops)
    flip = rng.random() < 0.5
    gain, gamma = rng.uniform(0.7, 1.3), rng.uniform(0.7, 1.4)
    lut = np.clip(255 * (np.arange(256) / 255) ** gamma * gain, 0, 255).astype(np.uint8)
    down = rng.uniform(0.3, 1.0) if rng.random() < 0.6 else 1.0
    sigma = rng.uniform(0.0, 1.5)
    scale = rng.uniform(0.9, 1.1)
    dx, dy = rng.uniform(-6, 6, size=2)
    walk = np.cumsum(rng.normal(0, 0.4, size=(t, 2)), 0)
    walk -= walk.mean(0)
    for i in range(t):
        c = crops[i][:, ::-1] if flip else crops[i]
        ox, oy = dx + walk[i, 0], dy + walk[i, 1]
        m = np.array([[scale, 0, (1 - scale) * w / 2 + ox], [0, scale, (1 - scale) * h / 2 + oy]], np.float32)
        c = cv2.warpAffine(np.ascontiguousarray(c), m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        if down < 1.0:
            small = cv2.resize(c, (max(8, int(w * down)), max(8, int(h * down))), interpolation=cv2.INTER_AREA)
            c = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if sigma > 0.3:
            c = cv2.GaussianBlur(c, (0, 0), sigma)
        out[i] = lut[c]
    return out


def lip_occluder(crops: np.ndarray, lms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T, 112, 112) uint8 crops with a synthetic mustache: a dark, hair-textured, soft-edged band between the nose's
    base and the upper lip, placed each frame from the 68 landmarks `lms` (T, 68, 2) in crop coordinates."""
    import cv2

    t, h, w = crops.shape
    top_frac, over = rng.uniform(0.1, 0.4), rng.uniform(-0.1, 0.15)
    widen, dark = rng.uniform(0.10, 0.25), rng.uniform(0.25, 0.6)
    edge = rng.uniform(1.0, 3.0)
    hair = rng.standard_normal((h, w)).astype(np.float32)
    hair = cv2.GaussianBlur(hair, (0, 0), sigmaX=0.6, sigmaY=3.0)          # vertical strands
    hair *= rng.uniform(4.0, 16.0) / (hair.std() + 1e-6)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty_like(crops)
    for i in range(t):
        lm = lms[i]
        nose_y = lm[33, 1]
        lip_y = lm[50:53, 1].min()
        mouth_h = max(lm[57, 1] - lip_y, 1.0)
        x0, x1 = lm[48, 0], lm[54, 0]
        span = max(x1 - x0, 4.0)
        y_top = nose_y + top_frac * max(lip_y - nose_y, 1.0)
        # the lower edge hugs the upper lip's outer contour (48-54), lowered by `over` of the mouth's height
        order = np.argsort(lm[48:55, 0])
        contour = np.interp(xx[0], lm[48:55, 0][order], lm[48:55, 1][order])
        y_bot = np.maximum(contour + over * mouth_h, y_top + 1)[None, :]
        band = ((yy >= y_top) & (yy <= y_bot) &
                (xx >= x0 - widen * span) & (xx <= x1 + widen * span)).astype(np.float32)
        band = cv2.GaussianBlur(band, (0, 0), edge)
        c = crops[i].astype(np.float32)
        dark_c = c * dark + hair
        out[i] = np.clip(c * (1 - band) + dark_c * band, 0, 255).astype(np.uint8)
    return out


def low_contrast(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Crops pulled toward the clip's mean (a flat, low-contrast face) and darkened (darker skin, dim light)."""
    k, dark = rng.uniform(0.35, 0.75), rng.uniform(0.45, 0.9)
    m = float(crops.mean())
    return np.clip((m + (crops.astype(np.float32) - m) * k) * dark, 0, 255).astype(np.uint8)


def block_codec(crops: np.ndarray, rng: np.random.Generator, gop: int = 12) -> np.ndarray:
    """Crops through a block codec's artefacts: shrunk, JPEG-coded (8-pixel blocks at a per-clip grid offset) at a
    quality drawn anew every `gop` frames, a brightness step at each group's start (I-frame flicker), regrown."""
    import cv2

    t, h, w = crops.shape
    scale = rng.uniform(0.35, 1.0)
    sw, sh = max(16, int(round(w * scale))), max(16, int(round(h * scale)))
    base = rng.uniform(10, 50)
    ox, oy = (int(v) for v in rng.integers(0, 8, size=2))
    phase = int(rng.integers(gop))
    out = np.empty_like(crops)
    q, step = int(base), 0.0
    for i in range(t):
        if i == 0 or (i + phase) % gop == 0:
            q = int(np.clip(base + rng.uniform(-10, 10), 5, 60))
            step = rng.normal(0.0, 2.0)
        c = crops[i]
        small = cv2.resize(c, (sw, sh), interpolation=cv2.INTER_AREA) if (sw, sh) != (w, h) else c
        padded = cv2.copyMakeBorder(small, oy, 0, ox, 0, cv2.BORDER_REPLICATE)
        ok, buf = cv2.imencode(".jpg", padded, [cv2.IMWRITE_JPEG_QUALITY, q])
        dec = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)[oy:, ox:]
        big = cv2.resize(dec, (w, h), interpolation=cv2.INTER_LINEAR) if (sw, sh) != (w, h) else dec
        out[i] = np.clip(big.astype(np.float32) + step, 0, 255).astype(np.uint8)
    return out


def footage_chain(crops: np.ndarray, lms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The third picture (`--pictures 3`; the module docstring): per clip, some of an upper-lip occluder and low
    contrast, then the camera chain, then block-codec artefacts (at least one of the three families)."""
    use = {"occluder": rng.random() < 0.4, "contrast": rng.random() < 0.5, "codec": rng.random() < 0.7}
    if not any(use.values()):
        use[("occluder", "contrast", "codec")[int(rng.integers(3))]] = True
    x = crops
    if use["occluder"]:
        x = lip_occluder(x, lms, rng)
    if use["contrast"]:
        x = low_contrast(x, rng)
    x = camera_chain(x, rng)
    if use["codec"]:
        x = block_codec(x, rng)
    return x


# ------------------------------------------------------------------------------------------------ prep
def crop_landmarks(lm: np.ndarray, box) -> np.ndarray:
    """The 68 landmarks of a frame in the coordinates of its `face_crop` (nan where the crop is plain grey)."""
    from core.sync.asd.features import CROP, crop_square, face_box

    b = face_box(lm, box)
    if b is None:
        return np.full((68, 2), np.nan, np.float32)
    x0, y0, side = crop_square(b)
    return ((np.asarray(lm, np.float32) - np.array([x0, y0], np.float32)) * (CROP / side)).astype(np.float32)


def clip_crops(name: str, with_landmarks: bool = False):
    """(T, 112, 112) uint8 face crops of a GRID clip, from its cached dlib landmarks (tools.grid_cache);
    `with_landmarks`: also (T, 68, 2) the landmarks in crop coordinates (`crop_landmarks`)."""
    import cv2

    from core.sync.asd.features import face_crop
    from core.sync.scoring import fill_track
    from tools import grid_splits
    from tools.grid_cache import load_clip

    tr = load_clip(name)
    boxes, lms, _ = fill_track(tr["boxes"], tr["landmarks"], tr["present"])
    cap = cv2.VideoCapture(str(grid_splits.video_path(name)))
    crops = []
    while len(crops) < len(boxes):
        ok, frame = cap.read()
        if not ok:
            break
        i = len(crops)
        crops.append(face_crop(frame, lms[i], boxes[i]))
    cap.release()
    if with_landmarks:
        return np.stack(crops), np.stack([crop_landmarks(lms[i], boxes[i]) for i in range(len(crops))])
    return np.stack(crops)


def fill_nan_landmarks(lms: np.ndarray) -> np.ndarray:
    """Frames without landmarks take the nearest frame's (a plain grey crop: the occluder lands anywhere harmless)."""
    ok = np.isfinite(lms).all(axis=(1, 2))
    if ok.all() or not ok.any():
        return np.nan_to_num(lms, nan=56.0)
    idx = np.flatnonzero(ok)
    near = idx[np.abs(np.arange(len(lms))[:, None] - idx[None, :]).argmin(1)]
    return lms[near]


def embed_clip(model, name: str, seed: int, pictures: int = CAMERA_VARIANTS, reuse: dict | None = None) -> dict:
    """A clip's embeddings: `pictures` pictures (as is, a camera chain, and with 3 `footage_chain` from its own
    random stream) and VOICE_VARIANTS voices. `reuse`: a prep file of the same clip with the first two pictures and
    the voices (the same seed draws them identically): only the third picture is embedded."""
    import torch

    from core.sync.asd.features import mfcc
    from tools import grid_splits
    from tools.train_sync import load_audio

    rng = np.random.default_rng(seed)
    crops, lms = clip_crops(name, with_landmarks=True)
    extra = []
    if pictures >= 3:
        extra = [footage_chain(crops, fill_nan_landmarks(lms), np.random.default_rng([seed, 3]))]
    if reuse is not None:
        with torch.no_grad():
            v3 = np.stack([model.visual(torch.as_tensor(c)[None])[0].numpy() for c in extra])
        v = np.concatenate([reuse["v"].astype(np.float16), v3.astype(np.float16)])
        return {"v": v, "a": reuse["a"], "frames": reuse["frames"], "voiced": reuse["voiced"],
                "pictures": np.int32(pictures)}
    variants = [crops] + [camera_chain(crops, rng) for _ in range(CAMERA_VARIANTS - 1)] + extra
    wav = np.asarray(load_audio(grid_splits.video_path(name)), np.float32)
    voices = [wav] + [room_wave(wav, rng) for _ in range(VOICE_VARIANTS - 1)]
    with torch.no_grad():
        v = np.stack([model.visual(torch.as_tensor(c)[None])[0].numpy() for c in variants])
        feats = [mfcc(w) for w in voices]
        a = np.stack([model.audio(torch.as_tensor(f)[None])[0].numpy() for f in feats])
    from core.audio import voice_activity

    voiced = voice_activity(wav, 25.0, len(crops))
    return {"v": v.astype(np.float16), "a": a.astype(np.float16), "frames": np.int32(len(crops)), "voiced": voiced,
            "pictures": np.int32(pictures)}


def cmd_prep(a):
    import torch

    from tools.train_sync import split_names

    torch.set_num_threads(1)
    from tools import grid_splits

    train, val = split_names()
    pool = set(grid_splits.s1_pool())
    s1 = [n for n in train if n in pool][: a.limit]
    names = s1 + grid_splits.s4_train_names() + val[: a.val_limit] + grid_splits.s4_eval_names()
    names = names[a.part::a.parts]
    model = encoder_model(SECOND_VOICE_CHECKPOINTS[a.encoder] if a.encoder else None)
    arch = model.arch if a.encoder else ""
    out = prep_dir(arch, a.pictures)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for i, name in enumerate(names):
        f = out / f"{name}.npz"
        if f.exists():
            continue
        reuse = None
        shipped = prep_dir(arch) / f"{name}.npz"
        if a.pictures > CAMERA_VARIANTS and shipped.exists() and not a.no_reuse:
            with np.load(shipped) as z:
                reuse = {k: z[k] for k in z.files}
        data = embed_clip(model, name, seed=SEED + hash_name(name), pictures=a.pictures, reuse=reuse)
        tmp = out / f"{name}.tmp.npz"
        np.savez(tmp, **data)
        tmp.replace(f)
        if i % 10 == 0:
            print(f"{i + 1}/{len(names)} {name} {time.time() - t0:.0f} s", flush=True)


def hash_name(name: str) -> int:
    import zlib
    return zlib.crc32(name.encode()) % 100000


# ------------------------------------------------------------------------------------------------ train
TEMPERATURE = 10.0   # logit scale of the cosine
MAX_SHIFT = 12       # same-clip negatives: the voice up to this many frames early or late (not +-1: 80% overlap)


def load_prepped(names, second_voice: str = "", pictures: int = CAMERA_VARIANTS):
    """{name: (v (C, T, 128), a (V, T, 128), voiced (T,))} of the prepped clips among `names`; `second_voice` (an
    architecture prepped with `--encoder`): its voice embeddings beside the first's, a (V, T, 256) (the same rooms:
    `prep` draws them from the same per-clip seed whatever the encoder, and however many pictures); `pictures`:
    the prep folder with that many pictures a clip."""
    out = {}
    for n in names:
        f = prep_dir(pictures=pictures) / f"{n}.npz"
        if not f.exists():
            continue
        with np.load(f) as z:
            v, a, voiced = z["v"].astype(np.float32), z["a"].astype(np.float32), z["voiced"]
        if second_voice:
            with np.load(prep_dir(second_voice) / f"{n}.npz") as z:
                a2 = z["a"].astype(np.float32)
            t2 = min(a.shape[1], a2.shape[1])
            a = np.concatenate([a[:, :t2], a2[:, :t2]], axis=2)
        t = min(v.shape[1], a.shape[1])
        out[n] = (clip_normalised(v[:, :t]), a[:, :t], np.asarray(voiced[:t], bool))
    return out


def clip_normalised(v: np.ndarray) -> np.ndarray:
    """(C, T, 128) camera variants of a clip's visual embeddings, each standardised over the clip
    (core.sync.asd.head.normalise_clip, as the scorer does)."""
    import torch

    from core.sync.asd.head import normalise_clip

    return np.stack([normalise_clip(torch.as_tensor(x)).numpy() for x in v])


def batch_loss(heads, clips, names, rng, clips_per_batch=32, per_clip=6, train=True):
    import torch
    from torch.nn import functional as F

    from core.sync.asd.head import WINDOW, windows

    chosen = rng.choice(len(names), size=min(clips_per_batch, len(names)), replace=False)
    vids, auds, owners, pos, weights = [], [], [], [], []
    for ci, k in enumerate(chosen):
        v, a, voiced = clips[names[k]]
        cv = int(rng.integers(len(v))) if train else 0
        ca = (0 if rng.random() < 0.5 else int(rng.integers(1, len(a)))) if train else 0
        aw = windows(torch.as_tensor(a[ca]))                          # (M, 5, 128)
        auds.append(aw)
        m = len(aw)
        ts = rng.choice(m, size=min(per_clip, m), replace=False)
        vw = windows(torch.as_tensor(v[cv]))[ts]
        vids.append(vw)
        owners += [ci] * len(ts)
        pos += list(ts)
        act = np.array([voiced[t:t + WINDOW].mean() for t in ts])
        weights += list(0.2 + 0.8 * act)                              # silent windows teach little about sync
    ev = heads.video(torch.cat(vids))                                  # (B, D)
    sizes = [len(x) for x in auds]
    ea = heads.audio(torch.cat(auds))                                  # (sum M, D)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    owners, pos = np.array(owners), np.array(pos)
    sims = TEMPERATURE * ev @ ea.T                                     # (B, sum M)
    # candidates: the own clip's voice at shifts |s| <= MAX_SHIFT except +-1, and every window of other clips
    cols = np.arange(ea.shape[0])
    col_clip = np.repeat(np.arange(len(sizes)), sizes)
    col_pos = cols - offsets[col_clip]
    same = col_clip[None, :] == owners[:, None]
    shift = col_pos[None, :] - pos[:, None]
    keep = ~same | ((np.abs(shift) <= MAX_SHIFT) & (np.abs(shift) != 1))
    sims = sims.masked_fill(torch.as_tensor(~keep), -1e4)
    target = torch.as_tensor(offsets[owners] + pos)
    w = torch.as_tensor(np.array(weights), dtype=torch.float32)
    loss = (F.cross_entropy(sims, target, reduction="none") * w).sum() / w.sum()
    acc = float((sims.argmax(1) == target).float().mean())
    return loss, acc


def standardise(heads, clips):
    import torch

    v = np.concatenate([c[0].reshape(-1, c[0].shape[-1]) for c in clips.values()])
    a = np.concatenate([c[1].reshape(-1, c[1].shape[-1]) for c in clips.values()])
    for head, x in ((heads.video, v), (heads.audio, a)):
        head.mean.copy_(torch.as_tensor(x.mean(0)))
        head.std.copy_(torch.as_tensor(x.std(0) + 1e-3))


def selection_metrics(heads, clips):
    """On selection clips (camera and voice as is): own offset found within +-1 of shifts -8..8 (the syncnet
    search over +-15), and the lane's low shares (own voice, 8 late, another clip's voice) at the fixed threshold."""
    import torch

    from core.sync.asd.head import windows
    from core.sync.lane import LOW_THRESHOLD, calibrate
    from core.sync.scoring import lse_from_features

    names = list(clips)
    hits, low = [], {"own": [0, 0], "late8": [0, 0], "other": [0, 0]}
    heads.eval()
    with torch.no_grad():
        emb = {}
        for n in names:
            v, a, voiced = clips[n]
            emb[n] = (10 * heads.video(windows(torch.as_tensor(v[0]))).numpy(),
                      10 * heads.audio(windows(torch.as_tensor(a[0]))).numpy(), voiced)
    for i, n in enumerate(names):
        ev, ea, voiced = emb[n]
        m = min(len(ev), len(ea))
        for k in range(-8, 9):
            aa = np.zeros_like(ea[:m])
            if k >= 0:
                aa[k:] = ea[:m - k]
            else:
                aa[:k] = ea[-k:m]
            r = lse_from_features(ev[:m], aa, 15)
            hits.append(abs(r.offset_frames + k) <= 1)
            if k in (0, 8):
                conf = calibrate(r.dists, 15).confidence
                vw = voiced[2:2 + m].astype(bool)
                case = "own" if k == 0 else "late8"
                low[case][0] += int(((conf < LOW_THRESHOLD) & vw).sum())
                low[case][1] += int(vw.sum())
        eo = emb[names[(i + 1) % len(names)]][1]
        mo = min(m, len(eo))
        r = lse_from_features(ev[:mo], eo[:mo], 15)
        conf = calibrate(r.dists, 15).confidence
        vw = voiced[2:2 + mo].astype(bool)
        low["other"][0] += int(((conf < LOW_THRESHOLD) & vw).sum())
        low["other"][1] += int(vw.sum())
    heads.train()
    out = {"offset_pm1": float(np.mean(hits))}
    out.update({f"low_{c}": a / max(b, 1) for c, (a, b) in low.items()})
    return out


def save_heads(path: Path, heads, a, training: dict) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": heads.state_dict(), "config": heads.config(), "training": training}, tmp)
    tmp.replace(path)


def cmd_train(a):
    import torch

    from core.sync.asd.head import SyncHeads
    from tools import grid_splits
    from tools.train_sync import split_names

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    train, val = split_names()
    sel = {"s1_val": load_prepped(val, a.second_voice, a.pictures)}
    if a.s4 == "heldout":       # s4 neither trained on nor selected on: a long unseen face for evaluation
        s4 = set(grid_splits.s4_names())
        train = [n for n in train if n not in s4]
    else:
        sel["s4_eval"] = load_prepped(grid_splits.s4_eval_names(), a.second_voice, a.pictures)
    train_clips = load_prepped(train, a.second_voice, a.pictures)
    names = sorted(train_clips)
    print(f"training clips: {len(names)}; selection: " + ", ".join(f"{k} {len(v)}" for k, v in sel.items()))
    heads = SyncHeads(audio_embed=next(iter(train_clips.values()))[1].shape[-1])
    standardise(heads, train_clips)
    opt = torch.optim.AdamW(heads.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.05)
    t0 = time.time()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    best, history = None, []
    for step in range(1, a.steps + 1):
        loss, acc = batch_loss(heads, train_clips, names, rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % a.every == 0 or step == a.steps:
            m = {k: selection_metrics(heads, c) for k, c in sel.items() if c}
            # selection: offsets found, own voice not shaded, wrong voices shaded (each set counts once)
            score = float(np.mean([x["offset_pm1"] - x["low_own"] + 0.5 * (x["low_late8"] + x["low_other"])
                                   for x in m.values()])) if m else -loss.item()
            history.append({"step": step, "loss": round(loss.item(), 4), "acc": round(acc, 4), "score": score, **{
                f"{k}_{kk}": round(vv, 4) for k, x in m.items() for kk, vv in x.items()}})
            print(json.dumps(history[-1]), f"{time.time() - t0:.0f} s", flush=True)
            if best is None or score > best[0]:
                best = (score, step)
                save_heads(out, heads, a, {"steps": a.steps, "best_step": step, "seed": a.seed, "lr": a.lr,
                                           "s4": a.s4, "second_voice": a.second_voice, "train_clips": len(names),
                                           "pictures": a.pictures,
                                           "wall_time_s": round(time.time() - t0, 1), "history": history})
    print(f"wrote {out} (best step {best[1]})")


def cmd_export(a):
    """Copy a trained heads file into resources/models/sync_asd.pt and (re)write sync_asd.json with its SHA-256,
    keeping the metrics the evaluation wrote there."""
    import hashlib

    import torch

    from core.sync.asd.net import audio_encoder_state

    payload = torch.load(a.file, map_location="cpu", weights_only=True)
    second = dict(payload.get("training", {})).get("second_voice", "")
    if second and int(payload["config"].get("audio_embed", 0)) != 256:
        raise SystemExit(f"{a.file}: trained with a second voice, but its voice head reads "
                         f"{payload['config'].get('audio_embed')} values a frame")
    models = ROOT / "resources" / "models"
    dst = models / "sync_asd.pt"
    out = {"state_dict": payload["state_dict"], "config": payload["config"]}
    if second:       # the authors' audio encoder of that network, unchanged, travels with the heads
        arch, state = audio_encoder_state(SECOND_VOICE_CHECKPOINTS[second])
        out["second_voice"] = {"arch": arch, "state": state}
    if a.dest:       # a heads file as the product reads it, elsewhere (eval_sync --weights); nothing shipped changes
        if Path(a.dest).name == dst.name:
            raise SystemExit(f"--dest: name it other than {dst.name} (that name is checked against the shipped file)")
        Path(a.dest).parent.mkdir(parents=True, exist_ok=True)
        torch.save(out, a.dest)
        print(f"wrote {a.dest}")
        return
    torch.save(out, dst)
    meta_path = models / "sync_asd.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    training = dict(payload.get("training", {}))
    history = training.pop("history", [])
    meta.update({
        "name": "sync_asd", "file": "sync_asd.pt", "sha256": hashlib.sha256(dst.read_bytes()).hexdigest(),
        "kind": "sync_scorer",
        "licence": "heads: CC BY 4.0 (trained on GRID); encoders: Light-ASD, MIT (light_asd.md)"
                   + ("; second voice encoder: LR-ASD's, MIT (sync_asd.md)" if second else ""),
        "source": "heads trained by tools/train_sync_asd.py over the shipped Light-ASD encoders (light_asd.pt)"
                  + (f", LR-ASD's audio encoder beside Light-ASD's ({second}, TalkSet weights, unchanged)"
                     if second else ""),
        "title": "Face-general sync scorer (Light-ASD encoders" + (" + LR-ASD's audio encoder" if second else "")
                 + " + GRID-trained sync heads)",
        "training": {**training, "selection_at_best": next((h for h in history
                                                            if h["step"] == training.get("best_step")), None),
                     "recipe": RECIPE},
        "training_data": "GRID s1 (200 clips of the training pool; 30 of s1_val for selection) + GRID s4's even "
                         "half (24 clips; its odd half for selection); each picture "
                         + ("three times (as is, a random camera, a random footage chain: lip occluder, low "
                            "contrast, block codec)" if int(training.get("pictures", 2)) == 3
                            else "twice (as is, a random camera)")
                         + ", each voice four times (clean, three random rooms)",
    })
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {dst} and {meta_path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prep")
    p.add_argument("--limit", type=int, default=200, help="s1 training clips (the shipped recipe: 200)")
    p.add_argument("--val-limit", type=int, default=30, help="s1_val clips (selection; shipped: 30)")
    p.add_argument("--part", type=int, default=0)
    p.add_argument("--parts", type=int, default=1)
    p.add_argument("--encoder", choices=sorted(SECOND_VOICE_CHECKPOINTS), default=None,
                   help="embed with another network's encoders (for --second-voice; default: the shipped Light-ASD)")
    p.add_argument("--pictures", type=int, choices=PICTURE_CHOICES, default=CAMERA_VARIANTS,
                   help="pictures a clip: 2 (shipped: as is, a camera chain) or 3 (+ footage_chain; own prep folder)")
    p.add_argument("--no-reuse", action="store_true",
                   help="with --pictures 3: embed all pictures and voices anew instead of copying the shipped prep's")
    p = sub.add_parser("train")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--s4", choices=["train", "heldout"], default="train",
                   help="train on s4's even half (selecting on its other half), or hold all of s4 out")
    p.add_argument("--second-voice", choices=sorted(SECOND_VOICE_CHECKPOINTS), default="",
                   help="read the voice with this network's audio encoder too (prepped with --encoder)")
    p.add_argument("--pictures", type=int, choices=PICTURE_CHOICES, default=CAMERA_VARIANTS,
                   help="train on the prep with this many pictures a clip (`prep --pictures`)")
    p.add_argument("--out", default=str(ROOT / "out" / "sync_asd_heads.pt"))
    p = sub.add_parser("export")
    p.add_argument("file")
    p.add_argument("--dest", default="", help="write the product's heads file here instead of resources/models "
                                               "(for eval_sync --weights; resources/ untouched)")
    a = ap.parse_args()
    {"prep": cmd_prep, "train": cmd_train, "export": cmd_export}[a.cmd](a)


if __name__ == "__main__":
    main()
