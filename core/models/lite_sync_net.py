"""LiteSyncNet: a small SyncNet-style audio-visual embedding network (our own, trained by tools/train_sync.py).

Two conv towers map
  * 5 consecutive grayscale lower-face crops, (B, 5, 48, 64), standardised per window (see `normalize_video`), and
  * 16 Wav2Lip mel columns (0.2 s at 80 columns/s), (B, 1, 80, 16), in Wav2Lip's [-4, 4] units,
to L2-normalised embeddings of `EMB_DIM` values. In-sync pairs have a high cosine similarity.

Also here, because training (tools/train_sync.py) and inference (core.sync.scorers.lite) must share them exactly: the
crop geometry (`crop_affine`, `face_crop`) and the audio/video window alignment (`audio_window_starts`,
`mel_windows`). No Qt, no file I/O; `core.sync.scorers.lite` handles loading and hash checks.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

NUM_FRAMES = 5      # video frames per window (0.2 s at 25 fps)
CROP_H = 48         # crop rows
CROP_W = 64         # crop columns
MEL_BANDS = 80
MEL_COLS = 16       # 0.2 s of Wav2Lip mel (hop 200 at 16 kHz)
EMB_DIM = 128


def _cbr(cin: int, cout: int, k, s=1, p=None) -> nn.Sequential:
    if p is None:
        p = tuple(x // 2 for x in k) if isinstance(k, tuple) else k // 2
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Res(nn.Module):
    """3x3 conv-BN-ReLU with an identity shortcut (same channels, stride 1)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(x + self.bn(self.conv(x)), inplace=True)


class LiteSyncNet(nn.Module):
    def __init__(self, width: int = 32, emb_dim: int = EMB_DIM):
        super().__init__()
        w = width
        # video: (B, 5, 48, 64) -> (B, 8w, 1, 1)
        self.video = nn.Sequential(
            _cbr(NUM_FRAMES, w, 5, 2),          # 24x32
            _Res(w),
            _cbr(w, 2 * w, 3, 2),               # 12x16
            _Res(2 * w),
            _cbr(2 * w, 4 * w, 3, 2),           # 6x8
            _Res(4 * w),
            _cbr(4 * w, 8 * w, 3, 2),           # 3x4
            _cbr(8 * w, 8 * w, (3, 4), 1, 0),   # 1x1
        )
        # audio: (B, 1, 80, 16) -> (B, 8w, 1, 1)
        self.audio = nn.Sequential(
            _cbr(1, w, 3, 1),                   # 80x16
            _cbr(w, w, 3, (2, 1)),              # 40x16
            _cbr(w, 2 * w, 3, 2),               # 20x8
            _Res(2 * w),
            _cbr(2 * w, 4 * w, 3, 2),           # 10x4
            _Res(4 * w),
            _cbr(4 * w, 8 * w, 3, 2),           # 5x2
            _cbr(8 * w, 8 * w, (5, 2), 1, 0),   # 1x1
        )
        self.video_fc = nn.Linear(8 * w, emb_dim)
        self.audio_fc = nn.Linear(8 * w, emb_dim)
        # BCE logit = scale * cosine + bias (used in training only)
        self.logit_scale = nn.Parameter(torch.tensor(5.0))
        self.logit_bias = nn.Parameter(torch.tensor(-2.0))

    @staticmethod
    def normalize_video(x: torch.Tensor) -> torch.Tensor:
        """uint8-range (B, 5, H, W) -> zero-mean, unit-std per window (robust to brightness/contrast)."""
        x = x.float()
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(2.0)
        return (x - mean) / std

    def embed_video(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 5, 48, 64) pixel values 0..255 -> (B, EMB_DIM) unit vectors."""
        h = self.video(self.normalize_video(x)).flatten(1)
        return F.normalize(self.video_fc(h), dim=1)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 1, 80, 16) Wav2Lip mel -> (B, EMB_DIM) unit vectors."""
        h = self.audio(mel.float() / 4.0).flatten(1)
        return F.normalize(self.audio_fc(h), dim=1)

    def forward(self, video: torch.Tensor, mel: torch.Tensor):
        return self.embed_video(video), self.embed_audio(mel)


# ----------------------------------------------------------------------------------------------------------------
# Input conventions (shared by the scorer and the training script, so train and inference features match exactly)
# ----------------------------------------------------------------------------------------------------------------
PX_PER_IOD = 40.0   # crop pixels per inter-ocular distance (GRID s1 at 360x288 has an IOD of ~46 px)
MOUTH_BELOW_NOSE = 0.5  # crop centre: this many IODs below the nose base (landmark 33), along the face's vertical axis
MEL_PER_SECOND = 80.0   # Wav2Lip mel: 16 kHz, hop 200
SILENCE_MEL = -4.0      # the floor of Wav2Lip's normalised mel (digital silence)

# Fallback when landmarks are missing: the crop from a dlib-style face box (fitted on the GRID landmark cache):
# IOD = 0.394 * box width, crop centre = box centre + (0.015 * width, 0.289 * height), no rotation.
_BOX_IOD = 0.394
_BOX_CX = 0.0146
_BOX_CY = 0.289


def crop_affine(landmarks, box, out_h: int = CROP_H, out_w: int = CROP_W):
    """(2, 3) affine map from frame pixels to crop pixels, or None if neither landmarks nor box are usable.

    Geometry (from iBUG-68 landmarks): x axis along the eye line (right-eye centre -> left-eye centre), so the crop
    is de-rotated; scale: `PX_PER_IOD` crop pixels per inter-ocular distance, so the crop is resolution independent;
    centre: horizontally the mean of the nose base, mouth corners and lip mid-points, vertically `MOUTH_BELOW_NOSE`
    IODs below the nose base (stable while the jaw moves). A larger (out_h, out_w) keeps the same centre and scale.
    """
    c = ex = iod = None
    if landmarks is not None:
        lm = np.asarray(landmarks, np.float64)
        if lm.shape == (68, 2) and np.all(np.isfinite(lm)):
            r = lm[36:42].mean(0)
            le = lm[42:48].mean(0)
            iod = float(np.linalg.norm(le - r))
            if iod > 1e-3:
                ex = (le - r) / iod
                ey = np.array([-ex[1], ex[0]])
                em = (r + le) / 2
                cx = float(((lm[[33, 48, 54, 51, 57]] - em) @ ex).mean())
                cy = float((lm[33] - em) @ ey) + MOUTH_BELOW_NOSE * iod
                c = em + cx * ex + cy * ey
    if c is None and box is not None:
        b = np.asarray(box, np.float64)
        if b.shape == (4,) and np.all(np.isfinite(b)) and b[2] > b[0] and b[3] > b[1]:
            bw, bh = b[2] - b[0], b[3] - b[1]
            iod = _BOX_IOD * bw
            ex = np.array([1.0, 0.0])
            c = np.array([(b[0] + b[2]) / 2 + _BOX_CX * bw, (b[1] + b[3]) / 2 + _BOX_CY * bh])
    if c is None:
        return None
    ey = np.array([-ex[1], ex[0]])
    k = PX_PER_IOD / iod
    return np.array([[ex[0] * k, ex[1] * k, -k * float(c @ ex) + (out_w - 1) / 2.0],
                     [ey[0] * k, ey[1] * k, -k * float(c @ ey) + (out_h - 1) / 2.0]], np.float64)


def face_crop(frame, landmarks, box, out_h: int = CROP_H, out_w: int = CROP_W):
    """Grayscale uint8 (out_h, out_w) lower-face crop of a BGR (or gray) frame; mid-gray if there is no face.

    Large faces are first shrunk with area averaging (no aliasing on 1080p/4K input), then warped bilinearly.
    """
    import cv2

    m = crop_affine(landmarks, box, out_h, out_w)
    if m is None:
        return np.full((out_h, out_w), 128, np.uint8)
    h, w = frame.shape[:2]
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [out_w - 1, 0, 1], [0, out_h - 1, 1], [out_w - 1, out_h - 1, 1]], np.float64)
    src = corners @ inv.T
    x0 = int(max(0, np.floor(src[:, 0].min()) - 2))
    y0 = int(max(0, np.floor(src[:, 1].min()) - 2))
    x1 = int(min(w, np.ceil(src[:, 0].max()) + 3))
    y1 = int(min(h, np.ceil(src[:, 1].max()) + 3))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.full((out_h, out_w), 128, np.uint8)
    roi = frame[y0:y1, x0:x1]
    if roi.ndim == 3:
        roi = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
    m = m.copy()
    m[:, 2] += m[:, 0] * x0 + m[:, 1] * y0          # frame coords -> roi coords
    src_per_px = 1.0 / float(np.hypot(m[0, 0], m[0, 1]))
    if src_per_px > 1.5:                            # shrink first: area averaging instead of sparse sampling
        nw = max(2, int(round(roi.shape[1] / src_per_px)))
        nh = max(2, int(round(roi.shape[0] / src_per_px)))
        fx, fy = nw / roi.shape[1], nh / roi.shape[0]
        roi = cv2.resize(roi, (nw, nh), interpolation=cv2.INTER_AREA)
        m[:, 0] /= fx
        m[:, 1] /= fy
    return cv2.warpAffine(np.ascontiguousarray(roi), m, (out_w, out_h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def audio_window_starts(fps: float, num_windows: int, first: int = 0) -> np.ndarray:
    """First mel column of the audio window paired with video window i (frames i..i+4), for any fps.

    Video window i spans [i/fps, (i+5)/fps) s, centre t_i = (i + 2.5)/fps. Mel column c is centred at c/80 s
    (librosa center=True, hop 200 at 16 kHz), so the 16 columns c0..c0+15 are centred at (c0 + 7.5)/80 s. We take
    c0 = round(80 * t_i - 7.5): the audio window is centred on the visual window to within half a column (6.25 ms).
    At 25 fps the 5 frames and the 16 columns both cover 0.2 s; at other rates the audio window stays 0.2 s.
    `first` gives the windows first..first+num_windows-1 (negative: before the video starts).
    """
    i = np.arange(first, first + num_windows, dtype=np.float64)
    return np.floor(MEL_PER_SECOND * (i + NUM_FRAMES / 2.0) / float(fps) - (MEL_COLS - 1) / 2.0 + 0.5).astype(np.int64)


def mel_windows(mel: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(80, T) mel + start columns -> (len(starts), 80, 16) float32; columns outside [0, T) read as silence."""
    mel = np.asarray(mel, np.float32)
    starts = np.asarray(starts, np.int64)
    if len(starts) == 0:
        return np.zeros((0, MEL_BANDS, MEL_COLS), np.float32)
    lo = max(0, -int(starts.min()))
    hi = max(0, int(starts.max()) + MEL_COLS - mel.shape[1])
    if lo or hi:
        mel = np.pad(mel, ((0, 0), (lo, hi)), constant_values=SILENCE_MEL)
    idx = starts[:, None] + lo + np.arange(MEL_COLS)[None, :]
    return np.ascontiguousarray(mel[:, idx].transpose(1, 0, 2))
